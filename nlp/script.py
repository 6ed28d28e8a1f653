"""Traditional and Simplified Chinese characters (OpenCC's tables, pure Python): what customers
write in Traditional characters is read as Simplified (the models, keywords and FAQ questions are
written in Simplified), and answered in Traditional (bots/language.py)."""

from __future__ import annotations

from opencc import OpenCC

_TO_SIMPLIFIED = OpenCC("t2s")
_TO_TRADITIONAL = OpenCC("s2tw")  # Taiwan standard characters (為, 裡), also what Hong Kong readers expect


def simplified(text: str) -> str:
    return _TO_SIMPLIFIED.convert(text) if text else text


def traditional(text: str) -> str:
    return _TO_TRADITIONAL.convert(text) if text else text
