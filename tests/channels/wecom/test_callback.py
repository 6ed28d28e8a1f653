"""WeCom callbacks: Tencent's crypto, the hardened parser, and every inbound kind."""

from __future__ import annotations

import time

import pytest

from channels.base import WebhookRejected, WebhookRequest
from channels.simulators.wecom import WeComSimulator
from channels.tencent import CallbackRejected, MessageCipher, build_xml, parse_xml, signature_matches
from channels.wecom.adapter import WeComAdapter
from crm_core.models import MessageKind
from crm_core.ports import AccountRef, InboundMessage, ReachabilityChanged

# Tencent's published sample (WeCom callback docs): Token, EncodingAESKey, corp id,
# a URL-verification request and an encrypted message.
SAMPLE = {"token": "QDG6eK", "key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "corp": "wx5823bf96d3bd56c7"}
SAMPLE_ECHO = ("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
               "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
SAMPLE_MESSAGE = (
    "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149",
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJ"
    "Ts3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2"
    "hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL"
    "4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXd"
    "Q2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")


def test_tencent_sample_url_verification_and_message_decrypt():
    cipher = MessageCipher(SAMPLE["token"], SAMPLE["key"], SAMPLE["corp"])
    signature, timestamp, nonce, echo = SAMPLE_ECHO
    assert signature_matches(signature, SAMPLE["token"], timestamp, nonce, echo)
    assert cipher.decrypt(echo, account_label="sample") == "1616140317555161061"

    signature, timestamp, nonce, encrypted = SAMPLE_MESSAGE
    assert signature_matches(signature, SAMPLE["token"], timestamp, nonce, encrypted)
    fields = parse_xml(cipher.decrypt(encrypted, account_label="sample"), what="sample")
    assert fields["Content"] == "hello" and fields["MsgId"] == "4561255354251345929"
    assert not signature_matches(signature, SAMPLE["token"], timestamp, "1", encrypted)


def test_encrypt_then_decrypt_round_trips_chinese_text():
    cipher = MessageCipher(SAMPLE["token"], SAMPLE["key"], SAMPLE["corp"])
    envelope = cipher.envelope(build_xml({"Content": "你好，世界 ]]> edge"}))
    assert signature_matches(envelope["MsgSignature"], SAMPLE["token"], envelope["TimeStamp"], envelope["Nonce"],
                             envelope["Encrypt"])
    assert parse_xml(cipher.decrypt(envelope["Encrypt"], account_label="t"), what="t")["Content"] == "你好，世界 ]]> edge"


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>',
    b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1/evil.dtd"><xml/>',
    b"<xml><Content>unclosed",
    b"not xml at all",
    b"",
    "<xml><A>\udcff</A></xml>".encode("utf-8", "surrogateescape"),
    b"<root><A>1</A></root>",
])
def test_hostile_or_broken_xml_is_a_clear_400(body):
    with pytest.raises(CallbackRejected) as caught:
        parse_xml(body, what="WeCom channel account 1")
    assert caught.value.status == 400
    assert caught.value.message.startswith("WeCom channel account 1: ")


@pytest.fixture
def app_and_adapter():
    sim = WeComSimulator()
    app = sim.create_app()
    sim.add_member(app, "li", "Li Lei")
    account = AccountRef(id=7, kind="wecom", api_base=None, settings={}, credentials={
        "corp_id": app.corp_id, "agent_id": app.agent_id, "secret": app.secret, "token": app.token,
        "encoding_aes_key": app.encoding_aes_key})
    return sim, app, account, WeComAdapter()


def _request(sim, app, fields, *, method="POST"):
    query, body = sim.signed_request(app, fields)
    return WebhookRequest(method=method, headers={"content-type": "text/xml"}, query=query, body=body)


def _fields(app, **extra):
    return {"ToUserName": app.corp_id, "CreateTime": int(time.time()), "AgentID": app.agent_id, **extra}


def test_every_message_kind_is_normalized(app_and_adapter):
    sim, app, account, adapter = app_and_adapter
    cases = {
        "text": ({"MsgType": "text", "Content": "报价多少？"}, MessageKind.TEXT, "报价多少？"),
        "image": ({"MsgType": "image", "PicUrl": "http://x/p.jpg", "MediaId": "m1"}, MessageKind.IMAGE, None),
        "voice": ({"MsgType": "voice", "MediaId": "m2", "Format": "amr"}, MessageKind.VOICE, None),
        "file": ({"MsgType": "file", "MediaId": "m3", "FileName": "报价单.pdf", "FileSize": "2048"},
                 MessageKind.FILE, "报价单.pdf"),
        "location": ({"MsgType": "location", "Location_X": "31.23", "Location_Y": "121.47", "Scale": "15",
                      "Label": "上海市黄浦区"}, MessageKind.LOCATION, "上海市黄浦区"),
        "link": ({"MsgType": "link", "Title": "Spec", "Description": "v2", "Url": "https://example.com/spec"},
                 MessageKind.LINK, "Spec\nv2\nhttps://example.com/spec"),
    }
    # Members write to the app in every kind; they are staff.
    for n, (extra, kind, text) in enumerate(cases.values()):
        outcome = adapter.parse_webhook(account, _request(sim, app, _fields(
            app, FromUserName="li", MsgId=str(1000 + n), **extra)))
        [event] = outcome.events
        assert isinstance(event, InboundMessage)
        assert (event.kind, event.text, event.platform_message_id) == (kind, text, f"msg:{1000 + n}")
        assert event.sender.external_id == "li" and event.sender.is_staff
        assert outcome.response == ""
    [location] = adapter.parse_webhook(account, _request(sim, app, _fields(
        app, FromUserName="li", MsgId="2000", **cases["location"][0]))).events
    assert location.attachments[0] == {"type": "location", "latitude": 31.23, "longitude": 121.47,
                                       "label": "上海市黄浦区"}
    # WeCom never posts a customer's words to an app (they come from the session archive):
    # such a callback is acknowledged and nothing is made of it.
    outcome = adapter.parse_webhook(account, _request(sim, app, _fields(
        app, FromUserName="wmCustomer01", MsgId="3000", MsgType="text", Content="报价多少？")))
    assert outcome.events == [] and outcome.response == ""


