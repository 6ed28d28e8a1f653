"""Group commit: writes that arrive together share one transaction.

A commit is an fsync (SQLite with synchronous=FULL) or a WAL flush
(PostgreSQL); paid per webhook or per outbox state change it caps throughput
long before the CPU does. Callers `submit` an item and wait: a background task
takes everything queued, `write`s it in one transaction and answers each
caller only after that commit, so what a caller was told is durable. If a
batch fails, each item is retried alone in its own transaction, so one bad
item cannot fail the others. The task ends when the queue is empty and starts
again with the next item, so an idle writer holds nothing.

A writer may `linger`: when items arrived while it committed (it is busy), it
waits that long before taking the next batch, so that batch holds more. Without
it, a batch holds what arrived in one commit's time, and a transaction's fixed
cost (its statements, its commit) is shared by few. The first batch after idle
goes at once: a lone item never waits for company.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Queued(Generic[Item, Result]):
    item: Item
    done: asyncio.Future[Result]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 write: Callable[[AsyncSession, list[Item]], Awaitable[list[Result]]], *,
                 max_batch: int = 256, name: str = "group-commit", linger: float = 0.0) -> None:
        self.sessions = sessions
        self.linger = linger
        self.write = write
        self.max_batch = max_batch
        self.name = name
        self._queue: list[_Queued[Item, Result]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """`item` written and committed; its result. Raises what writing it alone raised."""
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(item, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self.name)
        # A caller cancelled mid-commit cancels its own future only, never the batch's task, which
        # writes the item with the others and passes over its answer. (No shield: it cost a
        # future and two callbacks a call, two calls a campaign's send.)
        return await done

    async def _drain(self) -> None:
        busy = False
        while self._queue:
            if busy and self.linger and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.linger)
            busy = True
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                results = await self._commit([queued.item for queued in batch])
            except Exception as exc:
                if len(batch) > 1:
                    log.warning("%s: a batch of %d failed (%s: %s); writing its items one by one",
                                self.name, len(batch), type(exc).__name__, exc)
                for queued in batch:
                    try:
                        [result] = await self._commit([queued.item])
                    except Exception as exc:
                        _settle(queued.done, error=exc)
                    else:
                        _settle(queued.done, result=result)
                continue
            for queued, result in zip(batch, results, strict=True):
                _settle(queued.done, result=result)

    async def _commit(self, items: list[Item]) -> list[Result]:
        async with self.sessions() as session, session.begin():
            return await self.write(session, items)

    async def close(self) -> None:
        """Wait for what is queued to be written."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _settle(done: asyncio.Future, *, result: object = None, error: BaseException | None = None) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
