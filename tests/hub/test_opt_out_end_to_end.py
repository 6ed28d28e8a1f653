"""A customer's "STOP" / "退订" over Telegram: recorded in the consent ledger with
their words, pending marketing cancelled, confirmed once in their language;
answers to their own questions still go."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_core.consent import service as consent
from crm_core.db import utcnow
from crm_core.models import ConsentEvent, Conversation, MessagePurpose, OutboxMessage, OutboxStatus
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage
from tests.fakes.stack import eventually, telegram_stack

CONFIRMED_EN = "You will receive no more marketing messages from us."


async def test_stop_is_recorded_cancels_marketing_and_is_confirmed_once(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        hub = stack.hub
        await stack.customer_writes(4001, "hello")
        await eventually(lambda: _lines(stack, 4001, 1))
        # A marketing message waits for tomorrow morning (not_before), consent granted by a form.
        async with hub.sessions() as session, session.begin():
            conversation = await session.scalar(select(Conversation))
            await consent.record(conversation.contact_id, purpose=MessagePurpose.MARKETING, granted=True,
                                 source="form", db_session=session)
            promo = await enqueue_to_conversation(
                conversation, OutboundMessage(conversation.external_thread_id, "Black Friday: 30% off"),
                idempotency_key="promo-1", purpose=MessagePurpose.MARKETING, db_session=session,
                not_before=utcnow() + dt.timedelta(hours=12))
            promo_id = promo.id

        await stack.customer_writes(4001, "STOP")
        lines = await eventually(lambda: _lines(stack, 4001, 2))
        assert lines[-1].startswith(CONFIRMED_EN)
        async with hub.sessions() as session:
            row = await session.get(OutboxMessage, promo_id)
            events = (await session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))).all()
        assert row.status == OutboxStatus.CANCELLED and "withdrawn" in row.last_error
        assert [(e.granted, e.source) for e in events] == [(True, "form"), (False, "message")]
        assert events[1].evidence["words"] == "STOP" and events[1].evidence["channel"] == "telegram"

        # Saying it again is honoured again but not confirmed again; a question still gets an answer.
        await stack.customer_writes(4001, "stop")

        async def withdrawn_twice():
            async with hub.sessions() as session:
                rows = (await session.scalars(select(ConsentEvent).where(ConsentEvent.granted.is_(False)))).all()
            return len(rows) == 2
        await eventually(withdrawn_twice)
        await stack.customer_writes(4001, "when will my order ship?")
        await eventually(stack.delivered)
        assert sum(CONFIRMED_EN in line for line in stack.bot_lines(4001)) == 1


async def test_chinese_opt_out_is_confirmed_in_chinese(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        await stack.customer_writes(4002, "TD", first_name="王伟", language_code="zh-hans")
        [line] = await eventually(lambda: _lines(stack, 4002, 1))
        assert line.startswith("已为您退订")
        from crm_core.models import Message
        await stack.customer_writes(4002, "我是华为的王伟，预算 5万")

        async def stated():
            async with stack.hub.sessions() as session:
                message = await session.scalar(select(Message).where(Message.text.like("我是华为%")))
            return message.entities if message is not None and message.entities is not None else None
        assert await eventually(stated) == {"name": "王伟", "company": "华为",
                                            "budget": {"amount": 50000.0, "currency": "CNY"}}


async def _lines(stack, user_id: int, at_least: int):
    lines = stack.bot_lines(user_id)
    return lines if len(lines) >= at_least else None


async def test_a_message_that_may_be_an_opt_out_is_asked_about_and_a_lone_td_confirms_it(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        await stack.customer_writes(4003, "你好")
        await eventually(lambda: _lines(stack, 4003, 1))
        await stack.customer_writes(4003, "退订了还能再订阅吗")
        lines = await eventually(lambda: _lines(stack, 4003, 2))
        assert any("请回复 TD 确认" in line for line in lines[1:]), lines
        async with stack.hub.sessions() as session:
            assert (await session.scalars(select(ConsentEvent))).all() == []  # asked, not guessed
        await stack.customer_writes(4003, "TD")

        async def withdrawn():
            async with stack.hub.sessions() as session:
                return (await session.scalars(select(ConsentEvent).where(ConsentEvent.granted.is_(False)))).all()
        [event] = await eventually(withdrawn)
        assert event.evidence["words"] == "TD"
