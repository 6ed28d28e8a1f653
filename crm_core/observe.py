"""What the core reports as it works, for whoever watches (`hub/metrics.py` counts it for
Prometheus). The default watcher does nothing: the core never depends on one being there."""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

# The webhook request being handled, and then the message it brought and the sends answering it:
# stored with the message and the outbox row, set again while each is processed and sent, so every
# log line on the way carries it (hub/logs.py).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class Observer:
    def messages_processed(self, waited_seconds: Sequence[float]) -> None:
        """Customer messages answered (processed): for each, seconds since it arrived."""

    def send(self, channel: str, result: str, code: str | None = None) -> None:
        """One send's outcome: sent, rate_limited, held, unreachable, failed, error; `code`: the
        platform's error code when it refused with one."""

    def opinion_alert(self, dimension: str) -> None:
        """A new opinion alert (a negative spike or a keyword rule) on a channel, campaign, team or product."""


observer = Observer()


def watch(new: Observer) -> None:
    """Report to `new` from now on (once per process, at start)."""
    global observer
    observer = new
