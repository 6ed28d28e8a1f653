"""A customer on Telegram writes; the hub stores it and the bot's reply comes back,
all over HTTP on 127.0.0.1 through the Telegram simulator."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from crm_core.models import Direction, Identity, Message, MessageKind, OutboxMessage, OutboxStatus
from tests.fakes.stack import eventually, telegram_stack

# The same ingest, worker and dispatcher run on PostgreSQL in tests/crm_core, the admin
# API tests, the multi-process tests and the customer bot's reply-time test; these
# end-to-end runs use SQLite to keep the suite inside its 15 minutes.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def count(stack, model, *where) -> int:
    async with stack.hub.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def test_customer_message_is_stored_and_answered(stack):
    await stack.customer_writes(501, "Hi, can I get a quote?", first_name="Alice")

    async def greeted():
        return stack.bot_lines(501)

    [reply] = await eventually(greeted)
    await eventually(lambda: outbox_status(stack, OutboxStatus.SENT))
    assert reply.startswith("Hello, Alice!")
    assert "quote" not in reply  # never an echo
    async with stack.hub.sessions() as session:
        stored = (await session.scalars(select(Message).order_by(Message.id))).all()
    assert [(m.direction.value, m.text) for m in stored] == [("in", "Hi, can I get a quote?"), ("out", reply)]
    assert stored[0].raw["message"]["text"] == "Hi, can I get a quote?"
    assert stored[1].platform_message_id.startswith("501:")


async def test_chinese_customer_is_answered_in_chinese_and_a_question_is_not_taken_for_a_form_answer(stack):
    await stack.customer_writes(502, "你好，请问多少钱？", first_name="王伟", language_code="zh-hans")
    await eventually(lambda: _async(stack.bot_lines(502)))
    await stack.customer_writes(502, "还有运费吗？", first_name="王伟")
    await eventually(lambda: count_processed(stack, 2))
    await eventually(lambda: await_no_pending_sends(stack))
    first, second = stack.bot_lines(502)
    # A price question starts the lead form; the customer's name is known, so it asks for the company.
    assert first == "您好，王伟！我可以请销售同事为您详细解答。先简单了解几个问题。请问您的公司名称是？"
    # "Any shipping cost?" is their own question, not a company name: not understood, and asked again.
    assert second.startswith("抱歉，我没有完全理解") and second.endswith("还有一个问题：请问您的公司名称是？")


async def test_a_redelivered_update_is_stored_once_and_answered_once(stack):
    update = await stack.customer_writes(503, "hello")
    await eventually(lambda: _async(stack.bot_lines(503)))
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.bot.secret_token}
    for _ in range(3):  # Telegram redelivers when it thinks we did not answer
        resp = await stack.client.post(stack.bot.webhook_url, json=update, headers=headers)
        assert resp.status_code == 200
    await eventually(lambda: count_processed(stack, 1))
    assert await count(stack, Message, Message.direction == "in") == 1
    assert len(stack.bot_lines(503)) == 1


async def test_photo_edit_button_press_and_blocking(stack):
    sim, bot = stack.simulator, stack.bot
    user = sim.user(504, "Carol")
    await stack.customer_writes(504, "hi")
    await eventually(lambda: _async(stack.bot_lines(504)))
    sim.user_writes(bot, user, photo=True, caption="the box arrived broken")
    sim.user_edits(bot, user, 1, "hi there")
    bot_message_id = stack.chat(504)[1]["raw"]["message_id"]
    sim.user_presses(bot, user, bot_message_id, "rate:5")
    sim.user_blocks(bot, user)
    await eventually(lambda: count_processed(stack, 5))
    async with stack.hub.sessions() as session:
        kinds = (await session.execute(select(Message.kind, Message.text).where(Message.direction == "in")
                                       .order_by(Message.id))).all()
        identity = await session.scalar(select(Identity).where(Identity.external_id == "504"))
    assert kinds == [(MessageKind.TEXT, "hi"), (MessageKind.IMAGE, "the box arrived broken"),
                     (MessageKind.EDIT, "hi there"), (MessageKind.CALLBACK, "rate:5"),
                     (MessageKind.EVENT, "blocked the bot")]
    assert len(bot.answered_callbacks) == 1  # answered through the webhook response
    assert identity.reachable is False


async def test_a_reply_to_a_customer_who_blocked_the_bot_is_marked_unreachable(stack):
    sim, bot = stack.simulator, stack.bot
    user = sim.user(505, "Dan")
    sim.user_writes(bot, user, "hello")
    bot.blocked_by.add(505)  # blocked before the greeting goes out; Telegram answers 403
    await eventually(lambda: outbox_status(stack, OutboxStatus.UNREACHABLE))
    async with stack.hub.sessions() as session:
        row = await session.scalar(select(OutboxMessage))
        identity = await session.scalar(select(Identity).where(Identity.external_id == "505"))
    assert "blocked by the user" in row.last_error
    assert identity.reachable is False
    assert stack.bot_lines(505) == []


async def test_flood_control_429_is_honoured(stack):
    stack.bot.faults.append(_fault(429, retry_after=1))
    await stack.customer_writes(506, "hello")
    [line] = await eventually(lambda: _async(stack.bot_lines(506)), timeout=10)
    # The simulator has answered; the hub records the outcome just after.
    await eventually(lambda: outbox_status(stack, OutboxStatus.SENT))
    async with stack.hub.sessions() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.attempts == 1  # the 429 did not count as a failed attempt
    sends = [at for method, at in stack.bot.calls if method == "sendmessage"]
    assert len(sends) == 2
    assert sends[1] - sends[0] >= 0.95  # waited retry_after before trying again


@pytest.mark.parametrize(
    ("mutate", "status", "detail"),
    [
        (lambda s, h, b: (s.bot.webhook_url, {**h, "X-Telegram-Bot-Api-Secret-Token": "forged-forged-forged"}, b),
         403, "secret token mismatch"),
        (lambda s, h, b: (s.bot.webhook_url, {k: v for k, v in h.items() if "Secret" not in k}, b),
         403, "secret token mismatch"),
        (lambda s, h, b: (s.bot.webhook_url, h, b"{\"update_id\": 1, \"message\": "), 400, "not valid JSON"),
        (lambda s, h, b: (s.bot.webhook_url, h, b"{" + b" " * 2_000_000 + b"}"), 413, "over"),
        (lambda s, h, b: (s.bot.webhook_url.rsplit("/", 1)[0] + "/9999", h, b), 404, "no active telegram"),
        (lambda s, h, b: (s.bot.webhook_url.replace("/telegram/", "/myspace/"), h, b), 404, "unknown channel"),
        # Past the webhook's fast path (hub/webhooks.py), the API's own validation answers.
        (lambda s, h, b: (s.bot.webhook_url.rsplit("/", 1)[0] + "/99999999999999999999", h, b), 422,
         "less than or equal to 9223372036854775807"),
        (lambda s, h, b: (s.bot.webhook_url.rsplit("/", 1)[0] + "/0", h, b), 422, "greater than or equal to 1"),
        (lambda s, h, b: (s.bot.webhook_url.rsplit("/", 1)[0] + "/one", h, b), 422, "valid integer"),
    ],
    ids=["wrong-secret", "no-secret", "malformed-json", "2MB-body", "unknown-account", "unknown-channel",
         "id-out-of-range", "id-zero", "id-not-a-number"],
)
async def test_bad_webhook_requests_get_a_clear_4xx_and_store_nothing(stack, mutate, status, detail):
    update = {"update_id": 1, "message": {"message_id": 1, "date": 1700000000, "text": "hi",
                                          "from": {"id": 9, "is_bot": False, "first_name": "X"},
                                          "chat": {"id": 9, "type": "private"}}}
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.bot.secret_token, "content-type": "application/json"}
    url, headers, body = mutate(stack, headers, json.dumps(update).encode())
    resp = await stack.client.post(url, content=body, headers=headers)
    assert resp.status_code == status
    assert detail in str(resp.json()["detail"])
    assert await count(stack, Message) == 0


async def test_an_update_the_hub_failed_to_store_is_answered_once_after_telegrams_retry(stack, monkeypatch):
    """A failure while storing is a 500, never a 200: Telegram delivers the update again."""
    real_ingest, failures = stack.hub.ingest, []

    async def fails_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise OperationalError("INSERT INTO messages", {}, Exception("database is locked"))
        return await real_ingest(*args, **kwargs)

    monkeypatch.setattr(stack.hub, "ingest", fails_once)
    await stack.customer_writes(507, "hello?")
    [reply] = await eventually(lambda: _async(stack.bot_lines(507)))
    assert len(failures) == 1
    assert await count(stack, Message, Message.direction == Direction.INBOUND) == 1
    await eventually(lambda: outbox_status(stack, OutboxStatus.SENT))
    assert len(stack.bot_lines(507)) == 1


async def test_polling_mode_receives_and_answers_without_a_webhook(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path, mode="polling") as stack:
        assert stack.bot.webhook_url is None
        await stack.customer_writes(601, "hello from polling")
        [line] = await eventually(lambda: _async(stack.bot_lines(601)), timeout=15)
        assert line.startswith("Hello")
        async with stack.hub.sessions() as session:
            from crm_core import accounts

            offset = await accounts.get_cursor(stack.account_id, "update_offset", db_session=session)
        assert int(offset) == stack.bot.next_update_id  # confirmed only after it was stored


# ---- helpers -----------------------------------------------------------------

async def _async(value):
    return value


async def count_processed(stack, n: int) -> bool:
    return await count(stack, Message, Message.direction == "in", Message.processed_at.is_not(None)) >= n


async def await_no_pending_sends(stack) -> bool:
    return await count(stack, OutboxMessage, OutboxMessage.status.in_(["pending", "claimed", "sending"])) == 0


async def outbox_status(stack, status: OutboxStatus) -> bool:
    return await count(stack, OutboxMessage, OutboxMessage.status == status) > 0


def _fault(code: int, retry_after: int | None = None):
    from channels.simulators.telegram import Fault

    return Fault(method="sendMessage", error_code=code, description=f"Too Many Requests: retry after {retry_after}",
                 retry_after=retry_after)
