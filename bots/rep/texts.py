"""What the rep bot says, in Chinese and English."""

from __future__ import annotations

from bots.catalogues import catalogue

# Chinese names reps may type for the pipeline stages.
STAGE_ALIASES = {"新线索": "new", "已联系": "contacted", "已确认": "qualified", "有效": "qualified",
                 "方案": "proposal", "报价": "proposal", "方案报价": "proposal", "成交": "won", "赢单": "won",
                 "丢单": "lost", "输单": "lost"}

# Key -> {"en": ..., "zh": ...}, from bots/locale/<language>/LC_MESSAGES/rep.po.
TEXTS: dict[str, dict[str, str]] = catalogue("rep")


def say(key: str, lang: str, **params: object) -> str:
    entry = TEXTS[key]
    return entry.get(lang, entry["en"]).format(**params)


def bilingual(key: str, **params: object) -> str:
    """Both languages, Chinese first: card titles read by reps of either language."""
    return f"{say(key, 'zh', **params)} / {say(key, 'en', **params)}"
