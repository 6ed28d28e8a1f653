"""Merging two contacts by hand: the preview says what moves and what clashes; the merge
moves everything and keeps the target's one-of-a-kind things."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.campaigns import audience
from crm_core.campaigns import service as campaigns
from crm_core.campaigns.definitions import StepSpec
from crm_core.consent import service as consent
from crm_core.contacts import merging, tags
from crm_core.leads import service as leads
from crm_core.leads.service import LeadRules
from crm_core.models import (
    AuditLog,
    Contact,
    Conversation,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Lead,
    LeadEvent,
    MessagePurpose,
)
from tests.crm_core.test_dispatcher import conversation_for
from tests.crm_core.test_ingest import make_account


async def test_a_merge_moves_everything_and_the_preview_said_so(sessions):
    account = await make_account(sessions)
    kept, gone = await conversation_for(sessions, account, "51"), await conversation_for(sessions, account, "52")
    target, source = kept.contact_id, gone.contact_id
    rules = LeadRules()
    async with sessions() as session, session.begin():
        target_lead = (await leads.open_lead(target, source_kind="api", rules=rules, db_session=session)).lead
        source_lead = (await leads.open_lead(source, source_kind="api", rules=rules, db_session=session)).lead
        source_lead.score, source_lead.details = 40, {"budget": "50k"}
        await consent.record(source, purpose=MessagePurpose.MARKETING, granted=True, source="form",
                             db_session=session)
        await tags.set_tags(source, ["vip", "expo"], actor=None, db_session=session)
        await tags.set_tags(target, ["vip"], actor=None, db_session=session)
        campaign = await campaigns.create_campaign(
            "Both in it", audience={"consent": False}, steps=[StepSpec(name="hi", template={"en": "Hi"})],
            exits=[], channel_kinds=["telegram"], actor=None, db_session=session)
        await audience.enrol_contacts(campaign, [source, target], db_session=session)
        (await session.get(Contact, target)).display_name = None
        (await session.get(Contact, source)).display_name = "Zhang Wei"
        target_lead_id, source_lead_id = target_lead.id, source_lead.id

    async with sessions() as session:
        plan = await merging.preview(source, target, db_session=session)
    assert plan.moves["identities"] == 1 and plan.moves["conversations"] == 1
    assert plan.moves["consent_events"] == 1 and plan.moves["tags"] == 1 and plan.moves["enrolments"] == 0
    assert any(f"#{target_lead_id} stays open" in c for c in plan.conflicts)
    assert any("campaign" in c for c in plan.conflicts)
    assert plan.result["display_name"] == "Zhang Wei" and plan.result["tags"] == ["expo", "vip"]

    async with sessions() as session, session.begin():
        await merging.merge(source, target, actor=None, db_session=session)
    async with sessions() as session:
        identities = (await session.scalars(select(Identity.external_id).where(Identity.contact_id == target))).all()
        conversations = (await session.scalars(select(Conversation.id).where(Conversation.contact_id == target))).all()
        merged = await session.get(Contact, source)
        kept_contact = await session.get(Contact, target)
        closed = await session.get(Lead, source_lead_id)
        open_lead = await session.get(Lead, target_lead_id)
        history = (await session.scalars(select(LeadEvent.kind).where(LeadEvent.lead_id == source_lead_id))).all()
        decision = await consent.decide(target, purpose=MessagePurpose.MARKETING, channel="telegram",
                                        db_session=session)
        enrolments = dict((await session.execute(select(Enrolment.contact_id, Enrolment.status))).all())
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "contact.merge"))
        target_tags = await tags.tags_of(target, db_session=session)
    assert sorted(identities) == ["51", "52"] and sorted(conversations) == sorted([kept.id, gone.id])
    assert merged.merged_into_id == target and kept_contact.display_name == "Zhang Wei"
    assert closed.status == "closed" and "merged" in history
    assert open_lead.status == "open" and open_lead.score >= 40 and open_lead.details["budget"] == "50k"
    assert decision.allowed  # the source's grant is the target's now
    assert enrolments == {source: EnrolmentStatus.EXITED, target: EnrolmentStatus.ACTIVE}
    assert sorted(target_tags) == ["expo", "vip"]
    assert audit.details["moves"]["identities"] == 1


@pytest.mark.parametrize("case", ["itself", "missing", "merged already"])
async def test_merges_that_make_no_sense_are_refused_with_the_reason(sessions, case):
    account = await make_account(sessions)
    one, two = await conversation_for(sessions, account, "61"), await conversation_for(sessions, account, "62")
    async with sessions() as session, session.begin():
        if case == "merged already":
            await merging.merge(two.contact_id, one.contact_id, actor=None, db_session=session)
    source, target, words = {"itself": (one.contact_id, one.contact_id, "into itself"),
                             "missing": (999_999, one.contact_id, "no contact 999999"),
                             "merged already": (two.contact_id, one.contact_id, "merged into")}[case]
    async with sessions() as session, session.begin():
        with pytest.raises(merging.MergeRefused, match=words):
            await merging.merge(source, target, actor=None, db_session=session)
