"""The consent ledger: state derived from events, checked at send time, opt-outs
recorded with their proof and cancelling pending marketing."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from crm_core.consent import service as consent
from crm_core.conversations import double_opt_in
from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.models import ConsentEvent, ConsentRequest, Conversation, MessagePurpose, OutboxMessage, OutboxStatus
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage
from tests.crm_core.test_dispatcher import conversation_for, drain, outbox
from tests.crm_core.test_ingest import make_account, text_event

MARKETING, SERVICE = MessagePurpose.MARKETING, MessagePurpose.SERVICE


async def queue(sessions, conversation: Conversation, text: str, purpose: MessagePurpose) -> int:
    async with sessions() as session, session.begin():
        row = await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text),
                                            idempotency_key=f"t:{text}", purpose=purpose, db_session=session)
        return row.id


async def test_state_is_the_newest_event_for_the_purpose_and_channel(sessions):
    account = await make_account(sessions)
    conversation = await conversation_for(sessions, account)
    contact = conversation.contact_id
    async with sessions() as session, session.begin():
        assert not (await consent.decide(contact, purpose=MARKETING, channel="email", db_session=session)).allowed
        assert (await consent.decide(contact, purpose=SERVICE, channel="email", db_session=session)).allowed
        await consent.record(contact, purpose=MARKETING, granted=True, source="form", db_session=session)
        assert (await consent.decide(contact, purpose=MARKETING, channel="email", db_session=session)).allowed
        await consent.record(contact, purpose=MARKETING, granted=False, source="message", db_session=session)
        await consent.record(contact, purpose=MARKETING, granted=True, source="admin", channel="wecom",
                             db_session=session)
        email = await consent.decide(contact, purpose=MARKETING, channel="email", db_session=session)
        wecom = await consent.decide(contact, purpose=MARKETING, channel="wecom", db_session=session)
        shown = (await consent.ledger(contact, db_session=session))["state"]["marketing"]
        await consent.record(contact, purpose=MARKETING, granted=False, source="message", db_session=session)
        after_all_channels = (await consent.ledger(contact, db_session=session))["state"]["marketing"]
    assert not email.allowed and "withdrawn" in email.reason and "via message" in email.reason
    assert wecom.allowed
    # The ledger shows what decides each channel: the all-channel "no", and WeCom's own later "yes".
    assert {scope: (v["granted"], v["source"]) for scope, v in shown.items()} == {
        "*": (False, "message"), "wecom": (True, "admin")}
    assert {scope: v["granted"] for scope, v in after_all_channels.items()} == {"*": False}


async def test_marketing_goes_only_with_consent_checked_again_at_send_time(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    no_consent = await queue(sessions, conversation, "promo without consent", MARKETING)
    # Checked when scheduled: cancelled at once, before any dispatcher sees it.
    row = await outbox(sessions, no_consent)
    assert row.status == OutboxStatus.CANCELLED
    assert row.last_error.startswith("not scheduled: no marketing consent")
    answer = await queue(sessions, conversation, "answer to your question", SERVICE)
    await drain(dispatcher, 3)
    assert (await outbox(sessions, no_consent)).status == OutboxStatus.CANCELLED
    assert (await outbox(sessions, answer)).status == OutboxStatus.SENT

    async with sessions() as session, session.begin():
        await consent.record(conversation.contact_id, purpose=MARKETING, granted=True, source="form",
                             db_session=session)
    granted = await queue(sessions, conversation, "promo with consent", MARKETING)
    await drain(dispatcher, 3)
    assert (await outbox(sessions, granted)).status == OutboxStatus.SENT

    # Withdrawn after queueing, before sending: not sent.
    late = await queue(sessions, conversation, "promo queued before the opt-out", MARKETING)
    async with sessions() as session, session.begin():
        await consent.record(conversation.contact_id, purpose=MARKETING, granted=False, source="message",
                             db_session=session)
    assert (await outbox(sessions, late)).status == OutboxStatus.PENDING  # allowed when it was scheduled
    await drain(dispatcher, 3)
    late_row = await outbox(sessions, late)
    assert late_row.status == OutboxStatus.CANCELLED and late_row.last_error.startswith("not sent: ")
    assert [text for _, text, _ in gateway.sent] == ["answer to your question", "promo with consent"]


async def test_an_opt_out_message_is_recorded_with_proof_and_cancels_pending_marketing(setup):
    sessions, account_id, gateway, dispatcher = setup
    conversation = await conversation_for(sessions, account_id)
    async with sessions() as session, session.begin():
        await consent.record(conversation.contact_id, purpose=MARKETING, granted=True, source="form",
                             db_session=session)
    promo = await queue(sessions, conversation, "promo", MARKETING)
    service = await queue(sessions, conversation, "your invoice", SERVICE)
    opt_out = dataclasses.replace(text_event(77, text="unsubscribed"), attachments=[
        {"type": "opt_out", "purpose": "marketing", "source": "list-unsubscribe-post"}])
    async with sessions() as session, session.begin():
        await ingest_events([opt_out], channel_account_id=account_id, db_session=session)
    await MessageWorker(sessions, []).run_once()
    assert (await outbox(sessions, promo)).status == OutboxStatus.CANCELLED
    assert (await outbox(sessions, service)).status == OutboxStatus.PENDING
    async with sessions() as session:
        events = (await session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))).all()
        rows = (await session.scalars(select(OutboxMessage))).all()
    assert [(e.granted, e.source, e.channel) for e in events] == [(True, "form", None),
                                                                   (False, "list-unsubscribe-post", None)]
    assert events[1].evidence["words"] == "unsubscribed" and events[1].evidence["channel"] == "telegram"
    assert "consent withdrawn" in next(r for r in rows if r.id == promo).last_error


async def test_a_yes_sent_twice_in_one_batch_confirms_the_request_once(sessions):
    """The second "yes" is handled in the transaction whose first "yes" confirmed the request, before
    that is flushed: the request must read as answered, not be confirmed again."""
    account_id = await make_account(sessions)
    conversation = await conversation_for(sessions, account_id)
    async with sessions() as session, session.begin():
        await double_opt_in.request_confirmation(conversation.contact_id, purpose=MARKETING, source="rep",
                                                 actor_label="Rep Li", evidence={"note": "expo"},
                                                 db_session=session, language="en")
    async with sessions() as session, session.begin():
        await ingest_events([text_event(900, text="YES"), text_event(901, text="yes")],
                            channel_account_id=account_id, db_session=session)
    await MessageWorker(sessions, []).run_once()  # both in one batch, one transaction
    async with sessions() as session:
        events = (await session.scalars(select(ConsentEvent).where(ConsentEvent.source == "double_opt_in"))).all()
        request = await session.scalar(select(ConsentRequest))
    assert [(e.granted, e.evidence["words"]) for e in events] == [(True, "YES")]
    assert request.status == "confirmed" and request.confirmed_event_id == events[0].id
