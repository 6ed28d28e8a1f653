"""Sends through the WeCom API: text, markdown and cards to members, tasks to customers."""

from __future__ import annotations

import time

import pytest

from channels.simulators.wecom import WeComSimulator
from channels.wecom.adapter import WeComAdapter
from crm_core.ports import (
    AccountRef,
    Button,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RecipientUnreachable,
    RetryLater,
)
from hub.serving import running


@pytest.fixture
async def wecom():
    sim = WeComSimulator()
    app = sim.create_app()
    sim.add_member(app, "li", "Li Lei")
    adapter = WeComAdapter()
    async with running(sim.app) as server:
        account = AccountRef(id=5, kind="wecom", api_base=f"http://127.0.0.1:{server.port}", settings={},
                             credentials={"corp_id": app.corp_id, "agent_id": app.agent_id, "secret": app.secret,
                                          "token": app.token, "encoding_aes_key": app.encoding_aes_key})
        yield sim, app, account, adapter
    await adapter.close()


async def test_member_messages_are_text_markdown_or_cards(wecom):
    sim, app, account, adapter = wecom
    await adapter.send(account, OutboundMessage("li", "plain words"))
    await adapter.send(account, OutboundMessage("li", "3 conversations are yours", title="Handover"))
    await adapter.send(account, OutboundMessage("li", "Alice: quote please", (Button("Claim 认领", "claim:7"),),
                                                title="New lead #7"))
    text, markdown, card = app.transcript("li")
    assert (text["msgtype"], text["text"]) == ("text", "plain words")
    assert markdown["msgtype"] == "markdown" and markdown["text"] == "**Handover**\n3 conversations are yours"
    assert card["msgtype"] == "template_card"
    assert card["card"]["main_title"]["title"] == "New lead #7"
    assert card["card"]["button_list"] == [{"text": "Claim 认领", "style": 1, "key": "claim:7"}]


async def test_customers_get_tasks_sent_as_a_rep_and_errors_say_what_to_fix(wecom):
    sim, app, account, adapter = wecom
    sim.customer_adds(app, "wmCustomer01", "li", name="Alice")
    await adapter.send(account, OutboundMessage("wmCustomer01", "Hi Alice", options={"sender": "li"}))
    assert app.transcript("wmCustomer01")[-1]["text"] == "Hi Alice"
    assert app.tasks[-1]["sender"] == "li"

    with pytest.raises(PermanentFailure, match="no rep to send as"):
        await adapter.send(account, OutboundMessage("wmCustomer01", "Hi"))
    with pytest.raises(RecipientUnreachable, match="not a contact of li"):
        await adapter.send(account, OutboundMessage("wmStranger99", "Hi", options={"sender": "li"}))
    with pytest.raises(RecipientUnreachable, match="81013"):
        await adapter.send(account, OutboundMessage("nobody", "Hi"))
    with pytest.raises(PermanentFailure, match="welcome code expired"):
        await adapter.send(account, OutboundMessage("wmCustomer01", "Welcome", options={
            "welcome_code": "abc", "welcome_deadline": time.time() - 1}))
    app.faults.append({"path": "message/send", "errcode": 45009, "errmsg": "api freq out of limit", "remaining": 1})
    with pytest.raises(RetryLater) as limited:
        await adapter.send(account, OutboundMessage("li", "busy"))
    assert limited.value.retry_after == 60


def test_members_are_paced_at_30_a_minute_and_the_app_overall():
    adapter = WeComAdapter()
    account = AccountRef(id=5, kind="wecom", api_base=None, settings={}, credentials={})
    assert adapter.rate_limits(account, "li") == [("wecom:5", RateLimit(1, 1 / 20)), ("wecom:5:li", RateLimit(30, 60))]
    assert adapter.rate_limits(account, "wmCustomer01") == [("wecom:5", RateLimit(1, 1 / 20))]
