"""Nurture campaigns as a customer and an operator see them: the right people get each
step once, in their language and send window; replying, buying or opting out ends it."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from crm_core.campaigns import audience, planning
from crm_core.campaigns import service as campaigns
from crm_core.campaigns.definitions import CampaignInvalid, CampaignStarted, StepSpec, steps_of
from crm_core.campaigns.planning import NurturePlanner
from crm_core.campaigns.results import results as campaign_results
from crm_core.consent import service as consent
from crm_core.consent.service import OPT_OUT_HINT
from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.db import utcnow
from crm_core.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    Contact,
    ContactTag,
    Conversation,
    Delivery,
    Direction,
    Enrolment,
    EnrolmentStatus,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)
from crm_core.outbox.dispatcher import Dispatcher
from crm_core.ports import InboundMessage, Sender
from tests.crm_core.test_dispatcher import FAST, ScriptedGateway, conversation_for, drain
from tests.crm_core.test_ingest import CIPHER, make_account, text_event
from tests.fakes.databases import forget_statistics, query_plans

KINDS = ("telegram", "email", "wecom")
WELCOME = StepSpec("welcome", {"zh": "{name}您好，欢迎了解 X200", "en": "Hi {name}, meet the X200"})
FOLLOW_UP = StepSpec("follow-up", {"zh": "X200 试用还有名额", "en": "X200 trial seats left"}, delay_minutes=3 * 24 * 60)


async def customers(sessions, account_id: int, *users: str, consent_to_marketing: bool = True,
                    tag: str | None = "expo") -> list[int]:
    ids = []
    for user in users:
        conversation = await conversation_for(sessions, account_id, user)
        ids.append(conversation.contact_id)
        async with sessions() as session, session.begin():
            if consent_to_marketing:
                await consent.record(conversation.contact_id, purpose=MessagePurpose.MARKETING, granted=True,
                                     source="form", db_session=session)
            if tag:
                session.add(ContactTag(contact_id=conversation.contact_id, tag=tag))
    return ids


async def campaign_of(sessions, steps, *, audience=None, exits=("reply",), activate=True) -> int:
    async with sessions() as session, session.begin():
        campaign = await campaigns.create_campaign("Expo follow-up", audience=audience or {"tags": ["expo"]},
                                                   steps=list(steps), exits=list(exits), channel_kinds=KINDS,
                                                   actor=None, db_session=session)
        if activate:
            await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)
        return campaign.id


async def sends(sessions, *statuses: OutboxStatus) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.enrolment_id.is_not(None)).order_by(OutboxMessage.id)
        if statuses:
            query = query.where(OutboxMessage.status.in_(statuses))
        return list((await session.scalars(query)).all())


async def enrolments(sessions) -> dict[int, Enrolment]:
    async with sessions() as session:
        return {e.contact_id: e for e in (await session.scalars(select(Enrolment))).all()}


async def customer_writes(sessions, account_id: int, user: str, text: str, update_id: int) -> None:
    async with sessions() as session, session.begin():
        await ingest_events([text_event(update_id, user=user, text=text)], channel_account_id=account_id,
                            db_session=session)


def later(days: float) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


def local_time(zone: str, days_ahead: int, hour: int) -> dt.datetime:
    """`hour`:00 in `zone`, `days_ahead` days from now, in UTC: after the customers' own
    messages (a reply would end the campaign) and whatever the time of year."""
    day = (utcnow() + dt.timedelta(days=days_ahead)).date()
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


async def test_a_campaign_that_cannot_run_is_refused_with_what_to_change(sessions):
    cases = [
        ([StepSpec("a", {"en": "Hi {first_name}"})], "unknown variable {first_name}"),
        ([StepSpec("a", {"fr": "Salut"})], "templates are zh and en"),
        ([StepSpec("a", {"en": "Hi"}, channel="fax")], "channel 'fax'"),
        ([StepSpec("a", {"en": "Hi"}, window_start="09:00")], "needs both window_start and window_end"),
        ([StepSpec("a", {"en": "Hi"}, condition={"replied": False}, else_position=1),
          StepSpec("b", {"en": "Hey"})], "a later step, 2..2"),
        ([StepSpec("a", {"en": "Hi"}, condition={"opened": True})], "condition: keys among"),
        ([StepSpec("a", {"en": "Hi"}, condition={"tag": " "})], "condition.tag: the tag's name"),
        ([StepSpec("a", {"en": "Hi"}, condition={"stages": []})], "condition.stages: a list of stage names"),
        ([StepSpec("a", {"en": "Hi"}, condition={"replied": "no"})], "condition.replied: true or false"),
        ([StepSpec("a", {"en": "Hi {name"})], "write a literal brace"),
        ([], "at least one step"),
    ]
    for steps, message in cases:
        async with sessions() as session:
            with pytest.raises(CampaignInvalid, match=message.replace("{", r"\{").replace("(", r"\(")):
                await campaigns.create_campaign("c", audience={}, steps=steps, exits=[], channel_kinds=KINDS,
                                                actor=None, db_session=session)
    async with sessions() as session:
        with pytest.raises(CampaignInvalid, match="unknown criteria colour"):
            await campaigns.create_campaign("c", audience={"colour": "red"}, steps=[WELCOME], exits=[],
                                            channel_kinds=KINDS, actor=None, db_session=session)
        with pytest.raises(CampaignInvalid, match="exits: unknown click"):
            await campaigns.create_campaign("c", audience={}, steps=[WELCOME], exits=["click"], channel_kinds=KINDS,
                                            actor=None, db_session=session)


async def test_the_audience_is_the_tagged_contacts_who_agreed_to_marketing_each_enrolled_once(sessions):
    account = await make_account(sessions)
    tagged = await customers(sessions, account, "1", "2")
    no_consent = await customers(sessions, account, "3", consent_to_marketing=False)
    untagged = await customers(sessions, account, "4", tag=None)
    campaign_id = await campaign_of(sessions, [WELCOME])
    assert set(await enrolments(sessions)) == set(tagged)
    async with sessions() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        assert await audience.enrol_audience(campaign, db_session=session) == 0  # nobody twice
        session.add(ContactTag(contact_id=untagged[0], tag="expo"))
        await session.flush()
        assert await audience.enrol_audience(campaign, db_session=session) == 1  # a newcomer joins
    assert no_consent[0] not in await enrolments(sessions)


async def test_an_audience_by_lead_score_takes_only_the_warm_leads(sessions):
    from crm_core.leads import service as leads
    from crm_core.leads.service import LeadRules

    account = await make_account(sessions)
    warm, cold, no_lead = await customers(sessions, account, "1", "2", "3")
    async with sessions() as session, session.begin():
        for contact_id, score in ((warm, 40), (cold, 10)):
            lead = (await leads.open_lead(contact_id, source_kind="api", rules=LeadRules(),
                                          db_session=session)).lead
            lead.score = score
    await campaign_of(sessions, [WELCOME], audience={"tags": ["expo"], "min_score": 30})
    assert set(await enrolments(sessions)) == {warm}
    assert no_lead not in await enrolments(sessions)
    async with sessions() as session:
        with pytest.raises(CampaignInvalid, match="min_score: a whole number"):
            await campaigns.create_campaign("c", audience={"min_score": "hot"}, steps=[WELCOME], exits=[],
                                            channel_kinds=KINDS, actor=None, db_session=session)


async def test_each_step_is_queued_once_in_the_contacts_language_even_with_planners_racing(sessions):
    account = await make_account(sessions)
    li, bob = await customers(sessions, account, "1", "2")
    async with sessions() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == li).values(language="zh-CN", display_name="李雷"))
        await session.execute(update(Contact).where(Contact.id == bob).values(language="en", display_name="Bob"))
    await campaign_of(sessions, [WELCOME, FOLLOW_UP])
    planners = [NurturePlanner(sessions, batch_size=1) for _ in range(3)]
    await asyncio.gather(*(p.run_until_idle() for p in planners))
    await asyncio.gather(*(p.run_until_idle() for p in planners))
    first = await sends(sessions)
    # A person's first marketing message says how to stop them; later ones do not.
    assert sorted(row.payload["text"] for row in first) == ["Hi Bob, meet the X200" + OPT_OUT_HINT["en"],
                                                            "李雷您好，欢迎了解 X200" + OPT_OUT_HINT["zh"]]
    assert {row.purpose for row in first} == {MessagePurpose.MARKETING}
    # The follow-up is due three days later, not before.
    await planners[0].run_until_idle(later(2.9))
    assert len(await sends(sessions)) == 2
    await asyncio.gather(*(p.run_until_idle(later(3.1)) for p in planners))
    await planners[0].run_until_idle(later(30))
    rows = await sends(sessions)
    assert len(rows) == 4 and len({row.idempotency_key for row in rows}) == 4
    assert {e.status for e in (await enrolments(sessions)).values()} == {EnrolmentStatus.COMPLETED}


async def test_a_planners_batch_is_held_until_it_commits_so_none_plans_it_twice_or_loses_a_reply(
        sessions, monkeypatch):
    """While a planner plans a batch, the batch is held (FOR UPDATE on PostgreSQL; on SQLite the
    one write lock, taken before the batch is read): another planner finds nothing due, and a
    customer's reply waits for it, then cancels the step it queued. On SQLite, whose transactions
    begin only at their first write, the other planner used to plan the batch again and the
    planner's write-back undid the reply's exit; on PostgreSQL the reply read the enrolment before
    the planner committed and cancelled none of its sends: either way the follow-up was left to go
    to a customer who had answered."""
    account = await make_account(sessions)
    replier, quiet = await customers(sessions, account, "1", "2")
    worker = MessageWorker(sessions, [])
    assert await worker.run_once() == 2  # their first messages
    await campaign_of(sessions, [WELCOME, FOLLOW_UP], exits=["reply"])
    await NurturePlanner(sessions).run_until_idle()  # the welcome is queued for both
    real_load, loads = planning._load, []

    async def the_batch_dawdles_once_read(contact_ids, session, **reads):
        known = await real_load(contact_ids, session, **reads)
        loads.append(contact_ids)
        if len(loads) == 1:
            await asyncio.sleep(0.5)  # time for the others to read or change the batch, if they may
        return known

    monkeypatch.setattr(planning, "_load", the_batch_dawdles_once_read)
    first = asyncio.create_task(NurturePlanner(sessions).run_once(later(3.1)))  # the follow-ups are due
    while not loads:
        await asyncio.sleep(0.01)

    async def the_customer_replies() -> None:
        await customer_writes(sessions, account, "1", "what does it cost?", 9101)
        assert await worker.run_once() == 1

    reports = await asyncio.gather(first, NurturePlanner(sessions).run_once(later(3.1)), the_customer_replies())
    assert [report.queued for report in reports[:2]] == [2, 0]
    state = await enrolments(sessions)
    assert state[quiet].status == EnrolmentStatus.COMPLETED
    follow_ups = {row.enrolment_id: row.status for row in await sends(sessions) if "X200 trial" in row.payload["text"]}
    assert follow_ups == {state[replier].id: OutboxStatus.CANCELLED, state[quiet].id: OutboxStatus.PENDING}
    async with sessions() as session:
        copies = (await session.scalars(select(Message.text).where(Message.direction == Direction.OUTBOUND))).all()
    assert sorted(copies).count("X200 trial seats left") == 2, copies


# The plans are asked of SQLite; PostgreSQL plans from its statistics.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_planner_reads_its_customers_messages_and_the_worker_only_the_backlog(sessions, database_url):
    """SQLite led the planner's "when did these customers last write" through the worker's index
    of every message by direction: each batch of 500 contacts read every customer message ever
    stored, so planning slowed as the hub aged. The worker's index now holds only the backlog
    (messages not processed yet); the planner reads a customer's messages by their identities, the
    worker its batch's conversations' messages by conversation."""
    account = await make_account(sessions)
    await customers(sessions, account, "1")
    await customer_writes(sessions, account, "1", "hello", 2)
    engine = sessions.kw["bind"]
    async with query_plans(engine, "WITH due AS") as claims, \
            query_plans(engine, "SELECT DISTINCT message.conversation_id") as firsts:
        # One transaction however slow the machine (on SQLite a batch's transaction ends after a
        # time, and the next asks its own first messages).
        await MessageWorker(sessions, [], transaction_seconds=60).run_once()
    await campaign_of(sessions, [WELCOME])
    async with query_plans(engine, "max(message.created_at)") as reads:
        await NurturePlanner(sessions).run_until_idle()
    assert len(await sends(sessions)) == 1
    [claim], [first], [read] = claims, firsts, reads
    assert any("ix_message_backlog" in step for step in claim), claim
    # The batch's conversations' first customer messages: each conversation's messages in id order.
    assert any("ix_message_conversation" in step for step in first), first
    assert not any(step.startswith("SCAN message") for step in first), first
    assert any("ix_message_identity" in step for step in read), read
    assert not any(step.startswith("SCAN message") or "ix_message_backlog" in step for step in read), read


async def test_a_planner_that_crashes_midway_plans_the_same_steps_again_without_doubles(sessions, monkeypatch):
    account = await make_account(sessions)
    await customers(sessions, account, "1", "2", "3")
    await campaign_of(sessions, [WELCOME])
    planner = NurturePlanner(sessions)
    real_queue, calls = planner._queue, []

    def crash_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("database went away")
        return real_queue(*args, **kwargs)

    monkeypatch.setattr(planner, "_queue", crash_on_the_third)
    with pytest.raises(ConnectionError):
        await planner.run_once()
    assert await sends(sessions) == []  # the batch rolled back as one
    await planner.run_until_idle()
    await NurturePlanner(sessions).run_until_idle()
    assert len(await sends(sessions)) == 3


async def test_replying_ends_the_campaign_and_stop_ends_it_at_once_with_its_queued_send(sessions):
    account = await make_account(sessions)
    replier, stopper, quiet = await customers(sessions, account, "1", "2", "3")
    await campaign_of(sessions, [WELCOME, FOLLOW_UP])
    planner = NurturePlanner(sessions)
    await planner.run_until_idle()
    await customer_writes(sessions, account, "1", "what does it cost?", 9001)
    # "STOP" from the second: the worker records it through the ledger.
    await customer_writes(sessions, account, "2", "STOP", 9002)
    async with sessions() as session, session.begin():
        message = await session.scalar(select(Message).where(Message.text == "STOP"))
        message.intents = ["opt_out"]
        contact = await session.get(Contact, stopper)
        await consent.apply_opt_outs(message, contact, "telegram", db_session=session)
    state = await enrolments(sessions)
    assert (state[stopper].status, state[stopper].exit_reason) == (EnrolmentStatus.EXITED, "opted_out")
    stopper_sends = [row for row in await sends(sessions) if row.enrolment_id == state[stopper].id]
    assert [row.status for row in stopper_sends] == [OutboxStatus.CANCELLED]
    await planner.run_until_idle(later(4))
    state = await enrolments(sessions)
    assert state[quiet].status == EnrolmentStatus.COMPLETED
    follow_ups = [row for row in await sends(sessions) if row.payload["text"] == "X200 trial seats left"]
    assert [row.enrolment_id for row in follow_ups] == [state[quiet].id]


async def test_a_condition_branches_and_a_won_deal_is_a_conversion_exit(sessions):
    account = await make_account(sessions)
    silent, talker, buyer = await customers(sessions, account, "1", "2", "3")
    steps = [WELCOME,
             StepSpec("nudge", {"en": "Still interested?"}, delay_minutes=60, condition={"replied": False},
                      else_position=3),
             StepSpec("case study", {"en": "How others use the X200"}, delay_minutes=60)]
    await campaign_of(sessions, steps, exits=["conversion"])
    planner = NurturePlanner(sessions)
    await planner.run_until_idle()
    await customer_writes(sessions, account, "2", "tell me more", 9100)
    async with sessions() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == buyer).values(stage="won"))
    await planner.run_until_idle(later(1 / 24 + 0.001))
    await planner.run_until_idle(later(3 / 24))
    texts: dict[int, list[str]] = {}
    state = await enrolments(sessions)
    by_enrolment = {e.id: contact for contact, e in state.items()}
    for row in await sends(sessions):
        texts.setdefault(by_enrolment[row.enrolment_id], []).append(row.payload["text"])
    welcome = "Hi Alice, meet the X200" + OPT_OUT_HINT["en"]
    assert texts[silent] == [welcome, "Still interested?", "How others use the X200"]
    assert texts[talker] == [welcome, "How others use the X200"]  # the nudge skipped
    assert texts[buyer] == [welcome]
    assert state[buyer].exit_reason == "converted"
    assert state[talker].status == state[silent].status == EnrolmentStatus.COMPLETED


async def test_a_steps_tag_and_button_conditions_branch_on_each_contacts_own(sessions):
    """A campaign that exits on nothing still reads what its steps' conditions ask (the planner
    reads the batch's tags and button presses only when one of its campaigns asks for them)."""
    account = await make_account(sessions)
    vip, presser, neither = await customers(sessions, account, "1", "2", "3")
    async with sessions() as session, session.begin():
        session.add(ContactTag(contact_id=vip, tag="vip"))
    steps = [WELCOME,
             StepSpec("vip", {"en": "A preview for our VIPs"}, delay_minutes=60, condition={"tag": "vip"},
                      else_position=3),
             StepSpec("pressed", {"en": "Thanks for asking about the X200"}, delay_minutes=60,
                      condition={"clicked": True})]
    await campaign_of(sessions, steps, exits=())
    planner = NurturePlanner(sessions)
    await planner.run_until_idle()
    async with sessions() as session, session.begin():
        await ingest_events([InboundMessage(platform_message_id="update:9300", sender=Sender("2", "Bob", None, "en"),
                                            thread_id="2", kind=MessageKind.CALLBACK, text="more", raw={})],
                            channel_account_id=account, db_session=session)
    await planner.run_until_idle(later(1 / 24 + 0.001))
    await planner.run_until_idle(later(3 / 24))
    state = await enrolments(sessions)
    by_enrolment = {e.id: contact for contact, e in state.items()}
    texts: dict[int, list[str]] = {}
    for row in await sends(sessions):
        texts.setdefault(by_enrolment[row.enrolment_id], []).append(row.payload["text"].split(",")[0])
    assert texts == {vip: ["Hi Alice", "A preview for our VIPs"],
                     presser: ["Hi Alice", "Thanks for asking about the X200"], neither: ["Hi Alice"]}
    assert (state[neither].status, state[neither].exit_reason) == (EnrolmentStatus.EXITED, "condition_not_met")


