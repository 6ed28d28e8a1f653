"""Webhook ingest throughput: the hub's Telegram webhook against a bare FastAPI endpoint.

Run by hand (`./dev bench` or `python bench/ingest.py --help`). Each server runs
alone in its own process; this process is the loopback load generator: N
keep-alive connections posting distinct Telegram updates (so every request is a
new message to store) from a pool of customers, for a fixed time after a warm-up.
The hub runs twice on a fresh database (SQLite by default): `scrm serve --no-worker`
(verify + parse + idempotent store + commit + answer) and the default `scrm serve`, whose
worker process answers every message while the load runs. On a PostgreSQL server whose
autovacuum is off (this machine's), the tables the warm-up filled (the customers, their chats)
are analysed at its end, as autovacuum would have long before in a hub that has been taking
messages (`bench/autovacuum.py`; `--no-autovacuum`: never, the planner guessing empty tables).
Prints req/s, p50 / p99 latency for both, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key-0123456789abcdef"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"


def update(update_id: int, user_id: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000,
        "from": {"id": user_id, "is_bot": False, "first_name": "Load", "language_code": "en"},
        "chat": {"id": user_id, "type": "private", "first_name": "Load"},
        "text": f"message {update_id}: when will my order ship?"}}).encode()


async def seed(database_url: str) -> int:
    from crm_core import accounts, migrate
    from crm_core.crypto import CredentialCipher
    from crm_core.db import create_engine, session_factory

    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    async with session_factory(engine)() as session, session.begin():
        account = await accounts.create(
            kind="telegram", name="bench", platform_account_id=str(time.time_ns()),
            credentials={"bot_token": "1:" + "a" * 35, "webhook_secret": WEBHOOK_SECRET},
            api_base="http://127.0.0.1:9", settings={"mode": "webhook"}, cipher=CredentialCipher(SECRET_KEY),
            actor=None, db_session=session)
    await engine.dispose()
    return account.id


async def wait_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"server exited during start: {proc.stdout.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"server at {url} did not start in {timeout}s")
            await asyncio.sleep(0.1)


async def load(url: str, connections: int, seconds: float, warmup: float, customers: int,
               first_id: int, after_warmup: Callable[[], Awaitable[object]] | None = None
               ) -> tuple[float, list[float], int]:
    """Requests per second, latencies (ms) and error count over the measured window (which starts
    once `after_warmup` has run, the load going on meanwhile)."""
    next_id = first_id
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = float("inf")  # set when the measured window starts, after the warm-up and `after_warmup`
    headers = {"content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal next_id, errors
            while time.monotonic() < stop_at:
                update_id = next_id
                next_id += 1
                body = update(update_id, 50_000 + update_id % customers)
                started = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    ok = False
                if measuring:
                    latencies.append((time.perf_counter() - started) * 1000)
                    errors += not ok

        tasks = [asyncio.create_task(worker()) for _ in range(connections)]
        await asyncio.sleep(warmup)
        if after_warmup is not None:
            await after_warmup()
        measuring = True
        began = time.monotonic()
        stop_at = began + seconds
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - began
    return len(latencies) / elapsed, latencies, errors


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else float("nan")


def peak_memory(pid: int) -> float:
    """The peak resident memory (MB) of the serving process (not its worker child): VmHWM."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return float("nan")


def serve(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--customers", type=int, default=1000, help="distinct senders the updates come from")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--no-autovacuum", dest="autovacuum", action="store_false",
                        help="on a PostgreSQL server with autovacuum off, do not analyse after the warm-up as it "
                        "would have (bench/autovacuum.py): statistics never gathered")
    parser.add_argument("--inprocess", action="store_true",
                        help="also measure SCRM_INPROCESS_WORKER=true (the worker in serve's own process)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="scrm-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    account_id = await seed(database_url)
    path = f"/hooks/telegram/{account_id}"
    results = {}
    servers = {
        "hub webhook": [sys.executable, "-m", "hub.cli", "serve", "--no-worker", "--port", str(args.port)],
        # The default `scrm serve`: its worker (a child process) answers every message meanwhile.
        "hub + worker": [sys.executable, "-m", "hub.cli", "serve", "--port", str(args.port)],
        "bare FastAPI": [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(args.port),
                         "--log-level", "warning", "--no-access-log"],
    }
    env = {"SCRM_DATABASE_URL": database_url, "SCRM_SECRET_KEY": SECRET_KEY, "SCRM_DATA_DIR": str(tmp),
           "SCRM_LOG_LEVEL": "WARNING"}
    model = ROOT / "var" / "models" / "sentiment-default.joblib"  # what ./dev trains: the worker scores with it
    if model.exists():
        env["SCRM_SENTIMENT_MODEL"] = str(model)
    if args.inprocess:
        servers["hub, worker inside"] = servers["hub + worker"]
    analyse = None
    if database_url.startswith("postgresql") and args.autovacuum:
        from bench.autovacuum import analyse_the_past, autovacuum_is_on
        from crm_core.db import create_engine

        engine = create_engine(database_url)
        if await autovacuum_is_on(engine):
            await engine.dispose()  # the server analyses on its own
        else:
            async def analyse() -> None:
                tables = await analyse_the_past(engine)
                print(f"  {tables} tables analysed after the warm-up, as autovacuum would have", file=sys.stderr,
                      flush=True)
    first_id = 1
    for name, argv in servers.items():
        print(f"{name}: starting ...", file=sys.stderr, flush=True)
        proc = serve(argv, {**env, "SCRM_INPROCESS_WORKER": "true"} if name == "hub, worker inside" else env)
        try:
            await wait_up(f"http://127.0.0.1:{args.port}/docs", proc)
            print(f"{name}: {args.connections} connections, {args.warmup:.0f}s warm-up + {args.seconds:.0f}s",
                  file=sys.stderr, flush=True)
            rps, latencies, errors = await load(f"http://127.0.0.1:{args.port}{path}", args.connections,
                                                args.seconds, args.warmup, args.customers, first_id,
                                                None if name == "bare FastAPI" else analyse)
            first_id += 10_000_000
            results[name] = (rps, percentile(latencies, 0.5), percentile(latencies, 0.99), errors, len(latencies),
                             peak_memory(proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=60)  # the default serve stops its worker first

    if analyse is not None:
        await engine.dispose()

    print(f"\n{'':18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'requests':>9} {'peak MB':>8}")
    for name, (rps, p50, p99, errors, n, memory) in results.items():
        print(f"{name:18} {rps:9.0f} {p50:8.1f} {p99:8.1f} {errors:7d} {n:9d} {memory:8.0f}")
    bare = results["bare FastAPI"]
    for name in ("hub webhook", "hub + worker", *(["hub, worker inside"] if args.inprocess else [])):
        hub = results[name]
        ratio = hub[0] / bare[0]
        verdict = "meets" if ratio >= 0.5 and hub[2] < 50 and hub[3] == 0 else "misses"
        print(f"{name}: ratio to bare = {ratio:.2f}; p99 = {hub[2]:.1f} ms -> {verdict} the target "
              f"(ratio >= 0.5, p99 < 50 ms, no errors) at {args.connections} connections; "
              f"database: {database_url.split(':')[0]}")


if __name__ == "__main__":
    asyncio.run(main())
