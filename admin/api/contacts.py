"""Contacts: list and get with identities; undo a link between two channels'
identities. Reps see only their own customers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ANY_ROLE, ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import ID_MAX, Id, Offset, PathId
from admin.api.schemas import ContactDetail, ContactRead, TagsUpdate
from crm_core import audit
from crm_core.consent import service as consent
from crm_core.contacts import merging, tags
from crm_core.contacts.linking import UnlinkRefused, reach_keys, unlink_identity
from crm_core.contacts.naming import shown_names
from crm_core.contacts.privacy import ErasureRefused, erase_person, export_person
from crm_core.conversations import double_opt_in
from crm_core.conversations import service as conversations
from crm_core.models import Contact, MessagePurpose, Role, User

router = APIRouter(prefix="/contacts", tags=["contacts"])


async def _visible_contact(contact_id: int, user: User, session: AsyncSession) -> Contact:
    """The contact, if `user` may see it (a rep: their own customers); else 404, as for a missing one."""
    contact = await conversations.get_contact(contact_id, user, db_session=session)
    if contact is None:
        raise HTTPException(404, f"no contact {contact_id}")
    return contact


@router.get("", response_model=list[ContactRead], responses=errors())
async def list_contacts(
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
    q: str | None = Query(None, max_length=100, description="Part of a name, a channel name or a phone / email"),
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> list[ContactRead]:
    rows = await conversations.list_contacts(user, db_session=session, limit=limit, offset=offset, q=q)
    names = await shown_names(rows, db_session=session)
    return [ContactRead.model_validate(c).model_copy(update={"name": names[c.id]}) for c in rows]


@router.get("/{contact_id}", response_model=ContactDetail, responses=errors(404))
async def get_contact(
    contact_id: PathId,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> ContactDetail:
    contact = await _visible_contact(contact_id, user, session)
    keys = (await reach_keys([contact.id], db_session=session)).get(contact.id, [])
    return ContactDetail.model_validate(contact).model_copy(update={
        "name": (await shown_names([contact], db_session=session))[contact.id],
        "phones": [v for k, v in keys if k == "phone"], "emails": [v for k, v in keys if k == "email"],
        "tags": await tags.tags_of(contact.id, db_session=session)})


@router.put("/{contact_id}/tags", responses=errors(404))
async def set_tags(
    contact_id: PathId,
    body: TagsUpdate,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> dict:
    """Replace the contact's tags (campaign audiences select by them). Reps tag their own customers."""
    await _visible_contact(contact_id, user, session)
    result = await tags.set_tags(contact_id, body.tags, actor=user, db_session=session)
    await session.commit()
    return {"contact_id": contact_id, "tags": result}


class ConsentChange(BaseModel):
    purpose: MessagePurpose = MessagePurpose.MARKETING
    granted: bool
    channel: str | None = Field(default=None, max_length=32, description="A channel kind; none: every channel")
    double_opt_in: bool = Field(default=False, description="Ask the person to confirm before it counts")
    note: str = Field(default="", max_length=500, description="Where it comes from: the form, the call...")


