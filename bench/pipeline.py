"""The message worker's throughput: customer messages taken through the whole pipeline.

Run by hand inside the project's environment: `python bench/pipeline.py [--database-url URL]`.
For each run, a fresh database gets N customer messages from M Telegram customers (ingested
with the worker stopped: a backlog, as after a burst); then one worker is timed until the
backlog is gone. Two workers are timed in the same run:
- the floor (reference): handlers that do nothing and no understanding: claim, load, mark
  processed;
- the hub's worker as `scrm serve` builds it: sentiment, intents, entities, the rep alerts,
  lead capture, the consent bots, the customer bot (FAQ, lead form), replies queued.
Prints messages per second, the ratio to the floor, CPU time per message (the whole process's,
and the event loop's thread's), SQL statements and commits per message. On a PostgreSQL server
whose autovacuum is off (this machine's), the tables the backlog filled are analysed before the
worker starts, as autovacuum would have long before in a hub whose customers wrote before
(`bench/autovacuum.py`; `--no-autovacuum`: never, the planner guessing empty tables).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.autovacuum import analyse_the_past, autovacuum_is_on  # noqa: E402
from crm_core import accounts, migrate  # noqa: E402
from crm_core.conversations.processing import MessageWorker  # noqa: E402
from crm_core.models import Message, OutboxMessage  # noqa: E402
from crm_core.ports import InboundMessage, MessageKind, Sender  # noqa: E402
from hub.context import Hub  # noqa: E402
from hub.runtime import tune_garbage_collector  # noqa: E402
from hub.settings import Settings  # noqa: E402
from nlp import faq  # noqa: E402
from nlp.intents import detect as detect_intents  # noqa: E402

MODEL = ROOT / "var" / "models" / "sentiment-default.joblib"  # what ./dev trains
SAYINGS = [
    "hello", "你好", "how much is the pro plan?", "多少钱", "where is my order", "我的快递到哪了",
    "thanks!", "谢谢", "能不能便宜点", "what are your opening hours", "营业时间是几点", "ok",
    "the app keeps crashing, this is terrible", "等了五天还没发货", "I'd like a demo", "好的",
    "can I get an invoice", "发票怎么开", "Tom Baker", "13800138000",
]


def events(n: int, customers: int, first: int) -> list[InboundMessage]:
    rng = random.Random(n)
    out = []
    for k in range(first, first + n):
        user = str(90_000 + rng.randrange(customers))
        out.append(InboundMessage(platform_message_id=f"update:{k}", sender=Sender(user, "Load", None, "en"),
                                  thread_id=user, kind=MessageKind.TEXT, text=rng.choice(SAYINGS),
                                  raw={"update_id": k}))
    return out


class Counter:
    """SQL statements and commits on an engine."""

    def __init__(self, engine) -> None:
        self.statements = self.commits = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", self._commit)

    def _statement(self, *args) -> None:
        self.statements += 1

    def _commit(self, *args) -> None:
        self.commits += 1


async def run(name: str, database_url: str | None, n: int, customers: int, full: bool,
              transaction_seconds: float | None, autovacuum: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="scrm-pipeline-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=database_url, secret_key="bench-" + "k" * 32,
                            base_url="http://127.0.0.1:9", sentiment_model=MODEL)
        hub = Hub(settings)
        if hub.engine.dialect.name == "postgresql":
            async with hub.engine.begin() as conn:  # a fresh database, as SQLite's is
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await migrate.upgrade(hub.engine)
        async with hub.sessions() as session, session.begin():
            account = await accounts.create(kind="telegram", name="bench", platform_account_id=str(time.time_ns()),
                                            credentials={"bot_token": "1:" + "a" * 35}, api_base="http://127.0.0.1:9",
                                            settings={"mode": "webhook"}, cipher=hub.cipher, actor=None,
                                            db_session=session)
        for start in range(0, n, 500):
            await hub.ingest(account.id, events(min(500, n - start), customers, start + 1))
        if hub.engine.dialect.name == "postgresql" and autovacuum and not await autovacuum_is_on(hub.engine):
            tables = await analyse_the_past(hub.engine)
            print(f"{name}: {tables} tables analysed, as autovacuum would have", file=sys.stderr, flush=True)
        worker = hub.worker if full else MessageWorker(hub.sessions, [])
        if transaction_seconds is not None:
            worker.transaction_seconds = transaction_seconds
        if full:
            faq.warm_up()  # as `scrm serve` does before its worker starts
            detect_intents("hello")  # the intent model is trained on first use (a second or two): not timed
        tune_garbage_collector()  # as `scrm worker` does once started
        counter = Counter(hub.engine)
        print(f"{name}: {n} messages from {customers} customers ...", file=sys.stderr, flush=True)
        started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        while await worker.run_once():
            pass
        elapsed = time.perf_counter() - started
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        async with hub.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(Message).where(
                Message.direction == "in", Message.processed_at.is_(None)))
            replies = await session.scalar(select(func.count()).select_from(OutboxMessage))
        await hub.close()
        assert left == 0, f"{left} messages left unprocessed"
        return {"rate": n / elapsed, "statements": counter.statements / n, "commits": counter.commits / n,
                "replies": replies, "cpu": cpu / n * 1000, "loop_cpu": loop_cpu / n * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL (its schema public is dropped and made again); "
                             "default: SQLite in a temp dir")
    parser.add_argument("--transaction-seconds", type=float, default=None,
                        help="how long one transaction of a batch may last (default: the worker's, 0.05 s on "
                             "SQLite, whose one write lock ingest waits for); a long one shows the CPU a "
                             "message costs apart from the transactions' own")
    parser.add_argument("--no-autovacuum", dest="autovacuum", action="store_false",
                        help="on a PostgreSQL server with autovacuum off, do not analyse the backlog's tables as it "
                        "would have (bench/autovacuum.py): statistics never gathered")
    args = parser.parse_args()
    if not MODEL.exists():
        sys.exit(f"no sentiment model at {MODEL}: run ./dev scrm nlp train-sentiment --if-missing")
    floor = await run("floor (handlers that do nothing)", args.database_url, args.messages, args.customers, False,
                      args.transaction_seconds, args.autovacuum)
    full = await run("the hub's worker", args.database_url, args.messages, args.customers, True,
                     args.transaction_seconds, args.autovacuum)
    print(f"\n{args.messages} messages from {args.customers} customers; database: "
          f"{(args.database_url or 'sqlite').split(':')[0]}\n")
    print("| worker | msgs/s | ratio to the floor | CPU ms / msg: process (event loop) | statements / msg "
          "| commits / msg | replies queued |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("floor (reference)", floor), ("the hub's", full)):
        print(f"| {name} | {r['rate']:,.0f} | {r['rate'] / floor['rate']:.2f} | {r['cpu']:.2f} ({r['loop_cpu']:.2f}) "
              f"| {r['statements']:.1f} "
              f"| {r['commits']:.2f} | {r['replies']:,} |")


if __name__ == "__main__":
    asyncio.run(main())
