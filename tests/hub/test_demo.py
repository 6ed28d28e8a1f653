"""The demo as a newcomer meets it: a knowledge base that answers in each language, seeded once;
a restart that keeps the simulators' chats, so a reply to an earlier customer still arrives."""

from __future__ import annotations

import json
from importlib.resources import files

import httpx
from sqlalchemy import func, select

from crm_core.db import create_engine, session_factory
from crm_core.leads.service import DEFAULT_STAGES
from crm_core.models import CampaignStatus, Conversation, EnrolmentStatus, FaqEntry, Identity, Role
from tests.fakes.demo import demo_running
from tests.fakes.stack import eventually

ENTRIES = json.loads((files("hub") / "demo_data" / "faq.json").read_text(encoding="utf-8"))["entries"]


def entry_asked(question: str) -> dict:
    return next(e for e in ENTRIES if question in e["questions"]["en"] + e["questions"]["zh"])


def chat_path(account: dict, openid: str) -> str:
    return f"/_sim/accounts/{account['app_id']}/chats/{openid}"


async def said_by_hub(client: httpx.AsyncClient, chat: str, count: int) -> list[str] | None:
    """The hub's lines in a WeChat follower's chat once there are `count`."""
    lines = [m["text"] for m in (await client.get(chat)).json()["messages"] if m["from"] == "hub"]
    return lines if len(lines) >= count else None


async def conversation_of(data_dir, external_id: str | None = None, *, thread: str | None = None) -> int:
    """The conversation of the customer with `external_id`, or of the chat `thread` (a group)."""
    engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'scrm.db'}")
    query = select(Conversation.id).join(Identity, Identity.id == Conversation.identity_id)
    async with session_factory(engine)() as session:
        found = await session.scalar(query.where(Identity.external_id == external_id) if thread is None
                                     else query.where(Conversation.external_thread_id == thread))
    await engine.dispose()
    return found


async def faq_entries(data_dir) -> int:
    engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'scrm.db'}")
    async with session_factory(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(FaqEntry))
    await engine.dispose()
    return count


async def test_the_demo_answers_faq_questions_in_their_language_and_seeds_them_once(tmp_path):
    async with demo_running(tmp_path) as demo:
        await demo.customer_writes(7001, "How long does shipping take?", first_name="Emma", language_code="en")
        await demo.customer_writes(7002, "请问退货流程是什么？", first_name="李娜", language_code="zh-hans")
        [english] = await demo.bot_says(7001, 1)
        [chinese] = await demo.bot_says(7002, 1)
    assert english == f"Hello, Emma! {entry_asked('How long does shipping take?')['answers']['en']}"
    assert chinese == f"您好，李娜！{entry_asked('请问退货流程是什么？')['answers']['zh']}"
    assert await faq_entries(tmp_path) == len(ENTRIES) >= 20

    async with demo_running(tmp_path) as demo:  # a restart does not seed again
        await demo.customer_writes(7003, "Who pays for return shipping?", first_name="Tom", language_code="en")
        [line] = await demo.bot_says(7003, 1)
    assert line == f"Hello, Tom! {entry_asked('Who pays for return shipping?')['answers']['en']}"
    assert await faq_entries(tmp_path) == len(ENTRIES)


