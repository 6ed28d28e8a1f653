"""The dispatcher: sends outbox rows through the channel adapters.

A row moves pending -> claimed -> sending -> sent. `sending` is committed just
before the network call and the outcome just after, so a process killed
mid-call leaves a row in `sending`; recovery marks such rows `in_doubt` and
reports them instead of resending blindly. Rows only `claimed` never touched
the network and go back to `pending`.

On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED, so any number of
dispatcher processes share the work; every state change is a compare-and-set
on (status, claimed_by), so a dispatcher that lost its claim never sends.

State changes of rows sent together share a commit (`crm_core.group_commit`):
the marks (with consent, reachability and the marketing rules decided for the
whole group) and the outcomes. Each recipient is a lane sent in order, and rows
are claimed as lanes drain, so a slowly paced recipient holds up nobody else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import random
import socket
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import accounts, observe
from crm_core.consent import service as consent
from crm_core.consent.marketing_rules import MarketingRules, hold_back
from crm_core.contacts.reach import mark_identity_unreachable
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.group_commit import GroupCommit
from crm_core.models import (
    ChannelAccount,
    Identity,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)
from crm_core.outbox import platform_ids
from crm_core.outbox.pacing import Pacer, Pacing
from crm_core.outbox.recipients import recipient_activity, reply_via
from crm_core.ports import (
    AccountRef,
    OutboundGateway,
    OutboundMessage,
    PermanentFailure,
    RecipientActivity,
    RecipientUnreachable,
    RetryLater,
    SendError,
    SendHeld,
)
from crm_core.sql import among
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)


def new_owner_id(role: str = "dispatcher") -> str:
    """host:pid:random — lets recovery tell a dead local owner from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` ran on this host and its process is gone."""
    try:
        host, pid_text, *_ = owner.split(":")
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class DispatchPolicy:
    lease_seconds: float = 60.0
    batch_size: int = 100
    concurrency: int = 16
    max_attempts: int = 10
    backoff_base: float = 2.0
    backoff_cap: float = 900.0
    idle_poll_seconds: float = 0.2  # in its own process, a new row is found by looking: soon
    account_cache_seconds: float = 30.0
    # While sends keep coming, their marks and outcomes wait this long to share a commit (GroupCommit's
    # linger): at a campaign's 1,000 a second a batch held about 6 without it, and the process spent
    # 0.99 ms of CPU a send; with 10 ms, 0.66 ms.
    write_linger_seconds: float = 0.01
    marketing: MarketingRules = field(default_factory=MarketingRules)

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter, at least a tenth of the step."""
        step = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return random.uniform(step / 10, step)


@dataclass
class RecoveryReport:
    released: int = 0
    in_doubt: list[int] = field(default_factory=list)


@dataclass
class _Claimed:
    id: int
    account_id: int
    recipient: str
    payload: dict
    identity_id: int | None
    message_id: int | None
    attempts: int
    purpose: MessagePurpose = MessagePurpose.SERVICE
    request_id: str | None = None
    contact_id: int | None = None


@dataclass
class _Marked:
    outcome: str  # sending | lost | held | cancelled | unreachable
    activity: RecipientActivity | None = None
    reply_via: dict | None = None


@dataclass(frozen=True)
class _Mark:
    """A row about to go: decide whether it may, and mark it `sending` if so."""

    row: _Claimed
    account: AccountRef


@dataclass(frozen=True)
class _Outcome:
    """What became of a row: its new column values (`status` among them)."""

    row: _Claimed
    values: dict[str, Any]
    unreachable_identity: int | None = None
    platform_message_id: str | None = None  # also written to the stored Message


# Where a row may still be changed by the dispatcher that claimed it.
_STILL_OURS = (OutboxStatus.CLAIMED, OutboxStatus.SENDING, OutboxStatus.IN_DOUBT)
_OUTBOX = OutboxMessage.__table__
# Statements of every group of sends, built once (their clauses and cache keys were built at each).
_IDENTITIES = Identity.__table__
_THESE_IDENTITIES = among(_IDENTITIES.c.id, name="identity_ids")
_CONTACT_OF = select(_IDENTITIES.c.id, _IDENTITIES.c.contact_id).where(_THESE_IDENTITIES)
_REACH_OF = select(*(_IDENTITIES.c[n] for n in ("id", "contact_id", "reachable", "unreachable_reason"))).where(
    _THESE_IDENTITIES)
_MARK_SENDING = (_OUTBOX.update().where(among(_OUTBOX.c.id, name="row_ids"),
                                        _OUTBOX.c.status == OutboxStatus.CLAIMED,
                                        _OUTBOX.c.claimed_by == bindparam("b_owner"))
                 .values(status=OutboxStatus.SENDING, attempts=_OUTBOX.c.attempts + 1, claimed_at=bindparam("now"))
                 .returning(_OUTBOX.c.id))

@functools.cache
def _outcome_update(columns: tuple[str, ...]) -> Any:
    """The UPDATE that writes outcomes changing `columns` to the rows its dispatcher (`b_owner`)
    still holds; built once for each set of columns."""
    return (_OUTBOX.update()
            .where(_OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.claimed_by == bindparam("b_owner"),
                   or_(*(_OUTBOX.c.status == status for status in _STILL_OURS)))  # no IN in an executemany
            # Bound as "new_<column>": a bind parameter may not share its column's name.
            .values({name: bindparam(f"new_{name}") for name in columns}))


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: OutboundGateway,
        cipher: CredentialCipher,
        *,
        policy: DispatchPolicy | None = None,
        owner: str | None = None,
        pacer: Pacing | None = None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.cipher = cipher
        self.policy = policy or DispatchPolicy()
        self.owner = owner or new_owner_id()
        # The platforms' limits: this process's own, or shared by every dispatcher (Redis).
        self.pacer: Pacing = pacer or Pacer()
        self._wake = asyncio.Event()
        self._accounts: OrderedDict[int, tuple[float, AccountRef | None]] = OrderedDict()
        self._last_recovery = 0.0
        # Marks and outcomes of rows sent together share their commits.
        self._writes: GroupCommit[_Mark | _Outcome, _Marked | None] = GroupCommit(
            sessions, self._apply, max_batch=self.policy.batch_size, name="dispatcher-writes",
            linger=self.policy.write_linger_seconds)

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop`. Each recipient is a lane of rows sent in order; rows are
        claimed as lanes drain, so a recipient the platform paces slowly (a rep's WeCom
        app: 30 a minute) never holds up the customers' answers behind it."""
        log.info("dispatcher %s started", self.owner)
        lanes: dict[tuple[int, str], deque[_Claimed]] = {}
        limit = asyncio.Semaphore(self.policy.concurrency)
        progress = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def lane(key: tuple[int, str]) -> None:
            rows = lanes[key]
            try:
                while rows and not stop.is_set():
                    try:
                        async with limit:
                            await self._send_one(rows[0])
                    except Exception:
                        log.exception("dispatcher %s: outbox %s failed; it goes back to the queue",
                                      self.owner, rows[0].id)
                        await self._release([rows[0]])
                    rows.popleft()
                    progress.set()
            finally:
                del lanes[key]
                if rows:  # stopping: what was claimed but not begun goes back for another process
                    await self._release(list(rows))

        # Lanes are topped up once a quarter of the batch has room, not at every send: each claim is a
        # transaction (on SQLite a turn of the one write lock), and a row at a time would cost one a
        # send. Something new queued (a wake) or a quiet poll claims whatever room there is.
        low_water = max(1, self.policy.batch_size // 4)
        polled = woken = True
        while not stop.is_set():
            claimed: list[_Claimed] = []
            room = self.policy.batch_size - sum(len(rows) for rows in lanes.values())
            woken |= self._wake.is_set()
            self._wake.clear()
            try:
                if time.monotonic() - self._last_recovery > min(5.0, self.policy.lease_seconds / 4):
                    await self.recover_abandoned()
                if room > 0 and (room >= low_water or woken or polled):
                    woken = False
                    claimed = await self._claim(room)
            except Exception:
                log.exception("dispatcher %s: tick failed; retrying shortly", self.owner)
                await asyncio.sleep(1.0)
            for row in claimed:
                key = (row.account_id, row.recipient)
                if key in lanes:
                    lanes[key].append(row)
                else:
                    lanes[key] = deque([row])
                    task = asyncio.create_task(lane(key), name=f"dispatch {key}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            polled = False
            if not claimed:
                progress.clear()
                await wait_any(self._wake, stop, *([progress] if room < low_water else []),
                               timeout=self.policy.idle_poll_seconds)
                polled = not (self._wake.is_set() or progress.is_set())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("dispatcher %s stopped", self.owner)

    async def _release(self, rows: list[_Claimed]) -> None:
        """Claimed rows not sent after all: back to pending, untouched."""
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(among(OutboxMessage.id, [r.id for r in rows]), OutboxMessage.claimed_by == self.owner,
                           OutboxMessage.status == OutboxStatus.CLAIMED)
                    .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None)
                    .execution_options(synchronize_session=False))
        except Exception:
            log.exception("dispatcher %s: could not release %d claimed rows; recovery will", self.owner, len(rows))

    async def run_once(self) -> int:
        """Claim one batch of due rows and send them; the number of rows handled."""
        claimed = await self._claim()
        if not claimed:
            return 0
        # Rows to one recipient go in order, one after another; recipients in parallel.
        by_recipient: OrderedDict[tuple[int, str], list[_Claimed]] = OrderedDict()
        for row in claimed:
            by_recipient.setdefault((row.account_id, row.recipient), []).append(row)
        limit = asyncio.Semaphore(self.policy.concurrency)

        async def send_group(rows: list[_Claimed]) -> None:
            async with limit:
                for row in rows:
                    await self._send_one(row)

        await asyncio.gather(*(send_group(rows) for rows in by_recipient.values()))
        return len(claimed)

    async def _claim(self, limit: int | None = None) -> list[_Claimed]:
        now = utcnow()
        due = (
            select(OutboxMessage.id)
            .join(ChannelAccount, ChannelAccount.id == OutboxMessage.channel_account_id)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
                ChannelAccount.is_active.is_(True),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit or self.policy.batch_size)
            .with_for_update(skip_locked=True, of=OutboxMessage)
        )
        # A MATERIALIZED CTE, not `id IN (subquery)`: PostgreSQL may re-run a LIMITed subquery, and with
        # SKIP LOCKED every re-run takes other rows (one claim could swallow the queue). The rows picked are
        # locked: their ids say which (asked "and still pending" too, PostgreSQL whose statistics lagged a
        # campaign read every pending row for each row picked).
        picked = due.cte("due").prefix_with("MATERIALIZED")
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id == picked.c.id)
            .values(status=OutboxStatus.CLAIMED, claimed_by=self.owner, claimed_at=now)
            .returning(OutboxMessage.id, OutboxMessage.channel_account_id, OutboxMessage.recipient,
                       OutboxMessage.payload, OutboxMessage.identity_id, OutboxMessage.message_id,
                       OutboxMessage.attempts, OutboxMessage.purpose, OutboxMessage.request_id)
        )
        async with self.sessions() as session, session.begin():
            connection = await session.connection()  # plain statements: no ORM object is read or written
            rows = (await connection.execute(stmt)).all()
            identities = {row.identity_id for row in rows if row.identity_id is not None}
            contact_of = dict((await connection.execute(
                _CONTACT_OF, {"identity_ids": list(identities)})).all()) if identities else {}
        return sorted((_Claimed(*row, contact_id=contact_of.get(row.identity_id)) for row in rows),
                      key=lambda r: r.id)

    async def _send_one(self, row: _Claimed) -> None:
        # Its logs under the request it answers (each send runs in a task of its lane: set per row).
        observe.request_id.set(row.request_id)
        account = await self._account(row.account_id)
        if account is None:
            # Disabled since the claim: back to pending; sent once it is enabled again.
            await self._retry(row, row.attempts, delay=0, error="channel account is disabled")
            return
        limits = self.gateway.rate_limits(account, row.recipient)
        taken = await self.pacer.wait(limits)
        marked = await self._writes.submit(_Mark(row, account))
        if marked.outcome != "sending":
            if marked.outcome == "lost":
                log.info("outbox %s: claim lost to another dispatcher; not sending", row.id)
            return
        attempts = row.attempts + 1
        message = OutboundMessage.from_payload(row.recipient, row.payload, recipient_activity=marked.activity,
                                               reply_via=marked.reply_via)
        await self.pacer.sent(limits, taken)
        try:
            async with asyncio.timeout(self.policy.lease_seconds / 2):
                result = await self.gateway.send(account, message)
        except RetryLater as exc:
            observe.observer.send(account.kind, "rate_limited", code=exc.code)
            for bucket, _ in limits[:1]:
                await self.pacer.pause(bucket, exc.retry_after)
            # A rate limit is the platform's pacing, not a failed attempt.
            await self._retry(row, attempts - 1, delay=exc.retry_after, error=f"rate limited: {exc}")
        except RecipientUnreachable as exc:
            observe.observer.send(account.kind, "unreachable", code=exc.code)
            await self._finish(row, OutboxStatus.UNREACHABLE, error=str(exc), attempts=attempts,
                               unreachable_identity=row.identity_id)
        except SendHeld as exc:
            observe.observer.send(account.kind, "held", code=exc.code)
            # Not an attempt: nothing reached the customer. Released by their next message.
            await self._finish(row, OutboxStatus.HELD, error=str(exc), attempts=attempts - 1)
        except PermanentFailure as exc:
            observe.observer.send(account.kind, "failed", code=exc.code)
            await self._finish(row, OutboxStatus.FAILED, error=str(exc), attempts=attempts)
        except Exception as exc:  # network errors, 5xx, timeouts: retry with backoff
            observe.observer.send(account.kind, "error", code=exc.code if isinstance(exc, SendError) else None)
            error = f"{type(exc).__name__}: {exc}"
            if attempts >= self.policy.max_attempts:
                await self._finish(row, OutboxStatus.FAILED, error=f"gave up after {attempts} attempts; {error}",
                                   attempts=attempts)
            else:
                await self._retry(row, attempts, delay=self.policy.backoff(attempts), error=error)
        else:
            observe.observer.send(account.kind, "sent")
            log.debug("outbox %s: sent to %s on %s %s", row.id, row.recipient, account.kind, account.id)
            await self._writes.submit(_Outcome(
                row, {"status": OutboxStatus.SENT, "platform_message_id": result.platform_message_id,
                      "sent_at": utcnow(), "attempts": attempts, "last_error": None,
                      "accepted_as": result.delivery},
                platform_message_id=result.platform_message_id))

    async def _apply(self, session: AsyncSession, items: list[_Mark | _Outcome]) -> list[_Marked | None]:
        marks = [item for item in items if isinstance(item, _Mark)]
        marked = dict(zip((id(m) for m in marks), await self._mark_sending(marks, session), strict=True))
        await self._record([item for item in items if isinstance(item, _Outcome)], session)
        return [marked.get(id(item)) for item in items]

    async def _mark_sending(self, marks: list[_Mark], session: AsyncSession) -> list[_Marked]:
        """Decide, in the transaction that marks rows `sending`, which may go now.

        Reachability and consent are read here, just before the network call. For
        marketing, the frequency cap and quiet hours are decided under a lock on each
        contact (`hold_back`), so the cap holds across dispatchers. A handful of
        statements for the whole batch, not a few per row."""
        if not marks:
            return []
        identity_ids = {m.row.identity_id for m in marks if m.row.identity_id is not None}
        # Plain rows, not ORM objects: four columns are read, and nothing here changes an identity.
        connection = await session.connection()
        identities = {i.id: i for i in (await connection.execute(
            _REACH_OF, {"identity_ids": list(identity_ids)})).all()} if identity_ids else {}
        events = await consent.events_of({i.contact_id for i in identities.values()},
                                             {MessagePurpose(m.row.purpose) for m in marks}, db_session=session)
        settled: dict[int, tuple[str, dict[str, Any]]] = {}  # row id: (outcome, values) for those that do not go
        marketing: list[tuple[int, int]] = []
        for mark in marks:
            row, identity = mark.row, identities.get(mark.row.identity_id)
            if identity is None:
                continue
            if not identity.reachable:
                settled[row.id] = "unreachable", {"status": OutboxStatus.UNREACHABLE, "last_error": (
                    f"recipient unreachable: {identity.unreachable_reason or 'unknown reason'}")}
                continue
            # Consent again at send time: it may have been withdrawn since the row was queued.
            purpose = MessagePurpose(row.purpose)
            decision = consent.decide_from(events.get((identity.contact_id, purpose), []), purpose=purpose,
                                           channel=mark.account.kind)
            if not decision.allowed:
                settled[row.id] = "cancelled", {"status": OutboxStatus.CANCELLED,
                                                "last_error": f"not sent: {decision.reason}"}
            elif purpose == MessagePurpose.MARKETING:
                marketing.append((row.id, identity.contact_id))
        for row_id, (until, reason) in (await hold_back(marketing, self.policy.marketing, db_session=session)).items():
            settled[row_id] = "held", {"status": OutboxStatus.PENDING, "claimed_by": None, "claimed_at": None,
                                       "next_attempt_at": until, "last_error": reason}

        ours = (OutboxMessage.status == OutboxStatus.CLAIMED, OutboxMessage.claimed_by == self.owner)
        going = [m.row.id for m in marks if m.row.id not in settled]
        still_ours: set[int] = set()
        if going:
            still_ours.update((await connection.execute(_MARK_SENDING, {
                "row_ids": going, "b_owner": self.owner, "now": utcnow()})).scalars().all())
        for row_id, (_, values) in settled.items():
            result: CursorResult = await connection.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id, *ours).values(**values))
            if result.rowcount == 1:
                still_ours.add(row_id)
                log.info("outbox %s: %s", row_id, values["last_error"])

        results = []
        for mark in marks:
            row, identity = mark.row, identities.get(mark.row.identity_id)
            if row.id not in still_ours:
                results.append(_Marked("lost"))
                continue
            marked = _Marked(settled[row.id][0] if row.id in settled else "sending")
            if marked.outcome == "sending" and identity is not None:
                if self.gateway.needs_recipient_activity(mark.account):
                    marked.activity = await recipient_activity(identity.id, db_session=session)
                if self.gateway.wants_reply_via(mark.account):
                    marked.reply_via = await reply_via(identity.id, row.recipient, db_session=session)
            results.append(marked)
        return results

    async def _record(self, outcomes: list[_Outcome], session: AsyncSession) -> None:
        """Write outcomes, one executemany per kind of change."""
        connection = await session.connection()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            by_columns.setdefault(tuple(sorted(outcome.values)), []).append(
                {"row_id": outcome.row.id, "b_owner": self.owner,
                 **{f"new_{name}": value for name, value in outcome.values.items()}})
        for columns, params in by_columns.items():
            await connection.execute(_outcome_update(columns), params)
        sent = [platform_ids.Sent(o.row.id, o.row.account_id, o.row.message_id, o.platform_message_id)
                for o in outcomes if o.row.message_id is not None and o.platform_message_id is not None]
        if sent:
            await platform_ids.store(sent, session)
        for outcome in outcomes:
            if outcome.unreachable_identity is not None:
                await mark_identity_unreachable(outcome.unreachable_identity, outcome.values["last_error"],
                                                db_session=session)

    async def _retry(self, row: _Claimed, attempts: int, *, delay: float, error: str) -> None:
        log.warning("outbox %s: retry in %.1fs (attempt %d): %s", row.id, delay, attempts, error)
        await self._writes.submit(_Outcome(row, {
            "status": OutboxStatus.PENDING, "attempts": attempts, "claimed_by": None, "claimed_at": None,
            "next_attempt_at": utcnow() + dt.timedelta(seconds=delay), "last_error": error}))

    async def _finish(self, row: _Claimed, status: OutboxStatus, *, error: str, attempts: int | None = None,
                      unreachable_identity: int | None = None) -> None:
        log.warning("outbox %s: %s: %s", row.id, status.value, error)
        values: dict[str, Any] = {"status": status, "last_error": error}
        if attempts is not None:
            values["attempts"] = attempts
        await self._writes.submit(_Outcome(row, values, unreachable_identity=unreachable_identity))

    async def _account(self, account_id: int) -> AccountRef | None:
        cached = self._accounts.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < self.policy.account_cache_seconds:
            return cached[1]
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, account_id)
        if account is None or not account.is_active:
            self._accounts.pop(account_id, None)  # not cached: it may be enabled any moment
            return None
        ref = accounts.to_ref(account, self.cipher)
        self._accounts[account_id] = (time.monotonic(), ref)
        return ref

    async def recover_abandoned(self) -> RecoveryReport:
        """Release rows whose dispatcher died; report those it died sending."""
        self._last_recovery = time.monotonic()
        stale_before = utcnow() - dt.timedelta(seconds=self.policy.lease_seconds)
        report = RecoveryReport()
        async with self.sessions() as session, session.begin():
            candidates = (await session.execute(
                select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.claimed_by, OutboxMessage.claimed_at)
                .where(OutboxMessage.status.in_([OutboxStatus.CLAIMED, OutboxStatus.SENDING]),
                       OutboxMessage.claimed_by != self.owner)
            )).all()
            dead_owners: dict[str, bool] = {}
            for row_id, status, owner, claimed_at in candidates:
                if owner not in dead_owners:
                    dead_owners[owner] = owner_is_dead(owner)
                if not (dead_owners[owner] or claimed_at < stale_before):
                    continue
                where = (OutboxMessage.id == row_id, OutboxMessage.status == status,
                         OutboxMessage.claimed_by == owner)
                # Another dispatcher's recovery may change the row first: count only what this one changed.
                if status == OutboxStatus.CLAIMED:
                    result: CursorResult = await session.execute(
                        update(OutboxMessage).where(*where)
                        .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None)
                        .execution_options(synchronize_session=False))
                    report.released += result.rowcount
                else:
                    result = await session.execute(
                        update(OutboxMessage).where(*where)
                        .values(status=OutboxStatus.IN_DOUBT,
                                last_error=f"dispatcher {owner} stopped during the send started at "
                                           f"{claimed_at:%Y-%m-%d %H:%M:%S} UTC; the platform may have delivered it. "
                                           "Not resent automatically: check, then `scrm outbox resolve "
                                           f"{row_id} --sent` or `--resend`")
                        .execution_options(synchronize_session=False))
                    if result.rowcount:
                        report.in_doubt.append(row_id)
        if report.released:
            log.info("recovered %d claimed rows of stopped dispatchers", report.released)
        for row_id in report.in_doubt:
            log.warning("outbox %s is in doubt: its dispatcher stopped mid-send; see `scrm outbox in-doubt`", row_id)
        return report
