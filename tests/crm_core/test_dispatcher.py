"""The dispatcher sends each outbox row once, paces, retries, and stops where it must."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import select, update

from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.db import utcnow
from crm_core.models import Conversation, Direction, Identity, Message, OutboxMessage, OutboxStatus
from crm_core.outbox.dispatcher import Dispatcher, DispatchPolicy
from crm_core.outbox.pacing import Pacer
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import (
    AccountRef,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RecipientActivity,
    RecipientUnreachable,
    RetryLater,
    SendHeld,
    SendResult,
    TemporaryFailure,
)
from tests.crm_core.test_ingest import CIPHER, make_account, text_event

FAST = DispatchPolicy(lease_seconds=5, backoff_base=0.01, backoff_cap=0.05, max_attempts=3, idle_poll_seconds=0.02)


class ScriptedGateway:
    """Records sends; `script[text]` lists exceptions to raise on successive attempts."""

    def __init__(self, per_chat: RateLimit = RateLimit(1000, 1)) -> None:
        self.sent: list[tuple[str, str, float]] = []
        self.calls: list[str] = []
        self.script: dict[str, list[Exception]] = {}
        self.per_chat = per_chat
        self.reply_window = False
        self.reply_via = False
        self.activities: list[RecipientActivity | None] = []
        self.replies_via: list[dict | None] = []

    def needs_recipient_activity(self, account: AccountRef) -> bool:
        return self.reply_window

    def wants_reply_via(self, account: AccountRef) -> bool:
        return self.reply_via

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        return [(f"acct:{account.id}", RateLimit(1000, 1)), (f"chat:{recipient}", self.per_chat)]

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        self.calls.append(message.text)
        self.activities.append(message.recipient_activity)
        self.replies_via.append(message.reply_via)
        errors = self.script.get(message.text)
        if errors:
            raise errors.pop(0)
        self.sent.append((message.recipient, message.text, time.monotonic()))
        return SendResult(platform_message_id=f"{message.recipient}:{len(self.sent)}")


async def conversation_for(sessions, account_id: int, user: str = "42") -> Conversation:
    async with sessions() as session, session.begin():
        await ingest_events([text_event(int(user) * 1000 + 1, user=user)], channel_account_id=account_id,
                            db_session=session)
    async with sessions() as session:
        return await session.scalar(select(Conversation).where(Conversation.external_thread_id == user))


async def enqueue(sessions, conversation: Conversation, *texts: str) -> list[int]:
    ids = []
    async with sessions() as session, session.begin():
        for text in texts:
            row = await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text),
                                                idempotency_key=f"test:{conversation.id}:{text}", db_session=session)
            ids.append(row.id)
    return ids


async def outbox(sessions, row_id: int) -> OutboxMessage:
    async with sessions() as session:
        return await session.get(OutboxMessage, row_id)


async def drain(dispatcher: Dispatcher, rounds: int = 50) -> None:
    for _ in range(rounds):
        await dispatcher.run_once()
        await asyncio.sleep(0.02)


async def test_sends_and_records_the_platform_message_id(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    [row_id] = await enqueue(sessions, conversation, "hello")
    assert await dispatcher.run_once() == 1
    row = await outbox(sessions, row_id)
    assert (row.status, row.attempts, row.platform_message_id) == (OutboxStatus.SENT, 1, "42:1")
    async with sessions() as session:
        message = await session.get(Message, row.message_id)
    assert message.platform_message_id == "42:1"
    assert await dispatcher.run_once() == 0  # nothing sent twice
    assert gateway.calls == ["hello"]


async def test_the_same_idempotency_key_is_one_send(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    first = await enqueue(sessions, conversation, "once")
    second = await enqueue(sessions, conversation, "once")
    assert first == second
    await drain(dispatcher, 3)
    assert gateway.calls == ["once"]


async def test_rate_limited_by_the_platform_waits_retry_after_without_using_an_attempt(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    # Long enough that a busy CI machine still finds the row not due on the second look.
    gateway.script["slow down"] = [RetryLater("flood", retry_after=2.0)]
    [row_id] = await enqueue(sessions, conversation, "slow down")
    before = utcnow()
    await dispatcher.run_once()
    row = await outbox(sessions, row_id)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 0
    assert row.next_attempt_at >= before + dt.timedelta(seconds=1.95)
    assert await dispatcher.run_once() == 0  # not due yet
    await asyncio.sleep(2.1)
    await dispatcher.run_once()
    assert (await outbox(sessions, row_id)).status == OutboxStatus.SENT


async def test_temporary_failures_back_off_then_give_up(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    gateway.script["flaky"] = [TemporaryFailure("502")]
    gateway.script["down"] = [TemporaryFailure("503")] * 5
    flaky, down = await enqueue(sessions, conversation, "flaky", "down")
    await drain(dispatcher)
    assert (await outbox(sessions, flaky)).status == OutboxStatus.SENT
    row = await outbox(sessions, down)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == FAST.max_attempts
    assert "gave up after 3 attempts" in row.last_error
    assert gateway.calls.count("down") == 3


def test_backoff_grows_exponentially_with_jitter():
    policy = DispatchPolicy(backoff_base=2, backoff_cap=900)
    samples = {n: [policy.backoff(n) for _ in range(200)] for n in (1, 4, 20)}
    assert all(0.2 <= s <= 2 for s in samples[1])
    assert all(1.6 <= s <= 16 for s in samples[4])
    assert all(s <= 900 for s in samples[20])
    assert len(set(samples[4])) > 100  # jittered, so retries do not stampede


async def test_a_blocked_recipient_is_marked_unreachable_and_not_tried_again(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    gateway.script["first"] = [RecipientUnreachable("Telegram: Forbidden: bot was blocked by the user")]
    first, second = await enqueue(sessions, conversation, "first", "second")
    await drain(dispatcher, 3)
    assert (await outbox(sessions, first)).status == OutboxStatus.UNREACHABLE
    row = await outbox(sessions, second)
    assert row.status == OutboxStatus.UNREACHABLE
    assert "blocked by the user" in row.last_error
    assert gateway.calls == ["first"]  # the second was never attempted
    async with sessions() as session:
        identity = await session.get(Identity, conversation.identity_id)
    assert identity.reachable is False


async def test_a_permanent_failure_is_not_retried(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    gateway.script["bad"] = [PermanentFailure("message is too long")]
    [row_id] = await enqueue(sessions, conversation, "bad")
    await drain(dispatcher, 3)
    row = await outbox(sessions, row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.FAILED, 1, "message is too long")


async def test_sends_to_one_chat_are_paced_and_ordered_while_other_chats_go_at_once(sessions):
    account_id = await make_account(sessions)
    gateway = ScriptedGateway(per_chat=RateLimit(1, 0.25))
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    alice = await conversation_for(sessions, account_id, "42")
    bob = await conversation_for(sessions, account_id, "43")
    await enqueue(sessions, alice, "a1", "a2", "a3")
    await enqueue(sessions, bob, "b1")
    await dispatcher.run_once()
    to_alice = [(text, at) for chat, text, at in gateway.sent if chat == "42"]
    assert [text for text, _ in to_alice] == ["a1", "a2", "a3"]
    gaps = [b[1] - a[1] for a, b in zip(to_alice, to_alice[1:])]
    assert all(gap >= 0.24 for gap in gaps), gaps
    bob_at = next(at for chat, _, at in gateway.sent if chat == "43")
    assert bob_at - to_alice[0][1] < 0.2


async def test_rows_of_a_dead_dispatcher_are_released_or_reported_in_doubt(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    claimed, sending = await enqueue(sessions, conversation, "never touched", "maybe delivered")
    dead = "some-other-host:1:dispatcher:x"
    long_ago = utcnow() - dt.timedelta(seconds=FAST.lease_seconds + 1)
    async with sessions() as session, session.begin():
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == claimed)
                              .values(status=OutboxStatus.CLAIMED, claimed_by=dead, claimed_at=long_ago))
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == sending)
                              .values(status=OutboxStatus.SENDING, claimed_by=dead, claimed_at=long_ago, attempts=1))
    report = await dispatcher.recover_abandoned()
    assert report.released == 1
    assert report.in_doubt == [sending]
    await drain(dispatcher, 3)
    assert gateway.calls == ["never touched"]
    row = await outbox(sessions, sending)
    assert row.status == OutboxStatus.IN_DOUBT
    assert "scrm outbox resolve" in row.last_error


async def test_a_live_dispatchers_fresh_claim_is_left_alone(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    [row_id] = await enqueue(sessions, conversation, "mine")
    other = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    assert len(await other._claim()) == 1
    report = await dispatcher.recover_abandoned()
    assert (report.released, report.in_doubt) == (0, [])
    assert await dispatcher.run_once() == 0
    assert (await outbox(sessions, row_id)).claimed_by == other.owner


async def test_a_dispatcher_that_lost_its_claim_does_not_send(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    [row_id] = await enqueue(sessions, conversation, "contested")
    [claimed] = await dispatcher._claim()
    async with sessions() as session, session.begin():  # recovered and re-claimed by someone else meanwhile
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                              .values(claimed_by="someone-else"))
    await dispatcher._send_one(claimed)
    assert gateway.calls == []


async def test_rows_of_a_disabled_account_wait_and_go_out_once_it_is_enabled(setup):
    sessions, account_id, gateway, dispatcher = setup
    from crm_core.models import ChannelAccount

    conversation = await conversation_for(sessions, account_id)
    [row_id] = await enqueue(sessions, conversation, "held")
    [claimed] = await dispatcher._claim()
    async with sessions() as session, session.begin():  # disabled between claim and send
        await session.execute(update(ChannelAccount).values(is_active=False))
    await dispatcher._send_one(claimed)
    assert (await outbox(sessions, row_id)).status == OutboxStatus.PENDING
    await drain(dispatcher, 3)
    assert gateway.calls == []  # not claimed while disabled
    async with sessions() as session, session.begin():
        await session.execute(update(ChannelAccount).values(is_active=True))
    await drain(dispatcher, 3)
    assert gateway.calls == ["held"]


async def test_concurrent_claims_never_exceed_the_batch_or_overlap(sessions):
    # On PostgreSQL a LIMITed `IN (subquery)` with SKIP LOCKED may be re-run and
    # claim far more than the batch; the claim must take at most batch_size rows.
    account_id = await make_account(sessions)
    conversation = await conversation_for(sessions, account_id)
    await enqueue(sessions, conversation, *(f"m{n}" for n in range(200)))
    policy = DispatchPolicy(batch_size=10)
    claimers = [Dispatcher(sessions, ScriptedGateway(), CIPHER, policy=policy) for _ in range(6)]
    seen: list[int] = []
    while True:
        rounds = await asyncio.gather(*(c._claim() for c in claimers))
        assert all(len(r) <= 10 for r in rounds), [len(r) for r in rounds]
        if not any(rounds):
            break
        seen.extend(row.id for r in rounds for row in r)
    assert len(seen) == len(set(seen)) == 200


async def test_the_pacer_forgets_chats_once_their_window_has_passed_and_still_paces_the_busy_one(monkeypatch):
    """A dispatcher that sent a campaign to 100,000 chats must not keep a window for each."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pacer = Pacer()
    for chat in range(1000):
        bucket = [(f"chat:{chat}", RateLimit(1, 1.0))]
        await pacer.sent(bucket, await pacer.wait(bucket))
    busy = [("account:1", RateLimit(2, 60.0))]
    await pacer.wait(busy)
    await pacer.wait(busy)
    await pacer.pause("chat:7", 300.0)
    clock[0] += Pacer.PRUNE_SECONDS + 1
    await pacer.wait([("chat:new", RateLimit(1, 1.0))])  # a send now prunes
    assert sorted(pacer._windows) == ["account:1", "chat:new"]  # the account's minute is not over
    assert pacer._gone == {}  # nor the moments the sends to the chats went
    assert pacer._ready_at("account:1", busy[0][1]) == 1060.0  # and it still holds its limit
    assert pacer._ready_at("chat:7", RateLimit(1, 1.0)) == 1300.0  # a pause outlives the pruning


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """Each asyncio.sleep's seconds, for a test in which only the pacer runs."""
    seconds: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        seconds.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return seconds


