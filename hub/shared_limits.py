"""The platforms' rate limits shared by every dispatcher process, in Redis (`SCRM_REDIS_URL`).

Each bucket (a bot, a chat, a WeCom member, a DingTalk group) is a GCRA cell: Redis keeps its
theoretical arrival time; a send is allowed when every one of its buckets allows it, and then
takes its place in all of them, in one Lua script, on Redis's clock, so that three dispatchers
together send no more than one would. A platform's "retry after N s" (a 429) pauses the bucket
for every process. GCRA with a burst tolerance of (count - 1) intervals allows what a sliding
window of `count` sends per `period` allows: a burst of `count`, then one send per interval;
shared, they keep 10% below each limit (`RedisPacer.MARGIN`).

Redis unreachable: each process goes on with its own memory at `fallback_share` of each limit
(a conservative guess at its share among the processes), says so once in the log, and asks Redis
again after a few seconds. Pacing decides only when a send goes, never whether: the outbox's
guarantees (each row once) do not depend on Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from crm_core.outbox.pacing import Pacer
from crm_core.ports import RateLimit

log = logging.getLogger(__name__)

# KEYS: for each bucket, its cell's key then its pause key. ARGV: for each bucket, the emission
# interval and the burst tolerance in microseconds, then '1' to take the place or '0' to look.
# Returns 0 (free: taken, or free to take) or the microseconds to wait.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local n = #KEYS / 2
local ready = now
local cells = {}
for i = 1, n do
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if tat < now then tat = now end
  cells[i] = tat
  if tat - tolerance > ready then ready = tat - tolerance end
  local paused = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if paused > ready then ready = paused end
end
if ready > now then return ready - now end
if ARGV[2 * n + 1] ~= '1' then return 0 end
for i = 1, n do
  local tat = cells[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[2 * i - 1], tat, 'PX', math.floor((tat - now) / 1000) + 1000)
end
return 0
"""

# KEYS[1]: the pause key; ARGV[1]: microseconds from now. Only ever lengthens a pause.
_PAUSE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], until_, 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""


def _micros(seconds: float) -> int:
    return max(1, round(seconds * 1_000_000))


class RedisPacer:
    """`crm_core.outbox.pacing.Pacing` over Redis, with this process's memory as the fallback."""

    RETRY_REDIS_AFTER = 5.0  # seconds on the local fallback before Redis is asked again
    # A send's place is taken just before its HTTP call; it reaches the platform a few ms later,
    # not equally late from every process: at exactly the platform's rate those delays bunch
    # sends into 429s. 10% below the rate absorbs them.
    MARGIN = 0.9

    def __init__(self, client: Redis, *, prefix: str = "scrm:pace:", fallback_share: float = 0.25) -> None:
        self.client = client
        self.prefix = prefix
        self.fallback_share = fallback_share
        self.local = Pacer()
        self._take = client.register_script(_TAKE)
        self._pause = client.register_script(_PAUSE)
        self._down_until = 0.0
        self._local_takes: set[float] = set()  # moments the fallback handed out, for `sent`

    def _conservative(self, buckets: Sequence[tuple[str, RateLimit]]) -> list[tuple[str, RateLimit]]:
        return [(name, RateLimit(limit.count, limit.period / self.fallback_share)) for name, limit in buckets]

    def _lost(self, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("Redis unreachable (%s: %s): pacing sends from this process's memory at %.0f%% of each "
                        "platform limit; trying Redis again in %.0f s", type(exc).__name__, exc,
                        self.fallback_share * 100, self.RETRY_REDIS_AFTER)
        self._down_until = time.monotonic() + self.RETRY_REDIS_AFTER

    def _script_args(self, buckets: Sequence[tuple[str, RateLimit]]) -> tuple[list[str], list[int]]:
        keys: list[str] = []
        args: list[int] = []
        for name, limit in buckets:
            keys += [f"{self.prefix}{name}", f"{self.prefix}{name}:pause"]
            interval = limit.interval / self.MARGIN
            args += [_micros(interval), _micros(interval * (limit.count - 1))]
        return keys, args

    async def _until_free(self, buckets: Sequence[tuple[str, RateLimit]], take: bool) -> bool:
        """Wait until every bucket has a place (and take it); False if Redis could not be asked."""
        keys, args = self._script_args(buckets)
        while time.monotonic() >= self._down_until:
            try:
                wait = int(await self._take(keys=keys, args=[*args, 1 if take else 0]))
            except (RedisError, OSError) as exc:
                self._lost(exc)
                return False
            if self._down_until:
                log.warning("Redis reachable again: pacing sends with the other processes")
                self._down_until = 0.0
            if wait <= 0:
                return True
            await asyncio.sleep(wait / 1_000_000)
        return False

    async def wait(self, buckets: Sequence[tuple[str, RateLimit]]) -> float:
        """Until every bucket has a place; the place is taken by `sent`, just before the send,
        so that what reaches the platform is spaced as the places were."""
        if await self._until_free(buckets, take=False):
            return time.monotonic()
        taken = await self.local.wait(self._conservative(buckets))
        self._local_takes.add(taken)
        return taken

    async def sent(self, buckets: Sequence[tuple[str, RateLimit]], taken: float) -> None:
        if taken in self._local_takes:
            self._local_takes.discard(taken)
            await self.local.sent(self._conservative(buckets), taken)
        elif not await self._until_free(buckets, take=True):  # another process may have come first: wait
            await self.local.wait(self._conservative(buckets))

    async def pause(self, bucket: str, seconds: float) -> None:
        await self.local.pause(bucket, seconds)
        try:
            await self._pause(keys=[f"{self.prefix}{bucket}:pause"], args=[_micros(seconds)])
        except (RedisError, OSError) as exc:
            self._lost(exc)

    async def close(self) -> None:
        await self.client.aclose()


def connect(url: str, **options: Any) -> Redis:
    """A client that gives up quickly: a send waits on Redis, so an unreachable Redis must fail
    fast into the fallback, not hang."""
    return Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, **options)


class RedisTokens:
    """`channels.tencent_client.SharedTokens` in Redis: WeCom and WeChat access tokens fetched by
    one process and used by all (a WeChat Official Account's new token retires the previous one)."""

    def __init__(self, client: Redis, *, prefix: str = "scrm:") -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> tuple[str, float] | None:
        async with self.client.pipeline(transaction=False) as pipe:
            value, left = await pipe.get(self.prefix + key).pttl(self.prefix + key).execute()
        if value is None or left is None or left <= 0:
            return None
        return (value.decode() if isinstance(value, bytes) else str(value)), left / 1000

    async def put(self, key: str, value: str, seconds: float) -> None:
        await self.client.set(self.prefix + key, value, px=max(1000, int(seconds * 1000)))

    def lock(self, key: str) -> Any:
        # Held while one process asks the platform (seconds at most); given up after 15 s so a
        # process that died holding it does not block the others for long.
        return self.client.lock(f"{self.prefix}{key}:lock", timeout=15, blocking_timeout=20)

