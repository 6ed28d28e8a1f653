"""The audit log: who changed what."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import AuditLog, User


async def record(
    action: str,
    *,
    entity_type: str,
    entity_id: object | None,
    actor: User | None,
    db_session: AsyncSession,
    actor_label: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    db_session.add(
        AuditLog(
            actor_user_id=actor.id if actor else None,
            actor_label=actor_label or (actor.username if actor else "system"),
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            details=details or {},
        )
    )