async def test_pacer_allows_a_burst_within_the_window_then_waits(slept):
    """30 a minute means a burst of 30, then the next when the oldest leaves the minute."""
    pacer = Pacer()
    limit = [("member:li", RateLimit(3, 0.4))]
    taken = [await pacer.wait(limit) for _ in range(3)]
    assert slept == []  # the burst went without waiting
    taken.append(await pacer.wait(limit))
    assert slept  # the fourth waited...
    assert taken[3] >= taken[0] + 0.4  # ...for the first to leave the window


async def test_sends_queued_behind_a_busy_bucket_each_sleep_once_and_go_in_turn(slept):
    """64 sends at once to an account paced at 100 a second (one place every 10 ms): each books
    its own place, so none wakes to find its place taken, and none goes closer than 10 ms to
    the one before."""
    pacer = Pacer()
    account = ("account:1", RateLimit(1, 0.01))

    async def send(chat: int) -> tuple[float, float]:
        taken = await pacer.wait([account, (f"chat:{chat}", RateLimit(1, 1.0))])
        return taken, time.monotonic()

    went = await asyncio.gather(*(send(chat) for chat in range(64)))
    assert len(slept) == 63  # all but the first slept, once each
    places = sorted(taken for taken, _ in went)
    assert all(b - a >= 0.01 - 1e-9 for a, b in zip(places, places[1:]))
    assert all(woke >= taken for taken, woke in went)  # nobody went before its place


