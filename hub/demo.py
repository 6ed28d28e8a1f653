"""`scrm demo`: the hub on SQLite beside the offline Telegram simulator."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from sqlalchemy import select

from channels.simulators.telegram import TelegramSimulator
from crm_core import accounts, migrate, users
from crm_core.models import ChannelAccount, Role
from hub.app import HubChannelCatalog, create_app
from hub.context import Hub
from hub.runtime import Services
from hub.serving import running
from hub.settings import Settings

DEMO_DIR = Path("var/demo")


async def run_demo(*, port: int, sim_port: int, data_dir: Path = DEMO_DIR,
                   ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    settings = Settings(data_dir=data_dir, database_url=None, base_url=f"http://127.0.0.1:{port}",
                        host="127.0.0.1", port=port)
    simulator = TelegramSimulator()
    # The bot keeps its token across demo runs, so the stored account stays valid.
    token_file = data_dir / "telegram_bot_token"
    data_dir.mkdir(parents=True, exist_ok=True)
    bot = simulator.create_bot(username="scrm_demo_bot", first_name="SCRM Demo",
                               token=token_file.read_text().strip() if token_file.exists() else None)
    token_file.write_text(bot.token)

    hub = Hub(settings)
    await migrate.upgrade(hub.engine)
    sim_base = f"http://127.0.0.1:{sim_port}"
    async with running(simulator.app, port=sim_port):
        account_id, api_token = await _seed(hub, sim_base, bot.token)
        app = create_app(hub, background=Services(), long_running=True)
        async with running(app, port=port):
            print(
                "\nSCRM Hub demo is running (SQLite at {db}).\n"
                "  Chat as a customer (Telegram simulator): {sim}/\n"
                "  Hub API documentation:                   http://127.0.0.1:{port}/docs\n"
                "  Telegram channel account:                {account}\n"
                "  Admin API token:                         {token}\n"
                "  Try: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/api/v1/conversations\n"
                "Press Ctrl+C to stop.\n".format(db=settings.resolved_database_url.split("///")[-1], sim=sim_base,
                                                 port=port, account=account_id, token=api_token),
                flush=True,
            )
            if ready is not None:
                ready.set()
            await stop.wait()


async def _seed(hub: Hub, sim_base: str, bot_token: str) -> tuple[int, str]:
    """The demo's Telegram account (created once, re-pointed at the simulator) and an admin token."""
    adapter = hub.channels.get("telegram")
    check = await adapter.check_connection(sim_base, {"bot_token": bot_token})
    async with hub.sessions() as session, session.begin():
        account = await session.scalar(select(ChannelAccount).where(
            ChannelAccount.kind == "telegram", ChannelAccount.platform_account_id == check.platform_account_id))
        if account is None:
            credentials = adapter.credentials_model.model_validate({"bot_token": bot_token}).model_dump()
            account = await accounts.create(
                kind="telegram", name=f"Demo bot {check.display_name}",
                platform_account_id=check.platform_account_id, credentials=credentials, api_base=sim_base,
                settings=adapter.settings_model().model_dump(), cipher=hub.cipher, actor=None, db_session=session)
        account.api_base = sim_base
        admin = await users.get_or_create("demo-admin", Role.ADMIN, db_session=session, display_name="Demo admin")
        token = await users.create_token(admin, name="demo", db_session=session)
    await HubChannelCatalog(hub).activate(account)
    return account.id, token
