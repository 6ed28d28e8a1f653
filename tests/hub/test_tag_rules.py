"""Automatic tags: by keyword in a customer's message, by lead stage, by campaign (set in the panel's
settings), by contact way (tests/hub/test_wecom_contact_ways.py); each audited with its rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.campaigns import audience
from crm_core.models import AuditLog, Campaign, CampaignStatus, CampaignStep, Contact, Identity, Lead
from tests.fakes.stack import eventually, telegram_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_keywords_and_lead_stages_tag_customers_with_the_rule_audited(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as tg:
        resp = await tg.client.put(f"{tg.hub_base}/api/v1/settings", headers=tg.api(), json={"changes": {
            "tag_keywords": {"售后": ["退货", "refund"], "价格敏感": ["便宜点"]},
            "stage_tags": {"成交客户": ["won"]}}})
        assert resp.status_code == 200, resp.text
        bad = await tg.client.put(f"{tg.hub_base}/api/v1/settings", headers=tg.api(),
                                  json={"changes": {"stage_tags": {"x": ["signed"]}}})
        assert bad.status_code == 422 and "signed" in bad.text  # a stage the pipeline lacks

        await tg.customer_writes(5101, "我想退貨，怎麼辦？", first_name="林")  # Traditional characters too

        async def contact_id():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "5101"))
        contact = await eventually(contact_id, timeout=15)

        async def tags():
            return (await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact}", headers=tg.api())).json()["tags"]

        async def tagged():
            return await tags() == ["售后"]
        await eventually(tagged, timeout=15)

        # A lead moved to won tags its contact.
        await tg.customer_writes(5101, "我想买10套，多少钱？")

        async def lead():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Lead.id).where(Lead.contact_id == contact))
        lead_id = await eventually(lead, timeout=15)
        moved = await tg.client.post(f"{tg.hub_base}/api/v1/leads/{lead_id}/stage", headers=tg.api(),
                                     json={"stage": "won"})
        assert moved.status_code == 200, moved.text
        assert sorted(await tags()) == ["售后", "成交客户"]
        async with tg.hub.sessions() as session:
            rules = [row.details.get("rule") for row in (await session.scalars(select(AuditLog).where(
                AuditLog.action == "contact.tags", AuditLog.entity_id == str(contact)))).all()]
            assert (await session.get(Contact, contact)).stage == "won"
        assert rules == ["keyword 退货", "lead stage won"]


async def test_everyone_enrolled_in_a_named_campaign_gets_its_tag(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as tg:
        await tg.customer_writes(5201, "hello", first_name="Kim")

        async def contact_id():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "5201"))
        contact = await eventually(contact_id, timeout=15)
        async with tg.hub.sessions() as session, session.begin():
            campaign = Campaign(name="春季促销", status=CampaignStatus.ACTIVE, audience={}, exits={})
            session.add(campaign)
            await session.flush()
            session.add(CampaignStep(campaign_id=campaign.id, position=1, name="一", delay_minutes=60,
                                     template={"zh": "你好", "en": "Hi"}))
            await session.flush()
            await audience.enrol_contacts(campaign, [contact], db_session=session)
        assert await tg.hub.campaign_tags() == 0  # no rule yet
        resp = await tg.client.put(f"{tg.hub_base}/api/v1/settings", headers=tg.api(),
                                   json={"changes": {"campaign_tags": {"春促客户": ["春季促销"]}}})
        assert resp.status_code == 200, resp.text
        assert await tg.hub.campaign_tags() == 1
        assert await tg.hub.campaign_tags() == 0  # once
        resp = await tg.client.get(f"{tg.hub_base}/api/v1/contacts/{contact}", headers=tg.api())
        assert resp.json()["tags"] == ["春促客户"]
        async with tg.hub.sessions() as session:
            rule = await session.scalar(select(AuditLog.details).where(AuditLog.action == "contact.tags",
                                                                      AuditLog.entity_id == str(contact)))
        assert rule["rule"] == "campaign 春季促销"
