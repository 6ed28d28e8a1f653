"""在职 / 离职继承 through the API and the WeCom simulator: handing a rep's conversations to a colleague
moves their WeCom customers in WeCom too (transfer_customer), followed until each ends (done,
refused, or refused by WeCom with its reason); customers of someone who already left WeCom are
listed (get_unassigned_list) and handed to a rep in one action."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Conversation, Identity, Role
from crm_core.people import users
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _owned_by(ws, external: str) -> int | None:
    async with ws.tg.hub.sessions() as session:
        return await session.scalar(select(Conversation.assignee_user_id)
                                    .join(Identity, Identity.id == Conversation.identity_id)
                                    .where(Identity.external_id == external))


async def test_a_reps_customers_move_in_wecom_with_the_handover_and_each_outcome_is_shown(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        for external, name in (("wmMove0001", "甲"), ("wmMove0002", "乙"), ("wmMove0003", "丙")):
            sim.customer_adds(app, external, "li", name=name)

            async def owned(external=external):
                return await _owned_by(ws, external) == ws.reps["li"]
            await eventually(owned, timeout=15)
        # The third one deleted Li Lei in WeCom meanwhile (WeCom will say so per customer).
        app.customers["wmMove0003"]["follow"].pop("li")

        resp = await tg.client.post(f"{tg.hub_base}/api/v1/users/{ws.reps['li']}/handover", headers=tg.api(),
                                    json={"to_user_id": ws.reps["wang"], "deactivate": False})
        assert resp.status_code == 200, resp.text
        assert resp.json()["wecom_transfers"] == 3
        assert [(t["handover"], t["takeover"], t["external"], t["resigned"]) for t in app.transfers] == [
            ("li", "wang", "wmMove0001", False), ("li", "wang", "wmMove0002", False)]

        async def statuses():
            rows = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-transfers", headers=tg.api())).json()
            return {r["external_userid"]: (r["status"], r["reason"], r["contact_name"]) for r in rows}
        assert await statuses() == {
            "wmMove0001": ("waiting", None, "甲"), "wmMove0002": ("waiting", None, "乙"),
            "wmMove0003": ("failed", "not a customer of the departing rep in WeCom (84061)", "丙")}

        # The customers' 24 hours pass: one accepts, one refuses; the next check reads it.
        sim.settle_transfers(app, refused={"wmMove0002"})
        assert await tg.hub.succession.run_once() == 2
        after = await statuses()
        assert after["wmMove0001"][0] == "done" and after["wmMove0002"][:2] == ("refused",
                                                                                 "the customer refused to move")
        assert "wang" in app.customers["wmMove0001"]["follow"] and "li" in app.customers["wmMove0002"]["follow"]
        assert await tg.hub.succession.run_once() == 0  # nothing left to follow


async def test_customers_of_someone_who_left_are_listed_and_handed_to_a_rep(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        sim.customer_adds(app, "wmLeft00001", "boss", name="丁")
        sim.customer_adds(app, "wmLeft00002", "boss", name="戊")

        async def known():
            return await _owned_by(ws, "wmLeft00002")
        await eventually(known, timeout=15)
        chat_id = sim.group_created(app, "boss", "赵总的客户群", {"wmLeft00001": "丁"})
        await tg.hub.groups.run_once(everything=True)
        sim.member_leaves(app, "boss")
        listed = await tg.client.get(f"{tg.hub_base}/api/v1/customer-transfers/unassigned",
                                     params={"account_id": ws.wecom_account_id}, headers=tg.api())
        assert listed.status_code == 200, listed.text
        assert sorted((c["handover_userid"], c["external_userid"], c["contact_name"]) for c in listed.json()) == [
            ("boss", "wmLeft00001", "丁"), ("boss", "wmLeft00002", "戊")]

        # Unknown customers are refused with the ids named; nothing is asked of WeCom.
        bad = await tg.client.post(f"{tg.hub_base}/api/v1/customer-transfers/unassigned", headers=tg.api(),
                                   json={"channel_account_id": ws.wecom_account_id, "to_user_id": ws.reps["li"],
                                         "external_userids": ["wmNotThere01"]})
        assert bad.status_code == 422 and "wmNotThere01" in bad.text and app.transfers == []

        handed = await tg.client.post(f"{tg.hub_base}/api/v1/customer-transfers/unassigned", headers=tg.api(),
                                      json={"channel_account_id": ws.wecom_account_id, "to_user_id": ws.reps["li"]})
        assert handed.status_code == 201, handed.text
        assert {(r["external_userid"], r["status"], r["resigned"]) for r in handed.json()} == {
            ("wmLeft00001", "waiting", True), ("wmLeft00002", "waiting", True), (chat_id, "done", True)}
        assert app.groups[chat_id]["owner"] == "li"  # their group too (groupchat/transfer)
        assert await _owned_by(ws, "wmLeft00001") == ws.reps["li"]  # in the hub at once
        # While they move, WeCom no longer lists them as unassigned.
        again = await tg.client.get(f"{tg.hub_base}/api/v1/customer-transfers/unassigned",
                                    params={"account_id": ws.wecom_account_id}, headers=tg.api())
        assert again.json() == []
        sim.settle_transfers(app)
        assert await tg.hub.succession.run_once() == 2
        rows = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-transfers", headers=tg.api(),
                                    params={"status": "done"})).json()
        assert {r["external_userid"] for r in rows} == {"wmLeft00001", "wmLeft00002", chat_id}
        # A rep who is not on the WeCom app cannot take them.
        sim.customer_adds(app, "wmLeft00003", "wang", name="己")
        sim.member_leaves(app, "wang")
        await eventually(lambda: _owned_by(ws, "wmLeft00003"), timeout=15)
        async with tg.hub.sessions() as session, session.begin():
            outsider = await users.get_or_create("nohandle", Role.REP, db_session=session)
            outsider_id = outsider.id
        refused = await tg.client.post(f"{tg.hub_base}/api/v1/customer-transfers/unassigned", headers=tg.api(),
                                       json={"channel_account_id": ws.wecom_account_id, "to_user_id": outsider_id})
        assert refused.status_code == 422 and "link their WeCom userid" in refused.text


async def test_the_users_page_shows_each_transfer_and_hands_over_customers_of_someone_who_left(
        database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim = ws.tg, ws.wecom_app, ws.wecom
        sim.customer_adds(app, "wmPanel0001", "li", name="庚")
        sim.customer_adds(app, "wmPanel0002", "li", name="辛")
        sim.customer_adds(app, "wmPanel0003", "boss", name="壬")
        for external in ("wmPanel0001", "wmPanel0002", "wmPanel0003"):
            await eventually(lambda external=external: _owned_by(ws, external), timeout=15)
        app.customers["wmPanel0002"]["follow"].pop("li")
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/users/{ws.reps['li']}/handover", headers=tg.api(),
                                    json={"to_user_id": ws.reps["wang"], "deactivate": False})
        assert resp.json()["wecom_transfers"] == 2
        sim.member_leaves(app, "boss")

        async with signed_in(browser, tg.hub, tg.hub_base, "ada", Role.ADMIN) as page:
            await page.wait_for_selector("#nav a")
            await page.goto(f"{tg.hub_base}/admin#/users")
            await page.wait_for_selector("#transfers-table tr[data-external]")
            waiting = await page.inner_text("#transfers-table tr[data-external=wmPanel0001]")
            refused = await page.inner_text("#transfers-table tr[data-external=wmPanel0002]")
            assert "庚" in waiting and "等待客户接受" in waiting
            assert "辛" in refused and "企业微信拒绝" in refused
            # WeCom's refusal, said in Chinese
            assert "企业微信 84061：该客户在企业微信中已不是原跟进人的客户" in refused

            # Customers of Zhao, who left: listed, and handed to Li Lei from the page.
            await page.click("#list-unassigned")
            await page.wait_for_selector("#unassigned-table")
            assert "壬" in await page.inner_text("#unassigned-table")
            await page.select_option("#unassigned-form select[name=heir]", str(ws.reps["li"]))
            await page.click("#hand-unassigned")
            await page.wait_for_selector("#transfers-table tr[data-external=wmPanel0003]")
            assert await _owned_by(ws, "wmPanel0003") == ws.reps["li"]
            last = app.transfers[-1]
            assert (last["external"], last["takeover"], last["resigned"]) == ("wmPanel0003", "li", True)
            assert page.script_errors == []


async def test_the_customer_groups_of_a_rep_handed_over_get_the_heir_as_owner(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app, sim, hub = ws.tg, ws.wecom_app, ws.wecom, ws.tg.hub
        chat_id = sim.group_created(app, "li", "李雷的客户群", {"wmGrpMove01": "甲"})
        await hub.groups.run_once(everything=True)
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/users/{ws.reps['li']}/handover", headers=tg.api(),
                                    json={"to_user_id": ws.reps["wang"], "deactivate": False})
        assert resp.status_code == 200, resp.text
        assert app.groups[chat_id]["owner"] == "wang"  # moved at once (groupchat/onjob_transfer)
        rows = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-transfers", headers=tg.api())).json()
        [group] = [r for r in rows if r["is_group"]]
        assert (group["external_userid"], group["status"], group["contact_name"]) == (chat_id, "done", "李雷的客户群")

        async def owner():
            await hub.groups.run_once()
            groups = (await tg.client.get(f"{tg.hub_base}/api/v1/customer-groups", headers=tg.api())).json()
            return groups[0]["owner_userid"] == "wang"
        await eventually(owner, timeout=15, interval=0.3)  # the change_owner event, read again
