"""What the customer bot says, in Chinese and English."""

from __future__ import annotations

from bots.catalogues import catalogue
from crm_core.accounts import CHANNELS

# Key -> {"en": ..., "zh": ...}, from bots/locale/<language>/LC_MESSAGES/customer.po.
TEXTS: dict[str, dict[str, str]] = catalogue("customer")

FIELD_NAMES = {
    "name": {"en": "your name", "zh": "称呼"},
    "company": {"en": "company", "zh": "公司"},
    "contact": {"en": "phone or email", "zh": "联系方式"},
    "need": {"en": "need", "zh": "需求"},
    "budget": {"en": "budget", "zh": "预算"},
    "timeframe": {"en": "time frame", "zh": "时间"},
}

# What customers call each channel: as staff do (crm_core/accounts.py), except that to a customer
# an Official Account or a WeCom rep is someone on WeChat.
CHANNEL_NAMES = {**CHANNELS, "wechat": {"en": "WeChat", "zh": "微信公众号"}, "wecom": {"en": "WeChat", "zh": "企业微信"}}


def say(key: str, lang: str, **params: object) -> str:
    text = TEXTS[key]["zh" if lang == "zh" else "en"]
    return text.format(**params) if params else text
