"""WeCom customer groups (客户群) through the simulator: a group made, customers joining and leaving,
renamed, dismissed, each change_external_chat event on the app's callback followed by the group
read again; a customer in a group is the same contact as in their 1:1 chat with a rep."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from crm_core.models import Identity, Role
from hub.serving import running
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_groups_follow_wecom_and_their_customers_are_the_contacts_of_1_to_1_chat(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        sim.customer_adds(app, "wmGroup0001", "li", name="冯先生")

        async def known():
            async with hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "wmGroup0001"))
        feng = await eventually(known, timeout=15)

        chat_id = sim.group_created(app, "li", "X200 用户群", {"wmGroup0001": "冯先生", "wmGroup0002": "卫女士"})

        async def delivered():  # WeCom posts change_external_chat after the change: read once it has landed
            return not app.queue

        async def groups():
            await hub.groups.run_once()
            return (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups", headers=tg.api())).json()
        [group] = await eventually(groups, timeout=15, interval=0.3)
        assert (group["name"], group["owner_userid"], group["customers"], group["staff"]) == ("X200 用户群", "li", 2, 1)

        async def detail():
            return (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups/{group['id']}", headers=tg.api())).json()
        members = {m["userid"]: m for m in (await detail())["members"]}
        assert members["wmGroup0001"]["contact_id"] == feng  # the same person as in 1:1 chat
        assert members["wmGroup0002"]["contact_id"] and members["wmGroup0002"]["name"] == "卫女士"
        assert members["li"]["is_customer"] is False

        # Someone joins by QR code, another leaves; then it is renamed; then dismissed.
        sim.group_changes(app, chat_id, joins={"wmGroup0003": "蒋先生"})
        sim.group_changes(app, chat_id, leaves=["wmGroup0002"])
        await eventually(delivered)

        async def changed():
            await hub.groups.run_once()
            now = await detail()
            return now if {m["userid"] for m in now["members"]} == {"li", "wmGroup0001", "wmGroup0003"} else None
        now = await eventually(changed, timeout=15, interval=0.3)
        assert next(m for m in now["members"] if m["userid"] == "wmGroup0003")["join_scene"] == 3
        sim.group_changes(app, chat_id, name="X200 车主群")
        await eventually(delivered)

        async def renamed():
            await hub.groups.run_once()
            return (await detail())["name"] == "X200 车主群"
        await eventually(renamed, timeout=15, interval=0.3)
        sim.group_changes(app, chat_id, dismiss=True)
        await eventually(delivered)

        async def dismissed():
            await hub.groups.run_once()
            return (await detail())["dismissed_at"]
        await eventually(dismissed, timeout=15, interval=0.3)
        # A full read on demand finds nothing new.
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/sync", headers=tg.api())
        assert resp.status_code == 200 and resp.json() == {"read": 0}


async def test_the_groups_page_lists_groups_and_links_their_customers(database_url, tmp_path, browser):
    served = Starlette(routes=[Route("/welcome.png", lambda _: Response(PNG, media_type="image/png"))])
    async with workspace_stack(database_url, tmp_path) as ws, running(served) as server:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        sim.group_created(app, "wang", "门店老客群", {"wmGroupP001": "韩女士"})
        await hub.groups.run_once(everything=True)
        async with signed_in(browser, hub, tg.hub_base, "mona", Role.MANAGER) as page:
            await page.wait_for_selector("#nav a[data-page=groups]")
            await page.click("#nav a[data-page=groups]")
            await page.wait_for_selector("#group-rows tr[data-group]")
            row = await page.inner_text("#group-rows tr[data-group]")
            assert "门店老客群" in row and "wang" in row and "启用" in row
            await page.wait_for_selector("#group-stats circle")
            assert await page.locator("#group-stats circle").count() == 3 * 14  # joined, left, messages: 14 days
            assert not await page.query_selector("#sync-groups")  # a manager reads; operators read again
            await page.click("#group-rows tr[data-group] a")
            await page.wait_for_selector("#group-members tr[data-member=wmGroupP001]")
            member = await page.inner_text("#group-members tr[data-member=wmGroupP001]")
            assert "韩女士" in member and "客户" in member
            assert await page.get_attribute("#group-members tr[data-member=wmGroupP001] a", "href") == \
                f"#/contacts/{(await _contact(hub, 'wmGroupP001'))}"
            assert page.script_errors == []
        # An operator makes a group QR code for it from the page.
        async with signed_in(browser, hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.click("#nav a[data-page=groups]")
            await page.wait_for_selector("#join-way-form")
            await page.fill("#join-way-form input[name=name]", "老客群码")
            await page.fill("#join-way-form input[name=state]", "old-customers")
            await page.select_option("#join-way-form select[name=groups]", index=0)
            await page.fill("#join-way-form textarea[name=welcome]", "欢迎回来")
            await page.fill("#join-way-form input[name=image_url]", f"http://127.0.0.1:{server.port}/welcome.png")
            await page.click("#join-way-form button[type=submit]")
            await page.wait_for_selector("#join-way-rows tr[data-way]")
            row = await page.inner_text("#join-way-rows tr[data-way]")
            assert "老客群码" in row and "门店老客群" in row
            await page.wait_for_function("document.querySelector('#join-way-rows img').naturalWidth > 0")
            [made] = app.join_ways.values()
            assert made["state"] == "old-customers" and list(app.welcome_templates.values()) == ["欢迎回来"]
            assert [p["msgtype"] for p in next(iter(app.welcome_template_parts.values()))] == ["image"]
            assert page.script_errors == []


async def _contact(hub, external: str) -> int:
    async with hub.sessions() as session:
        return await session.scalar(select(Identity.contact_id).where(Identity.external_id == external))


async def test_a_group_qr_code_fills_its_groups_in_order_and_counts_who_came_through_it(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        app.group_size = 2  # the owner and one customer: a small group, to see it roll to the next
        first = sim.group_created(app, "li", "活动1群", {})
        second = sim.group_created(app, "li", "活动2群", {})
        await hub.groups.run_once(everything=True)
        ids = {g["chat_id"]: g["id"] for g in (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups",
                                                                   headers=tg.api())).json()}
        body = {"channel_account_id": ws.wecom_account_id, "name": "双十二活动群", "state": "d12-groups",
                "group_ids": [ids[first], ids[second]], "room_base_name": "活动", "welcome": "欢迎入群，领取优惠券"}
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/join-ways", headers=tg.api(), json=body)
        assert resp.status_code == 201, resp.text
        way = resp.json()
        [made] = app.join_ways.values()
        assert (made["chat_id_list"], made["state"], made["auto_create_room"]) == ([first, second], "d12-groups", 1)
        assert way["qr_code"] and app.welcome_templates[way["welcome_template_id"]] == "欢迎入群，领取优惠券"

        # Three customers scan it: the first group, then the second, then a new one WeCom makes.
        joined = [sim.customer_scans_group_code(app, made["config_id"], f"wmJoin0000{n}", f"客{n}") for n in (1, 2, 3)]
        assert joined[:2] == [first, second] and joined[2] not in (first, second)
        assert app.groups[joined[2]]["name"] == "活动2"

        async def counted():
            await hub.groups.run_once()
            ways = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups/join-ways", headers=tg.api())).json()
            return ways if ways[0]["joined"] == 3 else None
        await eventually(counted, timeout=15, interval=0.3)
        bad = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/join-ways", headers=tg.api(),
                                   json={**body, "state": "other", "group_ids": [987654]})
        assert bad.status_code == 422 and "987654" in bad.text
        again = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/join-ways", headers=tg.api(), json=body)
        assert again.status_code == 422 and "choose another" in again.text
        gone = await tg.client.delete(f"{tg.hub_base}/api/v1/customer-groups/join-ways/{way['id']}", headers=tg.api())
        assert gone.status_code == 204 and app.join_ways == {}


async def test_group_statistics_by_day_come_from_wecom(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        chat_id = sim.group_created(app, "li", "统计群", {"wmStat00001": "甲"})
        sim.group_changes(app, chat_id, joins={"wmStat00002": "乙", "wmStat00003": "丙"})
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
        app.group_messages[f"li|{today}"] = 17
        await hub.groups.run_once(everything=True)
        sim.group_changes(app, chat_id, leaves=["wmStat00003"])  # 丙 leaves: WeCom does not count it
        await hub.groups.run_once(everything=True)
        resp = await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups/statistics", headers=tg.api(),
                                   params={"account_id": ws.wecom_account_id, "days": 7})
        assert resp.status_code == 200, resp.text
        stats = resp.json()
        assert stats["owners"] == ["li"] and len(stats["days"]) == 7
        assert stats["days"][-1] == {"day": today, "chat_total": 1, "member_total": 3, "new_member_cnt": 2,
                                     "msg_total": 17, "left": 1}
        assert stats["days"][0]["member_total"] == 0
        too_long = await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups/statistics", headers=tg.api(),
                                       params={"account_id": ws.wecom_account_id, "days": 31})
        assert too_long.status_code == 422


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a1e2a4e40000000049454e44ae426082")


async def test_a_group_welcome_carries_a_picture_or_a_mini_program_card(database_url, tmp_path):
    served = Starlette(routes=[Route("/group.png", lambda _: Response(PNG, media_type="image/png")),
                               Route("/page.html", lambda _: Response("<p>no</p>", media_type="text/html"))])
    async with workspace_stack(database_url, tmp_path) as ws, running(served) as server:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        chat = sim.group_created(app, "li", "福利群", {})
        await hub.groups.run_once(everything=True)
        [group] = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups", headers=tg.api())).json()
        picture = f"http://127.0.0.1:{server.port}/group.png"
        body = {"channel_account_id": ws.wecom_account_id, "name": "福利群码", "state": "perks",
                "group_ids": [group["id"]], "welcome": "欢迎入群，每周三发福利", "welcome_card": {"image_url": picture}}
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/join-ways", headers=tg.api(), json=body)
        assert resp.status_code == 201, resp.text
        way = resp.json()
        [image] = app.welcome_template_parts[way["welcome_template_id"]]
        assert image["msgtype"] == "image" and app.kf.media[image["image"]["media_id"]]["size"] == len(PNG)
        assert app.join_ways[next(iter(app.join_ways))]["chat_id_list"] == [chat]

        card = {"appid": "wx8bd80126147dfa01", "page": "pages/perks/index", "title": "本周福利"}
        resp = await tg.client.put(f"{tg.hub_base}/api/v1/customer-groups/join-ways/{way['id']}", headers=tg.api(),
                                   json={**body, "welcome_card": {"image_url": picture, "miniprogram": card}})
        assert resp.status_code == 200, resp.text
        [mini] = app.welcome_template_parts[way["welcome_template_id"]]  # the same template, edited
        assert mini["msgtype"] == "miniprogram" and mini["miniprogram"]["appid"] == card["appid"]
        assert app.kf.media[mini["miniprogram"]["pic_media_id"]]["type"] == "image"

        # A picture that is not one, or a card without words: refused with what to fix.
        for card_body, words in (({"welcome_card": {"image_url": f"http://127.0.0.1:{server.port}/page.html"}},
                                  "not a JPEG or PNG"),
                                 ({"welcome": None, "welcome_card": {"image_url": picture}}, "write the welcome")):
            resp = await tg.client.put(f"{tg.hub_base}/api/v1/customer-groups/join-ways/{way['id']}",
                                       headers=tg.api(), json={**body, **card_body})
            assert resp.status_code == 422 and words in resp.text, resp.text
