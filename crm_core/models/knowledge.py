"""The FAQ entries."""

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
