"""The Telegram simulator in a process of its own, as the real platform is.

The simulator judges Telegram's limits by when each send reaches it. Served inside the test's
process it shares that process's event loop: any pause of the test's process holds every send
that arrives meanwhile, then lets them through in one instant, a burst no dispatcher sent (a
0.7 s block of the test's loop: 16 refusals at once, measured; what paused the pytest worker
the one time CI saw 36 is not known). A test of pacing across processes therefore talks to a
simulator that only serves.

`python -m tests.fakes.telegram_process PORT_FILE` serves it and writes its port to PORT_FILE.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.fakes.processes import ROOT, stop


@contextlib.asynccontextmanager
async def telegram_simulator_process(data_dir: Path, timeout: float = 60) -> AsyncIterator[str]:
    """Start the simulator's process; yields its base URL (its `/_sim` routes drive it)."""
    port_file = data_dir / f"telegram-simulator-{id(data_dir)}.port"
    log_path = port_file.with_suffix(".log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.telegram_process", str(port_file)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not port_file.exists():
            assert proc.poll() is None, f"the simulator exited: {log_path.read_text(errors='replace')[-3000:]}"
            assert asyncio.get_running_loop().time() < deadline, f"the simulator did not start in {timeout} s"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        stop([proc])


async def _serve(port_file: Path) -> None:
    from channels.simulators.telegram import TelegramSimulator
    from hub.serving import running

    async with running(TelegramSimulator().app) as server:
        written = port_file.with_suffix(".tmp")
        written.write_text(str(server.port))
        written.rename(port_file)  # whole, or not there yet
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Path(sys.argv[1])))
