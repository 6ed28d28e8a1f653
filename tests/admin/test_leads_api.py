"""The leads API: a rep creates and works their own leads and sees nobody else's; an
operator imports a spreadsheet and gets the rejected rows back; a manager reassigns."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import select

from crm_core.models import AuditLog, Role
from tests.admin.test_api import token_for
from tests.fakes.stack import telegram_stack


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def test_reps_work_their_own_leads_and_operators_import_files(stack, tmp_path):
    base, client = f"{stack.hub_base}/api/v1/leads", stack.client
    li, li_id = await token_for(stack, Role.REP, "li")
    wang, _ = await token_for(stack, Role.REP, "wang")
    operator, _ = await token_for(stack, Role.OPERATOR, "op")
    manager, _ = await token_for(stack, Role.MANAGER, "zhao")

    resp = await client.post(base, json={"name": "陈静", "phone": "138 0013 8000", "company": "华为"},
                             headers=stack.api(li))
    assert resp.status_code == 201, resp.text
    lead = resp.json()
    assert (lead["owner_user_id"], lead["company"], lead["source_kind"]) == (li_id, "华为", "api")
    assert [e["kind"] for e in lead["events"]] == ["created", "unrouted", "assigned"]
    bad = await client.post(base, json={"name": "x", "phone": "12"}, headers=stack.api(li))
    assert bad.status_code == 422 and "is not a phone number" in bad.text

    # Wang may not open a lead on Li's customer (it would make the customer his).
    resp = await client.post(base, json={"contact_id": lead["contact_id"]}, headers=stack.api(wang))
    assert resp.status_code == 404 and f"no contact {lead['contact_id']}" in resp.text
    # Wang sees neither the list entry nor the lead itself.
    assert (await client.get(base, headers=stack.api(wang))).json() == []
    assert (await client.get(f"{base}/{lead['id']}", headers=stack.api(wang))).status_code == 404
    resp = await client.post(f"{base}/{lead['id']}/stage", json={"stage": "qualified"}, headers=stack.api(li))
    assert resp.json()["stage"] == "qualified" and resp.json()["first_responded_at"] is not None
    resp = await client.post(f"{base}/{lead['id']}/orders", json={"amount": 12000}, headers=stack.api(li))
    assert (resp.json()["segment"], resp.json()["order_count"]) == ("C", 1)
    resp = await client.post(f"{base}/{lead['id']}/stage", json={"stage": "signed"}, headers=stack.api(li))
    assert resp.status_code == 422 and "stages: new, contacted" in resp.text

    book = openpyxl.Workbook()
    book.active.append(["姓名", "手机", "公司"])
    book.active.append(["陈静", "13800138000", "华为"])     # the same person: no duplicate
    book.active.append(["王强", "13911112222", "小米"])
    book.active.append(["赵六", "000", "某公司"])
    book.save(tmp_path / "expo.xlsx")
    files = {"file": ("expo.xlsx", (tmp_path / "expo.xlsx").read_bytes())}
    assert (await client.post(f"{base}/import", files=files, headers=stack.api(li))).status_code == 403
    resp = await client.post(f"{base}/import", files=files, headers=stack.api(operator))
    body = resp.json()
    assert (body["rows"], body["leads_opened"], body["leads_existing"], body["rejected"]) == (3, 1, 1, 1), body
    assert body["rejected_rows"][0]["row"] == 4 and "'000' is not a phone number" in body["rejected_rows"][0]["reason"]

    # Li leaves: the manager gives the lead to Wang, and the history says so.
    wang_id = (await client.get(f"{stack.hub_base}/api/v1/users", headers=stack.api(manager))).json()
    wang_id = next(u["id"] for u in wang_id if u["username"] == "wang")
    resp = await client.post(f"{base}/{lead['id']}/assign", json={"user_id": wang_id}, headers=stack.api(manager))
    assert resp.json()["owner_user_id"] == wang_id
    assert [e["kind"] for e in resp.json()["events"]][-1] == "assigned"
    assert (await client.get(f"{base}/{lead['id']}", headers=stack.api(wang))).status_code == 200


async def test_a_managers_territories_route_new_leads(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path, lead_routing="round_robin") as stack:
        client, base = stack.client, f"{stack.hub_base}/api/v1"
        manager, _ = await token_for(stack, Role.MANAGER, "zhao")
        _, li_id = await token_for(stack, Role.REP, "li")
        _, wang_id = await token_for(stack, Role.REP, "wang")
        resp = await client.put(f"{base}/users/{wang_id}/territory", headers=stack.api(manager),
                                json={"regions": ["North China", " north china "], "industries": []})
        assert resp.json()["territory"] == {"regions": ["North China"], "industries": []}
        for n in range(3):
            resp = await client.post(f"{base}/leads", headers=stack.api(manager),
                                     json={"name": f"客户{n}", "phone": f"1380013800{n}", "region": "North China"})
            assert resp.json()["owner_user_id"] == wang_id, resp.text
        resp = await client.post(f"{base}/leads", headers=stack.api(manager),
                                 json={"name": "客户9", "phone": "13800138009", "region": "South China"})
        assert resp.json()["owner_user_id"] == li_id  # nobody covers it: the rep who waited longest


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_export_opens_in_a_spreadsheet_shows_only_what_the_user_may_see_and_imports_back(stack):
    base, client = f"{stack.hub_base}/api/v1/leads", stack.client
    li, li_id = await token_for(stack, Role.REP, "li")
    wang, _ = await token_for(stack, Role.REP, "wang")
    operator, _ = await token_for(stack, Role.OPERATOR, "op")
    for name, phone, token in (("陈静", "13800138000", li), ("=HYPERLINK(\"http://x\")", "13911112222", wang)):
        resp = await client.post(base, json={"name": name, "phone": phone, "company": "华为"}, headers=stack.api(token))
        assert resp.status_code == 201, resp.text
    listed = (await client.get(base, headers=stack.api(li))).json()
    assert [(lead["contact_name"], lead["owner_name"]) for lead in listed] == [("陈静", "li")]
    for q, found in (("陈", ["陈静"]), ("13911", ["=HYPERLINK(\"http://x\")"]), ("华为", ["=HYPERLINK(\"http://x\")", "陈静"]),
                     ("nobody", [])):
        rows = (await client.get(base, params={"q": q}, headers=stack.api(operator))).json()
        assert [lead["contact_name"] for lead in rows] == found, q
    card = (await client.get(f"{stack.hub_base}/api/v1/contacts/{listed[0]['contact_id']}", headers=stack.api(li))).json()
    assert (card["phones"], card["emails"], card["tags"]) == (["+8613800138000"], [], [])
    # Li owns the lead, so he may open the person (who has no conversation yet); Wang may not.
    assert (await client.get(f"{stack.hub_base}/api/v1/contacts/{listed[0]['contact_id']}",
                             headers=stack.api(wang))).status_code == 404

    resp = await client.get(f"{base}/export?language=zh", headers=stack.api(operator))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert 'filename="leads-' in resp.headers["content-disposition"]
    assert resp.content.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese only with the BOM
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["线索编号", "姓名", "手机", "邮箱", "公司"]
    assert [(r[1], r[2], r[9], r[13]) for r in rows[1:]] == [
        ("陈静", "+8613800138000", "new", "li"),
        ("'=HYPERLINK(\"http://x\")", "+8613911112222", "new", "wang")]  # never run as a formula

    mine = (await client.get(f"{base}/export", headers=stack.api(li))).content.decode("utf-8-sig")
    assert "陈静" in mine and "HYPERLINK" not in mine and mine.startswith("lead,name,phone,email,company")
    assert (await client.get(f"{base}/export?status=closed", headers=stack.api(operator))).text.count("\n") == 1

    # The export imports back: the same people, nobody twice.
    files = {"file": ("leads.csv", resp.content)}
    report = (await client.post(f"{base}/import", files=files, headers=stack.api(operator))).json()
    assert (report["rows"], report["contacts_created"], report["contacts_matched"], report["rejected"]) == \
        (2, 0, 2, 0), report
    async with stack.hub.sessions() as session:
        exports = (await session.scalars(select(AuditLog).where(AuditLog.action == "lead.export")
                                         .order_by(AuditLog.id))).all()
    assert [e.details for e in exports] == [{}, {"owner_user_id": li_id}, {"status": "closed"}]
    assert (await client.get(f"{base}/pipeline", headers=stack.api(li))).json()["stages"][0] == "new"
