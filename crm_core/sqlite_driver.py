"""SQLite through aiosqlite, one trip to its thread a statement, none once the write lock is held.

SQLAlchemy's aiosqlite adapter makes four trips to aiosqlite's thread for every statement (open
a cursor, execute, fetch the rows, close the cursor), each a queue put and a wake-up of the event
loop: about 430 µs a statement on this machine, against about 70 µs for one trip. This adapter
does the four in one trip; everything else (transactions, errors, types, the dialect) is
SQLAlchemy's own. `crm_core.db.create_engine` uses it for every SQLite URL.

The thread is there so that a statement waiting for SQLite's one write lock (up to the busy
timeout) or for the disk does not stop the event loop. Once a transaction has written, its
connection holds that lock until it commits or rolls back (WAL mode: readers never block it), so
its later statements cannot wait for anyone: they run on the caller's thread, without the trip
(the message worker went from 257 to 324-337 messages a second). A statement holds up the event
loop as long as it runs, which the other writers of the file wait for anyway; a long run of them
gives the loop a turn every few milliseconds. The first write of a transaction, its commit and
rollback, and everything outside a write transaction still go to the thread; a transaction that
wrote nothing ends without a trip (about 50 µs of CPU each, twice for a read-only one: its
commit, and the pool's rollback when its connection is given back).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


def _run(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> tuple:
    """The statement, its rows and what the cursor says about it: on aiosqlite's thread, or on the
    caller's while the connection holds the write lock."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to open or close
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        pass

    def close(self) -> None:
        self._rows.clear()

    async def _trip(self, operation: str, parameters: Any, many: bool) -> None:
        adapt = self._adapt_connection
        if adapt.holds_write_lock():  # nothing to wait for: no trip
            if time.monotonic() - adapt.yielded_at > YIELD_EVERY_SECONDS:
                # A long transaction lets the event loop run others' steps now and then.
                await asyncio.sleep(0)
                adapt.yielded_at = time.monotonic()
            self._take(_run(self._connection, operation, parameters, many))
            return
        # A write begins the transaction (Python's sqlite3 sends BEGIN before it) and takes the lock,
        # once it has run: one that failed (tired of waiting for the lock) took none.
        adapt.wrote = False
        async with adapt._execute_mutex:
            self._take(await self._connection._execute(_run, self._connection, operation, parameters, many))
        adapt.yielded_at = time.monotonic()
        adapt.wrote = operation.lstrip()[:7].upper() in _WRITES

    def _take(self, outcome: tuple) -> None:
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows or ())

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._trip(operation, seq_of_parameters, True)


_WRITES = ("INSERT ", "UPDATE ", "DELETE ", "REPLACE")
# At most this long on the caller's thread between two turns of the event loop (plus the statement
# running then): the trips to the thread were turns, a run of statements without them is not.
YIELD_EVERY_SECONDS = 0.005


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("wrote", "yielded_at")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self.wrote = False  # the last statement sent to the thread was a write that ran (it took the lock)
        self.yielded_at = 0.0  # (time.monotonic) when the event loop last had a turn between statements

    def commit(self) -> None:
        if not self._nothing_to_end():
            super().commit()

    def rollback(self) -> None:
        if not self._nothing_to_end():
            super().rollback()

    def _nothing_to_end(self) -> bool:
        """No transaction is open (Python's sqlite3 begins one at the first write): sqlite3's commit
        and rollback would do nothing, so they need no trip. A read-only transaction ends without
        one, and so does the pool's rollback of a connection given back after its commit. (A
        statement cancelled while on the thread might open one later; SQLAlchemy closes such a
        connection rather than give it back.)"""
        raw = self._connection._connection
        return raw is not None and not raw.in_transaction and not self._execute_mutex.locked()

    def holds_write_lock(self) -> bool:
        """Whether this connection's transaction has written, so holds SQLite's write lock until it
        ends (`in_transaction` is False again once it commits or rolls back), and nothing of it is
        on the thread now."""
        raw = self._connection._connection  # (None once closed: to the thread, which says so)
        return self.wrote and raw is not None and raw.in_transaction and not self._execute_mutex.locked()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # Statements of a write transaction run on the caller's thread (above); never two at once.
        connection = self.aiosqlite.connect(*arg, **{**kw, "check_same_thread": False})
        connection._thread.daemon = True  # as SQLAlchemy's adapter does
        return OneTripConnection(self, await_(connection))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
