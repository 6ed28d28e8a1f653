"""The layout the design fixes, and the one-way dependency on crm_core."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bots", "channels", "crm_core", "nlp", "admin", "hub")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_top_level_layout_exists():
    for name in (*PACKAGES, "tests"):
        assert (ROOT / name).is_dir(), f"{name}/ is missing"
    for name in ("pyproject.toml", "README.md", ".ci/run"):
        assert (ROOT / name).is_file(), f"{name} is missing"


def test_crm_core_imports_none_of_the_other_packages():
    offenders = []
    for path in sorted((ROOT / "crm_core").rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != "crm_core":
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_import_check_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from channels.telegram import adapter\nimport hub.app\n")
    assert {"channels.telegram", "hub.app"} <= imported_modules(bad)


def test_bots_never_call_channel_adapters_directly():
    for path in sorted((ROOT / "bots").rglob("*.py")):
        assert not any(m.split(".")[0] == "channels" for m in imported_modules(path)), path


def test_only_hub_imports_hub():
    """The composition root depends on the others, never the reverse (hub -> admin, bots, channels, nlp)."""
    offenders = []
    for package in PACKAGES:
        if package == "hub":
            continue
        for path in sorted((ROOT / package).rglob("*.py")):
            offenders += [f"{path.relative_to(ROOT)} imports {m}" for m in imported_modules(path)
                          if m.split(".")[0] == "hub"]
    assert offenders == []
