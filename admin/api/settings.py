"""Settings the panel changes while the hub runs: SLA times, the lead pipeline and routing, marketing caps
and quiet hours, the alert threshold, watched products (keyword rules) and the wording
flagged in reps' replies (sensitive-word lists). The hub supplies what they are and how
they are checked and applied (`ApiContext.live_settings`, hub/live_settings.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from crm_core import hub_settings
from crm_core.leads import service as leads
from crm_core.models import Role, User

router = APIRouter(prefix="/settings", tags=["settings"])


def _view(ctx: ApiContext, stored: dict[str, Any]) -> dict[str, Any]:
    live = ctx.live_settings
    return {"sections": {name: list(keys) for name, keys in live.sections.items()},
            "values": live.values(), "environment": live.environment(),
            "changed_in_panel": sorted(stored)}


@router.get("", responses=errors())
async def read(_: User = Depends(require_role(Role.ADMIN, Role.MANAGER)), ctx: ApiContext = Depends(api_context),
               session: AsyncSession = Depends(db_session)) -> dict[str, Any]:
    """The values in force, the environment's, and which the panel changed."""
    await ctx.live_settings.reload()
    return _view(ctx, await hub_settings.stored(db_session=session))


class SettingsChange(BaseModel):
    changes: dict[str, Any] = Field(description="Setting name -> new value; null goes back to the environment's",
                                    examples=[{"sla_first_response_minutes": 15, "lead_routing": "round_robin"}])


@router.put("", responses=errors())
async def change(body: SettingsChange, user: User = Depends(require_role(Role.ADMIN)),
                 ctx: ApiContext = Depends(api_context),
                 session: AsyncSession = Depends(db_session)) -> dict[str, Any]:
    """Check the new values together with the others, store them (audited) and apply them:
    here at once, in the other processes within seconds."""
    if not body.changes:
        raise HTTPException(422, "nothing to change")
    stored = await hub_settings.stored(db_session=session)
    merged = {k: v for k, v in {**stored, **body.changes}.items() if v is not None}
    try:
        ctx.live_settings.check(merged)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if "lead_stages" in body.changes:
        stranded = await leads.stages_held(ctx.live_settings.lead_stages(merged), db_session=session)
        if stranded:
            held = ", ".join(f"{stage} ({count} open leads)" for stage, count in stranded.items())
            raise HTTPException(422, f"lead_stages: open leads are still in {held}; move them to another "
                                     "stage first, or keep those stages")
    await hub_settings.save(body.changes, actor=user, db_session=session)
    await session.commit()
    await ctx.live_settings.reload()
    return _view(ctx, await hub_settings.stored(db_session=session))
