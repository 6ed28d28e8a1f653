"""What the bots say, from gettext catalogues a translator edits (`bots/locale/<language>/
LC_MESSAGES/<domain>.po`, read with Babel, as `crm_core.catalogues` reads the core's): each
message's id is its key in the code, its translation the text. tests/bots/test_catalogues.py
fails when a key is missing or empty in a language, or when the two languages do not take the
same {placeholders}."""

from __future__ import annotations

from pathlib import Path

from crm_core.catalogues import LANGUAGES, read

__all__ = ["LANGUAGES", "catalogue"]
LOCALE = Path(__file__).with_name("locale")


def catalogue(domain: str) -> dict[str, dict[str, str]]:
    """Key -> {language: text} for one domain ("customer", "rep")."""
    return read(LOCALE, domain)
