"""What the core expects from the outside: normalized inbound events from
channel adapters, a sender for outbound messages, and message handlers (bots).

Adapters, bots and analyzers implement these; the core never imports them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import held_or_get
from crm_core.models import BotSession, ConsentEvent, Contact, Conversation, Delivery, Identity, Message, MessageKind
from crm_core.session_memo import Preloaded


@dataclass(frozen=True)
class Sender:
    """Who wrote, as the platform names them."""

    external_id: str
    display_name: str | None = None
    username: str | None = None
    language: str | None = None
    # A colleague writing to the company's own app (a rep in WeCom), not a customer.
    is_staff: bool = False


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, edit or button press, normalized."""

    # Unique per channel account and stable across platform retries.
    platform_message_id: str
    sender: Sender
    thread_id: str
    kind: MessageKind
    text: str | None
    raw: dict[str, Any]
    sent_at: dt.datetime | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    # Other names of this thread (an email's References, its subject from this
    # sender): an open conversation known by one of them is this thread's.
    thread_aliases: tuple[str, ...] = ()
    # A person of the company wrote this to the customer in the customer's chat, outside the hub
    # (a 微信客服 servicer in WeCom, a rep in an archived chat): their userid on the platform. It is
    # stored as the company's outgoing message, by the user with that handle, and never answered.
    staff_author: str | None = None


@dataclass(frozen=True)
class ReachabilityChanged:
    """The customer blocked / unblocked the bot, unfollowed the account..."""

    platform_message_id: str
    sender: Sender
    thread_id: str
    reachable: bool
    reason: str
    raw: dict[str, Any]
    # What came with the change (WeCom: which rep, the QR code's State, a WelcomeCode).
    attachments: list[dict[str, Any]] = field(default_factory=list)


InboundEvent = InboundMessage | ReachabilityChanged


def servicer_status(userid: str, receiving: bool) -> tuple[str, str]:
    """The account cursor (name, value) in which a poller keeps whether a platform's servicer receives
    customers now (微信客服: 接待中 / 停止接待); routing passes over servicers who do not."""
    return f"servicer_status:{userid}", "receiving" if receiving else "stopped"


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class RecipientActivity:
    """The customer's latest actions and what we sent since, for reply-window rules."""

    last_message_at: dt.datetime | None   # their last own message
    last_event_at: dt.datetime | None     # their last follow, scan or menu click
    sent_since_message: int               # our delivered sends since last_message_at
    sent_since_event: int                 # ... since last_event_at
    # Sends a person had to confirm on the platform (WeCom 群发 tasks) that reached or may still
    # reach the customer this calendar month, China time: WeCom allows the company 4 a month.
    confirmed_this_month: int = 0


