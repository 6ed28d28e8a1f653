"""What an attacker or a fuzzer sends the adapters: a 4xx with the reason, never an exception
that would be a 500, and nothing the hub would call on an attacker's word."""

from __future__ import annotations

import json
import time

import pytest

from channels.base import WebhookRejected, WebhookRequest
from channels.destinations import UnsafeDestination, check_host, check_url
from channels.dingtalk.adapter import DingTalkAdapter, session_webhook_refused
from channels.dingtalk.signing import sign
from channels.simulators.wecom import WeComSimulator
from channels.telegram.adapter import SECRET_HEADER, TelegramAdapter
from channels.tencent import MessageCipher, build_xml, signature
from channels.wechat.adapter import WeChatAdapter
from channels.wecom.adapter import WeComAdapter
from crm_core.ports import AccountRef, InboundMessage

DEEP_JSON = b'{"a":' * 5000 + b"1" + b"}" * 5000
HUGE_INT = b'{"update_id": ' + b"9" * 5000 + b"}"
BEYOND_64_BITS = b'{"update_id": 1000000000000000000000000000000, "message": {}}'

DT_SECRET = "this-is-the-app-secret-0123456789abcdef"
DINGTALK = AccountRef(id=7, kind="dingtalk", api_base=None, settings={},
                      credentials={"app_key": "dingabc123", "app_secret": DT_SECRET, "robot_code": "dingabc123"})


def robot_message(webhook: str, msg_id: str = "m1", create_at: object = None) -> dict:
    return {"msgId": msg_id, "msgtype": "text", "text": {"content": "hi"}, "conversationType": "1",
            "conversationId": "c1", "senderId": "$:LWCP_v1:$abc", "senderNick": "Eve",
            "sessionWebhook": webhook, "sessionWebhookExpiredTime": int(time.time() * 1000) + 3_600_000,
            "createAt": create_at if create_at is not None else int(time.time() * 1000), "chatbotCorpId": "ding1"}


def dingtalk_request(body: bytes, timestamp: str | None = None) -> WebhookRequest:
    timestamp = timestamp or str(int(time.time() * 1000))
    return WebhookRequest(method="POST", headers={"timestamp": timestamp, "sign": sign(timestamp, DT_SECRET)},
                          query={}, body=body)


@pytest.mark.parametrize("body", [DEEP_JSON, HUGE_INT, BEYOND_64_BITS, b"[1]", b"\xff\xfe"])
def test_telegram_and_dingtalk_refuse_json_no_platform_sends_with_400(body):
    telegram = AccountRef(id=3, kind="telegram", api_base=None, settings={},
                          credentials={"bot_token": "1:x", "webhook_secret": "s3cret"})
    for adapter, account, request in (
            (TelegramAdapter(), telegram,
             WebhookRequest(method="POST", headers={SECRET_HEADER.lower(): "s3cret"}, query={}, body=body)),
            (DingTalkAdapter(), DINGTALK, dingtalk_request(body))):
        with pytest.raises(WebhookRejected) as caught:
            adapter.parse_webhook(account, request)
        assert caught.value.status == 400, caught.value.message


@pytest.mark.parametrize("stamp", ["9" * 400, str(10**30), "１７００００００００", "-1", "1e9"])
def test_timestamps_that_are_not_times_are_refused(stamp):
    with pytest.raises(WebhookRejected) as caught:
        DingTalkAdapter().parse_webhook(DINGTALK, WebhookRequest(
            method="POST", headers={"timestamp": stamp, "sign": "x"}, query={}, body=b"{}"))
    assert caught.value.status in (400, 403)
    # Inside a signed body, a creation time of 10**30 ms is no time: the message is kept without one.
    body = json.dumps(robot_message("https://oapi.dingtalk.com/robot/sendBySession?session=s",
                                    create_at=str(10**30))).encode()
    [event] = DingTalkAdapter().parse_webhook(DINGTALK, dingtalk_request(body)).events
    assert event.sent_at is None


def test_a_dingtalk_session_webhook_is_called_only_on_dingtalks_host():
    ok = "https://oapi.dingtalk.com/robot/sendBySession?session=abc"
    assert session_webhook_refused(ok, None) is None
    for url in ("http://127.0.0.1:8080/robot/sendBySession?session=a", "https://169.254.169.254/latest/meta-data",
                "https://oapi.dingtalk.com.evil.example/robot/sendBySession?session=a",
                "https://user@oapi.dingtalk.com/robot/sendBySession", "https://oapi.dingtalk.com/robot/send",
                "http://oapi.dingtalk.com/robot/sendBySession?session=a", "not a url at all", "https://[::1"):
        assert session_webhook_refused(url, None), url
    # The account's configured API base (a simulator, a proxy the operator chose) stands for DingTalk.
    assert session_webhook_refused("http://127.0.0.1:9/robot/sendBySession?session=a", "http://127.0.0.1:9") is None
    # A callback naming another host keeps its message, without the URL.
    adapter = DingTalkAdapter()
    body = json.dumps(robot_message("http://10.0.0.5/robot/sendBySession?session=x")).encode()
    [event] = adapter.parse_webhook(DINGTALK, dingtalk_request(body)).events
    assert isinstance(event, InboundMessage) and event.text == "hi"
    assert not [a for a in event.attachments if a.get("type") == "reply_via"]