async def test_a_step_waits_for_its_send_window_in_the_contacts_time_zone(sessions):
    account = await make_account(sessions)
    berlin, = await customers(sessions, account, "1")
    async with sessions() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == berlin).values(timezone="Europe/Berlin"))
    await campaign_of(sessions, [StepSpec("morning", {"en": "Good morning"}, window_start="09:00",
                                          window_end="11:00")], activate=False)
    async with sessions() as session, session.begin():
        campaign = await session.scalar(select(Campaign))
        campaign.status = CampaignStatus.ACTIVE
        night = local_time("Europe/Berlin", 2, 23)
        await audience.enrol_audience(campaign, db_session=session, now=night)
    planner = NurturePlanner(sessions)
    report = await planner.run_once(night)
    assert (report.waiting, report.queued) == (1, 0)
    state = (await enrolments(sessions))[berlin]
    assert state.next_due_at == local_time("Europe/Berlin", 3, 9)
    assert "send window 09:00-11:00 Europe/Berlin" in state.note
    assert (await planner.run_once(local_time("Europe/Berlin", 3, 9) + dt.timedelta(minutes=1))).queued == 1


async def test_one_batch_moves_each_enrolment_where_its_own_time_zone_puts_it(sessions):
    """Many enrolments moved alike are written back together, the few moved otherwise one by one:
    each ends where its own plan put it."""
    account = await make_account(sessions)
    zones = ["Europe/Berlin"] * 16 + ["Asia/Shanghai"] * 16 + ["America/New_York"] * 2
    people = await customers(sessions, account, *(str(n) for n in range(len(zones))))
    zone_of = dict(zip(people, zones, strict=True))
    async with sessions() as session, session.begin():
        for contact_id, zone in zone_of.items():
            await session.execute(update(Contact).where(Contact.id == contact_id).values(timezone=zone))
    morning = StepSpec("morning", {"en": "Good morning"}, window_start="09:00", window_end="11:00")
    await campaign_of(sessions, [morning, FOLLOW_UP], activate=False)
    # 03:00 in Berlin is 09:00-10:00 in Shanghai (in every season) and the evening before in New York.
    night = local_time("Europe/Berlin", 2, 3)
    async with sessions() as session, session.begin():
        campaign = await session.scalar(select(Campaign))
        campaign.status = CampaignStatus.ACTIVE
        await audience.enrol_audience(campaign, db_session=session, now=night)
    report = await NurturePlanner(sessions).run_once(night)
    assert (report.planned, report.queued, report.waiting) == (34, 16, 18)
    state = await enrolments(sessions)
    for contact_id, zone in zone_of.items():
        enrolment = state[contact_id]
        assert enrolment.status == EnrolmentStatus.ACTIVE
        if zone == "Asia/Shanghai":
            assert (enrolment.next_position, enrolment.note, enrolment.last_step_at) == (2, None, night)
            assert enrolment.next_due_at == night + dt.timedelta(minutes=FOLLOW_UP.delay_minutes)
        else:
            assert (enrolment.next_position, enrolment.last_step_at) == (1, None)
            assert enrolment.next_due_at == local_time(zone, 2, 9)
            assert enrolment.note == f"step 1: waiting for its send window 09:00-11:00 {zone}"
    sent_to = {e.contact_id for e in state.values() if e.id in {row.enrolment_id for row in await sends(sessions)}}
    assert sent_to == {c for c, zone in zone_of.items() if zone == "Asia/Shanghai"}