async def test_a_send_marked_quicker_than_the_one_before_it_still_goes_a_whole_interval_after_it():
    """Between its place and its send a row is marked sending, in a group commit whose length
    varies: the second of two replies to a chat, marked at once after the first took 0.2 s,
    still reaches the chat no sooner after the first than its limit allows."""
    pacer = Pacer()
    chat = [("chat:1", RateLimit(1, 0.3))]
    went: list[float] = []

    async def send(marking: float) -> None:
        taken = await pacer.wait(chat)
        await asyncio.sleep(marking)
        await pacer.sent(chat, taken)
        went.append(time.monotonic())

    await asyncio.gather(send(0.2), send(0.0))
    assert went[1] - went[0] >= 0.3 - Pacer.EARLY - 0.005, went  # (a send may go a moment early)


async def test_sends_one_group_commit_marks_together_still_go_spaced_each_sleeping_once(slept):
    """Five sends to an account paced at one every 100 ms, their places taken, all marked sending
    by one group commit that ends after the last place: they go 100 ms apart (each at most
    `Pacer.EARLY` before its moment), not in a burst, and each waits with one sleep."""
    pacer = Pacer()
    account = [("account:1", RateLimit(1, 0.1))]
    marked = asyncio.Event()
    went: list[float] = []

    async def send() -> None:
        taken = await pacer.wait(account)
        await marked.wait()
        await pacer.sent(account, taken)
        went.append(time.monotonic())

    sends = [asyncio.create_task(send()) for _ in range(5)]
    await asyncio.sleep(0.45)  # every place (0 to 400 ms) has passed
    slept.clear()
    marked.set()
    await asyncio.gather(*sends)
    assert len(slept) == 4  # all but the first, once each
    assert all(at - went[0] >= k * 0.1 - Pacer.EARLY - 0.005 for k, at in enumerate(went)), went


