"""Opinion alerts: a spike of negative messages, or a product named in complaints,
reaches the reps who own those conversations, their managers and the team's
group robots, once per alert.

At each tick of the hub's scheduler the watcher reads the scored customer messages of the
last 8 days (up to the last completed hour) and slices them:

- `channel`: the channel account;
- `campaign`: the contact's source (a channel QR code's State, a campaign);
- `team`: the owning rep's manager (unassigned conversations are in no team);
- `keyword`: each configured product the message names.

Each slice's hourly series goes through `nlp.opinion.spike_alerts`; each
product's complaints (complaint intent or negative sentiment) also go through
the keyword rule (`rule_alerts`, dimension `keyword_rule`). A spike in the last
completed hour opens an `OpinionAlert` with its top terms and the negative
messages behind it; while it lasts it is extended, not repeated; the first quiet
hour closes it. One burst usually shows in several slices at once: slices are
taken narrowest first, and an alert whose messages are mostly (half or more)
behind an alert already open is recorded as covered by it and sends nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.texts import say
from crm_core import observe
from crm_core.db import utcnow
from crm_core.models import (
    ChannelAccount,
    Contact,
    Conversation,
    Direction,
    Message,
    OpinionAlert,
    Role,
    User,
)
from crm_core.outbox.service import enqueue_to_handle
from crm_core.people import reps
from crm_core.ports import OutboundMessage
from nlp.opinion import Hour, ProductMatcher, Scored, SpikeAlert, hourly, rule_alerts, spike_alerts, top_terms

log = logging.getLogger(__name__)

HISTORY = dt.timedelta(days=8)
GROUP_ROBOT_KIND = "dingtalk_group_robot"
# Narrowest first: the alert that says most about a burst is the one sent.
DIMENSIONS = ("keyword_rule", "keyword", "campaign", "team", "channel")
COVERED_SHARE = 0.5


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


class OpinionWatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, k: float = 3.0,
                 min_volume: int = 20, products: Mapping[str, Sequence[str]] | None = None,
                 rule_min_messages: int = 3, on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.k = k
        self.min_volume = min_volume
        self.products = ProductMatcher(products)
        self.rule_min_messages = rule_min_messages
        self.on_enqueued = on_enqueued

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Alerts opened this tick (covered ones included)."""
        hour = _hour(now or utcnow())
        last_complete = hour - dt.timedelta(hours=1)
        opened = announced = 0
        async with self.sessions() as session, session.begin():
            slices = self._slices(await _scored_messages(session, hour - HISTORY, hour))
            unseen = {(a.dimension, a.key): a for a in (await session.scalars(
                select(OpinionAlert).where(OpinionAlert.status == "open").order_by(OpinionAlert.id))).all()}
            # First every slice's state: open alerts extended or closed, new ones found.
            active: list[OpinionAlert] = []
            found: list[tuple[OpinionAlert, list[Any]]] = []
            for dimension in DIMENSIONS:
                for key, messages in sorted(slices.get(dimension, {}).items()):
                    current = self._current(dimension, messages, hour, last_complete)
                    existing = unseen.pop((dimension, key), None)
                    if current is None:
                        if existing is not None:
                            existing.status, existing.closed_at = "closed", utcnow()
                        continue
                    behind = self._behind(dimension, messages, current)
                    fields = dict(first_hour=current.first_hour, last_hour=current.last_hour,
                                  peak_share=round(current.peak_share, 4), baseline=current.baseline_mean,
                                  threshold=current.threshold, volume=current.volume,
                                  top_terms=[list(t) for t in top_terms((m.text or "" for m in behind), 8)],
                                  message_ids=[m.id for m in behind][:200])
                    if existing is not None:
                        for name, value in fields.items():
                            setattr(existing, name, value)
                        active.append(existing)
                    else:
                        found.append((OpinionAlert(dimension=dimension, key=key, status="open", **fields), behind))
            for stale in unseen.values():  # a slice with no messages left (a product no longer configured)
                stale.status, stale.closed_at = "closed", utcnow()
            # Then the new ones, narrowest first; one mostly behind an open alert is not sent again.
            for alert, behind in found:
                alert.covered_by_id = self._covering(alert, active)
                session.add(alert)
                await session.flush()
                active.append(alert)
                opened += 1
                observe.observer.opinion_alert(alert.dimension)
                if alert.covered_by_id is None:
                    await self._announce(alert, behind, session)
                    announced += 1
                else:
                    log.info("opinion alert %s (%s %s) is covered by alert %s; not sent again",
                             alert.id, alert.dimension, alert.key, alert.covered_by_id)
        if announced and self.on_enqueued is not None:
            self.on_enqueued()
        return opened

    async def series(self, dimension: str, key: str, *, hours: int = 7 * 24,
                     now: dt.datetime | None = None) -> tuple[list[Hour], list[tuple[str, int]]]:
        """One slice's hourly series up to the current hour (included, partial), and the top
        terms of its negative messages (complaints for `keyword_rule`) in that time."""
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r}; one of {', '.join(DIMENSIONS)}")
        end = _hour(now or utcnow()) + dt.timedelta(hours=1)
        start = end - dt.timedelta(hours=hours)
        async with self.sessions() as session:
            messages = self._slices(await _scored_messages(session, start, end)).get(dimension, {}).get(key, [])
        negative = (m.text or "" for m in messages if _counts_against(dimension, m))
        return _series(dimension, messages, start, end), top_terms(negative, 10)

    def _slices(self, rows: Sequence[Any]) -> dict[str, dict[str, list[Any]]]:
        slices: dict[str, dict[str, list[Any]]] = {}

        def put(dimension: str, key: object, row: Any) -> None:
            slices.setdefault(dimension, {}).setdefault(str(key), []).append(row)

        for row in rows:
            put("channel", row.channel_account_id, row)
            if row.source:
                put("campaign", row.source, row)
            if row.assignee_user_id is not None:
                put("team", row.assignee_user_id if row.owner_role == Role.MANAGER or row.manager_user_id is None
                    else row.manager_user_id, row)
            for product in self.products.products(row.text):
                put("keyword", product, row)
                put("keyword_rule", product, row)
        return slices

    def _current(self, dimension: str, messages: list[Any], hour: dt.datetime,
                 last_complete: dt.datetime) -> SpikeAlert | None:
        """The slice's alert if it covers the last completed hour."""
        series = _series(dimension, messages, hour - HISTORY, hour)
        alerts = rule_alerts(series, min_messages=self.rule_min_messages) if dimension == "keyword_rule" \
            else spike_alerts(series, k=self.k, min_volume=self.min_volume)
        return alerts[-1] if alerts and alerts[-1].last_hour == last_complete else None

    @staticmethod
    def _behind(dimension: str, messages: list[Any], alert: SpikeAlert) -> list[Any]:
        hours = set(alert.hours)
        return [m for m in messages if _hour(m.created_at) in hours and _counts_against(dimension, m)]

    @staticmethod
    def _covering(alert: OpinionAlert, others: Sequence[OpinionAlert]) -> int | None:
        mine = set(alert.message_ids)
        for other in others:
            if mine and len(mine & set(other.message_ids)) >= COVERED_SHARE * len(mine):
                return other.covered_by_id or other.id
        return None

    async def _announce(self, alert: OpinionAlert, behind: list[Any], session: AsyncSession) -> None:
        where = await self._describe(alert, session)
        terms = ", ".join(term for term, _ in alert.top_terms[:6]) or "-"
        measure = (f"{alert.volume} mentions · {len(alert.message_ids)} complaints" if alert.dimension == "keyword_rule"
                   else f"{alert.volume} msgs · negative {alert.peak_share:.0%} (baseline {alert.baseline:.0%})")
        body = (f"{where}\n{alert.first_hour:%Y-%m-%d %H:00}–{alert.last_hour:%H:59} UTC · {measure}\n"
                f"terms: {terms}\nmessages: {', '.join(map(str, alert.message_ids[:10]))}"
                f"{' …' if len(alert.message_ids) > 10 else ''}")
        log.warning("opinion alert %s: %s", alert.id, body.replace("\n", " | "))
        share = f"{alert.peak_share:.0%}"
        for user in await self._recipients(alert, behind, session):
            title = say("card_opinion", user.language or "zh", channel=where, share=share)
            await reps.notify_user(user.id, OutboundMessage("", body, title=title),
                                   key=f"opinion:{alert.id}:u{user.id}", db_session=session)
        robots = (await session.scalars(select(ChannelAccount.id).where(
            ChannelAccount.kind == GROUP_ROBOT_KIND, ChannelAccount.is_active.is_(True)))).all()
        for robot_id in robots:  # team-wide: the group robots post it to their groups
            await enqueue_to_handle(robot_id, "group", OutboundMessage(
                "", body, title=say("card_opinion", "zh", channel=where, share=share)),
                idempotency_key=f"opinion:{alert.id}:robot{robot_id}", db_session=session)

    @staticmethod
    async def _recipients(alert: OpinionAlert, behind: list[Any], session: AsyncSession) -> list[User]:
        """The reps owning the conversations behind it, their managers, and every manager
        when some of those conversations have no owner (nobody else would hear)."""
        owners = {m.assignee_user_id for m in behind if m.assignee_user_id is not None}
        managers = {m.manager_user_id for m in behind if m.manager_user_id is not None}
        if alert.dimension == "team":
            managers.add(int(alert.key))
        wanted = owners | managers
        everyone = any(m.assignee_user_id is None for m in behind)
        chosen = [u for u in await reps.active_managers_with_handles(db_session=session)
                  if everyone or u.id in wanted]
        chosen += [u for u in await reps.active_reps_with_handles(db_session=session) if u.id in wanted]
        return chosen

    @staticmethod
    async def _describe(alert: OpinionAlert, session: AsyncSession) -> str:
        if alert.dimension == "channel":
            account = await session.get(ChannelAccount, int(alert.key))
            return f"{account.kind} · {account.name}" if account else f"channel {alert.key}"
        if alert.dimension == "team":
            manager = await session.get(User, int(alert.key))
            return f"team {manager.display_name or manager.username}" if manager else f"team {alert.key}"
        label = {"campaign": "campaign", "keyword": "product", "keyword_rule": "product complaints"}[alert.dimension]
        return f"{label} {alert.key}"


async def _scored_messages(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> Sequence[Any]:
    """Scored customer messages in [start, end) with what slicing needs: owner, team, campaign."""
    return (await session.execute(
        select(Message.id, Message.created_at, Message.channel_account_id, Message.sentiment,
               Message.sentiment_score, Message.text, Message.intents, Conversation.assignee_user_id,
               Contact.source, User.role.label("owner_role"), User.manager_user_id)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .join(Contact, Conversation.contact_id == Contact.id)
        .outerjoin(User, Conversation.assignee_user_id == User.id)
        .where(Message.direction == Direction.INBOUND, Message.sentiment.is_not(None),
               Message.created_at >= start, Message.created_at < end))).all()


def _counts_against(dimension: str, message: Any) -> bool:
    """Negative, or for a keyword rule a complaint (complaint intent or negative sentiment)."""
    if dimension == "keyword_rule":
        return message.sentiment == "negative" or "complaint" in (message.intents or [])
    return message.sentiment == "negative"


def _series(dimension: str, messages: Sequence[Any], start: dt.datetime, end: dt.datetime) -> list[Hour]:
    return hourly((Scored(m.created_at, "negative" if _counts_against(dimension, m) else "other",
                          m.sentiment_score or 0.0) for m in messages), start=start, end=end)
