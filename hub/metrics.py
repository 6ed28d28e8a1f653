"""`/metrics` (Prometheus) and `/readyz`.

Counted in each process: webhook requests by channel and answer, the time to store a webhook's
messages, customer messages answered and how long each waited from arrival, sends by channel and
outcome (sent, rate_limited, held, unreachable, failed, error), the platforms' refusals by their
error code, opinion alerts opened, scheduled job runs (outcome, duration, how late they started).
`scrm serve` and the worker it starts share one directory of counters (prometheus-client's
multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, set by `scrm serve` before anything is counted),
so one scrape sees both. Read from the database at each scrape, so true whatever process did the work: the
outbox by status, the age of the oldest due send, in-doubt sends, messages waiting for the worker.

Who may read `/metrics`: a caller on 127.0.0.1 (a Prometheus next to the hub), or an admin as the
API knows one (a bearer token, or the panel's session); anyone else gets 401 / 403. `/readyz` says
whether this process can serve: the database answers, its migrations are at head, Redis answers
when configured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from admin.api.deps import current_user, require_role
from crm_core import migrate, observe
from crm_core.models import Role
from crm_core.outbox.service import backlog

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

WEBHOOKS = Counter("scrm_webhook_requests", "Platform webhook requests, by channel and HTTP status",
                   ["channel", "status"])
INGEST = Histogram("scrm_ingest_seconds", "Time to store one webhook's messages durably (the group commit)",
                   ["channel"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
PROCESSED = Counter("scrm_messages_processed", "Customer messages the worker has answered (processed)")
WAITED = Histogram("scrm_message_wait_seconds", "From a customer message's arrival to its processing (the bot's "
                   "reply queued)", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))
SENDS = Counter("scrm_sends", "Send attempts by channel and outcome", ["channel", "result"])
PLATFORM_ERRORS = Counter("scrm_platform_errors", "Sends a platform refused, by channel and the platform's own "
                          "error code (Telegram's HTTP status, WeCom / WeChat errcode, DingTalk code, SMTP reply)",
                          ["channel", "code"])
OPINION_ALERTS = Counter("scrm_opinion_alerts", "Opinion alerts opened, by dimension", ["dimension"])
JOBS = Counter("scrm_scheduled_jobs", "Scheduled job runs by job and outcome", ["job", "outcome"])
JOB_SECONDS = Histogram("scrm_scheduled_job_seconds", "How long a scheduled job ran", ["job"],
                        buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))
JOB_LATE = Histogram("scrm_scheduled_job_late_seconds", "How late a scheduled job started after it was due",
                     ["job"], buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900))


class PrometheusObserver(observe.Observer):
    def messages_processed(self, waited_seconds: Sequence[float]) -> None:
        PROCESSED.inc(len(waited_seconds))
        for seconds in waited_seconds:
            WAITED.observe(max(0.0, seconds))

    def send(self, channel: str, result: str, code: str | None = None) -> None:
        SENDS.labels(channel, result).inc()
        if code is not None:
            PLATFORM_ERRORS.labels(channel, code).inc()

    def opinion_alert(self, dimension: str) -> None:
        OPINION_ALERTS.labels(dimension).inc()


router = APIRouter(tags=["health"])


_BEARER = HTTPBearer(auto_error=False)


async def _allowed(request: Request) -> None:
    """127.0.0.1, or whoever the API takes for an admin (a token, or the panel's session)."""
    client = request.client.host if request.client else ""
    if client in ("127.0.0.1", "::1"):
        return
    async with request.app.state.hub.sessions() as session:
        user = await current_user(request, await _BEARER(request), session)
    await require_role(Role.ADMIN)(user)


async def _database_families(request: Request) -> list[GaugeMetricFamily]:
    async with request.app.state.hub.sessions() as session:
        waits = await backlog(db_session=session)
    outbox = GaugeMetricFamily("scrm_outbox_rows", "Outbox rows by status (in_doubt: sent or not, an operator "
                               "decides: scrm outbox in-doubt)", labels=["status"])
    for state, count in waits.outbox.items():
        outbox.add_metric([state.value], count)
    due = GaugeMetricFamily("scrm_outbox_oldest_due_seconds", "How long the oldest due send has waited")
    due.add_metric([], waits.oldest_due_seconds)
    waiting = GaugeMetricFamily("scrm_messages_waiting", "Customer messages stored, not yet processed by a worker")
    waiting.add_metric([], waits.waiting_messages)
    return [outbox, due, waiting]


class _Families:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        return self.families


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await _allowed(request)
    counted = REGISTRY  # this process's counts, or every process's (serve and its worker)
    if os.environ.get(MULTIPROCESS_ENV):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    database = CollectorRegistry()
    database.register(_Families(await _database_families(request)))
    return Response(generate_latest(counted) + generate_latest(database), media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz", responses={503: {"description": "Not ready: what failed and how to fix it"}})
async def readyz(request: Request) -> JSONResponse:
    """Whether this process can serve: the database answers and is migrated, Redis answers."""
    hub = request.app.state.hub
    checks: dict[str, str] = {}
    try:
        async with hub.sessions() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        pending = await migrate.pending_revisions(hub.engine)
        checks["migrations"] = "ok" if not pending else f"{len(pending)} pending: run `scrm migrate`"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__}): check SCRM_DATABASE_URL and that the server runs"
    redis = hub.redis
    if redis is not None:
        started = time.monotonic()
        try:
            await redis.ping()
            checks["redis"] = f"ok ({(time.monotonic() - started) * 1000:.0f} ms)"
        except Exception as exc:
            checks["redis"] = (f"unavailable ({type(exc).__name__}): sends go on at a conservative rate; check "
                               "SCRM_REDIS_URL and that Redis runs")
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