def test_external_contact_events(app_and_adapter):
    sim, app, account, adapter = app_and_adapter
    base = _fields(app, FromUserName="sys", MsgType="event", Event="change_external_contact", UserID="li",
                   ExternalUserID="wmCustomer01")
    [added] = adapter.parse_webhook(account, _request(sim, app, {
        **base, "ChangeType": "add_external_contact", "State": "expo-2026", "WelcomeCode": "WC123"})).events
    assert isinstance(added, ReachabilityChanged) and added.reachable
    [info] = added.attachments
    assert info["type"] == "contact_added" and info["rep"] == "li" and info["source"] == "expo-2026"
    assert info["welcome_code"] == "WC123" and info["welcome_deadline"] == base["CreateTime"] + 20

    [left] = adapter.parse_webhook(account, _request(sim, app, {**base, "ChangeType": "del_follow_user"})).events
    assert not left.reachable and left.attachments == [{"type": "customer_left", "rep": "li"}]
    [removed] = adapter.parse_webhook(account, _request(sim, app, {**base, "ChangeType": "del_external_contact"})).events
    assert not removed.reachable and removed.attachments[0]["type"] == "rep_removed_customer"
    # Two different events in the same second are distinct; a retry of one is the same.
    assert len({added.platform_message_id, left.platform_message_id, removed.platform_message_id}) == 3

    [click] = adapter.parse_webhook(account, _request(sim, app, _fields(
        app, FromUserName="li", MsgType="event", Event="template_card_event", EventKey="claim:42",
        TaskId="t1"))).events
    assert click.kind == MessageKind.CALLBACK and click.text == "claim:42" and click.sender.is_staff
    assert adapter.parse_webhook(account, _request(sim, app, _fields(
        app, FromUserName="li", MsgType="event", Event="enter_agent"))).events == []


def test_url_verification_answers_the_decrypted_echostr(app_and_adapter):
    sim, app, account, adapter = app_and_adapter
    envelope = app.cipher.envelope("8431728356471233")
    query = {"msg_signature": envelope["MsgSignature"], "timestamp": envelope["TimeStamp"],
             "nonce": envelope["Nonce"], "echostr": envelope["Encrypt"]}
    outcome = adapter.parse_webhook(account, WebhookRequest("GET", {}, query, b""))
    assert outcome.response == "8431728356471233" and outcome.events == []


def test_bad_callbacks_are_refused_with_the_fix_in_the_message(app_and_adapter):
    sim, app, account, adapter = app_and_adapter
    good = _request(sim, app, _fields(app, FromUserName="li", MsgId="1", MsgType="text", Content="hi"))

    def rejected(request):
        with pytest.raises(WebhookRejected) as caught:
            adapter.parse_webhook(account, request)
        return caught.value.status, caught.value.message

    status, message = rejected(WebhookRequest("POST", {}, {**good.query, "nonce": "forged"}, good.body))
    assert status == 403 and "Token" in message
    other_corp = MessageCipher(app.token, app.encoding_aes_key, "ww0000000000000000")
    envelope = other_corp.envelope(build_xml(_fields(app, FromUserName="li", MsgId="2", MsgType="text")))
    status, message = rejected(WebhookRequest("POST", {}, {
        "msg_signature": envelope["MsgSignature"], "timestamp": envelope["TimeStamp"], "nonce": envelope["Nonce"]},
        build_xml({"Encrypt": envelope["Encrypt"]}).encode()))
    assert status == 403 and "another corp id" in message and app.corp_id in message
    stale = app.cipher.envelope(build_xml(_fields(app, FromUserName="li", MsgId="3", MsgType="text")),
                                timestamp=str(int(time.time()) - 3600))
    status, message = rejected(WebhookRequest("POST", {}, {
        "msg_signature": stale["MsgSignature"], "timestamp": stale["TimeStamp"], "nonce": stale["Nonce"]},
        build_xml({"Encrypt": stale["Encrypt"]}).encode()))
    assert status == 403 and "replayed" in message
    status, message = rejected(WebhookRequest("POST", {}, {}, good.body))
    assert status == 400 and "msg_signature" in message


@pytest.mark.parametrize("cut", [lambda e: e[:-24], lambda e: e[:10], lambda e: e[:-2] + "!!", lambda e: "AAAA" + e])
def test_truncated_or_altered_ciphertext_is_a_400(app_and_adapter, cut):
    """Signed with the right Token (whoever knows it) but not decryptable with the account's key."""
    from channels.tencent import signature

    sim, app, account, adapter = app_and_adapter
    envelope = app.cipher.envelope(build_xml(_fields(app, FromUserName="li", MsgId="9", MsgType="text")))
    encrypted = cut(envelope["Encrypt"])
    query = {"msg_signature": signature(app.token, envelope["TimeStamp"], envelope["Nonce"], encrypted),
             "timestamp": envelope["TimeStamp"], "nonce": envelope["Nonce"]}
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse_webhook(account, WebhookRequest("POST", {}, query, build_xml({"Encrypt": encrypted}).encode()))
    assert caught.value.status in (400, 403)
    assert "decrypt" in caught.value.message or "another corp id" in caught.value.message