async def test_after_a_restart_a_reply_to_an_earlier_customer_arrives_in_their_chat(tmp_path):
    async with demo_running(tmp_path) as demo:
        await demo.customer_writes(7101, "Do you ship internationally?", first_name="Ana", language_code="es")
        [answer] = await demo.bot_says(7101, 1)
        first_ids = [m["raw"]["message_id"] for m in await demo.chat(7101)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wechat']}") as wechat:
            [account] = (await wechat.get("/_sim/accounts")).json()
            follower = f"/_sim/accounts/{account['app_id']}/followers/oRestart01"
            await wechat.post(f"{follower}/follow", json={})
            await wechat.post(f"{follower}/messages", json={"text": "可以开发票吗？"})
            await eventually(lambda: said_by_hub(wechat, chat_path(account, "oRestart01"), 1))

    async with demo_running(tmp_path) as demo:
        assert [m["text"] for m in await demo.chat(7101) if m["from"] == "bot"] == [answer]  # the chat kept
        headers = await demo.api()
        [ana] = (await demo.hub.get("/api/v1/contacts", params={"q": "Ana"}, headers=headers)).json()
        [conversation] = [c for c in (await demo.hub.get("/api/v1/conversations", headers=headers)).json()
                          if c["contact_id"] == ana["id"]]
        sent = await demo.hub.post(f"/api/v1/conversations/{conversation['id']}/messages", headers=headers,
                                   json={"text": "Yes, to Spain too: about 7 days."})
        assert sent.status_code == 202, sent.text
        lines = await demo.bot_says(7101, 2)
        assert lines == [answer, "Yes, to Spain too: about 7 days."]
        await demo.customer_writes(7101, "great, thanks")
        chat = await demo.chat(7101)

        # The WeChat follower too: still following, inside WeChat's reply window, their chat kept.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wechat']}") as wechat:
            conversation_id = await conversation_of(tmp_path, "oRestart01")
            sent = await demo.hub.post(f"/api/v1/conversations/{conversation_id}/messages",
                                       headers=headers, json={"text": "发票已为您开好。"})
            assert sent.status_code == 202, sent.text
            lines = await eventually(lambda: said_by_hub(wechat, chat_path(account, "oRestart01"), 2))
            assert lines[-1] == "发票已为您开好。"
    ids = [m["raw"]["message_id"] for m in chat]
    assert ids[:len(first_ids)] == first_ids and len(set(ids)) == len(ids)  # no id used twice
    assert ids == sorted(ids)


async def test_after_a_restart_wecom_kf_and_dingtalk_chats_go_on(tmp_path):
    """The WeCom simulator keeps its 微信客服 log (the hub's pull cursor points into it) and chats;
    the DingTalk simulator its groups and chats: after a restart both carry on where they were."""
    async def kf_lines(wecom: httpx.AsyncClient, customer: str) -> list[str]:
        return [m["text"] for m in (await wecom.get(customer)).json()["messages"] if m["from"] == "hub"]

    async def group_lines(dingtalk: httpx.AsyncClient, robot: dict, group: str) -> list[str]:
        chat = (await dingtalk.get(f"/_sim/robots/{robot['robot_code']}/chats/{group}")).json()["messages"]
        return [m["text"] for m in chat if m["from"] != "me"]

    group = "cidRestartGroup=="
    async with demo_running(tmp_path) as demo:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wecom']}", timeout=10) as wecom:
            _, kf_app = (await wecom.get("/_sim/apps")).json()
            [open_kfid] = kf_app["kf"]
            customer = f"/_sim/apps/{kf_app['agent_id']}/kf/{open_kfid}/customers/wmKfRestart01"
            await wecom.post(f"{customer}/messages", json={"text": "你好，请问怎么开发票？"})
            before = await eventually(lambda: kf_lines(wecom, customer), timeout=20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['dingtalk']}", timeout=10) as dingtalk:
            [robot] = (await dingtalk.get("/_sim/robots")).json()
            await dingtalk.post(f"/_sim/robots/{robot['robot_code']}/groups/{group}/messages",
                                json={"sender": "$:LWCP_v1:$restart", "nick": "周女士", "text": "你们的产品多少钱？"})
            answered = await eventually(lambda: group_lines(dingtalk, robot, group), timeout=20)

    async with demo_running(tmp_path) as demo:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['wecom']}", timeout=10) as wecom:
            assert await kf_lines(wecom, customer) == before  # the chat kept
            await wecom.post(f"{customer}/messages", json={"text": "How long does shipping take?"})

            async def more():
                lines = await kf_lines(wecom, customer)
                return lines if len(lines) > len(before) else None
            # Pulled from the cursor the hub committed before the restart: the new message is found.
            assert (await eventually(more, timeout=20))[:len(before)] == before
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.ports['dingtalk']}", timeout=10) as dingtalk:
            assert await group_lines(dingtalk, robot, group) == answered
            headers = await demo.api()
            conversation_id = await conversation_of(tmp_path, thread=group)
            sent = await demo.hub.post(f"/api/v1/conversations/{conversation_id}/messages", headers=headers,
                                       json={"text": "专业版每月 99 元。"})
            assert sent.status_code == 202, sent.text

            async def replied():
                lines = await group_lines(dingtalk, robot, group)
                return lines if any("专业版每月 99 元" in line for line in lines) else None
            await eventually(replied, timeout=20)


