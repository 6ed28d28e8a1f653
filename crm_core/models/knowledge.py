"""The FAQ entries, and the reps' quick replies (话术库)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


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


class QuickReply(Base):
    """A reply a rep sends with a few keystrokes (`/q N shortcut` in their chat app): a title, the
    words in Chinese and English with variables ({name}, {company}, {rep}, {link}), a link. Shared
    with everyone, with one team, or a rep's own."""

    __tablename__ = "quick_reply"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    texts: Mapped[dict[str, Any]] = mapped_column(default=dict)       # {"zh": "...", "en": "..."}
    shortcut: Mapped[str | None] = mapped_column(String(30), index=True)
    link_url: Mapped[str | None] = mapped_column(String(1000))
    # A picture sent with it (shown where the channel can, else its link) and a document (a file
    # where the channel takes one, else its link).
    image_url: Mapped[str | None] = mapped_column(String(1000))
    file_url: Mapped[str | None] = mapped_column(String(1000))
    file_name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)          # a team's
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)  # a rep's own
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
