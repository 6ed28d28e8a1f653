"""`scrm demo`: the hub on SQLite beside the offline Telegram, WeCom, WeChat and DingTalk simulators.

A Telegram customer, a WeChat Official Account follower and a customer in a
DingTalk group talk to the bot; the reps Li Lei and Wang Fang and their
manager Zhao Min work from the WeCom app or from the DingTalk robot.
Credentials of the simulated bot, app and account are kept in the data
directory, so a second run finds the same channel accounts and history.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path

from sqlalchemy import select

from channels.simulators import wecom_kf as kf_sim
from channels.simulators.dingtalk import DingTalkSimulator, Robot
from channels.simulators.telegram import TelegramSimulator
from channels.simulators.wechat import SimAccount, WeChatSimulator
from channels.simulators.wecom import SimApp, WeComSimulator
from crm_core import accounts, migrate
from crm_core.models import ChannelAccount, Role
from crm_core.people import reps, users, web_auth
from hub.app import HubChannelCatalog, create_app
from hub.context import Hub
from hub.demo_seed import seed_once
from hub.runtime import Services
from hub.serving import running
from hub.settings import Settings

DEMO_DIR = Path("var/demo")


# What to open, and three things to try on each page.
BANNER = """
SCRM Hub demo is running (SQLite at {db}).
  Telegram customer, chatting with the bot:      {sim}/
      try: "How long does shipping take?" · "请问退货流程是什么？" (the FAQ, in your language)
           "I'd like a quote for 20 seats" (the lead form; Li Lei gets the card in WeCom)
  WeChat follower (Official Account):            {wechat}/
      try: Follow, then "可以开发票吗？" (an article card) · "想了解一下报价" · "退订" (opted out)
  Reps in WeCom (Li Lei, Wang Fang, Zhao Min), their archived 1:1 chats and 微信客服:
                                                 {wecom}/
      try: claim the lead card and answer with /r N text · ask 微信客服 "转人工", answer as the rep it goes to
           · add Li Lei as a WeCom customer and write "退订" (read from the archive, opted out)
  DingTalk: reps and a customer group:           {dingtalk}/
      try: "@robot 你们的产品多少钱？" in the group · /help as a rep · claim a card from the robot
  Admin panel:                                   http://127.0.0.1:{port}/admin
      user demo-admin, password {password} (kept in {password_file})
      try: the dashboard · Knowledge base (the FAQ the bot answers from) · Inbox (reply as a person)
  Hub API documentation (works offline):         http://127.0.0.1:{port}/docs
      token: {token}
      try: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/api/v1/conversations
