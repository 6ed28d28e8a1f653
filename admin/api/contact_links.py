"""Contact links of a channel account (微信客服): a link and its QR code per campaign or place,
whose customers arrive with that source (`scene_param`, as the lead source and for reports).

Kept with the account (its settings' `contact_links`); created with the platform's API
(kf/add_contact_way), listed, removed, and their QR codes drawn as SVG for the panel to show
and download. Operators and admins manage them; managers see them.
"""

from __future__ import annotations

import datetime as dt
import io

import segno
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.channel_accounts import MANAGE, VIEW, account_or_404
from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import PathId
from crm_core import audit
from crm_core.models import User

router = APIRouter(prefix="/channel-accounts", tags=["channel accounts"])
MAX_LINKS = 500


class ContactLinkCreate(BaseModel):
    label: str = Field(min_length=1, max_length=100,
                       description="What the link is for: 展会2026 海报, the spring mailing")
    source: str = Field(min_length=1, max_length=40, pattern=r"^[^\s&=#%?/\\]+$",
                        description="The source its customers arrive with (no spaces or & = # % ? /)")
    open_kfid: str | None = Field(default=None, pattern=r"^wk[0-9A-Za-z_-]{6,64}$",
                                  description="The kf account; empty: the first the app serves")


class ContactLinkRead(BaseModel):
    id: int
    label: str
    source: str
    url: str
    created_at: dt.datetime


def _links(account) -> list[dict]:
    return list((account.settings or {}).get("contact_links") or [])


@router.get("/{account_id}/contact-links", response_model=list[ContactLinkRead], responses=errors(404))
async def list_contact_links(account_id: PathId, _: User = Depends(require_role(*VIEW)),
                             session: AsyncSession = Depends(db_session)) -> list[ContactLinkRead]:
    return [ContactLinkRead.model_validate(link) for link in _links(await account_or_404(account_id, session))]


@router.post("/{account_id}/contact-links", response_model=ContactLinkRead, status_code=status.HTTP_201_CREATED,
             responses=errors(400, 404, 409))
async def create_contact_link(account_id: PathId, body: ContactLinkCreate,
                              user: User = Depends(require_role(*MANAGE)),
                              session: AsyncSession = Depends(db_session),
                              ctx: ApiContext = Depends(api_context)) -> ContactLinkRead:
    account = await account_or_404(account_id, session)
    links = _links(account)
    if any(link["source"] == body.source for link in links):
        raise HTTPException(409, f"a contact link with source {body.source!r} exists: give this one another source")
    if len(links) >= MAX_LINKS:
        raise HTTPException(409, f"at most {MAX_LINKS} contact links per account: remove unused ones first")
    number = max((link["id"] for link in links), default=0) + 1
    try:
        url = await ctx.catalog.contact_link(account, body.open_kfid, f"hub{number}", body.source)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except Exception as exc:
        raise HTTPException(400, f"WeCom did not make the link: {exc}") from None
    link = {"id": number, "label": body.label, "source": body.source, "url": url,
            "created_at": dt.datetime.now(dt.UTC).isoformat()}
    account.settings = {**(account.settings or {}), "contact_links": [*links, link]}
    await audit.record("channel.contact_link", entity_type="channel_account", entity_id=account.id, actor=user,
                       db_session=session, details={"id": number, "label": body.label, "source": body.source})
    await session.commit()
    ctx.catalog.forget(account.id)
    return ContactLinkRead.model_validate(link)


@router.delete("/{account_id}/contact-links/{link_id}", status_code=204, responses=errors(404))
async def delete_contact_link(account_id: PathId, link_id: PathId, user: User = Depends(require_role(*MANAGE)),
                              session: AsyncSession = Depends(db_session),
                              ctx: ApiContext = Depends(api_context)) -> None:
    """The link leaves the list (WeCom keeps serving it: people who saved it still arrive, with its source)."""
    account = await account_or_404(account_id, session)
    links = _links(account)
    if not any(link["id"] == link_id for link in links):
        raise HTTPException(404, f"no contact link {link_id} on channel account {account_id}")
    account.settings = {**(account.settings or {}), "contact_links": [k for k in links if k["id"] != link_id]}
    await audit.record("channel.contact_link_removed", entity_type="channel_account", entity_id=account.id,
                       actor=user, db_session=session, details={"id": link_id})
    await session.commit()
    ctx.catalog.forget(account.id)


@router.get("/{account_id}/contact-links/{link_id}/qr.svg", responses=errors(404),
            response_class=Response)
async def contact_link_qr(account_id: PathId, link_id: PathId, _: User = Depends(require_role(*VIEW)),
                          session: AsyncSession = Depends(db_session)) -> Response:
    """The link's QR code as SVG, to show and to download for a poster."""
    link = next((k for k in _links(await account_or_404(account_id, session)) if k["id"] == link_id), None)
    if link is None:
        raise HTTPException(404, f"no contact link {link_id} on channel account {account_id}")
    out = io.BytesIO()
    segno.make(link["url"], error="m").save(out, kind="svg", scale=8, border=2, title=link["label"])
    return Response(out.getvalue(), media_type="image/svg+xml", headers={
        "Content-Disposition": f'inline; filename="contact-link-{account_id}-{link_id}.svg"'})
