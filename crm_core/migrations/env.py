"""Alembic environment: runs on the connection crm_core.migrate hands in."""

from __future__ import annotations

from alembic import context

from crm_core import models  # noqa: F401  registers the tables
from crm_core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `scrm migrate`, which supplies the database connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
