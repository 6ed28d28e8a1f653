"""Deals and accounts: a lead converted to a deal keeps its history and makes its company an
account; stages move with their probability, lost needs a reason, won becomes an order (the
segments follow) and the team hears; the board and the forecast add up; a rep works their
own from WeCom; the account page gathers everything about the company."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.deals import service as deals
from crm_core.deals.service import DealRules
from crm_core.leads import service as leads
from crm_core.models import Account, AccountContact, AuditLog, Conversation, Lead, LeadEvent, Role, Team, User
from tests.admin.test_api import token_for
from tests.bots.test_rep_workspace import claimed_by
from tests.fakes.panel import signed_in
from tests.fakes.stack import workspace_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def lead_for(ws, conv: int, rep: str, company: str) -> int:
    async with ws.tg.hub.sessions() as session, session.begin():
        row = await session.get(Conversation, conv)
        owner = await session.get(User, ws.reps[rep])
        opened = await leads.open_lead(row.contact_id, source_kind="api", rules=leads.LeadRules(), owner=owner,
                                       company=company, industry="retail", region="华东", db_session=session)
        opened.lead.owner_user_id = owner.id
        return opened.lead.id


async def test_a_lead_becomes_a_deal_that_is_won_with_its_order_segment_and_news(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        async with tg.hub.sessions() as session, session.begin():
            team = Team(name="East", manager_user_id=ws.reps["boss"], channels=[])
            session.add(team)
            await session.flush()
            for rep in ("li", "wang"):
                (await session.get(User, ws.reps[rep])).team_id = team.id
        conv = await claimed_by(ws, "li", 9001, "We need 40 seats", "Kay")
        lead_id = await lead_for(ws, conv, "li", "Acme Retail")
        li_token, _ = await token_for(tg, Role.REP, "li")
        api = f"{tg.hub_base}/api/v1"
        made = await tg.client.post(f"{api}/leads/{lead_id}/deal", headers=tg.api(li_token),
                                    json={"amount": 120000, "expected_close": "2031-03-15"})
        assert made.status_code == 201, made.text
        deal = made.json()
        assert (deal["stage"], deal["probability"], deal["account_name"], deal["contact_name"], deal["lead_id"]) == \
            ("qualification", 10, "Acme Retail", "Kay", lead_id)
        again = await tg.client.post(f"{api}/leads/{lead_id}/deal", headers=tg.api(li_token), json={})
        assert again.status_code == 422 and "already has an open deal" in again.text
        async with tg.hub.sessions() as session:
            account = await session.scalar(select(Account).where(Account.name == "Acme Retail"))
            assert (account.industry, account.region, account.owner_user_id) == ("retail", "华东", ws.reps["li"])
            contact_id = await session.scalar(select(Conversation.contact_id).where(Conversation.id == conv))
            assert (await session.get(AccountContact, contact_id)).account_id == account.id
            kinds = (await session.scalars(select(LeadEvent.kind).where(LeadEvent.lead_id == lead_id))).all()
            assert "converted" in kinds and "created" in kinds  # the lead keeps its history

        # Moving on: an unknown stage and a loss without a reason are refused with the fix.
        url = f"{api}/deals/{deal['id']}"
        for body, words in (({"stage": "maybe"}, "stages: qualification"), ({"stage": "lost"}, "say why")):
            resp = await tg.client.patch(url, headers=tg.api(li_token), json=body)
            assert resp.status_code == 422 and words in resp.text, resp.text
        resp = await tg.client.patch(url, headers=tg.api(li_token), json={"stage": "negotiation", "next_step": "demo"})
        assert resp.json()["probability"] == 75
        forecast = (await tg.client.get(f"{api}/deals/forecast", headers=tg.api())).json()
        assert forecast["by_month"] == [{"month": "2031-03", "currency": "CNY", "amount": 120000, "weighted": 90000}]
        board = (await tg.client.get(f"{api}/deals/board", headers=tg.api())).json()
        column = next(c for c in board if c["stage"] == "negotiation")
        assert column["count"] == 1 and column["amount"] == {"CNY": 120000} and column["weighted"] == {"CNY": 90000}

        # Won: the lead's order history and segment, the account's segment, and the team's news.
        mark = len(ws.rep_inbox("wang"))
        resp = await tg.client.patch(url, headers=tg.api(li_token), json={"stage": "won"})
        assert resp.json()["status"] == "won" and resp.json()["closed_at"]
        async with tg.hub.sessions() as session:
            lead = await session.get(Lead, lead_id)
            assert (lead.order_total, lead.order_count, lead.segment) == (120000, 1, "A")
            assert (await session.get(Account, account.id)).segment == "A"
            actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "deal"))).all()
            assert actions == ["deal.create", "deal.update", "deal.stage", "deal.stage"]
        news = await ws.rep_receives("wang", "Acme Retail", after=mark)
        assert "120,000 CNY" in news["text"] and "Li Lei" in news["text"]
        await ws.rep_receives("boss", "Acme Retail")
        assert not any("120,000" in (m.get("text") or "") for m in ws.rep_inbox("li"))  # not to the winner
        closed = await tg.client.patch(url, headers=tg.api(li_token), json={"amount": 1})
        assert closed.status_code == 422 and "kept as it closed" in closed.text


async def test_accounts_gather_a_companys_people_deals_and_tasks_for_who_may_see_them(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        api = f"{tg.hub_base}/api/v1"
        li_token, _ = await token_for(tg, Role.REP, "li")
        wang_token, _ = await token_for(tg, Role.REP, "wang")
        group = (await tg.client.post(f"{api}/accounts", headers=tg.api(), json={"name": "Zenith Group"})).json()
        sub = await tg.client.post(f"{api}/accounts", headers=tg.api(li_token),
                                   json={"name": "Zenith Shanghai", "size": "51-200",
                                         "parent_account_id": group["id"]})
        assert sub.status_code == 404  # Li is not part of the group's account
        sub = (await tg.client.post(f"{api}/accounts", headers=tg.api(li_token),
                                    json={"name": "Zenith Shanghai", "size": "51-200"})).json()
        assert (await tg.client.post(f"{api}/accounts", headers=tg.api(li_token),
                                     json={"name": " zenith  shanghai"})).status_code == 409
        resp = await tg.client.patch(f"{api}/accounts/{sub['id']}", headers=tg.api(),
                                     json={"parent_account_id": group["id"]})
        assert resp.json()["parent_account_id"] == group["id"]
        resp = await tg.client.patch(f"{api}/accounts/{group['id']}", headers=tg.api(),
                                     json={"parent_account_id": sub["id"]})
        assert resp.status_code == 422 and "its own parent" in resp.text
        conv = await claimed_by(ws, "li", 9002, "Price list please", "Lu")
        async with tg.hub.sessions() as session:
            contact_id = await session.scalar(select(Conversation.contact_id).where(Conversation.id == conv))
        resp = await tg.client.patch(f"{api}/accounts/{sub['id']}", headers=tg.api(wang_token),
                                     json={"add_contact_ids": [contact_id]})
        assert resp.status_code == 404  # neither the account nor Lu is Wang's
        resp = await tg.client.patch(f"{api}/accounts/{sub['id']}", headers=tg.api(li_token),
                                     json={"add_contact_ids": [contact_id]})
        assert resp.status_code == 200, resp.text
        deal = (await tg.client.post(f"{api}/deals", headers=tg.api(li_token), json={
            "title": "Price list order", "contact_id": contact_id,
            "products": [{"name": "X200", "quantity": 3, "price": 1999}]})).json()
        assert deal["amount"] == 5997 and deal["account_id"] == sub["id"]
        task = await tg.client.post(f"{api}/tasks", headers=tg.api(li_token), json={
            "title": "send the price list", "due_at": "2031-01-02T10:00:00+08:00", "contact_id": contact_id})
        assert task.status_code == 201
        page = (await tg.client.get(f"{api}/accounts/{sub['id']}", headers=tg.api(li_token))).json()
        assert [c["name"] for c in page["contacts"]] == ["Lu"]
        assert [c["id"] for c in page["conversations"]] == [conv]
        assert [d["title"] for d in page["deals"]] == ["Price list order"]
        assert [t["title"] for t in page["tasks"]] == ["send the price list"]
        group_page = (await tg.client.get(f"{api}/accounts/{group['id']}", headers=tg.api())).json()
        assert [a["name"] for a in group_page["subsidiaries"]] == ["Zenith Shanghai"]
        assert (await tg.client.get(f"{api}/accounts/{sub['id']}", headers=tg.api(wang_token))).status_code == 404
        assert [a["name"] for a in (await tg.client.get(f"{api}/accounts", headers=tg.api(wang_token))).json()] == []
        assert (await tg.client.get(f"{api}/deals", headers=tg.api(wang_token))).json() == []


@sqlite_only
async def test_a_rep_moves_their_deal_from_wecom(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        conv = await claimed_by(ws, "li", 9003, "Let's talk about the contract", "Mo")
        lead_id = await lead_for(ws, conv, "li", "Mo Trading")
        li_token, _ = await token_for(tg, Role.REP, "li")
        deal = (await tg.client.post(f"{tg.hub_base}/api/v1/leads/{lead_id}/deal", headers=tg.api(li_token),
                                     json={"amount": 30000})).json()
        mark = len(ws.rep_inbox("li"))
        await ws.rep_writes("li", "/deal")
        await ws.rep_receives("li", f"D{deal['id']} · Mo Trading · Mo · 30,000 CNY · qualification (10%)", after=mark)
        # One deal as a card: its buttons move it on.
        await ws.rep_writes("li", f"/deal D{deal['id']}")
        card = await ws.rep_receives("li", f"/deal {deal['id']} amount 50000", after=mark)
        assert [b["key"] for b in card["card"]["button_list"]] == [
            f"deal_next:{deal['id']}", f"deal_won:{deal['id']}", f"deal_lost:{deal['id']}"]
        await ws.rep_clicks("li", f"deal_next:{deal['id']}")
        await ws.rep_receives("li", "needs analysis (25%)", after=mark)
        await ws.rep_writes("li", f"/deal {deal['id']} amount 45,000")
        await ws.rep_receives("li", "45,000 CNY", after=mark)
        await ws.rep_writes("li", f"/商机 {deal['id']} 阶段 方案报价")  # a stage by its Chinese name
        await ws.rep_receives("li", "方案报价 (50%)", after=mark)
        await ws.rep_writes("li", f"/deal {deal['id']} lost")
        await ws.rep_receives("li", "say why it was lost", after=mark)
        await ws.rep_writes("wang", f"/deal {deal['id']} won")
        await ws.rep_receives("wang", f"There is no deal D{deal['id']} of yours")
        await ws.rep_writes("li", f"/deal {deal['id']} lost 预算砍了")
        await ws.rep_receives("li", "丢单 (0%)", after=mark)  # said in Chinese: answered in Chinese
        got = (await tg.client.get(f"{tg.hub_base}/api/v1/deals/{deal['id']}", headers=tg.api(li_token))).json()
        assert (got["status"], got["lost_reason"], got["amount"]) == ("lost", "预算砍了", 45000)
        assert dt.datetime.fromisoformat(got["closed_at"])
        # Lost by buttons: the card asks why, with the common reasons, in the rep's language.
        other = (await tg.client.post(f"{tg.hub_base}/api/v1/deals", headers=tg.api(li_token),
                                      json={"title": "Mo Trading, part 2", "amount": 8000})).json()
        await ws.rep_writes("li", f"/商机 {other['id']}")
        await ws.rep_receives("li", f"D{other['id']} · Mo Trading, part 2", after=mark)
        await ws.rep_clicks("li", f"deal_lost:{other['id']}")
        why = await ws.rep_receives("li", f"D{other['id']} 为什么丢单", after=mark)
        assert [b["key"] for b in why["card"]["button_list"]] == [
            f"deal_lost_{reason}:{other['id']}" for reason in ("price", "competitor", "budget", "silent", "timing")]
        await ws.rep_clicks("li", f"deal_lost_competitor:{other['id']}")
        await ws.rep_receives("li", "Mo Trading, part 2 · 8,000 CNY · 丢单 (0%)", after=mark)
        got = (await tg.client.get(f"{tg.hub_base}/api/v1/deals/{other['id']}", headers=tg.api(li_token))).json()
        assert (got["status"], got["lost_reason"]) == ("lost", "选了竞品")


@sqlite_only
async def test_in_the_panel_a_converted_lead_moves_on_the_kanban_and_into_the_forecast(database_url, tmp_path,
                                                                                      browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        conv = await claimed_by(ws, "li", 9004, "We want the enterprise plan", "Nia")
        await lead_for(ws, conv, "li", "Nia Foods")
        async with signed_in(browser, tg.hub, tg.hub_base, "li", Role.REP, locale="en-GB") as page:
            await page.click("#nav a[data-page=leads]")
            await page.click("#lead-rows button[data-convert]")
            card = page.locator(".kanban-column[data-stage=qualification] .deal-card", has_text="Nia Foods · Nia")
            await card.wait_for()
            deal_id = await card.get_attribute("data-deal")
            await card.drag_to(page.locator(".kanban-column[data-stage=negotiation]"))
            moved = page.locator(f".kanban-column[data-stage=negotiation] .deal-card[data-deal='{deal_id}']")
            await moved.wait_for()
            assert "1 ·" in await page.inner_text(".kanban-column[data-stage=negotiation] .column-total")
            # An amount and a close date (the API, as the rep bot would), then the forecast shows it weighted.
            resp = await page.request.patch(f"/api/v1/deals/{deal_id}", data={"amount": 80000,
                                                                               "expected_close": "2031-05-20"},
                                            headers={"X-CSRF-Token": await page.get_attribute(
                                                "meta[name=csrf-token]", "content")})
            assert resp.ok, await resp.text()
            await page.reload()
            row = page.locator("#forecast-months tr[data-month='2031-05']")
            await row.wait_for()
            assert "80,000 CNY" in await row.inner_text() and "60,000 CNY" in await row.inner_text()
            assert "Li Lei" in await page.inner_text("#forecast-owners")
            # The account page gathers the company.
            await page.goto("/admin#/accounts")
            await page.click("#account-rows a:has-text('Nia Foods')")
            await page.wait_for_selector("#account-deals:has-text('Nia Foods · Nia')")
            assert "Nia" in await page.inner_text("#account-contacts")
            assert page.script_errors == []


def test_a_stage_the_company_adds_is_named_in_both_languages():
    rules = DealRules.parse("qualification:10，demo：40：产品演示：Product demo, proposal:60,won:100,lost:0")
    assert rules.names == ("qualification", "demo", "proposal", "won", "lost")
    assert rules.names_of("demo") == {"zh": "产品演示", "en": "Product demo"}
    assert rules.names_of("qualification") == {"zh": "初步接洽", "en": "qualification"}  # the default's own
    assert [deals.stage_named(words, rules) for words in ("产品演示", "product  demo", "DEMO")] == ["demo"] * 3
    for bad in ("qualification:10,demo:40:产品演示,won:100,lost:0", "qualification:10,demo:40::Demo,won:100,lost:0"):
        with pytest.raises(ValueError, match="中文名:English name"):
            DealRules.parse(bad)


@sqlite_only
async def test_a_rep_moves_a_deal_to_a_stage_the_company_added_by_its_chinese_name(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        saved = await tg.client.put(f"{tg.hub_base}/api/v1/settings", headers=tg.api(), json={"changes": {
            "deal_stages": "qualification:10,demo:40:产品演示:Product demo,proposal:60,won:100,lost:0"}})
        assert saved.status_code == 200, saved.text
        li_token, _ = await token_for(tg, Role.REP, "li")
        deal = (await tg.client.post(f"{tg.hub_base}/api/v1/deals", headers=tg.api(li_token),
                                     json={"title": "Acme pilot", "amount": 12000})).json()
        mark = len(ws.rep_inbox("li"))
        await ws.rep_writes("li", f"/商机 {deal['id']} 阶段 产品演示")
        await ws.rep_receives("li", "Acme pilot · 12,000 CNY · 产品演示 (40%)", after=mark)
        board = (await tg.client.get(f"{tg.hub_base}/api/v1/deals/board", headers=tg.api(li_token))).json()
        [demo] = [column for column in board if column["stage"] == "demo"]
        assert demo["names"] == {"zh": "产品演示", "en": "Product demo"}
        assert demo["deals"][0]["stage_names"] == {"zh": "产品演示", "en": "Product demo"}
