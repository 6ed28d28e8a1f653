"""Key accounts and the deals (opportunities) won or lost with them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


class Account(Base):
    """A company the business sells to: its contacts belong to it; a group's subsidiaries name
    their parent. The segment A-E is the value of what it has bought (as a lead's is)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    industry: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(32))           # "1-10", "11-50", ... as the panel offers
    parent_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    segment: Mapped[str] = mapped_column(String(1), default="E")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AccountContact(Base):
    """A person who works for an account (one account each)."""

    __tablename__ = "account_contact"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Deal(Base):
    """An opportunity: an amount in a currency, a stage of the deal pipeline (each with its
    probability), when it should close, the next step, the products; a lead converted to a deal
    keeps its history on the lead. Won, its amount becomes an order of the lead."""

    __tablename__ = "deal"
    __table_args__ = (Index("ix_deal_owner_status", "owner_user_id", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    amount: Mapped[float] = mapped_column(Float, default=0.0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    stage: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open")     # open, won, lost
    expected_close: Mapped[dt.date | None] = mapped_column(Date)
    next_step: Mapped[str | None] = mapped_column(String(300))
    lost_reason: Mapped[str | None] = mapped_column(Text)
    products: Mapped[list[Any]] = mapped_column(default=list)          # [{"name", "quantity", "price"}]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None]
