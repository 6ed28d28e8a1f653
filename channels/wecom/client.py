"""The WeCom server API client: Tencent's client with WeCom's token request."""

from __future__ import annotations

from channels.tencent_client import AppKey, TencentApiClient

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


def wecom_client() -> TencentApiClient:
    return TencentApiClient(product="WeCom", token_path="/cgi-bin/gettoken",
                            token_params=_token_params)


def _token_params(app: AppKey) -> dict[str, str]:
    return {"corpid": app.app_id, "corpsecret": app.secret}
