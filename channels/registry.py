"""The adapters this hub knows. Adding a platform: one folder, one line here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from channels.base import ChannelAdapter
from channels.dingtalk.adapter import DingTalkAdapter
from channels.dingtalk.group_robot import DingTalkGroupRobotAdapter
from channels.email.adapter import EmailAdapter
from channels.files import OwnMedia
from channels.telegram.adapter import TelegramAdapter
from channels.tencent_client import SharedTokens, TencentApiClient
from channels.wechat.adapter import WeChatAdapter
from channels.wecom.adapter import WeComAdapter
from channels.wecom_kf.adapter import WeComKfAdapter
from crm_core.ports import AccountRef, Confirmation, OutboundMessage, Profile, RateLimit, SendResult


def default_adapters(public_base_url: str = "http://127.0.0.1:8080", *, allow_private: bool = False,
                     media_dir: Path | None = None) -> list[ChannelAdapter]:
    """Every channel; `public_base_url` is the hub's address in links it sends (email unsubscribe);
    `allow_private`: addresses on private networks may be fetched (pictures and files: the demo and
    tests); `media_dir`: where the hub keeps its uploads, read from disk when sent."""
    own = OwnMedia(f"{public_base_url.rstrip('/')}/media/", media_dir) if media_dir is not None else None
    return [TelegramAdapter(allow_private=allow_private, own_media=own),
            WeComAdapter(allow_private=allow_private, own_media=own),
            WeComKfAdapter(allow_private=allow_private, own_media=own), WeChatAdapter(), DingTalkAdapter(),
            DingTalkGroupRobotAdapter(), EmailAdapter(public_base_url, allow_private=allow_private, own_media=own)]


class UnknownChannel(KeyError):
    pass


class ChannelRegistry:
    """Looks adapters up by kind; also the core's OutboundGateway."""

    def __init__(self, adapters: Iterable[ChannelAdapter]) -> None:
        self._by_kind: dict[str, ChannelAdapter] = {}
        for adapter in adapters:
            if adapter.kind in self._by_kind:
                raise ValueError(f"two adapters for channel kind {adapter.kind!r}")
            self._by_kind[adapter.kind] = adapter

    def share_tokens(self, store: SharedTokens) -> None:
        """WeCom and WeChat access tokens from `store`, shared with the hub's other processes."""
        for adapter in self._by_kind.values():
            client = getattr(adapter, "client", None)
            if isinstance(client, TencentApiClient):
                client.shared = store

    @property
    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def has(self, kind: str) -> bool:
        return kind in self._by_kind

    def get(self, kind: str) -> ChannelAdapter:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownChannel(f"unknown channel kind {kind!r}; known: {', '.join(self.kinds)}") from None

    def needs_recipient_activity(self, account: AccountRef) -> bool:
        return self.get(account.kind).capabilities.reply_window

    def wants_reply_via(self, account: AccountRef) -> bool:
        return self.get(account.kind).capabilities.reply_via

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        return self.get(account.kind).rate_limits(account, recipient)

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        return await self.get(account.kind).send(account, message)

    async def confirmation(self, account: AccountRef, platform_message_id: str, recipient: str,
                           options: dict[str, Any]) -> Confirmation | None:
        ask = getattr(self.get(account.kind), "confirmation", None)
        return None if ask is None else await ask(account, platform_message_id, recipient, options)

    def profile_kinds(self) -> frozenset[str]:
        """The channel kinds whose adapters can ask their platform who a user is."""
        return frozenset(kind for kind, adapter in self._by_kind.items() if hasattr(adapter, "fetch_profile"))

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """The platform's profile of a user, or None where the channel has no profile API."""
        fetch = getattr(self.get(account.kind), "fetch_profile", None)
        return None if fetch is None else await fetch(account, external_id)

    def prepare_to_send(self) -> None:
        """Load what sending needs (the Telegram Bot API client takes a second or two to import)
        now, in a process that sends, rather than at its first send while the event loop waits."""
        for adapter in self._by_kind.values():
            prepare = getattr(adapter, "prepare_to_send", None)
            if prepare is not None:
                prepare()

    async def close(self) -> None:
        for adapter in self._by_kind.values():
            await adapter.close()
