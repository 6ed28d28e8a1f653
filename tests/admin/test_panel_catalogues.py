"""The panel's texts live in one JSON catalogue per language (admin/panel/static/i18n/): every key
of one language is in the other, none is empty, and every key the panel's code asks for by name
is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

from crm_core.leads.imports import REASONS

STATIC = Path(__file__).resolve().parents[2] / "admin" / "panel" / "static"
CATALOGUES = {language: json.loads((STATIC / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
              for language in ("en", "zh")}


def keys(catalogue: dict) -> set[str]:
    return {f"text.{k}" for k in catalogue["text"]} | {
        f"values.{group}.{value}" for group, values in catalogue["values"].items() for value in values}


def test_every_key_is_in_both_languages_and_none_is_empty():
    en, zh = keys(CATALOGUES["en"]), keys(CATALOGUES["zh"])
    assert sorted(en - zh) == [], "missing in Chinese"
    assert sorted(zh - en) == [], "missing in English"
    for language, catalogue in CATALOGUES.items():
        empty = [k for k, v in catalogue["text"].items() if not str(v).strip()]
        empty += [f"{g}.{k}" for g, values in catalogue["values"].items() for k, v in values.items() if not v.strip()]
        assert empty == [], f"empty in {language}"


def test_every_key_the_code_names_exists():
    code = "\n".join(path.read_text(encoding="utf-8") for path in (STATIC / "js").rglob("*.js"))
    asked = set(re.findall(r"\bt\(\"([a-z0-9_]+)\"\s*[,)]", code))  # a whole key, not a prefix joined to a value
    assert sorted(asked - set(CATALOGUES["en"]["text"])) == []
    groups = set(re.findall(r"\blabel\(\"([a-z_]+)\"", code))
    assert sorted(groups - set(CATALOGUES["en"]["values"])) == []


def test_the_sign_in_page_finds_each_of_its_texts_in_both_catalogues():
    code = (STATIC.parent / "routes.py").read_text(encoding="utf-8")
    asked = set(re.findall(r"\bt\[[\"']([a-z_]+)[\"']\]", code))
    assert {"title", "heading", "username", "password", "submit", "refused"} <= asked
    for language, catalogue in CATALOGUES.items():
        assert sorted(k for k in asked if f"signin_{k}" not in catalogue["text"]) == [], language


def test_every_reason_an_import_rejects_a_row_for_is_said_in_both_languages():
    for language, catalogue in CATALOGUES.items():
        assert sorted(code for code in REASONS if f"import_reason_{code}" not in catalogue["text"]) == [], language
