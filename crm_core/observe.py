"""What the core reports as it works, for whoever watches (`hub/metrics.py` counts it for
Prometheus). The default watcher does nothing: the core never depends on one being there."""

from __future__ import annotations

from collections.abc import Sequence


class Observer:
    def messages_processed(self, waited_seconds: Sequence[float]) -> None:
        """Customer messages answered (processed): for each, seconds since it arrived."""

    def send(self, channel: str, result: str) -> None:
        """One send's outcome: sent, retry, rate_limited, held, unreachable, failed."""


observer = Observer()


def watch(new: Observer) -> None:
    """Report to `new` from now on (once per process, at start)."""
    global observer
    observer = new