def test_a_captured_dingtalk_signature_does_not_carry_another_body():
    adapter = DingTalkAdapter()
    timestamp = str(int(time.time() * 1000))
    first = json.dumps(robot_message("https://oapi.dingtalk.com/robot/sendBySession?session=a")).encode()
    adapter.parse_webhook(DINGTALK, dingtalk_request(first, timestamp))
    adapter.parse_webhook(DINGTALK, dingtalk_request(first, timestamp))  # DingTalk retrying: the same body
    forged = json.dumps(robot_message("https://oapi.dingtalk.com/robot/sendBySession?session=b", "m2")).encode()
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse_webhook(DINGTALK, dingtalk_request(forged, timestamp))
    assert caught.value.status == 403 and "replayed" in caught.value.message


def test_wecom_checks_the_signature_before_parsing_and_refuses_deep_xml():
    sim = WeComSimulator()
    app = sim.create_app()
    account = AccountRef(id=7, kind="wecom", api_base=None, settings={}, credentials={
        "corp_id": app.corp_id, "agent_id": app.agent_id, "secret": app.secret, "token": app.token,
        "encoding_aes_key": app.encoding_aes_key})
    deep = b"<xml>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</xml>"
    query = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    with pytest.raises(WebhookRejected) as caught:  # unsigned: refused before any parser
        WeComAdapter().parse_webhook(account, WebhookRequest(method="POST", headers={}, query=query, body=deep))
    assert caught.value.status == 400 and "Encrypt" in caught.value.message
    cipher = MessageCipher(app.token, app.encoding_aes_key, app.corp_id)
    inner = "<xml>" + "<a>" * 500 + "</a>" * 500 + "</xml>"
    envelope = cipher.envelope(inner)
    query = {"msg_signature": envelope["MsgSignature"], "timestamp": envelope["TimeStamp"],
             "nonce": envelope["Nonce"]}
    body = build_xml({"ToUserName": app.corp_id, "Encrypt": envelope["Encrypt"], "AgentID": app.agent_id}).encode()
    with pytest.raises(WebhookRejected) as caught:
        WeComAdapter().parse_webhook(account, WebhookRequest(method="POST", headers={}, query=query, body=body))
    assert caught.value.status == 400 and "deeper" in caught.value.message


def test_wechat_compatible_mode_takes_only_the_signed_encrypted_copy():
    key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    account = AccountRef(id=5, kind="wechat", api_base=None, settings={"mode": "compatible"},
                         credentials={"app_id": "wxapp", "app_secret": "s", "token": "tok", "encoding_aes_key": key})
    stamp, nonce = str(int(time.time())), "42"
    query = {"signature": signature("tok", stamp, nonce), "timestamp": stamp, "nonce": nonce}
    plain = build_xml({"ToUserName": "gh_1", "FromUserName": "oEve", "CreateTime": int(stamp), "MsgType": "text",
                       "Content": "forged", "MsgId": 1}).encode()
    with pytest.raises(WebhookRejected) as caught:
        WeChatAdapter().parse_webhook(account, WebhookRequest(method="POST", headers={}, query=query, body=plain))
    assert caught.value.status == 400 and "compatible" in caught.value.message
    # Both copies present: the clear one says "forged", the signed encrypted one is what counts.
    cipher = MessageCipher("tok", key, "wxapp")
    genuine = build_xml({"ToUserName": "gh_1", "FromUserName": "oEve", "CreateTime": int(stamp),
                         "MsgType": "text", "Content": "genuine", "MsgId": 2})
    envelope = cipher.envelope(genuine, timestamp=stamp, nonce=nonce)
    both = build_xml({"ToUserName": "gh_1", "FromUserName": "oEve", "MsgType": "text", "Content": "forged",
                      "MsgId": 1, "Encrypt": envelope["Encrypt"]}).encode()
    [event] = WeChatAdapter().parse_webhook(account, WebhookRequest(
        method="POST", headers={}, query={**query, "msg_signature": envelope["MsgSignature"]}, body=both)).events
    assert event.text == "genuine"


def test_a_wechat_plain_signature_does_not_carry_another_body():
    account = AccountRef(id=5, kind="wechat", api_base=None, settings={"mode": "plain"},
                         credentials={"app_id": "wxapp", "app_secret": "s", "token": "tok", "encoding_aes_key": ""})
    adapter, stamp = WeChatAdapter(), str(int(time.time()))
    query = {"signature": signature("tok", stamp, "7"), "timestamp": stamp, "nonce": "7"}

    def body(text: str, msg_id: int) -> bytes:
        return build_xml({"ToUserName": "gh_1", "FromUserName": "oEve", "CreateTime": int(stamp), "MsgType": "text",
                          "Content": text, "MsgId": msg_id}).encode()

    adapter.parse_webhook(account, WebhookRequest(method="POST", headers={}, query=query, body=body("hi", 1)))
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse_webhook(account, WebhookRequest(method="POST", headers={}, query=query, body=body("pay", 2)))
    assert caught.value.status == 403 and "replayed" in caught.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000", "http://localhost/api", "http://10.1.2.3",
                                 "http://169.254.169.254/latest", "http://[::1]:80", "http://[::ffff:127.0.0.1]",
                                 "http://0.0.0.0", "https://user:pw@api.telegram.org", "ftp://example.com",
                                 "http://192.168.1.1:99999"])
async def test_internal_or_odd_destinations_are_refused_unless_allowed(url):
    with pytest.raises(UnsafeDestination) as caught:
        await check_url(url, allow_private=False, what="api_base")
    assert caught.value.args[0].startswith("api_base: ")
    await check_url("http://8.8.8.8/x", allow_private=False, what="api_base")  # public, no lookup needed
    await check_host("127.0.0.1", allow_private=True, what="imap_host")
