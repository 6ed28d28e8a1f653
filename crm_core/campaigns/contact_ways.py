"""WeCom contact ways (渠道活码): QR codes customers add a rep with, and what follows an add.

WeCom holds the code (`externalcontact/add_contact_way`, type 2: several users) and hands each
customer who scans it to one of the users on it. The hub decides who should be on it, the rota:
the chosen reps (or a team's reps) with a WeCom handle on the app, inside the code's working
hours, under its daily cap of adds per rep; when nobody is left, the fallback rep. The hub's
scheduler compares that with who is on the code (`on_code`) and updates WeCom where they differ.

The add event names the code by its `state`: the customer's source is the code's name, its tags
are put on them (audited with the code as the rule), they are enrolled in its campaign, greeted
with its welcome, and the add is counted for the code; a customer who later drops the rep they
added through it is counted as lost.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.audience import enrol_contacts
from crm_core.contacts.tags import add_by_rule
from crm_core.db import utcnow
from crm_core.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ContactWay,
    ContactWayEvent,
    Role,
    User,
    UserHandle,
)

STATE = re.compile(r"^[0-9A-Za-z_-]{1,30}$")  # WeCom: at most 30 characters; kept plain for every client
HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_USERS = 100                                 # WeCom: users on one multi-person code
MAX_TAGS = 20


class ContactWayInvalid(ValueError):
    """What is wrong with a contact way, said so it can be fixed."""


@dataclass(frozen=True)
class Rota:
    users: tuple[int, ...] = ()
    team_id: int | None = None
    daily_cap: int | None = None
    fallback_user_id: int | None = None
    hours: tuple[str, str, str] | None = None  # start, end, zone
    round_robin: bool = False  # one rep on the code at a time, the next after each add

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Rota:
        hours = raw.get("hours") or None
        return cls(users=tuple(int(u) for u in raw.get("users") or ()), team_id=raw.get("team_id"),
                   daily_cap=raw.get("daily_cap"), fallback_user_id=raw.get("fallback_user_id"),
                   hours=(hours["start"], hours["end"], hours.get("zone") or "Asia/Shanghai") if hours else None,
                   round_robin=bool(raw.get("round_robin")))

    def to_dict(self) -> dict[str, Any]:
        return {"users": list(self.users), "team_id": self.team_id, "daily_cap": self.daily_cap,
                "fallback_user_id": self.fallback_user_id, "round_robin": self.round_robin,
                "hours": {"start": self.hours[0], "end": self.hours[1], "zone": self.hours[2]} if self.hours else None}


async def check(account: ChannelAccount | None, name: str, state: str, rota: Rota, tags: list[str],
                campaign_id: int | None, *, db_session: AsyncSession, way_id: int | None = None) -> None:
    """ContactWayInvalid unless the code can be made: a WeCom account, a free state, reps who
    exist and are reached on that app, a campaign that exists."""
    if account is None or account.kind != "wecom":
        raise ContactWayInvalid("contact ways are made on a WeCom app's channel account (kind wecom)")
    if not name.strip():
        raise ContactWayInvalid("name: say what the code is for (展会2026 海报)")
    if not STATE.match(state):
        raise ContactWayInvalid(f"state {state!r}: 1 to 30 letters, digits, _ or - (WeCom sends it back on each add)")
    taken = await db_session.scalar(select(ContactWay.id).where(
        ContactWay.channel_account_id == account.id, ContactWay.state == state, ContactWay.id != (way_id or 0)))
    if taken is not None:
        raise ContactWayInvalid(f"state {state!r} is used by contact way {taken}: choose another")
    if not rota.users and rota.team_id is None:
        raise ContactWayInvalid("rota: choose the reps behind the code, or a team")
    if len(rota.users) > MAX_USERS:
        raise ContactWayInvalid(f"rota: at most {MAX_USERS} reps on one code (WeCom's limit)")
    if rota.daily_cap is not None and not 1 <= rota.daily_cap <= 10000:
        raise ContactWayInvalid("daily cap: 1 to 10000 adds per rep a day, or none")
    if rota.hours is not None:
        start, end, zone = rota.hours
        if not (HOURS.match(start) and HOURS.match(end)) or start == end:
            raise ContactWayInvalid("working hours: two different times as HH:MM, like 09:00 and 18:00")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ContactWayInvalid(f"working hours: unknown time zone {zone!r} (like Asia/Shanghai)") from None
    wanted = {*rota.users, *([rota.fallback_user_id] if rota.fallback_user_id else [])}
    if wanted:
        reached = set((await db_session.scalars(
            select(UserHandle.user_id).join(User, User.id == UserHandle.user_id)
            .where(UserHandle.user_id.in_(wanted), UserHandle.channel_account_id == account.id,
                   User.is_active.is_(True)))).all())
        if wanted - reached:
            raise ContactWayInvalid(f"users {sorted(wanted - reached)} are not active members of this WeCom app: "
                                    "link their WeCom userid first")
    if len(tags) > MAX_TAGS or any(not tag.strip() or len(tag) > 50 for tag in tags):
        raise ContactWayInvalid(f"tags: at most {MAX_TAGS}, each 1 to 50 characters")
    if campaign_id is not None and await db_session.get(Campaign, campaign_id) is None:
        raise ContactWayInvalid(f"campaign {campaign_id} does not exist")


async def rota_users(way: ContactWay, *, db_session: AsyncSession, now: dt.datetime | None = None) -> list[str]:
    """The WeCom userids who should be on the code now, in a stable order."""
    rota = Rota.from_dict(way.rota or {})
    now = now or utcnow()
    query = select(User.id, UserHandle.external_id).join(UserHandle, UserHandle.user_id == User.id).where(
        UserHandle.channel_account_id == way.channel_account_id, User.is_active.is_(True))
    chosen = User.id.in_(rota.users) if rota.team_id is None else (
        User.id.in_(rota.users) | ((User.team_id == rota.team_id) & (User.role == Role.REP)))
    candidates = dict((await db_session.execute(query.where(chosen).order_by(User.id, UserHandle.id))).all())
    if rota.hours is not None:
        start, end, zone = rota.hours
        local = now.astimezone(ZoneInfo(zone)).strftime("%H:%M")
        inside = start <= local < end if start < end else (local >= start or local < end)
        if not inside:
            candidates = {}
    if candidates and rota.daily_cap is not None:
        counts = await adds_today(way, db_session=db_session, now=now)
        candidates = {user: userid for user, userid in candidates.items() if counts.get(user, 0) < rota.daily_cap}
    if not candidates and rota.fallback_user_id is not None:
        fallback = (await db_session.execute(query.where(User.id == rota.fallback_user_id)
                                             .order_by(UserHandle.id).limit(1))).first()
        candidates = {fallback[0]: fallback[1]} if fallback else {}
    if rota.round_robin and len(candidates) > 1:
        # One at a time: the rep after the one the last customer added, in the rota's order.
        last = await db_session.scalar(select(ContactWayEvent.user_id).where(
            ContactWayEvent.contact_way_id == way.id, ContactWayEvent.kind == "added")
            .order_by(ContactWayEvent.id.desc()).limit(1))
        order = list(candidates)
        turn = (order.index(last) + 1) % len(order) if last in candidates else 0
        candidates = {order[turn]: candidates[order[turn]]}
    return list(dict.fromkeys(candidates.values()))


async def adds_today(way: ContactWay, *, db_session: AsyncSession, now: dt.datetime | None = None) -> dict[int, int]:
    """Adds through the code per rep since midnight in the rota's time zone."""
    rota = Rota.from_dict(way.rota or {})
    zone = ZoneInfo(rota.hours[2] if rota.hours else "Asia/Shanghai")
    local = (now or utcnow()).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await db_session.execute(
        select(ContactWayEvent.user_id, func.count()).where(
            ContactWayEvent.contact_way_id == way.id, ContactWayEvent.kind == "added",
            ContactWayEvent.at >= midnight.astimezone(dt.UTC)).group_by(ContactWayEvent.user_id))
    return {user: count for user, count in rows.all() if user is not None}


