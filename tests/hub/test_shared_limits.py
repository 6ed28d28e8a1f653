"""Rate limits shared through Redis: two pacers (as two dispatcher processes) keep one bucket's
limit together, a 429's pause reaches both, and with Redis away each goes on alone at a
conservative share of the limit, with a warning."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from crm_core.ports import RateLimit
from hub.shared_limits import RedisPacer, connect
from tests.fakes.databases import redis_url


@pytest.fixture
async def shared():
    url = await redis_url()
    prefix = f"test:{uuid.uuid4().hex}:"  # this test's buckets only
    pacers = [RedisPacer(connect(url), prefix=prefix) for _ in range(2)]
    yield pacers
    for pacer in pacers:
        await pacer.close()


async def test_two_pacers_keep_one_limit_between_them(shared):
    limit = [("bot:1", RateLimit(1, 0.1))]
    taken: list[float] = []

    async def send(pacer: RedisPacer, n: int) -> None:
        for _ in range(n):
            await pacer.sent(limit, await pacer.wait(limit))
            taken.append(asyncio.get_running_loop().time())

    await asyncio.gather(send(shared[0], 6), send(shared[1], 6))
    taken.sort()
    gaps = [b - a for a, b in zip(taken, taken[1:], strict=False)]
    # Alone, each would have sent its six 0.1 s apart, side by side: pairs at once.
    assert min(gaps) >= 0.09, gaps
    assert taken[-1] - taken[0] >= 1.0


async def test_a_burst_of_count_then_one_per_interval(shared):
    limit = [("member:li", RateLimit(3, 0.6))]
    taken = []
    for pacer in (shared[0], shared[0], shared[0], shared[1]):  # the other process: the fourth waits
        await pacer.sent(limit, await pacer.wait(limit))
        taken.append(asyncio.get_running_loop().time())
    assert taken[2] - taken[0] < 0.1  # the burst
    assert taken[3] - taken[0] >= 0.15


async def test_a_pause_after_a_429_holds_every_process(shared):
    limit = [("bot:2", RateLimit(30, 1.0))]
    await shared[0].sent(limit, await shared[0].wait(limit))
    await shared[0].pause("bot:2", 0.5)
    started = asyncio.get_running_loop().time()
    await shared[1].sent(limit, await shared[1].wait(limit))
    assert asyncio.get_running_loop().time() - started >= 0.45


async def test_without_redis_each_process_paces_alone_at_its_share_and_says_so(caplog):
    pacer = RedisPacer(connect("redis://127.0.0.1:1/0"), prefix="test:", fallback_share=0.5)
    limit = [("bot:3", RateLimit(1, 0.1))]  # alone at half: one every 0.2 s
    with caplog.at_level(logging.WARNING, logger="hub.shared_limits"):
        taken = []
        for _ in range(4):
            moment = await pacer.wait(limit)
            await pacer.sent(limit, moment)
            taken.append(moment)
    await pacer.close()
    assert taken[-1] - taken[0] >= 0.55
    warnings = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1 and "50% of each platform limit" in warnings[0]


async def test_processes_share_one_wecom_token_and_its_renewal():
    """Two processes' WeCom clients: the token is fetched once for both; when the platform refuses it,
    the one that renews shares the new one, and the other takes it instead of fetching again (a
    WeChat Official Account's new token would otherwise retire the other's)."""
    import httpx

    from channels.tencent_client import AppKey
    from channels.wecom.client import wecom_client
    from hub.shared_limits import RedisTokens

    url = await redis_url()
    fetched: list[str] = []

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            fetched.append(f"token-{len(fetched) + 1}")
            return httpx.Response(200, json={"errcode": 0, "access_token": fetched[-1], "expires_in": 7200})
        return httpx.Response(200, json={"errcode": 0, "token": request.url.params["access_token"]})

    app = AppKey("http://wecom.test", f"corp-{uuid.uuid4().hex[:8]}", "secret")
    stores = [RedisTokens(connect(url), prefix=f"test:{uuid.uuid4().hex}:")]
    stores.append(RedisTokens(connect(url), prefix=stores[0].prefix))
    clients = []
    for store in stores:
        client = wecom_client()
        client._http = httpx.AsyncClient(transport=httpx.MockTransport(platform))
        client.shared = store
        clients.append(client)
    try:
        first = await asyncio.gather(*(c.access_token(app) for c in clients))
        assert first == ["token-1", "token-1"] and fetched == ["token-1"]
        renewed = await clients[0].access_token(app, force=True)  # the platform said 42001
        assert renewed == "token-2" and fetched == ["token-1", "token-2"]
        taken = await clients[1].access_token(app, force=True)  # its token-1 refused too: takes token-2
        assert taken == "token-2" and fetched == ["token-1", "token-2"]
    finally:
        for store in stores:
            await store.client.aclose()