async def test_a_contact_without_a_time_zone_has_the_hubs_default_for_the_send_window(sessions):
    account = await make_account(sessions)
    somewhere, = await customers(sessions, account, "1")
    await campaign_of(sessions, [StepSpec("morning", {"en": "Good morning"}, window_start="09:00",
                                          window_end="11:00")], activate=False)
    dawn = local_time("Asia/Shanghai", 2, 6)
    async with sessions() as session, session.begin():
        campaign = await session.scalar(select(Campaign))
        campaign.status = CampaignStatus.ACTIVE
        await audience.enrol_audience(campaign, db_session=session, now=dawn)
    await NurturePlanner(sessions, default_timezone="Asia/Shanghai").run_once(dawn)
    state = (await enrolments(sessions))[somewhere]
    assert state.next_due_at == local_time("Asia/Shanghai", 2, 9)
    assert "Asia/Shanghai" in state.note


async def test_results_count_each_step_sent_delivered_replied_and_opted_out(sessions):
    account = await make_account(sessions)
    _, _, leaver = await customers(sessions, account, "1", "2", "3")
    campaign_id = await campaign_of(sessions, [WELCOME, FOLLOW_UP], exits=[])
    gateway = ScriptedGateway()
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    await NurturePlanner(sessions).run_until_idle()
    await drain(dispatcher)
    await customer_writes(sessions, account, "1", "interesting", 9200)
    await customer_writes(sessions, account, "3", "退订", 9201)
    async with sessions() as session, session.begin():
        message = await session.scalar(select(Message).where(Message.text == "退订"))
        message.intents = ["opt_out"]
        await consent.apply_opt_outs(message, await session.get(Contact, leaver), "telegram",
                                     db_session=session)
    async with sessions() as session:
        result = await campaign_results(await session.get(Campaign, campaign_id), db_session=session)
    assert (result["enrolled"], result["sent"], result["delivered"]) == (3, 3, 3)
    assert (result["replied"], result["opted_out"], result["converted"]) == (1, 1, 0)
    welcome, follow_up = result["steps"]
    assert (welcome["sent"], welcome["delivered"], welcome["replied"], welcome["opted_out"]) == (3, 3, 1, 1)
    assert follow_up["queued"] == 0
    assert len(gateway.sent) == 3


