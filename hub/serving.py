"""Running ASGI apps with uvicorn inside our own event loop (demo, tests, bench)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        return self.servers[0].sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def running(app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                  **config: Any) -> AsyncIterator[EmbeddedServer]:
    """Serve `app` until the block ends; port 0 picks a free port (see `.port`)."""
    config.setdefault("timeout_graceful_shutdown", 5)
    server = EmbeddedServer(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                           lifespan="on", **config))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raises the startup error
            raise RuntimeError(f"server on {host}:{port} stopped during startup")
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await task
