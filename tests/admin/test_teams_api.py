"""Teams as an admin builds them and a customer feels them: the team that takes a
channel gets its new leads first, its manager hears of reps without one of their own,
and a user's role, manager and team are changed (audited) without self-lockout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.leads import service as leads
from crm_core.models import AuditLog, Contact, Conversation, Lead, Role, User, UserHandle
from crm_core.people import reps
from tests.admin.test_api import token_for
from tests.fakes.stack import eventually, telegram_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_team_takes_the_new_leads_of_its_channel_and_its_manager_hears_of_them(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path, lead_routing="round_robin") as stack:
        client, base = stack.client, f"{stack.hub_base}/api/v1"
        manager_token, mia = await token_for(stack, Role.MANAGER, "mia")
        rep_token, li = await token_for(stack, Role.REP, "li")    # waited longest: round-robin's pick
        _, wang = await token_for(stack, Role.REP, "wang")

        resp = await client.post(f"{base}/teams", headers=stack.api(),
                                 json={"name": "Telegram desk", "manager_user_id": mia, "channels": ["telegram"]})
        assert resp.status_code == 201, resp.text
        team = resp.json()
        for body, status, words in (
                ({"name": "telegram DESK"}, 409, "exists already"),
                ({"name": "Fax", "channels": ["fax"]}, 422, "fax not a channel kind"),
                ({"name": "Odd", "manager_user_id": wang}, 422, "choose an active manager")):
            resp = await client.post(f"{base}/teams", headers=stack.api(), json=body)
            assert resp.status_code == status and words in resp.json()["detail"], resp.text
        assert (await client.post(f"{base}/teams", headers=stack.api(rep_token), json={"name": "x"})).status_code == 403
        resp = await client.patch(f"{base}/users/{wang}", headers=stack.api(), json={"team_id": team["id"]})
        assert resp.status_code == 200 and resp.json()["team_id"] == team["id"], resp.text
        listed = (await client.get(f"{base}/teams", headers=stack.api(manager_token))).json()
        assert [(t["name"], t["members"]) for t in listed] == [("Telegram desk", 1)]

        # A Telegram customer's lead goes to the team's rep, though Li has waited longer;
        # a lead from a spreadsheet (no channel) goes round-robin among everyone.
        await stack.customer_writes(771, "hello", first_name="Zhou")

        async def written():
            async with stack.hub.sessions() as session:
                return await session.scalar(select(Conversation.contact_id))
        contact_id = await eventually(written)
        async with stack.hub.sessions() as session, session.begin():
            rules = stack.hub.settings.lead_rules
            opened = await leads.open_lead(contact_id, source_kind="signal", rules=rules, db_session=session)
            assert (opened.lead.owner_user_id, opened.routed_why) == (wang, "team, round_robin")
            sheet = Contact(display_name="From a sheet")
            session.add(sheet)
            await session.flush()
            imported = await leads.open_lead(sheet.id, source_kind="import", rules=rules, db_session=session)
            assert imported.lead.owner_user_id == li

            # While nobody owns a Telegram customer, the claim and handoff cards go to the team.
            for rep_id in (li, wang):
                session.add(UserHandle(user_id=rep_id, channel_account_id=stack.account_id, external_id=f"r{rep_id}"))
            await session.flush()
            conversation = await session.scalar(select(Conversation))
            assert [u.id for u in await reps.reps_for(conversation, db_session=session)] == [wang]
            assert [u.id for u in await reps.reps_for_channel("telegram", db_session=session)] == [wang]
            assert [u.id for u in await reps.reps_for_channel(None, db_session=session)] == [li, wang]

            # Wang has no manager of his own: the team's manager hears of his customers.
            assert (await reps.manager_of(await session.get(User, wang), db_session=session)).id == mia
            assert await reps.manager_of(await session.get(User, li), db_session=session) is None

        # The inbox narrowed to the team: Wang's customer, now his.
        for owner, names in ((f"team:{team['id']}", ["Zhou"]), (str(li), []), (str(wang), ["Zhou"])):
            rows = (await client.get(f"{base}/inbox", params={"owner": owner}, headers=stack.api())).json()["rows"]
            assert [r["name"] for r in rows] == names, owner
        assert (await client.get(f"{base}/inbox", params={"owner": "team:x"}, headers=stack.api())).status_code == 422

        resp = await client.delete(f"{base}/teams/{team['id']}", headers=stack.api())
        assert resp.json() == {"deleted": team["id"], "members_now_without_team": 1}
        async with stack.hub.sessions() as session:
            assert (await session.get(User, wang)).team_id is None
            assert await session.scalar(select(Lead.owner_user_id).where(Lead.contact_id == contact_id)) == wang
            conversation = await session.scalar(select(Conversation))
            assert [u.id for u in await reps.reps_for(conversation, db_session=session)] == [li, wang]
            actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity_type == "team"))).all()
        assert actions == ["team.create", "team.delete"]


async def test_an_admin_changes_a_users_role_manager_and_activity_but_cannot_lock_themself_out(database_url,
                                                                                                 tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        client, base = stack.client, f"{stack.hub_base}/api/v1/users"
        _, mia = await token_for(stack, Role.MANAGER, "mia")
        _, li = await token_for(stack, Role.REP, "li")
        admin_id = next(u["id"] for u in (await client.get(base, headers=stack.api())).json() if u["username"] == "admin")

        resp = await client.patch(f"{base}/{li}", headers=stack.api(),
                                  json={"display_name": "李丽", "manager_user_id": mia, "role": "manager"})
        assert resp.status_code == 200, resp.text
        assert (resp.json()["display_name"], resp.json()["manager_user_id"], resp.json()["role"]) == \
            ("李丽", mia, "manager")
        for body, words in (({"manager_user_id": li}, "their own manager"),
                            ({"team_id": 999}, "no team 999")):
            resp = await client.patch(f"{base}/{li}", headers=stack.api(), json=body)
            assert resp.status_code == 422 and words in resp.json()["detail"], resp.text
        for body in ({"role": "rep"}, {"is_active": False}):
            resp = await client.patch(f"{base}/{admin_id}", headers=stack.api(), json=body)
            assert resp.status_code == 422 and "ask another admin" in resp.json()["detail"]
        assert (await client.patch(f"{base}/999", headers=stack.api(), json={})).status_code == 404
        async with stack.hub.sessions() as session:
            entry = await session.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
        assert entry.details == {"from": {"display_name": None, "role": "rep", "manager_user_id": None},
                                 "to": {"display_name": "李丽", "role": "manager", "manager_user_id": mia}}

        # The audit log finds it by action, by the user changed, and by who changed it, page by page.
        audit = f"{stack.hub_base}/api/v1/audit"
        for query in ("action=user.up", f"entity_type=user&entity_id={li}&action=user.update",
                      f"actor_user_id={admin_id}&action=user."):
            found = (await client.get(f"{audit}?{query}", headers=stack.api())).json()
            assert [e["action"] for e in found] == ["user.update"], query
        newest = (await client.get(f"{audit}?limit=1", headers=stack.api())).json()
        older = (await client.get(f"{audit}?limit=1&before_id={newest[0]['id']}", headers=stack.api())).json()
        assert len(older) == 1 and older[0]["id"] < newest[0]["id"]
        assert (await client.get(f"{audit}?entity_type=team", headers=stack.api())).json() == []
