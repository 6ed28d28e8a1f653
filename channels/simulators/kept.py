"""A simulator's state kept in a file across restarts (the demo's data directory): read once at
start, written a moment after a burst of changes and at close, whole, a new file renamed over the
old, so a crash leaves one or the other."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEPT_SENDS = 1000  # a platform's log of what the hub sent: its last entries are kept (chats are kept whole)


class KeptState:
    def __init__(self, path: Path | None, snapshot: Callable[[], Any]) -> None:
        """`path`: None keeps nothing; `snapshot`: the state to write, as JSON values."""
        self.path = path
        self.snapshot = snapshot
        self._pending = False

    def load(self) -> Any:
        """What was saved, or None."""
        return json.loads(self.path.read_text(encoding="utf-8")) if self.path and self.path.exists() else None

    def changed(self) -> None:
        """Save soon: many changes in a burst are written once."""
        if self.path is None or self._pending:
            return
        self._pending = True
        try:
            asyncio.get_running_loop().call_later(0.2, self.save)
        except RuntimeError:  # no event loop: a test driving the state directly
            self.save()

    def save(self) -> None:
        self._pending = False
        if self.path is None:
            return
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.snapshot(), ensure_ascii=False))
        partial.chmod(0o600)  # simulated secrets, but secrets (bot tokens): not for other users of the machine
        os.replace(partial, self.path)
