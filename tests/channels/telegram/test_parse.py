"""Telegram updates become normalized events; a forged webhook is refused."""

from __future__ import annotations

import json

import pytest

from channels.base import WebhookRejected, WebhookRequest
from channels.telegram.adapter import TelegramAdapter
from crm_core.models import MessageKind
from crm_core.ports import AccountRef, InboundMessage, ReachabilityChanged

ACCOUNT = AccountRef(id=3, kind="telegram", api_base=None,
                     credentials={"bot_token": "123:abc", "webhook_secret": "s3cret-s3cret-s3cret"}, settings={})
USER = {"id": 42, "is_bot": False, "first_name": "王", "last_name": "伟", "username": "wangwei",
        "language_code": "zh-hans"}
CHAT = {"id": 42, "type": "private", "first_name": "王"}


def request(update: dict | bytes, secret: str | None = "s3cret-s3cret-s3cret") -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return WebhookRequest(method="POST", headers=headers, query={}, body=body)


def parse(update: dict):
    return TelegramAdapter().parse_webhook(ACCOUNT, request(update))


def test_text_message():
    outcome = parse({"update_id": 9, "message": {"message_id": 1, "date": 1700000000, "from": USER, "chat": CHAT,
                                                 "text": "请问什么时候发货？"}})
    [event] = outcome.events
    assert isinstance(event, InboundMessage)
    assert event.platform_message_id == "update:9"
    assert (event.kind, event.text, event.thread_id) == (MessageKind.TEXT, "请问什么时候发货？", "42")
    assert (event.sender.external_id, event.sender.display_name, event.sender.language) == ("42", "王 伟", "zh-hans")
    assert outcome.response is None


def test_photo_with_caption_keeps_the_largest_size():
    photo = [{"file_id": "small", "file_unique_id": "a", "width": 90, "height": 60},
             {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960}]
    [event] = parse({"update_id": 10, "message": {"message_id": 2, "date": 1700000000, "from": USER, "chat": CHAT,
                                                  "photo": photo, "caption": "broken on arrival"}}).events
    assert (event.kind, event.text) == (MessageKind.IMAGE, "broken on arrival")
    assert event.attachments[0]["file_id"] == "big"


def test_edited_message_is_an_edit_that_points_at_the_original():
    [event] = parse({"update_id": 11, "edited_message": {"message_id": 1, "date": 1700000000, "edit_date": 1700000100,
                                                         "from": USER, "chat": CHAT, "text": "fixed typo"}}).events
    assert (event.kind, event.text) == (MessageKind.EDIT, "fixed typo")
    assert {"type": "edit_of", "message_id": 1} in event.attachments


def test_button_press_is_answered_in_the_webhook_response():
    outcome = parse({"update_id": 12, "callback_query": {
        "id": "777", "from": USER, "chat_instance": "1", "data": "claim:5",
        "message": {"message_id": 3, "date": 1700000000, "chat": CHAT, "text": "pick one"}}})
    [event] = outcome.events
    assert (event.kind, event.text, event.thread_id) == (MessageKind.CALLBACK, "claim:5", "42")
    assert outcome.response == {"method": "answerCallbackQuery", "callback_query_id": "777"}


@pytest.mark.parametrize(("status", "reachable"), [("kicked", False), ("member", True)])
def test_blocking_and_restarting_the_bot(status, reachable):
    bot = {"id": 123, "is_bot": True, "first_name": "Bot"}
    [event] = parse({"update_id": 13, "my_chat_member": {
        "chat": CHAT, "from": USER, "date": 1700000000,
        "old_chat_member": {"status": "member", "user": bot},
        "new_chat_member": {"status": status, "user": bot, **({"until_date": 0} if status == "kicked" else {})}}}).events
    assert isinstance(event, ReachabilityChanged)
    assert event.reachable is reachable


def test_updates_we_do_not_handle_give_no_events():
    assert parse({"update_id": 14, "poll": {"id": "1", "question": "?", "options": [], "total_voter_count": 0,
                                            "is_closed": False, "is_anonymous": True, "type": "regular",
                                            "allows_multiple_answers": False}}).events == []


@pytest.mark.parametrize("secret", [None, "wrong-secret-wrong-secret", "s3cret-s3cret-s3cre"])
def test_a_wrong_or_missing_secret_token_is_403(secret):
    with pytest.raises(WebhookRejected) as info:
        TelegramAdapter().parse_webhook(ACCOUNT, request({"update_id": 1}, secret=secret))
    assert info.value.status == 403
    assert "account 3" in info.value.message


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b'{"update_id": "x"}'])
def test_malformed_bodies_are_400_with_a_reason(body):
    with pytest.raises(WebhookRejected) as info:
        TelegramAdapter().parse_webhook(ACCOUNT, request(body))
    assert info.value.status == 400
    assert info.value.message


def test_rate_limits_name_the_account_bucket_first():
    buckets = TelegramAdapter().rate_limits(ACCOUNT, "42")
    assert buckets[0][0] == "telegram:3"
    assert buckets[0][1].interval == pytest.approx(1 / 30)
    assert buckets[1][1].interval == pytest.approx(1.0)
    group = TelegramAdapter().rate_limits(ACCOUNT, "-100123")
    assert group[1][1].interval == pytest.approx(3.0)  # 20 per minute in groups


def test_a_get_to_the_webhook_is_405():
    get = WebhookRequest(method="GET", headers={}, query={}, body=b"")
    with pytest.raises(WebhookRejected) as info:
        TelegramAdapter().parse_webhook(ACCOUNT, get)
    assert info.value.status == 405


@pytest.mark.parametrize(("content", "kind"), [
    ({"sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                  "is_animated": False, "is_video": False}}, "sticker"),
    ({"location": {"latitude": 31.23, "longitude": 121.47}}, "location"),
    ({"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}, "caption": "听一下"}, "voice"),
    ({"something_new": {"id": 1}}, "unknown"),
])
def test_other_content_is_kept_with_its_kind(content, kind):
    [event] = parse({"update_id": 15, "message": {"message_id": 4, "date": 1700000000, "from": USER, "chat": CHAT,
                                                  **content}}).events
    assert event.kind == MessageKind.TEXT and event.attachments == [{"type": kind}]
    assert event.text == content.get("caption")


def test_a_message_from_a_bot_or_a_channel_post_gives_nothing_and_a_bad_shape_is_400():
    bot = {**USER, "is_bot": True}
    assert parse({"update_id": 16, "message": {"message_id": 5, "date": 1700000000, "from": bot, "chat": CHAT,
                                               "text": "hi"}}).events == []
    with pytest.raises(WebhookRejected) as info:
        parse({"update_id": 17, "message": {"message_id": 6, "date": "yesterday", "from": USER, "chat": CHAT}})
    assert info.value.status == 400 and "message.date" in info.value.message
