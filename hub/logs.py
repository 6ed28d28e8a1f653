"""How the hub logs: text for a person at a terminal, or one JSON object a line
(`SCRM_LOG_FORMAT=json`) for a log collector. Every line carries the request id of the webhook
that brought the message it is about (`crm_core.observe.request_id`), from the webhook through
the worker to the send, so one customer message can be followed across processes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re

from crm_core import observe

_GIVEN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id(given: str | None = None) -> str:
    """A caller's X-Request-Id when it is a plain token of at most 64 characters, else a new one:
    64 random bits, which name a request and guard nothing (not os.urandom: a system call on every
    webhook, made with the interpreter's lock let go, for the other threads to take)."""
    return given if given and _GIVEN.match(given) else f"{random.getrandbits(64):016x}"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = observe.request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "-")  # set by RequestIdFilter; "-" for none
        line = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "request_id": None if request_id == "-" else request_id, "process": record.process}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup(level: str, form: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if form == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiogram").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Two lines per job run every few seconds drown what the hub itself says; failures still show.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
