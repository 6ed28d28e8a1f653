"""Which language to answer in: the customer's, zh or en, and for Chinese, which script.

Their words decide first: Chinese characters are Chinese; English needs more than a word that
people of every language type ("STOP", "OK", "TD", "hi"), so a Chinese speaker's "STOP" is
answered in Chinese. Then what is known of them (the language the bot last spoke with them),
then their app's language (`language_code`: zh-hans, zh-CN, zh-TW... are Chinese). Customers
who write Traditional characters, or whose app is set to Taiwan, Hong Kong or Macau Chinese
(zh-TW, zh-HK, zh-MO, zh-Hant), get the bot's Chinese in Traditional characters."""

from __future__ import annotations

import re

from nlp.script import has_chinese, simplified, traditional

_WORD = re.compile(r"[A-Za-z]{2,}")
# Typed by people of every language: one of them alone says nothing of theirs.
_ANY_LANGUAGE = frozenset({"stop", "td", "ok", "okay", "yes", "no", "hi", "hey", "bye", "thx", "bot", "help",
                           "vip", "app", "wifi", "emm", "hmm", "haha", "lol"})
_TRADITIONAL_APPS = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")
TRADITIONAL = "zh-Hant"  # the spoken language kept for a customer who reads Traditional characters


def words_language(text: str | None) -> str | None:
    """"zh" or "en" when the words tell, else None."""
    if not text:
        return None
    if has_chinese(text):
        return "zh"
    words = _WORD.findall(text)
    if len(words) >= 2 or (words and words[0].lower() not in _ANY_LANGUAGE):
        return "en"
    return None


def _zh_or_en(language: str | None) -> str | None:
    return None if not language else "zh" if language.lower().startswith("zh") else "en"


def reply_language(text: str | None, platform_language: str | None = None, known: str | None = None) -> str:
    """'zh' or 'en': the words, else what is `known` of them (the bot's last language with
    them), else their app's language, else English."""
    return words_language(text) or _zh_or_en(known) or _zh_or_en(platform_language) or "en"


def writes_traditional(text: str | None, platform_language: str | None = None) -> bool:
    """Their Chinese is Traditional: characters that differ from Simplified, or (no Chinese
    written) an app set to Taiwan, Hong Kong or Macau Chinese."""
    if has_chinese(text):
        return simplified(text) != text
    return (platform_language or "").lower().startswith(_TRADITIONAL_APPS)


def to_traditional(text: str) -> str:
    return traditional(text)
