"""The dispatcher: sends outbox rows through the channel adapters.

A row moves pending -> claimed -> sending -> sent. `sending` is committed just
before the network call and the outcome just after, so a process killed
mid-call leaves a row in `sending`; recovery marks such rows `in_doubt` and
reports them instead of resending blindly. Rows only `claimed` never touched
the network and go back to `pending`.

On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED, so any number of
dispatcher processes share the work; every state change is a compare-and-set
on (status, claimed_by), so a dispatcher that lost its claim never sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import accounts, consent
from crm_core.crypto import CredentialCipher
from crm_core.db import is_postgres, utcnow
from crm_core.group_commit import GroupCommit
from crm_core.ingest import mark_identity_unreachable
from crm_core.marketing_rules import MarketingRules, hold_back
from crm_core.models import (
    ChannelAccount,
    Contact,
    Conversation,
    Direction,
    Identity,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)
from crm_core.ports import (
    AccountRef,
    OutboundGateway,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RecipientActivity,
    RecipientUnreachable,
    RetryLater,
    SendHeld,
    SendResult,
)
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
    idle_poll_seconds: float = 0.5
    account_cache_seconds: float = 30.0
    marketing: MarketingRules = field(default_factory=MarketingRules)

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter, at least a tenth of the step."""
        step = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return random.uniform(step / 10, step)


class Pacer:
    """Keeps sends per bucket (account, chat, member...) within each `RateLimit`.

    A sliding window: at most `count` sends in any `period` seconds, so a limit of
    30 a minute allows a burst of 30 and then waits, as the platforms count.
    """

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    def _ready_at(self, name: str, limit: RateLimit) -> float:
        window = self._windows.get(name)
        free = window[0] + limit.period if window is not None and len(window) >= limit.count else 0.0
        return max(free, self._paused_until.get(name, 0.0))

    async def wait(self, buckets: Sequence[tuple[str, RateLimit]]) -> float:
        """Wait for a free place in every bucket and take it; the moment taken, for `sent`."""
        while True:
            now = time.monotonic()
            ready_at = max((self._ready_at(name, limit) for name, limit in buckets), default=0.0)
            if ready_at <= now:
                for name, limit in buckets:
                    window = self._windows.get(name)
                    if window is None or window.maxlen != limit.count:
                        window = self._windows[name] = deque(window or (), maxlen=limit.count)
                    window.append(now)
                return now
            await asyncio.sleep(ready_at - now)

    def sent(self, buckets: Sequence[tuple[str, RateLimit]], taken: float) -> None:
        """The send that took its place at `taken` goes out now: count it from now.

        Between the two the row is marked sending in a group commit whose length
        varies; counted from the wait, two sends could reach a chat closer together
        than its limit allows."""
        now = time.monotonic()
        for name, _ in buckets:
            window = self._windows.get(name)
            if window is not None and taken in window:
                stamps = sorted(now if stamp == taken else stamp for stamp in window)
                self._windows[name] = deque(stamps, maxlen=window.maxlen)

    def pause(self, bucket: str, seconds: float) -> None:
        self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), time.monotonic() + seconds)


_OWN_MESSAGE_KINDS = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE, MessageKind.VOICE,
                      MessageKind.LOCATION, MessageKind.LINK)
_ACTION_KINDS = (MessageKind.EVENT, MessageKind.CALLBACK)


async def recipient_activity(identity_id: int, *, db_session: AsyncSession) -> RecipientActivity:
    """The customer's last message and last action, and how many sends reached them since each."""
    async def last(kinds: tuple[MessageKind, ...]) -> dt.datetime | None:
        return await db_session.scalar(select(func.max(Message.created_at)).where(
            Message.identity_id == identity_id, Message.direction == Direction.INBOUND, Message.kind.in_(kinds)))

    async def sent_since(moment: dt.datetime | None) -> int:
        if moment is None:
            return 0
        return await db_session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.identity_id == identity_id, OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at >= moment)) or 0

    last_message, last_event = await last(_OWN_MESSAGE_KINDS), await last(_ACTION_KINDS)
    return RecipientActivity(last_message, last_event, await sent_since(last_message), await sent_since(last_event))