async def test_the_demo_starts_with_four_weeks_of_history_and_a_campaign_going_out(tmp_path):
    async with demo_running(tmp_path) as demo:
        headers = await demo.api()
        board = (await demo.hub.get("/api/v1/dashboard", params={"days": 30}, headers=headers)).json()
        # Every chart has a shape: messages on every channel, every stage of the funnel, an opinion spike.
        assert {kind for kind, days in board["messages_by_channel"].items() if sum(days) > 0} >= {
            "telegram", "wechat", "wecom", "wecom_kf", "dingtalk"}
        assert sum(1 for days in board["messages_by_channel"].values() for n in days if n) >= 15  # spread out
        assert all(step["count"] > 0 for step in board["funnel"]), board["funnel"]
        assert any(day["negative_share"] for day in board["sentiment"])
        assert [a["dimension"] for a in board["alerts"]] == ["channel"]
        assert any(day["bot_median_s"] for day in board["response_times"])
        assert any(day["person_median_s"] for day in board["response_times"])
        [campaign] = board["campaigns"]
        assert campaign["status"] == "active" and campaign["enrolled"] >= 3

        # Its first step reaches the Telegram customers who agreed to marketing, in the simulator.
        async def delivered() -> list[str] | None:
            bot = demo.bot["id"]
            chats = (await demo.sim.get(f"/_sim/bots/{bot}/sent")).json()
            lines = [m.get("text", "") for m in chats]
            steps = [line for line in lines if "专业版上线了新功能" in line or "Pro has new features" in line]
            return steps if len(steps) >= campaign["enrolled"] else None
        await eventually(delivered, timeout=60)


async def test_a_newcomer_walks_the_demo_in_a_browser(tmp_path, browser):
    """As a new user would: the Telegram simulator's suggestions asked and answered in each
    language, the panel's dashboard drawn from the history, the API documentation offline."""
    async with demo_running(tmp_path) as demo:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 860})).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(demo.sim_base + "/")
        for user, question in (("10001", "How long does shipping take?"), ("10002", "请问退货流程是什么？")):
            await page.select_option("#user", user)
            await page.click(f"#try button[data-say='{question}']")  # a suggestion fills the box
            assert await page.input_value("#text") == question
            await page.click("#send button")
            answer = entry_asked(question)["answers"]["en" if user == "10001" else "zh"]
            await page.wait_for_selector(f"#log .bot:has-text('{answer[:20]}')", timeout=30_000)

        await page.goto(demo.base + "/admin")
        await page.fill("input[name=username]", "demo-admin")
        await page.fill("input[name=password]", (tmp_path / "admin_password").read_text().strip())
        await page.click("button[type=submit]")
        for chart, mark in (("#chart-messages", "rect"), ("#chart-funnel", "rect"), ("#chart-response", "path"),
                            ("#chart-sentiment", "path")):
            await page.wait_for_selector(f"{chart} svg {mark}", timeout=15_000)
        assert await page.locator("#chart-messages svg rect").count() >= 15  # days and channels

        outside: list[str] = []
        page.on("request", lambda request: None if request.url.startswith(demo.base) else outside.append(request.url))
        await page.goto(demo.base + "/docs")
        await page.wait_for_selector(".swagger-ui .opblock-tag")
        assert outside == [] and errors == []
        await page.context.close()


