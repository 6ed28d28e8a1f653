"""The scrm command: migrate, token create, outbox resolve, serve and demo."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import select

from crm_core import migrate
from crm_core.consent import service as consent
from crm_core.db import create_engine, session_factory
from crm_core.models import Identity, Message, MessagePurpose, OutboxMessage, OutboxStatus
from crm_core.people import users
from hub.cli import main
from tests.fakes.demo import demo_running
from tests.fakes.stack import SECRET, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SCRM_DATABASE_URL", url)
    monkeypatch.setenv("SCRM_SECRET_KEY", SECRET)
    monkeypatch.setenv("SCRM_DATA_DIR", str(tmp_path))
    return url


def test_migrate_applies_then_reports_nothing_to_do(env):
    runner = CliRunner()
    first = runner.invoke(main, ["migrate"])
    assert first.exit_code == 0, first.output
    revisions = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())
    assert f"{len(revisions)} migration(s) applied" in first.output
    second = runner.invoke(main, ["migrate"])
    assert "0 migration(s) applied" in second.output


def test_token_create_prints_a_working_token(env):
    result = CliRunner().invoke(main, ["token", "create", "--role", "admin"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("scrm_")

    async def check():
        engine = create_engine(env)
        async with session_factory(engine)() as session:
            user = await users.authenticate(token, db_session=session)
        await engine.dispose()
        return user

    user = asyncio.run(check())
    assert (user.username, user.role.value) == ("cli-admin", "admin")


def test_token_create_refuses_a_role_change(env):
    runner = CliRunner()
    assert runner.invoke(main, ["token", "create", "--role", "rep", "--user", "li"]).exit_code == 0
    result = runner.invoke(main, ["token", "create", "--role", "admin", "--user", "li"])
    assert result.exit_code != 0
    assert "exists with role rep" in result.output


def test_outbox_commands_on_a_database_not_migrated_say_to_migrate(env):
    runner = CliRunner()
    for command in (["outbox", "in-doubt"], ["outbox", "resolve", "1", "--sent"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 1, result.output
        assert "the database needs" in result.output and "run `scrm migrate` first" in result.output
        assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


def test_outbox_resolve_needs_exactly_one_decision_and_an_in_doubt_row(env):
    runner = CliRunner()
    runner.invoke(main, ["migrate"])
    assert "exactly one of" in runner.invoke(main, ["outbox", "resolve", "1"]).output
    result = runner.invoke(main, ["outbox", "resolve", "1", "--resend"])
    assert result.exit_code != 0
    assert ("there is no outbox row 1: nothing resolved; `scrm outbox in-doubt` lists the rows to resolve"
            in result.output)
    assert runner.invoke(main, ["outbox", "in-doubt"]).output.strip() == "no sends in doubt"


def test_a_bad_setting_is_a_clear_error(env, monkeypatch):
    monkeypatch.setenv("SCRM_BASE_URL", "hub.example.com")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code != 0
    assert "SCRM_BASE_URL must start with http" in result.output


def test_serve_migrates_on_start_and_answers_health(tmp_path):
    port = free_port()
    env = {**os.environ, "SCRM_DATA_DIR": str(tmp_path), "SCRM_LOG_LEVEL": "WARNING"}
    env.pop("SCRM_DATABASE_URL", None)
    env.pop("SCRM_SECRET_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert resp.json()["status"] == "ok"
        assert (tmp_path / "scrm.db").exists()  # the embedded default
        key = tmp_path / "secret_key"
        assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"  # generated once, private
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def nothing_due_for(tmp_path, recipient: str) -> bool:
    """No send to `recipient` waits in the demo's outbox."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}")
    async with session_factory(engine)() as session:
        due = await session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))).limit(1))
    await engine.dispose()
    return due is None


