"""Texts in gettext catalogues a translator edits (`<package>/locale/<language>/LC_MESSAGES/
<domain>.po`, read with Babel): each message's id is its key in the code, its translation the text;
the Chinese catalogue carries the English beside each message. The core's own texts (what it
sends customers and reps itself: the satisfaction question, the double opt-in, reminders, card
buttons, channel and stage names) are the domain "core" under crm_core/locale; the bots' are
under bots/locale."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = ("en", "zh")
CORE_LOCALE = Path(__file__).with_name("locale")


def read(locale: Path, domain: str) -> dict[str, dict[str, str]]:
    """Key -> {language: text} for one domain."""
    texts: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        with (locale / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
            for message in read_po(po, locale=language, domain=domain):
                if message.id and message.string:
                    texts.setdefault(str(message.id), {})[language] = str(message.string)
    return texts


@cache
def core() -> dict[str, dict[str, str]]:
    return read(CORE_LOCALE, "core")


def text(key: str) -> dict[str, str]:
    """One of the core's texts in both languages: {"en": ..., "zh": ...}."""
    return core()[key]
