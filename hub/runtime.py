"""Background services: the message worker, the dispatcher, the pollers and the scheduled jobs.

Runs inside `scrm serve` (embedded default) or alone as `scrm worker`.
Pollers hold a database lease per account, so with several workers exactly
one polls each Telegram bot (Telegram refuses two concurrent getUpdates).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from crm_core import accounts, leases
from crm_core.models import ChannelAccount
from crm_core.outbox.dispatcher import new_owner_id
from crm_core.ports import AccountRef
from crm_core.waiting import wait_any
from hub.context import Hub
from hub.scheduler import build_scheduler
from nlp import faq

log = logging.getLogger(__name__)

POLLER_LEASE_SECONDS = 30.0


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a long-running process (`scrm serve`, `scrm worker`),
    called once it has started.

    Objects alive after startup (modules, models, compiled SQL, the Bot API's models) are
    moved out of the collector's reach, and young collections run less often: full
    collections over them were the main source of 100-300 ms pauses under load, and a
    tenth of the worker's CPU while it sent a campaign.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 40)


@dataclass
class Services:
    worker: bool = True
    dispatcher: bool = True
    pollers: bool = True


class BackgroundRuntime:
    def __init__(self, hub: Hub, services: Services | None = None) -> None:
        self.hub = hub
        self.services = services or Services()
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pollers: dict[int, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._poller_refs: dict[int, AccountRef] = {}  # what each poller was started with
        self.owner = new_owner_id("poller")
        self.scheduler: AsyncIOScheduler | None = None

    async def start(self) -> None:
        if self.services.worker:
            # The segmenter the FAQ and sentiment use, loaded before the first customer waits for it.
            await asyncio.to_thread(faq.warm_up)
            self._tasks.append(asyncio.create_task(self.hub.worker.run(self.stop), name="message-worker"))
            # Nurture planning, SLA reminders, opinion watch, digests: safe in every worker process
            # (batches taken with SKIP LOCKED, reminders and alerts marked once, sends keyed).
            self.scheduler = build_scheduler(self.hub)
            self.scheduler.start()
        if self.services.dispatcher:
            await asyncio.to_thread(self.hub.channels.prepare_to_send)
            await self.hub.dispatcher.recover_abandoned()
            self._tasks.append(asyncio.create_task(self.hub.dispatcher.run(self.stop), name="dispatcher"))
        if self.services.pollers:
            self._tasks.append(asyncio.create_task(self._supervise_pollers(), name="pollers"))

    async def shutdown(self) -> None:
        self.stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for _, stop in self._pollers.values():
            stop.set()
        tasks = self._tasks + [task for task, _ in self._pollers.values()]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
        async with self.hub.sessions() as session, session.begin():
            for account_id in self._pollers:
                await leases.release(f"poller:{account_id}", self.owner, db_session=session)

    async def _supervise_pollers(self) -> None:
        while not self.stop.is_set():
            try:
                await self._sync_pollers()
            except Exception:
                log.exception("poller supervisor: tick failed")
            self.hub.accounts_changed.clear()
            await wait_any(self.stop, self.hub.accounts_changed, timeout=POLLER_LEASE_SECONDS / 3)

    async def _sync_pollers(self) -> None:
        async with self.hub.sessions() as session:
            rows = (await session.scalars(select(ChannelAccount).where(ChannelAccount.is_active.is_(True)))).all()
        wanted = {}
        for row in rows:
            adapter = self.hub.channels.get(row.kind)
            ref = accounts.to_ref(row, self.hub.cipher)
            if hasattr(adapter, "wants_polling") and adapter.wants_polling(ref):
                wanted[row.id] = (adapter, ref)
        for account_id in list(self._pollers):
            task, stop = self._pollers[account_id]
            # Switched off, ended, or saved with other credentials or settings (a rotated archive
            # key, a new token): stopped, and started again below with what is saved now.
            changed = account_id in wanted and self._poller_refs.get(account_id) != wanted[account_id][1]
            if account_id not in wanted or task.done() or changed:
                stop.set()
                self._pollers.pop(account_id)
                self._poller_refs.pop(account_id, None)
                if changed:
                    await asyncio.wait({task}, timeout=10)
        for account_id, (adapter, ref) in wanted.items():
            async with self.hub.sessions() as session, session.begin():
                held = await leases.acquire(f"poller:{account_id}", self.owner, POLLER_LEASE_SECONDS,
                                            db_session=session)
            if not held:
                if account_id in self._pollers:
                    log.warning("account %s: poller lease lost; stopping this poller", account_id)
                    self._pollers.pop(account_id)[1].set()
                continue
            if account_id in self._pollers:
                continue

            async def load_cursor(name: str, account_id: int = account_id) -> str | None:
                async with self.hub.sessions() as session:
                    return await accounts.get_cursor(account_id, name, db_session=session)

            stop = asyncio.Event()
            poller = adapter.make_poller(ref, self.hub.ingest, load_cursor)
            task = asyncio.create_task(poller.run(stop), name=f"poller-{account_id}")
            self._pollers[account_id] = (task, stop)
            self._poller_refs[account_id] = ref
