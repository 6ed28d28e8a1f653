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

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub import live_settings, metrics
from hub.context import Hub

log = logging.getLogger(__name__)


def _not_a_skip(record: logging.LogRecord) -> bool:
    """APScheduler warns at every tick a job is still running at (a planner's long campaign: every
    half second for minutes); `_logged` says it once instead, when the job overruns and when it ends."""
    return not str(record.msg).startswith('Execution of job "%s" skipped')


# The scheduler's own logger, so that the filter touches no other APScheduler instance's log.
_scheduler_log = logging.getLogger("hub.scheduler.apscheduler")
_scheduler_log.addFilter(_not_a_skip)


def build_scheduler(hub: Hub) -> AsyncIOScheduler:
    settings = hub.settings
    scheduler = AsyncIOScheduler(timezone="UTC", logger=_scheduler_log, job_defaults={
        "coalesce": True,          # ticks missed while busy or asleep run once, not in a burst
        "max_instances": 1,        # a slow tick is never overlapped by the next
        "misfire_grace_time": None,
    })
    skipped: dict[str, int] = {}  # job -> its ticks skipped while its current run goes on

    def every(seconds: float, name: str, job: Callable[[], Awaitable[Any]], *, at_start: bool = True) -> None:
        # Frequent jobs also run right after start (work due while the hub was down: nurture
        # sends, reminders); the others, and the WeCom operations that only follow work WeCom
        # holds (`at_start=False`), at their first interval, so a starting hub is not a burst of
        # jobs beside its first customers. (next_run_time=None would add the job paused.)
        extra = {"next_run_time": _soon()} if seconds <= 60 and at_start else {}
        scheduler.add_job(_logged(name, job, skipped, interval=seconds), IntervalTrigger(seconds=seconds),
                          id=name, name=name, **extra)

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

    def overran(event: JobSubmissionEvent) -> None:
        skipped[event.job_id] = skipped.get(event.job_id, 0) + 1
        metrics.JOBS.labels(event.job_id, "skipped").inc()
        if skipped[event.job_id] == 1:
            log.warning("scheduled job %s is still running at its next tick; its ticks are skipped until it ends",
                        event.job_id)

    scheduler.add_listener(started, EVENT_JOB_SUBMITTED)
    scheduler.add_listener(overran, EVENT_JOB_MAX_INSTANCES)
    hour, minute = settings.rep_digest_time.split(":")
    scheduler.add_job(_logged("rep-digest", hub.digest.run_once, skipped),
                      CronTrigger(hour=int(hour), minute=int(minute), timezone=settings.default_timezone),
                      id="rep-digest", name="rep-digest")
    return scheduler


def _soon() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def _logged(name: str, job: Callable[[], Awaitable[Any]], skipped: dict[str, int], *,
            interval: float | None = None) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            await job()
        except Exception:
            # The next tick tries again; the database still holds everything due.
            outcome = "failed"
            log.exception("scheduled job %s failed; it runs again at its next tick", name)
        took = time.perf_counter() - started
        metrics.JOBS.labels(name, outcome).inc()
        metrics.JOB_SECONDS.labels(name).observe(took)
        if ticks := skipped.pop(name, 0):
            every = f" (it runs every {interval:g} s)" if interval else ""
            log.info("scheduled job %s ended after %.1f s%s; %d of its ticks were skipped meanwhile",
                     name, took, every, ticks)

    return run
