"""What the demo holds on its first start, so a newcomer sees the product at work: a knowledge
base a real shop would have (`hub/demo_data/faq.json`). Seeded once per data directory: each
part is noted in `<data dir>/seeded.json` when written, so a restart does not add it again and
what the user deleted stays deleted."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from crm_core.knowledge import faq
from hub.context import Hub

DATA = files("hub") / "demo_data"


def _seeded(data_dir: Path) -> set[str]:
    path = data_dir / "seeded.json"
    return set(json.loads(path.read_text())) if path.exists() else set()


def _note(data_dir: Path, part: str) -> None:
    (data_dir / "seeded.json").write_text(json.dumps(sorted(_seeded(data_dir) | {part})))


async def seed_once(hub: Hub, data_dir: Path) -> list[str]:
    """The parts seeded by this call (none on a restart)."""
    done = _seeded(data_dir)
    seeded = []
    if "faq" not in done:
        entries = json.loads((DATA / "faq.json").read_text(encoding="utf-8"))["entries"]
        async with hub.sessions() as session, session.begin():
            for entry in entries:
                await faq.create(faq.FaqSpec(entry["questions"], entry["answers"], entry["synonyms"]), actor=None,
                                 db_session=session)
        _note(data_dir, "faq")
        seeded.append(f"faq ({len(entries)} entries)")
    return seeded
