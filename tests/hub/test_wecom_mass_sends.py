"""One-off 群发 through the API and the WeCom simulator: one task per rep with their own customers,
confirmed by each rep in WeCom; the results say which reps sent it and, per customer, sent, no
longer a contact, or over WeCom's 4 a month (those are left out before any task is made). 群发
made in WeCom itself are found in WeCom's list, followed, counted and their reps reminded."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from crm_core.campaigns import mass_sends
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, Conversation, Identity, MassSend, MassSendTask, Role
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def customers_of(ws, owners: dict[str, str]) -> dict[str, int]:
    """Each customer adds their rep; their contact ids once the hub has them."""
    for external, rep in owners.items():
        ws.wecom.customer_adds(ws.wecom_app, external, rep, name=external[-3:])
    found: dict[str, int] = {}
    for external in owners:
        async def contact(external=external):
            async with ws.tg.hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).join(
                    Conversation, Conversation.identity_id == Identity.id).where(
                    Identity.external_id == external, Conversation.assignee_user_id.is_not(None)))
        found[external] = await eventually(contact, timeout=15)
    return found


async def test_a_mass_send_is_one_task_per_rep_and_its_results_tell_the_truth(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        app.auto_confirm_tasks = False
        contacts = await customers_of(ws, {"wmMass00001": "li", "wmMass00002": "li", "wmMass00003": "wang",
                                           "wmMass00004": "wang"})
        for external in ("wmMass00001", "wmMass00002", "wmMass00003"):
            await tg.client.put(f"{tg.hub_base}/api/v1/contacts/{contacts[external]}/tags", headers=tg.api(),
                                json={"tags": ["vip"]})
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "双十二", "text": "双十二会员专享价，回复了解详情",
            "tags": ["vip"]})
        assert resp.status_code == 201, resp.text
        made = resp.json()
        assert (made["reps"], made["reps_sent"], made["customers"]["waiting"]) == (2, 0, 3)
        assert sorted((t["sender"], sorted(t["targets"]), t["confirmed"]) for t in app.tasks) == [
            ("li", ["wmMass00001", "wmMass00002"], False), ("wang", ["wmMass00003"], False)]

        # Li sends his; one of his customers had deleted him meanwhile. Wang does not send his yet.
        app.customers["wmMass00002"]["follow"].pop("li")
        sim.confirm_task(app, next(t["msgid"] for t in app.tasks if t["sender"] == "li"))
        assert await tg.hub.mass_sends.run_once() == 1
        detail = (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends/{made['id']}", headers=tg.api())).json()
        assert (detail["reps"], detail["reps_sent"]) == (2, 1)
        assert detail["customers"] == {"waiting": 1, "sent": 1, "not_contact": 1, "over_limit": 0}
        states = {c["external_userid"]: (t["rep"], t["status"], c["state"]) for t in detail["tasks"]
                  for c in t["customers"]}
        assert states == {"wmMass00001": ("Li Lei", "sent", "sent"), "wmMass00002": ("Li Lei", "sent", "not_contact"),
                          "wmMass00003": ("Wang Fang", "waiting", "waiting")}
        def got(external):
            return [m["text"] for m in app.transcript(external) if "双十二" in m["text"]]
        assert got("wmMass00001") == ["双十二会员专享价，回复了解详情"] and got("wmMass00003") == []


async def test_customers_who_had_their_four_this_month_are_left_out_and_counted(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        await customers_of(ws, {"wmFull00001": "li", "wmFree00001": "li"})
        for n in range(4):
            resp = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
                "channel_account_id": ws.wecom_account_id, "name": f"第{n + 1}期", "text": f"会员月刊 {n + 1}"})
            assert resp.status_code == 201, resp.text
        # Both customers had four: nobody left to send to, said with the count.
        full = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "第5期", "text": "会员月刊 5"})
        assert full.status_code == 422 and "2 had WeCom's 4 mass messages this month" in full.text
        refused = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.tg.account_id, "name": "x", "text": "y"})
        assert refused.status_code == 422 and "WeCom app" in refused.text


async def test_a_mass_send_made_in_the_panel_confirmed_by_one_of_two_reps_shows_1_of_2(database_url, tmp_path,
                                                                                        browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        app.auto_confirm_tasks = False
        await customers_of(ws, {"wmPanelM001": "li", "wmPanelM002": "wang"})
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.wait_for_selector("#nav a[data-page=mass-sends]")
            await page.click("#nav a[data-page=mass-sends]")
            await page.fill("#mass-form input[name=name]", "新品发布")
            await page.fill("#mass-form textarea[name=text]", "新品 X300 今日发布，点击了解")
            await page.click("#mass-form button[type=submit]")
            await page.wait_for_selector("#mass-summary")
            assert await page.inner_text("#mass-summary dd[data-key=reps]") == "0 / 2"
            assert len(app.tasks) == 2
            # Li Lei taps Send in WeCom; Wang Fang does not.
            sim.confirm_task(app, next(t["msgid"] for t in app.tasks if t["sender"] == "li"))
            await tg.hub.mass_sends.run_once()
            await page.reload()
            await page.wait_for_selector("#mass-summary")
            assert await page.inner_text("#mass-summary dd[data-key=reps]") == "1 / 2"
            assert "已发送" in await page.inner_text("#mass-tasks tr[data-rep=li]")
            assert "待成员发送" in await page.inner_text("#mass-tasks tr[data-rep=wang]")
            await page.click("main a[href='#/mass-sends']")
            await page.wait_for_selector("#mass-send-rows tr[data-send]")
            assert await page.inner_text("#mass-send-rows tr[data-send] td[data-key=reps]") == "1 / 2"
            # One made in WeCom's console is listed too, said so.
            sim.mass_send_in_wecom(app, "boss", {"li": ["wmPanelM001"]}, "店庆三天")
            assert await tg.hub.mass_sends.discover(ws.wecom_account_id, force=True) == 1
            await page.reload()
            await page.wait_for_selector("#mass-send-rows tr[data-origin=wecom]")
            assert "企业微信后台创建" in await page.inner_text("#mass-send-rows tr[data-origin=wecom]")
            assert page.script_errors == []


async def test_a_group_mass_send_made_in_the_panel_confirmed_by_one_of_two_owners_shows_1_of_2(database_url,
                                                                                                tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        app.auto_confirm_tasks = False
        mine = sim.group_created(app, "li", "X200 车主群", {"wmCarOwner1": "甲"})
        sim.group_created(app, "wang", "华南门店群", {"wmCarOwner2": "乙"})
        await tg.hub.groups.run_once(everything=True)
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.wait_for_selector("#nav a[data-page=mass-sends]")
            await page.click("#nav a[data-page=mass-sends]")
            await page.fill("#mass-form input[name=name]", "群公告")
            await page.fill("#mass-form textarea[name=text]", "本周六车主沙龙，欢迎报名")
            await page.check("#mass-form input[name=groups]")
            await page.click("#mass-form button[type=submit]")
            await page.wait_for_selector("#mass-summary")
            assert await page.inner_text("#mass-summary dd[data-key=reps]") == "0 / 2"
            assert sorted((t["sender"], t["group"]) for t in app.tasks) == [("li", True), ("wang", True)]
            # Li Lei taps Send in WeCom; Wang Fang does not: 1 of 2, and Li's group has it.
            sim.confirm_task(app, next(t["msgid"] for t in app.tasks if t["sender"] == "li"))
            await tg.hub.mass_sends.run_once()
            await page.reload()
            await page.wait_for_selector("#mass-summary")
            assert await page.inner_text("#mass-summary dd[data-key=reps]") == "1 / 2"
            li_row = await page.inner_text("#mass-tasks tr[data-rep=li]")
            assert "X200 车主群" in li_row and "已发送" in li_row
            assert "待成员发送" in await page.inner_text("#mass-tasks tr[data-rep=wang]")
            assert app.groups[mine]["mass_received"]  # WeCom counts it against the group's four
            assert page.script_errors == []


async def test_a_mass_send_to_groups_is_one_task_per_owner_with_their_groups(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        app.auto_confirm_tasks = False
        first = sim.group_created(app, "li", "X200 用户群", {"wmInGroup01": "甲"})
        second = sim.group_created(app, "li", "门店群", {"wmInGroup02": "乙"})
        third = sim.group_created(app, "wang", "华南群", {"wmInGroup03": "丙"})
        await tg.hub.groups.run_once(everything=True)
        tagged = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "x", "text": "y", "to_groups": True, "tags": ["vip"]})
        assert tagged.status_code == 422 and "tags choose customers" in tagged.text
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "群公告", "text": "本周六门店活动", "to_groups": True})
        assert resp.status_code == 201, resp.text
        assert sorted((t["sender"], sorted(t["targets"]), t["group"]) for t in app.tasks) == [
            ("li", sorted([first, second]), True), ("wang", [third], True)]
        sim.confirm_task(app, next(t["msgid"] for t in app.tasks if t["sender"] == "li"))
        await tg.hub.mass_sends.run_once()
        detail = (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends/{resp.json()['id']}",
                                      headers=tg.api())).json()
        assert (detail["chat_type"], detail["reps"], detail["reps_sent"]) == ("group", 2, 1)
        assert detail["customers"] == {"waiting": 1, "sent": 2, "not_contact": 0, "over_limit": 0}
        assert {c["name"]: c["state"] for t in detail["tasks"] for c in t["customers"]} == {
            "X200 用户群": "sent", "门店群": "sent", "华南群": "waiting"}


async def test_two_processes_never_make_the_same_task_twice_and_a_stopped_one_is_given_up(database_url, tmp_path):
    """The API makes the tasks at once while a worker's scheduled job may run the same minute: each
    rep's task is taken by one of them (hub/claiming.py). A task left taken by a process that stopped
    mid-call is failed after ten minutes with why, never asked for again."""
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        app.auto_confirm_tasks = False
        await customers_of(ws, {"wmRace00001": "li", "wmRace00002": "wang"})
        async with tg.hub.sessions() as session, session.begin():
            account = await session.get(ChannelAccount, ws.wecom_account_id)
            send = await mass_sends.plan(account, "并发", "同时两个进程", [], [], actor=None, db_session=session,
                                         now=utcnow())
            send_id = send.id
        await asyncio.gather(*(tg.hub.mass_sends.run_once() for _ in range(3)))
        assert sorted(t["sender"] for t in app.tasks) == ["li", "wang"]  # one task each, not two or three

        async with tg.hub.sessions() as session, session.begin():
            stuck = await mass_sends.plan(account, "卡住", "进程中途停止", [], [], actor=None, db_session=session,
                                          now=utcnow())
            await session.execute(update(MassSendTask).where(MassSendTask.mass_send_id == stuck.id).values(
                status="creating", checked_at=utcnow() - dt.timedelta(minutes=11)))
            stuck_id = stuck.id
        await tg.hub.mass_sends.run_once()
        detail = (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends/{stuck_id}", headers=tg.api())).json()
        assert {t["status"] for t in detail["tasks"]} == {"failed"}
        assert all("not known" in t["reason"] for t in detail["tasks"])
        assert len(app.tasks) == 2 and send_id


async def test_mass_sends_made_in_wecom_are_found_followed_counted_and_their_reps_reminded(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path, wecom_confirm_remind_minutes=5) as ws:
        tg, app, sim, sends = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub.mass_sends
        app.auto_confirm_tasks = False
        await customers_of(ws, {"wmConsole01": "li", "wmConsole02": "li", "wmConsole03": "wang"})
        # An admin makes a 群发 in WeCom's console for both reps; Wang Fang sends one of her own.
        console = sim.mass_send_in_wecom(app, "boss", {"li": ["wmConsole01", "wmConsole02"], "wang": ["wmConsole03"]},
                                         "店庆三天，全场八折")
        own = sim.mass_send_in_wecom(app, "wang", {"wang": ["wmConsole03"]}, "王芳的新品推荐", personal=True)
        assert await sends.discover(ws.wecom_account_id, force=True) == 2
        assert await sends.discover(ws.wecom_account_id, force=True) == 0  # listed again: nothing new
        sim.confirm_task(app, console, "li")
        await sends.run_once()
        listed = {s["origin"]: s for s in (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends",
                                                               headers=tg.api())).json()}
        assert set(listed) == {"wecom", "personal"}
        assert (listed["wecom"]["name"], listed["wecom"]["creator"]) == ("店庆三天，全场八折", "boss")
        assert (listed["wecom"]["reps"], listed["wecom"]["reps_sent"]) == (2, 1)
        assert listed["wecom"]["customers"] == {"waiting": 1, "sent": 2, "not_contact": 0, "over_limit": 0}
        assert (listed["personal"]["creator"], listed["personal"]["reps_sent"]) == ("wang", 1)
        async with tg.hub.sessions() as session:
            msgids = set((await session.scalars(select(MassSendTask.msgid))).all())
        assert msgids == {console, own}

        # They count toward the month's four: Wang Fang's customer has had two (one still waiting).
        async with tg.hub.sessions() as session:
            account = await session.get(ChannelAccount, ws.wecom_account_id)
            counts = await mass_sends._received_this_month(["wmConsole03"], account.id, session, utcnow())
        assert counts == {"wmConsole03": 2}

        # Wang Fang has not sent the console's: reminded in her chat app, once today.
        async with tg.hub.sessions() as session, session.begin():
            await session.execute(update(MassSend).values(created_at=utcnow() - dt.timedelta(minutes=6)))
        assert await tg.hub.remind_unconfirmed() == 1
        assert await tg.hub.remind_unconfirmed() == 0

        # The hub's own replies sent as tasks, and its own mass sends, are never taken for WeCom's.
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "hub", "text": "本系统群发",
            "user_ids": [ws.reps["li"]]})
        assert resp.status_code == 201, resp.text
        assert await sends.discover(ws.wecom_account_id, force=True) == 0


async def test_wecom_busy_or_rate_limited_is_asked_again_not_failed(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        app.auto_confirm_tasks = False
        await customers_of(ws, {"wmBusy00001": "li"})
        # 系统繁忙 (-1) when the task is made, then a rate limit (45009) when it is read back.
        app.faults.append({"path": "externalcontact/add_msg_template", "errcode": -1, "remaining": 1})
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "周末", "text": "周末见"})
        assert resp.status_code == 201, resp.text
        [task] = resp.json()["tasks"]
        assert task["status"] == "pending" and "busy (-1)" in task["reason"] and app.tasks == []
        app.faults.append({"path": "externalcontact/get_groupmsg_task", "errcode": 45009, "remaining": 1})
        await tg.hub.mass_sends.run_once(listing=False)  # made now
        await tg.hub.mass_sends.run_once(listing=False)  # read back: rate limited, still waiting
        detail = (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends/{resp.json()['id']}", headers=tg.api())).json()
        assert [t["status"] for t in detail["tasks"]] == ["waiting"] and len(app.tasks) == 1
        ws.wecom.confirm_task(app, app.tasks[0]["msgid"])
        await tg.hub.mass_sends.run_once(listing=False)
        detail = (await tg.client.get(f"{tg.hub_base}/api/v1/mass-sends/{resp.json()['id']}", headers=tg.api())).json()
        assert [t["status"] for t in detail["tasks"]] == ["sent"]
        # A refusal that is not "later" still fails, with WeCom's code.
        app.faults.append({"path": "externalcontact/add_msg_template", "errcode": 41063, "remaining": 1})
        failed = await tg.client.post(f"{tg.hub_base}/api/v1/mass-sends", headers=tg.api(), json={
            "channel_account_id": ws.wecom_account_id, "name": "再来", "text": "再见"})
        [refused] = failed.json()["tasks"]
        assert refused["status"] == "failed" and "41063" in refused["reason"]
