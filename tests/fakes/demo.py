"""`scrm demo` started in the test's event loop on free ports, for tests that walk it as a
newcomer would: the Telegram simulator's customers, the hub's API and panel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.models import User
from crm_core.people import users
from tests.fakes.stack import eventually, free_port


@dataclass
class Demo:
    port: int
    sim_port: int
    data_dir: Path
    sim: httpx.AsyncClient
    hub: httpx.AsyncClient
    bot: dict[str, Any]
    ports: dict[str, int]  # the other simulators'

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sim_base(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    async def api(self) -> dict[str, str]:
        """Headers with a new API token of the demo's admin."""
        engine = create_engine(f"sqlite+aiosqlite:///{self.data_dir / 'scrm.db'}")
        try:
            async with session_factory(engine)() as session, session.begin():
                admin = await session.scalar(select(User).where(User.username == "demo-admin"))
                token = await users.create_token(admin, name="test", db_session=session)
        finally:
            await engine.dispose()
        return {"Authorization": f"Bearer {token}"}

    async def customer_writes(self, user_id: int, text: str, **user: Any) -> None:
        resp = await self.sim.post(f"/_sim/bots/{self.bot['id']}/users/{user_id}/messages", json={"text": text, **user})
        resp.raise_for_status()

    async def chat(self, user_id: int) -> list[dict[str, Any]]:
        return (await self.sim.get(f"/_sim/bots/{self.bot['id']}/chats/{user_id}")).json()["messages"]

    async def bot_says(self, user_id: int, count: int, timeout: float = 30) -> list[str]:
        """The bot's lines to the customer once there are at least `count`."""
        async def enough() -> list[str] | None:
            lines = [m["text"] for m in await self.chat(user_id) if m["from"] == "bot"]
            return lines if len(lines) >= count else None
        return await eventually(enough, timeout=timeout)


@contextlib.asynccontextmanager
async def demo_running(data_dir: Path) -> AsyncIterator[Demo]:
    from hub.demo import run_demo

    port, sim_port, wecom_port, wechat_port, dingtalk_port = (free_port() for _ in range(5))
    ports = {"wechat": wechat_port, "wecom": wecom_port, "dingtalk": dingtalk_port}
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_demo(port=port, sim_port=sim_port, wecom_port=wecom_port, wechat_port=wechat_port,
                                        dingtalk_port=dingtalk_port, data_dir=data_dir, ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=10) as sim, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as hub:
            [bot] = (await sim.get("/_sim/bots")).json()
            yield Demo(port, sim_port, data_dir, sim, hub, bot, ports)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
