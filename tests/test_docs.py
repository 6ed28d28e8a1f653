"""The README is the map (at most 10 KB) and docs/ the pages it links; what they quote is kept
true: every link leads to a file, every `scrm` command exists, every SCRM_ variable is a setting
(or one the tests read), every file path named in backticks is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.cli import main
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _read_from_environment() -> set[str]:
    """SCRM_ variables the code reads directly (the tests', the benches'), besides the settings."""
    found: set[str] = set()
    for folder in ("tests", "bench", "hub", "channels", "crm_core", "nlp", "bots", "admin"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"environ(?:\.get)?[(\[]\"(SCRM_[A-Z0-9_]+)\"", path.read_text(encoding="utf-8")))
    return found


def test_the_readme_is_a_map_of_at_most_10_kb_linking_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 10 * 1024
    linked = {(ROOT / target).resolve() for target in re.findall(r"\]\((docs/[^)#]+)", readme)}
    pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - linked == set(), "a docs page the README does not link"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_what_a_page_quotes_is_true(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (page.parent / target).exists(), f"{target}: no such file"
    known = {f"SCRM_{name.upper()}" for name in Settings.model_fields} | _read_from_environment()
    for variable in set(re.findall(r"\bSCRM_[A-Z][A-Z0-9_]*[A-Z0-9]", text)):
        assert variable in known, f"{variable} is not a setting"
    for command in set(re.findall(r"`(?:\./dev )?scrm ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", text)):
        group = main.commands.get(command[0])
        assert group is not None, f"scrm {command[0]}: no such command"
        if command[1] and hasattr(group, "commands"):
            assert command[1] in group.commands, f"scrm {' '.join(command)}: no such command"
    for path in set(re.findall(r"`((?:channels|crm_core|nlp|bots|admin|hub|tests|bench|deploy)/[\w./-]*\w)`", text)):
        assert (ROOT / path).exists() or any(ROOT.glob(path)), f"{path}: no such file"
