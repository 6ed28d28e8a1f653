"""The company's people: users, teams, their handles on each platform, API tokens, panel sessions, sign-in attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id, Role, stored_enum


class User(Base):
    """Someone who works in the hub: admin, operator, manager or rep."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(stored_enum(Role))
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
    # The admin panel's sign-in: an argon2 hash (crm_core/people/web_auth.py); none: no panel sign-in.
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


class CustomerTransfer(Base):
    """A WeCom customer moved from one rep to another in WeCom (在职继承 while the rep is employed,
    离职继承 once they left): asked, then followed until WeCom says how it ended. The customer
    has 24 hours to refuse; WeCom moves a customer at most twice in 90 days."""

    __tablename__ = "customer_transfer"
    __table_args__ = (Index("ix_customer_transfer_status", "status", "channel_account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    external_userid: Mapped[str] = mapped_column(String(200))
    handover_userid: Mapped[str] = mapped_column(String(200))
    takeover_userid: Mapped[str] = mapped_column(String(200))
    resigned: Mapped[bool] = mapped_column(Boolean, default=False)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)  # a customer group (its chat id) the rep owned
    # pending (not asked yet) / asking (a process asks WeCom) / waiting (WeCom asked the customer) / done /
    # refused / over_limit / failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(300))     # in English, for the API and logs
    errcode: Mapped[int | None]                                  # WeCom's, where it refused the customer
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
