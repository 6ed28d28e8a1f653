"""Traditional and Simplified Chinese characters (OpenCC's tables, pure Python): what customers
write in Traditional characters is read as Simplified (the models, keywords and FAQ questions are
written in Simplified), and answered in Traditional (bots/language.py)."""

from __future__ import annotations

import re

from opencc import OpenCC

# OpenCC changes Han characters only: a text without any (most English chat) is returned as it is,
# without the walk through its tables, on the worker's path for every message.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TO_SIMPLIFIED = OpenCC("t2s")
_TO_TRADITIONAL = OpenCC("s2tw")  # Taiwan standard characters (為, 裡), also what Hong Kong readers expect


def has_chinese(text: str | None) -> bool:
    return bool(text and _HAN.search(text))


def simplified(text: str) -> str:
    return _TO_SIMPLIFIED.convert(text) if has_chinese(text) else text


def traditional(text: str) -> str:
    return _TO_TRADITIONAL.convert(text) if has_chinese(text) else text
