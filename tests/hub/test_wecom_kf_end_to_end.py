"""微信客服 through the simulator as WeCom runs it: the callback brings only a pull token, the hub
pulls with its cursor (committed with the messages), answers with kf/send_msg within WeCom's
48 hours / 5 answers, and welcomes a customer who enters from a campaign link."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from channels.simulators.wecom import SimApp, WeComSimulator
from channels.wecom_kf.adapter import KfPoller, WeComKfAdapter
from crm_core import accounts
from crm_core.models import AuditLog, ChannelAccount, Contact, Conversation, CsatSurvey, Identity, Message
from crm_core.ports import OutboundMessage, PermanentFailure
from hub.serving import running
from tests.fakes.stack import SECRET, Stack, WorkspaceStack, eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CUSTOMER = "wmKfCustomer0001"
ROOT = Path(__file__).resolve().parents[2]


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
async def kf_stack(database_url, tmp_path, servicers: dict[str, bool] | None = None,
                   active: bool = True) -> AsyncIterator[KfStack]:
    """`servicers`: the reps (WeCom userids) who serve the kf account, and whether they are receiving;
    `active` False: the hub neither polls nor takes callbacks for it."""
    async with workspace_stack(database_url, tmp_path) as ws:
        app = ws.wecom.create_app()  # the self-built app set in 微信客服 → 可调用接口的应用
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"{ws.wecom_base}/_sim/apps/{app.agent_id}/kf",
                                     json={"name": "售前咨询", "servicers": servicers or {}})
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
            account.is_active = active
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
            # The join is audited, as every link between identities is (and can be undone).
            linked = await session.scalar(select(AuditLog).where(AuditLog.action == "contact.linked"))
            assert linked is not None and linked.entity_id == str(contact_id)


async def test_a_handoff_moves_the_session_to_the_routed_rep_who_chats_in_wecom_and_ends_it(database_url,
                                                                                          tmp_path):
    async with kf_stack(database_url, tmp_path, servicers={"li": True, "wang": True}) as kf:
        hub, li = kf.tg.hub, kf.ws.reps["li"]
        await kf.writes("你好")
        await eventually(lambda: _async(kf.received()), timeout=15)
        await kf.writes("转人工")

        async def handed():
            session = kf.app.kf.sessions[(kf.open_kfid, CUSTOMER)]
            return session if session.state == 3 else None
        session = await eventually(handed, timeout=15)
        assert session.servicer == "li"  # the hub's routing: the least busy rep who serves the account

        async def told():
            return [t for t in kf.received() if "人工" in t or "同事" in t or "person" in t]
        assert await eventually(told, timeout=15)  # said with the msg_code of the change, as WeCom requires
        async with hub.sessions() as db:
            conversation = await db.scalar(select(Conversation).where(Conversation.channel_account_id == kf.account_id))
            assert conversation.assignee_user_id == li and conversation.handoff_at is not None

        # Li Lei answers in his WeCom client: the words land in the conversation as his.
        kf.sim.kf_servicer_acts(kf.app, kf.open_kfid, CUSTOMER, "li", "writes", "您好，我是李雷，保证给您全额退款")

        async def his():
            return [m for m in await kf.thread() if m["direction"] == "out" and m["author"] == "Li Lei"]
        [said] = await eventually(his, timeout=15)
        assert said["text"] == "您好，我是李雷，保证给您全额退款"
        received, stored = len(kf.received()), await kf.messages()
        await kf.writes("好的，谢谢")

        async def pulled():
            return await kf.messages() > stored
        await eventually(pulled, timeout=15)

        async def processed():
            async with hub.sessions() as db:
                return await db.scalar(select(func.count()).select_from(Message).where(
                    Message.channel_account_id == kf.account_id, Message.processed_at.is_(None))) == 0
        await eventually(processed, timeout=15)
        assert len(kf.received()) == received  # the bot stays out of Li Lei's chat
        async with hub.sessions() as db:
            # His words went through the rep review: a guarantee is flagged to his manager.
            assert await db.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.action == "compliance.flagged")) == 1

        # He ends the session in WeCom: the conversation is resolved and the customer asked for a score,
        # with the closing code (WeCom's API may not write to an ended session otherwise).
        kf.sim.kf_servicer_acts(kf.app, kf.open_kfid, CUSTOMER, "li", "ends")

        async def asked():
            return [t for t in kf.received() if "打分" in t]
        await eventually(asked, timeout=15)
        async with hub.sessions() as db:
            conversation = await db.get(Conversation, conversation.id)
            assert conversation.resolved_at is not None and conversation.handoff_at is None
        # Writing again opens a new session in WeCom, which the API serves: the score is taken.
        await kf.writes("5")

        async def scored():
            async with hub.sessions() as db:
                return await db.scalar(select(CsatSurvey.score).where(CsatSurvey.conversation_id == conversation.id))
        assert await eventually(scored, timeout=15) == 5


async def test_a_servicer_who_is_not_receiving_leaves_the_customer_in_the_queue_until_someone_picks_them(
        database_url, tmp_path):
    async with kf_stack(database_url, tmp_path, servicers={"li": False, "wang": False}) as kf:
        hub = kf.tg.hub
        await kf.writes("人工客服")

        async def queued():
            session = kf.app.kf.sessions[(kf.open_kfid, CUSTOMER)]
            return session if session.state == 2 else None
        await eventually(queued, timeout=15)
        # Wang Fang takes the customer from the queue in WeCom: the conversation becomes hers.
        kf.sim.kf_servicer_acts(kf.app, kf.open_kfid, CUSTOMER, "wang", "picks")

        async def hers():
            async with hub.sessions() as db:
                return await db.scalar(select(Conversation.assignee_user_id).where(
                    Conversation.channel_account_id == kf.account_id)) == kf.ws.reps["wang"]
        await eventually(hers, timeout=15)


async def test_a_servicer_who_stops_receiving_in_wecom_is_passed_over_by_the_handoff(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path, servicers={"li": True, "wang": True}) as kf:
        hub = kf.tg.hub

        async def status(userid: str) -> str | None:
            async with hub.sessions() as db:
                return await accounts.get_cursor(kf.account_id, f"servicer_status:{userid}", db_session=db)
        # Li Lei, whom routing would pick (both are free; he comes first), switches to 停止接待 in WeCom.
        [callback] = kf.sim.kf_servicer_status(kf.app, "li", False)
        assert set(callback) == {"ToUserName", "CreateTime", "MsgType", "Event", "Token", "OpenKfId"}
        assert await eventually(lambda: status("li"), timeout=15) == "stopped"
        await kf.writes("转人工")

        async def handed():
            session = kf.app.kf.sessions[(kf.open_kfid, CUSTOMER)]
            return session if session.state == 3 else None
        assert (await eventually(handed, timeout=15)).servicer == "wang"
        async with hub.sessions() as db:
            assert await db.scalar(select(Conversation.assignee_user_id).where(
                Conversation.channel_account_id == kf.account_id)) == kf.ws.reps["wang"]
        # Back to 接待中: routing counts him again.
        kf.sim.kf_servicer_status(kf.app, "li", True)

        async def back():
            return await status("li") == "receiving"
        await eventually(back, timeout=15)


async def test_a_rep_claiming_a_kf_customer_in_the_hub_takes_the_wecom_session(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path, servicers={"li": True, "wang": True}) as kf:
        await kf.writes("我想买50套，请问价格？")
        await eventually(lambda: _async(kf.received()), timeout=15)
        async with kf.tg.hub.sessions() as db:
            conversation = await db.scalar(select(Conversation.id).where(
                Conversation.channel_account_id == kf.account_id))
        resp = await kf.tg.client.post(f"{kf.tg.hub_base}/api/v1/conversations/{conversation}/assign",
                                       json={"user_id": kf.ws.reps["wang"]}, headers=kf.tg.api())
        assert resp.status_code == 204, resp.text

        async def taken():
            session = kf.app.kf.sessions[(kf.open_kfid, CUSTOMER)]
            return session.servicer if session.state == 3 else None
        assert await eventually(taken, timeout=15) == "wang"
        assert await eventually(lambda: _async([t for t in kf.received() if "Wang Fang" in t]), timeout=15)


async def test_a_message_wecom_accepted_but_could_not_deliver_shows_as_failed_with_the_reason(
        database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        await kf.writes("你好")
        await eventually(lambda: _async(kf.received()), timeout=15)
        async with httpx.AsyncClient() as client:
            await client.post(f"{kf.base}/_sim/apps/{kf.app.agent_id}/kf/{kf.open_kfid}/customers/{CUSTOMER}/refuse")
        async with kf.tg.hub.sessions() as db:
            conversation = await db.scalar(select(Conversation.id).where(
                Conversation.channel_account_id == kf.account_id))
        resp = await kf.tg.client.post(f"{kf.tg.hub_base}/api/v1/conversations/{conversation}/messages",
                                       json={"text": "报价单已发您"},
                                       headers={**kf.tg.api(), "Idempotency-Key": "refused-1"})
        assert resp.status_code == 202, resp.text

        async def failed():
            return [m["delivery"] for m in await kf.thread() if m["text"] == "报价单已发您"
                    and m["delivery"]["state"] == "failed"]
        [delivery] = await eventually(failed, timeout=20)
        assert "refuses" in delivery["detail"]


async def test_a_pull_killed_between_pulling_and_committing_loses_nothing_and_stores_nothing_twice(
        database_url, tmp_path):
    async with kf_stack(database_url, tmp_path, active=False) as kf:  # the hub's poller stays out
        hub = kf.tg.hub
        customers = [f"wmKfKill{n:08d}" for n in range(10)]
        for n, customer in enumerate(customers):
            kf.sim.kf_customer_writes(kf.app, kf.open_kfid, customer, f"第{n}条")

        def pull(*kill_on: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "tests.fakes.kf_pull", hub.settings.resolved_database_url,
                                   SECRET, str(kf.account_id), kf.open_kfid, "3", *kill_on],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)
        killed = await asyncio.to_thread(pull, "2")  # killed -9 once page 2 is written, before its commit
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert await kf.messages() == 3  # page 1 only: committed with its cursor
        done = await asyncio.to_thread(pull)
        assert done.returncode == 0 and done.stdout.strip() == "pulled 7", done.stderr
        async with hub.sessions() as db:
            texts = (await db.scalars(select(Message.text).where(Message.channel_account_id == kf.account_id,
                                                                 Message.direction == "in"))).all()
        assert sorted(texts) == sorted(f"第{n}条" for n in range(10))  # each once
        # The second process started from the cursor committed with page 1, not from the start.
        assert [p["returned"] for p in kf.app.kf.pulls] == [3, 3, 3, 3, 1]


async def _async(value):
    return value


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a1e2a4e40000000049454e44ae426082")


async def _sending_to_the_customer(kf):
    """The hub's 微信客服 adapter, its account and the customer's recipient address."""
    hub = kf.tg.hub
    async with hub.sessions() as db:
        ref = accounts.to_ref(await db.get(ChannelAccount, kf.account_id), hub.cipher)
    return hub.channels.get("wecom_kf"), ref, f"{kf.open_kfid}|{CUSTOMER}"


async def test_a_picture_answer_is_a_link_card_or_a_picture_uploaded_once_and_unsafe_addresses_are_refused(
        database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        await kf.writes("有产品图片吗")
        await eventually(lambda: _async(kf.received()), timeout=15)
        pictures = Starlette(routes=[Route("/x200.png", lambda _: Response(PNG, media_type="image/png")),
                                     Route("/page.html", lambda _: Response("<p>hi</p>", media_type="text/html"))])
        async with running(pictures) as server:
            base = f"http://127.0.0.1:{server.port}"
            adapter, ref, recipient = await _sending_to_the_customer(kf)
            await adapter.send(ref, OutboundMessage(recipient, "X200 新品\n轻薄长续航", image_url=f"{base}/x200.png",
                                                    link_url="https://shop.example.cn/x200"))
            card = kf.app.kf.sent[-1]["body"]
            assert card["msgtype"] == "link" and card["link"]["title"] == "X200 新品"
            assert card["link"]["url"] == "https://shop.example.cn/x200"
            assert kf.app.kf.media[card["link"]["thumb_media_id"]]["type"] == "image"
            # A picture alone (a rep sending a photo) arrives as a picture, uploaded once for both.
            await adapter.send(ref, OutboundMessage(recipient, "", image_url=f"{base}/x200.png"))
            picture = kf.app.kf.sent[-1]["body"]
            assert picture == {"touser": CUSTOMER, "open_kfid": kf.open_kfid, "msgtype": "image",
                               "image": {"media_id": card["link"]["thumb_media_id"]}}
            with pytest.raises(PermanentFailure, match="not a JPEG or PNG"):
                await adapter.send(ref, OutboundMessage(recipient, "看这里", image_url=f"{base}/page.html"))
            # Where the hub may not reach private networks, such an address is never fetched.
            strict = WeComKfAdapter()
            try:
                with pytest.raises(PermanentFailure, match="picture was not fetched"):
                    await strict.send(ref, OutboundMessage(recipient, "看这里", image_url=f"{base}/x200.png"))
            finally:
                await strict.close()


async def test_a_document_is_a_file_message_after_its_words_and_an_empty_file_sends_nothing(database_url, tmp_path):
    pdf = b"%PDF-1.4\n%%EOF\n"
    async with kf_stack(database_url, tmp_path) as kf:
        await kf.writes("报价单发我一下")
        await eventually(lambda: _async(kf.received()), timeout=15)
        files = Starlette(routes=[Route("/q.pdf", lambda _: Response(pdf, media_type="application/pdf")),
                                  Route("/empty.pdf", lambda _: Response(b"", media_type="application/pdf")),
                                  Route("/gone.pdf", lambda _: Response("gone", status_code=404))])
        async with running(files) as server:
            base = f"http://127.0.0.1:{server.port}"
            adapter, ref, recipient = await _sending_to_the_customer(kf)
            before = len(kf.app.kf.sent)
            result = await adapter.send(ref, OutboundMessage(recipient, "这是报价单", file_url=f"{base}/q.pdf",
                                                             file_name="报价单"))
            words, file = kf.app.kf.sent[before:]
            assert words["body"]["text"] == {"content": "这是报价单"}  # no address of the file in the words
            assert file["body"]["msgtype"] == "file" and file["text"] == "[file] 报价单.pdf"
            assert kf.app.kf.media[file["body"]["file"]["media_id"]] == {"type": "file", "size": len(pdf),
                                                                          "name": "报价单.pdf"}
            assert result.platform_message_id == f"kf:{file['msgid']}"
            for path, words in (("empty.pdf", "is empty"), ("gone.pdf", "HTTP 404")):
                with pytest.raises(PermanentFailure, match=words):
                    await adapter.send(ref, OutboundMessage(recipient, "再发一次", file_url=f"{base}/{path}"))
            assert len(kf.app.kf.sent) == before + 2  # the words of a file that could not go were not sent


async def test_contact_links_bring_their_source_and_their_qr_code_is_an_svg(database_url, tmp_path):
    async with kf_stack(database_url, tmp_path) as kf:
        base = f"{kf.tg.hub_base}/api/v1/channel-accounts/{kf.account_id}/contact-links"
        api = kf.tg.api()
        made = await kf.tg.client.post(base, json={"label": "展会2026 海报", "source": "expo2026-poster"}, headers=api)
        assert made.status_code == 201, made.text
        link = made.json()
        assert link["url"].startswith("https://work.weixin.qq.com/kfid/")
        assert link["url"].endswith("&scene_param=expo2026-poster")
        again = await kf.tg.client.post(base, json={"label": "again", "source": "expo2026-poster"}, headers=api)
        assert again.status_code == 409 and "expo2026-poster" in again.json()["detail"]
        for bad in ({"label": "x", "source": "has space"}, {"label": "", "source": "a"},
                    {"label": "x", "source": "a&b=c"}, {"label": "x", "source": "ok", "open_kfid": "nope"}):
            assert (await kf.tg.client.post(base, json=bad, headers=api)).status_code == 422, bad
        wrong_kf = await kf.tg.client.post(base, json={"label": "x", "source": "other", "open_kfid": "wkNOSUCHKF00"},
                                           headers=api)
        assert wrong_kf.status_code == 400 and "95000" in wrong_kf.json()["detail"]
        qr = await kf.tg.client.get(f"{base}/{link['id']}/qr.svg", headers=api)
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
        assert qr.text.lstrip().startswith("<?xml") and "<svg" in qr.text and "展会2026 海报" in qr.text
        assert [k["source"] for k in (await kf.tg.client.get(base, headers=api)).json()] == ["expo2026-poster"]
        # A Telegram account has no contact links.
        telegram = f"{kf.tg.hub_base}/api/v1/channel-accounts/{kf.tg.account_id}/contact-links"
        refused = await kf.tg.client.post(telegram, json={"label": "x", "source": "y"}, headers=api)
        assert refused.status_code == 400 and "no contact links" in refused.json()["detail"]
        # A WeChat user who opens it arrives with its source.
        kf.sim.kf_customer_enters(kf.app, kf.open_kfid, CUSTOMER, scene_param="expo2026-poster")

        async def sourced():
            async with kf.tg.hub.sessions() as session:
                return await session.scalar(select(Contact.source).where(Contact.source == "expo2026-poster"))
        await eventually(sourced, timeout=15)
        assert (await kf.tg.client.delete(f"{base}/{link['id']}", headers=api)).status_code == 204
        assert (await kf.tg.client.get(f"{base}/{link['id']}/qr.svg", headers=api)).status_code == 404
