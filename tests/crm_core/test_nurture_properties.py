"""Property-based: whatever the schedule, opt-outs and crashes, a campaign never
sends marketing without consent at the moment of sending, never beyond the cap,
never in the contact's quiet hours, and never the same step twice.

Each example runs a campaign on a fresh SQLite database under a simulated clock
(time-machine moves the wall clock; the event loop's monotonic clock is left
alone): hypothesis picks the steps' delays, the contacts' time zones and a
sequence of clock advances, planner and dispatcher runs, opt-outs (everywhere
or on one channel) and renewed consent, a planner crashing mid-batch and a dispatcher dying right after the
platform took a message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm_core import migrate
from crm_core.campaigns import service as campaigns
from crm_core.campaigns.definitions import StepSpec
from crm_core.campaigns.planning import NurturePlanner
from crm_core.consent import service as consent
from crm_core.consent.marketing_rules import MarketingRules
from crm_core.db import create_engine, session_factory
from crm_core.models import CampaignStatus, ConsentEvent, Contact, Conversation, MessagePurpose
from crm_core.outbox.dispatcher import Dispatcher, DispatchPolicy
from crm_core.ports import SendResult
from tests.crm_core.test_dispatcher import ScriptedGateway, conversation_for
from tests.crm_core.test_ingest import CIPHER, make_account

CAP, CAP_DAYS = 2, 7.0
RULES = MarketingRules(cap_count=CAP, cap_days=CAP_DAYS, quiet_start=dt.time(21), quiet_end=dt.time(8),
                       default_timezone="Asia/Shanghai")
POLICY = DispatchPolicy(lease_seconds=5, backoff_base=0.01, backoff_cap=0.05, max_attempts=3, marketing=RULES)
ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", None)
START = dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC)

_template: dict[str, Path] = {}


class Killed(BaseException):
    """The dispatcher's process dies (not an error it could handle)."""


class WatchingGateway(ScriptedGateway):
    """Delivers, noting for each send the contact's consent as the ledger stood at that moment."""

    def __init__(self, sessions, contacts_by_chat: dict[str, int]) -> None:
        super().__init__()
        self.sessions = sessions
        self.contacts_by_chat = contacts_by_chat
        self.log: list[tuple[int, str, dt.datetime, bool]] = []
        self.die_after_next = False

    async def send(self, account, message) -> SendResult:
        contact_id = self.contacts_by_chat[message.recipient]
        async with self.sessions() as session:
            latest = await session.scalar(
                select(ConsentEvent.granted).where(ConsentEvent.contact_id == contact_id,
                                                   ConsentEvent.purpose == MessagePurpose.MARKETING)
                .order_by(ConsentEvent.id.desc()).limit(1))
        self.log.append((contact_id, message.text, dt.datetime.now(dt.UTC), bool(latest)))
        if self.die_after_next:
            self.die_after_next = False
            raise Killed()
        return SendResult(platform_message_id=f"p{len(self.log)}")


