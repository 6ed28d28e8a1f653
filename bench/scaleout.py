"""Scale-out on PostgreSQL and Redis: ingest with 1 and 2 API processes, the pipeline with 1 and 2
worker processes, side by side.

Run by hand inside the project's environment:
    python bench/scaleout.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        [--redis-url redis://127.0.0.1:6379/0]
The database's schema public is dropped and made again for each measurement. Ingest: N
`scrm serve --no-worker` on their own ports, the load generator in this process spreading 32
keep-alive connections over them (as a load balancer would), 2 s warm-up + 10 s. Pipeline: a
backlog of messages from 200 customers stored with no worker running, then K `scrm worker
--no-dispatch` started together and timed from the first claim until the backlog is gone. The
reference for each is the single process, measured in the same run. On a 2-core machine two
processes share the cores with the load generator and PostgreSQL: what is measured is whether
the processes get in each other's way, not how far they scale on a larger machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ingest as bench_ingest  # noqa: E402
from bench.pipeline import events  # noqa: E402
from crm_core.db import create_engine, session_factory  # noqa: E402
from crm_core.models import Direction, Message  # noqa: E402

MODEL = ROOT / "var" / "models" / "sentiment-default.joblib"


async def fresh(database_url: str) -> int:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return await bench_ingest.seed(database_url)  # migrates, adds the Telegram account


def environment(database_url: str, redis_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "SCRM_DATABASE_URL": database_url, "SCRM_SECRET_KEY": bench_ingest.SECRET_KEY,
           "SCRM_DATA_DIR": str(data_dir), "SCRM_LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1"}
    if redis_url:
        env["SCRM_REDIS_URL"] = redis_url
    if MODEL.exists():
        env["SCRM_SENTIMENT_MODEL"] = str(MODEL)
    return env


async def ingest(database_url: str, redis_url: str | None, apis: int, base_port: int) -> float:
    account_id = await fresh(database_url)
    data_dir = Path(tempfile.mkdtemp(prefix="scrm-scaleout-"))
    env = environment(database_url, redis_url, data_dir)
    ports = [base_port + n for n in range(apis)]
    procs = [subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--no-worker", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for port in ports]
    try:
        for proc, port in zip(procs, ports, strict=True):
            await bench_ingest.wait_up(f"http://127.0.0.1:{port}/docs", proc, timeout=60)
        rates = await asyncio.gather(*(
            bench_ingest.load(f"http://127.0.0.1:{port}/hooks/telegram/{account_id}", 32 // apis, 10, 2, 1000,
                              1 + n * 10_000_000) for n, port in enumerate(ports)))
        return sum(rate for rate, _, _ in rates)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


async def pipeline(database_url: str, redis_url: str | None, workers: int, messages: int) -> float:
    account_id = await fresh(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    from crm_core.conversations.ingest import ingest_events

    for start in range(0, messages, 500):
        async with sessions() as session, session.begin():
            await ingest_events(events(min(500, messages - start), 200, start + 1), channel_account_id=account_id,
                                db_session=session)

    async def left() -> int:
        async with sessions() as session:
            return await session.scalar(select(func.count()).select_from(Message).where(
                Message.direction == Direction.INBOUND, Message.processed_at.is_(None)))

    data_dir = Path(tempfile.mkdtemp(prefix="scrm-scaleout-"))
    env = environment(database_url, redis_url, data_dir)
    procs = [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--no-dispatch"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while await left() == messages:  # until the first claim is done (the workers' start is not timed)
            await asyncio.sleep(0.05)
        started, remaining = time.perf_counter(), await left()
        while (now := await left()) > 0:
            assert all(p.poll() is None for p in procs), "a worker exited"
            await asyncio.sleep(0.1)
        return (remaining - now) / (time.perf_counter() - started)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL URL (its schema public is reset)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--port", type=int, default=18960)
    args = parser.parse_args()
    rates: dict[tuple[str, int], float] = {}
    for n in (1, 2):
        print(f"ingest, {n} API process(es) ...", file=sys.stderr, flush=True)
        rates["ingest", n] = await ingest(args.database_url, args.redis_url, n, args.port)
    for n in (1, 2):
        print(f"pipeline, {n} worker(s) ...", file=sys.stderr, flush=True)
        rates["pipeline", n] = await pipeline(args.database_url, args.redis_url, n, args.messages)
    print(f"\n{os.cpu_count()} cores; PostgreSQL{' and Redis' if args.redis_url else ''}\n")
    print("| | 1 process | 2 processes | ratio |\n|---|---|---|---|")
    for kind, unit in (("ingest", "req/s"), ("pipeline", "msgs/s")):
        one, two = rates[kind, 1], rates[kind, 2]
        print(f"| {kind} ({unit}) | {one:,.0f} | {two:,.0f} | {two / one:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
