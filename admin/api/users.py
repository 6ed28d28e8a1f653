"""Users: create reps and managers, link them to their chat-app account, and hand a
departing rep's conversations to a colleague with their history (离职继承)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core import audit
from crm_core.leads import teams
from crm_core.models import ChannelAccount, Role, User
from crm_core.people import reps, succession, users
from crm_core.ports import OutboundMessage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/users", tags=["users"])


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str | None = Field(default=None, max_length=200)
    role: Role
    manager_user_id: Id | None = None
    team_id: Id | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str | None
    role: Role
    manager_user_id: int | None
    team_id: int | None = None
    is_active: bool
    territory: dict | None = None


class UserUpdate(BaseModel):
    """The fields to change; those left out stay as they are."""

    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    manager_user_id: Id | None = Field(default=None, description="null: no manager")
    team_id: Id | None = Field(default=None, description="null: in no team")
    is_active: bool | None = None


class HandleCreate(BaseModel):
    channel_account_id: Id
    external_id: str = Field(min_length=1, max_length=200, description="The user's id in that app (WeCom userid)")


class HandoverRequest(BaseModel):
    to_user_id: Id
    deactivate: bool = True


class HandoverResult(BaseModel):
    reassigned: int
    deactivated: bool
    wecom_transfers: int = Field(default=0, description="WeCom customers asked to move to the heir in WeCom too "
                                                        "(GET /customer-transfers follows them)")


@router.get("", response_model=list[UserRead], responses=errors())
async def list_users(_: User = Depends(require_role(Role.ADMIN, Role.MANAGER)),
                     session: AsyncSession = Depends(db_session)) -> list[UserRead]:
    rows = (await session.scalars(select(User).order_by(User.id))).all()
    return [UserRead.model_validate(u) for u in rows]


@router.post("", response_model=UserRead, status_code=201, responses=errors(409))
async def create_user(body: UserCreate, actor: User = Depends(require_role(Role.ADMIN)),
                      session: AsyncSession = Depends(db_session)) -> UserRead:
    if await session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise HTTPException(409, f"a user named {body.username!r} exists already")
    if body.manager_user_id is not None and await session.get(User, body.manager_user_id) is None:
        raise HTTPException(422, f"no user {body.manager_user_id} to be the manager")
    user = User(username=body.username, display_name=body.display_name, role=body.role,
                manager_user_id=body.manager_user_id)
    session.add(user)
    await session.flush()
    if body.team_id is not None:
        try:
            await teams.join(user, body.team_id, db_session=session)
        except teams.TeamRefused as exc:
            raise HTTPException(422, str(exc)) from None
    await audit.record("user.create", entity_type="user", entity_id=user.id, actor=actor, db_session=session,
                       details={"username": user.username, "role": user.role.value, "team_id": user.team_id})
    await session.commit()
    return UserRead.model_validate(user)


@router.patch("/{user_id}", response_model=UserRead, responses=errors(404))
async def update_user(user_id: PathId, body: UserUpdate, actor: User = Depends(require_role(Role.ADMIN)),
                      session: AsyncSession = Depends(db_session)) -> UserRead:
    """Rename, change the role, the manager or the team, switch off or on (audited)."""
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    changes = body.model_dump(exclude_unset=True)
    if user.id == actor.id and changes.get("role", Role.ADMIN) != Role.ADMIN:
        raise HTTPException(422, "you cannot take away your own admin role; ask another admin")
    if changes.get("is_active") is False and user.is_active:
        _check_may_switch_off(actor, user)
    before = {"display_name": user.display_name, "role": user.role.value, "manager_user_id": user.manager_user_id,
              "team_id": user.team_id, "is_active": user.is_active}
    if "manager_user_id" in changes:
        manager_id = changes["manager_user_id"]
        manager = await session.get(User, manager_id) if manager_id else None
        if manager_id is not None and (manager is None or manager.role not in (Role.MANAGER, Role.ADMIN)):
            raise HTTPException(422, f"user {manager_id} is not a manager; choose a manager or admin")
        if manager_id == user.id:
            raise HTTPException(422, "a user cannot be their own manager")
        user.manager_user_id = manager_id
    if "team_id" in changes:
        try:
            await teams.join(user, changes["team_id"], db_session=session)
        except teams.TeamRefused as exc:
            raise HTTPException(422, str(exc)) from None
    if changes.get("role") is not None:
        user.role = changes["role"]
    if changes.get("is_active") is not None:
        user.is_active = changes["is_active"]
    if "display_name" in changes:
        user.display_name = (changes["display_name"] or "").strip() or None
    after = {"display_name": user.display_name, "role": user.role.value, "manager_user_id": user.manager_user_id,
             "team_id": user.team_id, "is_active": user.is_active}
    if after != before:
        await audit.record("user.update", entity_type="user", entity_id=user.id, actor=actor, db_session=session,
                           details={"from": {k: v for k, v in before.items() if after[k] != v},
                                    "to": {k: v for k, v in after.items() if before[k] != v}})
    await session.commit()
    return UserRead.model_validate(user)


@router.post("/{user_id}/handles", status_code=201, responses=errors(404, 409))
async def add_handle(user_id: PathId, body: HandleCreate, actor: User = Depends(require_role(Role.ADMIN)),
                     session: AsyncSession = Depends(db_session)) -> dict:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    if await session.get(ChannelAccount, body.channel_account_id) is None:
        raise HTTPException(422, f"no channel account {body.channel_account_id}")
    try:
        handle = await reps.add_handle(user, channel_account_id=body.channel_account_id,
                                       external_id=body.external_id, actor=actor, db_session=session)
    except reps.RepActionRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()
    return {"id": handle.id, "channel_account_id": handle.channel_account_id, "external_id": handle.external_id}


@router.post("/{user_id}/handover", response_model=HandoverResult, responses=errors(404))
async def handover(user_id: PathId, body: HandoverRequest,
                   actor: User = Depends(require_role(Role.ADMIN, Role.MANAGER)),
                   session: AsyncSession = Depends(db_session),
                   ctx: ApiContext = Depends(api_context)) -> HandoverResult:
    departing = await session.get(User, user_id)
    heir = await session.get(User, body.to_user_id)
    if departing is None or heir is None:
        raise HTTPException(404, f"no user {user_id if departing is None else body.to_user_id}")
    try:
        # Their WeCom customers move in WeCom as well (planned while the conversations are still theirs).
        transfers = await succession.plan_handover(departing, heir, db_session=session) \
            if actor.role in reps.SUPERVISORS and departing.id != heir.id and heir.is_active else []
        count = await reps.reassign_all(departing, heir, actor, deactivate=body.deactivate, db_session=session)
    except reps.RepActionRefused as exc:
        raise HTTPException(422, str(exc)) from None
    except users.UserChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if count:
        lang = heir.language or "zh"
        from_name = departing.display_name or departing.username
        text = {"zh": f"{from_name} 的 {count} 个会话已转交给您，发送 /我的 查看。",
                "en": f"{count} conversations of {from_name} are now yours; send /mine to see them."}[lang]
        await reps.notify_user(heir.id, OutboundMessage("", text, title="转交 · Handover"),
                               key=f"handover:{departing.id}:{heir.id}:"
                               f"{count}", db_session=session)
    await session.commit()
    ctx.on_enqueued()
    if transfers:
        try:
            await ctx.succession.run_once()  # asked now; the scheduler asks again what could not be
        except Exception:
            log.exception("customer transfers after handing over user %s: asked again next minute", departing.id)
    return HandoverResult(reassigned=count, deactivated=body.deactivate, wecom_transfers=len(transfers))


def _check_may_switch_off(actor: User, user: User) -> None:
    try:
        users.check_may_switch_off(actor, user)
    except users.UserChangeRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None


class TerritoryUpdate(BaseModel):
    regions: list[str] = Field(default_factory=list, max_length=100)
    industries: list[str] = Field(default_factory=list, max_length=100)


@router.put("/{user_id}/territory", response_model=UserRead, responses=errors(404))
async def set_territory(user_id: PathId, body: TerritoryUpdate,
                        actor: User = Depends(require_role(Role.ADMIN, Role.MANAGER)),
                        session: AsyncSession = Depends(db_session)) -> UserRead:
    """The regions and industries a rep covers: new leads from there go to them first."""
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    def names(values: list[str]) -> list[str]:
        # One spelling per name: "North China" and " north china " are the same region.
        return list({v.strip().lower(): v.strip() for v in reversed(values) if v.strip()}.values())[::-1]

    territory = {"regions": names(body.regions), "industries": names(body.industries)}
    previous, user.territory = user.territory, territory
    await audit.record("user.territory", entity_type="user", entity_id=user.id, actor=actor, db_session=session,
                       details={"from": previous, "to": territory})
    await session.commit()
    return UserRead.model_validate(user)
