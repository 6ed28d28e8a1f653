"""Answers a transaction asks for again and again (who the active reps are, which teams take a
channel), read once and kept in the session until the transaction ends or the session writes a
table the answer was read from: the worker's batch asks for each of its messages.

An answer is forgotten when the session holds or flushes a new, changed or deleted object of one
of its tables, or runs an INSERT, UPDATE or DELETE on one of them; plain SQL that is not a query
makes it forget every answer. What other transactions commit meanwhile is not seen (a query asked
again under PostgreSQL's READ COMMITTED could see it): a transaction is short, and who the reps
and teams are changes rarely.

`Preloaded` is the batch's other kind of memory: which row each of its contacts has in a table
(the bot's state, the open lead), read for all of them at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.dml import UpdateBase

Answer = TypeVar("Answer")
_MEMO = "scrm_memo"  # in the session's info: key -> (the entities read, the answer)


async def remembered(session: AsyncSession, key: Hashable, reads: tuple[type, ...],
                     ask: Callable[[], Awaitable[Answer]]) -> Answer:
    """The answer `ask` gave earlier in this transaction under `key`, if nothing it `reads` was
    written since; else asks now and keeps the answer."""
    sync = session.sync_session
    memo = _memo(sync)
    if key in memo:
        tables = {read.__table__ for read in reads}
        if not any(type(o).__table__ in tables for o in itertools.chain(sync.new, sync.dirty, sync.deleted)):
            return memo[key][1]
        del memo[key]  # written and not flushed yet: the query flushes it, as it would have
    answer = await ask()
    memo[key] = (reads, answer)
    return answer


def _memo(session: Session) -> dict[Hashable, tuple[tuple[type, ...], Any]]:
    memo = session.info.get(_MEMO)
    if memo is None:
        memo = session.info[_MEMO] = {}
        event.listen(session, "after_flush", _flushed)
        event.listen(session, "do_orm_execute", _executed)
        event.listen(session, "after_transaction_end", _ended)
    return memo


def _forget(session: Session, written: set[Any] | None) -> None:
    """Drop the answers read from any of the tables `written` (None: all of them)."""
    memo = session.info.get(_MEMO)
    if not memo:
        return
    for key, (reads, _answer) in list(memo.items()):
        if written is None or any(read.__table__ in written for read in reads):
            del memo[key]


def _flushed(session: Session, _context: UOWTransaction) -> None:
    _forget(session, {type(o).__table__ for o in itertools.chain(session.new, session.dirty, session.deleted)})


def tables_written(state: ORMExecuteState) -> set[Table] | None:
    """The tables a statement run through the session writes: none for a query, None (any of
    them) for plain SQL that is not one."""
    if state.is_insert or state.is_update or state.is_delete:
        return {state.statement.table} if isinstance(state.statement, UpdateBase) else None
    return set() if state.is_select else None


def _executed(state: ORMExecuteState) -> None:
    written = tables_written(state)
    if written is None or written:
        _forget(state.session, written)


def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None or transaction.nested:  # not a flush's own sub-transaction
        _forget(session, None)  # the transaction over, or a savepoint that may have rolled back


class Preloaded:
    """Which row a contact has in one table (its bot state, its open lead), read for a whole batch
    at once and kept in the session's `info` under `key`: contact id -> row id, None for none.
    Only a session that preloaded uses it; the code that creates such a row `record`s it."""

    def __init__(self, key: str) -> None:
        self.key = key

    def load(self, session: AsyncSession | Session, contact_ids: Iterable[int], rows: dict[int, int]) -> None:
        """The batch's contacts, none of whom has a row but those in `rows` (contact id -> row id)."""
        session.info.setdefault(self.key, {}).update({**dict.fromkeys(contact_ids), **rows})

    def lookup(self, session: AsyncSession | Session, contact_id: int) -> tuple[bool, int | None]:
        """(preloaded, the row id or None); (False, None) for a contact not preloaded."""
        known = session.info.get(self.key, {})
        return (True, known[contact_id]) if contact_id in known else (False, None)

    def record(self, session: AsyncSession | Session, contact_id: int, row_id: int | None) -> None:
        """The contact's row as it is now, where this session preloaded."""
        known = session.info.get(self.key)
        if known is not None:
            known[contact_id] = row_id
