"""Leads in the pipeline and their history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


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
    # The customer message that opened it (a buying signal, the bot's form, a WeCom code's add):
    # its channel and date say where the lead came from (crm_core/leads/sources.py).
    source_message_id: Mapped[int | None] = mapped_column(Id)
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