async def reply_via(identity_id: int, thread: str, *, db_session: AsyncSession) -> dict | None:
    """The "reply_via" attachment of the recipient's newest message in this thread, if it has one."""
    attachments = await db_session.scalar(
        select(Message.attachments)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.identity_id == identity_id, Message.direction == Direction.INBOUND,
               Conversation.external_thread_id == thread)
        .order_by(Message.id.desc()).limit(1))
    return next((a for a in attachments or [] if isinstance(a, dict) and a.get("type") == "reply_via"), None)


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
    contact_id: int | None = None


@dataclass
class _Marked:
    outcome: str  # sending | lost | held | cancelled | unreachable
    activity: RecipientActivity | None = None
    reply_via: dict | None = None


@dataclass(frozen=True)
class _Change:
    """One row's state change, written in a group commit with the others'."""

    apply: Callable[[AsyncSession], Awaitable[Any]]
    lock_contact: int | None = None


_T = TypeVar("_T")


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: OutboundGateway,
        cipher: CredentialCipher,
        *,
        policy: DispatchPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.cipher = cipher
        self.policy = policy or DispatchPolicy()
        self.owner = owner or new_owner_id()
        self.pacer = Pacer()
        self._wake = asyncio.Event()
        self._accounts: OrderedDict[int, tuple[float, AccountRef | None]] = OrderedDict()
        self._last_recovery = 0.0
        self._writes: GroupCommit[_Change, Any] = GroupCommit(sessions, self._apply, max_batch=self.policy.batch_size,
                                                               name="dispatcher-writes")

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("dispatcher %s started", self.owner)
        while not stop.is_set():
            try:
                if time.monotonic() - self._last_recovery > min(5.0, self.policy.lease_seconds / 4):
                    await self.recover_abandoned()
                handled = await self.run_once()
            except Exception:
                log.exception("dispatcher %s: tick failed; retrying shortly", self.owner)
                handled = 0
                await asyncio.sleep(1.0)
            if handled == 0:
                self._wake.clear()
                await wait_any(self._wake, stop, timeout=self.policy.idle_poll_seconds)
        log.info("dispatcher %s stopped", self.owner)

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

    async def _claim(self) -> list[_Claimed]:
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
            .limit(self.policy.batch_size)
            .with_for_update(skip_locked=True, of=OutboxMessage)
        )
        # A MATERIALIZED CTE, not `id IN (subquery)`: PostgreSQL may re-run a
        # LIMITed subquery, and with SKIP LOCKED every re-run takes other rows,
        # so one claim could swallow the whole queue.
        picked = due.cte("due").prefix_with("MATERIALIZED")
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id == picked.c.id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.CLAIMED, claimed_by=self.owner, claimed_at=now)
            .returning(
                OutboxMessage.id,
                OutboxMessage.channel_account_id,
                OutboxMessage.recipient,
                OutboxMessage.payload,
                OutboxMessage.identity_id,
                OutboxMessage.message_id,
                OutboxMessage.attempts,
                OutboxMessage.purpose,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(stmt)).all()
            identities = {row.identity_id for row in rows if row.identity_id is not None}
            contact_of = dict((await session.execute(
                select(Identity.id, Identity.contact_id).where(Identity.id.in_(identities)))).all()) \
                if identities else {}
        return sorted((_Claimed(*row, contact_id=contact_of.get(row.identity_id)) for row in rows),
                      key=lambda r: r.id)

    async def _send_one(self, row: _Claimed) -> None:
        account = await self._account(row.account_id)
        if account is None:
            # Disabled since the claim: back to pending; sent once it is enabled again.
            await self._retry(row, row.attempts, delay=0, error="channel account is disabled")
            return
        limits = self.gateway.rate_limits(account, row.recipient)
        taken = await self.pacer.wait(limits)
        marketing_contact = row.contact_id if row.purpose == MessagePurpose.MARKETING else None
        marked = await self._write(partial(self._mark_sending, row, account), lock_contact=marketing_contact)
        if marked.outcome != "sending":
            if marked.outcome == "lost":
                log.info("outbox %s: claim lost to another dispatcher; not sending", row.id)
            return
        attempts = row.attempts + 1
        message = OutboundMessage.from_payload(row.recipient, row.payload, recipient_activity=marked.activity,
                                               reply_via=marked.reply_via)
        self.pacer.sent(limits, taken)
        try:
            async with asyncio.timeout(self.policy.lease_seconds / 2):
                result = await self.gateway.send(account, message)
        except RetryLater as exc:
            for bucket, _ in limits[:1]:
                self.pacer.pause(bucket, exc.retry_after)
            # A rate limit is the platform's pacing, not a failed attempt.
            await self._retry(row, attempts - 1, delay=exc.retry_after, error=f"rate limited: {exc}")
        except RecipientUnreachable as exc:
            await self._finish(row, OutboxStatus.UNREACHABLE, error=str(exc), attempts=attempts,
                               unreachable_identity=row.identity_id)
        except SendHeld as exc:
            # Not an attempt: nothing reached the customer. Released by their next message.
            await self._finish(row, OutboxStatus.HELD, error=str(exc), attempts=attempts - 1)
        except PermanentFailure as exc:
            await self._finish(row, OutboxStatus.FAILED, error=str(exc), attempts=attempts)
        except Exception as exc:  # network errors, 5xx, timeouts: retry with backoff
            error = f"{type(exc).__name__}: {exc}"
            if attempts >= self.policy.max_attempts:
                await self._finish(row, OutboxStatus.FAILED, error=f"gave up after {attempts} attempts; {error}",
                                   attempts=attempts)
            else:
                await self._retry(row, attempts, delay=self.policy.backoff(attempts), error=error)
        else:
            await self._write(partial(self._record_sent, row, result, attempts))

    async def _write(self, change: Callable[[AsyncSession], Awaitable[_T]], *, lock_contact: int | None = None) -> _T:
        """`change` committed, together with the other rows' state changes queued meanwhile."""
        return await self._writes.submit(_Change(change, lock_contact))

    @staticmethod
    async def _apply(session: AsyncSession, changes: list[_Change]) -> list[Any]:
        contacts = sorted({c.lock_contact for c in changes if c.lock_contact is not None})
        if contacts and is_postgres(session):
            # Every contact a marketing rule is decided for, locked up front in id order:
            # two dispatchers' batches then never wait on each other in a cycle.
            await session.execute(select(Contact.id).where(Contact.id.in_(contacts)).order_by(Contact.id)
                                  .with_for_update())
        return [await change.apply(session) for change in changes]

    async def _mark_sending(self, row: _Claimed, account: AccountRef, session: AsyncSession) -> _Marked:
        """Decide, in the transaction that marks the row `sending`, whether it may go now.

        Reachability and consent are read here, just before the network call. For
        marketing, the frequency cap and quiet hours are decided under a lock on the
        contact (`hold_back`), so the cap holds across dispatchers."""
        ours = (OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.CLAIMED,
                OutboxMessage.claimed_by == self.owner)

        async def settle(outcome: str, **values: Any) -> _Marked:
            result: CursorResult = await session.execute(
                update(OutboxMessage).where(*ours).values(**values).execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return _Marked("lost")
            if outcome != "sending":
                log.info("outbox %s: %s", row.id, values.get("last_error"))
            return _Marked(outcome)

        identity = await session.get(Identity, row.identity_id) if row.identity_id is not None else None
        if identity is not None:
            if not identity.reachable:
                return await settle("unreachable", status=OutboxStatus.UNREACHABLE, last_error=(
                    f"recipient unreachable: {identity.unreachable_reason or 'unknown reason'}"))
            # Consent again at send time: it may have been withdrawn since the row was queued.
            decision = await consent.decide(identity.contact_id, purpose=MessagePurpose(row.purpose),
                                            channel=account.kind, db_session=session)
            if not decision.allowed:
                return await settle("cancelled", status=OutboxStatus.CANCELLED, last_error=f"not sent: {decision.reason}")
            if row.purpose == MessagePurpose.MARKETING:
                held = await hold_back(row.id, identity.contact_id, self.policy.marketing, db_session=session)
                if held is not None:
                    until, reason = held
                    return await settle("held", status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None,
                                        next_attempt_at=until, last_error=reason)
        marked = await settle("sending", status=OutboxStatus.SENDING, attempts=row.attempts + 1, claimed_at=utcnow())
        if marked.outcome == "sending" and identity is not None:
            if self.gateway.needs_recipient_activity(account):
                marked.activity = await recipient_activity(identity.id, db_session=session)
            if self.gateway.wants_reply_via(account):
                marked.reply_via = await reply_via(identity.id, row.recipient, db_session=session)
        return marked

    def _ours(self, row: _Claimed):
        return (
            OutboxMessage.id == row.id,
            OutboxMessage.claimed_by == self.owner,
            OutboxMessage.status.in_([OutboxStatus.CLAIMED, OutboxStatus.SENDING, OutboxStatus.IN_DOUBT]),
        )

    async def _record_sent(self, row: _Claimed, result: SendResult, attempts: int, session: AsyncSession) -> None:
        await session.execute(
            update(OutboxMessage)
            .where(*self._ours(row))
            .values(status=OutboxStatus.SENT, platform_message_id=result.platform_message_id, sent_at=utcnow(),
                    attempts=attempts, last_error=None)
            .execution_options(synchronize_session=False)
        )
        if row.message_id is not None:
            await session.execute(
                update(Message).where(Message.id == row.message_id)
                .values(platform_message_id=result.platform_message_id)
                .execution_options(synchronize_session=False)
            )

    async def _retry(self, row: _Claimed, attempts: int, *, delay: float, error: str) -> None:
        log.warning("outbox %s: retry in %.1fs (attempt %d): %s", row.id, delay, attempts, error)

        async def change(session: AsyncSession) -> None:
            await session.execute(
                update(OutboxMessage)
                .where(*self._ours(row))
                .values(status=OutboxStatus.PENDING, attempts=attempts, claimed_by=None, claimed_at=None,
                        next_attempt_at=utcnow() + dt.timedelta(seconds=delay), last_error=error)
                .execution_options(synchronize_session=False)
            )

        await self._write(change)

    async def _finish(self, row: _Claimed, status: OutboxStatus, *, error: str, attempts: int | None = None,
                      unreachable_identity: int | None = None) -> None:
        log.warning("outbox %s: %s: %s", row.id, status.value, error)
        values: dict = {"status": status, "last_error": error}
        if attempts is not None:
            values["attempts"] = attempts

        async def change(session: AsyncSession) -> None:
            await session.execute(
                update(OutboxMessage).where(*self._ours(row)).values(**values)
                .execution_options(synchronize_session=False)
            )
            if unreachable_identity is not None:
                await mark_identity_unreachable(unreachable_identity, error, db_session=session)

        await self._write(change)

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
                if status == OutboxStatus.CLAIMED:
                    await session.execute(
                        update(OutboxMessage).where(*where)
                        .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None)
                        .execution_options(synchronize_session=False))
                    report.released += 1
                else:
                    await session.execute(
                        update(OutboxMessage).where(*where)
                        .values(status=OutboxStatus.IN_DOUBT,
                                last_error=f"dispatcher {owner} stopped during the send started at "
                                           f"{claimed_at:%Y-%m-%d %H:%M:%S} UTC; the platform may have delivered it. "
                                           "Not resent automatically: check, then `scrm outbox resolve "
                                           f"{row_id} --sent` or `--resend`")
                        .execution_options(synchronize_session=False))
                    report.in_doubt.append(row_id)
        if report.released:
            log.info("recovered %d claimed rows of stopped dispatchers", report.released)
        for row_id in report.in_doubt:
            log.warning("outbox %s is in doubt: its dispatcher stopped mid-send; see `scrm outbox in-doubt`", row_id)
        return report
