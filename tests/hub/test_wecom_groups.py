"""WeCom customer groups (客户群) through the simulator: a group made, customers joining and leaving,
renamed, dismissed, each change_external_chat event on the app's callback followed by the group
read again; a customer in a group is the same contact as in their 1:1 chat with a rep."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Identity, Role
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

        async def changed():
            await hub.groups.run_once()
            now = await detail()
            return now if {m["userid"] for m in now["members"]} == {"li", "wmGroup0001", "wmGroup0003"} else None
        now = await eventually(changed, timeout=15, interval=0.3)
        assert next(m for m in now["members"] if m["userid"] == "wmGroup0003")["join_scene"] == 3
        sim.group_changes(app, chat_id, name="X200 车主群")

        async def renamed():
            await hub.groups.run_once()
            return (await detail())["name"] == "X200 车主群"
        await eventually(renamed, timeout=15, interval=0.3)
        sim.group_changes(app, chat_id, dismiss=True)

        async def dismissed():
            await hub.groups.run_once()
            return (await detail())["dismissed_at"]
        await eventually(dismissed, timeout=15, interval=0.3)
        # A full read on demand finds nothing new.
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/customer-groups/sync", headers=tg.api())
        assert resp.status_code == 200 and resp.json() == {"read": 0}


async def test_the_groups_page_lists_groups_and_links_their_customers(database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        sim.group_created(app, "wang", "门店老客群", {"wmGroupP001": "韩女士"})
        await hub.groups.run_once(everything=True)
        async with signed_in(browser, hub, tg.hub_base, "mona", Role.MANAGER) as page:
            await page.wait_for_selector("#nav a[data-page=groups]")
            await page.click("#nav a[data-page=groups]")
            await page.wait_for_selector("#group-rows tr[data-group]")
            row = await page.inner_text("#group-rows tr[data-group]")
            assert "门店老客群" in row and "wang" in row and "启用" in row
            assert not await page.query_selector("#sync-groups")  # a manager reads; operators read again
            await page.click("#group-rows tr[data-group] a")
            await page.wait_for_selector("#group-members tr[data-member=wmGroupP001]")
            member = await page.inner_text("#group-members tr[data-member=wmGroupP001]")
            assert "韩女士" in member and "客户" in member
            assert await page.get_attribute("#group-members tr[data-member=wmGroupP001] a", "href") == \
                f"#/contacts/{(await _contact(hub, 'wmGroupP001'))}"
            assert page.script_errors == []


async def _contact(hub, external: str) -> int:
    async with hub.sessions() as session:
        return await session.scalar(select(Identity.contact_id).where(Identity.external_id == external))
