"""Nurture throughput: plan and dispatch N due campaign sends to the Telegram simulator.

Run by hand: `.venv/bin/python bench/nurture.py [--contacts 100000] [--dispatchers N] [--history N]
[--database-url URL] [--no-autovacuum] [--concurrency 128] [--accounts 1]`. On a PostgreSQL server
whose autovacuum is off (this machine's), the bench analyses the seeded tables once, as autovacuum
would have long before, then the campaign's tables as its defaults would (bench/autovacuum.py).
On a fresh database (a temporary SQLite file unless a URL is given; a PostgreSQL
database given here is emptied first) it seeds N customers who agreed to
marketing (spread over `--accounts` bots, each paced at Telegram's paid broadcast limit, their
customers seeded a hundred of each in turn),
activates a one-step campaign for all of them, then runs the nurture planner
and a dispatcher side by side in this process, as `scrm worker` does, until
every send is delivered; with `--dispatchers 2` or more, the others are
`scrm worker --dispatch-only` processes beside it (how a hub sends a big
campaign faster: one more process per core). The Telegram simulator runs in a
process of its own, as Telegram is not in the hub's (`--simulator` is that
process's mode).
Prints progress every few seconds, then sends/s, the rates of the first and
last tenth of the sends, the CPU time each process spent a send, the planner's share of
the time and of the CPU (the scheduler's overhead), each process's peak memory,
and checks that each customer got exactly one message.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bench.autovacuum import analyse_as_autovacuum_would, analyse_the_past, autovacuum_is_on  # noqa: E402
from channels.registry import ChannelRegistry, default_adapters  # noqa: E402
from channels.simulators.telegram import TelegramSimulator  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.campaigns import service as campaigns  # noqa: E402
from crm_core.campaigns.definitions import StepSpec  # noqa: E402
from crm_core.campaigns.planning import NurturePlanner  # noqa: E402
from crm_core.consent.marketing_rules import MarketingRules  # noqa: E402
from crm_core.crypto import CredentialCipher  # noqa: E402
from crm_core.db import create_engine, run_sqlite_checkpoints, session_factory  # noqa: E402
from crm_core.models import CampaignStatus, OutboxMessage, OutboxStatus  # noqa: E402
from crm_core.outbox.dispatcher import Dispatcher, DispatchPolicy  # noqa: E402
from hub.runtime import tune_garbage_collector  # noqa: E402
from hub.serving import running  # noqa: E402
from tests.fakes.crowd import load_account, seed_crowd  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
BATCH = 500  # each dispatcher's claims
# Sends in flight: Telegram answers in 50-100 ms, so 1,000 a second needs about 100 at once (Little's law);
# and the more in flight, the more marks and outcomes each of the dispatcher's commits carries.
CONCURRENCY = 128
SEED_TURN = 100  # with several bots, customers seeded a hundred of each in turn
POLL = 0.2  # seconds between looks at the simulator's count: the finest the tenths are timed
FIRST_USER = 1_000_000


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StepCpu:
    """The CPU time the event loop's thread spends running a coroutine's own steps, not the
    other tasks it waits beside: what the planner costs the process, where its wall time
    also holds the dispatcher's turns while a batch waits on the database."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @types.coroutine
    def timed(self, coro):
        steps, sent, thrown = coro.__await__(), None, None
        while True:
            began = time.thread_time()
            try:
                asked = steps.throw(thrown) if thrown is not None else steps.send(sent)
            except StopIteration as done:
                return done.value
            finally:
                self.seconds += time.thread_time() - began
            try:
                sent, thrown = (yield asked), None
            except BaseException as exc:  # a cancellation goes on into the coroutine
                sent, thrown = None, exc


def say(text: str) -> None:
    print(text, flush=True)


