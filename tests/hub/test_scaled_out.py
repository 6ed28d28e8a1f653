"""The Compose recipe's topology as processes: two `scrm serve --no-worker` and two `scrm worker` on
PostgreSQL and Redis, the Telegram simulator as the platform. A message posted to each API is
answered once, whichever worker takes it."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from crm_core import accounts
from crm_core.crypto import CredentialCipher
from crm_core.models import OutboxMessage, OutboxStatus
from tests.fakes.databases import redis_url
from tests.fakes.processes import ROOT, start_worker, stop, wait_running
from tests.fakes.stack import SECRET, eventually, free_port

pytestmark = pytest.mark.slow
WEBHOOK_SECRET = "w" * 32


def start_api(database_url: str, data_dir, port: int, redis: str) -> subprocess.Popen:
    env = {**os.environ, "SCRM_DATABASE_URL": database_url, "SCRM_SECRET_KEY": SECRET, "SCRM_DATA_DIR": str(data_dir),
           "SCRM_LOG_LEVEL": "WARNING", "SCRM_REDIS_URL": redis, "SCRM_ALLOW_PRIVATE_API_BASE": "true",
           "SCRM_BASE_URL": f"http://127.0.0.1:{port}"}
    log_path = data_dir / f"api-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--no-worker", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    return proc


async def test_two_apis_and_two_workers_answer_each_message_once(postgres_url, pg_sessions, telegram_api, tmp_path):
    simulator, sim_base = telegram_api
    redis = await redis_url()
    bot = simulator.create_bot()
    async with pg_sessions() as session, session.begin():
        account = await accounts.create(
            kind="telegram", name="scaled", platform_account_id=str(bot.id),
            credentials={"bot_token": bot.token, "webhook_secret": WEBHOOK_SECRET}, api_base=sim_base,
            settings={"mode": "webhook"}, cipher=CredentialCipher(SECRET), actor=None, db_session=session)
    ports = [free_port(), free_port()]
    apis = [start_api(postgres_url, tmp_path, port, redis) for port in ports]
    # As in deploy/compose.yaml: `scrm worker` (messages, sends, pollers), twice.
    workers = [start_worker(postgres_url, tmp_path, mode="", redis_url=redis, allow_private_api_base="true")
               for _ in range(2)]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for api, port in zip(apis, ports, strict=True):
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert api.poll() is None, api.log_path.read_text()[-2000:]
                    assert time.monotonic() < deadline, "the API did not get ready"
                    await asyncio.sleep(0.2)
            for worker in workers:
                await wait_running(worker)
            customers = {}
            for n, port in enumerate(ports):
                user_id = 70_000 + n
                simulator.user(user_id)
                bot.started_by.add(user_id)
                update = {"update_id": 9_000 + n, "message": {
                    "message_id": 1, "date": int(time.time()), "text": "hello",
                    "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
                    "chat": {"id": user_id, "type": "private", "first_name": "Ann"}}}
                for _ in range(2):  # Telegram retries: the second delivery is the same update
                    resp = await client.post(f"http://127.0.0.1:{port}/hooks/telegram/{account.id}",
                                             content=json.dumps(update),
                                             headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
                                                      "content-type": "application/json"})
                    assert resp.status_code == 200, resp.text
                customers[user_id] = port

        async def answered() -> bool:
            return {m["chat_id"] for m in bot.sent} >= set(customers)

        await eventually(answered, timeout=60)
        await asyncio.sleep(1.0)  # time for a second answer, if there were to be one
    finally:
        stop(apis + workers)
    async with pg_sessions() as session:
        rows = (await session.execute(select(OutboxMessage.recipient, OutboxMessage.status))).all()
    queued = collections.Counter(recipient for recipient, _ in rows)
    delivered = collections.Counter(str(m["chat_id"]) for m in bot.sent)
    assert all(status == OutboxStatus.SENT for _, status in rows), rows
    assert set(delivered) == {str(c) for c in customers}
    assert delivered == queued  # each reply queued once and delivered once
    assert len(set(delivered.values())) == 1  # both customers answered alike, however the work was shared
