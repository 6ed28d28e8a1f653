"""The baseline for bench/ingest.py: a FastAPI endpoint that reads the same JSON
body and stores nothing. The hub's webhook is compared against it."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/hooks/telegram/{account_id}")
async def hook(account_id: int, request: Request) -> Response:
    json.loads(await request.body())
    return Response(status_code=200)