def shares(contacts: int, accounts: int) -> list[range]:
    """The users of each bot: the customers split in equal runs."""
    size = -(-contacts // accounts)
    return [range(FIRST_USER + start, FIRST_USER + min(contacts, start + size)) for start in range(0, contacts, size)]


async def serve_simulator(contacts: int, accounts: int) -> None:
    """The simulator's process: `accounts` bots that keep no rate limits, each started by its share of
    `contacts` users; says its port and the bots' tokens on a line, then serves until killed."""
    simulator = TelegramSimulator()
    tokens = []
    for users in shares(contacts, accounts):
        bot = simulator.create_bot()
        bot.enforce_limits = False
        tokens.append(bot.token)
        for user in users:
            simulator.user(user)
            bot.started_by.add(user)
    async with running(simulator.app) as server:
        print(json.dumps({"port": server.port, "tokens": tokens}), flush=True)
        await asyncio.Event().wait()


def _proc_cpu_seconds(pid: int) -> float:
    """A child's CPU time so far (Linux's /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_dispatchers(count: int, url: str, concurrency: int) -> list[subprocess.Popen]:
    """`count` more dispatchers, each `scrm worker --dispatch-only` in its own process, set as this
    one's (no quiet hours, the same batch and concurrency); they wait until there is work."""
    env = {**os.environ, "SCRM_DATABASE_URL": url, "SCRM_SECRET_KEY": SECRET, "SCRM_WORKER_NICE": "0",
           "SCRM_MARKETING_QUIET_HOURS": "", "SCRM_DISPATCH_BATCH_SIZE": str(BATCH),
           "SCRM_DISPATCH_CONCURRENCY": str(concurrency), "SCRM_LOG_LEVEL": "WARNING",
           "SCRM_DATA_DIR": tempfile.mkdtemp(prefix="scrm-bench-dispatcher-")}
    return [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--dispatch-only"], cwd=ROOT, env=env)
            for _ in range(count)]


async def main(contacts: int, database_url: str | None, history: int, dispatchers: int, autovacuum: bool,
               concurrency: int, accounts: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="scrm-bench-nurture-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    engine = create_engine(url)
    if url.startswith("postgresql"):
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    cipher = CredentialCipher(SECRET)
    others = start_dispatchers(dispatchers - 1, url, concurrency)
    child = subprocess.Popen([sys.executable, __file__, "--simulator", "--contacts", str(contacts),
                              "--accounts", str(accounts)],
                             stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(await asyncio.to_thread(child.stdout.readline))
        sim_base = f"http://127.0.0.1:{ready['port']}"
        async with httpx.AsyncClient(base_url=sim_base, timeout=60) as sim:
            return await run(contacts, url, engine, sessions, cipher, sim, ready["tokens"], history, others,
                             autovacuum, concurrency)
    finally:
        for process in others:
            process.terminate()
            process.wait()
        child.kill()
        child.wait()


async def run(contacts: int, url: str, engine, sessions, cipher: CredentialCipher, sim: httpx.AsyncClient,
              tokens: list[str], history: int, others: list[subprocess.Popen], autovacuum: bool,
              concurrency: int) -> int:
    bots = [f"/_sim/bots/{token.split(':', 1)[0]}" for token in tokens]
    started = time.perf_counter()
    account_ids = []
    for token in tokens:
        async with sessions() as session, session.begin():
            account_ids.append((await load_account(session, token, str(sim.base_url).rstrip("/"), cipher)).id)
    # The bots' customers seeded in turns of SEED_TURN, so that a campaign's due sends (in contact order)
    # mix the bots as a real audience does, rather than all of one bot's before the next one's.
    parts = shares(contacts, len(tokens))
    turn = SEED_TURN if len(tokens) > 1 else contacts
    for offset in range(0, max(len(users) for users in parts), turn):
        for account_id, users in zip(account_ids, parts, strict=True):
            if part := users[offset:offset + turn]:
                await seed_crowd(sessions, account_id, len(part), first_user=part.start, history=history)
    say(f"seeded {contacts:,} customers, {history} earlier messages each, in {time.perf_counter() - started:.1f}s "
        f"({url.split(':')[0]}, {len(tokens)} bot{'s' if len(tokens) > 1 else ''})")
    imitate = url.startswith("postgresql") and autovacuum and not await autovacuum_is_on(engine)
    if imitate:
        analysed = await analyse_the_past(engine)
        say(f"{analysed} tables analysed, as autovacuum would have before: the customers were there long before")

    started = time.perf_counter()
    async with sessions() as session, session.begin():
        campaign = await campaigns.create_campaign(
            "bench", audience={}, steps=[StepSpec("only", {"en": "Hi {name}, our winter offer"})], exits=[],
            channel_kinds=["telegram"], actor=None, db_session=session)
        enrolled = await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)
    say(f"enrolled {enrolled:,} in {time.perf_counter() - started:.1f}s")

    policy = DispatchPolicy(batch_size=BATCH, concurrency=concurrency, marketing=MarketingRules())  # no quiet hours
    registry = ChannelRegistry(default_adapters("http://127.0.0.1"))
    registry.prepare_to_send()  # as `scrm worker` does before its dispatcher starts
    dispatcher = Dispatcher(sessions, registry, cipher, policy=policy)
    planner = NurturePlanner(sessions, on_enqueued=dispatcher.wake)  # as the hub makes it
    tune_garbage_collector()  # as `scrm worker` does once started
    stop = asyncio.Event()
    planner_seconds = 0.0
    planner_cpu = StepCpu()
    run_once = planner.run_once

    async def timed_batch(*args):
        nonlocal planner_seconds
        began = time.perf_counter()
        try:
            return await planner_cpu.timed(run_once(*args))
        finally:
            planner_seconds += time.perf_counter() - began

    planner.run_once = timed_batch

    async def plan() -> None:  # as the hub's scheduler runs it
        while not stop.is_set():
            await planner.run_until_idle()
            await asyncio.sleep(0.2)

    async def delivered() -> int:
        return sum([(await sim.get(f"{bot}/state")).json()["sent"] for bot in bots])

    began, cpu_began = time.perf_counter(), _cpu_seconds()
    others_began = [_proc_cpu_seconds(process.pid) for process in others]
    # The worker's background WAL checkpoints too: without them SQLite's WAL grows to
    # its autocheckpoint size (200 MB) and every read slows down.
    tasks = [asyncio.create_task(plan()), asyncio.create_task(dispatcher.run(stop)),
             asyncio.create_task(run_sqlite_checkpoints(engine, stop))]
    analyses = None
    if url.startswith("postgresql") and not await autovacuum_is_on(engine):
        say("PostgreSQL's autovacuum is off on this server: "
            + ("the bench analysed the seeded tables, and analyses the campaign's as it would (bench/autovacuum.py)"
               if imitate else "no statistics are gathered (--no-autovacuum)"))
        if imitate:
            analyses = asyncio.create_task(analyse_as_autovacuum_would(engine, stop))
            tasks.append(analyses)
    tenth = max(1, enrolled // 10)
    crossed: dict[int, float] = {}  # deliveries -> when they were first seen reached
    shown = began
    while (count := await delivered()) < enrolled:
        await asyncio.sleep(POLL)
        for mark in (tenth, enrolled - tenth):
            if mark not in crossed and count >= mark:
                crossed[mark] = time.perf_counter()
        if time.perf_counter() - shown >= 5:
            shown = time.perf_counter()
            say(f"  {shown - began:6.1f}s  delivered {count:,} / {enrolled:,}")
        for task in tasks:
            if task.done():
                task.result()
    elapsed, cpu = time.perf_counter() - began, _cpu_seconds() - cpu_began
    others_cpu = [_proc_cpu_seconds(process.pid) - at for process, at in zip(others, others_began, strict=True)]
    others_mib = [_proc_peak_mib(process.pid) for process in others]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the check below reads every send
    crossed.setdefault(enrolled - tenth, began + elapsed)
    crossed.setdefault(tenth, began + elapsed)
    stop.set()
    dispatcher.wake()
    await asyncio.gather(*tasks)
    await registry.close()

    async with sessions() as session:
        statuses = dict((await session.execute(select(OutboxMessage.status, func.count())
                                               .group_by(OutboxMessage.status))).all())
    await engine.dispose()
    per_chat = collections.Counter()
    for bot in bots:
        per_chat.update(m["chat_id"] for m in (await sim.get(f"{bot}/sent")).json())
    say(f"\n{enrolled:,} campaign sends planned and delivered in {elapsed:.1f}s: {enrolled / elapsed:,.0f} sends/s")
    first = tenth / max(POLL, crossed[tenth] - began)  # a tenth seen within one look: at most this fast
    last = tenth / max(POLL, began + elapsed - crossed[enrolled - tenth])
    say(f"first 10% of the sends: {first:,.0f} sends/s; last 10%: {last:,.0f} sends/s "
        f"({last / first:.0%} of the first)")
    # Steadier than the rate on a shared machine: what each send cost this process, all threads.
    say(f"CPU of the hub's process: {1000 * cpu / enrolled:.2f} ms a send ({cpu / elapsed:.0%} of one core)")
    for n, (seconds, mib) in enumerate(zip(others_cpu, others_mib, strict=True), start=2):
        say(f"dispatcher process {n} (`scrm worker --dispatch-only`): {1000 * seconds / enrolled:.2f} ms a send "
            f"({seconds / elapsed:.0%} of one core), peak {mib:,.0f} MiB")
    say(f"planner (scheduler) share of the time: {planner_seconds / elapsed:.1%} ({planner_seconds:.1f}s, its "
        f"batches' wall time, their waits on the database included); of the process's CPU: "
        f"{planner_cpu.seconds / cpu:.1%} ({planner_cpu.seconds:.1f}s on the event loop's thread)"
        + (f", of all the dispatchers' processes' CPU: {planner_cpu.seconds / (cpu + sum(others_cpu)):.1%}"
           if others else ""))
    if analyses is not None:
        say(f"tables analysed as autovacuum would: {analyses.result()}")
    say(f"peak memory of the hub's process (the simulator is another): {peak_mib:,.0f} MiB")
    say(f"outbox: {', '.join(f'{s.value} {n:,}' for s, n in statuses.items())}")
    ok = len(per_chat) == enrolled and max(per_chat.values()) == 1 and statuses.get(OutboxStatus.SENT) == enrolled
    say("each customer got exactly one message" if ok else "MISMATCH: see the counts above")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--history", type=int, default=0,
                        help="messages each customer wrote a month before (a hub that has been chatting a while)")
    parser.add_argument("--dispatchers", type=int, default=1,
                        help="dispatcher processes: this one, and the others as `scrm worker --dispatch-only`")
    parser.add_argument("--no-autovacuum", dest="autovacuum", action="store_false",
                        help="on a PostgreSQL server with autovacuum off, do not analyse as it would "
                        "(bench/autovacuum.py): statistics never gathered")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help=f"sends in flight per dispatcher (SCRM_DISPATCH_CONCURRENCY; default {CONCURRENCY})")
    parser.add_argument("--accounts", type=int, default=1,
                        help="bots the customers are spread over, each paced at Telegram's paid broadcast limit "
                        "(1,000 sends a second): with one, that limit is the most the bench can show")
    parser.add_argument("--simulator", action="store_true", help="be the simulator's process (started by the bench)")
    args = parser.parse_args()
    if args.accounts < 1:
        parser.error("--accounts: at least 1")
    if args.dispatchers < 1:
        parser.error("--dispatchers: at least 1 (this process)")
    sys.exit(asyncio.run(serve_simulator(args.contacts, args.accounts) if args.simulator
                         else main(args.contacts, args.database_url, args.history, args.dispatchers, args.autovacuum,
                                   args.concurrency, args.accounts)))
