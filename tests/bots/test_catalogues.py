"""What the bots and the core say lives in gettext catalogues a translator edits (bots/locale/,
crm_core/locale/): every key is in both languages, none is empty, and both languages take the
same {placeholders}, so a translation never drops the customer's name or asks the code for one
it does not give."""

from __future__ import annotations

import string

import pytest

from bots.catalogues import LANGUAGES, catalogue
from crm_core import catalogues


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("domain", ["customer", "rep", "core"])
def test_every_message_is_in_both_languages_with_the_same_placeholders(domain):
    texts = catalogues.core() if domain == "core" else catalogue(domain)
    assert len(texts) > 25
    missing = {key: sorted(set(LANGUAGES) - set(by_language)) for key, by_language in texts.items()
               if set(by_language) != set(LANGUAGES)}
    assert missing == {}
    differing = {key: {lang: sorted(placeholders(text)) for lang, text in by_language.items()}
                 for key, by_language in texts.items()
                 if placeholders(by_language["en"]) != placeholders(by_language["zh"])}
    assert differing == {}
