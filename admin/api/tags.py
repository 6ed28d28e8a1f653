"""The contact tags in use, renamed or deleted everywhere at once; where a tag is also a WeCom corp
tag, WeCom's is renamed (edit_corp_tag) or deleted (del_corp_tag) first, so both sides agree.
Supervisors read them; admins and operators change them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from crm_core.contacts import tags
from crm_core.models import Role, User

router = APIRouter(prefix="/tags", tags=["tags"])
TagName = Path(min_length=1, max_length=64, description="The tag as contacts carry it")


class TagRename(BaseModel):
    name: str = Field(min_length=1, max_length=30, description="The new name (WeCom's corp tags: at most 30)")


@router.get("", responses=errors())
async def list_tags(_: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
                    session: AsyncSession = Depends(db_session)) -> dict[str, int]:
    """Every tag in use, with how many contacts have it."""
    return await tags.counts(db_session=session)


@router.put("/{name}", responses=errors(404, 422))
async def rename_tag(body: TagRename, name: str = TagName,
                     user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                     ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> dict[str, int]:
    new = body.name.strip()
    if not new or new == name:
        raise HTTPException(422, "give the tag a new name")
    if name not in await tags.counts(db_session=session):
        raise HTTPException(404, f"no contact has the tag {name!r}")
    try:
        apps = await ctx.corp_tags.rename(name, new)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    contacts = await tags.rename_everywhere(name, new, actor=user, db_session=session)
    await session.commit()
    return {"contacts": contacts, "wecom_apps": apps}


@router.delete("/{name}", responses=errors(404, 422))
async def delete_tag(name: str = TagName, user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                     ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> dict[str, int]:
    if name not in await tags.counts(db_session=session):
        raise HTTPException(404, f"no contact has the tag {name!r}")
    try:
        apps = await ctx.corp_tags.delete(name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    contacts = await tags.delete_everywhere(name, actor=user, db_session=session)
    await session.commit()
    return {"contacts": contacts, "wecom_apps": apps}
