"""Message worker processes: one killed with SIGKILL in the middle of a batch leaves every
message of that batch to the next worker, and every customer message is answered exactly once."""

from __future__ import annotations

import asyncio
import collections

import pytest
from sqlalchemy import func, select

from crm_core.conversations.ingest import ingest_events
from crm_core.crypto import CredentialCipher
from crm_core.models import Direction, Message, MessageKind, OutboxMessage
from crm_core.ports import InboundMessage, Sender
from tests.fakes.crowd import fast_telegram_account
from tests.fakes.processes import log_of, start_worker, stop
from tests.fakes.stack import SECRET

pytestmark = pytest.mark.slow
CUSTOMERS = 400


async def backlog(sessions, simulator, sim_base: str) -> None:
    """A "hello" from each of CUSTOMERS new customers, stored and waiting for the worker. The
    account is off, so the replies stay queued (sending is not what is tested here)."""
    async with sessions() as session, session.begin():
        account, _ = await fast_telegram_account(session, simulator, sim_base, CredentialCipher(SECRET))
        account.is_active = False
        await ingest_events([InboundMessage(f"update:{n}", Sender(str(40_000 + n), "Ann"), str(40_000 + n),
                                            MessageKind.TEXT, "hello", {}) for n in range(CUSTOMERS)],
                            channel_account_id=account.id, db_session=session)


async def progress(sessions) -> tuple[int, int]:
    """(processed, claimed and not processed) customer messages."""
    async with sessions() as session:
        rows = (await session.execute(
            select(Message.processed_at.is_not(None), func.count()).where(
                Message.direction == Direction.INBOUND, Message.processing_owner.is_not(None))
            .group_by(Message.processed_at.is_not(None)))).all()
    counts = dict(rows)
    return counts.get(True, 0), counts.get(False, 0)


async def test_a_message_worker_killed_mid_batch_leaves_every_message_answered_exactly_once(
        database_url, sessions, telegram_api, tmp_path):
    simulator, sim_base = telegram_api
    await backlog(sessions, simulator, sim_base)
    settings = {"dispatch_lease_seconds": "3"}  # the dead batch is taken again 3 s on
    in_flight = 0
    for _ in range(3):  # a kill that lands between two batches proves nothing: again
        first = start_worker(database_url, tmp_path, mode="--no-dispatch", **settings)
        try:
            before = (await progress(sessions))[0]
            while True:  # some batches done, and one claimed, under way
                processed, claimed = await progress(sessions)
                if processed >= before + 60 and claimed:
                    break
                assert first.poll() is None, log_of(first)
                await asyncio.sleep(0.01)
            first.kill()  # SIGKILL: no cleanup of any kind
            first.wait()
        finally:
            stop([first])
        _, in_flight = await progress(sessions)
        if in_flight:
            break
    assert in_flight > 0, "the kill never landed inside a batch"
    async with sessions() as session:
        replies_at_kill = await session.scalar(select(func.count()).select_from(OutboxMessage))
        orphaned = (await session.scalars(select(Message.id).where(
            Message.direction == Direction.INBOUND, Message.processing_owner.is_not(None),
            Message.processed_at.is_(None)))).all()
    # The dead batch wrote nothing: no reply of it is queued.
    assert not set(orphaned) & await replied_to(sessions)

    second = start_worker(database_url, tmp_path, mode="--no-dispatch", **settings)
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while (await progress(sessions))[0] < CUSTOMERS:
            assert second.poll() is None, log_of(second)
            assert asyncio.get_running_loop().time() < deadline, (await progress(sessions), log_of(second))
            await asyncio.sleep(0.1)
    finally:
        stop([second])

    async with sessions() as session:
        keys = (await session.scalars(select(OutboxMessage.idempotency_key))).all()
        history = await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == Direction.OUTBOUND))
        retried = (await session.scalars(select(Message.processing_attempts).where(
            Message.id.in_(orphaned)))).all()
    answered = collections.Counter(key.split(":")[1] for key in keys if key.startswith("reply:"))
    inbound = await inbound_ids(sessions)
    assert set(answered) == {str(i) for i in inbound}  # every message answered...
    assert set(answered.values()) == {answered.most_common(1)[0][1]}  # ...each as every other "hello" was
    assert history == len(keys)  # one line of history per queued send: nothing written twice
    assert retried and set(retried) == {2}  # the dead batch was taken again, once
    assert replies_at_kill < len(keys)


async def inbound_ids(sessions) -> list[int]:
    async with sessions() as session:
        return list((await session.scalars(select(Message.id).where(Message.direction == Direction.INBOUND))).all())


async def replied_to(sessions) -> set[int]:
    async with sessions() as session:
        keys = (await session.scalars(select(OutboxMessage.idempotency_key))).all()
    return {int(key.split(":")[1]) for key in keys if key.startswith("reply:")}