@router.get("/{contact_id}/consent", responses=errors(404))
async def consent_ledger(
    contact_id: PathId,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> dict:
    """The consent state per purpose and channel, and every grant and withdrawal with its proof."""
    await _visible_contact(contact_id, user, session)
    return await consent.ledger(contact_id, db_session=session)


@router.post("/{contact_id}/consent", responses=errors(404, 409))
async def change_consent(
    contact_id: PathId,
    body: ConsentChange,
    user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
    ctx: ApiContext = Depends(api_context),
    session: AsyncSession = Depends(db_session),
) -> dict:
    """Record a grant or withdrawal given outside the chat (a form, a call). A withdrawal cancels
    queued sends of that purpose at once; a double opt-in grant asks the person first."""
    contact = await _visible_contact(contact_id, user, session)
    evidence = {"note": body.note, "by_user_id": user.id}
    if body.granted and body.double_opt_in:
        try:
            request = await double_opt_in.request_confirmation(
                contact_id, purpose=body.purpose, channel=body.channel, source="api", actor_label=user.username,
                evidence=evidence, language=contact.language or "zh", db_session=session)
        except LookupError as exc:
            raise HTTPException(409, f"{exc}; record the grant without double opt-in if you hold its proof") from None
        await session.commit()
        ctx.on_enqueued()
        return {"status": "awaiting_confirmation", "request_id": request.id}
    await consent.record(contact_id, purpose=body.purpose, granted=body.granted, channel=body.channel,
                         source="api", evidence=evidence, actor_label=user.username, db_session=session)
    cancelled = 0
    if not body.granted and body.channel is None:
        cancelled = await consent.cancel_pending(contact_id, body.purpose, reason=f"{body.purpose.value} consent "
                                                 f"withdrawn by {user.username}", db_session=session)
    await session.commit()
    return {"status": "recorded", "cancelled_sends": cancelled,
            **await consent.ledger(contact_id, db_session=session)}


class UnlinkRequest(BaseModel):
    identity_id: Id


@router.post("/{contact_id}/unlink", response_model=ContactDetail, responses=errors(404, 409))
async def unlink(
    contact_id: PathId,
    body: UnlinkRequest,
    user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
    session: AsyncSession = Depends(db_session),
) -> ContactDetail:
    """Separate one identity (and its conversations) from a contact it was linked
    to; returns the contact that now holds it. Audited."""
    await _visible_contact(contact_id, user, session)
    try:
        home = await unlink_identity(contact_id, body.identity_id, actor=user, db_session=session)
    except UnlinkRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()
    detail = await conversations.get_contact(home.id, user, db_session=session)
    return ContactDetail.model_validate(detail)


@router.get("/{contact_id}/export", response_class=JSONResponse,
            responses={200: {"description": "Everything the hub holds about the person, as JSON"}, **errors(404, 409)})
async def export(
    contact_id: PathId,
    user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
    session: AsyncSession = Depends(db_session),
) -> JSONResponse:
    """A person's data (a data subject's access request): the contact, contacts merged into it,
    identities, conversations and messages, notes, the consent ledger and audit entries. Audited."""
    contact = await _visible_contact(contact_id, user, session)
    if contact.merged_into_id is not None:
        raise HTTPException(409, f"contact {contact_id} was merged into {contact.merged_into_id}; export that one")
    data = await export_person(contact, db_session=session)
    await audit.record("contact.export", entity_type="contact", entity_id=contact.id, actor=user,
                       details={"messages": len(data["messages"])}, db_session=session)
    await session.commit()
    return JSONResponse(data, headers={
        "Content-Disposition": f'attachment; filename="contact-{contact.id}-export.json"'})


class EraseRequest(BaseModel):
    confirm_contact_id: int = Field(ge=1, le=ID_MAX, description="The contact's id again: erasure cannot be undone")


@router.post("/{contact_id}/erase", responses=errors(404, 409))
async def erase(
    contact_id: PathId,
    body: EraseRequest,
    user: User = Depends(require_role(Role.ADMIN)),
    session: AsyncSession = Depends(db_session),
) -> dict[str, int]:
    """Erase a person's data (names, platform ids, contact details, message texts and payloads, notes,
    queued sends), keeping the counts and the consent ledger. Cannot be undone; audited."""
    if body.confirm_contact_id != contact_id:
        raise HTTPException(422, "confirm_contact_id must repeat the contact id: erasure cannot be undone")
    contact = await _visible_contact(contact_id, user, session)
    try:
        counts = await erase_person(contact, actor=user, db_session=session)
    except ErasureRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()
    return counts


class MergeRequest(BaseModel):
    source_contact_id: int = Field(ge=1, le=ID_MAX,
                                   description="The contact merged into this one; it is reached through this one "
                                               "afterwards")


@router.get("/{contact_id}/merge", responses=errors(404, 409))
async def merge_preview(
    contact_id: PathId,
    source_contact_id: int = Query(ge=1, le=ID_MAX, description="The contact that would be merged into this one"),
    user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
    session: AsyncSession = Depends(db_session),
) -> dict:
    """What merging `source_contact_id` into this contact would move and what clashes; changes nothing."""
    await _visible_contact(contact_id, user, session)
    source = await _visible_contact(source_contact_id, user, session)
    try:
        plan = await merging.preview(source_contact_id, contact_id, db_session=session)
    except merging.MergeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return {**plan.as_dict(), "source": ContactDetail.model_validate(source).model_dump(mode="json")}


@router.post("/{contact_id}/merge", responses=errors(404, 409))
async def merge(
    contact_id: PathId,
    body: MergeRequest,
    user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
    session: AsyncSession = Depends(db_session),
) -> dict:
    """Merge another contact into this one: identities, conversations, consent ledger, leads, enrolments,
    tags... (crm_core/contacts/merging.py). Audited."""
    await _visible_contact(contact_id, user, session)
    await _visible_contact(body.source_contact_id, user, session)
    try:
        plan = await merging.merge(body.source_contact_id, contact_id, actor=user, db_session=session)
    except merging.MergeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()
    return plan.as_dict()
