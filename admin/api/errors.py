"""What the API answers when it refuses, as its OpenAPI document declares it.

Every refusal is `{"detail": ...}`: a sentence saying what to fix (a route's own
check), or the list of fields found wrong (request validation). Each route
declares the statuses it answers besides its success with `errors(...)`; 400 (a
body that is not JSON), 401 and 403 (no or another role's token, a missing CSRF
token), 409 (a unique name or key saved by a concurrent request) and 422 come
with every route, since every one reads and checks the caller and its input.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: body / query / path, then the field")
    msg: str
    type: str


class Refused(BaseModel):
    detail: str | list[FieldProblem] = Field(description="What to fix: a sentence, or the fields found wrong")


REASONS = {400: "Unreadable: a body that is not JSON, or a platform's refusal", 401: "No valid token or session",
           403: "Not allowed for this caller", 404: "Not found, or not visible to this caller",
           405: "Method not used by this platform", 409: "Conflicts with the record's state",
           413: "Body too large", 415: "A kind of file not taken", 422: "Invalid input",
           429: "Too many attempts; wait"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that may also answer `codes`."""
    every = {400, 401, 403, 409, 422, *codes}
    return {code: {"model": Refused, "description": REASONS[code]} for code in sorted(every)}
