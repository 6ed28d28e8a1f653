"""The consent ledger and the double opt-in requests waiting for an answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id, MessagePurpose, stored_enum


class ConsentEvent(Base):
    """The consent ledger: one row per grant or revocation, never changed.

    The current state of a contact's consent for a purpose on a channel is the
    newest row for that purpose whose channel is that channel or all (NULL).
    """

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_contact", "contact_id", "purpose", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    purpose: Mapped[MessagePurpose] = mapped_column(stored_enum(MessagePurpose))
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
    purpose: Mapped[MessagePurpose] = mapped_column(stored_enum(MessagePurpose))
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
