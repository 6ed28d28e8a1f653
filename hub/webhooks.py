"""POST /hooks/{channel}/{account}: verify, parse, store, commit, answer.

The request is refused with a 4xx (and nothing stored) when the body is too
large, the account is unknown or of another kind, or the adapter rejects it.
The answer goes out only after the events are committed.
"""

from __future__ import annotations

import logging
import re
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from admin.api.errors import REASONS, Refused
from admin.api.ids import ID_MAX, PathId
from channels.base import WebhookRejected, WebhookRequest
from channels.registry import UnknownChannel
from crm_core import observe
from hub import metrics
from hub.context import Hub
from hub.logs import new_request_id

log = logging.getLogger(__name__)

router = APIRouter(tags=["platform webhooks"])


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(status: int, message: str, kind: str, account_id: int, request: Request) -> Response:
    client = request.client.host if request.client else "?"
    log.warning("webhook %s/%s from %s rejected (%d): %s", kind, account_id, client, status, message)
    return JSONResponse({"detail": message}, status_code=status)


async def platform_webhook(kind: str, account_id: PathId, request: Request) -> Response:
    """Platform callbacks (GET for URL verification where a platform uses it)."""
    # The request's id (the caller's X-Request-Id, or a new one): in every log line about it, stored
    # with its messages, and carried to the sends that answer them (hub/logs.py).
    request_id = new_request_id(request.headers.get("x-request-id"))
    token = observe.request_id.set(request_id)
    try:
        response = await _answer(kind, account_id, request)
    finally:
        observe.request_id.reset(token)
    response.headers["X-Request-Id"] = request_id
    # A channel the hub does not have is counted as "unknown": the URL is the caller's to choose.
    known = kind if request.app.state.hub.channels.has(kind) else "unknown"
    metrics.WEBHOOKS.labels(known, str(response.status_code)).inc()
    return response


async def _answer(kind: str, account_id: int, request: Request) -> Response:
    hub: Hub = request.app.state.hub
    limit = hub.settings.max_webhook_body_bytes
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        return _reject(413, f"request body over {limit} bytes", kind, account_id, request)
    try:
        adapter = hub.channels.get(kind)
    except UnknownChannel as exc:
        return _reject(404, str(exc.args[0]), kind, account_id, request)
    found = await hub.account(account_id)
    if found is None or found[0].kind != kind:
        return _reject(404, f"no active {kind} channel account {account_id}: check the webhook URL the platform "
                            "calls against the admin panel's channel page", kind, account_id, request)
    _, account = found
    scope = request.scope
    webhook_request = WebhookRequest(
        method=request.method,
        # As Starlette's Headers and QueryParams read them, without building either for the one
        # look each takes.
        headers={name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]},
        query=dict(request.query_params) if scope["query_string"] else {},
        body=body,
    )
    try:
        outcome = adapter.parse_webhook(account, webhook_request)
    except WebhookRejected as exc:
        return _reject(exc.status, exc.message, kind, account_id, request)
    if outcome.events or outcome.cursor:
        started = time.perf_counter()
        await hub.ingest(account.id, outcome.events, outcome.cursor)
        metrics.INGEST.labels(kind).observe(time.perf_counter() - started)
    if outcome.response is None:
        return Response(status_code=outcome.status)
    if isinstance(outcome.response, str):
        if outcome.content_type:
            return Response(outcome.response, status_code=outcome.status, media_type=outcome.content_type)
        return PlainTextResponse(outcome.response, status_code=outcome.status)
    return JSONResponse(outcome.response, status_code=outcome.status)


# What platforms are answered: their own reply format, or a refusal saying what to check.
_ANSWERS: dict[int | str, dict] = {
    200: {"description": "Taken: the platform's expected answer",
          "content": {kind: {} for kind in ("application/json", "text/plain", "application/xml", "text/xml",
                                            "text/html")}},
    **{code: {"model": Refused, "description": REASONS[code]} for code in (400, 403, 404, 405, 413, 422)},
}
router.add_api_route("/hooks/{kind}/{account_id}", platform_webhook, methods=["POST"],
                     operation_id="platform_webhook_post", responses=_ANSWERS)
router.add_api_route("/hooks/{kind}/{account_id}", platform_webhook, methods=["GET"],
                     operation_id="platform_webhook_verify", responses=_ANSWERS)


_HOOK_PATH = re.compile(r"/hooks/([^/]+)/([0-9]{1,19})")


class WebhookFastPath:
    """Platform callbacks go straight to `platform_webhook`, past the API's router and its
    dependency resolution: about a tenth of a callback's CPU, on the path every message takes.

    The routes above stay for the OpenAPI document and for what this does not take: another
    method, or an id the API refuses (not a number, or out of range: the 422 that names it).
    Installed as the app's middleware, inside its error handling: a failure is still a 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            match = _HOOK_PATH.fullmatch(scope["path"])
            if match is not None and 1 <= (account_id := int(match[2])) <= ID_MAX:
                response = await platform_webhook(match[1], account_id, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
