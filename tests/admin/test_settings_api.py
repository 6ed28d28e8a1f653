"""Settings changed from the panel while the hub runs: checked as at start, applied at once
in this process and by every other on its next reload, audited, reset to the environment's."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bots.customer import CustomerBot
from bots.leads import LeadCapture
from bots.rep.workspace import RepWorkspace
from crm_core.leads import service as leads
from crm_core.models import AuditLog, Contact, Role
from crm_core.people import users
from hub.context import Hub, every_handler
from tests.fakes.stack import make_settings, telegram_stack


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def test_saved_settings_apply_here_at_once_and_in_another_process_on_reload(stack, database_url, tmp_path):
    other = Hub(make_settings(database_url, tmp_path / "other"))
    try:
        await other.reload_settings()
        assert other.sla.first_response == dt.timedelta(minutes=30)
        changes = {"sla_first_response_minutes": 5, "sla_escalate_minutes": 20, "lead_routing": "round_robin",
                   "marketing_cap_count": 1, "marketing_quiet_hours": "22:00-07:00",
                   "opinion_products": {"X200": ["x200", "X200充电器"]},
                   "compliance_terms": {"refund": ["全额退款", "full refund"]}}
        resp = await stack.client.put(f"{stack.hub_base}/api/v1/settings", json={"changes": changes},
                                      headers=stack.api())
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["values"]["lead_routing"] == "round_robin" and body["environment"]["lead_routing"] == "claim"
        assert sorted(body["changed_in_panel"]) == sorted(changes)
        for hub in (stack.hub, other):
            if hub is other:
                assert await other.reload_settings()
            assert hub.sla.first_response == dt.timedelta(minutes=5)
            assert hub.lead_sla.rules.routing == "round_robin"
            assert hub.dispatcher.policy.marketing.cap_count == 1
            assert [w for _, w, _ in hub.rep_review.compliance.rules] == ["全额退款", "full refund"]
            assert hub.opinion.products.products("新买的X200充电器坏了") == ["X200"]
            assert {type(h): h for h in hub.worker.handlers}[LeadCapture].rules.routing == "round_robin"
            assert {type(h): h for h in every_handler(hub.worker.handlers)}[CustomerBot].lead_rules.routing == \
                "round_robin"
        assert not await other.reload_settings()  # nothing new

        # Back to the environment's value.
        resp = await stack.client.put(f"{stack.hub_base}/api/v1/settings",
                                      json={"changes": {"lead_routing": None}}, headers=stack.api())
        assert resp.json()["values"]["lead_routing"] == "claim"
        assert await other.reload_settings() and other.lead_sla.rules.routing == "claim"
    finally:
        await other.close()
    async with stack.hub.sessions() as session:
        audit = (await session.scalars(select(AuditLog).where(AuditLog.action == "settings.update")
                                       .order_by(AuditLog.id))).all()
    assert audit[-1].details == {"changes": {"lead_routing": None}, "before": {"lead_routing": "round_robin"}}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("changes", "words"), [
    ({"sla_first_response_minutes": 60, "sla_escalate_minutes": 30}, "must not be shorter"),
    ({"marketing_quiet_hours": "25:00-08:00"}, "marketing_quiet_hours"),
    ({"lead_routing": "random"}, "lead_routing"),
    ({"database_url": "sqlite:///x"}, "not settable here"),
    ({}, "nothing to change"),
])
async def test_bad_values_are_refused_with_the_reason_and_nothing_changes(stack, changes, words):
    resp = await stack.client.put(f"{stack.hub_base}/api/v1/settings", json={"changes": changes},
                                  headers=stack.api())
    assert resp.status_code == 422 and words in resp.json()["detail"], resp.text
    assert stack.hub.sla.first_response == dt.timedelta(minutes=30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_lead_scoring_rules_change_live_audited_and_bad_ones_are_refused(stack):
    url = f"{stack.hub_base}/api/v1/settings"
    scoring = [{"event": "message", "points": 5, "repeatable": True, "cap": 15},
               {"event": "buying_signal", "points": 40, "repeatable": False, "cap": None}]
    resp = await stack.client.put(url, json={"changes": {"lead_scoring": scoring}}, headers=stack.api())
    assert resp.status_code == 200, resp.text
    assert resp.json()["values"]["lead_scoring"] == scoring
    assert len(resp.json()["environment"]["lead_scoring"]) == 6  # the defaults, beside
    capture = {type(h): h for h in stack.hub.worker.handlers}[LeadCapture]
    assert capture.rules.rule("message") == leads.ScoringRule("message", 5, repeatable=True, cap=15)
    assert capture.rules.rule("order") is None
    for bad, words in (([{"event": "visit", "points": 5}], "unknown event 'visit'"),
                       ([{"event": "order", "points": 5, "cap": 9}], "make it repeatable"),
                       ([{"event": "order", "points": 5000}], "lead_scoring.0.points")):
        resp = await stack.client.put(url, json={"changes": {"lead_scoring": bad}}, headers=stack.api())
        assert resp.status_code == 422 and words in resp.json()["detail"], resp.text
    assert capture.rules.rule("message").cap == 15
    async with stack.hub.sessions() as session:
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "settings.update")
                                     .order_by(AuditLog.id.desc()))
    assert audit.details["changes"] == {"lead_scoring": scoring}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_managers_read_the_settings_and_only_admins_change_them(stack):
    async with stack.hub.sessions() as session, session.begin():
        manager = await users.get_or_create("mia", Role.MANAGER, db_session=session)
        token = await users.create_token(manager, name="t", db_session=session)
    read = await stack.client.get(f"{stack.hub_base}/api/v1/settings", headers=stack.api(token))
    assert read.status_code == 200 and read.json()["values"]["sla_first_response_minutes"] == 30
    put = await stack.client.put(f"{stack.hub_base}/api/v1/settings", headers=stack.api(token),
                                 json={"changes": {"sla_first_response_minutes": 10}})
    assert put.status_code == 403


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_pipeline_stages_change_live_but_never_strand_an_open_lead(stack):
    async with stack.hub.sessions() as session, session.begin():
        contact = Contact(display_name="Lin")
        session.add(contact)
        await session.flush()
        opened = await leads.open_lead(contact.id, source_kind="api", rules=stack.hub.settings.lead_rules,
                                       db_session=session)
        await leads.set_stage(opened.lead, "proposal", rules=stack.hub.settings.lead_rules, actor=None,
                              db_session=session)
    url = f"{stack.hub_base}/api/v1/settings"

    resp = await stack.client.put(url, json={"changes": {"lead_stages": "new,demo,won,lost"}}, headers=stack.api())
    assert resp.status_code == 422, resp.text
    assert "open leads are still in proposal (1 open leads)" in resp.json()["detail"]
    resp = await stack.client.put(url, json={"changes": {"lead_stages": "won,new,lost"}}, headers=stack.api())
    assert resp.status_code == 422 and "cannot be won" in resp.json()["detail"], resp.text
    assert stack.hub.settings.lead_rules.stages[1] == "contacted"

    resp = await stack.client.put(url, json={"changes": {"lead_stages": "new,demo,proposal,won,lost"}},
                                  headers=stack.api())
    assert resp.status_code == 200, resp.text
    pipeline = ("new", "demo", "proposal", "won", "lost")
    assert stack.hub.lead_sla.rules.stages == pipeline
    assert {type(h): h for h in stack.hub.worker.handlers}[RepWorkspace].lead_rules.stages == pipeline
    funnel = (await stack.client.get(f"{stack.hub_base}/api/v1/dashboard?days=1", headers=stack.api())).json()
    assert [row["stage"] for row in funnel["funnel"]] == list(pipeline)
