"""What the bots say, from gettext catalogues a translator edits (`bots/locale/<language>/
LC_MESSAGES/<domain>.po`, read with Babel): each message's id is its key in the code, its
translation the text; the Chinese catalogue carries the English beside each message.
tests/bots/test_catalogues.py fails when a key is missing or empty in a language, or when the
two languages do not take the same {placeholders}."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

LOCALE = Path(__file__).with_name("locale")
LANGUAGES = ("en", "zh")


def catalogue(domain: str) -> dict[str, dict[str, str]]:
    """Key -> {language: text} for one domain ("customer", "rep")."""
    texts: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        with (LOCALE / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
            for message in read_po(po, locale=language, domain=domain):
                if message.id and message.string:
                    texts.setdefault(str(message.id), {})[language] = str(message.string)
    return texts
