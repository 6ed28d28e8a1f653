"""Group commit: what a caller is told is committed, whatever happens to the other callers."""

from __future__ import annotations

import asyncio
import gc

import pytest

from crm_core.group_commit import GroupCommit


class _Sessions:
    """What GroupCommit asks of a sessionmaker: a session whose transaction does nothing."""

    def __call__(self) -> _Sessions:
        return self

    def begin(self) -> _Sessions:
        return self

    async def __aenter__(self) -> _Sessions:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False


async def test_a_caller_cancelled_mid_commit_leaves_the_batch_to_write_its_item_and_answer_the_others():
    committing, release, written = asyncio.Event(), asyncio.Event(), []

    async def write(session, items):
        committing.set()
        await release.wait()
        written.extend(items)
        return [f"stored {item}" for item in items]

    group = GroupCommit(_Sessions(), write)
    first, second = asyncio.create_task(group.submit(1)), asyncio.create_task(group.submit(2))
    await committing.wait()
    first.cancel()  # a webhook whose client hung up mid-commit
    await asyncio.sleep(0)
    release.set()
    assert await second == "stored 2"
    with pytest.raises(asyncio.CancelledError):
        await first
    await group.close()
    assert written == [1, 2]


async def test_a_batch_that_fails_is_written_item_by_item_and_only_the_bad_item_fails():
    unretrieved = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))
    committing, release, attempts = asyncio.Event(), asyncio.Event(), []

    async def write(session, items):
        attempts.append(list(items))
        committing.set()
        await release.wait()
        if "bad" in items:
            raise ValueError("a unique key")
        return [f"stored {item}" for item in items]

    group = GroupCommit(_Sessions(), write)
    good, bad, gone = (asyncio.create_task(group.submit(item)) for item in ("good", "bad", "gone"))
    await committing.wait()
    gone.cancel()  # its caller gone: its item is still written, its answer passed over
    await asyncio.sleep(0)
    release.set()
    assert await good == "stored good"
    with pytest.raises(ValueError, match="a unique key"):
        await bad
    await group.close()
    assert attempts == [["good", "bad", "gone"], ["good"], ["bad"], ["gone"]]
    del good, bad, gone
    gc.collect()
    assert unretrieved == []  # no "exception was never retrieved" of an answer nobody waited for


async def test_a_busy_writer_lingers_to_gather_its_next_batch_and_a_lone_item_never_waits():
    holding, release, batches = asyncio.Event(), asyncio.Event(), []

    async def write(session, items):
        batches.append(list(items))
        if len(batches) == 1:  # the first commit is slow: items arrive meanwhile
            holding.set()
            await release.wait()
        return [f"stored {item}" for item in items]

    group = GroupCommit(_Sessions(), write, linger=1.0)
    lone = asyncio.create_task(group.submit("lone"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert holding.is_set(), "the first item after idle waited for company"
    arrived = [asyncio.create_task(group.submit(item)) for item in ("a", "b")]
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0.1)  # well inside the linger: the writer is busy, so it is still gathering
    late = asyncio.create_task(group.submit("c"))
    assert await lone == "stored lone"
    assert [await task for task in (*arrived, late)] == ["stored a", "stored b", "stored c"]
    await group.close()
    assert batches == [["lone"], ["a", "b", "c"]]

    batches.clear()  # idle again: the next lone item goes at once
    again = asyncio.create_task(group.submit("again"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert batches == [["again"]]
    assert await again == "stored again"
