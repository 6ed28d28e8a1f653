"""When a marketing message may go out: the frequency cap across channels and the
contact's quiet hours, decided at send time inside the transaction that marks the
send, under a lock on the contact row, so two dispatchers sending to the same
person on two channels cannot both pass the cap.

A send held back is not lost: it goes back to pending with the time it may go
and the reason, visible in the API ("held back: ... ; rescheduled to ...").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crm_core.db import utcnow
from crm_core.models import Contact, Identity, MessagePurpose, OutboxMessage, OutboxStatus
from crm_core.sql import among

# Sends that count against the cap: gone out, or maybe gone out.
COUNTED = (OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.IN_DOUBT)


@dataclass(frozen=True)
class MarketingRules:
    cap_count: int = 2           # at most this many marketing messages per contact ...
    cap_days: float = 7.0        # ... in this many days, across every channel
    # Local times in the contact's time zone; None: no quiet hours (the hub's settings
    # default to 21:00-08:00).
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    default_timezone: str = "Asia/Shanghai"

    @staticmethod
    def parse_quiet_hours(text: str) -> tuple[dt.time | None, dt.time | None]:
        """"21:00-08:00" -> (21:00, 08:00); "" -> no quiet hours."""
        if not text.strip():
            return None, None
        try:
            start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise ValueError(f"quiet hours {text!r}: expected HH:MM-HH:MM, like 21:00-08:00") from None
        if start == end:
            raise ValueError(f"quiet hours {text!r}: start and end are the same")
        return start, end

    def zone(self, name: str | None) -> ZoneInfo:
        return zone_named(name, self.default_timezone)

    def quiet_until(self, now: dt.datetime, timezone: str | None) -> dt.datetime | None:
        """The end of the quiet hours `now` falls in (UTC), or None if it is not quiet."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        return interval_end(now, self.zone(timezone), self.quiet_start, self.quiet_end)


def zone_named(name: str | None, default: str) -> ZoneInfo:
    """A contact's time zone, else the default; an unknown name is passed over, UTC last."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def interval_end(now: dt.datetime, zone: ZoneInfo, start: dt.time, end: dt.time) -> dt.datetime | None:
    """If `now` falls in the daily local interval [start, end) (across midnight when end is
    earlier, as 21:00-08:00), when that interval ends, in UTC; None if it does not."""
    local = now.astimezone(zone)
    at = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 12:00-14:00
        inside, end_day = start <= at < end, local.date()
    else:  # across midnight, e.g. 21:00-08:00
        inside = at >= start or at < end
        end_day = local.date() + dt.timedelta(days=1) if at >= start else local.date()
    if not inside:
        return None
    return dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(dt.UTC)


_CONTACTS, _IDENTITIES, _OUTBOX = Contact.__table__, Identity.__table__, OutboxMessage.__table__
_THESE_CONTACTS = among(_CONTACTS.c.id, name="contact_ids")
_LOCK_IN_ORDER = select(_CONTACTS.c.id).where(_THESE_CONTACTS).order_by(_CONTACTS.c.id).with_for_update()
# The write that takes the lock answers with the contacts' time zones.
_TOUCH = (_CONTACTS.update().where(_THESE_CONTACTS).values(updated_at=bindparam("now"))
          .returning(_CONTACTS.c.id, _CONTACTS.c.timezone))
_WENT_AT = func.coalesce(_OUTBOX.c.sent_at, _OUTBOX.c.claimed_at)
_IDENTITIES_OF = select(_IDENTITIES.c.id, _IDENTITIES.c.contact_id).where(
    among(_IDENTITIES.c.contact_id, name="contact_ids"))
# The contacts' marketing sends, read by their identities (`identity_id IN (ids)`, asked first), and
# only then narrowed to the counted ones (a MATERIALIZED CTE). Led by the status, SQLite, and
# PostgreSQL while its statistics lagged the campaign (autovacuum had not analysed the table),
# read every marketing send ever made for each group of sends, and a campaign slowed as it went.
_THEIRS = (select(_OUTBOX.c.id, _OUTBOX.c.identity_id, _OUTBOX.c.status, _WENT_AT.label("went_at"))
           .where(among(_OUTBOX.c.identity_id, name="identity_ids"),
                  _OUTBOX.c.purpose == MessagePurpose.MARKETING)
           .cte("their_marketing").prefix_with("MATERIALIZED"))
_RECENT = (select(_IDENTITIES.c.contact_id, _THEIRS.c.went_at)
           .join(_IDENTITIES, _IDENTITIES.c.id == _THEIRS.c.identity_id)
           .where(_THEIRS.c.status.in_(COUNTED), ~among(_THEIRS.c.id, name="row_ids"),
                  _THEIRS.c.went_at >= bindparam("since"))
           .order_by(_THEIRS.c.went_at))


async def identities_of(contact_ids: Sequence[int], db: AsyncSession | AsyncConnection) -> dict[int, int]:
    """Identity id -> contact id, of these contacts' identities: asked first, so that what hangs off
    the identities (their sends) is then read by them whatever the database's statistics say."""
    return dict((await db.execute(_IDENTITIES_OF, {"contact_ids": list(contact_ids)})).all())


