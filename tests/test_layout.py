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
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # a module imported from its package
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


# crm_core's domain packages, each importing only the shared base (the modules at the top of
# crm_core) and the packages before it: this order is the one-way dependency DESIGN.md describes.
DOMAIN_ORDER = ("knowledge", "consent", "contacts", "outbox", "leads", "campaigns", "conversations", "people",
                "deals", "followups")


def _crm_core_part(module: str) -> str | None:
    """The domain package a crm_core module belongs to, "" for the shared base, None outside crm_core."""
    parts = module.split(".")
    if parts[0] != "crm_core":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in DOMAIN_ORDER else ""


def layering_offences(root: Path) -> list[str]:
    offences = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        own = _crm_core_part(module)
        allowed = set(DOMAIN_ORDER[:DOMAIN_ORDER.index(own) + 1]) if own else set()
        for imported in sorted(imported_modules(path)):
            part = _crm_core_part(imported)
            if part and part not in allowed:
                offences.append(f"{path.relative_to(root.parent)} ({own or 'base'}) imports {imported}")
    return offences


def test_crm_core_domains_depend_one_way():
    assert layering_offences(ROOT / "crm_core") == []


def test_every_crm_core_domain_says_what_it_owns_and_no_module_outgrows_600_lines():
    for domain in DOMAIN_ORDER:
        init = ROOT / "crm_core" / domain / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init}: one line on what it owns"
    long = [f"{path.relative_to(ROOT)}: {n}" for path in sorted((ROOT / "crm_core").rglob("*.py"))
            if "migrations" not in path.parts and (n := len(path.read_text(encoding="utf-8").splitlines())) > 600]
    assert long == []


def test_the_layering_check_catches_an_import_against_the_order(tmp_path):
    package = tmp_path / "crm_core"
    (package / "consent").mkdir(parents=True)
    (package / "consent" / "service.py").write_text("from crm_core.outbox import service\n")
    (package / "db.py").write_text("from crm_core.leads.service import open_lead\n")
    (package / "people").mkdir()
    (package / "people" / "reps.py").write_text("from crm_core.outbox import service\nfrom crm_core import db\n")
    assert layering_offences(package) == [
        "crm_core/consent/service.py (consent) imports crm_core.outbox",
        "crm_core/consent/service.py (consent) imports crm_core.outbox.service",
        "crm_core/db.py (base) imports crm_core.leads.service",
        "crm_core/db.py (base) imports crm_core.leads.service.open_lead"]


PANEL_JS = ROOT / "admin" / "panel" / "static" / "js"


def test_the_panel_is_es_modules_one_per_page_and_escapes_in_one_place():
    modules = sorted(PANEL_JS.rglob("*.js"))
    pages = {path.stem for path in (PANEL_JS / "pages").glob("*.js")}
    assert {"dashboard", "inbox", "contacts", "leads", "campaigns", "channels", "users", "settings", "audit"} <= pages
    index = (PANEL_JS.parent / "index.html").read_text(encoding="utf-8")
    assert '<script type="module" src="/admin/static/js/main.js">' in index
    offences = []
    for path in modules:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PANEL_JS)
        if len(text.splitlines()) > 600:
            offences.append(f"{name}: over 600 lines")
        if "&lt;" in text and path.name != "core.js":
            offences.append(f"{name}: escapes by hand (html`` in core.js escapes)")
        for sink in ("innerHTML = ", 'insertAdjacentHTML("beforeend", '):
            for rest in text.split(sink)[1:]:
                if not rest.startswith(("markup(", '""')):
                    offences.append(f"{name}: {sink}{rest[:40]!r} does not go through markup()")
    assert offences == []
