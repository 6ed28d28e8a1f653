"""Which language to answer in: the customer's, zh or en."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def reply_language(text: str | None, platform_language: str | None = None) -> str:
    """'zh' when the customer writes Chinese (or their app is set to Chinese), else 'en'."""
    if text and _HAN.search(text):
        return "zh"
    if text and re.search(r"[A-Za-z]", text):
        return "en"
    if platform_language and platform_language.lower().startswith("zh"):
        return "zh"
    return "en"
