"""The WeChat Official Account API client: Tencent's client with WeChat's token request."""

from __future__ import annotations

from channels.tencent_client import AppKey, TencentApiClient

DEFAULT_API_BASE = "https://api.weixin.qq.com"


def wechat_client() -> TencentApiClient:
    return TencentApiClient(product="WeChat", token_path="/cgi-bin/token", token_params=_token_params)


def _token_params(app: AppKey) -> dict[str, str]:
    return {"grant_type": "client_credential", "appid": app.app_id, "secret": app.secret}