@dataclass(frozen=True)
class OutboundMessage:
    """What to send; rich parts degrade to text on platforms without them.

    `title` makes a card where the platform has cards (WeCom template cards);
    `image_url` and `link_url` make it a picture card (a photo with its caption,
    a WeChat article, a DingTalk markdown picture, an HTML mail) and degrade to
    their addresses in text where the channel cannot show them.
    `file_url` (named `file_name`) is a document sent as a file where the platform
    takes one (Telegram, 微信客服, an email attachment) and as its link elsewhere.
    `options` carries platform-specific parts the core passes through untouched
    (a WeCom WelcomeCode, the rep an external-contact message is sent as...).
    """

    recipient: str
    text: str
    buttons: tuple[Button, ...] = ()
    title: str | None = None
    image_url: str | None = None
    link_url: str | None = None
    file_url: str | None = None
    file_name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Filled by the dispatcher for platforms that only allow replies within a
    # window after the customer's last action (WeChat Official Accounts).
    recipient_activity: RecipientActivity | None = None
    # Filled by the dispatcher for platforms whose inbound messages carry a way
    # to answer them (a DingTalk sessionWebhook until it expires): the newest
    # "reply_via" attachment of the recipient's messages in this thread.
    reply_via: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        payload = self.text_payload(self.text, self.options)
        payload["buttons"] = [{"label": b.label, "data": b.data} for b in self.buttons]
        for name in ("title", "image_url", "link_url", "file_url", "file_name"):
            if getattr(self, name):
                payload[name] = getattr(self, name)
        return payload

    @staticmethod
    def text_payload(text: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The payload of a message of text alone (and `options`), without making the message: a
        campaign queues hundreds a batch, and making each was 3.5 us of the planner's 150."""
        payload: dict[str, Any] = {"text": text, "buttons": []}
        if options:
            payload["options"] = options
        return payload

    @classmethod
    def from_payload(cls, recipient: str, payload: dict[str, Any],
                     recipient_activity: RecipientActivity | None = None,
                     reply_via: dict[str, Any] | None = None) -> OutboundMessage:
        buttons = tuple(Button(b["label"], b["data"]) for b in payload.get("buttons") or ())
        return cls(recipient=recipient, text=payload["text"], buttons=buttons, title=payload.get("title"),
                   image_url=payload.get("image_url"), link_url=payload.get("link_url"),
                   file_url=payload.get("file_url"), file_name=payload.get("file_name"),
                   options=dict(payload.get("options") or {}), recipient_activity=recipient_activity,
                   reply_via=reply_via)


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str
    delivery: Delivery = Delivery.HANDED_OVER  # never "in the chat" unless the adapter knows it is


@dataclass(frozen=True)
class Confirmation:
    """What became of a send a person had to confirm on the platform (a WeCom 群发 task)."""

    delivered: bool | None      # None: still waiting for them
    reason: str | None = None   # why it was not delivered


class SendError(Exception):
    """A send failed; subclasses tell the dispatcher what to do next. `code`: the platform's own
    error code when it answered with one (Telegram's HTTP status, WeCom's errcode, an SMTP reply
    code), counted by code in /metrics."""

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = None if code is None else str(code)


class RetryLater(SendError):
    """The platform asked us to slow down (Telegram 429, WeCom 45009)."""

    def __init__(self, message: str, retry_after: float, *, code: int | str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TemporaryFailure(SendError):
    """Network error or 5xx: retried with exponential backoff."""


class RecipientUnreachable(SendError):
    """The recipient blocked us or never started the bot: stop, mark the identity."""


class SendHeld(SendError):
    """The platform's rules forbid this send now (outside WeChat's 48-hour window):
    kept with the reason, and released when the customer writes again."""


class PermanentFailure(SendError):
    """The request itself is wrong (bad token, bad chat id): retrying will not help."""


@dataclass(frozen=True)
class RateLimit:
    """At most `count` sends per `period` seconds for one bucket."""

    count: int
    period: float

    @property
    def interval(self) -> float:
        return self.period / self.count


@dataclass(frozen=True)
class AccountRef:
    """What the dispatcher knows of an account when it asks for a send."""

    id: int
    kind: str
    api_base: str | None
    credentials: dict[str, Any]
    settings: dict[str, Any]


class OutboundGateway(Protocol):
    """Sends through the right adapter; implemented by the composition root."""

    def needs_recipient_activity(self, account: AccountRef) -> bool:
        """Whether sends on this account must carry `RecipientActivity` (reply windows)."""
        ...

    def wants_reply_via(self, account: AccountRef) -> bool:
        """Whether sends on this account can use the `reply_via` of the recipient's latest message."""
        ...

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        """Bucket names with their limits that one send to `recipient` counts against."""
        ...

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult: ...

    async def confirmation(self, account: AccountRef, platform_message_id: str, recipient: str,
                           options: dict[str, Any]) -> Confirmation | None:
        """What became of a send accepted as awaiting confirmation; None where the channel cannot tell."""
        ...


@dataclass(frozen=True)
class Sentiment:
    """How a message feels: negative / neutral / positive."""

    label: str
    score: float        # P(positive) - P(negative), -1 to 1
    confidence: float   # the probability of `label`


class SentimentAnalyzer(Protocol):
    """Implemented in `nlp`; the worker scores every customer message with it."""

    def analyze(self, text: str) -> Sentiment: ...

    def analyze_many(self, texts: list[str]) -> list[Sentiment]:
        """Many at once (a batch through the model)."""
        ...


@dataclass(frozen=True)
class Profile:
    """What a platform tells about one of its users when asked (WeCom
    externalcontact/get, WeChat user/info)."""

    display_name: str | None = None
    # Cross-channel keys naming the person ({"wechat_unionid": "o6_bm..."}):
    # another identity with the same key is the same contact.
    keys: dict[str, str] = field(default_factory=dict)
    # Anything else worth keeping (company name, gender...), stored as given.
    details: dict[str, Any] = field(default_factory=dict)


class ProfileLookup(Protocol):
    """Asks the platform for an identity's profile; implemented by the composition root."""

    # The channel kinds whose platforms can say who a user is: the worker asks for no one else's.
    profile_kinds: frozenset[str]

    async def fetch_profile(self, account_id: int, external_id: str) -> Profile | None:
        """The profile (possibly empty); None when the channel has no profile
        API for this user. Raises when the platform cannot answer now."""
        ...


# In a worker's session: contact id -> the id of its customer bot state (None: it has none), for
# the contacts of the batch, read in one statement (`crm_core.conversations.processing`). Only the
# worker's transaction holds it; bot states are written there by `HandlerContext.bot_session` alone.
BOT_SESSIONS = Preloaded("bot_sessions")


@dataclass
class HandlerContext:
    """One stored inbound message being processed by the worker."""

    db_session: AsyncSession
    message: Message
    conversation: Conversation
    contact: Contact
    identity: Identity
    replies: list[OutboundMessage] = field(default_factory=list)

    # Set by a handler that fully dealt with the message (a rep's command), so
    # later handlers (the customer bot) leave it alone.
    handled: bool = False
    # Set by a handler that queued sends elsewhere (a rep's card), to wake the dispatcher.
    enqueued: bool = False
    # Users already sent a card about this message (a routed lead's new owner), so later
    # handlers do not send them a second one.
    notified: set[int] = field(default_factory=set)
    # Whether this is the conversation's first customer message: known to the worker for its
    # batch, else asked once (`crm_core.conversations.processing.first_customer_message`).
    first_of_conversation: bool | None = None
    # What the worker put in the consent ledger from this message before the handlers ran (a
    # "yes" or "no" to a consent question, the customer's own "subscribe me"); None: not known,
    # asked (`crm_core.consent.service.recorded_from`).
    consent_recorded: list[ConsentEvent] | None = None
    # The customer bot's state for this contact, read once for the message's handlers (`bot_session`).
    _bot_session: BotSession | None = field(default=None, init=False, repr=False)
    _bot_session_read: bool = field(default=False, init=False, repr=False)

    async def bot_session(self, *, create: bool = False) -> BotSession | None:
        """The customer bot's state for this contact (its language, its open form), read once per
        message whichever handler asks first (from what the worker loaded for its batch, where it
        did: `BOT_SESSIONS`); with `create`, made when there is none."""
        if not self._bot_session_read:
            preloaded, row_id = BOT_SESSIONS.lookup(self.db_session, self.contact.id)
            if preloaded:
                self._bot_session = None if row_id is None else await held_or_get(self.db_session, BotSession, row_id)
            else:
                self._bot_session = await self.db_session.scalar(
                    select(BotSession).where(BotSession.contact_id == self.contact.id))
            self._bot_session_read = True
        if self._bot_session is None and create:
            self._bot_session = BotSession(contact_id=self.contact.id, form={}, misses=0)
            self.db_session.add(self._bot_session)
            await self.db_session.flush()
            BOT_SESSIONS.record(self.db_session, self.contact.id, self._bot_session.id)
        return self._bot_session

    def reply(self, text: str, buttons: Sequence[Button] = (), *, title: str | None = None,
              image_url: str | None = None, link_url: str | None = None,
              options: dict[str, Any] | None = None) -> None:
        """A bot's answer; marked automated (email sends it with Auto-Submitted: auto-replied).
        `options` adds platform parts (a 微信客服 session handed to a person with the answer)."""
        self.replies.append(OutboundMessage(self.conversation.external_thread_id, text, tuple(buttons), title=title,
                                            image_url=image_url, link_url=link_url,
                                            options={"automated": True, **(options or {})}))


class MessageHandler(Protocol):
    """A bot: looks at one inbound message and may queue replies."""

    async def handle(self, ctx: HandlerContext) -> None: ...
