"""`scrm worker` processes for tests: started with the test's database, their log in a file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.stack import SECRET

ROOT = Path(__file__).resolve().parents[2]


def log_of(proc: subprocess.Popen) -> str:
    """The end of the process's log, for a failure's message."""
    return proc.log_path.read_text(errors="replace")[-3000:]


async def wait_running(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the worker says it is running, anywhere in its log: what it logs after (a planner's
    job skipped every half second while a campaign is planned) must not push the line out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while "worker running" not in proc.log_path.read_text(errors="replace"):
        assert proc.poll() is None, log_of(proc)
        assert asyncio.get_running_loop().time() < deadline, log_of(proc)
        await asyncio.sleep(0.05)


def start_worker(database_url: str, data_dir: Path, *extra: str, mode: str = "--dispatch-only",
                 **settings: str) -> subprocess.Popen:
    """`scrm worker` as its own process (a dispatcher unless `mode` says otherwise; "": the whole
    worker); `settings`
    are SCRM_* variables (nurture_plan_seconds="1" -> SCRM_NURTURE_PLAN_SECONDS=1)."""
    env = {**os.environ, "SCRM_DATABASE_URL": database_url, "SCRM_SECRET_KEY": SECRET,
           "SCRM_DATA_DIR": str(data_dir), "SCRM_LOG_LEVEL": "WARNING", "SCRM_DISPATCH_CONCURRENCY": "16",
           "SCRM_DISPATCH_BATCH_SIZE": "50", **{f"SCRM_{k.upper()}": v for k, v in settings.items()}}
    # A log file, not a pipe: nobody reads a pipe while the test waits, and a full
    # pipe would block the worker.
    log_path = data_dir / f"worker-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", *([mode] if mode else []), *extra],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log_path = log_path
    return proc


def stop(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
