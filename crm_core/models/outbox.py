"""The outbox (every send, once) and the leases that keep one process on a job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Delivery, Id, MessagePurpose, OutboxStatus, stored_enum


class OutboxMessage(Base):
    """A send waiting for, or done by, the dispatcher. At most once per key."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # A person's sends: the frequency cap at every marketing send, opt-out cancellation.
        Index("ix_outbox_identity", "identity_id", "purpose", "status"),
        # What a platform says later about a send it took names it by account and id.
        Index("ix_outbox_platform_id", "channel_account_id", "platform_message_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # (Indexed as ix_outbox_platform_id's first column.)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    recipient: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[MessagePurpose] = mapped_column(stored_enum(MessagePurpose), default=MessagePurpose.SERVICE)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(stored_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_at: Mapped[dt.datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    accepted_as: Mapped[Delivery | None] = mapped_column(stored_enum(Delivery))  # what `sent` meant, from the adapter
    # A nurture campaign's send: which enrolment and step (for the campaign's results).
    request_id: Mapped[str | None] = mapped_column(String(64))  # the request of the message it answers
    enrolment_id: Mapped[int | None] = mapped_column(ForeignKey("enrolment.id"), index=True)
    campaign_step_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_step.id"), index=True)


class Lease(Base):
    """A named lease one process holds at a time (a Telegram poller...)."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime]
