"""DingTalk robot callbacks: signatures, the hour window, and what each payload becomes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time

import pytest

from channels.base import WebhookRejected, WebhookRequest
from channels.dingtalk.adapter import DingTalkAdapter, parse_payload
from channels.dingtalk.signing import SignatureRejected, check, sign, signed_robot_url
from crm_core.models import MessageKind
from crm_core.ports import AccountRef, InboundMessage

SECRET = "this-is-the-app-secret-0123456789abcdef"
ACCOUNT = AccountRef(id=7, kind="dingtalk", api_base=None,
                     credentials={"app_key": "dingabc123", "app_secret": SECRET, "robot_code": "dingabc123"},
                     settings={})


def test_sign_is_base64_hmac_sha256_of_timestamp_newline_secret():
    # Computed independently of the module under test, as DingTalk documents it.
    expected = base64.b64encode(hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()).decode()
    assert sign("1700000000000", "SECxyz") == expected
    url = signed_robot_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SECxyz", now_ms=1700000000000)
    assert url.startswith("https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign=")
    assert "%2B" in url or "%2F" in url or "%3D" in url  # the signature is URL-encoded


def test_check_accepts_a_fresh_signature_and_refuses_the_rest():
    now = 1_700_000_000_000
    check(str(now), sign(now, SECRET), SECRET, now_ms=now + 3_599_000)
    cases = {
        "stale": (str(now), sign(now, SECRET), now + 3_601_000, 403),
        "future": (str(now), sign(now, SECRET), now - 3_601_000, 403),
        "wrong": (str(now), sign(now, "another-secret"), now, 403),
        "missing": (str(now), None, now, 403),
        "not a number": ("yesterday", "x", now, 400),
    }
    for name, (timestamp, given, at, status) in cases.items():
        with pytest.raises(SignatureRejected) as caught:
            check(timestamp, given, SECRET, now_ms=at)
        assert caught.value.status == status, name


def message(**extra):
    body = {"conversationId": "cidP2P==", "chatbotCorpId": "dingcorp", "chatbotUserId": "$:LWCP_v1:$bot",
            "msgId": "msgA1", "senderNick": "Li Lei", "isAdmin": False, "senderId": "$:LWCP_v1:$li",
            "sessionWebhookExpiredTime": 1700003600000, "createAt": 1700000000000, "senderCorpId": "dingcorp",
            "conversationType": "1", "senderStaffId": "manager4321", "isInAtList": True,
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc", "robotCode": "dingabc123",
            "msgtype": "text", "text": {"content": " /claim 42 "}}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def test_a_colleague_in_a_one_to_one_chat_is_staff_known_by_staff_id():
    [event] = parse_payload(message())
    assert isinstance(event, InboundMessage)
    assert event.sender.is_staff and event.sender.external_id == "manager4321"
    assert (event.thread_id, event.text, event.platform_message_id) == ("manager4321", "/claim 42", "msg:msgA1")
    assert event.attachments == [{"type": "reply_via",
                                  "session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
                                  "expires_at_ms": 1700003600000}]
    assert event.sent_at.timestamp() == 1_700_000_000


def test_in_groups_only_mentions_count_and_customers_are_known_by_sender_id():
    assert parse_payload(message(conversationType="2", conversationId="cidGroup1==", isInAtList=False)) == []
    [event] = parse_payload(message(conversationType="2", conversationId="cidGroup1==", senderStaffId=None,
                                    senderCorpId="dingothercorp", senderId="$:LWCP_v1:$cust"))
    assert not event.sender.is_staff
    assert (event.sender.external_id, event.thread_id) == ("$:LWCP_v1:$cust", "cidGroup1==")
    # Staff of another company is a customer too.
    [other] = parse_payload(message(senderCorpId="dingothercorp"))
    assert not other.sender.is_staff and other.sender.external_id == "$:LWCP_v1:$li"


def test_pictures_rich_text_files_and_card_clicks():
    [picture] = parse_payload(message(msgtype="picture", text=None, content={"downloadCode": "dl1"}))
    assert picture.kind == MessageKind.IMAGE and picture.attachments[0] == {"type": "image", "download_code": "dl1"}
    rich = message(msgtype="richText", text=None,
                   content={"richText": [{"text": "see "}, {"downloadCode": "dl2", "type": "picture"},
                                         {"text": "this"}]})
    [event] = parse_payload(rich)
    assert event.text == "see this" and event.attachments[0]["download_code"] == "dl2"
    [file] = parse_payload(message(msgtype="file", text=None, content={"downloadCode": "dl3", "fileName": "报价.pdf"}))
    assert file.kind == MessageKind.FILE and file.text == "报价.pdf"
    click = {"outTrackId": "card123", "userId": "manager4321", "corpId": "dingcorp", "requestId": "r1",
             "content": json.dumps({"cardPrivateData": {"actionIds": ["claim:42"], "params": {}}})}
    [pressed] = parse_payload(click)
    assert (pressed.kind, pressed.text, pressed.sender.is_staff) == (MessageKind.CALLBACK, "claim:42", True)


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", headers=headers, query={}, body=body)


_calls = itertools.count()


def signed(timestamp: int | None = None) -> dict[str, str]:
    # One signature per callback, as DingTalk signs them: a signature with another body is a replay.
    timestamp = timestamp or int(time.time() * 1000) + next(_calls)
    return {"timestamp": str(timestamp), "sign": sign(timestamp, SECRET)}


def test_the_webhook_refuses_bad_input_with_a_clear_status():
    adapter = DingTalkAdapter()
    good = json.dumps(message()).encode()
    assert len(adapter.parse_webhook(ACCOUNT, request(good, signed())).events) == 1
    cases = [
        (request(good, {}), 403, "missing the timestamp or sign"),
        (request(good, signed(int(time.time() * 1000) - 2 * 3600 * 1000)), 403, "more than an hour off"),
        (request(good, {"timestamp": signed()["timestamp"], "sign": "AAAA"}), 403, "sign does not match"),
        (request(b"{not json", signed()), 400, "not valid JSON"),
        (request(b"[1, 2]", signed()), 400, "not a JSON object"),
        (request(json.dumps({"msgtype": "text"}).encode(), signed()), 400, "needs msgId and msgtype"),
        (request(json.dumps({"outTrackId": "x", "userId": "u", "content": "{"}).encode(), signed()), 400,
         "content is not JSON"),
    ]
    for req, status, words in cases:
        with pytest.raises(WebhookRejected) as caught:
            adapter.parse_webhook(ACCOUNT, req)
        assert caught.value.status == status and words in caught.value.message, caught.value.message
