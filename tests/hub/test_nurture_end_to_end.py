"""An operator's campaign through the API, run by the hub's scheduler to Telegram
customers: each hears each step once, in their language; a "STOP" ends it."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.consent import service as consent
from crm_core.models import Contact, Identity, MessagePurpose
from tests.fakes.stack import eventually, telegram_stack

CAMPAIGN = {
    "name": "Winter promotion",
    "audience": {"tags": ["expo"], "channels": ["telegram"]},
    "exits": ["reply"],
    "steps": [
        {"name": "welcome", "template": {"zh": "{name}您好！冬季新品 X200 到货", "en": "Hi {name}! The X200 is here"}},
        {"name": "reminder", "delay_minutes": 0, "template": {"zh": "X200 试用名额有限", "en": "X200 trial seats are few"}},
    ],
}


async def test_a_campaign_built_in_the_api_reaches_each_customer_once_and_stop_ends_it(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path, marketing_quiet_hours="", marketing_cap_count=5,
                              nurture_plan_seconds=0.2) as stack:
        hub, api = stack.hub, stack.api()
        await stack.customer_writes(5001, "hello", first_name="Anna", language_code="en")
        await stack.customer_writes(5002, "你好", first_name="王芳", language_code="zh-hans")
        await stack.customer_writes(5003, "hi", first_name="Ben", language_code="en")

        async def contacts():
            async with hub.sessions() as session:
                rows = (await session.execute(select(Identity.external_id, Contact.id)
                                              .join(Contact, Contact.id == Identity.contact_id))).all()
            return dict(rows) if len(rows) == 3 else None
        people = await eventually(contacts)

        async def greeted():  # the bot's answer first (the first message may wait for the intent model)
            return all(stack.bot_lines(user) for user in (5001, 5002, 5003))
        await eventually(greeted)
        for user, contact_id in people.items():
            if user != "5003":  # Ben is not at the expo
                resp = await stack.client.put(f"{stack.hub_base}/api/v1/contacts/{contact_id}/tags",
                                              json={"tags": ["expo", " expo "]}, headers=api)
                assert resp.json()["tags"] == ["expo"], resp.text
            async with hub.sessions() as session, session.begin():
                await consent.record(contact_id, purpose=MessagePurpose.MARKETING, granted=True, source="form",
                                     db_session=session)

        bad = {**CAMPAIGN, "steps": [{"name": "x", "template": {"en": "Hi {nickname}"}}]}
        resp = await stack.client.post(f"{stack.hub_base}/api/v1/campaigns", json=bad, headers=api)
        assert resp.status_code == 422 and "unknown variable {nickname}" in resp.text
        resp = await stack.client.post(f"{stack.hub_base}/api/v1/campaigns", json=CAMPAIGN, headers=api)
        assert resp.status_code == 201, resp.text
        campaign_id = resp.json()["id"]
        resp = await stack.client.post(f"{stack.hub_base}/api/v1/campaigns/{campaign_id}/status",
                                       json={"status": "active"}, headers=api)
        assert resp.json()["enrolled"] == 2, resp.text

        async def both_steps():
            return len(stack.bot_lines(5001)) >= 3 and len(stack.bot_lines(5002)) >= 3
        await eventually(both_steps)
        # The first says how to stop them; the second does not repeat it.
        assert stack.bot_lines(5001)[-2:] == ["Hi Anna! The X200 is here\n\nReply STOP to stop these messages.",
                                              "X200 trial seats are few"]
        assert stack.bot_lines(5002)[-2:] == ["王芳您好！冬季新品 X200 到货\n\n回复“退订”即可不再接收此类消息。",
                                              "X200 试用名额有限"]
        assert len(stack.bot_lines(5003)) == 1  # only the greeting

        async def results():
            resp = await stack.client.get(f"{stack.hub_base}/api/v1/campaigns/{campaign_id}/results", headers=api)
            body = resp.json()
            return body if body["delivered"] == 4 else None
        body = await eventually(results)
        assert (body["enrolled"], body["sent"], body["completed"]) == (2, 4, 2)
        assert [s["delivered"] for s in body["steps"]] == [2, 2]
        # Nothing more arrives however long the scheduler keeps planning.
        await stack.customer_writes(5001, "STOP")
        await eventually(stack.delivered)
        lines_before = len(stack.bot_lines(5001))
        await hub.nurture.run_until_idle()
        assert len(stack.bot_lines(5001)) == lines_before
        resp = await stack.client.get(f"{stack.hub_base}/api/v1/campaigns/{campaign_id}/enrolments", headers=api)
        assert {e["status"] for e in resp.json()} == {"completed"}
