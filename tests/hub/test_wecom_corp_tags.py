"""Tags both ways through the WeCom simulator: a contact's tags set in the hub reach their WeCom
customer as corp tags (created in the "SCRM Hub" group when WeCom lacks them; a tag a rep put on
them in WeCom stays); a corp tag renamed or deleted in WeCom's console changes the hub's tags
(change_external_tag on the app's callback, then the list read again), audited."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from crm_core.models import AuditLog, Conversation, Identity, Role
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_tags_go_to_wecom_and_come_back_renamed_or_deleted(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        hub = tg.hub
        # The company already has corp tags; a rep put one of them on the customer in WeCom.
        made = sim._add_corp_tag(app, {"group_name": "客户等级", "tag": [{"name": "重点客户"}, {"name": "意向高"}]})
        _, keen_id = (t["id"] for t in made["tag_group"]["tag"])
        sim.customer_adds(app, "wmTagged0001", "li", name="钱女士")

        async def contact():
            async with hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "wmTagged0001"))
        contact_id = await eventually(contact, timeout=15)

        async def owned():
            async with hub.sessions() as session:
                return await session.scalar(select(Conversation.assignee_user_id).where(
                    Conversation.contact_id == contact_id)) == ws.reps["li"]
        await eventually(owned, timeout=15)
        sim._mark_tag(app, {"userid": "li", "external_userid": "wmTagged0001", "add_tag": [keen_id]})
        assert await hub.corp_tags.read_if_due(ws.wecom_account_id, force=True) is not None

        # In the hub: two tags, one WeCom has ("重点客户"), one it lacks ("展会2026").
        resp = await tg.client.put(f"{tg.hub_base}/api/v1/contacts/{contact_id}/tags", headers=tg.api(),
                                   json={"tags": ["重点客户", "展会2026"]})
        assert resp.status_code == 200, resp.text
        assert await hub.corp_tags.run_once() == 1
        assert sim.customer_tags(app, "wmTagged0001", "li") == ["展会2026", "意向高", "重点客户"]
        [hub_group] = [g for g in app.tag_groups.values() if g["group_name"] == "SCRM Hub"]
        assert list(hub_group["tags"].values()) == ["展会2026"]
        assert await hub.corp_tags.run_once() == 0  # pushed once

        # Removed in the hub: removed in WeCom too; the rep's own "意向高" stays.
        await tg.client.put(f"{tg.hub_base}/api/v1/contacts/{contact_id}/tags", headers=tg.api(),
                            json={"tags": ["展会2026"]})
        assert await hub.corp_tags.run_once() == 1
        assert sim.customer_tags(app, "wmTagged0001", "li") == ["展会2026", "意向高"]

        # Renamed in WeCom's console: the callback says so, the list is read again, the hub follows.
        [expo_id] = list(hub_group["tags"])
        sim.admin_changes_tag(app, expo_id, "展会2026-上海")

        async def renamed():
            await hub.corp_tags.run_once()
            resp = await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact_id}", headers=tg.api())
            return resp.json()["tags"] == ["展会2026-上海"]
        await eventually(renamed, timeout=15, interval=0.3)
        # Deleted in WeCom: gone from the customer in the hub, with the reason audited.
        sim.admin_changes_tag(app, expo_id, None)

        async def dropped():
            await hub.corp_tags.run_once()
            resp = await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact_id}", headers=tg.api())
            return resp.json()["tags"] == []
        await eventually(dropped, timeout=15, interval=0.3)
        async with hub.sessions() as session:
            rules = [row.details.get("rule") for row in (await session.scalars(select(AuditLog).where(
                AuditLog.action == "contact.tags", AuditLog.entity_id == str(contact_id)))).all()]
        assert f"corp tag renamed in WeCom (app {ws.wecom_account_id})" in rules
        assert f"corp tag deleted in WeCom (app {ws.wecom_account_id})" in rules


async def test_a_tag_renamed_or_deleted_in_the_hub_is_renamed_or_deleted_in_wecom(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, hub = ws.tg, ws.wecom_app, ws.tg.hub
        contact_id, expo_id, old_id = await _tagged_customer(ws, 5301)
        assert (await tg.client.get(f"{tg.hub_base}/api/v1/tags", headers=tg.api())).json() == {"展会": 1, "老客户": 1}

        renamed = await tg.client.put(f"{tg.hub_base}/api/v1/tags/展会", headers=tg.api(), json={"name": "展会2026"})
        assert renamed.status_code == 200 and renamed.json() == {"contacts": 1, "wecom_apps": 1}
        group = next(g for g in app.tag_groups.values() if g["group_name"] == "来源")
        assert group["tags"][expo_id] == "展会2026"  # edit_corp_tag
        deleted = await tg.client.delete(f"{tg.hub_base}/api/v1/tags/老客户", headers=tg.api())
        assert deleted.status_code == 200 and deleted.json() == {"contacts": 1, "wecom_apps": 1}
        assert old_id not in group["tags"]  # del_corp_tag
        resp = await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact_id}", headers=tg.api())
        assert resp.json()["tags"] == ["展会2026"]
        # WeCom's change events come back: the hub reads the list again and nothing changes.
        assert (await hub.corp_tags.read_if_due(ws.wecom_account_id, force=True)).renamed == []
        assert (await tg.client.get(f"{tg.hub_base}/api/v1/tags", headers=tg.api())).json() == {"展会2026": 1}
        missing = await tg.client.delete(f"{tg.hub_base}/api/v1/tags/nobody", headers=tg.api())
        assert missing.status_code == 404


async def test_tags_a_rep_sets_on_a_customer_in_wecom_reach_the_hub(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        made = sim._add_corp_tag(app, {"group_name": "意向", "tag": [{"name": "高意向"}, {"name": "已报价"}]})
        keen, quoted = (t["id"] for t in made["tag_group"]["tag"])
        await hub.corp_tags.read_if_due(ws.wecom_account_id, force=True)
        sim.customer_adds(app, "wmRepTags01", "li", name="褚先生")

        async def contact():
            async with hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "wmRepTags01"))
        contact_id = await eventually(contact, timeout=15)
        await tg.client.put(f"{tg.hub_base}/api/v1/contacts/{contact_id}/tags", headers=tg.api(),
                            json={"tags": ["展会来客"]})  # a hub tag WeCom's rep never touches

        async def tags():
            await hub.corp_tags.run_once()
            return (await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact_id}", headers=tg.api())).json()["tags"]
        # Li Lei tags him 高意向 and 已报价 in WeCom; later takes 高意向 away.
        sim.rep_tags_customer(app, "li", "wmRepTags01", [keen, quoted])

        async def both():
            return sorted(await tags()) == ["展会来客", "已报价", "高意向"]
        await eventually(both, timeout=15, interval=0.3)
        now = app.customers["wmRepTags01"]["tags"]["li"]  # as his client shows them, the hub's one included
        sim.rep_tags_customer(app, "li", "wmRepTags01", [t for t in now if t != keen])

        async def one():
            return sorted(await tags()) == ["展会来客", "已报价"]
        await eventually(one, timeout=15, interval=0.3)
        async with hub.sessions() as session:
            rules = [row.details.get("rule") for row in (await session.scalars(select(AuditLog).where(
                AuditLog.action == "contact.tags", AuditLog.entity_id == str(contact_id)))).all()]
        assert rules.count("tagged in WeCom by li") == 2
        # The hub's own tag went to WeCom too (pushed before reading), and stays there.
        assert "展会来客" in sim.customer_tags(app, "wmRepTags01", "li")


async def test_tags_given_before_a_rep_owns_the_customer_wait_and_then_reach_wecom(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        sim.customer_adds(app, "wmNoOwner01", "li", name="卫先生")

        async def owned():
            async with hub.sessions() as session:
                return await session.scalar(select(Conversation).join(Identity, Identity.id == Conversation.identity_id)
                                            .where(Identity.external_id == "wmNoOwner01",
                                                   Conversation.assignee_user_id.is_not(None)))
        conversation = await eventually(owned, timeout=15)
        async with hub.sessions() as session, session.begin():  # as while the add is still being processed
            await session.execute(update(Conversation).where(Conversation.id == conversation.id)
                                  .values(assignee_user_id=None))
        await tg.client.put(f"{tg.hub_base}/api/v1/contacts/{conversation.contact_id}/tags", headers=tg.api(),
                            json={"tags": ["先到的标签"]})
        assert await hub.corp_tags.push() == 0  # nobody to mark it as: it waits
        async with hub.sessions() as session, session.begin():
            await session.execute(update(Conversation).where(Conversation.id == conversation.id)
                                  .values(assignee_user_id=ws.reps["li"]))
        assert await hub.corp_tags.push() == 1
        assert sim.customer_tags(app, "wmNoOwner01", "li") == ["先到的标签"]


async def test_an_operator_renames_and_deletes_a_tag_in_the_panel_and_wecom_follows(database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, hub = ws.tg, ws.wecom_app, ws.tg.hub
        _, expo_id, old_id = await _tagged_customer(ws, 5302)
        async with signed_in(browser, hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.click("#nav a[data-page=contacts]")
            await page.wait_for_selector("#tag-rows tr[data-tag='展会']")
            assert "1" in await page.inner_text("#tag-rows tr[data-tag='展会']")
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("展会2026")))
            await page.click("#tag-rows button[data-rename='展会']")
            await page.wait_for_selector("#tag-rows tr[data-tag='展会2026']")
            group = next(g for g in app.tag_groups.values() if g["group_name"] == "来源")
            assert group["tags"][expo_id] == "展会2026"  # renamed in WeCom too
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.click("#tag-rows button[data-delete-tag='老客户']")
            await page.wait_for_selector("#tag-rows tr[data-tag='老客户']", state="detached")
            assert old_id not in group["tags"]
            assert "企业微信" in await page.inner_text("#tags .hint")
            assert page.script_errors == []


async def _tagged_customer(ws, chat: int) -> tuple[int, str, str]:
    """WeCom has the corp tags 展会 and 老客户 (read into the hub); a Telegram customer carries both:
    their contact id and the two tags' WeCom ids."""
    made = ws.wecom._add_corp_tag(ws.wecom_app, {"group_name": "来源", "tag": [{"name": "展会"}, {"name": "老客户"}]})
    expo_id, old_id = (t["id"] for t in made["tag_group"]["tag"])
    await ws.tg.hub.corp_tags.read_if_due(ws.wecom_account_id, force=True)
    await ws.tg.customer_writes(chat, "hi", first_name="Ada")

    async def contact():
        async with ws.tg.hub.sessions() as session:
            return await session.scalar(select(Identity.contact_id).where(Identity.external_id == str(chat)))
    contact_id = await eventually(contact, timeout=15)
    await ws.tg.client.put(f"{ws.tg.hub_base}/api/v1/contacts/{contact_id}/tags", headers=ws.tg.api(),
                           json={"tags": ["展会", "老客户"]})
    return contact_id, expo_id, old_id
