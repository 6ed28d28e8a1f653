"""Teams: reps under a manager, and the channels whose new leads go to them first.
Admins change them; managers read them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core.leads import teams
from crm_core.models import Role, Team, User

router = APIRouter(prefix="/teams", tags=["teams"])


class TeamWrite(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    manager_user_id: Id | None = Field(default=None, description="An active manager who leads the team")
    channels: list[str] = Field(default_factory=list, max_length=20,
                                description="Channel kinds whose new leads and unclaimed customers go to "
                                            "this team's reps first")


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    manager_user_id: int | None
    channels: list[str]
    members: int = 0


async def _team(team_id: int, session: AsyncSession) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise HTTPException(404, f"no team {team_id}")
    return team


async def _member_counts(team_ids: list[int], session: AsyncSession) -> dict[int, int]:
    return dict((await session.execute(select(User.team_id, func.count()).where(User.team_id.in_(team_ids))
                                       .group_by(User.team_id))).all())


def _view(team: Team, members: int) -> TeamRead:
    return TeamRead(id=team.id, name=team.name, manager_user_id=team.manager_user_id, channels=team.channels,
                    members=members)


async def _read(team: Team, session: AsyncSession) -> TeamRead:
    return _view(team, (await _member_counts([team.id], session)).get(team.id, 0))


@router.get("", response_model=list[TeamRead], responses=errors())
async def list_teams(_: User = Depends(require_role(Role.ADMIN, Role.MANAGER)),
                     session: AsyncSession = Depends(db_session)) -> list[TeamRead]:
    all_teams = (await session.scalars(select(Team).order_by(Team.name))).all()
    counts = await _member_counts([t.id for t in all_teams], session)
    return [_view(t, counts.get(t.id, 0)) for t in all_teams]


@router.post("", response_model=TeamRead, status_code=201, responses=errors(409))
async def create(body: TeamWrite, actor: User = Depends(require_role(Role.ADMIN)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> TeamRead:
    try:
        team = await teams.create(body.name, manager_user_id=body.manager_user_id, channels=body.channels,
                                  channel_kinds=ctx.catalog.kinds, actor=actor, db_session=session)
    except teams.TeamRefused as exc:
        raise HTTPException(409 if isinstance(exc, teams.TeamNameTaken) else 422, str(exc)) from None
    await session.commit()
    return await _read(team, session)


@router.put("/{team_id}", response_model=TeamRead, responses=errors(404, 409))
async def update(team_id: PathId, body: TeamWrite, actor: User = Depends(require_role(Role.ADMIN)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> TeamRead:
    team = await _team(team_id, session)
    try:
        await teams.update_team(team, name=body.name, manager_user_id=body.manager_user_id, channels=body.channels,
                                channel_kinds=ctx.catalog.kinds, actor=actor, db_session=session)
    except teams.TeamRefused as exc:
        raise HTTPException(409 if isinstance(exc, teams.TeamNameTaken) else 422, str(exc)) from None
    await session.commit()
    return await _read(team, session)


@router.delete("/{team_id}", responses=errors(404))
async def delete(team_id: PathId, actor: User = Depends(require_role(Role.ADMIN)),
                 session: AsyncSession = Depends(db_session)) -> dict:
    """Remove the team; its members stay, in no team."""
    members = await teams.delete(await _team(team_id, session), actor=actor, db_session=session)
    await session.commit()
    return {"deleted": team_id, "members_now_without_team": members}
