"""Telegram updates read from their JSON: only the fields the hub uses, checked with small
models, so that taking a webhook costs neither the validation of aiogram's whole `Update` nor
the ~130 MB aiogram takes to import (the serving process never loads it; sending does).

The Bot API's objects as the hub reads them (https://core.telegram.org/bots/api#update):
a message or an edited message (who, which chat, when, its text or caption, the largest photo,
a document, else the kind of content kept by name), a button press (callback_query), and the
bot blocked or restarted in a private chat (my_chat_member). Unknown fields are ignored, as
Telegram adds them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_core.models import MessageKind
from crm_core.ports import InboundEvent, InboundMessage, ReachabilityChanged, Sender

INT64 = 2**63 - 1
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]  # what the hub asks for
# What a message may carry besides text, in the Bot API's order; the first present names it.
CONTENT_KINDS = ("animation", "audio", "document", "paid_media", "photo", "sticker", "story", "video", "video_note",
                 "voice", "contact", "dice", "game", "poll", "venue", "location", "invoice", "successful_payment",
                 "new_chat_members", "left_chat_member", "pinned_message")


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Object):
    id: int = Field(ge=-INT64, le=INT64)
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def sender(self) -> Sender:
        name = " ".join(p for p in (self.first_name, self.last_name) if p) or None
        return Sender(external_id=str(self.id), display_name=name, username=self.username,
                      language=self.language_code)


class Chat(_Object):
    id: int = Field(ge=-INT64, le=INT64)
    type: str


class PhotoSize(_Object):
    file_id: str
    width: int
    height: int


class Document(_Object):
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Message(_Object):
    model_config = ConfigDict(extra="allow", frozen=True)  # what else it carries names its kind

    message_id: int = Field(ge=-INT64, le=INT64)
    date: dt.datetime
    chat: Chat
    from_user: User | None = Field(default=None, alias="from")
    text: str | None = None
    caption: str | None = None
    photo: list[PhotoSize] | None = None
    document: Document | None = None

    def content(self) -> tuple[MessageKind, str | None, list[dict[str, Any]]]:
        if self.photo:
            largest = max(self.photo, key=lambda p: p.width * p.height)
            return MessageKind.IMAGE, self.caption, [{"type": "photo", "file_id": largest.file_id,
                                                      "width": largest.width, "height": largest.height}]
        if self.document is not None:
            doc = self.document
            return MessageKind.FILE, self.caption, [{"type": "document", "file_id": doc.file_id,
                                                     "name": doc.file_name, "mime_type": doc.mime_type,
                                                     "size": doc.file_size}]
        if self.text is not None:
            return MessageKind.TEXT, self.text, []
        # Stickers, voice, location...: kept with their kind, so nothing is lost.
        extra = self.model_extra or {}
        kind = next((name for name in CONTENT_KINDS if name in extra), "unknown")
        return MessageKind.TEXT, self.caption, [{"type": kind}]


class _MessageRef(_Object):
    """The message a button was on: possibly too old for Telegram to send in full."""
    chat: Chat


class CallbackQuery(_Object):
    id: str
    from_user: User = Field(alias="from")
    message: _MessageRef | None = None
    data: str | None = None


class ChatMember(_Object):
    status: str


class ChatMemberUpdated(_Object):
    chat: Chat
    from_user: User = Field(alias="from")
    new_chat_member: ChatMember


class Update(_Object):
    update_id: int = Field(ge=0, le=INT64)
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None
    my_chat_member: ChatMemberUpdated | None = None


def events(update: Update, raw: dict[str, Any]) -> list[InboundEvent]:
    """Normalized events for one update; updates the hub does not handle give none."""
    platform_id = f"update:{update.update_id}"
    msg = update.message or update.edited_message
    if msg is not None:
        if msg.from_user is None or msg.from_user.is_bot:
            return []
        kind, text, attachments = msg.content()
        if update.message is None:
            kind = MessageKind.EDIT
            attachments = [*attachments, {"type": "edit_of", "message_id": msg.message_id}]
        return [InboundMessage(platform_message_id=platform_id, sender=msg.from_user.sender(),
                               thread_id=str(msg.chat.id), kind=kind, text=text, raw=raw, sent_at=msg.date,
                               attachments=attachments)]
    if update.callback_query is not None:
        query = update.callback_query
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return [InboundMessage(platform_message_id=platform_id, sender=query.from_user.sender(),
                               thread_id=str(chat_id), kind=MessageKind.CALLBACK, text=query.data, raw=raw)]
    if update.my_chat_member is not None:
        change = update.my_chat_member
        if change.chat.type != "private":
            return []
        reachable = change.new_chat_member.status not in ("kicked", "left")
        return [ReachabilityChanged(platform_message_id=platform_id, sender=change.from_user.sender(),
                                    thread_id=str(change.chat.id), reachable=reachable,
                                    reason="restarted the bot" if reachable else "blocked the bot", raw=raw)]
    return []
