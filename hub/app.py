"""The FastAPI application: webhooks, REST API /api/v1, health."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from admin.api import (
    campaigns,
    channel_accounts,
    contact_links,
    contact_ways,
    contacts,
    conversations,
    customer_groups,
    customer_transfers,
    deals,
    events,
    faq,
    leads,
    mass_sends,
    media,
    moments,
    opinion,
    panel,
    quick_replies,
    reports,
    tags,
    tasks,
    teams,
    users,
)
from admin.api import settings as settings_api
from admin.panel import routes as panel_routes
from channels import destinations
from channels.base import ConnectionCheck
from crm_core import accounts, migrate
from crm_core.db import run_sqlite_checkpoints
from crm_core.deals.service import DealRules
from crm_core.leads.service import LeadRules
from crm_core.models import ChannelAccount, OutboxMessage, OutboxStatus
from hub import live_settings, metrics, webhooks
from hub.api_docs import add_docs
from hub.context import Hub
from hub.runtime import BackgroundRuntime, Services, tune_garbage_collector
from hub.supervisor import WorkerSupervisor
from nlp.entities import stated_contact_keys

log = logging.getLogger(__name__)


class HubChannelCatalog:
    """The API's view of the channel adapters."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @property
    def kinds(self) -> list[str]:
        return self.hub.channels.kinds

    def credentials_model(self, kind: str) -> type[BaseModel]:
        return self.hub.channels.get(kind).credentials_model

    def settings_model(self, kind: str) -> type[BaseModel]:
        return self.hub.channels.get(kind).settings_model

    async def check_connection(self, kind: str, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        """The platform's answer; first, every place the operator named must be one the hub may call."""
        adapter = self.hub.channels.get(kind)
        allow = self.hub.settings.allow_private_api_base
        if api_base:
            await destinations.check_url(api_base, allow_private=allow, what="api_base")
        for what, host in getattr(adapter, "destinations", lambda _: [])(credentials):
            await destinations.check_host(host, allow_private=allow, what=what)
        return await adapter.check_connection(api_base, credentials)

    async def activate(self, account: ChannelAccount) -> None:
        self.hub.forget_account(account.id)
        adapter = self.hub.channels.get(account.kind)
        await adapter.activate(accounts.to_ref(account, self.hub.cipher), self.hub.webhook_url(account))

    def forget(self, account_id: int) -> None:
        self.hub.forget_account(account_id)

    async def contact_link(self, account: ChannelAccount, open_kfid: str | None, scene: str, scene_param: str) -> str:
        adapter = self.hub.channels.get(account.kind)
        if not hasattr(adapter, "contact_link"):
            raise ValueError(f"{account.kind} channels have no contact links")
        return await adapter.contact_link(accounts.to_ref(account, self.hub.cipher), open_kfid, scene, scene_param)

    def webhook_url(self, account: ChannelAccount) -> str:
        return self.hub.webhook_url(account)

    def notices(self, account: ChannelAccount) -> list[str]:
        adapter = self.hub.channels.get(account.kind)
        if not hasattr(adapter, "notices"):
            return []
        return adapter.notices(accounts.to_ref(account, self.hub.cipher))


class HubApiContext:
    def __init__(self, hub: Hub) -> None:
        self.sessions = hub.sessions
        self.cipher = hub.cipher
        self.catalog = HubChannelCatalog(hub)
        self.opinion = hub.opinion
        self.rep_review = hub.rep_review
        self.contact_keys = stated_contact_keys
        self.live_settings = live_settings.HubLiveSettings(hub)
        self.contact_ways = hub.contact_ways
        self.succession = hub.succession
        self.mass_sends = hub.mass_sends
        self.groups = hub.groups
        self.corp_tags = hub.corp_tags
        self.moments = hub.moments
        self._hub = hub

    @property
    def lead_rules(self) -> LeadRules:
        return self._hub.settings.lead_rules  # as the panel last set it

    @property
    def media_dir(self) -> Path:
        return self._hub.settings.media_dir

    @property
    def base_url(self) -> str:
        return self._hub.settings.base_url

    @property
    def deal_rules(self) -> DealRules:
        return self._hub.settings.deal_rules

    @property
    def sla_first_response(self) -> dt.timedelta:
        return self._hub.sla.first_response

    @property
    def timezone(self) -> str:
        return self._hub.settings.default_timezone


    def on_enqueued(self) -> None:
        self._hub.dispatcher.wake()


async def _unencodable_text(request: Request, exc: Exception) -> JSONResponse:
    """JSON may carry half of a UTF-16 pair (`"\\ud800"`), which no database can store: a 422
    saying so. The request's transaction was not committed, so nothing of it is kept."""
    cause = exc.orig if isinstance(exc, StatementError) else exc
    if not isinstance(cause, UnicodeEncodeError):
        raise exc
    return JSONResponse({"detail": "the text holds an unpaired UTF-16 surrogate (an escape such as \\ud800 "
                                   "without its pair): send valid Unicode"}, status_code=422)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    """Two requests saving the same unique thing at once (a name, a handle): the route checked
    first, but the other committed in between. The loser's transaction is rolled back: a 409."""
    log.info("%s %s: conflict with a concurrent write: %s", request.method, request.url.path,
             str(getattr(exc, "orig", exc))[:300])
    return JSONResponse({"detail": "another change saved the same name or key a moment ago; reload and try "
                                   "again"}, status_code=409)


def create_app(hub: Hub, *, run_migrations: bool = True, background: Services | None = None,
               long_running: bool = False, worker_process: bool = False) -> FastAPI:
    """The app; with `background` it also runs the worker, dispatcher and pollers in this process;
    with `worker_process` (scrm serve's default) it runs them as a child process it supervises.

    `long_running` (scrm serve, the demo) tunes the garbage collector for a server process.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await migrate.upgrade(hub.engine)
        await hub.reload_settings()  # what the admin panel saved, over the environment's
        runtime = BackgroundRuntime(hub, background) if background else None
        if runtime:
            await runtime.start()
        supervisor = WorkerSupervisor() if worker_process else None
        if supervisor:
            supervisor.start()
        if long_running:
            tune_garbage_collector()
        stop_checkpoints = asyncio.Event()
        checkpoints = asyncio.create_task(run_sqlite_checkpoints(hub.engine, stop_checkpoints))
        # Settings another process saved reach this one's API too (the worker's scheduler reloads its own).
        reloads = asyncio.create_task(_reload_settings_every(hub, live_settings.RELOAD_SECONDS, stop_checkpoints))
        try:
            yield
        finally:
            if runtime:
                await runtime.shutdown()
            if supervisor:
                await supervisor.stop()
            stop_checkpoints.set()
            await checkpoints
            await reloads
            await hub.close()

    app = FastAPI(title="SCRM Hub", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Social-CRM messaging hub: REST API and platform webhooks")
    add_docs(app)  # served from a package: no CDN, so they work offline
    app.state.hub = hub
    app.state.api = HubApiContext(hub)
    app.include_router(webhooks.router)
    app.add_middleware(webhooks.WebhookFastPath)
    app.include_router(metrics.router)
    for module in (campaigns, channel_accounts, contact_links, contact_ways, contacts, conversations,
                   customer_groups, customer_transfers, deals, events, faq, leads, mass_sends, media, moments,
                   opinion, panel, quick_replies, reports, settings_api, tags, tasks, teams, users):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(panel_routes.router)
    app.include_router(media.public)
    app.add_exception_handler(UnicodeEncodeError, _unencodable_text)
    app.add_exception_handler(StatementError, _unencodable_text)
    app.add_exception_handler(IntegrityError, _conflict)

    @app.get("/healthz", tags=["health"], responses={503: {"description": "The database does not answer"}})
    async def healthz() -> JSONResponse:
        try:
            async with hub.sessions() as session:
                await session.execute(text("SELECT 1"))
                counts = dict((await session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )).all())
        except Exception as exc:
            log.error("health check: database unavailable: %s", exc)
            return JSONResponse({"status": "error", "database": f"unavailable: {type(exc).__name__}"},
                                status_code=503)
        return JSONResponse({
            "status": "ok",
            "database": hub.engine.dialect.name,
            "outbox": {s.value: counts.get(s, 0) for s in
                       (OutboxStatus.PENDING, OutboxStatus.IN_DOUBT, OutboxStatus.FAILED)},
        })

    return app


async def _reload_settings_every(hub: Hub, seconds: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            try:
                await hub.reload_settings()
            except Exception:  # a database hiccup: try again next time
                log.exception("reloading the panel's settings failed")
