"""微信客服 through the simulator as WeCom runs it: the callback brings only a pull token, the hub
pulls with its cursor (committed with the messages), answers with kf/send_msg within WeCom's
48 hours / 5 answers, and welcomes a customer who enters from a campaign link."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from channels.simulators.wecom import SimApp, WeComSimulator
from channels.wecom_kf.adapter import KfPoller
from crm_core import accounts
from crm_core.models import ChannelAccount, Contact, Conversation, Identity, Message
from tests.fakes.stack import Stack, WorkspaceStack, eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CUSTOMER = "wmKfCustomer0001"


@dataclass
class KfStack:
    ws: WorkspaceStack
    tg: Stack
    sim: WeComSimulator
    app: SimApp
    base: str
    open_kfid: str
    account_id: int

    async def writes(self, text: str, menu_id: str | None = None) -> dict[str, Any]:
        return self.sim.kf_customer_writes(self.app, self.open_kfid, CUSTOMER, text, menu_id)

    def received(self) -> list[str]:
        return [m["text"] for m in self.app.kf.sent if m["to"] == CUSTOMER]

    async def messages(self) -> int:
        async with self.tg.hub.sessions() as session:
            return await session.scalar(select(func.count()).select_from(Message).where(
                Message.channel_account_id == self.account_id, Message.direction == "in"))

    async def thread(self) -> list[dict[str, Any]]:
        async with self.tg.hub.sessions() as session:
            conversation = await session.scalar(select(Conversation.id).where(
                Conversation.channel_account_id == self.account_id))
        resp = await self.tg.client.get(f"{self.tg.hub_base}/api/v1/inbox/{conversation}", headers=self.tg.api())
        return resp.json()["messages"]


@contextlib.asynccontextmanager
async def kf_stack(database_url, tmp_path) -> AsyncIterator[KfStack]:
    async with workspace_stack(database_url, tmp_path) as ws:
        app = ws.wecom.create_app()  # the self-built app set in 微信客服 → 可调用接口的应用
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"{ws.wecom_base}/_sim/apps/{app.agent_id}/kf", json={"name": "售前咨询"})
        open_kfid = resp.json()["open_kfid"]
        hub = ws.tg.hub
        async with hub.sessions() as session, session.begin():
            account = await accounts.create(
                kind="wecom_kf", name="WeChat customer service", platform_account_id=f"{app.corp_id}:kf",
                credentials={"corp_id": app.corp_id, "secret": app.secret, "token": app.token,
                             "encoding_aes_key": app.encoding_aes_key},
                api_base=ws.wecom_base,
                settings=hub.channels.get("wecom_kf").settings_model.model_validate({"poll_seconds": 5}).model_dump(),
                cipher=hub.cipher, actor=None, db_session=session)
        app.callback_url = f"{ws.tg.hub_base}/hooks/wecom_kf/{account.id}"
        hub.accounts_changed.set()  # the poller starts
        yield KfStack(ws, ws.tg, ws.wecom, app, ws.wecom_base, open_kfid, account.id)


async def test_a_wechat_user_writes_the_hub_pulls_once_and_answers_through_kf(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        callback = await kf.writes("你好，请问你们的营业时间是？")
        assert set(callback) == {"ToUserName", "CreateTime", "MsgType", "Event", "Token", "OpenKfId"}  # no text

        async def answered():
            return kf.received()
        [answer, *_] = await eventually(answered, timeout=15)
        assert answer
        assert await kf.messages() == 1
        # A pull names the token of the callback it follows (WeCom rate-limits pulls without one).
        await eventually(lambda: _async(any(p["token"] == callback["Token"] for p in kf.app.kf.pulls)))

        # The same callback three times (WeCom retries), and a second poller taking over: stored once.
        for _ in range(3):
            query, body = kf.sim.signed_request(kf.app, callback)
            resp = await kf.tg.client.post(kf.app.callback_url, params=query, content=body)
            assert resp.status_code == 200
        hub = kf.tg.hub
        async with hub.sessions() as session, session.begin():
            ref = accounts.to_ref(await session.get(ChannelAccount, kf.account_id), hub.cipher)

        async def load_cursor(name: str) -> str | None:
            async with hub.sessions() as session:
                return await accounts.get_cursor(kf.account_id, name, db_session=session)
        other = KfPoller(hub.channels.get("wecom_kf"), ref, hub.ingest, load_cursor)
        assert await other.pull(kf.open_kfid, None) == 0  # the cursor was committed with the message
        assert await kf.messages() == 1


async def test_answers_beyond_wecoms_five_are_held_with_the_reason_and_go_when_the_customer_writes(
        database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        await kf.writes("我想了解一下价格")
        await eventually(lambda: _async(kf.received()), timeout=15)
        async with kf.tg.hub.sessions() as session:
            conversation = await session.scalar(select(Conversation.id).where(
                Conversation.channel_account_id == kf.account_id))
        already = len(kf.received())
        for n in range(6 - already):
            resp = await kf.tg.client.post(f"{kf.tg.hub_base}/api/v1/conversations/{conversation}/messages",
                                           json={"text": f"报价第{n + 1}部分"},
                                           headers={**kf.tg.api(), "Idempotency-Key": f"part-{n}"})
            assert resp.status_code == 202, resp.text

        async def held():
            states = [(m["text"], m["delivery"]["state"], m["delivery"]["detail"]) for m in await kf.thread()
                      if m["direction"] == "out"]
            return [s for s in states if s[1] == "held"] if not any(s[1] in ("queued", "sending") for s in states) \
                else None
        [(text, _, reason)] = await eventually(held, timeout=15)
        assert "95001" in reason and "5 answers" in reason
        assert len(kf.received()) == 5 and text not in kf.received()
        # The customer writes again: the held answer goes.
        await kf.writes("好的，请继续")

        async def released():
            return text in kf.received()
        await eventually(released, timeout=15)


async def test_a_customer_entering_from_a_campaign_link_is_welcomed_and_sourced(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        kf.sim.kf_customer_enters(kf.app, kf.open_kfid, CUSTOMER, scene_param="expo2026")

        async def welcomed():
            return kf.received()
        assert await eventually(welcomed, timeout=15) == ["您好，我是智能客服，请问有什么可以帮您？"]
        async with kf.tg.hub.sessions() as session:
            assert await session.scalar(select(Contact.source).where(Contact.is_staff.is_(False),
                                                                     Contact.source == "expo2026")) == "expo2026"
        # The welcome code is good once: the hub never sent it twice.
        assert [m["msgtype"] for m in kf.app.kf.sent] == ["text"]


async def test_a_follower_writing_to_kf_joins_their_contact_by_unionid(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        hub = kf.tg.hub
        await kf.ws.follower("oKfAlice", "follow", unionid="uKfAlice")
        await kf.ws.follower("oKfAlice", "messages", text="你好")
        kf.app.kf.customers[CUSTOMER] = {"nickname": "Alice 王", "unionid": "uKfAlice"}
        await kf.writes("我在公众号问过，想继续咨询")

        async def identities():
            async with hub.sessions() as session:
                rows = (await session.execute(select(Identity.external_id, Identity.contact_id).where(
                    Identity.external_id.in_(["oKfAlice", CUSTOMER])))).all()
            return rows if len(rows) == 2 and len({contact for _, contact in rows}) == 1 else None
        [(_, contact_id), _] = await eventually(identities, timeout=15)
        async with hub.sessions() as session:
            assert (await session.get(Contact, contact_id)).display_name == "Alice 王"  # the kf nickname


async def _async(value):
    return value
