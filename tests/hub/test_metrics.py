"""/metrics counts what a customer's message went through (the webhook, the worker, the send) and
what the outbox holds, for 127.0.0.1 or an admin's token only; /readyz says what is not ready."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client import REGISTRY

from crm_core.models import Role
from crm_core.people import users
from hub.app import create_app
from hub.context import Hub
from tests.fakes.stack import eventually, make_settings, telegram_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def value(body: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus text, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    found = re.search(pattern, body, re.M)
    return float(found.group(1)) if found else 0.0


COUNTED = [  # what one customer message and the worker's first minute add to this process's counters
    ("scrm_webhook_requests_total", {"channel": "telegram", "status": "200"}),
    ("scrm_ingest_seconds_count", {"channel": "telegram"}),
    ("scrm_messages_processed_total", {}),
    ("scrm_message_wait_seconds_count", {}),
    ("scrm_sends_total", {"channel": "telegram", "result": "sent"}),
    ("scrm_scheduled_jobs_total", {"job": "event-reminders", "outcome": "ok"}),
    ("scrm_scheduled_job_seconds_count", {"job": "event-reminders"}),
    ("scrm_scheduled_job_late_seconds_count", {"job": "event-reminders"}),
]


async def test_a_message_is_counted_from_webhook_to_send(database_url, tmp_path):
    # Counters belong to the process: earlier tests in it may have counted some. What this test adds counts.
    before = {(name, tuple(labels.items())): REGISTRY.get_sample_value(name, labels) or 0.0
              for name, labels in COUNTED}
    async with telegram_stack(database_url, tmp_path) as stack:
        await stack.customer_writes(4242, "hello")

        async def counted() -> str | None:  # the message answered, the worker's frequent jobs run once
            body = (await stack.client.get(f"{stack.hub_base}/metrics")).text
            grown = all(value(body, name, **labels) > before[name, tuple(labels.items())] for name, labels in COUNTED)
            # The send is counted when the platform took it, its row marked sent a group commit later.
            recorded = value(body, "scrm_outbox_rows", status="sent") >= 1  # from this test's database
            return body if grown and recorded and stack.bot_lines(4242) else None

        body = await eventually(counted, timeout=30)
        assert value(body, "scrm_messages_waiting") == 0

        # A made-up channel in the URL is not a label of its own: the caller chooses URLs.
        unknown = value(body, "scrm_webhook_requests_total", channel="unknown", status="404")
        await stack.client.post(f"{stack.hub_base}/hooks/evil{'x' * 40}/1", content=b"{}")
        body = (await stack.client.get(f"{stack.hub_base}/metrics")).text
        assert "evilx" not in body
        assert value(body, "scrm_webhook_requests_total", channel="unknown", status="404") == unknown + 1

        # The platform refuses a send: counted by its own code (Telegram's 403 for a bot the user blocked).
        refused = value(body, "scrm_platform_errors_total", channel="telegram", code="403")
        stack.bot.blocked_by.add(4242)
        conversation = (await stack.client.get(f"{stack.hub_base}/api/v1/conversations", headers=stack.api())).json()[0]
        sent = await stack.client.post(f"{stack.hub_base}/api/v1/conversations/{conversation['id']}/messages",
                                       json={"text": "are you still there?"}, headers=stack.api())
        assert sent.status_code == 202, sent.text

        async def refusal_counted() -> str | None:
            body = (await stack.client.get(f"{stack.hub_base}/metrics")).text
            return body if value(body, "scrm_platform_errors_total", channel="telegram", code="403") > refused else None

        body = await eventually(refusal_counted, timeout=30)
        assert value(body, "scrm_platform_errors_total", channel="telegram", code="403") == refused + 1


async def test_metrics_need_loopback_or_an_admin_and_readyz_says_what_is_missing(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        hub: Hub = stack.hub
        async with hub.sessions() as session, session.begin():
            rep = await users.get_or_create("rep1", Role.REP, db_session=session)
            rep_token = await users.create_token(rep, name="t", db_session=session)
        app = create_app(hub)  # the same hub, reached as from another machine
        remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 5555)),
                                   base_url="http://hub")
        async with remote:
            assert (await remote.get("/metrics")).status_code == 401
            assert (await remote.get("/metrics", headers={"Authorization": f"Bearer {rep_token}"})).status_code == 403
            admin = await remote.get("/metrics", headers={"Authorization": f"Bearer {stack.admin_token}"})
            assert admin.status_code == 200 and "scrm_outbox_rows" in admin.text
            ready = await remote.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}

    # Redis configured but away: not ready, and the answer says what to check.
    away = Hub(make_settings(database_url, tmp_path / "away", redis_url="redis://127.0.0.1:1/0"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(away)),
                                     base_url="http://hub") as client:
            ready = await client.get("/readyz")
    finally:
        await away.close()
    assert ready.status_code == 503
    assert "SCRM_REDIS_URL" in ready.json()["checks"]["redis"]
