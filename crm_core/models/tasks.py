"""Reps' follow-ups: what to do, by when, for which customer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


class Task(Base):
    """A follow-up a rep owes: made by the rep (`/todo` in their chat app, the panel), by a
    manager for them, or by a follow-up rule (a lead untouched for days, a quote unanswered).
    Its reminder reaches the owner's chat app at `remind_at` (the due time; later when snoozed)
    with Done and Snooze buttons; past `due_at` and not done, it is overdue."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_owner_open", "owner_user_id", "done_at", "due_at"),
                      Index("ix_task_remind_at", "remind_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[dt.datetime]
    # The next reminder; None once it went (a snooze sets it again) or when done.
    remind_at: Mapped[dt.datetime | None]
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    # rep_bot, panel, api, or the rule that made it: untouched_lead, quote_unanswered.
    origin: Mapped[str] = mapped_column(String(32))
    # A rule's task is made once per occasion (the lead and the day it was last touched).
    rule_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[dt.datetime | None]
    done_at: Mapped[dt.datetime | None]
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