async def test_results_count_as_delivered_only_what_reached_the_customer(sessions):
    """A WeCom 群发 task is accepted, then waits for the rep's Send: not delivered until it went."""
    account = await make_account(sessions)
    await customers(sessions, account, "1", "2", "3")
    campaign_id = await campaign_of(sessions, [WELCOME], exits=[])
    await NurturePlanner(sessions).run_until_idle()
    await drain(Dispatcher(sessions, ScriptedGateway(), CIPHER, policy=FAST))
    async with sessions() as session, session.begin():
        ids = (await session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id))).all()
        await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids[:2]))
                              .values(accepted_as=Delivery.AWAITING_CONFIRMATION))
    async with sessions() as session:
        result = await campaign_results(await session.get(Campaign, campaign_id), db_session=session)
    assert (result["sent"], result["delivered"], result["awaiting_confirmation"]) == (3, 1, 2)
    async with sessions() as session, session.begin():  # the rep sent one of them in WeCom
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == ids[0])
                              .values(accepted_as=Delivery.CONFIRMED))
    async with sessions() as session:
        result = await campaign_results(await session.get(Campaign, campaign_id), db_session=session)
    assert (result["delivered"], result["awaiting_confirmation"]) == (2, 1)
    assert (result["steps"][0]["delivered"], result["steps"][0]["awaiting_confirmation"]) == (2, 1)