async def test_a_pause_while_a_send_waits_for_its_place_moves_it_after_the_pause():
    pacer = Pacer()
    account = [("account:1", RateLimit(2, 0.1))]
    first = [await pacer.wait(account), await pacer.wait(account)]  # a burst of two
    waiting = asyncio.create_task(pacer.wait(account))  # books first + 0.1
    await asyncio.sleep(0.01)
    await pacer.pause("account:1", 0.2)  # a 429 with retry_after while it sleeps
    taken = await waiting
    assert taken >= first[0] + 0.2  # not at its booked place, but after the pause
    # The place it gave up counts for nothing: the window holds the burst's last and this one.
    assert list(pacer._windows["account:1"]) == [first[1], taken]


async def test_a_reply_queued_twice_under_one_key_is_one_send_with_one_copy_in_the_conversation(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    first = await enqueue(sessions, conversation, "hello")
    assert await enqueue(sessions, conversation, "hello") == first
    await drain(dispatcher, 3)
    assert [text for _, text, _ in gateway.sent] == ["hello"]
    async with sessions() as session:
        copies = (await session.scalars(select(Message.text).where(
            Message.conversation_id == conversation.id, Message.direction == Direction.OUTBOUND))).all()
    assert copies == ["hello"]


async def test_a_held_send_keeps_its_reason_and_goes_out_when_the_customer_writes_again(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    gateway.script["later"] = [SendHeld("outside the 48-hour window")]
    [row_id] = await enqueue(sessions, conversation, "later")
    await drain(dispatcher, 3)
    row = await outbox(sessions, row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.HELD, 0, "outside the 48-hour window")
    assert gateway.sent == []

    # The customer writes again: processing the message releases the held send.
    async with sessions() as session, session.begin():
        await ingest_events([text_event(42_999, user="42")], channel_account_id=account_id, db_session=session)
    assert await MessageWorker(sessions, []).run_once() == 2  # the first message and the new one
    await drain(dispatcher, 3)
    row = await outbox(sessions, row_id)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)
    assert [text for _, text, _ in gateway.sent] == ["later"]


async def test_reply_window_platforms_get_the_customers_activity(setup):
    sessions, account_id, gateway, dispatcher = setup
    gateway.reply_window = True
    conversation = await conversation_for(sessions, account_id)
    await enqueue(sessions, conversation, "one", "two")
    await drain(dispatcher, 3)
    first, second = gateway.activities
    assert isinstance(first, RecipientActivity) and first.last_message_at is not None
    assert (first.sent_since_message, second.sent_since_message) == (0, 1)
    assert first.last_event_at is None and first.sent_since_event == 0


async def test_reply_via_is_the_newest_offer_from_the_recipient_in_that_thread(setup):
    """A DingTalk sessionWebhook comes with each message: sends use the newest one of that thread."""
    sessions, account_id, gateway, dispatcher = setup
    gateway.reply_via = True
    conversation = await conversation_for(sessions, account_id)
    await enqueue(sessions, conversation, "no offer yet")
    await drain(dispatcher, 1)
    hook = {"type": "reply_via", "session_webhook": "http://dt/session?s=2", "expires_at_ms": 1}
    async with sessions() as session, session.begin():
        for n, attachments in enumerate(([{**hook, "session_webhook": "http://dt/session?s=1"}], [hook])):
            event = dataclasses.replace(text_event(50 + n), attachments=attachments)
            await ingest_events([event], channel_account_id=account_id, db_session=session)
    await enqueue(sessions, conversation, "answer")
    await drain(dispatcher, 2)
    assert gateway.replies_via == [None, hook]


async def test_sends_that_go_together_share_their_commits(sessions):
    """A commit is an fsync: forty sends must not cost eighty of them."""
    from sqlalchemy import event

    account_id = await make_account(sessions)
    gateway = ScriptedGateway()
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    for user in range(100, 140):
        await enqueue(sessions, await conversation_for(sessions, account_id, str(user)), f"hi {user}")
    commits = []

    def count(connection) -> None:
        commits.append(connection)

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "commit", count)
    try:
        assert await dispatcher.run_once() == 40
    finally:
        event.remove(engine, "commit", count)
    assert len(gateway.sent) == 40
    async with sessions() as session:
        statuses = (await session.scalars(select(OutboxMessage.status))).all()
    assert statuses == [OutboxStatus.SENT] * 40
    # The claim, then the marks and the outcomes in groups: each row alone would take 1 + 2 * 40.
    assert len(commits) <= 20, len(commits)


