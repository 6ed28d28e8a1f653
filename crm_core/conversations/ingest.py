"""Ingest: store normalized inbound events idempotently and resolve who wrote.

A platform retry carries the same platform message id; storing it again is a
no-op. Callers commit before answering the platform, so an acknowledged
message is always in the database.

`IngestWriter` is the hot path for webhooks and pollers: concurrent requests
are stored together in one transaction with set-based statements (group
commit), and each request is answered only after that commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, case, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from crm_core import accounts, observe
from crm_core.db import UTCDateTime, utcnow
from crm_core.group_commit import GroupCommit
from crm_core.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    ThreadAlias,
    UserHandle,
)
from crm_core.ports import InboundEvent, InboundMessage, ReachabilityChanged, Sender
from crm_core.sql import among, dialect_of, insert_many, update_many

log = logging.getLogger(__name__)

_CHUNK = 500  # keeps IN lists and multi-row inserts well under every backend's limits

_identity = Identity.__table__
# What the batch's messages say of their senders, written in one statement (`update_many`): these
# columns keep their value where a message says nothing of them.
_KEPT_UNLESS_SAID = ("last_inbound_at", "display_name", "username", "language")

# What every batch asks, built once (a statement built per batch, its cache key computed each
# time, was a tenth of a webhook's CPU): Core statements, their lists given when they run.
_message = Message.__table__
_conversation = Conversation.__table__
_IDENTITIES = select(_identity.c.external_id, _identity.c.id, _identity.c.contact_id).where(
    _identity.c.channel_account_id == bindparam("account"),
    _identity.c.external_id.in_(bindparam("ids", expanding=True)))
# The status a literal, which PostgreSQL's generic plans (kept for a prepared statement after its
# fifth run) can match to the partial index of open threads: a parameter they cannot.
_IS_OPEN = _conversation.c.status == literal_column(f"'{ConversationStatus.OPEN.value}'")
_OPEN_CONVERSATIONS = select(_conversation.c.external_thread_id, _conversation.c.id).where(
    _conversation.c.channel_account_id == bindparam("account"),
    _conversation.c.external_thread_id.in_(bindparam("ids", expanding=True)), _IS_OPEN)
# What a batch must know before it writes, asked in one statement: which of its messages are
# stored already (a platform's retries), its senders' identities, its threads' open conversations.
# As three statements they were three trips to SQLite's thread (three round trips to PostgreSQL),
# a sixth of a small batch's CPU. Each row: what it is, its key, then one or two ids. Each list is
# one parameter (`among`): one statement for PostgreSQL to prepare, whatever their lengths.
_STORED, _IDENTITY, _OPEN = "stored", "identity", "open"
_KNOWN = union_all(
    select(literal_column(f"'{_STORED}'"), _message.c.platform_message_id, null(), null()).where(
        _message.c.channel_account_id == bindparam("account"),
        among(_message.c.platform_message_id, name="message_ids")),
    select(literal_column(f"'{_IDENTITY}'"), *_IDENTITIES.selected_columns).where(
        _identity.c.channel_account_id == bindparam("account"), among(_identity.c.external_id, name="sender_ids")),
    select(literal_column(f"'{_OPEN}'"), *_OPEN_CONVERSATIONS.selected_columns, null()).where(
        _conversation.c.channel_account_id == bindparam("account"),
        among(_conversation.c.external_thread_id, name="thread_ids"), _IS_OPEN))
_CONVERSATIONS_TOUCHED = _conversation.update().where(
    _conversation.c.id.in_(bindparam("ids", expanding=True))).values(
    last_message_at=bindparam("now", type_=UTCDateTime()))


@dataclass
class IngestResult:
    stored_message_ids: list[int] = field(default_factory=list)
    duplicates: int = 0


async def ingest_events(
    events: Sequence[InboundEvent], *, channel_account_id: int, db_session: AsyncSession
) -> IngestResult:
    """Store each event once. Does not commit: the caller does, then acknowledges."""
    [result] = await ingest_batch([(channel_account_id, events)], db_session=db_session)
    return result


async def ingest_batch(
    items: Sequence[tuple[int, Sequence[InboundEvent]]], *, db_session: AsyncSession,
    request_ids: Sequence[str | None] | None = None,
) -> list[IngestResult]:
    """Store several requests' events with a handful of statements; one result per item
    (`request_ids`: each item's webhook request, kept with its messages; default: the current one)."""
    requests = list(request_ids) if request_ids is not None else [observe.request_id.get()] * len(items)
    if db_session.new or db_session.dirty or db_session.deleted:
        await db_session.flush()  # what the caller added first, as a statement on the session would
    # Core statements on the session's connection: no ORM object is read or written here.
    db = await db_session.connection()
    results = [IngestResult() for _ in items]
    by_account: dict[int, list[tuple[int, InboundEvent]]] = {}
    for index, (account_id, events) in enumerate(items):
        by_account.setdefault(account_id, []).extend((index, event) for event in events)
    for account_id, entries in by_account.items():
        for start in range(0, len(entries), _CHUNK):
            await _store_account_events(account_id, entries[start:start + _CHUNK], results, requests, db)
    duplicates = sum(r.duplicates for r in results)
    if duplicates:
        log.info("%d platform retries ignored", duplicates)
    return results


async def _store_account_events(account_id: int, entries: list[tuple[int, InboundEvent]],
                                results: list[IngestResult], requests: list[str | None],
                                db: AsyncConnection) -> None:
    existing: set[str] = set()
    known_identities: dict[str, dict[str, Any]] = {}
    open_threads: dict[str, int] = {}
    for what, key, first_id, second_id in (await db.execute(_KNOWN, {
            "account": account_id, "message_ids": [event.platform_message_id for _, event in entries],
            "sender_ids": list({event.sender.external_id for _, event in entries}),
            "thread_ids": list({event.thread_id for _, event in entries})})).all():
        if what == _STORED:
            existing.add(key)
        elif what == _IDENTITY:
            known_identities[key] = {"id": first_id, "contact_id": second_id}
        else:
            open_threads[key] = first_id
    fresh: list[tuple[int, InboundEvent]] = []
    for index, event in entries:
        if event.platform_message_id in existing:
            results[index].duplicates += 1
        else:
            existing.add(event.platform_message_id)  # the same id twice in one batch
            fresh.append((index, event))
    if not fresh:
        return

    fresh = await _follow_thread_aliases(account_id, fresh, open_threads, db)
    identities = await _resolve_identities(account_id, [event.sender for _, event in fresh], known_identities, db)
    conversations = await _open_conversations(
        account_id, {event.thread_id: identities[event.sender.external_id] for _, event in fresh}, open_threads, db)
    authors = await _staff_authors(account_id, fresh, db)
    now = utcnow()
    rows = []
    for index, event in fresh:
        if isinstance(event, InboundMessage):
            kind, body, attachments = event.kind, event.text, event.attachments
        else:
            kind, body, attachments = MessageKind.EVENT, event.reason, event.attachments
        identity = identities[event.sender.external_id]
        staff = _staff_author(event)
        rows.append({
            "conversation_id": conversations[event.thread_id],
            "channel_account_id": account_id,
            "identity_id": identity["id"],
            # What a person of the company wrote in the customer's chat is the company's message.
            "direction": (Direction.OUTBOUND if staff else Direction.INBOUND).value,
            "author_user_id": authors.get(staff) if staff else None,
            "kind": kind.value,
            "text": body,
            "attachments": attachments,
            "raw": event.raw,
            "platform_message_id": event.platform_message_id,
            "created_at": now,
            "processing_attempts": 0,
            "request_id": requests[index],
        })
    inserted = dict(await insert_many(
        db, Message.__table__, rows, conflict_columns=("channel_account_id", "platform_message_id"),
        returning=("platform_message_id", "id")))

    identity_changes: dict[int, dict[str, Any]] = {}
    for index, event in fresh:
        message_id = inserted.get(event.platform_message_id)
        if message_id is None:  # a concurrent retry in another process won
            results[index].duplicates += 1
            continue
        results[index].stored_message_ids.append(message_id)
        if _staff_author(event):
            continue  # the customer did not write: nothing to learn about them
        identity_id = identities[event.sender.external_id]["id"]
        change = identity_changes.setdefault(identity_id, {"id": identity_id, **dict.fromkeys(_KEPT_UNLESS_SAID)})
        if isinstance(event, ReachabilityChanged):
            change.update(reachable=event.reachable, unreachable_reason=None if event.reachable else event.reason,
                          unreachable_since=None if event.reachable else now)
            if event.reachable:  # following / unblocking is an interaction (WeChat's reply window)
                change.update(last_inbound_at=now)
        else:
            # Someone who writes to us can be written to (a blocked bot cannot
            # receive messages from the person who blocked it).
            change.update(last_inbound_at=now, reachable=True, unreachable_reason=None, unreachable_since=None)
        # Names change; keep what the platform says now, where it says anything.
        change.update({k: v for k, v in (("display_name", event.sender.display_name),
                                         ("username", event.sender.username),
                                         ("language", event.sender.language)) if v})
    await update_many(db, _identity, list(identity_changes.values()), kept_when_none=_KEPT_UNLESS_SAID)
    await _record_thread_aliases(account_id, fresh, conversations, now, db)
    touched = sorted({conversations[event.thread_id] for _, event in fresh})
    await db.execute(_CONVERSATIONS_TOUCHED, {"ids": touched, "now": now})


def _staff_author(event: InboundEvent) -> str | None:
    return event.staff_author if isinstance(event, InboundMessage) else None


async def _staff_authors(account_id: int, fresh: list[tuple[int, InboundEvent]],
                         db: AsyncConnection) -> dict[str, int]:
    """platform userid -> the user with that handle: on this account first (a WeCom app's members),
    else on another of the company's apps (a 微信客服 servicer is a member of the corp's WeCom app)."""
    wanted = {staff for _, event in fresh if (staff := _staff_author(event))}
    if not wanted:
        return {}
    rows = await db.execute(
        select(UserHandle.external_id, UserHandle.user_id).where(UserHandle.external_id.in_(wanted))
        .order_by(case((UserHandle.channel_account_id == account_id, 1), else_=0), UserHandle.id.desc()))
    return dict(rows.all())  # the last row of an id wins: this account's, then the oldest


async def _follow_thread_aliases(account_id: int, fresh: list[tuple[int, InboundEvent]],
                                 open_threads: dict[str, int], db: AsyncConnection) -> list[tuple[int, InboundEvent]]:
    """Events whose thread has no open conversation (`open_threads`: the batch's threads that have
    one), but one of whose aliases names one (an email reply whose References lost the root, a
    reply by subject), join that conversation, which is added to `open_threads`."""
    wanted = {a for _, e in fresh if isinstance(e, InboundMessage) for a in e.thread_aliases}
    if not wanted:
        return fresh
    rows = await db.execute(
        select(ThreadAlias.alias, Conversation.external_thread_id, Conversation.id)
        .join(Conversation, Conversation.id == ThreadAlias.conversation_id)
        .where(ThreadAlias.channel_account_id == account_id, ThreadAlias.alias.in_(wanted),
               Conversation.status == ConversationStatus.OPEN))
    by_alias = {alias: (thread, conversation_id) for alias, thread, conversation_id in rows.all()}
    followed = []
    for index, event in fresh:
        if isinstance(event, InboundMessage) and event.thread_aliases and event.thread_id not in open_threads:
            match = next((by_alias[a] for a in event.thread_aliases if a in by_alias), None)
            if match is not None:
                event = dataclasses.replace(event, thread_id=match[0])
                open_threads[match[0]] = match[1]
        followed.append((index, event))
    return followed


async def _record_thread_aliases(account_id: int, fresh: list[tuple[int, InboundEvent]],
                                 conversations: dict[str, int], now: dt.datetime, db: AsyncConnection) -> None:
    """Each alias names the conversation that last used it."""
    rows = {a: {"channel_account_id": account_id, "alias": a, "conversation_id": conversations[e.thread_id],
                "created_at": now}
            for _, e in fresh if isinstance(e, InboundMessage) for a in e.thread_aliases}
    if not rows:
        return
    stmt = dialect_of(db).insert(ThreadAlias.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["channel_account_id", "alias"],
                                      set_={"conversation_id": stmt.excluded.conversation_id})
    await db.execute(stmt, list(rows.values()))


async def _resolve_identities(account_id: int, senders: list[Sender], known: dict[str, dict[str, Any]],
                              db: AsyncConnection) -> dict[str, dict[str, Any]]:
    """external id -> {"id", "contact_id"}, creating contacts for first-time senders (`known`: the
    identities found of the batch's senders).

    Set-based: two statements however many new senders a batch brings.
    """
    wanted = {s.external_id: s for s in senders}
    found = {ext: known[ext] for ext in wanted if ext in known}
    missing = [s for ext, s in wanted.items() if ext not in found]
    if not missing:
        return found
    now = utcnow()
    origins = {f"{account_id}:{s.external_id}": s for s in missing}
    contact_ids = dict(await insert_many(
        db, Contact.__table__,
        [{"display_name": s.display_name, "language": s.language, "origin": origin, "is_staff": s.is_staff,
          "stage": "new", "created_at": now, "updated_at": now} for origin, s in origins.items()],
        conflict_columns=("origin",), returning=("origin", "id")))
    if len(contact_ids) < len(origins):  # a contact first seen as this sender already exists
        rows = await db.execute(select(Contact.origin, Contact.id).where(
            Contact.origin.in_([o for o in origins if o not in contact_ids])))
        contact_ids.update(dict(rows.all()))
    created = dict(await insert_many(
        db, Identity.__table__,
        [{"contact_id": contact_ids[origin], "channel_account_id": account_id, "external_id": s.external_id,
          "display_name": s.display_name, "username": s.username, "language": s.language, "reachable": True,
          "created_at": now} for origin, s in origins.items()],
        conflict_columns=("channel_account_id", "external_id"), returning=("external_id", "id")))
    for origin, sender in origins.items():
        if sender.external_id in created:
            found[sender.external_id] = {"id": created[sender.external_id], "contact_id": contact_ids[origin]}
    raced = [s.external_id for s in missing if s.external_id not in created]
    if raced:  # created concurrently by another process: use theirs
        found.update(await _find_identities(account_id, raced, db))
    return found


async def _find_identities(account_id: int, external_ids: list[str], db: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await db.execute(_IDENTITIES, {"account": account_id, "ids": external_ids})
    return {ext: {"id": id_, "contact_id": contact_id} for ext, id_, contact_id in rows.all()}


async def _open_conversations(account_id: int, threads: dict[str, dict[str, Any]], open_threads: dict[str, int],
                              db: AsyncConnection) -> dict[str, int]:
    """thread id -> id of its open conversation, opening one where there is none (`open_threads`:
    those of the batch's threads that had one)."""
    found = {thread: open_threads[thread] for thread in threads if thread in open_threads}
    missing = {t: identity for t, identity in threads.items() if t not in found}
    if not missing:
        return found
    now = utcnow()
    created = dict(await insert_many(
        db, Conversation.__table__,
        [{"contact_id": identity["contact_id"], "identity_id": identity["id"], "channel_account_id": account_id,
          "external_thread_id": thread_id, "status": ConversationStatus.OPEN.value, "created_at": now,
          "last_message_at": now} for thread_id, identity in missing.items()],
        conflict_columns=("channel_account_id", "external_thread_id"),
        # A literal, not a bound parameter: PostgreSQL's generic plans (after five
        # executions of a prepared statement) cannot match a parameter to the
        # partial index's predicate.
        conflict_where="status = 'open'",
        returning=("external_thread_id", "id")))
    found.update(created)
    raced = [t for t in missing if t not in created]
    if raced:
        found.update(await _find_open_conversations(account_id, raced, db))
    return found


async def _find_open_conversations(account_id: int, thread_ids: list[str], db: AsyncConnection) -> dict[str, int]:
    rows = await db.execute(_OPEN_CONVERSATIONS, {"account": account_id, "ids": thread_ids})
    return dict(rows.all())


@dataclass
class _Request:
    account_id: int
    events: Sequence[InboundEvent]
    cursor: tuple[str, str] | None
    request_id: str | None = None


class IngestWriter:
    """Concurrent requests stored in one transaction (`crm_core.group_commit`).

    `submit` returns only after the commit that holds its events, so a webhook
    answered after it is durable; one bad request does not fail the others.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, max_batch: int = 256) -> None:
        self._group: GroupCommit[_Request, IngestResult] = GroupCommit(
            sessions, self._write, max_batch=max_batch, name="ingest-writer")

    async def submit(self, account_id: int, events: Sequence[InboundEvent],
                     cursor: tuple[str, str] | None = None) -> IngestResult:
        return await self._group.submit(_Request(account_id, events, cursor, observe.request_id.get()))

    @staticmethod
    async def _write(session: AsyncSession, batch: list[_Request]) -> list[IngestResult]:
        results = await ingest_batch([(r.account_id, r.events) for r in batch], db_session=session,
                                     request_ids=[r.request_id for r in batch])
        for request in batch:
            if request.cursor is not None:
                await accounts.set_cursor(request.account_id, *request.cursor, db_session=session)
        return results

    async def close(self) -> None:
        await self._group.close()
