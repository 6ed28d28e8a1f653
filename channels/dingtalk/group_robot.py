"""A DingTalk custom group robot (自定义机器人): team-wide alerts into one group.

Outbound only: the group's webhook URL, signed per call when the robot's
加签 (sign) setting is on, at most 20 messages a minute (the dispatcher paces
to that; DingTalk's 130101 "send too fast" is retried after a minute). The
recipient of a send is ignored: everything goes to the robot's group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, field_validator

from channels.base import Capabilities, ConnectionCheck, WebhookOutcome, WebhookRejected, WebhookRequest
from channels.dingtalk.adapter import webhook_message
from channels.dingtalk.client import DingTalkApi, DingTalkError, DingTalkUnavailable
from channels.dingtalk.signing import signed_robot_url
from crm_core.models import Delivery
from crm_core.ports import (
    AccountRef,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RetryLater,
    SendResult,
    TemporaryFailure,
)

TOO_FAST = "130101"
SIGN_MISMATCH = "310000"


class GroupRobotCredentials(BaseModel):
    webhook_url: str = Field(description="The robot's Webhook, https://oapi.dingtalk.com/robot/send?access_token=…")
    secret: str | None = Field(default=None, max_length=200, description="The 加签 secret (SEC…), if set")

    @field_validator("webhook_url")
    @classmethod
    def _has_token(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parse_qs(parts.query).get("access_token"):
            raise ValueError("expected the robot's Webhook URL with its access_token")
        return value


class GroupRobotSettings(BaseModel):
    messages_per_minute: int = Field(default=20, ge=1, le=20)


class DingTalkGroupRobotAdapter:
    kind: ClassVar[str] = "dingtalk_group_robot"
    capabilities: ClassVar[Capabilities] = Capabilities(markdown=True, max_text_length=5000)
    credentials_model: ClassVar[type[BaseModel]] = GroupRobotCredentials
    settings_model: ClassVar[type[BaseModel]] = GroupRobotSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"webhook_url", "secret"})

    def __init__(self, api: DingTalkApi | None = None) -> None:
        self.api = api or DingTalkApi()

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        raise WebhookRejected(404, f"channel account {account.id} is a DingTalk group robot: it only sends")

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = GroupRobotSettings.model_validate(account.settings)
        return [(f"dingtalk-group-robot:{account.id}", RateLimit(settings.messages_per_minute, 60))]

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        creds = account.credentials
        try:
            await self.api.post_webhook(signed_robot_url(creds["webhook_url"], creds.get("secret")),
                                        webhook_message(message))
        except DingTalkError as exc:
            if exc.code == TOO_FAST:
                raise RetryLater("DingTalk group robot: more than 20 messages a minute", retry_after=60.0,
                                 code=exc.code) from None
            if exc.code == SIGN_MISMATCH:
                raise PermanentFailure("DingTalk group robot refused the signature: check its 加签 secret",
                                       code=exc.code) from None
            raise PermanentFailure(f"DingTalk group robot: {exc.code} {exc.message}", code=exc.code) from None
        except DingTalkUnavailable as exc:
            raise TemporaryFailure(str(exc)) from None
        return SendResult(platform_message_id="", delivery=Delivery.IN_CHAT)

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        """Custom robots have no read-only call to test: the URL and secret are checked by form."""
        creds = GroupRobotCredentials.model_validate(credentials)
        token = parse_qs(urlsplit(creds.webhook_url).query)["access_token"][0]
        return ConnectionCheck(platform_account_id=token, display_name="DingTalk group robot")

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """Nothing to register: the robot only sends."""

    async def close(self) -> None:
        await self.api.close()