async def test_marketing_sends_of_a_campaign_still_respect_consent_at_send_time(sessions):
    """Withdrawn between planning and sending (another channel's opt-out, an admin): not sent."""
    account = await make_account(sessions)
    contact, = await customers(sessions, account, "1")
    await campaign_of(sessions, [WELCOME])
    await NurturePlanner(sessions).run_until_idle()
    async with sessions() as session, session.begin():
        await consent.record(contact, purpose=MessagePurpose.MARKETING, granted=False, source="admin",
                             channel="telegram", db_session=session)
    gateway = ScriptedGateway()
    await drain(Dispatcher(sessions, gateway, CIPHER, policy=FAST))
    assert gateway.sent == []
    row, = await sends(sessions)
    assert row.status == OutboxStatus.CANCELLED and "withdrawn" in row.last_error
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Enrolment)) == 1


async def test_a_reply_ends_the_campaign_at_once_and_cancels_the_step_waiting_for_morning(sessions):
    account = await make_account(sessions)
    replier, other, done = await customers(sessions, account, "1", "2", "3")
    await campaign_of(sessions, [WELCOME, FOLLOW_UP], exits=["reply"])
    await NurturePlanner(sessions).run_until_idle()  # queued; say the quiet hours hold it till morning
    async with sessions() as session, session.begin():  # one had finished the campaign already
        await session.execute(update(Enrolment).where(Enrolment.contact_id == done)
                              .values(status=EnrolmentStatus.COMPLETED))
        assert await audience.exit_on_reply([done], db_session=session) == 0
    async with sessions() as session, session.begin():
        assert await audience.exit_on_reply([replier], db_session=session) == 1
        assert await audience.exit_on_reply([replier], db_session=session) == 0
    state = await enrolments(sessions)
    assert (state[replier].status, state[replier].exit_reason) == (EnrolmentStatus.EXITED, "replied")
    assert state[other].status == EnrolmentStatus.ACTIVE
    by_enrolment = {row.enrolment_id: row for row in await sends(sessions)}
    assert by_enrolment[state[done].id].status == OutboxStatus.CANCELLED  # its last step, not yet sent
    assert by_enrolment[state[replier].id].status == OutboxStatus.CANCELLED
    assert by_enrolment[state[replier].id].last_error == "left the campaign: replied"
    assert by_enrolment[state[other].id].status == OutboxStatus.PENDING


