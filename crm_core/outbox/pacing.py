"""Pacing sends to the platforms' limits (per account, chat, member, group).

`Pacer` keeps them in this process's memory: right for one dispatcher (the embedded default).
Several dispatcher processes must share them, or each sends the platform's whole allowance:
`hub/shared_limits.py` keeps them in Redis, behind the same `Pacing` interface."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Sequence
from typing import Protocol

from crm_core.ports import RateLimit


class Pacing(Protocol):
    async def wait(self, buckets: Sequence[tuple[str, RateLimit]]) -> float:
        """Wait for a free place in every bucket and take it; the moment taken, for `sent`."""
        ...

    async def sent(self, buckets: Sequence[tuple[str, RateLimit]], taken: float) -> None:
        """The send that was given its place at `taken` goes out now (it may wait a moment more
        where several processes share the places)."""
        ...

    async def pause(self, bucket: str, seconds: float) -> None:
        """The platform said to wait (a 429's retry_after): nothing goes to `bucket` meanwhile."""
        ...


class Pacer:
    """Keeps sends per bucket (account, chat, member...) within each `RateLimit`.

    A sliding window: at most `count` sends in any `period` seconds, so a limit of
    30 a minute allows a burst of 30 and then waits, as the platforms count.

    A send that must wait books its place (the earliest every bucket allows) and sleeps
    once until then: sends queued behind a busy bucket go in turn. Waking them all at
    each free place, most to find it taken, cost 11 wakeups a send in a campaign paced
    at 1,000 a second.
    """

    # How often windows that no longer limit anything are dropped: every chat ever sent to has one.
    PRUNE_SECONDS = 30.0

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}  # the last `count` places taken, oldest first
        self._periods: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}
        self._pruned = time.monotonic()

    def _prune(self, now: float) -> None:
        """Forget the buckets whose last send has left its window and that are not paused: a
        dispatcher that sends a campaign to 100,000 chats keeps none of them afterwards."""
        self._pruned = now
        for name in [name for name, window in self._windows.items()
                     if not window or window[-1] + self._periods.get(name, 0.0) <= now]:
            del self._windows[name]
            self._periods.pop(name, None)
        for name in [name for name, until in self._paused_until.items() if until <= now]:
            del self._paused_until[name]

    def _ready_at(self, name: str, limit: RateLimit) -> float:
        window = self._windows.get(name)
        free = window[-limit.count] + limit.period if window is not None and len(window) >= limit.count else 0.0
        return max(free, self._paused_until.get(name, 0.0))

    def _take(self, name: str, limit: RateLimit, at: float) -> None:
        window = self._windows.setdefault(name, [])
        # In order: a place booked for later (held up by another bucket) may already be in it.
        bisect.insort(window, at)
        del window[:-limit.count]
        self._periods[name] = limit.period

    def _give_back(self, name: str, at: float) -> list[float] | None:
        """The place taken at `at` out of the bucket's window; the window, if it held it."""
        window = self._windows.get(name)
        if window is None or at not in window:
            return None
        window.remove(at)
        return window

    async def wait(self, buckets: Sequence[tuple[str, RateLimit]]) -> float:
        """Wait for a free place in every bucket and take it; the place taken, for `sent`."""
        while True:
            now = time.monotonic()
            if now - self._pruned > self.PRUNE_SECONDS:
                self._prune(now)
            at = max(now, max((self._ready_at(name, limit) for name, limit in buckets), default=0.0))
            for name, limit in buckets:
                self._take(name, limit, at)
            if at <= now:
                return at
            await asyncio.sleep(at - now)
            if not any(self._paused_until.get(name, 0.0) > time.monotonic() for name, _ in buckets):
                return at
            # Paused meanwhile (the platform said to wait): the place booked is given back, and
            # a place after the pause is booked instead.
            for name, _ in buckets:
                self._give_back(name, at)

    async def sent(self, buckets: Sequence[tuple[str, RateLimit]], taken: float) -> None:
        """The send that took its place at `taken` goes out now: count it from now.

        Between the two the row is marked sending in a group commit whose length
        varies; counted from the wait, two sends could reach a chat closer together
        than its limit allows."""
        now = time.monotonic()
        for name, _ in buckets:
            window = self._give_back(name, taken)
            if window is not None:
                bisect.insort(window, max(now, taken))

    async def pause(self, bucket: str, seconds: float) -> None:
        self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), time.monotonic() + seconds)
