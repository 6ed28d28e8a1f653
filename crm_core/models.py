"""The foundation tables: people, their channel identities, conversations,
messages, the outbox, users and the audit log."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base, utcnow

# BigInteger ids on PostgreSQL, plain INTEGER (the rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _enum(cls: type[enum.Enum]) -> Enum:
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


class MessagePurpose(enum.StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"


class Contact(Base):
    """One person, whatever channels they use."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    # Where the contact was first seen ("3:42": channel account id, external id);
    # unique, so contacts created in bulk map back to their sender.
    origin: Mapped[str | None] = mapped_column(String(300), unique=True)
    # Staff writing to the hub's own apps (a rep in WeCom) are not customers.
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # IANA time zone ("Europe/Berlin") for quiet hours; unset: the hub's default.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Pipeline stage and where the contact came from (a channel QR code's State...).
    stage: Mapped[str] = mapped_column(String(32), default="new")
    source: Mapped[str | None] = mapped_column(String(200))
    # Set when this contact turned out to be someone already known (same WeChat
    # unionid...): its identities and conversations moved there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(back_populates="contact", lazy="raise")


class ContactKey(Base):
    """Something that names one person across channels (a WeChat unionid...).

    A second identity arriving with a known key joins that key's contact.
    """

    __tablename__ = "contact_key"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200))
    # The identity whose platform profile gave this key.
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ChannelAccount(Base):
    """One connected bot, app, official account or mailbox."""

    __tablename__ = "channel_account"
    __table_args__ = (UniqueConstraint("kind", "platform_account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # The platform's own id of this account (Telegram bot id, WeCom corpid +
    # agentid...), so the same account cannot be connected twice.
    platform_account_id: Mapped[str] = mapped_column(String(200))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    api_base: Mapped[str | None] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelCursor(Base):
    """Where an inbound poller stopped (Telegram update offset, IMAP UID...)."""

    __tablename__ = "channel_cursor"

    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id", ondelete="CASCADE"),
                                                    primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Identity(Base):
    """A contact as one channel account knows them (a Telegram user of one bot...)."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_reason: Mapped[str | None] = mapped_column(String(500))
    unreachable_since: Mapped[dt.datetime | None]
    last_inbound_at: Mapped[dt.datetime | None]
    # When the platform's profile of this identity was last looked up (name,
    # unionid); NULL: not yet, the worker does it before the next message.
    profile_checked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="identities", lazy="raise")


class User(Base):
    """Someone who works in the hub: admin, operator, manager or rep."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    manager_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # use_alter: team and user_account refer to each other (a team's manager is a user).
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("team.id", use_alter=True, name="fk_user_account_team_id_team"))
    # zh / en: the language the user last wrote to the rep bot in; cards follow it.
    language: Mapped[str | None] = mapped_column(String(16))
    # Lead routing: the regions and industries this rep covers ({"regions": [...], "industries": [...]}),
    # and when they were last given a lead (round-robin takes the longest waiting).
    territory: Mapped[dict[str, Any] | None]
    last_lead_at: Mapped[dt.datetime | None]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The admin panel's sign-in: an argon2 hash (crm_core/web_auth.py); none: no panel sign-in.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[dt.datetime | None]


class Team(Base):
    """Reps who work together under a manager: the manager hears of their SLA breaches and
    negative customers, and leads that come in on the team's channels go to its reps first."""

    __tablename__ = "team"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    manager_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    channels: Mapped[list[Any]] = mapped_column(default=list)   # channel kinds: ["wecom", "email"]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UserHandle(Base):
    """Where a user is reached inside a chat app: a rep's WeCom userid on one app."""

    __tablename__ = "user_handle"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    # The conversation the rep's next plain message goes to ("reply" on a card).
    focus_conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A signed-in admin panel browser. The cookie holds a random token; only its SHA-256
    is stored, with the CSRF token every form and unsafe API call must carry."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ended_at: Mapped[dt.datetime | None]


class LoginAttempt(Base):
    """A sign-in try, kept for throttling (per username and per address) and the audit."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_username_at", "username", "at"), Index("ix_login_attempt_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class Conversation(Base):
    """One thread with a contact on one channel account."""

    __tablename__ = "conversation"
    __table_args__ = (
        # One open conversation per thread, even when two webhooks race.
        Index("uq_conversation_open_thread", "channel_account_id", "external_thread_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identity.id"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    # Where replies go: a Telegram chat id, an email thread root...
    external_thread_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[ConversationStatus] = mapped_column(_enum(ConversationStatus), default=ConversationStatus.OPEN)
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # First-response SLA: the first unanswered customer message a reminder
    # (and an escalation) went out for, so each is sent once per wait.
    sla_reminded_message_id: Mapped[int | None] = mapped_column(Id)
    sla_escalated_message_id: Mapped[int | None] = mapped_column(Id)
    # Handed to a person (the customer asked, the bot failed twice, or they were upset):
    # the customer bot stays silent until the customer asks for it back.
    handoff_at: Mapped[dt.datetime | None]
    handoff_reason: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[dt.datetime | None]


class ThreadAlias(Base):
    """Another name of a conversation's thread (an email Message-ID in its
    References, its subject from that sender), for messages that name it so."""

    __tablename__ = "thread_alias"
    __table_args__ = (UniqueConstraint("channel_account_id", "alias"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    alias: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Message(Base):
    """Every message in or out, with the raw platform payload kept as evidence."""

    __tablename__ = "message"
    __table_args__ = (
        # Platform retries carry the same id: the second insert is a no-op.
        UniqueConstraint("channel_account_id", "platform_message_id"),
        Index("ix_message_unprocessed", "direction", "processed_at"),
        Index("ix_message_conversation", "conversation_id", "id"),
        # Reply windows: the customer's latest messages and actions.
        Index("ix_message_identity", "identity_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind), default=MessageKind.TEXT)
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    raw: Mapped[dict[str, Any] | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(200))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Inbound processing by the worker: claimed, then processed in the same
    # transaction that writes the replies to the outbox.
    processed_at: Mapped[dt.datetime | None]
    processing_owner: Mapped[str | None] = mapped_column(String(120))
    processing_claimed_at: Mapped[dt.datetime | None]
    processing_attempts: Mapped[int] = mapped_column(Integer, default=0)
    processing_error: Mapped[str | None] = mapped_column(Text)
    # A customer message's sentiment, scored by the worker (nlp): negative / neutral / positive.
    sentiment: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_confidence: Mapped[float | None] = mapped_column(Float)
    # What the customer wants (nlp): opt_out, opt_in, human, buying, complaint, event_registration.
    intents: Mapped[list[Any] | None]
    # What it states (nlp): phones, emails, wechat_ids, name, company, budget, dates.
    entities: Mapped[dict[str, Any] | None]


class OutboxMessage(Base):
    """A send waiting for, or done by, the dispatcher. At most once per key."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # A person's sends: the frequency cap at every marketing send, opt-out cancellation.
        Index("ix_outbox_identity", "identity_id", "purpose", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    recipient: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[MessagePurpose] = mapped_column(_enum(MessagePurpose), default=MessagePurpose.SERVICE)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_at: Mapped[dt.datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    accepted_as: Mapped[Delivery | None] = mapped_column(_enum(Delivery))  # what `sent` meant, from the adapter
    # A nurture campaign's send: which enrolment and step (for the campaign's results).
    enrolment_id: Mapped[int | None] = mapped_column(ForeignKey("enrolment.id"), index=True)
    campaign_step_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_step.id"), index=True)


class Note(Base):
    """A rep's or manager's internal note on a conversation; never sent to the customer."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A named lease one process holds at a time (a Telegram poller...)."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime]


class ConsentEvent(Base):
    """The consent ledger: one row per grant or revocation, never changed.

    The current state of a contact's consent for a purpose on a channel is the
    newest row for that purpose whose channel is that channel or all (NULL).
    """

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_contact", "contact_id", "purpose", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    purpose: Mapped[MessagePurpose] = mapped_column(_enum(MessagePurpose))
    channel: Mapped[str | None] = mapped_column(String(32))  # a channel kind; NULL: every channel
    granted: Mapped[bool] = mapped_column(Boolean)
    # How it was given or withdrawn: message, list-unsubscribe-post, form, import, api, admin...
    source: Mapped[str] = mapped_column(String(64))
    # The proof: which message and words, which link, which form.
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_label: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsentRequest(Base):
    """Double opt-in: a grant given on someone's behalf (a form, an import, a colleague) waits
    for the person's own "yes" before it enters the ledger."""

    __tablename__ = "consent_request"
    __table_args__ = (Index("ix_consent_request_contact", "contact_id", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    purpose: Mapped[MessagePurpose] = mapped_column(_enum(MessagePurpose))
    channel: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))             # form / import / api / admin
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_label: Mapped[str] = mapped_column(String(200), default="system")
    # Where the question went (the outbox row), and what answered it.
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / confirmed / expired
    confirmed_event_id: Mapped[int | None] = mapped_column(ForeignKey("consent_event.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class OpinionAlert(Base):
    """A spike of negative messages in one slice of traffic (a channel account, a
    campaign, a team, a product) or a product named in complaints, open while it
    lasts, with the messages behind it."""

    __tablename__ = "opinion_alert"
    __table_args__ = (
        Index("ix_opinion_alert_open", "dimension", "key", "status"),
        # One open alert per slice, even with several workers watching.
        Index("uq_opinion_alert_open_slice", "dimension", "key", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # channel / campaign / team / keyword (spikes), keyword_rule (complaints naming a product)
    dimension: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / closed
    first_hour: Mapped[dt.datetime]
    last_hour: Mapped[dt.datetime]
    peak_share: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    volume: Mapped[int] = mapped_column(Integer)
    top_terms: Mapped[list[Any]] = mapped_column(default=list)
    message_ids: Mapped[list[Any]] = mapped_column(default=list)
    # Mostly the same messages as this open alert, which was sent: recorded, not sent again.
    covered_by_id: Mapped[int | None] = mapped_column(ForeignKey("opinion_alert.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]


class ContactTag(Base):
    """A label on a contact ("vip", "expo-2026"), for campaign audiences."""

    __tablename__ = "contact_tag"
    __table_args__ = (Index("ix_contact_tag_tag", "tag"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class Campaign(Base):
    """A nurture campaign: who (audience), what and when (steps), and when to stop (exits)."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus), default=CampaignStatus.DRAFT)
    # A segment: {"tags": [...], "stages": [...], "sources": [...], "channels": [...],
    # "sentiment": "negative", "min_score": 10, "consent": true}; see crm_core.nurture.Audience.
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Besides opt-out and manual exits, which always apply: "reply", "conversion".
    exits: Mapped[list[Any]] = mapped_column(default=list)
    # This campaign's own limits, under the hub-wide marketing cap: {"per_contact": {"messages": 2,
    # "days": 7}, "per_day": 500}; see crm_core.nurture.CampaignCaps.
    caps: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignStep(Base):
    """One message of a campaign: on which channel, what text, when, and on what condition."""

    __tablename__ = "campaign_step"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, 3...
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))  # a channel kind; NULL: the contact's latest
    template: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"zh": "...", "en": "..."}
    # Other wording where the contact is reached on one channel: {"email": {"zh": ..., "en": ...}}.
    channel_templates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=0)
    delay_from: Mapped[str] = mapped_column(String(16), default="previous")  # previous / enrolment
    send_at: Mapped[dt.datetime | None]  # an absolute date instead of a delay
    # Local send window in the contact's time zone ("09:00", "18:00"); NULL: any time.
    window_start: Mapped[str | None] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    # {"replied": false} / {"clicked": true} / {"stages": [...]} / {"tag": "vip"}: checked when due.
    condition: Mapped[dict[str, Any] | None]
    # Where to go when the condition is not met: a step position, or NULL: exit the campaign.
    else_position: Mapped[int | None] = mapped_column(Integer)


class EnrolmentStatus(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"


class Enrolment(Base):
    """A contact's way through a campaign: the next step and when it is due."""

    __tablename__ = "enrolment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "rotation"),
        Index("ix_enrolment_due", "status", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    # Enrolled again after finishing (a repeating campaign): 2, 3...
    rotation: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[EnrolmentStatus] = mapped_column(_enum(EnrolmentStatus), default=EnrolmentStatus.ACTIVE)
    next_position: Mapped[int | None] = mapped_column(Integer)
    next_due_at: Mapped[dt.datetime | None]
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_step_at: Mapped[dt.datetime | None]
    # Why the last step did not send, or why the contact left: visible in the API.
    note: Mapped[str | None] = mapped_column(String(500))
    exit_reason: Mapped[str | None] = mapped_column(String(32))  # replied / converted / opted_out / manual...
    exited_at: Mapped[dt.datetime | None]


class Lead(Base):
    """A prospect a rep should work: one open lead per contact, from a buying signal, a QR
    code or campaign, a form, an import or the API; scored, segmented, routed, timed."""

    __tablename__ = "lead"
    __table_args__ = (
        Index("uq_lead_open_contact", "contact_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_lead_owner", "owner_user_id", "status"),
        Index("ix_lead_first_response", "status", "first_responded_at", "first_response_due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / closed (won or lost)
    stage: Mapped[str] = mapped_column(String(32), default="new")
    # signal / qr / form / import / api, and the detail (QR State, campaign, file name...).
    source_kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(100))
    industry: Mapped[str | None] = mapped_column(String(100))
    score: Mapped[int] = mapped_column(Integer, default=0)
    # A-E from order value and frequency (A: the most valuable).
    segment: Mapped[str] = mapped_column(String(1), default="E")
    order_total: Mapped[float] = mapped_column(Float, default=0.0)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    # What the customer told the bot's lead form: need, budget, time frame.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # First response: due by then; met when the owner first writes to the contact or moves the stage.
    first_response_due_at: Mapped[dt.datetime | None]
    first_responded_at: Mapped[dt.datetime | None]
    sla_reminded_at: Mapped[dt.datetime | None]
    sla_escalated_at: Mapped[dt.datetime | None]
    hot_alerted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeadEvent(Base):
    """A lead's history: created, routed, scored, staged, reassigned, ordered. Never changed,
    so a rep's successor sees what happened and what was promised."""

    __tablename__ = "lead_event"
    __table_args__ = (Index("ix_lead_event_lead", "lead_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"))
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FaqEntry(Base):
    """A question operators answer once for the customer bot: ways of asking it and
    the answer, in Chinese and English, with synonym groups for its key words."""

    __tablename__ = "faq_entry"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # None: every channel account; else only conversations on this one.
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_account.id"), index=True)
    questions: Mapped[dict[str, Any]] = mapped_column(default=dict)   # {"zh": [...], "en": [...]}
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)     # {"zh": "...", "en": "..."}
    synonyms: Mapped[list[Any]] = mapped_column(default=list)          # [["价格", "价钱", "price"], ...]
    # Shown with the answer where the channel can (a photo, an article card); else as addresses.
    image_url: Mapped[str | None] = mapped_column(String(1000))
    link_url: Mapped[str | None] = mapped_column(String(1000))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotSession(Base):
    """What the customer bot remembers of a person between messages, on any channel: the
    lead form in progress (resumable days later), its language, and how often in a row
    it could not answer."""

    __tablename__ = "bot_session"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), unique=True)
    language: Mapped[str | None] = mapped_column(String(8))
    # {"status": "open" | "done" | "left", "fields": {...}, "asking": "phone", "tries": 1, ...}
    form: Mapped[dict[str, Any]] = mapped_column(default=dict)
    misses: Mapped[int] = mapped_column(Integer, default=0)  # questions in a row without an answer
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CsatSurvey(Base):
    """"How did we do?" after a conversation was resolved, and the customer's 1-5."""

    __tablename__ = "csat_survey"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    rep_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[dt.datetime | None]
    answer_message_id: Mapped[int | None] = mapped_column(Id)


class Event(Base):
    """Something customers register for (a launch, a webinar, a trade-fair visit)."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)        # {"zh": "...", "en": "..."}
    starts_at: Mapped[dt.datetime]
    location: Mapped[str | None] = mapped_column(String(300))
    capacity: Mapped[int | None] = mapped_column(Integer)               # None: no limit
    # Words that name it in a message ("X200", "发布会"), beside its names.
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    remind_hours: Mapped[list[Any]] = mapped_column(default=lambda: [24, 1])  # reminders this long before
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventRegistration(Base):
    """A person registered for an event, once; cancelled ones are kept."""

    __tablename__ = "event_registration"
    __table_args__ = (UniqueConstraint("event_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    status: Mapped[str] = mapped_column(String(16), default="registered")  # registered / cancelled
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(Id)                      # the customer's own words
    reminded_hours: Mapped[list[Any]] = mapped_column(default=list)         # reminders already queued


class HubSetting(Base):
    """A setting changed in the admin panel, over the SCRM_* environment: every process
    reads these and applies them while it runs (hub/live_settings.py)."""

    __tablename__ = "hub_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"value": ...}: any JSON value
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class AuditLog(Base):
    """Who changed what, when. Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