async def test_customers_who_reply_in_one_batch_each_leave_at_once_and_lose_their_waiting_step(sessions):
    account = await make_account(sessions)
    first, second, quiet = await customers(sessions, account, "1", "2", "3")
    worker = MessageWorker(sessions, [])
    assert await worker.run_once() == 3  # the messages they first wrote
    await campaign_of(sessions, [WELCOME, FOLLOW_UP], exits=["reply"])
    await NurturePlanner(sessions).run_until_idle()  # the welcome is queued for all three
    await customer_writes(sessions, account, "1", "what does it cost?", 9101)
    await customer_writes(sessions, account, "2", "多少钱？", 9102)
    assert await worker.run_once() == 2  # both in one batch, settled together at its end
    state = await enrolments(sessions)
    assert [(state[c].status, state[c].exit_reason) for c in (first, second)] == \
        [(EnrolmentStatus.EXITED, "replied")] * 2
    assert state[quiet].status == EnrolmentStatus.ACTIVE
    by_enrolment = {row.enrolment_id: row for row in await sends(sessions)}
    assert [by_enrolment[state[c].id].status for c in (first, second, quiet)] == \
        [OutboxStatus.CANCELLED, OutboxStatus.CANCELLED, OutboxStatus.PENDING]


async def test_a_paused_campaign_plans_nothing_and_an_ended_one_takes_back_what_it_queued(sessions):
    account = await make_account(sessions)
    await customers(sessions, account, "1", "2")
    campaign_id = await campaign_of(sessions, [WELCOME, FOLLOW_UP])
    async with sessions() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        await campaigns.set_status(campaign, CampaignStatus.PAUSED, actor=None, db_session=session)
    assert (await NurturePlanner(sessions).run_until_idle()).planned == 0
    async with sessions() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)  # resumed
    assert (await NurturePlanner(sessions).run_until_idle()).queued == 2
    async with sessions() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        await campaigns.set_status(campaign, CampaignStatus.ENDED, actor=None, db_session=session)
        with pytest.raises(CampaignInvalid, match="is ended; it cannot become active"):
            await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)
    assert {(e.status, e.exit_reason) for e in (await enrolments(sessions)).values()} == \
        {(EnrolmentStatus.EXITED, "campaign_ended")}
    assert {(row.status, row.last_error) for row in await sends(sessions)} == \
        {(OutboxStatus.CANCELLED, "campaign ended")}


async def test_a_step_worded_per_channel_reads_as_its_channel_wants(sessions):
    telegram = await make_account(sessions, "1")
    mailbox = await make_account(sessions, "2")
    async with sessions() as session, session.begin():
        # The planner knows a channel by its kind alone; an email account needs no mail server here.
        await session.execute(update(ChannelAccount).where(ChannelAccount.id == mailbox).values(kind="email"))
    on_telegram = (await customers(sessions, telegram, "1"))[0]
    by_mail = (await customers(sessions, mailbox, "2"))[0]
    step = StepSpec("welcome", {"en": "Hi {name}, meet the X200"},
                    channel_templates={"email": {"en": "Dear {name},\n\nthe X200 is here. Regards"}})
    await campaign_of(sessions, [step])
    await NurturePlanner(sessions).run_until_idle()
    texts = {row.conversation_id: row.payload["text"] for row in await sends(sessions)}
    async with sessions() as session:
        conversation_of = dict((await session.execute(select(Conversation.contact_id, Conversation.id))).all())
    assert texts[conversation_of[on_telegram]].startswith("Hi Alice, meet the X200")
    assert texts[conversation_of[by_mail]].startswith("Dear Alice,\n\nthe X200 is here. Regards")

    refused = [
        (StepSpec("a", {"en": "Hi"}, channel="telegram", channel_templates={"email": {"en": "Dear"}}),
         "the step sends only on telegram"),
        (StepSpec("a", {"en": "Hi"}, channel_templates={"fax": {"en": "Hi"}}), "fax: not a channel kind"),
        (StepSpec("a", {"en": "Hi"}, channel_templates={"email": {"en": "Dear {surname}"}}),
         "channel_templates.email.en: unknown variable {surname}"),
    ]
    for spec, message in refused:
        async with sessions() as session:
            with pytest.raises(CampaignInvalid, match=message.replace("{", r"\{")):
                await campaigns.create_campaign("c", audience={}, steps=[spec], exits=[], channel_kinds=KINDS,
                                                actor=None, db_session=session)


