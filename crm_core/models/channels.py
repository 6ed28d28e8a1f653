"""The channel accounts the hub is connected to, and each one's read position."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


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
