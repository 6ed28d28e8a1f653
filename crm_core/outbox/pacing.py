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
        """The send that was given its place at `taken` goes out now, or after a short wait: the
        sends before it went late, or other processes took the place."""
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
    # How much sooner than its moment a send may go: a group commit's sends go together, in a
    # burst no larger than the platforms' own counters let through (Telegram's, like its
    # simulator's, three at 30 a second); waking them one by one cost a fifth more CPU a send.
    EARLY = 0.05

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}  # the last `count` places taken, oldest first
        self._gone: dict[str, list[float]] = {}  # when the last `count` sends went (or go), oldest first
        self._periods: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}
        self._pruned = time.monotonic()

    def _prune(self, now: float) -> None:
        """Forget the buckets whose last send has left its window and that are not paused: a
        dispatcher that sends a campaign to 100,000 chats keeps none of them afterwards."""
        self._pruned = now
        for windows in (self._windows, self._gone):
            for name in [name for name, window in windows.items()
                         if not window or window[-1] + self._periods.get(name, 0.0) <= now]:
                del windows[name]
        self._periods = {name: period for name, period in self._periods.items()
                         if name in self._windows or name in self._gone}
        for name in [name for name, until in self._paused_until.items() if until <= now]:
            del self._paused_until[name]

    @staticmethod
    def _frees_at(window: list[float] | None, limit: RateLimit) -> float:
        """When a window of `limit` has room for one more (0 if it has room now)."""
        return window[-limit.count] + limit.period if window is not None and len(window) >= limit.count else 0.0

    def _ready_at(self, name: str, limit: RateLimit) -> float:
        return max(self._frees_at(self._windows.get(name), limit), self._paused_until.get(name, 0.0))

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

    def _free_after(self, buckets: Sequence[tuple[str, RateLimit]]) -> float:
        """The earliest moment every bucket allows another send, counted from the sends that went."""
        return max((self._frees_at(self._gone.get(name), limit) for name, limit in buckets), default=0.0)

    async def sent(self, buckets: Sequence[tuple[str, RateLimit]], taken: float) -> None:
        """The send that took its place at `taken` goes out now, or, if the sends before it went
        late, at the moment each limit gives it counted from theirs (up to `EARLY` before it): it
        books that moment and sleeps once until then.

        Between its place and now the row was marked sending in a group commit, which releases
        the sends it marked together: counted from their places, they would reach the platform
        in one burst (ten answers at 30 a second drew a 429 from Telegram under load). Each
        counted from its booked moment, not from when it went, going early or waking late
        gains or loses nothing over a run. A pause asked for meanwhile (a 429's retry_after, tens
        of seconds perhaps) is not waited out here: the row is marked sending, with a lease its
        wait and its call must end within; it takes its 429 and is retried after the pause."""
        now = time.monotonic()
        due = max(now, self._free_after(buckets))
        for name, limit in buckets:
            gone = self._gone.setdefault(name, [])
            bisect.insort(gone, due)
            del gone[:-limit.count]
            self._periods[name] = limit.period
            # Its place in the windows moves too: a send booked after it counts from when it goes.
            window = self._give_back(name, taken)
            if window is not None:
                bisect.insort(window, max(due, taken))
        if due - self.EARLY > now:
            await asyncio.sleep(due - self.EARLY - now)

    async def pause(self, bucket: str, seconds: float) -> None:
        self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), time.monotonic() + seconds)
