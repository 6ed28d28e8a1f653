"""WeChat Official Account: plain, compatible and safe callbacks; events; the reply window."""

from __future__ import annotations

import datetime as dt

import pytest

from channels.base import WebhookRejected, WebhookRequest
from channels.simulators.wechat import WeChatSimulator
from channels.wechat.adapter import WeChatAdapter, WeChatSettings, window_refusal
from crm_core.models import MessageKind
from crm_core.ports import AccountRef, InboundMessage, ReachabilityChanged, RecipientActivity


def _setup(mode: str):
    sim = WeChatSimulator()
    oa = sim.create_account(mode=mode)
    account = AccountRef(id=3, kind="wechat", api_base=None, settings={"mode": mode}, credentials={
        "app_id": oa.app_id, "app_secret": oa.app_secret, "token": oa.token, "encoding_aes_key": oa.encoding_aes_key})
    return sim, oa, account, WeChatAdapter()


def _request(sim, oa, fields):
    query, body = sim.signed_request(oa, fields)
    return WebhookRequest("POST", {}, query, body)


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_each_mode_delivers_the_message(mode):
    sim, oa, account, adapter = _setup(mode)
    fields = sim._base(oa, "oUser1", "text") | {"Content": "什么时候发货？", "MsgId": "77"}
    outcome = adapter.parse_webhook(account, _request(sim, oa, fields))
    [event] = outcome.events
    assert isinstance(event, InboundMessage)
    assert (event.text, event.platform_message_id, event.thread_id) == ("什么时候发货？", "msg:77", "oUser1")
    assert outcome.response == "success"


def test_events_follow_unfollow_scan_click():
    sim, oa, account, adapter = _setup("safe")
    base = sim._base(oa, "oUser1", "event")
    [follow] = adapter.parse_webhook(account, _request(sim, oa, base | {"Event": "subscribe",
                                                                        "EventKey": "qrscene_expo"})).events
    assert isinstance(follow, ReachabilityChanged) and follow.reachable
    assert follow.attachments == [{"type": "followed", "source": "expo"}]
    [unfollow] = adapter.parse_webhook(account, _request(sim, oa, base | {"Event": "unsubscribe"})).events
    assert isinstance(unfollow, ReachabilityChanged) and not unfollow.reachable
    [scan] = adapter.parse_webhook(account, _request(sim, oa, base | {"Event": "SCAN", "EventKey": "booth"})).events
    assert scan.kind == MessageKind.EVENT and scan.attachments == [{"type": "scan", "source": "booth"}]
    [click] = adapter.parse_webhook(account, _request(sim, oa, base | {"Event": "CLICK", "EventKey": "PRICES"})).events
    assert (click.kind, click.text) == (MessageKind.CALLBACK, "PRICES")
    assert adapter.parse_webhook(account, _request(sim, oa, base | {"Event": "VIEW"})).events == []
    assert len({follow.platform_message_id, unfollow.platform_message_id, scan.platform_message_id}) == 3


def test_url_verification_returns_echostr_and_bad_requests_are_refused():
    sim, oa, account, adapter = _setup("safe")
    query, body = sim.signed_request(oa, sim._base(oa, "oUser1", "text") | {"Content": "hi", "MsgId": "1"})
    outcome = adapter.parse_webhook(account, WebhookRequest("GET", {}, {**query, "echostr": "5838479218127813673"},
                                                            b""))
    assert outcome.response == "5838479218127813673"

    def status(q, b, method="POST"):
        with pytest.raises(WebhookRejected) as caught:
            adapter.parse_webhook(account, WebhookRequest(method, {}, q, b))
        return caught.value.status

    assert status({**query, "signature": "f" * 40}, body) == 403
    assert status({**query, "msg_signature": "f" * 40}, body) == 403
    assert status({k: v for k, v in query.items() if k != "nonce"}, body) == 400
    assert status(query, b"<!DOCTYPE x [<!ENTITY e 'x'>]><xml><Encrypt>&e;</Encrypt></xml>") == 400
    # Safe mode refuses plaintext: the two settings must agree.
    plain_sim, plain_oa, _, _ = _setup("plain")
    plain_oa.token, plain_oa.app_id = oa.token, oa.app_id
    q2, b2 = plain_sim.signed_request(plain_oa, sim._base(oa, "oUser1", "text") | {"Content": "x", "MsgId": "2"})
    assert status(q2, b2) == 400


NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
RULES = WeChatSettings()


def _activity(message_ago=None, event_ago=None, since_message=0, since_event=0):
    at = (lambda ago: None if ago is None else NOW - ago)
    return RecipientActivity(at(message_ago), at(event_ago), since_message, since_event)


@pytest.mark.parametrize(("activity", "allowed", "reason"), [
    (_activity(dt.timedelta(hours=47)), True, None),
    (_activity(dt.timedelta(hours=47), since_message=4), True, None),
    (_activity(dt.timedelta(hours=1), since_message=5), False, "5 messages after"),
    (_activity(dt.timedelta(hours=49)), False, "48-hour reply window"),
    (_activity(event_ago=dt.timedelta(seconds=30), since_event=2), True, None),
    (_activity(event_ago=dt.timedelta(seconds=30), since_event=3), False, "not written"),
    (_activity(event_ago=dt.timedelta(seconds=90)), False, "not written"),
    (_activity(dt.timedelta(hours=60), dt.timedelta(seconds=10)), True, None),
    (None, False, "not written or acted"),
])
def test_the_customer_service_window_follows_wechats_rules(activity, allowed, reason):
    refusal = window_refusal(activity, RULES, now=NOW)
    assert (refusal is None) == allowed
    if reason:
        assert reason in refusal