async def test_a_campaigns_own_caps_hold_steps_back_until_they_fit_and_drop_none(sessions):
    account = await make_account(sessions)
    first, second, third = await customers(sessions, account, "1", "2", "3")
    steps = [StepSpec(f"step {n}", {"en": f"Message {n}"}) for n in (1, 2, 3)]
    async with sessions() as session, session.begin():
        campaign = await campaigns.create_campaign(
            "Capped", audience={"tags": ["expo"]}, steps=steps, exits=[], channel_kinds=KINDS, actor=None,
            caps={"per_contact": {"messages": 2, "days": 7}, "per_day": 4}, db_session=session)
        await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)
    planner = NurturePlanner(sessions, default_timezone="UTC")
    start = (utcnow() + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)

    async def sent_per_contact() -> dict[int, int]:
        async with sessions() as session:
            return dict((await session.execute(
                select(Enrolment.contact_id, func.count())
                .join(OutboxMessage, OutboxMessage.enrolment_id == Enrolment.id)
                .group_by(Enrolment.contact_id))).all())

    report = await planner.run_until_idle(start)
    # Two each to the first two people, then the day's four are used: the third waits for tomorrow.
    assert report.queued == 4 and report.capped == 3
    assert await sent_per_contact() == {first: 2, second: 2}
    held = await enrolments(sessions)
    assert "2 in 7 days to this person already" in held[first].note
    assert "the campaign's 4 a day have gone" in held[third].note
    assert held[third].next_due_at == start.replace(hour=0) + dt.timedelta(days=1)

    await planner.run_until_idle(start + dt.timedelta(days=1))
    assert await sent_per_contact() == {first: 2, second: 2, third: 2}
    await planner.run_until_idle(start + dt.timedelta(days=6.9))
    assert await sent_per_contact() == {first: 2, second: 2, third: 2}   # nobody's week is over yet
    await planner.run_until_idle(start + dt.timedelta(days=7, minutes=1))
    assert await sent_per_contact() == {first: 3, second: 3, third: 2}
    await planner.run_until_idle(start + dt.timedelta(days=8, minutes=1))
    assert await sent_per_contact() == {first: 3, second: 3, third: 3}
    assert {e.status for e in (await enrolments(sessions)).values()} == {EnrolmentStatus.COMPLETED}
    assert len({row.idempotency_key for row in await sends(sessions)}) == 9

    for caps, message in (({"per_contact": {"messages": 2}}, "caps.per_contact"),
                          ({"per_day": 0}, "caps.per_day: a whole number from 1"),
                          ({"per_contact": {"messages": 1, "days": 0}}, "days: more than 0"),
                          ({"per_week": 3}, "caps: unknown per_week")):
        async with sessions() as session:
            with pytest.raises(CampaignInvalid, match=message):
                await campaigns.create_campaign("c", audience={}, steps=[WELCOME], exits=[], channel_kinds=KINDS,
                                                actor=None, caps=caps, db_session=session)