async def arrived(account_id: int, state: str | None, contact_id: int, user_id: int | None, *,
                  db_session: AsyncSession) -> ContactWay | None:
    """A customer added `user_id` through the code with `state`: counted, tagged, enrolled. The
    code (for its welcome), or None where no code of the hub has that state."""
    if not state:
        return None
    way = await db_session.scalar(select(ContactWay).where(
        ContactWay.channel_account_id == account_id, ContactWay.state == state))
    if way is None:
        return None
    db_session.add(ContactWayEvent(contact_way_id=way.id, kind="added", contact_id=contact_id, user_id=user_id))
    await add_by_rule(contact_id, list(way.tags or []), f"contact way {way.id} ({way.name})", db_session=db_session)
    if way.campaign_id is not None:
        campaign = await db_session.get(Campaign, way.campaign_id)
        if campaign is not None and campaign.status == CampaignStatus.ACTIVE:
            await enrol_contacts(campaign, [contact_id], db_session=db_session)
    await db_session.flush()
    return way


async def left(account_id: int, contact_id: int, user_id: int | None, *, db_session: AsyncSession) -> None:
    """The customer dropped (or was dropped by) the rep they added through a code: a loss for it."""
    came = await db_session.scalar(
        select(ContactWayEvent).join(ContactWay, ContactWay.id == ContactWayEvent.contact_way_id)
        .where(ContactWay.channel_account_id == account_id, ContactWayEvent.contact_id == contact_id,
               ContactWayEvent.kind == "added", ContactWayEvent.user_id.is_(None) if user_id is None
               else ContactWayEvent.user_id == user_id)
        .order_by(ContactWayEvent.at.desc(), ContactWayEvent.id.desc()).limit(1))
    if came is not None:
        db_session.add(ContactWayEvent(contact_way_id=came.contact_way_id, kind="lost", contact_id=contact_id,
                                       user_id=user_id))
        await db_session.flush()


async def daily_counts(way_id: int, *, days: int = 30, zone: str = "Asia/Shanghai", db_session: AsyncSession,
                       now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Added, lost and net by local day, oldest first, for the last `days` days."""
    tz = ZoneInfo(zone)
    today = (now or utcnow()).astimezone(tz).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC)
    rows = await db_session.execute(select(ContactWayEvent.kind, ContactWayEvent.at).where(
        ContactWayEvent.contact_way_id == way_id, ContactWayEvent.at >= since))
    by_day = {first + dt.timedelta(days=n): {"added": 0, "lost": 0} for n in range(days)}
    for kind, at in rows.all():
        day = at.astimezone(tz).date()
        if day in by_day and kind in ("added", "lost"):
            by_day[day][kind] += 1
    return [{"day": day.isoformat(), **counts, "net": counts["added"] - counts["lost"]}
            for day, counts in by_day.items()]
