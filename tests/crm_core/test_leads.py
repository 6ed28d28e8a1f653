"""Leads as a sales manager sees them: one per person, routed to the right rep, scored,
segmented, chased when nobody calls, and handed on with their history when a rep leaves."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from bots.rep.sla import LeadSlaWatcher
from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.leads.service import LeadRefused, LeadRules, ScoringRule
from crm_core.models import Conversation, Lead, LeadEvent, OutboxMessage, Role, User
from crm_core.people import reps, users
from tests.crm_core.test_dispatcher import conversation_for
from tests.crm_core.test_ingest import make_account

ROUND_ROBIN = LeadRules(routing="round_robin")


async def team(sessions, account_id: int) -> dict[str, User]:
    """Manager Zhao; reps Li (east China, retail), Wang (north China) and Qian (no territory)."""
    async with sessions() as session, session.begin():
        zhao = await users.get_or_create("zhao", Role.MANAGER, db_session=session)
        people = {"zhao": zhao}
        for name, territory in (("li", {"regions": ["East China"], "industries": ["retail"]}),
                                ("wang", {"regions": ["North China"]}), ("qian", None)):
            rep = await users.get_or_create(name, Role.REP, db_session=session, display_name=name.title())
            rep.territory, rep.manager_user_id = territory, zhao.id
            people[name] = rep
        for user in people.values():
            await reps.add_handle(user, channel_account_id=account_id, external_id=f"h-{user.username}",
                                  db_session=session)
    return people


async def open_for(sessions, account_id: int, user: str, rules: LeadRules = ROUND_ROBIN, **fields) -> Lead:
    conversation = await conversation_for(sessions, account_id, user)
    async with sessions() as session, session.begin():
        opened = await leads.open_lead(conversation.contact_id, source_kind="api", rules=rules,
                                       db_session=session, **fields)
    return opened.lead


async def owner_name(sessions, lead: Lead) -> str | None:
    async with sessions() as session:
        fresh = await session.get(Lead, lead.id)
        return (await session.get(User, fresh.owner_user_id)).username if fresh.owner_user_id else None


async def test_one_open_lead_per_person_however_often_it_is_opened(sessions):
    account = await make_account(sessions)
    await team(sessions, account)
    first = await open_for(sessions, account, "1", company=None)
    async with sessions() as session, session.begin():
        again = await leads.open_lead(first.contact_id, source_kind="signal", company="Huawei", rules=ROUND_ROBIN,
                                      db_session=session)
    assert not again.created and again.lead.id == first.id and again.lead.company == "Huawei"
    async with sessions() as session:
        with pytest.raises(LeadRefused, match="lead source 'fax'"):
            await leads.open_lead(first.contact_id, source_kind="fax", rules=ROUND_ROBIN, db_session=session)


async def test_routing_prefers_the_existing_owner_then_territory_then_the_longest_waiting_rep(sessions):
    account = await make_account(sessions)
    people = await team(sessions, account)
    east = await open_for(sessions, account, "1", region="east china", industry="Retail")
    north = await open_for(sessions, account, "2", region="North China")
    assert (await owner_name(sessions, east), await owner_name(sessions, north)) == ("li", "wang")
    # No territory matches: round-robin over every rep, the one who waited longest first.
    rotation = [await owner_name(sessions, await open_for(sessions, account, str(n))) for n in (3, 4, 5)]
    assert rotation == ["qian", "li", "wang"]
    # Sticky: a person whose conversation Qian owns goes to Qian whatever the rotation says.
    conversation = await conversation_for(sessions, account, "6")
    async with sessions() as session, session.begin():
        await session.execute(Conversation.__table__.update().where(Conversation.__table__.c.id == conversation.id)
                              .values(assignee_user_id=people["qian"].id))
    assert await owner_name(sessions, await open_for(sessions, account, "6")) == "qian"
    # The new owner owns the person's unowned conversations too, so they can answer.
    async with sessions() as session:
        assert (await session.get(Conversation, (await conversation_for(sessions, account, "3")).id)) \
            .assignee_user_id == people["qian"].id


async def test_load_routing_gives_the_rep_with_the_fewest_open_leads(sessions):
    account = await make_account(sessions)
    people = await team(sessions, account)
    rules = LeadRules(routing="load")
    for n in range(3):
        await open_for(sessions, account, str(10 + n), rules=rules, owner=people["li"])
    owners = [await owner_name(sessions, await open_for(sessions, account, str(n), rules=rules)) for n in (1, 2, 3)]
    # Li has three; the others none: they take turns, the one who waited longest first.
    assert owners == ["wang", "qian", "wang"]


async def test_in_claim_mode_the_lead_waits_for_a_rep_and_the_claimer_owns_it(sessions):
    account = await make_account(sessions)
    people = await team(sessions, account)
    lead = await open_for(sessions, account, "1", rules=LeadRules())
    assert await owner_name(sessions, lead) is None
    async with sessions() as session, session.begin():
        conversation = await session.scalar(select(Conversation).where(Conversation.contact_id == lead.contact_id))
        await reps.claim(conversation, await session.get(User, people["wang"].id), db_session=session)
    assert await owner_name(sessions, lead) == "wang"


async def test_scoring_counts_one_off_events_once_and_says_hot_once(sessions):
    account = await make_account(sessions)
    await team(sessions, account)
    lead = await open_for(sessions, account, "1")
    rules = LeadRules(routing="round_robin", hot_score=30)
    async with sessions() as session, session.begin():
        lead = await session.get(Lead, lead.id)
        assert await leads.score(lead, "buying_signal", rules=rules, db_session=session) is False  # 20
        assert await leads.score(lead, "buying_signal", rules=rules, db_session=session) is False  # once only
        assert lead.score == 20
        hot = [await leads.score(lead, "message", rules=rules, db_session=session) for _ in range(6)]  # +2 each
        assert lead.score == 32 and hot == [False, False, False, False, True, False]
        assert await leads.score(lead, "unknown", rules=rules, db_session=session) is False


async def test_a_repeatable_rule_stops_at_its_cap_and_bad_rules_are_refused_with_the_fix(sessions):
    account = await make_account(sessions)
    await team(sessions, account)
    lead = await open_for(sessions, account, "1")
    rules = LeadRules(scoring=(ScoringRule("message", 3, repeatable=True, cap=10), ScoringRule("order", 40)))
    async with sessions() as session, session.begin():
        lead = await session.get(Lead, lead.id)
        scored = [await leads.score(lead, "message", rules=rules, db_session=session) for _ in range(5)]
        assert lead.score == 10 and scored == [False] * 5  # 3 + 3 + 3 + 1, then nothing
        await leads.score(lead, "buying_signal", rules=rules, db_session=session)  # no rule: no points
        await leads.score(lead, "order", rules=rules, db_session=session)
        await leads.score(lead, "order", rules=rules, db_session=session)  # not repeatable here
        assert lead.score == 50
    for scoring, words in (((ScoringRule("visit", 5),), "unknown event 'visit'"),
                           ((ScoringRule("order", 5, cap=20),), "make it repeatable"),
                           ((ScoringRule("order", 5), ScoringRule("order", 6)), "order has two rules"),
                           ((ScoringRule("order", 5000),), "from -100 to 1000")):
        with pytest.raises(ValueError, match=re.escape(words)):
            LeadRules(scoring=scoring)


def test_segments_run_from_a_for_the_most_valuable_to_e_for_no_orders():
    rules = LeadRules()
    assert [rules.segment(total, count) for total, count in
            [(150_000, 1), (500, 12), (40_000, 2), (12_000, 1), (200, 1), (0, 0)]] == ["A", "A", "B", "C", "D", "E"]


async def test_orders_move_the_segment_and_won_closes_the_lead(sessions):
    account = await make_account(sessions)
    await team(sessions, account)
    lead = await open_for(sessions, account, "1")
    async with sessions() as session, session.begin():
        lead = await session.get(Lead, lead.id)
        await leads.add_order(lead, 35_000, rules=ROUND_ROBIN, actor=None, db_session=session)
        assert (lead.segment, lead.order_count) == ("B", 1)
        with pytest.raises(LeadRefused, match="more than 0"):
            await leads.add_order(lead, 0, rules=ROUND_ROBIN, actor=None, db_session=session)
        with pytest.raises(LeadRefused, match="unknown stage 'signed'"):
            await leads.set_stage(lead, "signed", rules=ROUND_ROBIN, actor=None, db_session=session)
        await leads.set_stage(lead, "won", rules=ROUND_ROBIN, actor=None, db_session=session)
        assert lead.status == "closed" and lead.first_responded_at is not None
    second = await open_for(sessions, account, "1")  # new business: a new lead, to the same rep (sticky)
    assert second.id != lead.id and await owner_name(sessions, second) == await owner_name(sessions, lead)


async def test_an_uncontacted_lead_reminds_its_owner_then_escalates_to_the_manager_once_each(sessions):
    account = await make_account(sessions)
    await team(sessions, account)
    rules = LeadRules(routing="round_robin", first_response=dt.timedelta(minutes=60),
                      escalate_after=dt.timedelta(minutes=240))
    watcher = LeadSlaWatcher(sessions, rules)
    lead = await open_for(sessions, account, "1", rules=rules, region="North China")  # Wang's
    answered = await open_for(sessions, account, "2", rules=rules, region="North China")
    async with sessions() as session, session.begin():
        await leads.responded(answered.contact_id, db_session=session)
    start = utcnow()
    assert await watcher.run_once(start + dt.timedelta(minutes=59)) == 0
    assert await watcher.run_once(start + dt.timedelta(minutes=61)) == 1
    assert await watcher.run_once(start + dt.timedelta(minutes=90)) == 0
    assert await watcher.run_once(start + dt.timedelta(minutes=241)) == 1
    assert await watcher.run_once(start + dt.timedelta(minutes=500)) == 0
    async with sessions() as session:
        cards = (await session.scalars(select(OutboxMessage.recipient).order_by(OutboxMessage.id))).all()
        kinds = (await session.scalars(select(LeadEvent.kind).where(LeadEvent.lead_id == lead.id)
                                       .order_by(LeadEvent.id))).all()
    assert cards == ["h-wang", "h-zhao"]
    assert kinds == ["created", "assigned", "sla_reminded", "sla_escalated"]


async def test_a_departing_reps_leads_go_to_a_colleague_with_their_history(sessions):
    account = await make_account(sessions)
    people = await team(sessions, account)
    lead = await open_for(sessions, account, "1", region="East China", industry="retail")  # Li's
    async with sessions() as session, session.begin():
        moved = await reps.reassign_all(await session.get(User, people["li"].id),
                                        await session.get(User, people["qian"].id),
                                        await session.get(User, people["zhao"].id), db_session=session,
                                        deactivate=False)  # zhao manages; only an admin switches li off
    assert moved == 1  # the conversation
    async with sessions() as session:
        fresh = await session.get(Lead, lead.id)
        history = (await session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead.id)
                                         .order_by(LeadEvent.id))).all()
        li = await session.get(User, people["li"].id)
    assert fresh.owner_user_id == people["qian"].id and li.is_active
    assert [e.kind for e in history] == ["created", "assigned", "reassigned"]
    assert history[-1].details == {"from_user_id": people["li"].id, "to_user_id": people["qian"].id}
    assert history[-1].actor_user_id == people["zhao"].id


async def test_a_rep_moves_a_customer_through_the_companys_own_pipeline(sessions):
    pipeline = LeadRules(stages=("new", "demo", "trial", "won", "lost"), routing="round_robin")
    account = await make_account(sessions)
    await team(sessions, account)
    lead = await open_for(sessions, account, "7", rules=pipeline)
    async with sessions() as session, session.begin():
        conversation = await session.scalar(select(Conversation).where(Conversation.contact_id == lead.contact_id))
        rep = await session.get(User, (await session.get(Lead, lead.id)).owner_user_id)
        assert await reps.set_stage(conversation, rep, "Demo", rules=pipeline, db_session=session) == "new"
        with pytest.raises(reps.RepActionRefused) as refused:
            await reps.set_stage(conversation, rep, "qualified", rules=pipeline, db_session=session)
        assert refused.value.params["stages"] == "new, demo, trial, won, lost"
    async with sessions() as session:
        assert (await session.get(Lead, lead.id)).stage == "demo"