async def hold_back(sends: Sequence[tuple[int, int]], rules: MarketingRules, *,
                    db_session: AsyncSession) -> dict[int, tuple[dt.datetime, str]]:
    """Inside the transaction that would mark these outbox rows sending, given as
    (row id, contact id) in the order they would go: lock their contacts, then for
    each row that must wait, (time it may go, reason). The others go, and count
    against the cap of the rows after them."""
    if not sends:
        return {}
    now = utcnow()
    contact_ids = sorted({contact_id for _, contact_id in sends})
    connection = await db_session.connection()  # plain rows: no contact is read or changed as an object
    # The lock: every dispatcher deciding for a contact writes its row first, so they
    # take turns (row locks on PostgreSQL, taken in id order so two batches never wait
    # on each other in a cycle; the write lock on SQLite).
    if connection.dialect.name == "postgresql":
        await connection.execute(_LOCK_IN_ORDER, {"contact_ids": contact_ids})
    timezones = dict((await connection.execute(_TOUCH, {"contact_ids": contact_ids, "now": now})).all())
    recent: dict[int, list[dt.datetime]] = {contact_id: [] for contact_id in contact_ids}
    identity_ids = list(await identities_of(contact_ids, connection))
    for contact_id, at in (await connection.execute(_RECENT, {
            "identity_ids": identity_ids, "row_ids": [row_id for row_id, _ in sends],
            "since": now - dt.timedelta(days=rules.cap_days)})).all():
        recent[contact_id].append(at)

    held: dict[int, tuple[dt.datetime, str]] = {}
    for row_id, contact_id in sends:
        quiet_end = rules.quiet_until(now, timezones.get(contact_id))
        if quiet_end is not None:
            zone = rules.zone(timezones.get(contact_id)).key
            held[row_id] = quiet_end, (f"held back: quiet hours {rules.quiet_start:%H:%M}-{rules.quiet_end:%H:%M} "
                                       f"{zone}; rescheduled to {quiet_end:%Y-%m-%d %H:%M} UTC")
            continue
        went = recent[contact_id]
        if len(went) < rules.cap_count:
            went.append(now)  # this one goes: it counts for the next row to the same person
            continue
        # The oldest counted send leaving the window frees a place.
        free_at = sorted(went)[len(went) - rules.cap_count] + dt.timedelta(days=rules.cap_days)
        held[row_id] = free_at, (f"held back: frequency cap of {rules.cap_count} marketing messages per "
                                 f"{rules.cap_days:g} days across channels; rescheduled to "
                                 f"{free_at:%Y-%m-%d %H:%M} UTC")
    return held
