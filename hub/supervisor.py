"""`scrm serve` runs the worker (message worker, dispatcher, pollers, scheduled jobs) as a child
process and keeps it running.

In the same process the worker's CPU work (reading messages, the bots, planning campaigns)
competes with webhook ingest for one event loop: measured, ingest fell from 1,300 to 200
requests a second with a p99 of a second while the worker was busy. As its own process it has
its own core. The child is `scrm worker` with the same environment; if it dies it is started
again (waiting 1 s, then up to 30 s if it keeps dying); when `serve` stops, it is stopped
(SIGTERM, then SIGKILL after 20 s); if `serve` is killed, the child notices its parent is gone
and stops itself (`watch_parent`). The child runs at a lower CPU priority (`SCRM_WORKER_NICE`,
`yield_to_serve`): with the worker busy, ingest's p99 stays that of ingest alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_ENV = "SCRM_SUPERVISOR_PID"


class WorkerSupervisor:
    def __init__(self, argv: list[str] | None = None, *, first_backoff: float = 1.0, max_backoff: float = 30.0,
                 stop_timeout: float = 20.0) -> None:
        self.argv = argv or [sys.executable, "-m", "hub.cli", "worker"]
        self.first_backoff, self.max_backoff, self.stop_timeout = first_backoff, max_backoff, stop_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_running(), name="worker-supervisor")

    async def _keep_running(self) -> None:
        backoff = self.first_backoff
        while not self._stop.is_set():
            started = time.monotonic()
            # The same working directory and environment as serve: the same `.env`, the same
            # relative data directory (the embedded database), the same settings.
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env={**os.environ, PARENT_ENV: str(os.getpid())})
            self.starts += 1
            log.info("worker process %s started", self.process.pid)
            code = await self.process.wait()
            if self._stop.is_set():
                return
            # A worker that ran a while and then died is started again at once; one that dies at
            # start (a bad setting, the database away) is not restarted in a tight loop.
            backoff = self.first_backoff if time.monotonic() - started > 60 else min(backoff * 2, self.max_backoff)
            log.error("worker process %s exited with %s; starting it again in %.0f s", self.process.pid, code,
                      backoff)
            try:
                await asyncio.wait_for(self._stop.wait(), backoff)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                log.error("worker process %s did not stop in %.0f s; killing it", process.pid, self.stop_timeout)
                process.kill()
                await process.wait()
        if self._task is not None:
            await self._task


def yield_to_serve(nice: int) -> None:
    """In a supervised worker: a lower CPU priority than the `serve` process that started it, so
    that on a busy machine a platform's webhook is answered (and acknowledged within the
    platform's timeout) before the backlog is worked. Idle cores are still the worker's."""
    if not os.environ.get(PARENT_ENV) or nice <= 0:
        return
    lowered = os.getpriority(os.PRIO_PROCESS, 0) + nice
    # On Linux a priority is a thread's: those already started (a library's pool, at import) are
    # lowered one by one; the threads started from now on inherit it from this one.
    tasks = Path("/proc/self/task")
    for tid in sorted(int(t.name) for t in tasks.iterdir()) if tasks.is_dir() else [0]:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.setpriority(os.PRIO_PROCESS, tid, lowered)
    log.info("worker process %s runs at nice %d, below serve's", os.getpid(), os.getpriority(os.PRIO_PROCESS, 0))


async def watch_parent(stop: asyncio.Event, every: float = 1.0) -> None:
    """In a supervised worker: set `stop` once the `serve` process that started it is gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    while not stop.is_set():
        if os.getppid() != int(parent):
            log.error("the serve process %s is gone; stopping", parent)
            stop.set()
            return
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