async def _end_the_rest_of_the_process() -> None:
    """Cancel every task but this one: what a killed dispatcher process had started."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


async def fresh_database(tmp: Path) -> str:
    """A migrated SQLite file, copied from one made once per session (migrating each time is slow)."""
    if "db" not in _template:
        path = Path(tempfile.mkdtemp()) / "template.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(engine)
        await engine.dispose()
        _template["db"] = path
    shutil.copy(_template["db"], tmp / "test.db")
    return f"sqlite+aiosqlite:///{tmp / 'test.db'}"


actions = st.lists(st.one_of(
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=40)),   # hours
    st.tuples(st.just("plan"), st.just(0)),
    st.tuples(st.just("dispatch"), st.just(0)),
    st.tuples(st.just("opt_out"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("consent_again"), st.integers(min_value=0, max_value=3)),
    # Withdrawn for this channel only (an admin's entry): queued sends stay queued, so only
    # the check at send time stands between them and the customer.
    st.tuples(st.just("withdraw_on_channel"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("planner_crash"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("dispatcher_dies"), st.just(0)),
), min_size=5, max_size=30)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The dangerous orders, always tried besides hypothesis's own: consent withdrawn between
# planning and sending; a dispatcher dying after the platform took the message; three
# steps due at once (the cap); a contact in their night (quiet hours).
@example(delays=[0], zones=["Asia/Shanghai", "Asia/Shanghai"],
         script=[("plan", 0), ("withdraw_on_channel", 0), ("dispatch", 0)])
@example(delays=[0, 0], zones=["Asia/Shanghai", "Asia/Shanghai"],
         script=[("plan", 0), ("dispatcher_dies", 0), ("dispatch", 0), ("advance", 1), ("dispatch", 0)])
@example(delays=[0, 0, 0], zones=["Asia/Shanghai", "America/New_York"],
         script=[("plan", 0), ("dispatch", 0), ("plan", 0), ("dispatch", 0), ("plan", 0), ("dispatch", 0)])
@example(delays=[0], zones=["Europe/Berlin", "Asia/Shanghai"], script=[("plan", 0), ("dispatch", 0)])
# A dispatcher killed while its other sends are in flight, then the clock moved into the night.
@example(delays=[0], zones=["Europe/Berlin"] * 3,
         script=[("advance", 8), ("plan", 0), ("dispatcher_dies", 0), ("dispatch", 0), ("advance", 14),
                 ("dispatch", 0)])
@given(delays=st.lists(st.integers(min_value=0, max_value=4 * 24 * 60), min_size=1, max_size=4),
       zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=4), script=actions)
def test_no_send_without_consent_beyond_the_cap_in_quiet_hours_or_twice(delays, zones, script):
    tmp = Path(tempfile.mkdtemp())
    try:
        with time_machine.travel(START, tick=False) as clock:
            log, zone_of = asyncio.run(_run(tmp, delays, zones, script, clock))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seen = set()
    for contact_id, text, at, consented in log:
        assert consented, f"contact {contact_id} was sent {text!r} at {at} without marketing consent"
        assert (contact_id, text) not in seen, f"{text!r} sent twice to contact {contact_id}"
        seen.add((contact_id, text))
        local = at.astimezone(ZoneInfo(zone_of[contact_id] or RULES.default_timezone)).time()
        assert dt.time(8) <= local < dt.time(21), f"{text!r} reached contact {contact_id} at {local}, a quiet hour"
        window = [t for c, _, t, _ in log if c == contact_id and at - dt.timedelta(days=CAP_DAYS) < t <= at]
        assert len(window) <= CAP, f"contact {contact_id} got {len(window)} messages in {CAP_DAYS:g} days"


async def _run(tmp: Path, delays: list[int], zones: list[str | None], script, clock):
    url = await fresh_database(tmp)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        account = await make_account(sessions)
        contacts, zone_of, by_chat = [], {}, {}
        for n, zone in enumerate(zones):
            conversation: Conversation = await conversation_for(sessions, account, str(n + 1))
            contacts.append(conversation.contact_id)
            zone_of[conversation.contact_id] = zone
            by_chat[conversation.external_thread_id] = conversation.contact_id
            async with sessions() as session, session.begin():
                contact = await session.get(Contact, conversation.contact_id)
                contact.timezone = zone
                await consent.record(contact.id, purpose=MessagePurpose.MARKETING, granted=True, source="form",
                                     db_session=session)
        async with sessions() as session, session.begin():
            steps = [StepSpec(f"step {i}", {"en": f"step {i}"}, delay_minutes=delay)
                     for i, delay in enumerate(delays, start=1)]
            campaign = await campaigns.create_campaign("c", audience={}, steps=steps, exits=[],
                                                       channel_kinds=["telegram"], actor=None, db_session=session)
            await campaigns.set_status(campaign, CampaignStatus.ACTIVE, actor=None, db_session=session)

        gateway = WatchingGateway(sessions, by_chat)
        dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=POLICY)
        planner = NurturePlanner(sessions)
        for action, arg in [*script, ("advance", 24 * 30), ("plan", 0), ("dispatch", 0)]:
            if action == "advance":
                clock.shift(dt.timedelta(hours=arg))
            elif action == "plan":
                await planner.run_until_idle()
            elif action == "dispatch":
                await dispatcher.recover_abandoned()
                for _ in range(20):
                    try:
                        if not await dispatcher.run_once():
                            break
                    except Killed:
                        # Nothing of the dead process runs on: its other sends in flight stop where they
                        # are (left running, one resumed in a later action, after the clock had moved on,
                        # and "delivered" in a quiet hour). A new process takes over; the dead one's rows
                        # wait for their lease to run out.
                        await _end_the_rest_of_the_process()
                        dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=POLICY)
                        break
            elif action == "withdraw_on_channel":
                async with sessions() as session, session.begin():
                    await consent.record(contacts[arg % len(contacts)], purpose=MessagePurpose.MARKETING,
                                         granted=False, channel="telegram", source="admin", db_session=session)
            elif action in ("opt_out", "consent_again"):
                contact_id = contacts[arg % len(contacts)]
                async with sessions() as session, session.begin():
                    granted = action == "consent_again"
                    await consent.record(contact_id, purpose=MessagePurpose.MARKETING, granted=granted,
                                         source="message", db_session=session)
                    if not granted:
                        await consent.cancel_pending(contact_id, MessagePurpose.MARKETING, reason="opted out",
                                                     db_session=session)
            elif action == "planner_crash":
                crashing = NurturePlanner(sessions, batch_size=10)
                calls = []

                def queue_then_crash(*a, _real=crashing._queue, _calls=calls, _at=arg, **k):
                    _calls.append(1)
                    if len(_calls) >= _at:
                        raise ConnectionError("planner process killed")
                    return _real(*a, **k)

                crashing._queue = queue_then_crash
                try:
                    await crashing.run_once()
                except ConnectionError:
                    pass
            elif action == "dispatcher_dies":
                gateway.die_after_next = True
        return gateway.log, zone_of
    finally:
        await engine.dispose()
