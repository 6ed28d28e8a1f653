"""Marketing at send time: at most N per contact per window across channels, never in the
contact's quiet hours; a held-back send is rescheduled with its reason, never lost."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select, update

from crm_core.consent import service as consent
from crm_core.consent.marketing_rules import MarketingRules
from crm_core.db import utcnow
from crm_core.models import Contact, Identity, MessagePurpose, OutboxMessage, OutboxStatus
from crm_core.outbox.dispatcher import Dispatcher
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage
from tests.crm_core.test_dispatcher import FAST, ScriptedGateway, conversation_for, drain
from tests.crm_core.test_ingest import CIPHER, make_account
from tests.fakes.databases import forget_statistics, query_plans

UTC = dt.UTC


def test_quiet_hours_are_the_contacts_local_night():
    rules = MarketingRules(quiet_start=dt.time(21), quiet_end=dt.time(8), default_timezone="Asia/Shanghai")
    # 14:30 UTC is 22:30 in Shanghai: quiet until 08:00 there, 00:00 UTC.
    assert rules.quiet_until(dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC), None) == \
        dt.datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    # 23:30 UTC is 07:30 in Shanghai (still quiet), 00:30 in Berlin (quiet until 08:00 CET = 07:00 UTC).
    assert rules.quiet_until(dt.datetime(2026, 11, 23, 23, 30, tzinfo=UTC), None) == \
        dt.datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert rules.quiet_until(dt.datetime(2026, 11, 23, 23, 30, tzinfo=UTC), "Europe/Berlin") == \
        dt.datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    # 03:00 UTC is 11:00 in Shanghai: not quiet. An unknown zone falls back to the default.
    assert rules.quiet_until(dt.datetime(2026, 11, 23, 3, 0, tzinfo=UTC), None) is None
    assert rules.quiet_until(dt.datetime(2026, 11, 23, 3, 0, tzinfo=UTC), "Mars/Olympus") is None
    # A window inside one day.
    lunch = MarketingRules(quiet_start=dt.time(12), quiet_end=dt.time(14), default_timezone="UTC")
    assert lunch.quiet_until(dt.datetime(2026, 11, 23, 13, 0, tzinfo=UTC), None) == \
        dt.datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert lunch.quiet_until(dt.datetime(2026, 11, 23, 14, 0, tzinfo=UTC), None) is None
    assert MarketingRules.parse_quiet_hours("21:00-08:00") == (dt.time(21), dt.time(8))
    assert MarketingRules.parse_quiet_hours("") == (None, None)
    for bad in ("21-8h", "09:00-09:00", "25:00-08:00"):
        with pytest.raises(ValueError, match="quiet hours"):
            MarketingRules.parse_quiet_hours(bad)


async def one_person_on_two_channels(sessions) -> tuple[int, list]:
    """A contact reached on two Telegram bots (two channel accounts), marketing consent granted."""
    first = await make_account(sessions, "1")
    second = await make_account(sessions, "2")
    conversations = [await conversation_for(sessions, first, "51"), await conversation_for(sessions, second, "52")]
    async with sessions() as session, session.begin():
        contact_id = conversations[0].contact_id
        await session.execute(update(Identity).where(Identity.id == conversations[1].identity_id)
                              .values(contact_id=contact_id))
        await consent.record(contact_id, purpose=MessagePurpose.MARKETING, granted=True, source="form",
                             db_session=session)
    return contact_id, conversations


async def queue(sessions, conversation, text: str) -> int:
    async with sessions() as session, session.begin():
        row = await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text),
                                            idempotency_key=f"promo:{text}", purpose=MessagePurpose.MARKETING,
                                            db_session=session)
        return row.id


async def test_the_cap_holds_across_channels_and_reschedules_the_rest(sessions):
    contact_id, (on_first, on_second) = await one_person_on_two_channels(sessions)
    ids = [await queue(sessions, on_first, "promo 1"), await queue(sessions, on_second, "promo 2"),
           await queue(sessions, on_first, "promo 3")]
    gateway = ScriptedGateway()
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=dataclasses.replace(
        FAST, marketing=MarketingRules(cap_count=2, cap_days=7)))
    await drain(dispatcher, rounds=10)
    # Two of the three go; which two depends on which channel answered first.
    assert len(gateway.sent) == 2
    async with sessions() as session:
        rows = {r.id: r for r in (await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))}
    [held] = [row for row in rows.values() if row.status != OutboxStatus.SENT]
    assert held.status == OutboxStatus.PENDING and held.attempts == 0
    assert "frequency cap of 2 marketing messages per 7 days" in held.last_error
    first_sent = min(row.sent_at for row in rows.values() if row.status == OutboxStatus.SENT)
    assert abs((held.next_attempt_at - (first_sent + dt.timedelta(days=7))).total_seconds()) < 2
    # Service messages (answers to the customer) are not marketing: they go.
    async with sessions() as session, session.begin():
        await enqueue_to_conversation(on_first, OutboundMessage(on_first.external_thread_id, "your answer"),
                                      idempotency_key="svc", db_session=session)
    await drain(dispatcher, rounds=5)
    assert "your answer" in [text for _, text, _ in gateway.sent]


async def test_two_dispatchers_racing_for_one_person_still_send_only_the_cap(sessions):
    _, (on_first, on_second) = await one_person_on_two_channels(sessions)
    for n in range(6):
        await queue(sessions, (on_first, on_second)[n % 2], f"promo {n}")
    gateway = ScriptedGateway()
    # One row per claim: the three dispatchers really do decide at the same time.
    policy = dataclasses.replace(FAST, batch_size=1, marketing=MarketingRules(cap_count=2, cap_days=7))
    dispatchers = [Dispatcher(sessions, gateway, CIPHER, policy=policy, owner=f"d{i}") for i in range(3)]
    await asyncio.gather(*(drain(d, rounds=10) for d in dispatchers))
    assert len(gateway.sent) == 2
    async with sessions() as session:
        statuses = (await session.scalars(select(OutboxMessage.status))).all()
    assert sorted(statuses).count(OutboxStatus.PENDING) == 4 and statuses.count(OutboxStatus.SENT) == 2


async def test_quiet_hours_reschedule_to_the_contacts_morning(sessions):
    contact_id, (on_first, _) = await one_person_on_two_channels(sessions)
    now = utcnow()
    # Quiet from an hour ago to an hour from now in Berlin, whatever time the test runs.
    berlin = now.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    start = (berlin - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (berlin + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    async with sessions() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == contact_id).values(timezone="Europe/Berlin"))
    row_id = await queue(sessions, on_first, "late promo")
    gateway = ScriptedGateway()
    rules = MarketingRules(quiet_start=start, quiet_end=end, default_timezone="Asia/Shanghai")
    await drain(Dispatcher(sessions, gateway, CIPHER, policy=dataclasses.replace(FAST, marketing=rules)), rounds=5)
    assert gateway.sent == []
    async with sessions() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row.status == OutboxStatus.PENDING and "quiet hours" in row.last_error and "Europe/Berlin" in row.last_error
    assert dt.timedelta(minutes=55) < row.next_attempt_at - now < dt.timedelta(minutes=62)


# The plan is asked of SQLite; PostgreSQL plans from its statistics.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_cap_reads_a_contacts_sends_by_their_identities_not_every_send_ever_made(sessions,
                                                                                          database_url):
    """SQLite chose the plan that read the outbox by status (every marketing send ever made) for
    each group of sends, so a campaign slowed as it went; the query now leads it to the index on
    the recipient's identity. Checked on SQLite's own plan for the statement the cap runs."""
    from crm_core.consent.marketing_rules import hold_back

    contact_id, _ = await one_person_on_two_channels(sessions)
    async with query_plans(sessions.kw["bind"], "coalesce(outbox_message.sent_at, outbox_message.claimed_at)") \
            as plans:
        async with sessions() as session, session.begin():
            await hold_back([(1, contact_id)], MarketingRules(cap_count=2, cap_days=7), db_session=session)
    [plan] = plans
    assert not any("ix_outbox_due" in step for step in plan), plan
    assert any("ix_outbox_identity" in step for step in plan), plan


async def a_crowd_each_sent_an_offer(sessions, count: int, *, offers: int = 1) -> dict[str, int]:
    """`count` customers of a new Telegram account, each sent `offers` marketing offers, and
    PostgreSQL's statistics of them removed, as on a database autovacuum has not analysed since the
    campaign began; chat id -> contact id."""
    from sqlalchemy import func, insert, literal

    from crm_core.db import UTCDateTime
    from crm_core.models import Conversation
    from tests.fakes.crowd import seed_crowd

    crowd = await make_account(sessions, "3")
    audience = await seed_crowd(sessions, crowd, count)
    offer = func.generate_series(1, offers).table_valued("n").render_derived(name="offer")
    async with sessions.kw["bind"].begin() as conn:
        now = literal(utcnow(), UTCDateTime())
        await conn.execute(insert(OutboxMessage.__table__).from_select(
            ["idempotency_key", "channel_account_id", "recipient", "purpose", "payload", "status", "attempts",
             "next_attempt_at", "created_at", "sent_at", "conversation_id", "identity_id"],
            select(func.concat("sent:", Conversation.id, ":", offer.c.n), Conversation.channel_account_id,
                   Conversation.external_thread_id, literal("marketing"), func.jsonb_build_object("text", "offer"),
                   literal("sent"), literal(1), now, now, now, Conversation.id, Conversation.identity_id)
            .join(offer, literal(True)).where(Conversation.channel_account_id == crowd)))
    await forget_statistics(sessions.kw["bind"], "outbox_message", "identity", "contact")
    return audience


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_cap_reads_by_identity_on_postgresql_whose_statistics_lag_the_campaign(sessions, database_url):
    """PostgreSQL's statistics, taken before a campaign's sends went out (autovacuum had not
    analysed the table since), said few sends were sent: it read the cap's sends by status, every
    marketing send of the campaign for each group of sends, and the campaign slowed to a quarter
    of its first rate. The sends are now found by the contacts' identities first, whatever the
    statistics say."""
    from crm_core.consent.marketing_rules import hold_back

    contact_id, _ = await one_person_on_two_channels(sessions)
    audience = await a_crowd_each_sent_an_offer(sessions, 20_000)  # a campaign's audience
    engine = sessions.kw["bind"]
    async with query_plans(engine, "coalesce(outbox_message.sent_at, outbox_message.claimed_at)") as plans:
        async with sessions() as session, session.begin():
            group = [contact_id, *list(audience.values())[:40:2]]  # a group of sends to go together
            await hold_back([(n, contact) for n, contact in enumerate(group, start=1)],
                            MarketingRules(cap_count=2, cap_days=7), db_session=session)
    [plan] = plans
    assert not any("ix_outbox_due" in step for step in plan), plan
    assert any("ix_outbox_identity" in step for step in plan), plan
