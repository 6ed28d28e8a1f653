"""Opinion alerts: a spike of negative messages on a channel reaches the managers
and the team's group robots, once per spike.

Every `interval` seconds the watcher rebuilds each channel account's hourly
series of scored customer messages (the last 8 days, up to the last completed
hour) and runs `nlp.opinion.spike_alerts`. A spike in the last completed hour
opens an `OpinionAlert` (with its top terms and the negative messages behind
it) and sends the cards; while it lasts the alert is extended, not repeated;
the first quiet hour closes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.texts import say
from crm_core import reps
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, Direction, Message, OpinionAlert
from crm_core.outbox import enqueue_to_handle
from crm_core.ports import OutboundMessage
from crm_core.waiting import wait_any
from nlp.opinion import Scored, hourly, spike_alerts, top_terms

log = logging.getLogger(__name__)

HISTORY = dt.timedelta(days=8)
GROUP_ROBOT_KIND = "dingtalk_group_robot"


class OpinionWatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval: float = 300.0, k: float = 3.0,
                 min_volume: int = 20, on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.interval = interval
        self.k = k
        self.min_volume = min_volume
        self.on_enqueued = on_enqueued

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("opinion watcher: tick failed; trying again next tick")
            await wait_any(stop, timeout=self.interval)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Alerts opened this tick."""
        hour = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
        last_complete = hour - dt.timedelta(hours=1)
        opened = 0
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(
                select(Message.id, Message.created_at, Message.channel_account_id, Message.sentiment,
                       Message.sentiment_score, Message.text)
                .where(Message.direction == Direction.INBOUND, Message.sentiment.is_not(None),
                       Message.created_at >= hour - HISTORY, Message.created_at < hour))).all()
            by_account: dict[int, list] = {}
            for row in rows:
                by_account.setdefault(row.channel_account_id, []).append(row)
            for account_id, messages in sorted(by_account.items()):
                series = hourly((Scored(m.created_at, m.sentiment, m.sentiment_score or 0.0) for m in messages),
                                start=hour - HISTORY, end=hour)
                alerts = spike_alerts(series, k=self.k, min_volume=self.min_volume)
                current = alerts[-1] if alerts and alerts[-1].last_hour == last_complete else None
                existing = await session.scalar(select(OpinionAlert).where(
                    OpinionAlert.dimension == "channel", OpinionAlert.key == str(account_id),
                    OpinionAlert.status == "open"))
                if current is None:
                    if existing is not None:
                        existing.status, existing.closed_at = "closed", utcnow()
                    continue
                in_spike = [m for m in messages if m.created_at.replace(minute=0, second=0, microsecond=0)
                            in set(current.hours)]
                negative = [m for m in in_spike if m.sentiment == "negative"]
                fields = dict(first_hour=current.first_hour, last_hour=current.last_hour,
                              peak_share=round(current.peak_share, 4), baseline=current.baseline_mean,
                              threshold=current.threshold, volume=current.volume,
                              top_terms=[list(t) for t in top_terms((m.text or "" for m in negative), 8)],
                              message_ids=[m.id for m in negative][:200])
                if existing is not None:
                    for name, value in fields.items():
                        setattr(existing, name, value)
                    continue
                alert = OpinionAlert(dimension="channel", key=str(account_id), status="open", **fields)
                session.add(alert)
                await session.flush()
                opened += 1
                await self._announce(alert, session)
        if opened and self.on_enqueued is not None:
            self.on_enqueued()
        return opened

    async def _announce(self, alert: OpinionAlert, session: AsyncSession) -> None:
        account = await session.get(ChannelAccount, int(alert.key))
        channel = f"{account.kind} · {account.name}" if account else alert.key
        terms = ", ".join(term for term, _ in alert.top_terms[:6]) or "-"
        body = (f"{channel}\n{alert.first_hour:%Y-%m-%d %H:00}–{alert.last_hour:%H:59} UTC · "
                f"{alert.volume} msgs · negative {alert.peak_share:.0%} (baseline {alert.baseline:.0%})\n"
                f"terms: {terms}\nmessages: {', '.join(map(str, alert.message_ids[:10]))}"
                f"{' …' if len(alert.message_ids) > 10 else ''}")
        log.warning("opinion alert %s: %s", alert.id, body.replace("\n", " | "))
        for manager in await reps.active_managers_with_handles(db_session=session):
            title = say("card_opinion", manager.language or "zh", channel=channel, share=f"{alert.peak_share:.0%}")
            await reps.notify_user(manager.id, OutboundMessage("", body, title=title),
                                   key=f"opinion:{alert.id}:u{manager.id}", db_session=session)
        robots = (await session.scalars(select(ChannelAccount.id).where(
            ChannelAccount.kind == GROUP_ROBOT_KIND, ChannelAccount.is_active.is_(True)))).all()
        for robot_id in robots:  # team-wide: the group robots post it to their groups
            await enqueue_to_handle(robot_id, "group", OutboundMessage(
                "", body, title=say("card_opinion", "zh", channel=channel, share=f"{alert.peak_share:.0%}")),
                idempotency_key=f"opinion:{alert.id}:robot{robot_id}", db_session=session)
