"""A running hub (HTTP + worker + dispatcher) beside the platform simulators, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.simulators.dingtalk import DingTalkSimulator, Robot
from channels.simulators.telegram import SimBot, TelegramSimulator
from channels.simulators.wechat import SimAccount, WeChatSimulator
from channels.simulators.wecom import SimApp, WeComSimulator
from crm_core import accounts
from crm_core.models import Role, User
from crm_core.outbox.dispatcher import DispatchPolicy
from crm_core.people import reps as crm_reps
from crm_core.people import users
from hub.app import create_app
from hub.context import Hub
from hub.runtime import Services
from hub.serving import running
from hub.settings import Settings

SECRET = "test-secret-key-0123456789abcdef"


# Each xdist worker takes its own ports (those equal to its number modulo the workers'): two
# workers walking one range met and picked the same port between its check and its bind, which
# failed two tests of a CI run with "address already in use".
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
_OWN = [port for port in range(20_000, 32_000) if port % _WORKERS == _WORKER]
_START = random.randrange(len(_OWN))
_PORTS = itertools.cycle(_OWN[_START:] + _OWN[:_START])


def free_port() -> int:
    """A port to listen on, below the kernel's ephemeral range (32768+): a port the OS
    hands out (bind to 0) can be taken by an outgoing connection before the server
    binds it, which failed a CI run with "address already in use"."""
    for _, port in zip(range(len(_OWN)), _PORTS, strict=False):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")


def make_settings(database_url: str, data_dir: Path, port: int = 8080, **extra: Any) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, data_dir=data_dir,
                    base_url=f"http://127.0.0.1:{port}", port=port,
                    **{"allow_private_api_base": True, **extra})  # the simulators are on 127.0.0.1


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
                         policy: DispatchPolicy | None = None, **settings: Any) -> AsyncIterator[Stack]:
    simulator = TelegramSimulator(webhook_retry_delays=(0.05, 0.1, 0.2))
    bot = simulator.create_bot()
    port = free_port()
    hub = Hub(make_settings(database_url, data_dir, port, **settings))
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


@dataclass
class WorkspaceStack:
    """The Telegram stack plus a WeCom app whose members are the reps."""

    tg: Stack
    wecom: WeComSimulator
    wecom_app: SimApp
    wecom_base: str
    wecom_account_id: int
    reps: dict[str, int]  # WeCom userid -> hub user id
    wechat: WeChatSimulator
    wechat_account: SimAccount
    wechat_base: str
    wechat_account_id: int

    async def follower(self, openid: str, action: str, **body: Any) -> None:
        resp = await self.tg.client.post(
            f"{self.wechat_base}/_sim/accounts/{self.wechat_account.app_id}/followers/{openid}/{action}", json=body)
        assert resp.status_code == 200, resp.text

    async def wecom_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.tg.client.post(f"{self.wecom_base}/_sim/apps/{self.wecom_app.agent_id}/{path}", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def rep_writes(self, userid: str, text: str) -> None:
        await self.wecom_post(f"members/{userid}/messages", {"text": text})

    async def rep_clicks(self, userid: str, key: str) -> None:
        await self.wecom_post(f"members/{userid}/clicks", {"key": key})

    def rep_inbox(self, userid: str) -> list[dict[str, Any]]:
        return self.wecom_app.transcript(userid)

    async def rep_receives(self, userid: str, contains: str, *, after: int = 0, timeout: float = 15) -> dict:
        """The first message to the rep (from index `after`) whose text or title contains `contains`."""
        def find() -> dict | None:
            for entry in self.rep_inbox(userid)[after:]:
                title = (entry.get("card") or {}).get("main_title", {}).get("title", "")
                if contains in entry.get("text", "") or contains in title:
                    return entry
            return None

        async def check() -> dict | None:
            return find()
        return await eventually(check, timeout=timeout)


async def seed_reps(reps: dict[str, tuple[str, Role]], account_id: int, session: Any) -> dict[str, int]:
    """Users for `reps` (chat-app id -> (name, role)) with handles on the account; the
    first manager manages every rep. Their hub ids by chat-app id."""
    ids: dict[str, int] = {}
    managers = []
    for external_id, (name, role) in reps.items():
        user = await users.get_or_create(external_id, role, display_name=name, db_session=session)
        await crm_reps.add_handle(user, channel_account_id=account_id, external_id=external_id, db_session=session)
        ids[external_id] = user.id
        if role == Role.MANAGER:
            managers.append(user)
    for external_id, (_, role) in reps.items():
        if role == Role.REP and managers:
            (await session.get(User, ids[external_id])).manager_user_id = managers[0].id
    return ids


@contextlib.asynccontextmanager
async def workspace_stack(database_url: str, data_dir: Path, reps: dict[str, tuple[str, Role]] | None = None,
                          wechat_mode: str = "safe", **settings: Any) -> AsyncIterator[WorkspaceStack]:
    """`reps`: WeCom userid -> (display name, role); managers manage every rep."""
    reps = reps or {"li": ("Li Lei", Role.REP), "wang": ("Wang Fang", Role.REP), "boss": ("Zhao", Role.MANAGER)}
    wecom = WeComSimulator(callback_deadline=5.0, retry_delays=(0.2, 0.4, 0.8))
    wechat = WeChatSimulator(callback_deadline=5.0, retry_delays=(0.2, 0.4, 0.8))
    oa = wechat.create_account(mode=wechat_mode)
    app = wecom.create_app()
    for userid, (name, _) in reps.items():
        wecom.add_member(app, userid, name)
    # Session archiving on: what customers write to reps reaches the hub only through it, as in WeCom.
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        if os.environ.get("CI"):
            pytest.fail("gcc is not installed; .ci/run installs it (the WeCom archive's SDK stand-in is C)")
        pytest.skip("gcc is not installed: the WeCom simulator builds its finance SDK stand-in with it")
    sdk = wecom.enable_archive(app, data_dir / "wecom-archive")
    async with running(wecom.app) as wecom_server, running(wechat.app) as wechat_server, \
            telegram_stack(database_url, data_dir, **settings) as tg:
        wecom_base = f"http://127.0.0.1:{wecom_server.port}"
        wechat_base = f"http://127.0.0.1:{wechat_server.port}"
        hub = tg.hub
        async with hub.sessions() as session, session.begin():
            creds = {"corp_id": app.corp_id, "agent_id": app.agent_id, "secret": app.secret, "token": app.token,
                     "encoding_aes_key": app.encoding_aes_key, "archive_secret": app.archive.secret,
                     "archive_private_keys": app.archive.private_keys_pem()}
            account = await accounts.create(
                kind="wecom", name="Sales app", platform_account_id=f"{app.corp_id}:{app.agent_id}",
                credentials=creds, api_base=wecom_base,
                settings=hub.channels.get("wecom").settings_model.model_validate(
                    {"archive_sdk_path": str(sdk), "archive_poll_seconds": 1.0}).model_dump(),
                cipher=hub.cipher, actor=None,
                db_session=session)
            oa_account = await accounts.create(
                kind="wechat", name="Official account", platform_account_id=oa.app_id,
                credentials={"app_id": oa.app_id, "app_secret": oa.app_secret, "token": oa.token,
                             "encoding_aes_key": oa.encoding_aes_key},
                api_base=wechat_base,
                settings=hub.channels.get("wechat").settings_model.model_validate({"mode": wechat_mode}).model_dump(),
                cipher=hub.cipher, actor=None, db_session=session)
            ids = await seed_reps(reps, account.id, session)
        app.callback_url = f"{tg.hub_base}/hooks/wecom/{account.id}"
        hub.accounts_changed.set()  # the archive poller starts
        oa.callback_url = f"{tg.hub_base}/hooks/wechat/{oa_account.id}"
        yield WorkspaceStack(tg=tg, wecom=wecom, wecom_app=app, wecom_base=wecom_base,
                             wecom_account_id=account.id, reps=ids, wechat=wechat, wechat_account=oa,
                             wechat_base=wechat_base, wechat_account_id=oa_account.id)


@dataclass
class DingTalkStack:
    """The Telegram stack plus a DingTalk robot whose company staff are the reps."""

    tg: Stack
    sim: DingTalkSimulator
    robot: Robot
    base: str
    account_id: int
    reps: dict[str, int]  # DingTalk staffId -> hub user id

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.tg.client.post(f"{self.base}/_sim/robots/{self.robot.robot_code}/{path}", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def rep_writes(self, staff_id: str, text: str) -> None:
        await self.post(f"staff/{staff_id}/messages", {"text": text})

    async def rep_clicks(self, staff_id: str, action: str) -> None:
        await self.post(f"staff/{staff_id}/clicks", {"action": action})

    async def customer_writes(self, cid: str, sender: str, nick: str, text: str, *, at: bool = True) -> None:
        await self.post(f"groups/{cid}/messages", {"sender": sender, "nick": nick, "text": text, "at": at})

    def inbox(self, who: str) -> list[dict[str, Any]]:
        return self.robot.transcript(who)

    async def receives(self, who: str, contains: str, *, after: int = 0, timeout: float = 15) -> dict:
        """The first message to `who` (a staffId or a group) from index `after` whose text or title has `contains`."""
        async def check() -> dict | None:
            for entry in self.inbox(who)[after:]:
                if contains in entry.get("text", "") or contains in entry.get("title", ""):
                    return entry
            return None
        return await eventually(check, timeout=timeout)


@contextlib.asynccontextmanager
async def dingtalk_stack(database_url: str, data_dir: Path, *, mode: str = "http",
                         reps: dict[str, tuple[str, Role]] | None = None,
                         session_lifetime: float = 3600.0) -> AsyncIterator[DingTalkStack]:
    """`reps`: staffId -> (display name, role); the manager manages every rep."""
    reps = reps or {"li01": ("Li Lei", Role.REP), "wang02": ("Wang Fang", Role.REP),
                    "boss03": ("Zhao", Role.MANAGER)}
    sim = DingTalkSimulator(callback_deadline=5.0, retry_delays=(0.2, 0.4, 0.8), session_lifetime=session_lifetime)
    robot = sim.create_robot(mode="stream" if mode == "stream" else "http")
    for staff_id, (name, _) in reps.items():
        sim.add_staff(robot, staff_id, name)
    async with running(sim.app) as sim_server, telegram_stack(database_url, data_dir) as tg:
        base = f"http://127.0.0.1:{sim_server.port}"
        sim.base_url = base
        hub = tg.hub
        adapter = hub.channels.get("dingtalk")
        async with hub.sessions() as session, session.begin():
            account = await accounts.create(
                kind="dingtalk", name="Sales robot", platform_account_id=f"{robot.app_key}:{robot.robot_code}",
                credentials={"app_key": robot.app_key, "app_secret": robot.app_secret, "robot_code": robot.robot_code},
                api_base=base, settings=adapter.settings_model.model_validate({"mode": mode}).model_dump(),
                cipher=hub.cipher, actor=None, db_session=session)
            ids = await seed_reps(reps, account.id, session)
        hub.accounts_changed.set()  # a stream-mode account starts its connection now
        robot.callback_url = f"{tg.hub_base}/hooks/dingtalk/{account.id}" if mode == "http" else None
        yield DingTalkStack(tg=tg, sim=sim, robot=robot, base=base, account_id=account.id, reps=ids)