async def test_a_slowly_paced_recipient_does_not_hold_up_sends_queued_after_it(sessions):
    """Five cards to a rep whose app takes one a second, then a customer's answer: the
    answer goes at once, not after the rep's cards."""
    account_id = await make_account(sessions)
    gateway = ScriptedGateway(per_chat=RateLimit(1, 1.0))
    dispatcher = Dispatcher(sessions, gateway, CIPHER, policy=FAST)
    rep = await conversation_for(sessions, account_id, "50")
    customer = await conversation_for(sessions, account_id, "51")
    await enqueue(sessions, rep, *(f"card {n}" for n in range(5)))
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await asyncio.sleep(0.3)  # the rep's lane is claimed and under way
        await enqueue(sessions, customer, "your answer")
        dispatcher.wake()
        for _ in range(150):
            if any(text == "your answer" for _, text, _ in gateway.sent):
                break
            await asyncio.sleep(0.02)
        order = [text for _, text, _ in gateway.sent]
        # The rep's cards go one a second: behind them the answer would come after "card 4", 4 s on.
        assert "your answer" in order, "the answer waited behind the rep's cards"
        assert len([text for _, text, _ in gateway.sent if text.startswith("card")]) < 5  # still pacing
    finally:
        stop.set()
        dispatcher.wake()
        await running
    # Stopped mid-lane: the cards not begun went back to the queue, none lost or stuck.
    async with sessions() as session:
        statuses = sorted((await session.scalars(select(OutboxMessage.status))).all())
    assert set(statuses) <= {OutboxStatus.SENT, OutboxStatus.PENDING} and len(statuses) == 6


