"""The WeCom server API client: Tencent's client with WeCom's token request."""

from __future__ import annotations

from channels.tencent_client import AppKey, TencentApiClient
from crm_core.ports import AccountRef

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


def wecom_client() -> TencentApiClient:
    return TencentApiClient(product="WeCom", token_path="/cgi-bin/gettoken",
                            token_params=_token_params)


def _token_params(app: AppKey) -> dict[str, str]:
    return {"corpid": app.app_id, "corpsecret": app.secret}


def app_key(account: AccountRef) -> AppKey:
    """The corp and Secret the account's API calls use."""
    creds = account.credentials
    return AppKey(account.api_base or DEFAULT_API_BASE, creds["corp_id"], creds["secret"])
