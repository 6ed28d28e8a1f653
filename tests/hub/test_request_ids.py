"""A webhook request's id follows its message: stored with it, with the replies queued for it, and
on the log lines of the send that answers it, in JSON logs too."""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import select

from crm_core.models import Direction, Message, OutboxMessage
from hub.logs import JsonFormatter, RequestIdFilter
from tests.fakes.stack import eventually, telegram_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def update(update_id: int, user_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": user_id, "type": "private", "first_name": "Ann"}}}


async def test_the_request_id_goes_from_the_webhook_to_the_send(database_url, tmp_path, caplog):
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.DEBUG, logger="crm_core.outbox.dispatcher")
    async with telegram_stack(database_url, tmp_path) as stack:
        stack.simulator.user(5151)
        stack.bot.started_by.add(5151)
        url = f"{stack.hub_base}/hooks/telegram/{stack.account_id}"
        secret = {"X-Telegram-Bot-Api-Secret-Token": stack.bot.secret_token}
        resp = await stack.client.post(url, json=update(77_001, 5151, "hello"),
                                       headers={**secret, "X-Request-Id": "trace-abc-1"})
        assert resp.status_code == 200 and resp.headers["x-request-id"] == "trace-abc-1"

        async def answered() -> bool:
            return any(m["chat_id"] == 5151 for m in stack.bot.sent)

        await eventually(answered, timeout=20)
        # An id that is not a plain short token is replaced, not stored.
        odd = await stack.client.post(url, json=update(77_002, 5151, "thanks"),
                                      headers={**secret, "X-Request-Id": "x" * 65})
        assert odd.headers["x-request-id"] != "x" * 65 and len(odd.headers["x-request-id"]) == 16

        async with stack.hub.sessions() as session:
            inbound = await session.scalar(select(Message.request_id).where(
                Message.direction == Direction.INBOUND, Message.platform_message_id == "update:77001"))
            replies = (await session.scalars(select(OutboxMessage.request_id).where(
                OutboxMessage.recipient == "5151", OutboxMessage.idempotency_key.like("reply:%")))).all()
        assert inbound == "trace-abc-1"
        assert "trace-abc-1" in replies

    sends = [r for r in caplog.records if r.name == "crm_core.outbox.dispatcher" and "sent to 5151" in r.getMessage()]
    assert sends and sends[0].request_id == "trace-abc-1"
    line = json.loads(JsonFormatter().format(sends[0]))
    assert line["request_id"] == "trace-abc-1" and line["level"] == "DEBUG" and "sent to 5151" in line["message"]
