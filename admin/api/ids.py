"""Record ids and counts as the API takes them: within the databases' 64-bit integers.

A number past BIGINT would reach the database driver and fail there (an
OverflowError on SQLite, a DataError on PostgreSQL): bounded here, it is a 422
that names the field, and the OpenAPI document says so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

ID_MAX = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=ID_MAX)]               # in a body
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]            # /things/{thing_id}
QueryId = Annotated[int | None, Query(ge=1, le=ID_MAX)]   # ?thing_id=, optional
Offset = Annotated[int, Query(ge=0, le=ID_MAX)]           # paging
