"""Three dispatcher processes on PostgreSQL sending to one Telegram bot (the simulator enforces
Telegram's 30 messages a second per bot and 1 a second per chat, and answers 429 past them):
with Redis they keep the bot's limit together, no second holds more than 30 and nothing is
refused; without it, each sends the whole allowance and the
platform refuses. Both are asserted, so the test shows what Redis adds.

The simulator runs in a process of its own (tests/fakes/telegram_process.py): it judges the
limits by when sends reach it, and inside the test's process a pause of that process would bunch
the sends that arrived meanwhile into a burst no dispatcher sent."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from crm_core import accounts
from crm_core.crypto import CredentialCipher
from tests.fakes.databases import redis_url
from tests.fakes.processes import start_worker, stop, wait_running
from tests.fakes.stack import SECRET
from tests.fakes.telegram_process import telegram_simulator_process
from tests.hub.test_dispatcher_processes import queue_sends, set_active, statuses, wait_until_settled

pytestmark = pytest.mark.slow
# 500 sends in CI: 19 s at 27 a second (10% under the limit). The 3,000 take 2 minutes at
# Telegram's rate: SCRM_TEST_LIMIT_SENDS=3000 runs them (by hand; docs/testing.md says what it printed).
CHATS = 50
PER_CHAT = int(os.environ.get("SCRM_TEST_LIMIT_SENDS", "500")) // CHATS


async def seed_at_limits(sessions, sim: httpx.AsyncClient, sim_base: str, first_user: int) -> int:
    """A new bot in the simulator, at Telegram's limits, with CHATS customers who started it (each
    wrote to it) and PER_CHAT sends queued to each, on a channel account paced at those limits
    (disabled until the dispatchers run). Returns the bot's id."""
    bot = (await sim.post("/_sim/bots", json={"username": f"limits_{first_user}_bot"})).json()
    users = list(range(first_user, first_user + CHATS))
    for user_id in users:
        (await sim.post(f"/_sim/bots/{bot['id']}/users/{user_id}/messages", json={"text": "hi"})).raise_for_status()
    async with sessions() as session, session.begin():
        account = await accounts.create(
            kind="telegram", name=f"limits {bot['id']}", platform_account_id=str(bot["id"]),
            credentials={"bot_token": bot["token"], "webhook_secret": "x" * 32}, api_base=sim_base,
            settings={"mode": "webhook"}, cipher=CredentialCipher(SECRET), actor=None, db_session=session)
        await queue_sends(session, account, users, per_chat=PER_CHAT, active=False)
    return bot["id"]


async def run_three(postgres_url: str, sessions, tmp_path, seconds: float | None, **settings: str):
    procs = [start_worker(postgres_url, tmp_path, **settings) for _ in range(3)]
    try:
        for proc in procs:
            await wait_running(proc)
        await set_active(sessions, True)
        if seconds is None:
            return await wait_until_settled(sessions, procs, timeout=60 + CHATS * PER_CHAT / 10)
        await asyncio.sleep(seconds)
        return await statuses(sessions)
    finally:
        stop(procs)
        await set_active(sessions, False)


async def test_three_dispatchers_keep_telegrams_limits_with_redis_and_break_them_without(
        postgres_url, pg_sessions, tmp_path):
    redis = await redis_url()
    async with telegram_simulator_process(tmp_path) as sim_base, httpx.AsyncClient(base_url=sim_base) as sim:
        bot = await seed_at_limits(pg_sessions, sim, sim_base, first_user=20_000)

        counts = await run_three(postgres_url, pg_sessions, tmp_path, None, redis_url=redis)
        assert counts == {"sent": CHATS * PER_CHAT}
        state = (await sim.get(f"/_sim/bots/{bot}/state")).json()
        assert state["sent"] == CHATS * PER_CHAT
        # Paced together: within Telegram's 30 a second. A process the machine stalls for a
        # moment can still land the few sends whose places it had taken at once (CI33 saw two
        # 429s in one such bunch); the hub retries those after Telegram's retry_after. Unshared,
        # below, it is three times the allowance.
        assert len(state["flood_refusals"]) <= 3, state["flood_refusals"]
        assert state["busiest_second"] <= 30

        # The same with a second bot, each process pacing alone: three times the allowance, refused.
        alone = await seed_at_limits(pg_sessions, sim, sim_base, first_user=21_000)
        await run_three(postgres_url, pg_sessions, tmp_path, 8.0)
        state = (await sim.get(f"/_sim/bots/{alone}/state")).json()
        assert state["flood_refusals"]
        assert state["busiest_second"] > 30
