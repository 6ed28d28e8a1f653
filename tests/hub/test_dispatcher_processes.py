"""Dispatcher processes against the Telegram simulator: several share the work
without sending a row twice, and a worker killed with SIGKILL mid-dispatch
loses nothing and resends nothing blindly."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select, update

from channels.simulators.telegram import TelegramSimulator
from crm_core.conversations.ingest import ingest_events
from crm_core.crypto import CredentialCipher
from crm_core.models import ChannelAccount, Conversation, MessageKind, OutboxMessage, OutboxStatus
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import InboundMessage, OutboundMessage, Sender
from tests.fakes.crowd import fast_telegram_account
from tests.fakes.processes import ROOT, log_of, start_worker, stop, wait_running
from tests.fakes.stack import SECRET

pytestmark = pytest.mark.slow


async def seed(sessions, simulator: TelegramSimulator, sim_base: str, *, chats: int, per_chat: int,
               active: bool = True) -> list[str]:
    """A simulated bot without limits, connected as a channel account, with `chats` customers who
    started it and `per_chat` sends queued to each."""
    async with sessions() as session, session.begin():
        account, bot = await fast_telegram_account(session, simulator, sim_base, CredentialCipher(SECRET))
        first = 20_000 + 1000 * (len(simulator.bots) - 1)  # each bot its own customers
        users = list(range(first, first + chats))
        for user_id in users:
            simulator.user(user_id)
            bot.started_by.add(user_id)
        return await queue_sends(session, account, users, per_chat=per_chat, active=active)


async def queue_sends(session, account: ChannelAccount, users: list[int], *, per_chat: int,
                      active: bool = True) -> list[str]:
    """A conversation of `account` with each of `users` (each has started the bot), and `per_chat`
    sends queued to each; the account enabled or not. Returns the texts queued."""
    account.is_active = active
    for n, user_id in enumerate(users):
        await ingest_events([InboundMessage(f"update:{n}", Sender(str(user_id)), str(user_id), MessageKind.TEXT,
                                            "hi", {})], channel_account_id=account.id, db_session=session)
    conversations = (await session.scalars(select(Conversation).where(
        Conversation.channel_account_id == account.id).order_by(Conversation.id))).all()
    texts = []
    for i in range(per_chat):
        for conversation in conversations:
            text = f"row {conversation.external_thread_id}/{i}"
            texts.append(text)
            await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text),
                                          idempotency_key=f"load:{account.platform_account_id}:{text}",
                                          db_session=session)
    return texts


async def set_active(sessions, active: bool) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(ChannelAccount).values(is_active=active))


async def statuses(sessions) -> collections.Counter:
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all()
    return collections.Counter({status.value: n for status, n in rows})


async def wait_until_settled(sessions, procs, timeout: float) -> collections.Counter:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        counts = await statuses(sessions)
        if not (counts["pending"] or counts["claimed"] or counts["sending"]):
            return counts
        for proc in procs:
            assert proc.poll() is None, f"worker exited: {log_of(proc)}"
        assert asyncio.get_running_loop().time() < deadline, f"not done in {timeout}s: {counts}"
        await asyncio.sleep(0.2)


async def test_two_dispatcher_processes_send_1000_rows_exactly_once(postgres_url, pg_sessions, telegram_api,
                                                                    tmp_path):
    simulator, sim_base = telegram_api
    sessions = pg_sessions
    texts = await seed(sessions, simulator, sim_base, chats=100, per_chat=10, active=False)
    assert len(texts) == 1000
    procs = [start_worker(postgres_url, tmp_path), start_worker(postgres_url, tmp_path)]
    try:
        for proc in procs:
            await wait_running(proc)
        await set_active(sessions, True)  # both are polling: now they race for the rows
        counts = await wait_until_settled(sessions, procs, timeout=240)
    finally:
        stop(procs)
    bot = next(iter(simulator.bots.values()))
    delivered = collections.Counter(m["text"] for m in bot.sent)
    assert counts == {"sent": 1000}
    assert sorted(delivered) == sorted(texts)  # none lost
    assert max(delivered.values()) == 1  # none twice
    async with sessions() as session:
        owners = (await session.scalars(select(OutboxMessage.claimed_by).distinct())).all()
    logs = [log_of(p) for p in procs]
    assert len(owners) == 2, logs  # both processes did part of the work


async def test_a_worker_killed_mid_dispatch_loses_nothing_and_resends_nothing_blindly(
        database_url, sessions, telegram_api, tmp_path):
    simulator, sim_base = telegram_api
    texts = await seed(sessions, simulator, sim_base, chats=40, per_chat=8)
    bot = next(iter(simulator.bots.values()))
    bot.send_delay = 0.05  # calls stay open long enough to be caught mid-flight
    first = start_worker(database_url, tmp_path)
    try:
        while len(bot.sent) < 60:
            assert first.poll() is None, log_of(first)
            await asyncio.sleep(0.01)
        in_flight_at_kill = (await statuses(sessions))["sending"]
        first.kill()  # SIGKILL: no cleanup of any kind
        first.wait()
    finally:
        stop([first])
    assert in_flight_at_kill > 0
    await asyncio.sleep(0.3)  # let the simulator finish the calls the dead worker left open
    second = start_worker(database_url, tmp_path)
    try:
        counts = await wait_until_settled(sessions, [second], timeout=120)
    finally:
        stop([second])
    delivered = collections.Counter(m["text"] for m in bot.sent)
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage.status, OutboxMessage.payload))).all()
    in_doubt = {p["text"] for s, p in rows if s == OutboxStatus.IN_DOUBT}
    sent = {p["text"] for s, p in rows if s == OutboxStatus.SENT}
    assert counts["sent"] + counts["in_doubt"] == len(texts)
    assert 0 < len(in_doubt) <= 16  # at most the calls that were open at the kill
    assert max(delivered.values()) == 1  # nothing resent
    assert all(delivered[t] == 1 for t in sent)  # everything else delivered exactly once
    # The in-doubt rows are reported, with the way to resolve them.
    env = {**os.environ, "SCRM_DATABASE_URL": database_url, "SCRM_SECRET_KEY": SECRET,
           "SCRM_DATA_DIR": str(tmp_path)}
    report = subprocess.run([sys.executable, "-m", "hub.cli", "outbox", "in-doubt"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert len(report.stdout.strip().splitlines()) == len(in_doubt)
    assert all(text in report.stdout for text in in_doubt)
    assert "scrm outbox resolve" in report.stdout
