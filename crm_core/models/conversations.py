"""Conversations and their messages, thread aliases, notes, satisfaction surveys, opinion alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import ConversationStatus, Direction, Id, MessageKind, stored_enum


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
    status: Mapped[ConversationStatus] = mapped_column(stored_enum(ConversationStatus), default=ConversationStatus.OPEN)
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
        # The worker's backlog: only the messages not processed yet, so the index stays the size of
        # the backlog, and a query about all of a customer's messages is not led through it.
        Index("ix_message_backlog", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        Index("ix_message_conversation", "conversation_id", "id"),
        # Reply windows: the customer's latest messages and actions.
        Index("ix_message_identity", "identity_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    direction: Mapped[Direction] = mapped_column(stored_enum(Direction))
    kind: Mapped[MessageKind] = mapped_column(stored_enum(MessageKind), default=MessageKind.TEXT)
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    request_id: Mapped[str | None] = mapped_column(String(64))  # the webhook request it came with
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


class Note(Base):
    """A rep's or manager's internal note on a conversation; never sent to the customer."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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