Press Ctrl+C to stop.
"""

DEMO_REPS = {"li": ("Li Lei", Role.REP), "wang": ("Wang Fang", Role.REP), "boss": ("Zhao Min", Role.MANAGER)}


async def run_demo(*, port: int, sim_port: int, wecom_port: int | None = None, wechat_port: int | None = None,
                   dingtalk_port: int | None = None, data_dir: Path = DEMO_DIR, ready: asyncio.Event | None = None,
                   stop: asyncio.Event | None = None) -> None:
    wecom_port = wecom_port or sim_port + 1
    wechat_port = wechat_port or sim_port + 2
    dingtalk_port = dingtalk_port or sim_port + 3
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    # The sentiment model `./dev` trained for this checkout (<data dir>/models), not one per demo directory.
    settings = Settings(data_dir=data_dir, database_url=None, base_url=f"http://127.0.0.1:{port}",
                        host="127.0.0.1", port=port, sentiment_model=Settings().resolved_sentiment_model,
                        allow_private_api_base=True,  # its simulators are on 127.0.0.1
                        marketing_quiet_hours="")  # the seeded campaign's steps go out whatever the hour
    data_dir.mkdir(parents=True, exist_ok=True)
    # Its bot, users, chats and ids kept across demo runs: the stored account stays valid, replies
    # to earlier customers arrive in their chats, and no message id is used twice.
    simulator = TelegramSimulator(state_file=data_dir / "telegram_simulator.json")
    token_file = data_dir / "telegram_bot_token"  # a data directory of an earlier version
    bot = next(iter(simulator.bots.values()), None) or simulator.create_bot(
        username="scrm_demo_bot", first_name="SCRM Demo",
        token=token_file.read_text().strip() if token_file.exists() else None)
    wecom, wecom_app = _wecom_simulator(data_dir)
    kf_app, open_kfid = _kf_app(wecom, data_dir)
    wechat, wechat_account = _wechat_simulator(data_dir)
    dingtalk, robot = _dingtalk_simulator(data_dir)

    hub = Hub(settings)
    await migrate.upgrade(hub.engine)
    sim_base = f"http://127.0.0.1:{sim_port}"
    wecom_base, wechat_base = f"http://127.0.0.1:{wecom_port}", f"http://127.0.0.1:{wechat_port}"
    dingtalk_base = dingtalk.base_url = f"http://127.0.0.1:{dingtalk_port}"
    async with running(simulator.app, port=sim_port), running(wecom.app, port=wecom_port), \
            running(wechat.app, port=wechat_port), running(dingtalk.app, port=dingtalk_port):
        password_file = data_dir / "admin_password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        admin_password = password_file.read_text().strip()
        account_id, api_token = await _seed(hub, sim_base, bot.token, admin_password)
        wecom_id, wechat_id, dingtalk_id = await _seed_workspace(hub, wecom_base, wecom_app, wechat_base,
                                                                 wechat_account, dingtalk_base, robot)
        wecom_app.callback_url = f"{settings.base_url}/hooks/wecom/{wecom_id}"
        kf_id = await _seed_kf(hub, wecom_base, kf_app, open_kfid)
        for part in await seed_once(hub, data_dir, simulator, bot):
            print(f"demo: seeded {part}", flush=True)
        kf_app.callback_url = f"{settings.base_url}/hooks/wecom_kf/{kf_id}"
        wechat_account.callback_url = f"{settings.base_url}/hooks/wechat/{wechat_id}"
        robot.callback_url = f"{settings.base_url}/hooks/dingtalk/{dingtalk_id}"
        app = create_app(hub, background=Services(), long_running=True)
        async with running(app, port=port):
            print(BANNER.format(db=settings.resolved_database_url.split("///")[-1], sim=sim_base, wechat=wechat_base,
                                wecom=wecom_base, dingtalk=dingtalk_base, port=port, token=api_token,
                                password=admin_password, password_file=password_file), flush=True)
            if ready is not None:
                ready.set()
            await stop.wait()


def _wecom_simulator(data_dir: Path) -> tuple[WeComSimulator, SimApp]:
    simulator = WeComSimulator(state_file=data_dir / "wecom_simulator.json")  # chats, 微信客服 logs kept
    saved = _load(data_dir / "wecom_app.json")
    app = simulator.create_app(**saved) if saved else simulator.create_app()
    _save(data_dir / "wecom_app.json", {"agent_id": app.agent_id, "corp_id": app.corp_id, "secret": app.secret,
                                        "token": app.token, "encoding_aes_key": app.encoding_aes_key})
    for userid, (name, _) in DEMO_REPS.items():
        simulator.add_member(app, userid, name)
    try:  # what customers write to reps reaches the hub through the session archive, as in WeCom
        simulator.enable_archive(app, data_dir / "wecom-archive")
    except (RuntimeError, OSError) as exc:
        print(f"demo: WeCom session archive off ({exc}); customers' 1:1 chat with reps will not reach the hub",
              flush=True)
    return simulator, app


def _kf_app(simulator: WeComSimulator, data_dir: Path) -> tuple[SimApp, str]:
    """The self-built app set in 微信客服 → 可调用接口的应用, with one kf account that Li Lei and Wang
    Fang serve (its own app: its callback URL is the hub's 微信客服 webhook)."""
    saved = _load(data_dir / "wecom_kf_app.json")
    app = simulator.create_app(**{k: v for k, v in saved.items() if k != "open_kfid"}) if saved \
        else simulator.create_app()
    open_kfid = kf_sim.add_account(app.kf, "售前咨询 · Pre-sales", saved.get("open_kfid") if saved else None)
    _save(data_dir / "wecom_kf_app.json", {"agent_id": app.agent_id, "corp_id": app.corp_id, "secret": app.secret,
                                           "token": app.token, "encoding_aes_key": app.encoding_aes_key,
                                           "open_kfid": open_kfid})
    for userid, (name, role) in DEMO_REPS.items():
        simulator.add_member(app, userid, name)
        if role == Role.REP:
            app.kf.servicers[userid] = True
    return app, open_kfid


async def _seed_kf(hub: Hub, base: str, app: SimApp, open_kfid: str) -> int:
    """The 微信客服 channel account; created once."""
    adapter = hub.channels.get("wecom_kf")
    creds = {"corp_id": app.corp_id, "secret": app.secret, "token": app.token, "encoding_aes_key": app.encoding_aes_key}
    check = await adapter.check_connection(base, creds)
    async with hub.sessions() as session, session.begin():
        account = await session.scalar(select(ChannelAccount).where(
            ChannelAccount.kind == "wecom_kf", ChannelAccount.platform_account_id == check.platform_account_id))
        if account is None:
            account = await accounts.create(
                kind="wecom_kf", name="微信客服 · WeChat customer service",
                platform_account_id=check.platform_account_id,
                credentials=adapter.credentials_model.model_validate(creds).model_dump(), api_base=base,
                settings=adapter.settings_model.model_validate({"open_kfids": [open_kfid]}).model_dump(),
                cipher=hub.cipher, actor=None, db_session=session)
        account.api_base = base
        return account.id


def _wechat_simulator(data_dir: Path) -> tuple[WeChatSimulator, SimAccount]:
    simulator = WeChatSimulator(state_file=data_dir / "wechat_simulator.json")  # followers and chats kept
    saved = _load(data_dir / "wechat_account.json")
    account = simulator.create_account(**saved) if saved else simulator.create_account()
    _save(data_dir / "wechat_account.json", {"app_id": account.app_id, "app_secret": account.app_secret,
                                             "token": account.token, "encoding_aes_key": account.encoding_aes_key})
    return simulator, account


def _dingtalk_simulator(data_dir: Path) -> tuple[DingTalkSimulator, Robot]:
    simulator = DingTalkSimulator(state_file=data_dir / "dingtalk_simulator.json")  # groups and chats kept
    saved = _load(data_dir / "dingtalk_robot.json")
    robot = simulator.create_robot(**saved) if saved else simulator.create_robot()
    _save(data_dir / "dingtalk_robot.json", {"app_key": robot.app_key, "app_secret": robot.app_secret,
                                             "robot_code": robot.robot_code, "corp_id": robot.corp_id})
    for userid, (name, _) in DEMO_REPS.items():
        simulator.add_staff(robot, userid, name)
    return simulator, robot


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _save(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))
    path.chmod(0o600)  # simulated secrets, but secrets: not for other users of the machine


