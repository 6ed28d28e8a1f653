"""Events customers register for: registration, "am I registered?", reminders.

A registration is one row per person and event (registering twice is one
registration; cancelling keeps the row). Reminders go `remind_hours` before the
start to the conversation the person registered in, each at most once (the
hours already sent are recorded with the outbox key in the same transaction).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, catalogues
from crm_core.contacts.reach import spoken_language
from crm_core.db import utcnow
from crm_core.models import Conversation, Event, EventRegistration, User
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage


class EventInvalid(ValueError):
    """An event that cannot be saved; the message says what to fix."""


class EventFull(Exception):
    pass


@dataclass(frozen=True)
class EventSpec:
    names: dict[str, str]
    starts_at: dt.datetime
    location: str | None = None
    capacity: int | None = None
    keywords: Sequence[str] = ()
    remind_hours: Sequence[float] = (24, 1)
    is_active: bool = True


def _check(spec: EventSpec) -> EventSpec:
    names = {lang: (spec.names.get(lang) or "").strip() for lang in ("zh", "en") if (spec.names.get(lang) or "").strip()}
    if not names:
        raise EventInvalid("an event needs a name (names.zh or names.en)")
    if set(spec.names) - {"zh", "en"}:
        raise EventInvalid(f"languages {sorted(set(spec.names) - {'zh', 'en'})} are not supported: use 'zh' / 'en'")
    if spec.starts_at.tzinfo is None:
        raise EventInvalid("starts_at needs a time zone, e.g. 2026-12-01T14:00:00+08:00")
    if spec.capacity is not None and spec.capacity < 1:
        raise EventInvalid("capacity must be at least 1, or left out for no limit")
    hours = sorted({float(h) for h in spec.remind_hours}, reverse=True)
    if any(h <= 0 or h > 24 * 30 for h in hours):
        raise EventInvalid("remind_hours are hours before the start, each between 0 and 720")
    return EventSpec(names, spec.starts_at, (spec.location or "").strip() or None, spec.capacity,
                     [k.strip() for k in spec.keywords if k and k.strip()], hours, spec.is_active)


async def create(spec: EventSpec, *, actor: User | None, db_session: AsyncSession) -> Event:
    spec = _check(spec)
    event = Event(names=spec.names, starts_at=spec.starts_at, location=spec.location, capacity=spec.capacity,
                  keywords=list(spec.keywords), remind_hours=list(spec.remind_hours), is_active=spec.is_active)
    db_session.add(event)
    await db_session.flush()
    await audit.record("event.create", entity_type="event", entity_id=event.id, actor=actor,
                       details={"names": spec.names}, db_session=db_session)
    return event


async def upcoming(*, db_session: AsyncSession, now: dt.datetime | None = None) -> Sequence[Event]:
    return (await db_session.scalars(select(Event).where(Event.is_active.is_(True), Event.starts_at > (now or utcnow()))
                                     .order_by(Event.starts_at, Event.id))).all()


def named_in(text: str, events: Sequence[Event]) -> list[Event]:
    """The events a message names (by a name or a keyword), in the given order."""
    lowered = (text or "").lower()
    found = []
    for event in events:
        words = [*event.names.values(), *event.keywords]
        if any(w and re.search(re.escape(w.lower()), lowered) for w in words):
            found.append(event)
    return found


async def register(event: Event, contact_id: int, *, conversation_id: int | None, message_id: int | None,
                   db_session: AsyncSession) -> tuple[EventRegistration, bool]:
    """(the registration, whether it is new). Raises EventFull when no seat is left."""
    existing = await db_session.scalar(select(EventRegistration).where(
        EventRegistration.event_id == event.id, EventRegistration.contact_id == contact_id))
    if existing is not None and existing.status == "registered":
        return existing, False
    if event.capacity is not None:
        taken = await db_session.scalar(select(func.count()).select_from(EventRegistration).where(
            EventRegistration.event_id == event.id, EventRegistration.status == "registered"))
        if taken >= event.capacity:
            raise EventFull(f"event {event.id} is full ({event.capacity} seats)")
    if existing is not None:  # registered again after cancelling
        existing.status, existing.registered_at, existing.message_id = "registered", utcnow(), message_id
        existing.conversation_id = conversation_id or existing.conversation_id
        return existing, True
    registration = EventRegistration(event_id=event.id, contact_id=contact_id, conversation_id=conversation_id,
                                     message_id=message_id, reminded_hours=[])
    db_session.add(registration)
    await db_session.flush()
    return registration, True


async def registrations_of(contact_id: int, *, db_session: AsyncSession,
                           now: dt.datetime | None = None) -> list[tuple[EventRegistration, Event]]:
    """The person's registrations for events still to come, soonest first."""
    rows = (await db_session.execute(
        select(EventRegistration, Event).join(Event, Event.id == EventRegistration.event_id)
        .where(EventRegistration.contact_id == contact_id, EventRegistration.status == "registered",
               Event.starts_at > (now or utcnow()))
        .order_by(Event.starts_at))).all()
    return [(r, e) for r, e in rows]


REMINDER = catalogues.text("event.reminder")


def describe(event: Event, lang: str, zone: str = "Asia/Shanghai") -> dict[str, str]:
    """The event's name, local start time and place, for a message in `lang`."""
    name = event.names.get(lang) or next(iter(event.names.values()))
    local = event.starts_at.astimezone(ZoneInfo(zone))
    when = local.strftime("%Y-%m-%d %H:%M") + ("" if lang == "zh" else f" ({zone})")
    where = (f"，地点：{event.location}" if lang == "zh" else f" at {event.location}") if event.location else ""
    return {"name": name, "when": when, "where": where}


async def send_reminders(now: dt.datetime, *, db_session: AsyncSession, zone: str = "Asia/Shanghai",
                         limit: int = 500) -> int:
    """Queue the reminders now due, in each person's language; how many."""
    horizon = now + dt.timedelta(days=30)
    rows = (await db_session.execute(
        select(EventRegistration, Event).join(Event, Event.id == EventRegistration.event_id)
        .where(EventRegistration.status == "registered", Event.is_active.is_(True), Event.starts_at > now,
               Event.starts_at <= horizon, EventRegistration.conversation_id.is_not(None))
        .order_by(Event.starts_at, EventRegistration.id).limit(limit)
        .with_for_update(skip_locked=True, of=EventRegistration))).all()
    queued = 0
    for registration, event in rows:
        due = [h for h in event.remind_hours
               if now >= event.starts_at - dt.timedelta(hours=h) and h not in (registration.reminded_hours or [])]
        if not due:
            continue
        conversation = await db_session.get(Conversation, registration.conversation_id)
        if conversation is None:
            continue
        lang = await spoken_language(registration.contact_id, identity_id=conversation.identity_id,
                                     db_session=db_session)
        # Only the nearest due reminder: a registration made an hour before gets one, not two.
        hours = min(due)
        await enqueue_to_conversation(
            conversation, OutboundMessage(conversation.external_thread_id,
                                          REMINDER[lang].format(**describe(event, lang, zone)),
                                          options={"automated": True}),
            idempotency_key=f"event-reminder:{registration.id}:{hours:g}", db_session=db_session)
        registration.reminded_hours = sorted({*(registration.reminded_hours or []), *due})
        queued += 1
    return queued