async def test_a_draft_is_edited_a_started_campaign_is_copied_instead(sessions):
    draft_id = await campaign_of(sessions, [WELCOME], activate=False)
    async with sessions() as session, session.begin():
        draft = await session.get(Campaign, draft_id)
        await campaigns.update_draft(draft, name="Expo, second try", audience={"tags": ["vip"]},
                                     steps=[FOLLOW_UP, WELCOME], exits=["conversion"], channel_kinds=KINDS,
                                     caps={"per_day": 10}, actor=None, db_session=session)
    async with sessions() as session, session.begin():
        draft = await session.get(Campaign, draft_id)
        assert (draft.name, draft.audience["tags"], draft.exits, draft.caps) == \
            ("Expo, second try", ["vip"], ["conversion"], {"per_day": 10})
        assert [s.name for s in await steps_of(draft_id, db_session=session)] == ["follow-up", "welcome"]
        await campaigns.set_status(draft, CampaignStatus.ACTIVE, actor=None, db_session=session)
    async with sessions() as session, session.begin():
        started = await session.get(Campaign, draft_id)
        with pytest.raises(CampaignStarted, match="only a draft is edited: copy it"):
            await campaigns.update_draft(started, name="x", audience={}, steps=[WELCOME], exits=[],
                                         channel_kinds=KINDS, actor=None, db_session=session)
        first = await campaigns.copy_campaign(started, actor=None, db_session=session)
        second = await campaigns.copy_campaign(started, actor=None, db_session=session)
        assert (first.name, second.name) == ("Expo, second try (copy)", "Expo, second try (copy 2)")
        assert first.status == CampaignStatus.DRAFT and first.caps == {"per_day": 10}
        assert [s.name for s in await steps_of(first.id, db_session=session)] == ["follow-up", "welcome"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_workers_first_message_question_reads_by_conversation_on_postgresql(sessions, database_url):
    """Whether a message is its conversation's first customer message was asked as "the least id
    of these conversations' customer messages": PostgreSQL, before its statistics caught up with
    a growing table, read every customer message of the table for each batch. Asked as each
    conversation's messages in id order, it reads by conversation whatever the statistics say."""
    account = await make_account(sessions)
    for n, user in enumerate(("1", "2", "3")):
        await customer_writes(sessions, account, user, "hello", 10 + n)
    async with query_plans(sessions.kw["bind"], "SELECT DISTINCT message.conversation_id") as plans:
        await MessageWorker(sessions, []).run_once()
    [plan] = plans
    # (The batch's own three messages may be read from the table: it is that small here.)
    assert any("ix_message_conversation" in step for step in plan), plan


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_workers_claim_takes_its_messages_by_id_on_postgresql_whose_statistics_lag_a_burst(
        sessions, database_url):
    """The worker's claim updated the messages it picked "where the id is one picked and the
    message is still unprocessed": PostgreSQL, whose statistics were taken before a burst of
    customer messages, believed the backlog empty and read all of it for each message picked. The
    picked messages are locked: the id alone says which."""
    from sqlalchemy import text

    account = await make_account(sessions)
    await customer_writes(sessions, account, "1", "hello", 10)
    async with sessions() as session:
        conversation = await session.scalar(select(Conversation))
    burst = text(
        "INSERT INTO message (conversation_id, channel_account_id, identity_id, direction, kind, text, attachments, "
        "created_at, processed_at, processing_attempts) SELECT :conversation, :account, :identity, 'in', "
        "'text', 'hi ' || n, '[]', now(), CASE WHEN :processed THEN now() END, 0 FROM generate_series(1, 20000) AS n")
    where = {"conversation": conversation.id, "account": account, "identity": conversation.identity_id}
    engine = sessions.kw["bind"]
    try:
        async with engine.begin() as conn:
            await conn.execute(burst, {"processed": True, **where})  # yesterday's messages, answered
            await conn.execute(text("ANALYZE message"))  # and today's burst not analysed yet
            await conn.execute(burst, {"processed": False, **where})
        async with query_plans(engine, "WITH due AS") as plans:
            assert len(await MessageWorker(sessions, [], batch_size=500)._claim()) == 500
    finally:
        await forget_statistics(engine, "message")
    [plan] = plans
    assert any("pk_message" in step for step in plan), plan


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_planner_asks_who_had_an_offer_by_identity_on_postgresql_whose_statistics_lag_the_campaign(
        sessions, database_url):
    """Whose first offer this is (it says how to stop them) was asked as "the batch's contacts'
    identities joined to the marketing sends": PostgreSQL, its statistics behind a campaign, read
    every marketing send for each batch of 500 contacts (60 ms, and growing). The identities are
    read first, then their sends by them."""
    from crm_core.campaigns.planning import _load
    from tests.crm_core.test_marketing_rules import a_crowd_each_sent_an_offer

    audience = await a_crowd_each_sent_an_offer(sessions, 5_000, offers=20)
    batch = sorted(audience.values())[:500]
    async with query_plans(sessions.kw["bind"], "outbox_message.purpose =") as plans:
        async with sessions() as session:
            known = await _load(batch, session, messages=True, tags=True)
    assert known.marketed == set(batch)
    [plan] = plans
    assert any("Index Cond: ((identity_id = ANY" in step for step in plan), plan


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_planners_claim_reads_the_due_enrolments_in_its_order_from_their_index(sessions, database_url):
    """A campaign enrols its audience at one instant: every due time ties and the id orders the
    claim. PostgreSQL's index of the due enrolments held no id after the due time, so it read and
    sorted every due enrolment for each batch of 500 (15 ms at 100,000), and before autovacuum had
    analysed the new enrolments (a minute), joined to the campaigns, 40 ms. The index now ends in
    the id, the running campaigns are read first, and a large enrolment is analysed at once: the
    batch is the index's first entries, no sort, from the campaign's first batch."""
    from sqlalchemy import text

    from tests.fakes.crowd import seed_crowd

    await seed_crowd(sessions, await make_account(sessions), 5_000)  # customers who agreed to marketing
    async with sessions() as session, session.begin():
        campaign = await campaigns.create_campaign("Winter offer", audience={}, steps=[WELCOME], exits=[],
                                                   channel_kinds=KINDS, actor=None, db_session=session)
        assert await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session) == 5_000
    engine = sessions.kw["bind"]
    try:
        if engine.dialect.name == "postgresql":  # analysed as they were enrolled, not a minute later
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM pg_stats WHERE tablename = 'enrolment'"))
        async with query_plans(engine, "ORDER BY enrolment.next_due_at, enrolment.id") as plans:
            report = await NurturePlanner(sessions, batch_size=500).run_once()
    finally:
        if engine.dialect.name == "postgresql":
            await forget_statistics(engine, "enrolment")
    assert report.queued == 500
    [plan] = plans
    assert any("ix_enrolment_due" in step for step in plan), plan
    assert not any("Sort" in step or "TEMP B-TREE" in step for step in plan), plan
