"""What the WeCom and WeChat simulators share: posting a callback the way Tencent does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def post_like_tencent(http: httpx.AsyncClient, url: str, query: dict[str, str], body: bytes, *,
                            deadline: float, retry_delays: tuple[float, ...], record: list[dict[str, Any]],
                            fields: dict[str, Any]) -> bool:
    """POST a callback; not answered 2xx within `deadline`, it is sent again, identical,
    after each of `retry_delays` (Tencent: three retries). True once answered 2xx."""
    for attempt in range(1 + len(retry_delays)):
        started = time.monotonic()
        try:
            resp = await http.post(url, params=query, content=body, headers={"content-type": "text/xml"},
                                   timeout=deadline)
            status, error = resp.status_code, None if resp.is_success else resp.text[:300]
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        record.append({"fields": fields, "query": query, "attempt": attempt + 1, "status": status, "error": error,
                       "seconds": round(time.monotonic() - started, 3)})
        if status is not None and 200 <= status < 300:
            return True
        if attempt < len(retry_delays):
            await asyncio.sleep(retry_delays[attempt])
    return False
