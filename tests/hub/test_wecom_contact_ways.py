"""WeCom contact ways (渠道活码) through the API and the simulator: the code is made in WeCom with the
rota's reps; a customer who adds through it is counted for it, tagged (audited with the code as
the rule), owned by the rep they added, enrolled in its campaign and greeted with its welcome;
the rota drops a rep at the daily cap; a customer who deletes the rep is a loss for the code."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from crm_core.campaigns.contact_ways import rota_users
from crm_core.contacts.tags import tags_of
from crm_core.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    CampaignStep,
    Contact,
    ContactWay,
    Conversation,
    Enrolment,
    Identity,
    Role,
    Team,
    User,
)
from hub.serving import running
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _campaign(hub) -> int:
    async with hub.sessions() as session, session.begin():
        campaign = Campaign(name="展会跟进", status=CampaignStatus.ACTIVE, audience={}, exits={})
        session.add(campaign)
        await session.flush()
        session.add(CampaignStep(campaign_id=campaign.id, position=1, name="资料", delay_minutes=60 * 24,
                                 template={"zh": "{name}您好，展会资料已整理好。", "en": "Hi {name}, the expo notes."}))
        return campaign.id


async def test_a_contact_way_brings_its_customers_in_tagged_owned_enrolled_and_counted(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        campaign_id = await _campaign(tg.hub)
        body = {"channel_account_id": ws.wecom_account_id, "name": "展会2026 海报", "state": "expo2026",
                "rota": {"users": [ws.reps["li"], ws.reps["wang"]], "daily_cap": 1,
                         "fallback_user_id": ws.reps["wang"]},
                "tags": ["展会2026", "vip"], "campaign_id": campaign_id,
                "welcome": {"zh": "感谢您在展会添加我们！", "en": "Thanks for adding us at the expo!",
                            "link_url": "https://shop.example.cn/expo"}}
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json=body, headers=tg.api())
        assert resp.status_code == 201, resp.text
        way = resp.json()
        # Made in WeCom as a multi-person QR code with the rota's reps and the state.
        [made] = app.contact_ways.values()
        assert (made["type"], made["scene"], made["state"], made["user"]) == (2, 2, "expo2026", ["li", "wang"])
        assert way["config_id"] == made["config_id"] and way["qr_code"].endswith("/qr.svg")
        qr = await tg.client.get(way["qr_code"])
        assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg")

        # A customer scans it: WeCom hands them to Li Lei, with the code's state on the add event.
        ws.wecom.customer_scans(app, made["config_id"], "wmExpoGuest001", name="陈女士")

        async def arrived():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Contact).join(Identity, Identity.contact_id == Contact.id)
                                            .where(Identity.external_id == "wmExpoGuest001"))
        contact = await eventually(arrived, timeout=15)

        async def enrolled():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Enrolment).where(Enrolment.contact_id == contact.id,
                                                                    Enrolment.campaign_id == campaign_id))
        await eventually(enrolled, timeout=15)
        async with tg.hub.sessions() as session:
            contact = await session.get(Contact, contact.id)
            assert contact.source == "展会2026 海报"
            owner = await session.scalar(select(Conversation.assignee_user_id).where(
                Conversation.contact_id == contact.id))
            assert owner == ws.reps["li"]
            tagged = await session.scalar(select(AuditLog).where(AuditLog.action == "contact.tags",
                                                                 AuditLog.entity_id == str(contact.id)))
            assert tagged.details["added"] == ["展会2026", "vip"]
            assert tagged.details["rule"] == f"contact way {way['id']} (展会2026 海报)"
        resp = await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact.id}", headers=tg.api())
        assert set(resp.json()["tags"]) == {"展会2026", "vip"}

        async def welcomed():
            return [m for m in app.sent if m["to"] == "wmExpoGuest001" and m["msgtype"] == "welcome"]
        [welcome] = await eventually(welcomed, timeout=15)
        assert welcome["text"] == "感谢您在展会添加我们！"
        assert welcome["attachments"][0]["link"]["url"] == "https://shop.example.cn/expo"

        # Li Lei has had his one add today: the rota takes him off the code.
        assert await tg.hub.contact_ways.refresh() == 1
        assert made["user"] == ["wang"]
        assert await tg.hub.contact_ways.refresh() == 0  # nothing changed since
        # Wang Fang takes the next; at her cap too, the fallback (Wang Fang) stays on the code.
        ws.wecom.customer_scans(app, made["config_id"], "wmExpoGuest002", name="刘先生")

        async def counted():
            detail = (await tg.client.get(f"{tg.hub_base}/api/v1/contact-ways/{way['id']}",
                                          headers=tg.api())).json()
            return detail if detail["added"] == 2 else None
        await eventually(counted, timeout=15)
        assert await tg.hub.contact_ways.refresh() == 0 and made["user"] == ["wang"]

        # The first customer deletes Li Lei: a loss for the code; the day's net is 1.
        await ws.wecom_post("customers/wmExpoGuest001/delete_rep", {"rep": "li"})

        async def lost():
            detail = (await tg.client.get(f"{tg.hub_base}/api/v1/contact-ways/{way['id']}",
                                          headers=tg.api())).json()
            return detail if detail["lost"] == 1 else None
        detail = await eventually(lost, timeout=15)
        today = detail["days"][-1]
        assert (today["added"], today["lost"], today["net"]) == (2, 1, 1) and len(detail["days"]) == 30

        # Deleted: gone from WeCom, out of the list.
        resp = await tg.client.delete(f"{tg.hub_base}/api/v1/contact-ways/{way['id']}", headers=tg.api())
        assert resp.status_code == 204
        assert app.contact_ways == {}
        assert (await tg.client.get(f"{tg.hub_base}/api/v1/contact-ways", headers=tg.api())).json() == []


async def test_a_round_robin_code_gives_each_customer_the_next_rep(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "前台轮流", "state": "front-desk",
            "rota": {"users": [ws.reps["li"], ws.reps["wang"]], "round_robin": True}})
        assert resp.status_code == 201, resp.text
        [made] = app.contact_ways.values()
        assert made["user"] == ["li"]  # one rep at a time, the first first

        async def owner_of(external: str):
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Conversation.assignee_user_id).join(
                    Identity, Identity.id == Conversation.identity_id).where(Identity.external_id == external))
        # Each add moves the code on at once (not at the minute's refresh): li, wang, li.
        for n, rep in enumerate(("li", "wang", "li")):
            assert made["user"] == [rep]
            ws.wecom.customer_scans(app, made["config_id"], f"wmDesk000{n}", name=f"客人{n}")
            assert await eventually(lambda n=n: owner_of(f"wmDesk000{n}"), timeout=15) == ws.reps[rep]
            following = "wang" if rep == "li" else "li"
            await eventually(lambda following=following: _async(made["user"] == [following]), timeout=15)


async def _async(value):
    return value


async def test_a_team_rota_follows_working_hours_and_falls_back_outside_them(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        async with tg.hub.sessions() as session, session.begin():
            team = Team(name="华东销售")
            session.add(team)
            await session.flush()
            for rep in ("li", "wang"):
                (await session.get(User, ws.reps[rep])).team_id = team.id
            team_id = team.id
        rota = {"team_id": team_id, "fallback_user_id": ws.reps["li"],
                "hours": {"start": "09:00", "end": "18:00", "zone": "Asia/Shanghai"}}
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "官网客服码", "state": "website", "rota": rota})
        assert resp.status_code == 201, resp.text
        async with tg.hub.sessions() as session:
            way = await session.get(ContactWay, resp.json()["id"])
            at = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)  # a Monday
            # 11:00 in Shanghai: the team's reps; 21:00: the fallback alone.
            assert await rota_users(way, db_session=session, now=at + dt.timedelta(hours=3)) == ["li", "wang"]
            assert await rota_users(way, db_session=session, now=at + dt.timedelta(hours=13)) == ["li"]
            # Overnight hours (20:00 to 08:00) hold across midnight.
            way.rota = {**way.rota, "hours": {"start": "20:00", "end": "08:00", "zone": "Asia/Shanghai"}}
            assert await rota_users(way, db_session=session, now=at + dt.timedelta(hours=13)) == ["li", "wang"]
            assert await rota_users(way, db_session=session, now=at + dt.timedelta(hours=3)) == ["li"]


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a1e2a4e40000000049454e44ae426082")


async def test_a_welcome_brings_a_picture_or_a_mini_program_card_its_picture_uploaded_to_wecom(database_url,
                                                                                                 tmp_path):
    pictures = Starlette(routes=[Route("/expo.png", lambda _: Response(PNG, media_type="image/png"))])
    async with workspace_stack(database_url, tmp_path) as ws, running(pictures) as server:
        tg, app = ws.tg, ws.wecom_app
        picture = f"http://127.0.0.1:{server.port}/expo.png"
        body = {"channel_account_id": ws.wecom_account_id, "name": "门店海报", "state": "store-poster",
                "rota": {"users": [ws.reps["li"]]}, "welcome": {"zh": "欢迎光临！", "image_url": picture}}
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json=body, headers=tg.api())
        assert resp.status_code == 201, resp.text
        way = resp.json()

        async def welcome_to(external: str):
            return [m for m in app.sent if m["to"] == external and m["msgtype"] == "welcome"]
        # The picture alone: uploaded to WeCom (media/upload), sent by its media id beside the words.
        ws.wecom.customer_scans(app, way["config_id"], "wmStoreGuest01", name="赵女士")
        [welcome] = await eventually(lambda: welcome_to("wmStoreGuest01"), timeout=15)
        assert welcome["text"] == "欢迎光临！"
        [image] = welcome["attachments"]
        assert image["msgtype"] == "image"
        assert app.kf.media[image["image"]["media_id"]] == {"type": "image", "size": len(PNG), "name": "picture.png"}

        # A mini-program card instead, the picture as its cover.
        card = {"appid": "wx8bd80126147dfa01", "page": "pages/catalogue/index?from=store", "title": "门店新品目录"}
        resp = await tg.client.put(f"{tg.hub_base}/api/v1/contact-ways/{way['id']}", headers=tg.api(), json={
            **body, "welcome": {**body["welcome"], "miniprogram": card}})
        assert resp.status_code == 200, resp.text
        ws.wecom.customer_scans(app, way["config_id"], "wmStoreGuest02", name="钱先生")
        [welcome] = await eventually(lambda: welcome_to("wmStoreGuest02"), timeout=15)
        [sent] = welcome["attachments"]
        assert sent["msgtype"] == "miniprogram"
        assert {k: sent["miniprogram"][k] for k in ("appid", "page", "title")} == card
        assert app.kf.media[sent["miniprogram"]["pic_media_id"]]["type"] == "image"

        # Cards WeCom would refuse are refused here first, saying what to change.
        long_title = "门店新品目录全系列优惠活动进行中欢迎选购下单"  # 22 characters, 66 bytes
        for welcome, words in (
                ({"zh": "hi", "miniprogram": card}, "needs a cover"),
                ({"zh": "hi", "image_url": picture, "link_url": "https://shop.example.cn", "miniprogram": card},
                 "a link or a mini-program"),
                ({"zh": "hi", "image_url": picture, "miniprogram": {**card, "title": long_title}}, "at most 64 bytes"),
                ({"zh": "hi", "image_url": picture, "miniprogram": {**card, "appid": "not-an-appid"}}, "appid")):
            resp = await tg.client.put(f"{tg.hub_base}/api/v1/contact-ways/{way['id']}", headers=tg.api(),
                                       json={**body, "welcome": welcome})
            assert resp.status_code == 422 and words in resp.text, (welcome, resp.text)


async def test_a_contact_way_is_refused_with_the_reason_to_fix(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        base = {"channel_account_id": ws.wecom_account_id, "name": "门店", "state": "store-1",
                "rota": {"users": [ws.reps["li"]]}}
        for change, status, words in (
                ({"state": "有空格 的"}, 422, "state"),
                ({"rota": {}}, 422, "choose the reps"),
                ({"rota": {"users": [ws.reps["li"]], "hours": {"start": "09:00", "end": "09:00"}}}, 422,
                 "two different times"),
                ({"channel_account_id": ws.tg.account_id}, 422, "WeCom app"),
                ({"campaign_id": 987654}, 422, "campaign 987654")):
            resp = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json={**base, **change},
                                        headers=tg.api())
            assert resp.status_code == status, (change, resp.text)
            assert words in resp.text, (change, resp.text)
        ok = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json=base, headers=tg.api())
        assert ok.status_code == 201, ok.text
        again = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json=base, headers=tg.api())
        assert again.status_code == 422 and "store-1" in again.text and "choose another" in again.text
        # WeCom's own refusal, said as such: the app may not manage customers.
        ws.wecom_app.faults.append({"path": "externalcontact/add_contact_way", "errcode": 84074, "remaining": 1})
        refused = await tg.client.post(f"{tg.hub_base}/api/v1/contact-ways", json={**base, "state": "store-2"},
                                       headers=tg.api())
        assert refused.status_code == 422 and "84074" in refused.text and "客户联系" in refused.text


async def test_an_operator_makes_a_contact_way_in_the_panel_and_sees_its_adds(database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        campaign_id = await _campaign(tg.hub)
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.wait_for_selector("#nav a[data-page=contact-ways]")
            await page.click("#nav a[data-page=contact-ways]")
            form = page.locator("#way-form")
            await form.locator("input[name=name]").fill("门店海报")
            await form.locator("input[name=state]").fill("store-poster")
            await form.locator("select[name=users]").select_option([str(ws.reps["li"]), str(ws.reps["wang"])])
            await form.locator("input[name=tags]").fill("门店, 新客")
            await form.locator("select[name=campaign]").select_option(str(campaign_id))
            await form.locator("textarea[name=welcome_zh]").fill("欢迎光临，扫码即享会员价！")
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector("#way-summary")
            assert await page.inner_text("h1") == "门店海报"
            # The QR image WeCom serves for the code is shown, to download.
            await page.wait_for_function("document.querySelector('#way-qr').naturalWidth > 0")
            [made] = app.contact_ways.values()
            assert made["state"] == "store-poster" and made["user"] == ["li", "wang"]

            ws.wecom.customer_scans(app, made["config_id"], "wmStoreGuest01", name="孙先生")

            async def enrolled():
                async with tg.hub.sessions() as session:
                    return await session.scalar(select(Enrolment.contact_id).where(
                        Enrolment.campaign_id == campaign_id))
            contact_id = await eventually(enrolled, timeout=15)
            async with tg.hub.sessions() as session:
                assert set(await tags_of(contact_id, db_session=session)) == {"门店", "新客"}
                assert await session.scalar(select(Conversation.assignee_user_id).where(
                    Conversation.contact_id == contact_id)) == ws.reps["li"]
            await page.reload()
            await page.wait_for_selector("#way-summary")
            assert await page.inner_text("#way-summary dd[data-key=added]") == "1"
            assert await page.locator("#way-chart circle").count() == 3 * 30  # added, lost and net for 30 days
            assert "新增" in await page.inner_text("#way-chart")

            # A mini-program card on the welcome: refused without its cover picture, saying so; kept with it.
            form = page.locator("#way-form")
            await form.locator("input[name=mp_appid]").fill("wx8bd80126147dfa01")
            await form.locator("input[name=mp_page]").fill("pages/catalogue/index")
            await form.locator("input[name=mp_title]").fill("门店新品目录")
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector(".toast.bad:has-text('needs a cover')")
            await form.locator("input[name=image_url]").fill("https://cdn.example.cn/store.png")
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector("#toast.show:not(.bad)")
            detail = (await tg.client.get(f"{tg.hub_base}/api/v1/contact-ways", headers=tg.api())).json()[0]
            assert detail["welcome"] == {"zh": "欢迎光临，扫码即享会员价！", "image_url": "https://cdn.example.cn/store.png",
                                         "miniprogram": {"appid": "wx8bd80126147dfa01", "page": "pages/catalogue/index",
                                                         "title": "门店新品目录"}}
            await page.click("main a[href='#/contact-ways']")
            await page.wait_for_selector("#contact-way-rows tr[data-way]")
            row = page.locator("#contact-way-rows tr[data-way]")
            assert await row.count() == 1 and "store-poster" in await row.inner_text()
            assert page.script_errors == []
