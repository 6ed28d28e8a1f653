"""Values several tables share: ids, roles, message kinds and directions, outbox and delivery states."""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Enum, Integer

# BigInteger ids on PostgreSQL, plain INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


def stored_enum(cls: type[enum.Enum]) -> Enum:
    # Store the readable value, as a VARCHAR with a CHECK, not a native PG enum,
    # so adding a member is a one-line migration on every backend.
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, name=cls.__name__.lower())


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    MANAGER = "manager"
    REP = "rep"


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    CALLBACK = "callback"   # a button press
    EDIT = "edit"           # the customer edited an earlier message
    EVENT = "event"         # follow / unfollow / blocked the bot and similar
    VOICE = "voice"
    LOCATION = "location"
    LINK = "link"


# What a customer writes (as opposed to events, button presses and edits).
CUSTOMER_MESSAGE_KINDS = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE, MessageKind.VOICE,
                          MessageKind.LOCATION, MessageKind.LINK)


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"          # waiting for next_attempt_at
    CLAIMED = "claimed"          # taken by a dispatcher, network not touched yet
    SENDING = "sending"          # recorded just before the network call
    SENT = "sent"
    FAILED = "failed"            # gave up after retries, or a permanent error
    UNREACHABLE = "unreachable"  # the platform says the recipient cannot be reached
    IN_DOUBT = "in_doubt"        # the sender died mid-call: maybe delivered, not resent
    CANCELLED = "cancelled"
    # The platform's rules forbid the send now (WeChat's 48-hour window...): kept
    # with the reason and released when the customer writes again.
    HELD = "held"


class Delivery(enum.StrEnum):
    """What a platform's "accepted" means for the customer: shown per message in the inbox."""

    IN_CHAT = "in_chat"          # the message is in the customer's chat now (Telegram, WeChat, WeCom app, DingTalk)
    HANDED_OVER = "handed_over"  # another server delivers it later, or not (email: the SMTP server took it)
    # A person must confirm it on the platform before it goes (WeCom's 群发 task to an external contact).
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"      # ... confirmed there, and in the customer's chat now


class MessagePurpose(enum.StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"
