"""A running hub (HTTP + worker + dispatcher) beside a Telegram simulator, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from channels.simulators.telegram import SimBot, TelegramSimulator
from crm_core import accounts, users
from crm_core.dispatcher import DispatchPolicy
from crm_core.models import Role
from hub.app import create_app
from hub.context import Hub
from hub.runtime import Services
from hub.serving import running
from hub.settings import Settings

SECRET = "test-secret-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(database_url: str, data_dir: Path, port: int = 8080, **extra: Any) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, data_dir=data_dir,
                    base_url=f"http://127.0.0.1:{port}", port=port, **extra)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Wait until `check()` returns something truthy; its last value, or AssertionError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


@dataclass
class Stack:
    hub: Hub
    simulator: TelegramSimulator
    bot: SimBot
    sim_base: str
    hub_base: str
    account_id: int
    admin_token: str
    client: httpx.AsyncClient

    def api(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def chat(self, user_id: int) -> list[dict[str, Any]]:
        return self.bot.transcript.get(user_id, [])

    def bot_lines(self, user_id: int) -> list[str]:
        return [m["text"] for m in self.chat(user_id) if m["from"] == "bot"]

    async def customer_writes(self, user_id: int, text: str, **user: Any) -> dict[str, Any]:
        resp = await self.client.post(f"{self.sim_base}/_sim/bots/{self.bot.id}/users/{user_id}/messages",
                                      json={"text": text, **user})
        resp.raise_for_status()
        return resp.json()["update"]

    async def delivered(self) -> bool:
        """All updates pushed to the hub and answered."""
        return not self.bot.queue


@contextlib.asynccontextmanager
async def telegram_stack(database_url: str, data_dir: Path, *, mode: str = "webhook",
                         policy: DispatchPolicy | None = None) -> AsyncIterator[Stack]:
    simulator = TelegramSimulator(webhook_retry_delays=(0.05, 0.1, 0.2))
    bot = simulator.create_bot()
    port = free_port()
    hub = Hub(make_settings(database_url, data_dir, port))
    if policy is not None:
        hub.dispatcher.policy = policy
    app = create_app(hub, background=Services())
    async with running(simulator.app) as sim_server:
        try:
            async with running(app, port=port) as hub_server:
                sim_base = f"http://127.0.0.1:{sim_server.port}"
                adapter = hub.channels.get("telegram")
                async with hub.sessions() as session, session.begin():
                    creds = adapter.credentials_model.model_validate({"bot_token": bot.token}).model_dump()
                    settings = adapter.settings_model.model_validate({"mode": mode}).model_dump()
                    account = await accounts.create(
                        kind="telegram", name="Test bot", platform_account_id=str(bot.id), credentials=creds,
                        api_base=sim_base, settings=settings, cipher=hub.cipher, actor=None, db_session=session)
                    admin = await users.get_or_create("admin", Role.ADMIN, db_session=session)
                    token = await users.create_token(admin, name="test", db_session=session)
                await app.state.api.catalog.activate(account)
                async with httpx.AsyncClient(timeout=10) as client:
                    yield Stack(hub=hub, simulator=simulator, bot=bot, sim_base=sim_base,
                                hub_base=f"http://127.0.0.1:{hub_server.port}", account_id=account.id,
                                admin_token=token, client=client)
        finally:
            simulator.end_long_polls()
