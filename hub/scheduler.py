"""The periodic jobs of a worker process, run by APScheduler.

The scheduler only says when to look; the database says what is due. Jobs keep
no state of their own (APScheduler's default in-memory job store is enough), so
a restart loses nothing, and every job is safe to run in several processes at
once: planner batches are taken with SKIP LOCKED, reminders and alerts are marked
once, every send has an idempotency key.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub import live_settings, metrics
from hub.context import Hub

log = logging.getLogger(__name__)


def build_scheduler(hub: Hub) -> AsyncIOScheduler:
    settings = hub.settings
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
        "coalesce": True,          # ticks missed while busy or asleep run once, not in a burst
        "max_instances": 1,        # a slow tick is never overlapped by the next
        "misfire_grace_time": None,
    })

    def every(seconds: float, name: str, job: Callable[[], Awaitable[Any]], *, at_start: bool = True) -> None:
        # Frequent jobs also run right after start (work due while the hub was down: nurture
        # sends, reminders); the others, and the WeCom operations that only follow work WeCom
        # holds (`at_start=False`), at their first interval, so a starting hub is not a burst of
        # jobs beside its first customers. (next_run_time=None would add the job paused.)
        extra = {"next_run_time": _soon()} if seconds <= 60 and at_start else {}
        scheduler.add_job(_logged(name, job), IntervalTrigger(seconds=seconds), id=name, name=name, **extra)

    every(settings.nurture_plan_seconds, "nurture-planner", hub.nurture.run_until_idle)
    every(settings.nurture_audience_minutes * 60, "nurture-audience", hub.nurture_audiences)
    every(settings.sla_check_seconds, "sla-reminders", hub.sla.run_once)
    every(settings.sla_check_seconds, "lead-first-response", hub.lead_sla.run_once)
    every(settings.opinion_check_seconds, "opinion-watch", hub.opinion.run_once)
    every(60, "event-reminders", hub.event_reminders)
    every(60, "task-reminders", hub.task_reminders.run_once)
    every(900, "follow-up-rules", hub.follow_up_rules, at_start=False)
    every(60, "delivery-confirmations", hub.confirmations.run_once)
    every(60, "contact-way-rotas", hub.contact_ways.refresh, at_start=False)
    every(60, "customer-transfers", hub.succession.run_once, at_start=False)
    every(60, "corp-tags", hub.corp_tags.run_once, at_start=False)
    every(60, "mass-sends", hub.mass_sends.run_once, at_start=False)
    every(60, "customer-groups", hub.groups.run_once, at_start=False)
    every(60, "moments", hub.moments.run_once, at_start=False)
    every(60, "campaign-tags", hub.campaign_tags, at_start=False)
    every(300, "confirm-reminders", hub.remind_unconfirmed)
    every(live_settings.RELOAD_SECONDS, "settings-reload", hub.reload_settings)
    def started(event: JobSubmissionEvent) -> None:  # how late after it was due (a busy or sleeping worker)
        if event.scheduled_run_times:
            late = dt.datetime.now(dt.UTC) - event.scheduled_run_times[-1]
            metrics.JOB_LATE.labels(event.job_id).observe(max(0.0, late.total_seconds()))

    scheduler.add_listener(started, EVENT_JOB_SUBMITTED)
    hour, minute = settings.rep_digest_time.split(":")
    scheduler.add_job(_logged("rep-digest", hub.digest.run_once),
                      CronTrigger(hour=int(hour), minute=int(minute), timezone=settings.default_timezone),
                      id="rep-digest", name="rep-digest")
    return scheduler


def _soon() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def _logged(name: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            await job()
        except Exception:
            # The next tick tries again; the database still holds everything due.
            outcome = "failed"
            log.exception("scheduled job %s failed; it runs again at its next tick", name)
        metrics.JOBS.labels(name, outcome).inc()
        metrics.JOB_SECONDS.labels(name).observe(time.perf_counter() - started)

    return run
