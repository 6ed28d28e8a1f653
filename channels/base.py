"""The narrow interface every channel adapter implements.

Inbound: a webhook request becomes normalized `crm_core.ports` events (or a
`WebhookRejected` with the status and a message that says how to fix it).
Outbound: `send` one message; buttons degrade to numbered text where the
platform has none. Adapters declare their capabilities and rate limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import httpx
from pydantic import BaseModel

from crm_core.ports import AccountRef, InboundEvent, OutboundMessage, Profile, RateLimit, SendResult

# A pooled connection idle this long is not used again. A server closes an idle keep-alive
# connection after its own timeout (5 s for uvicorn, and so for the simulators; longer for the
# platforms' fronts); reusing one at that moment fails the call with a ReadError before any
# answer. Shorter than any server's, a connection is given up before its server gives it up.
KEEPALIVE = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)


class AccountSettings(BaseModel):
    """Settings every channel account has, whatever its platform."""

    # The customer bot's language when a customer's message does not tell (a number, a
    # sticker) and their app does not either.
    default_language: Literal["zh", "en"] | None = None


@dataclass(frozen=True)
class Capabilities:
    buttons: bool = False
    images: bool = False
    markdown: bool = False
    max_text_length: int = 4096
    # Replies only within a window after the customer's last action (WeChat OA).
    reply_window: bool = False
    # Inbound messages carry a way to answer them (DingTalk sessionWebhook).
    reply_via: bool = False


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes


@dataclass
class WebhookOutcome:
    events: list[InboundEvent]
    status: int = 200
    # What the platform expects back (Telegram: a method call or nothing).
    response: dict[str, Any] | str | None = None
    # For a text response: its media type (default text/plain).
    content_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A (name, value) the account's poller reads, committed with the events (微信客服: the
    # callback's pull token, which tells the poller to pull now).
    cursor: tuple[str, str] | None = None


class WebhookRejected(Exception):
    """Bad inbound request: answered with `status` and this message, nothing stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Platform JSON is a few levels deep and its integers (ids, timestamps) fit in 64 bits:
# anything beyond is refused before a parser, a driver or a clock has to deal with it.
MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**63 - 1


def load_json_object(body: bytes | str, what: str) -> dict[str, Any]:
    """A platform's JSON body as an object; WebhookRejected(400) for anything else: not JSON,
    nested deeper than MAX_JSON_DEPTH, or holding an integer beyond 64 bits."""
    try:
        loaded = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: not JSON, or an integer of over 4,300 digits
        raise WebhookRejected(400, f"{what}: the body is not valid JSON ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})") from None
    if not isinstance(loaded, dict):
        raise WebhookRejected(400, f"{what}: the body is not a JSON object")
    stack: list[tuple[Any, int]] = [(loaded, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise WebhookRejected(400, f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_JSON_INT:
            raise WebhookRejected(400, f"{what}: a number beyond 64 bits ({str(value)[:30]}...)")
    return loaded


class ConnectionFailed(Exception):
    """The platform refused the credentials or could not be reached."""


@dataclass(frozen=True)
class ConnectionCheck:
    platform_account_id: str
    display_name: str


class ChannelAdapter(Protocol):
    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    credentials_model: ClassVar[type[BaseModel]]
    settings_model: ClassVar[type[BaseModel]]
    # Credential fields that are secrets (never shown again once saved).
    secret_fields: ClassVar[frozenset[str]]

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome: ...

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        """Buckets one send counts against; the account-wide bucket comes first."""
        ...

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult: ...

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck: ...

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """Point the platform at us (set the webhook) or prepare polling."""
        ...

    async def close(self) -> None: ...


class ProfileAdapter(ChannelAdapter, Protocol):
    """An adapter that can ask its platform who a user is (name, WeChat unionid)."""

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """None: no profile API for this user (a colleague, not a customer)."""
        ...


def media_lines(message: OutboundMessage) -> list[str]:
    """A picture's, a link's and a file's addresses, for channels that cannot show them."""
    lines = [f"{mark} {url}" for mark, url in (("🖼", message.image_url), ("🔗", message.link_url)) if url]
    if message.file_url:
        lines.append(f"📎 {message.file_name or message.file_url.rsplit('/', 1)[-1]}: {message.file_url}")
    return lines


def shortened(text: str, limit: int) -> str:
    """`text` within a platform's `limit` of characters (a card title, a button): cut at the last
    space or punctuation before it, never inside an English word, with "…" when cut; Chinese and
    other unspaced scripts may be cut between any two characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    if text[limit - 1].isascii() and text[limit - 1].isalnum() and head[-1:].isascii() and head[-1:].isalnum():
        # Inside a word of a spaced script: back to where it started.
        cut = max(head.rfind(" "), max((head.rfind(mark) for mark in ",.;:!?·，。；：！？、)"), default=-1))
        if cut > 0:
            head = head[:cut + (0 if head[cut] == " " else 1)]
    return head.rstrip(" ,;:·，；：、") + "…"


def shortened_bytes(text: str, limit: int) -> str:
    """`shortened`, for a platform that counts a field's UTF-8 bytes (WeCom: a link card's title
    128, a mini-program card's 64): a Chinese character is 3 of them."""
    size = min(len(text), limit)
    while size > 1 and len(shortened(text, size).encode("utf-8")) > limit:
        size -= 1
    return shortened(text, size)


def numbered_options(message: OutboundMessage, *, with_media: bool = True) -> str:
    """Buttons as numbered text lines, for platforms without buttons; the picture and
    link as addresses unless the caller shows them itself (`with_media=False`)."""
    lines = [message.text]
    if with_media and (message.image_url or message.link_url or message.file_url):
        lines += media_lines(message)
    if message.buttons:
        lines += [""] + [f"{n}. {b.label}" for n, b in enumerate(message.buttons, 1)]
    return "\n".join(lines)


class InboundSink(Protocol):
    """Where pollers hand events: stored and committed together with the cursor."""

    async def __call__(self, account_id: int, events: Sequence[InboundEvent], cursor: tuple[str, str] | None) -> None:
        ...


class Poller(Protocol):
    async def run(self, stop: Any) -> None: ...


class PollingAdapter(ChannelAdapter, Protocol):
    """An adapter that can fetch inbound messages itself (long polling, IMAP)."""

    def wants_polling(self, account: AccountRef) -> bool: ...

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Any) -> Poller: ...
