"""Nurture campaigns, their steps and enrolments; events people register for."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, utcnow
from crm_core.models.common import Id, stored_enum


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class Campaign(Base):
    """A nurture campaign: who (audience), what and when (steps), and when to stop (exits)."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[CampaignStatus] = mapped_column(stored_enum(CampaignStatus), default=CampaignStatus.DRAFT)
    # A segment: {"tags": [...], "stages": [...], "sources": [...], "channels": [...],
    # "sentiment": "negative", "min_score": 10, "consent": true}; see crm_core.nurture.Audience.
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Besides opt-out and manual exits, which always apply: "reply", "conversion".
    exits: Mapped[list[Any]] = mapped_column(default=list)
    # This campaign's own limits, under the hub-wide marketing cap: {"per_contact": {"messages": 2,
    # "days": 7}, "per_day": 500}; see crm_core.nurture.CampaignCaps.
    caps: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignStep(Base):
    """One message of a campaign: on which channel, what text, when, and on what condition."""

    __tablename__ = "campaign_step"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, 3...
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))  # a channel kind; NULL: the contact's latest
    template: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"zh": "...", "en": "..."}
    # Other wording where the contact is reached on one channel: {"email": {"zh": ..., "en": ...}}.
    channel_templates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=0)
    delay_from: Mapped[str] = mapped_column(String(16), default="previous")  # previous / enrolment
    send_at: Mapped[dt.datetime | None]  # an absolute date instead of a delay
    # Local send window in the contact's time zone ("09:00", "18:00"); NULL: any time.
    window_start: Mapped[str | None] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    # {"replied": false} / {"clicked": true} / {"stages": [...]} / {"tag": "vip"}: checked when due.
    condition: Mapped[dict[str, Any] | None]
    # Where to go when the condition is not met: a step position, or NULL: exit the campaign.
    else_position: Mapped[int | None] = mapped_column(Integer)