async def processed_inbound(tmp_path) -> int:
    """Customer messages the demo's worker has processed (not the seeded history's)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}")
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(Message.id).where(
            Message.direction == "in", Message.processed_at.is_not(None),
            Message.platform_message_id.not_like("history:%")))).all()
    await engine.dispose()
    return len(rows)


async def run_demo_once(tmp_path, customer_text: str, processed: int) -> tuple[dict, list[str]]:
    """Start the demo, type one customer message, wait until `processed` messages are
    processed, return the bot and its replies."""
    async with demo_running(tmp_path) as demo:
        sim, bot = demo.sim, dict(demo.bot)
        assert "Telegram simulator" in (await sim.get("/")).text
        await sim.post(f"/_sim/bots/{bot['id']}/users/10002/messages",
                       json={"text": customer_text, "first_name": "王伟", "language_code": "zh-hans"})

        async def replies():
            chat = (await sim.get(f"/_sim/bots/{bot['id']}/chats/10002")).json()["messages"]
            return [m["text"] for m in chat if m["from"] == "bot"]

        await eventually(lambda: _at_least(processed_inbound(tmp_path), processed))
        await eventually(lambda: nothing_due_for(tmp_path, "10002"))  # its reply, if any, sent
        await asyncio.sleep(0.5)  # and arrived in the simulator
        bot["port"] = demo.port
        return bot, await replies()


async def test_demo_answers_a_customer_typed_into_the_simulator(tmp_path):
    bot, [line] = await run_demo_once(tmp_path, "你好", processed=1)
    assert bot["webhook_url"] == f"http://127.0.0.1:{bot['port']}/hooks/telegram/1"
    assert line.startswith("您好，王伟")

    # A second run keeps the bot, the channel account, the chat and the history; the
    # customer who writes again right away is not greeted or acknowledged twice.
    again, lines = await run_demo_once(tmp_path, "hello again", processed=2)
    assert lines == [line]
    assert again["id"] == bot["id"]
    assert again["webhook_url"].endswith("/hooks/telegram/1")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}")
    async with session_factory(engine)() as session:
        texts = (await session.scalars(select(OutboxMessage.payload).where(OutboxMessage.channel_account_id == 1,
                                                                       OutboxMessage.recipient == "10002")
                                       .order_by(OutboxMessage.id))).all()
    await engine.dispose()
    assert len(texts) == 1
    assert texts[0]["text"].startswith("您好，王伟")


async def _at_least(value, n: int) -> bool:
    return (await value) >= n


def test_an_in_doubt_send_is_resolved_as_sent_or_queued_again(env):
    from sqlalchemy import update

    from crm_core.models import OutboxStatus
    from tests.crm_core.test_dispatcher import conversation_for, enqueue
    from tests.crm_core.test_ingest import make_account

    runner = CliRunner()
    runner.invoke(main, ["migrate"])

    async def in_doubt_rows() -> list[int]:
        engine = create_engine(env)
        sessions = session_factory(engine)
        conversation = await conversation_for(sessions, await make_account(sessions))
        ids = await enqueue(sessions, conversation, "maybe delivered", "maybe not", "maybe delivered too")
        async with sessions() as session, session.begin():
            await session.execute(update(OutboxMessage).values(status=OutboxStatus.IN_DOUBT, claimed_by="gone"))
        await engine.dispose()
        return ids

    async def statuses() -> list[OutboxStatus]:
        engine = create_engine(env)
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id))).all()
        await engine.dispose()
        return list(rows)

    delivered, lost, delivered_too = asyncio.run(in_doubt_rows())
    listed = runner.invoke(main, ["outbox", "in-doubt"]).output
    assert "maybe delivered" in listed and "maybe not" in listed
    # Several at once: all of them, or none if one of them is not in doubt.
    mixed = runner.invoke(main, ["outbox", "resolve", str(delivered), "999", str(delivered_too), "--sent"])
    assert mixed.exit_code != 0 and "there is no outbox row 999: nothing resolved" in mixed.output
    assert asyncio.run(statuses()) == [OutboxStatus.IN_DOUBT] * 3
    both = runner.invoke(main, ["outbox", "resolve", str(delivered_too), str(delivered), "--sent"]).output
    assert both.splitlines() == [f"outbox row {delivered}: marked sent", f"outbox row {delivered_too}: marked sent"]
    assert "queued to send again" in runner.invoke(main, ["outbox", "resolve", str(lost), "--resend"]).output
    assert asyncio.run(statuses()) == [OutboxStatus.SENT, OutboxStatus.PENDING, OutboxStatus.SENT]
    again = runner.invoke(main, ["outbox", "resolve", str(delivered), "--resend"])
    assert again.exit_code != 0 and f"outbox row {delivered} is sent, not in doubt" in again.output


async def test_demo_hands_a_kf_customer_to_a_rep_in_wecom_and_an_archived_stop_opts_out(tmp_path):
    async with demo_running(tmp_path) as demo:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wecom']}", timeout=10) as wecom:
            page = (await wecom.get("/")).text
            assert "微信客服" in page and "转人工" in page
            app, kf_app = (await wecom.get("/_sim/apps")).json()
            [open_kfid] = kf_app["kf"]
            customer = f"/_sim/apps/{kf_app['agent_id']}/kf/{open_kfid}/customers/wmKfDemoUser01"
            await wecom.post(f"{customer}/messages", json={"text": "你好，想咨询一下价格"})

            async def said(who):
                return [m["text"] for m in (await wecom.get(customer)).json()["messages"] if m["from"] == who]
            assert await eventually(lambda: said("hub"), timeout=20)  # the kf bot answers
            await wecom.post(f"{customer}/messages", json={"text": "转人工"})

            # To the rep the hub's routing chooses (the one with fewer open conversations in the seeded history).
            async def with_a_rep():
                return (await wecom.get(customer)).json()["servicer"]
            servicer = await eventually(with_a_rep, timeout=20)
            assert servicer in ("li", "wang")
            answer = await wecom.post(f"{customer}/writes", json={"servicer": servicer, "text": "您好，我来为您服务"})
            assert answer.is_success, answer.text
            assert await said("servicer") == [f"{servicer}: 您好，我来为您服务"]

            # A WeCom customer adds Li Lei and writes 退订 in their 1:1 chat: read from the archive.
            sales = f"/_sim/apps/{app['agent_id']}/customers/wmDemoStop001"
            await wecom.post(f"{sales}/add", json={"rep": "li", "name": "Stop Demo"})
            await wecom.post(f"{sales}/messages", json={"text": "退订"})
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scrm.db'}")
        try:
            async def opted_out():
                async with session_factory(engine)() as session:
                    who = await session.scalar(select(Identity).where(Identity.external_id == "wmDemoStop001"))
                    if who is None:
                        return None
                    events = await consent.events_of({who.contact_id}, {MessagePurpose.MARKETING}, db_session=session)
                found = events.get((who.contact_id, MessagePurpose.MARKETING), [])
                return found and not found[-1].granted
            await eventually(opted_out, timeout=30)
        finally:
            await engine.dispose()


async def test_demo_shows_wecom_and_dingtalk_reps_and_wechat_and_group_customers(tmp_path):
    async with demo_running(tmp_path) as demo:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wecom']}", timeout=10) as wecom, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wechat']}", timeout=10) as wechat:
            assert "企业微信" in (await wecom.get("/")).text
            assert "公众号" in (await wechat.get("/")).text
            app, kf_app = (await wecom.get("/_sim/apps")).json()  # the sales app; the app serving 微信客服
            assert set(app["members"]) == {"li", "wang", "boss"} and kf_app["kf"] and not app["kf"]
            [account] = (await wechat.get("/_sim/accounts")).json()
            followers = f"/_sim/accounts/{account['app_id']}/followers/oDemoZhang"
            await wechat.post(f"{followers}/follow", json={"scene": "demo-qr"})
            await wechat.post(f"{followers}/messages", json={"text": "你好，请问有折扣吗？"})

            async def chat(path):
                return (await (wecom if "apps" in path else wechat).get(path)).json()["messages"]

            async def li_card():  # hers among others (the seeded customers' waiting alerts may come first)
                cards = [m for m in await chat(f"/_sim/apps/{app['agent_id']}/chats/li")
                         if m["buttons"] and "你好，请问有折扣吗？" in m["text"]]
                return cards and cards[-1]
            card = await eventually(li_card, timeout=15)
            claim = next(b["key"] for b in card["buttons"] if b["key"].startswith("claim:"))
            await wecom.post(f"/_sim/apps/{app['agent_id']}/members/li/clicks", json={"key": claim})
            await wecom.post(f"/_sim/apps/{app['agent_id']}/members/li/messages",
                             json={"text": f"/r {claim.split(':')[1]} 您好，本月订购九折。"})

            async def answered():
                lines = [m["text"] for m in await chat(f"/_sim/accounts/{account['app_id']}/chats/oDemoZhang")
                         if m["from"] == "hub"]
                return "您好，本月订购九折。" in lines and lines
            lines = await eventually(answered, timeout=15)
            assert lines[0].startswith("您好")  # the bot's greeting came first

        # DingTalk: a customer @s the robot in a group; Li, also in DingTalk, gets the card there.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['dingtalk']}", timeout=10) as dingtalk:
            assert "钉钉" in (await dingtalk.get("/")).text
            [robot] = (await dingtalk.get("/_sim/robots")).json()
            assert set(robot["staff"]) == {"li", "wang", "boss"}
            await dingtalk.post(f"/_sim/robots/{robot['robot_code']}/groups/cidDemoGroup==/messages",
                                json={"sender": "$:LWCP_v1:$demo", "nick": "陈先生", "text": "有演示吗？"})

            async def dingtalk_card():
                chat = (await dingtalk.get(f"/_sim/robots/{robot['robot_code']}/chats/li")).json()["messages"]
                return [m for m in chat if m["buttons"] and "有演示吗？" in m["text"]]
            await eventually(dingtalk_card, timeout=15)