async def test_platform_ids_go_onto_their_messages_and_a_taken_one_is_logged_not_asked_for_otherwise(
        setup, caplog):
    """A group of sends' ids onto the messages keeping their words; the one another message holds
    stays off (logged), the others are stored all the same. Who holds them is asked only when one
    was taken: asked after every group on PostgreSQL (asyncpg cannot count an executemany's rows), it
    was planned, while the statistics lagged a campaign, as a read of the account's messages."""
    from crm_core.outbox import platform_ids
    from tests.fakes.databases import statements_run

    sessions, account_id, _, _ = setup
    conversation = await conversation_for(sessions, account_id)
    async with sessions() as session:
        inbound = await session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    rows = [await outbox(sessions, row_id) for row_id in await enqueue(sessions, conversation, "a", "b", "c")]

    def asked(ran: list[tuple[str, object]]) -> list[str]:
        return [statement for statement, _ in ran if statement.lstrip().startswith("SELECT")]

    with statements_run(sessions.kw["bind"], "message.platform_message_id") as ran:
        free = [platform_ids.Sent(row.id, account_id, row.message_id, f"sent:{row.id}") for row in rows[:2]]
        async with sessions() as session, session.begin():
            await platform_ids.store(free, session)
        assert asked(ran) == []  # nothing taken: nothing asked
        taken = platform_ids.Sent(rows[2].id, account_id, rows[2].message_id, inbound.platform_message_id)
        again = platform_ids.Sent(rows[1].id, account_id, rows[1].message_id, f"sent:{rows[1].id}")
        async with sessions() as session, session.begin():
            await platform_ids.store([taken, again], session)
        assert len(asked(ran)) == 1
    async with sessions() as session:
        stored = {m.id: m.platform_message_id for m in (await session.scalars(
            select(Message).where(Message.id.in_([row.message_id for row in rows])))).all()}
    assert stored == {rows[0].message_id: f"sent:{rows[0].id}", rows[1].message_id: f"sent:{rows[1].id}",
                      rows[2].message_id: None}
    assert f"outbox {rows[2].id}: sent, but the platform's id" in caplog.text
    assert f"outbox {rows[1].id}:" not in caplog.text  # its own id again: no clash


async def test_a_send_the_platform_took_is_recorded_sent_even_when_its_id_is_taken(setup, caplog):
    """The platform answers with an id another stored message holds (a platform reusing ids):
    the row is sent, never left in `sending` to be sent again, and the clash is logged."""
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    async with sessions() as session:
        inbound = await session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    [row_id] = await enqueue(sessions, conversation, "taken id")

    async def same_id(account: AccountRef, message: OutboundMessage) -> SendResult:
        gateway.calls.append(message.text)
        return SendResult(platform_message_id=inbound.platform_message_id)

    gateway.send = same_id
    await drain(dispatcher, 3)
    row = await outbox(sessions, row_id)
    assert (row.status, row.platform_message_id) == (OutboxStatus.SENT, inbound.platform_message_id)
    assert gateway.calls == ["taken id"]  # once
    assert "already recorded on message" in caplog.text
    async with sessions() as session:
        sent = await session.get(Message, row.message_id)
    assert sent.platform_message_id != inbound.platform_message_id


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_claim_takes_its_rows_by_id_on_postgresql_whose_statistics_lag_the_campaign(sessions, database_url):
    """The claim updated the rows it picked "where the id is one picked and the row is still
    pending": PostgreSQL, whose statistics were taken before a campaign queued its sends (autovacuum
    analyses a minute or more later), believed few rows pending, took the second half for the
    better index and read every pending row for each row picked: the campaign's claims slowed to
    tens of milliseconds. The picked rows are locked: the id alone says which."""
    from sqlalchemy import text

    from tests.fakes.databases import forget_statistics, query_plans

    conversation = await conversation_for(sessions, await make_account(sessions))
    engine = sessions.kw["bind"]
    queue = text(
        "INSERT INTO outbox_message (idempotency_key, channel_account_id, recipient, purpose, payload, status, "
        "attempts, next_attempt_at, created_at, conversation_id, identity_id) "
        "SELECT :status || n, :account, :thread, 'marketing', '{\"text\": \"offer\"}', :status, 0, now(), now(), "
        ":conversation, :identity FROM generate_series(1, 20000) AS n")
    where = {"account": conversation.channel_account_id, "thread": conversation.external_thread_id,
             "conversation": conversation.id, "identity": conversation.identity_id}
    try:
        async with engine.begin() as conn:
            await conn.execute(queue, {"status": "sent", **where})  # yesterday's campaign
            await conn.execute(text("ANALYZE outbox_message"))  # and today's not analysed yet
            await conn.execute(queue, {"status": "pending", **where})
        async with query_plans(engine, "WITH due AS") as plans:
            claimed = await Dispatcher(sessions, ScriptedGateway(), CIPHER,
                                       policy=DispatchPolicy(batch_size=500))._claim()
    finally:
        await forget_statistics(engine, "outbox_message")
    assert len(claimed) == 500
    [plan] = plans
    assert any("pk_outbox_message" in step for step in plan), plan