STORED_VALUES = sorted({*DEFAULT_STAGES, *(s.value for s in CampaignStatus), *(s.value for s in EnrolmentStatus),
                        *(r.value for r in Role), "open", "closed", "telegram", "wechat", "wecom", "wecom_kf",
                        "dingtalk", "email", "channel", "campaign", "team", "keyword", "keyword_rule", "form",
                        "message", "double_opt_in", "customer_bot", "replied", "converted", "opted_out", "merged",
                        "campaign_ended", "claim", "round_robin", "load", "off", "signal", "qr"})


async def test_the_chinese_panel_shows_no_stored_value_in_english(tmp_path, browser):
    """Every page of the panel in Chinese, on the demo's four weeks of data: no cell, badge, option
    or heading shows a stage, status, role, channel kind, slice, consent source or audit action as
    the database stores it."""
    async with demo_running(tmp_path) as demo:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")).new_page()
        await page.goto(demo.base + "/admin")
        await page.fill("input[name=username]", "demo-admin")
        await page.fill("input[name=password]", (tmp_path / "admin_password").read_text().strip())
        await page.click("button[type=submit]")
        await page.wait_for_selector("#nav a")
        if await page.inner_text("#language-switch") == "中文":
            await page.click("#language-switch")
            await page.wait_for_selector("#nav a")
        pages = await page.eval_on_selector_all("#nav a[data-page]", "links => links.map(a => a.dataset.page)")
        [lead_contact] = (await demo.hub.get("/api/v1/leads", params={"limit": 1}, headers=await demo.api())).json()
        [campaign] = (await demo.hub.get("/api/v1/campaigns", headers=await demo.api())).json()
        kinds = (await demo.hub.get("/api/v1/channel-kinds", headers=await demo.api())).json()
        stored = set(STORED_VALUES) | {name for kind in kinds.values() for name in kind["credentials"]["properties"]}
        shown: dict[str, list[str]] = {}
        for route in [*pages, f"contacts/{lead_contact['contact_id']}", f"campaigns/{campaign['id']}"]:
            await page.goto(f"{demo.base}/admin#/{route}")
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(300)
            texts = await page.eval_on_selector_all(
                "main td, main th, main option, main .badge, main h1, main h2, main h3, main label, main .meta",
                "els => els.map(e => (e.childElementCount ? [...e.childNodes].filter(n => n.nodeType === 3)"
                ".map(n => n.textContent).join(' ') : e.textContent).trim())")
            english = sorted({text for text in texts for part in text.split(" · ")
                              if part.strip().removesuffix(" *") in stored})
            if english:
                shown[route] = english
        assert len(pages) >= 10
        assert shown == {}
        # A channel's credential fields are named in Chinese too, for every kind.
        zh = json.loads((files("admin") / "panel" / "static" / "i18n" / "zh.json").read_text(encoding="utf-8"))
        await page.goto(f"{demo.base}/admin#/channels")
        for kind in kinds:
            await page.select_option("#channel-kind", kind)
            fields = await page.eval_on_selector_all(
                "#channel-fields label", "els => els.map(e => e.childNodes[0].textContent.replace(' *', '').trim())")
            assert fields and set(fields) <= set(zh["values"]["credential"].values()), (kind, fields)

        # Free text the API computes is said in Chinese too: why imported rows were rejected.
        sheet = tmp_path / "展会线索.csv"
        sheet.write_text("姓名,公司,手机,邮箱\n,,13800138000,\n王芳,海风物流,12345,\n张伟,星辰科技,13900139000,\n"
                         "张伟,星辰科技,13900139000,\n李娜,云帆贸易,,\n", encoding="utf-8")
        await page.goto(f"{demo.base}/admin#/leads")
        await page.set_input_files("#import-form input[type=file]", str(sheet))
        await page.click("#start-import")
        await page.wait_for_selector("#rejected-rows")
        reasons = await page.eval_on_selector_all("#rejected-rows tr td:nth-child(2)",
                                                  "tds => tds.map(td => td.textContent)")
        assert reasons == ["缺少姓名和公司", "12345 不是有效的电话号码", "与第 4 行是同一人（电话或邮箱相同）",
                           "缺少电话和邮箱"]
        await page.context.close()
