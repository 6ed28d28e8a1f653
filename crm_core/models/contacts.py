"""People and how they are reached: contacts, their platform identities and contact keys, tags,
what the bot remembers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base, utcnow
from crm_core.models.common import Id


class Contact(Base):
    """One person, whatever channels they use."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    # Where the contact was first seen ("3:42": channel account id, external id);
    # unique, so contacts created in bulk map back to their sender.
    origin: Mapped[str | None] = mapped_column(String(300), unique=True)
    # Staff writing to the hub's own apps (a rep in WeCom) are not customers.
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # IANA time zone ("Europe/Berlin") for quiet hours; unset: the hub's default.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Pipeline stage and where the contact came from (a channel QR code's State...).
    stage: Mapped[str] = mapped_column(String(32), default="new")
    source: Mapped[str | None] = mapped_column(String(200))
    # Set when this contact turned out to be someone already known (same WeChat
    # unionid...): its identities and conversations moved there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(back_populates="contact", lazy="raise")


class ContactKey(Base):
    """Something that names one person across channels (a WeChat unionid...).

    A second identity arriving with a known key joins that key's contact.
    """

    __tablename__ = "contact_key"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200))
    # The identity whose platform profile gave this key.
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Identity(Base):
    """A contact as one channel account knows them (a Telegram user of one bot...)."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_reason: Mapped[str | None] = mapped_column(String(500))
    unreachable_since: Mapped[dt.datetime | None]
    last_inbound_at: Mapped[dt.datetime | None]
    # When the platform's profile of this identity was last looked up (name,
    # unionid); NULL: not yet, the worker does it before the next message.
    profile_checked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="identities", lazy="raise")


class ContactTag(Base):
    """A label on a contact ("vip", "expo-2026"), for campaign audiences."""

    __tablename__ = "contact_tag"
    __table_args__ = (Index("ix_contact_tag_tag", "tag"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CorpTag(Base):
    """A WeCom corp tag (企业客户标签) of one app's company: the hub tag of the same name, kept in step
    both ways (crm_core/contacts/corp_tags.py)."""

    __tablename__ = "corp_tag"
    __table_args__ = (UniqueConstraint("channel_account_id", "tag_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    tag_id: Mapped[str] = mapped_column(String(100))
    group_id: Mapped[str] = mapped_column(String(100))
    group_name: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(64))


class TagPush(Base):
    """A contact whose tags changed in the hub: their WeCom customers get the hub's tags, and lose
    those removed in the hub (tags a rep put on them in WeCom stay)."""

    __tablename__ = "tag_push"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    removed: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CustomerGroup(Base):
    """A WeCom customer group (客户群) of one app's company: its owner (a rep), name and members,
    kept current from WeCom (crm_core/contacts/groups.py)."""

    __tablename__ = "customer_group"
    __table_args__ = (UniqueConstraint("channel_account_id", "chat_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    chat_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    owner_userid: Mapped[str] = mapped_column(String(200), default="")
    notice: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime | None]                     # WeCom's create_time
    dismissed_at: Mapped[dt.datetime | None]
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CustomerGroupMember(Base):
    """Someone in a customer group: a customer (the same contact as in their 1:1 chats) or a colleague."""

    __tablename__ = "customer_group_member"
    __table_args__ = (UniqueConstraint("group_id", "userid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("customer_group.id"), index=True)
    userid: Mapped[str] = mapped_column(String(200))
    is_customer: Mapped[bool] = mapped_column(Boolean)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    joined_at: Mapped[dt.datetime | None]
    join_scene: Mapped[int | None] = mapped_column(Integer)   # 1 invited, 2 by link, 3 by QR code
    state: Mapped[str | None] = mapped_column(String(30))      # the group QR code (join way) they came through


class CustomerGroupLeave(Base):
    """Someone who left a customer group, noticed when the group was read again (WeCom's
    statistics count joins and messages, not departures)."""

    __tablename__ = "customer_group_leave"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("customer_group.id"), index=True)
    userid: Mapped[str] = mapped_column(String(200))
    is_customer: Mapped[bool] = mapped_column(Boolean)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    left_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class GroupJoinWay(Base):
    """A WeCom group QR code (加入群聊, `groupchat/add_join_way`): customers who scan it join the first
    of its groups with room (WeCom rolls to the next when one is full, and can make a new one);
    its `state` names it on the members who came through it; the welcome is a group welcome
    template (`group_welcome_template/add`) the owners use."""

    __tablename__ = "group_join_way"
    __table_args__ = (UniqueConstraint("channel_account_id", "state"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    name: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(30))
    chat_ids: Mapped[list[Any]] = mapped_column(default=list)     # at most 5, in the order they fill
    auto_create_room: Mapped[bool] = mapped_column(Boolean, default=True)
    room_base_name: Mapped[str | None] = mapped_column(String(40))
    config_id: Mapped[str | None] = mapped_column(String(100))
    qr_code: Mapped[str | None] = mapped_column(String(500))
    welcome: Mapped[str | None] = mapped_column(String(1000))
    # Beside the words: {"image_url"} alone, or a link card {"link_url", "link_title"}, or a mini-program
    # card {"miniprogram": {appid, page, title}} with the picture as its cover.
    welcome_card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    welcome_template_id: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BotSession(Base):
    """What the customer bot remembers of a person between messages, on any channel: the
    lead form in progress (resumable days later), its language, and how often in a row
    it could not answer."""

    __tablename__ = "bot_session"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), unique=True)
    language: Mapped[str | None] = mapped_column(String(8))
    # {"status": "open" | "done" | "left", "fields": {...}, "asking": "phone", "tries": 1, ...}
    form: Mapped[dict[str, Any]] = mapped_column(default=dict)
    misses: Mapped[int] = mapped_column(Integer, default=0)  # questions in a row without an answer
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