class EnrolmentStatus(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"


class Enrolment(Base):
    """A contact's way through a campaign: the next step and when it is due."""

    __tablename__ = "enrolment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "rotation"),
        # In the planner's claim order, id included: a campaign enrols its audience at one instant,
        # so the due time ties and the id decides (SQLite's indexes end in the rowid; PostgreSQL's don't).
        Index("ix_enrolment_due", "status", "next_due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    # Enrolled again after finishing (a repeating campaign): 2, 3...
    rotation: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[EnrolmentStatus] = mapped_column(stored_enum(EnrolmentStatus), default=EnrolmentStatus.ACTIVE)
    next_position: Mapped[int | None] = mapped_column(Integer)
    next_due_at: Mapped[dt.datetime | None]
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_step_at: Mapped[dt.datetime | None]
    # Why the last step did not send, or why the contact left: visible in the API.
    note: Mapped[str | None] = mapped_column(String(500))
    exit_reason: Mapped[str | None] = mapped_column(String(32))  # replied / converted / opted_out / manual...
    exited_at: Mapped[dt.datetime | None]


class Event(Base):
    """Something customers register for (a launch, a webinar, a trade-fair visit)."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)        # {"zh": "...", "en": "..."}
    starts_at: Mapped[dt.datetime]
    location: Mapped[str | None] = mapped_column(String(300))
    capacity: Mapped[int | None] = mapped_column(Integer)               # None: no limit
    # Words that name it in a message ("X200", "发布会"), beside its names.
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    remind_hours: Mapped[list[Any]] = mapped_column(default=lambda: [24, 1])  # reminders this long before
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventRegistration(Base):
    """A person registered for an event, once; cancelled ones are kept."""

    __tablename__ = "event_registration"
    __table_args__ = (UniqueConstraint("event_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    status: Mapped[str] = mapped_column(String(16), default="registered")  # registered / cancelled
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(Id)                      # the customer's own words
    reminded_hours: Mapped[list[Any]] = mapped_column(default=list)         # reminders already queued


class ContactWay(Base):
    """A WeCom 渠道活码 (contact way): a QR code customers add a rep with. WeCom gives the code
    (`config_id`, the `qr_code` image) and hands each customer to one of the users on it; the hub
    keeps who should be on it (the rota: reps, or a team's reps, within working hours and under
    a daily cap, else the fallback), and what follows an add through it: the `state` names the
    code in the add event, its tags are applied, the customer is enrolled in its campaign and
    greeted with its welcome."""

    __tablename__ = "contact_way"
    __table_args__ = (UniqueConstraint("channel_account_id", "state"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(30))                   # WeCom's limit: 30 characters
    config_id: Mapped[str | None] = mapped_column(String(100))       # WeCom's, once created there
    qr_code: Mapped[str | None] = mapped_column(String(500))         # the QR image WeCom serves
    # The rota: {"users": [user ids], "team_id": id or null, "daily_cap": n or null,
    # "fallback_user_id": id or null, "hours": {"start": "09:00", "end": "18:00", "zone": "..."} or null}
    rota: Mapped[dict[str, Any]] = mapped_column(default=dict)
    on_code: Mapped[list[Any]] = mapped_column(default=list)         # WeCom userids on the code now
    tags: Mapped[list[Any]] = mapped_column(default=list)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    welcome: Mapped[dict[str, Any]] = mapped_column(default=dict)    # {"zh", "en", "image_url", "link_url"}
    skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContactWayEvent(Base):
    """A customer added (or dropped) a rep they had added through a contact way: its counts by day."""

    __tablename__ = "contact_way_event"
    __table_args__ = (Index("ix_contact_way_event_way_at", "contact_way_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_way_id: Mapped[int] = mapped_column(ForeignKey("contact_way.id"))
    kind: Mapped[str] = mapped_column(String(16))                    # added / lost
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MassSend(Base):
    """A one-off 群发 to WeCom customers: one task per rep (`add_msg_template`, chat_type single)
    that the rep confirms in WeCom; what became of each is read back (crm_core/campaigns/mass_sends.py).
    Those made in WeCom itself (its console, or a rep's own) are found in WeCom's list and kept too:
    they count toward a customer's 群发 of the month."""

    __tablename__ = "mass_send"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    name: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(String(4000))
    chat_type: Mapped[str] = mapped_column(String(16), default="single")  # single: customers; group: their groups
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)     # {"tags": [...], "user_ids": [...]}
    # Customers left out before any task was made, with why: {external_userid: "over_limit"}.
    skipped: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # hub (sent from here) / wecom (the company's, made in WeCom's console) / personal (a rep's own)
    origin: Mapped[str] = mapped_column(String(16), default="hub")
    creator: Mapped[str | None] = mapped_column(String(64))  # who made it in WeCom (their userid), when known
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MassSendTask(Base):
    """One rep's part of a mass send: the WeCom task, whether the rep sent it, and per customer
    what WeCom says (0 waiting, 1 sent, 2 not a contact any more, 3 over WeCom's limit)."""

    __tablename__ = "mass_send_task"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mass_send_id: Mapped[int] = mapped_column(ForeignKey("mass_send.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    sender_userid: Mapped[str] = mapped_column(String(200))
    msgid: Mapped[str | None] = mapped_column(String(200), index=True)  # WeCom's, once the task was made
    targets: Mapped[dict[str, Any]] = mapped_column(default=dict)     # external_userid -> status (above)
    # pending / creating (a process is making it in WeCom) / waiting / sent / failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(300))
    checked_at: Mapped[dt.datetime | None]


class Moment(Base):
    """A WeCom moments (朋友圈) post in their customers' moments: made here as a task for reps to
    publish (`add_moment_task`, answered later by job id), or found in WeCom's list of the
    company's posts (`get_moment_list`: posted in WeCom's console, or a rep's own); then followed:
    which reps published it, and how many customers each reached, liked and commented on it."""

    __tablename__ = "moment"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"))
    text: Mapped[str] = mapped_column(String(2000))
    link_url: Mapped[str | None] = mapped_column(String(500))
    link_title: Mapped[str | None] = mapped_column(String(100))
    image_urls: Mapped[list[Any]] = mapped_column(default=list)    # up to 9 pictures, or the link's cover
    senders: Mapped[list[Any]] = mapped_column(default=list)       # the reps' WeCom userids; empty: everyone
    tags: Mapped[list[Any]] = mapped_column(default=list)          # customers who see it: these corp tags; empty: all
    jobid: Mapped[str | None] = mapped_column(String(200))
    moment_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # hub (posted here) / wecom (the company's, posted in WeCom's console) / personal (a rep's own post)
    origin: Mapped[str] = mapped_column(String(16), default="hub")
    creator: Mapped[str | None] = mapped_column(String(64))         # a personal post's rep (WeCom userid)
    # Each publishing rep's userid -> {"customers": who can see it, "likes", "comments"}, read hourly
    reach: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reach_at: Mapped[dt.datetime | None]
    # pending / making (a process is asking WeCom) / creating (WeCom makes it) / created / failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(300))
    checked_at: Mapped[dt.datetime | None]
    published: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rep's userid -> published (bool)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
