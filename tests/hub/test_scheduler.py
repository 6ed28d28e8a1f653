"""The worker's periodic jobs: every one scheduled (none paused), each run once at a
time however slow, a slow one said once instead of at every tick it overruns, and a
failing job tried again at its next tick."""

from __future__ import annotations

import asyncio
import logging

from hub.context import Hub
from hub.scheduler import build_scheduler
from tests.fakes.stack import make_settings

JOBS = {"nurture-planner", "nurture-audience", "sla-reminders", "lead-first-response", "opinion-watch", "rep-digest",
        "event-reminders", "delivery-confirmations", "settings-reload", "contact-way-rotas", "customer-transfers",
        "corp-tags", "mass-sends", "customer-groups", "confirm-reminders", "moments",
        "campaign-tags", "task-reminders", "follow-up-rules"}


async def test_every_job_is_scheduled_and_a_failing_one_runs_again(database_url, tmp_path, caplog):
    hub = Hub(make_settings(database_url, tmp_path, nurture_plan_seconds=0.2))
    calls = []

    async def failing() -> None:
        calls.append(1)
        raise RuntimeError("database went away")

    hub.nurture.run_until_idle = failing
    scheduler = build_scheduler(hub)
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == JOBS
        assert all(job.next_run_time is not None for job in jobs.values()), "a paused job never runs"
        assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
        with caplog.at_level(logging.ERROR):
            for _ in range(100):
                if len(calls) >= 3:
                    break
                await asyncio.sleep(0.05)
        assert len(calls) >= 3
        assert "scheduled job nurture-planner failed; it runs again at its next tick" in caplog.text
    finally:
        scheduler.shutdown(wait=False)
        await hub.close()


async def test_a_job_that_outlasts_its_interval_is_reported_once_not_at_every_tick(database_url, tmp_path, caplog):
    hub = Hub(make_settings(database_url, tmp_path, nurture_plan_seconds=0.1))
    async def long_planning() -> None:  # a campaign of 100,000: minutes, against a tick of a tenth of a second
        await asyncio.sleep(1.5)

    hub.nurture.run_until_idle = long_planning
    scheduler = build_scheduler(hub)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        try:
            for _ in range(100):
                if "nurture-planner ended after" in caplog.text:
                    break
                await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown(wait=False)
            await hub.close()
    planner = [r.getMessage() for r in caplog.records if "nurture-planner" in r.getMessage()]
    assert not [m for m in planner if "maximum number of running instances" in m], planner
    assert [m for m in planner if "still running" in m] == [
        "scheduled job nurture-planner is still running at its next tick; its ticks are skipped until it ends"]
    [ended] = [m for m in planner if "ended after" in m]
    ticks = int(ended.split("; ")[1].split()[0])
    assert 5 <= ticks <= 20, ended  # a tick every 0.1 s through a run of 1.5 s
    assert "(it runs every 0.1 s)" in ended