async def _seed_workspace(hub: Hub, wecom_base: str, wecom_app: SimApp, wechat_base: str,
                          wechat_account: SimAccount, dingtalk_base: str, robot: Robot) -> tuple[int, int, int]:
    """The WeCom app and the DingTalk robot with the demo reps as users, and the
    Official Account; created once."""
    wecom_creds = {"corp_id": wecom_app.corp_id, "agent_id": wecom_app.agent_id, "secret": wecom_app.secret,
                   "token": wecom_app.token, "encoding_aes_key": wecom_app.encoding_aes_key}
    wecom_settings: dict = {}
    if wecom_app.archive is not None:
        wecom_creds |= {"archive_secret": wecom_app.archive.secret,
                        "archive_private_keys": wecom_app.archive.private_keys_pem()}
        wecom_settings = {"archive_sdk_path": str(wecom_app.archive_sdk), "archive_poll_seconds": 2.0}
    wechat_creds = {"app_id": wechat_account.app_id, "app_secret": wechat_account.app_secret,
                    "token": wechat_account.token, "encoding_aes_key": wechat_account.encoding_aes_key}
    dingtalk_creds = {"app_key": robot.app_key, "app_secret": robot.app_secret, "robot_code": robot.robot_code}
    ids = []
    async with hub.sessions() as session, session.begin():
        for kind, name, base, creds in (("wecom", "Sales app (WeCom)", wecom_base, wecom_creds),
                                        ("wechat", "Official Account", wechat_base, wechat_creds),
                                        ("dingtalk", "Sales robot (DingTalk)", dingtalk_base, dingtalk_creds)):
            adapter = hub.channels.get(kind)
            check = await adapter.check_connection(base, creds)
            account = await session.scalar(select(ChannelAccount).where(
                ChannelAccount.kind == kind, ChannelAccount.platform_account_id == check.platform_account_id))
            settings = adapter.settings_model.model_validate(wecom_settings if kind == "wecom" else {}).model_dump()
            credentials = adapter.credentials_model.model_validate(creds).model_dump()
            if account is None:
                account = await accounts.create(
                    kind=kind, name=name, platform_account_id=check.platform_account_id, credentials=credentials,
                    api_base=base, settings=settings, cipher=hub.cipher, actor=None, db_session=session)
            elif kind == "wecom":  # the archive's keys and SDK as this run has them
                await accounts.update(account, credentials=credentials,
                                      credentials_account_id=check.platform_account_id,
                                      cipher=hub.cipher, actor=None, db_session=session)
                account.settings = {**(account.settings or {}), **settings}
            account.api_base = base
            ids.append(account.id)
        users_by_id = {}
        for userid, (display, role) in DEMO_REPS.items():
            user = await users.get_or_create(userid, role, db_session=session, display_name=display)
            users_by_id[userid] = user
            for account_id in (ids[0], ids[2]):  # WeCom userid and DingTalk staffId
                await reps.add_handle(user, channel_account_id=account_id, external_id=userid, db_session=session)
        for userid, (_, role) in DEMO_REPS.items():
            if role == Role.REP:
                users_by_id[userid].manager_user_id = users_by_id["boss"].id
    return ids[0], ids[1], ids[2]


async def _seed(hub: Hub, sim_base: str, bot_token: str, admin_password: str) -> tuple[int, str]:
    """The demo's Telegram account (created once, re-pointed at the simulator), an admin token,
    and the admin's panel password (set on the first run)."""
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
        if admin.password_hash is None:
            await web_auth.set_password(admin, admin_password, actor=None, db_session=session)
    await HubChannelCatalog(hub).activate(account)
    return account.id, token
