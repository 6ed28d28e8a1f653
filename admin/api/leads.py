"""Leads: list, export, read with history, create, import a file, move the stage, record an order, assign.

Reps see and work only their own leads; managers, operators and admins see all.
Imports (CSV / Excel) are for operators and admins and answer with the report of
rejected rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ANY_ROLE, ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Offset, PathId, QueryId
from admin.api.schemas import LeadAssign, LeadCreate, LeadDetail, LeadEventRead, LeadOrder, LeadRead, LeadStageUpdate
from crm_core import audit, visibility
from crm_core.contacts.naming import shown_names
from crm_core.conversations import service as conversations
from crm_core.db import utcnow
from crm_core.leads import export as lead_export
from crm_core.leads import service as leads
from crm_core.leads import sources
from crm_core.leads.imports import ImportRefused, ImportReport, import_leads, import_one, read_rows
from crm_core.leads.service import LeadRefused
from crm_core.models import ChannelAccount, Contact, ContactKey, Lead, LeadEvent, Message, Role, User

router = APIRouter(prefix="/leads", tags=["leads"])

SUPERVISORS = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)
MAX_IMPORT_BYTES = 20 * 1024 * 1024
log = logging.getLogger(__name__)


async def _lead(lead_id: int, user: User, session: AsyncSession) -> Lead:
    lead = await session.get(Lead, lead_id)
    # Someone else's lead gets the same answer as a missing one.
    if lead is None or not visibility.may_see_lead(user, lead):
        raise HTTPException(404, f"lead {lead_id} not found")
    return lead


async def _detail(lead: Lead, session: AsyncSession) -> LeadDetail:
    events = (await session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead.id)
                                    .order_by(LeadEvent.id))).all()
    return LeadDetail(**{**LeadRead.model_validate(lead).model_dump(),
                         "source_label": (await _source_labels([lead], session))[lead.id]},
                      events=[LeadEventRead.model_validate(e) for e in events])


async def _source_labels(rows: Sequence[Lead], session: AsyncSession) -> dict[int, dict[str, str]]:
    """Each lead's source as a person says it, from the channel and date of the message that opened it."""
    ids = {lead.source_message_id for lead in rows if lead.source_message_id is not None}
    opened = {message_id: (kind, at) for message_id, kind, at in (await session.execute(
        select(Message.id, ChannelAccount.kind, Message.created_at)
        .join(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
        .where(Message.id.in_(ids)))).all()} if ids else {}
    found = {lead.id: opened.get(lead.source_message_id, (None, None)) for lead in rows}
    return {lead.id: sources.describe(lead.source_kind, lead.source, channel=found[lead.id][0], at=found[lead.id][1])
            for lead in rows}


def _visible_leads(user: User, status: str | None, stage: str | None, owner_user_id: int | None,
                   contact_id: int | None = None, q: str | None = None) -> list[Any]:
    """Conditions on `Lead`: the filters, and for a rep only their own leads."""
    where: list[Any] = []
    if q and q.strip():
        like = f"%{q.strip()}%"
        where.append(or_(Lead.company.ilike(like),
                         Lead.contact_id.in_(select(Contact.id).where(Contact.display_name.ilike(like))),
                         Lead.contact_id.in_(select(ContactKey.contact_id).where(ContactKey.value.ilike(like)))))
    where.append(visibility.leads(user))
    if user.role != Role.REP and owner_user_id is not None:
        where.append(Lead.owner_user_id == owner_user_id)
    if status:
        where.append(Lead.status == status)
    if stage:
        where.append(Lead.stage == stage)
    if contact_id is not None:
        where.append(Lead.contact_id == contact_id)
    return where


@router.get("", response_model=list[LeadRead], responses=errors())
async def list_leads(status: str | None = Query(None, pattern="^(open|closed)$"), stage: str | None = None,
                     owner_user_id: QueryId = None, contact_id: QueryId = None,
                     q: str | None = Query(None, max_length=100, description="Part of a name, company, phone or email"),
                     limit: int = Query(50, ge=1, le=500),
                     offset: Offset = 0, user: User = Depends(require_role(*ANY_ROLE)),
                     session: AsyncSession = Depends(db_session)) -> list[LeadRead]:
    rows = (await session.execute(
        select(Lead, Contact, User.display_name, User.username)
        .join(Contact, Contact.id == Lead.contact_id)
        .outerjoin(User, User.id == Lead.owner_user_id)
        .where(*_visible_leads(user, status, stage, owner_user_id, contact_id, q))
        .order_by(Lead.id.desc()).limit(limit).offset(offset))).all()
    labels = await _source_labels([lead for lead, *_ in rows], session)
    names = await shown_names([contact for _, contact, *_ in rows], db_session=session)
    return [LeadRead.model_validate(lead).model_copy(update={
        "contact_name": names[contact.id], "source_label": labels[lead.id],
        "owner_name": owner_display or owner_username}) for lead, contact, owner_display, owner_username in rows]


@router.get("/pipeline", responses=errors())
async def pipeline(_: User = Depends(require_role(*ANY_ROLE)), ctx: ApiContext = Depends(api_context)) -> dict:
    """The pipeline's stages, first stage first (the panel's stage pickers)."""
    return {"stages": list(ctx.lead_rules.stages)}


@router.get("/export", response_class=StreamingResponse, responses={
    200: {"content": {"text/csv": {}}, "description": "The leads as CSV (UTF-8 with a BOM)"}, **errors()})
async def export(status: str | None = Query(None, pattern="^(open|closed)$"), stage: str | None = None,
                 owner_user_id: QueryId = None, q: str | None = Query(None, max_length=100),
                 language: str = Query("en", pattern="^(zh|en)$"),
                 user: User = Depends(require_role(*ANY_ROLE)), ctx: ApiContext = Depends(api_context),
                 session: AsyncSession = Depends(db_session)) -> StreamingResponse:
    """The leads the user may see, filtered as the list is, as CSV (UTF-8 with a BOM, so Excel
    reads Chinese); the file imports back. Audited: it carries people's phones and emails."""
    where = _visible_leads(user, status, stage, owner_user_id, q=q)
    filters = {"status": status, "stage": stage, "owner_user_id": owner_user_id if user.role != Role.REP else user.id,
               "q": q}
    await audit.record("lead.export", entity_type="lead", entity_id=None, actor=user, db_session=session,
                       details={k: v for k, v in filters.items() if v is not None})
    await session.commit()

    async def lines() -> AsyncIterator[bytes]:
        yield ("\ufeff" + lead_export.csv_line(lead_export.header(language))).encode()
        async with ctx.sessions() as reading:
            async for cells in lead_export.lead_rows(where, db_session=reading):
                yield lead_export.csv_line(cells).encode()

    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="leads-{stamp}.csv"'})


@router.get("/{lead_id}", response_model=LeadDetail, responses=errors(404))
async def get_lead(lead_id: PathId, user: User = Depends(require_role(*ANY_ROLE)),
                   session: AsyncSession = Depends(db_session)) -> LeadDetail:
    return await _detail(await _lead(lead_id, user, session), session)


@router.post("", response_model=LeadDetail, status_code=201, responses=errors(404))
async def create(body: LeadCreate, user: User = Depends(require_role(*ANY_ROLE)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> LeadDetail:
    """A lead for a known contact, or for a person given by name and phone / email (matched to a
    known contact by them). A rep's new lead is their own; a person who is another rep's
    customer is refused (403) and left as it was."""
    owner = user if user.role == Role.REP else None
    if body.contact_id is not None:
        # The same rule as reading the contact by id: a customer the caller cannot see is not found.
        contact = await conversations.get_contact(body.contact_id, user, db_session=session)
        if contact is None:
            raise HTTPException(404, f"no contact {body.contact_id}")
        try:
            opened = await leads.open_lead(contact.id, source_kind="api", source=body.source,
                                           company=body.company or None, region=body.region or None,
                                           industry=body.industry or None, rules=ctx.lead_rules, actor=user,
                                           owner=owner, db_session=session)
        except leads.LeadNotYours as exc:
            raise HTTPException(403, str(exc)) from None
        except LeadRefused as exc:
            raise HTTPException(422, str(exc)) from None
        lead = opened.lead
    else:
        values = {k: v for k, v in body.model_dump().items() if k not in ("contact_id", "source") and v}
        report, lead = await import_one(values, session=session, key_of=ctx.contact_keys, rules=ctx.lead_rules,
                                        source=body.source, actor=user)
        if lead is None:
            rejected = report.rejected[0]
            raise HTTPException(403 if rejected.not_yours else 422, rejected.reason)
        if owner is not None and lead.owner_user_id is None:
            await leads.route(lead, ctx.lead_rules, db_session=session, owner=owner, actor=user)
    await session.commit()
    return await _detail(lead, session)


@router.post("/import", responses={
    200: {"content": {"application/json": {}, "application/x-ndjson": {}},
          "description": "The report; with stream=true, progress lines then the report"}, **errors(413)})
async def import_file(file: UploadFile = File(...), source: str | None = Query(None, max_length=200),
                      stream: bool = Query(False, description="Answer with NDJSON lines: progress, then the report"),
                      user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                      ctx: ApiContext = Depends(api_context)) -> Any:
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"the file is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MB; split it")
    path = Path(file.filename or "upload.csv")

    def run(progress: Callable[[int, ImportReport], None] | None = None) -> Awaitable[ImportReport]:
        return import_leads(path, data=data, sessions=ctx.sessions, key_of=ctx.contact_keys, rules=ctx.lead_rules,
                            source=source, actor=user, progress=progress, chunk=200 if stream else 500)

    try:
        if not stream:
            return _import_result(await run())
        _, rows = read_rows(path, data)  # the progress bar's total (and the file's refusal, before streaming)
        total = sum(1 for _ in rows)
    except ImportRefused as exc:
        raise HTTPException(422, str(exc)) from None

    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def work() -> None:
        try:
            report = await run(lambda done, _: lines.put_nowait({"rows": done, "total": total}))
            lines.put_nowait({"report": _import_result(report)})
        except ImportRefused as exc:
            lines.put_nowait({"error": str(exc)})
        except Exception as exc:
            log.exception("lead import of %s failed", path.name)
            lines.put_nowait({"error": f"the import stopped: {type(exc).__name__}: {exc}; rows before it are "
                                       "imported, importing the file again skips them"})

    # The import goes on if the browser leaves: each chunk of rows is its own transaction.
    task = asyncio.create_task(work())
    _running_imports.add(task)
    task.add_done_callback(_running_imports.discard)

    async def ndjson() -> AsyncIterator[bytes]:
        yield (json.dumps({"rows": 0, "total": total}) + "\n").encode()
        while True:
            line = await lines.get()
            yield (json.dumps(line, ensure_ascii=False) + "\n").encode()
            if "report" in line or "error" in line:
                return

    return StreamingResponse(ndjson(), media_type="application/x-ndjson")


_running_imports: set[asyncio.Task[None]] = set()


def _import_result(report: ImportReport) -> dict[str, Any]:
    return {**report.summary(), "rejected_rows": [{"row": r.row, "reason": r.reason, "code": r.code, "params": r.params,
                                                   "values": r.values} for r in report.rejected],
            "consents_refused": [{"row": row, "reason": reason} for row, reason in report.consents_refused]}


@router.post("/{lead_id}/stage", response_model=LeadDetail, responses=errors(404))
async def set_stage(lead_id: PathId, body: LeadStageUpdate, user: User = Depends(require_role(*ANY_ROLE)),
                    ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> LeadDetail:
    lead = await _lead(lead_id, user, session)
    try:
        await leads.set_stage(lead, body.stage, rules=ctx.lead_rules, actor=user, db_session=session)
    except LeadRefused as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return await _detail(lead, session)


@router.post("/{lead_id}/orders", response_model=LeadDetail, responses=errors(404))
async def add_order(lead_id: PathId, body: LeadOrder, user: User = Depends(require_role(*ANY_ROLE)),
                    ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> LeadDetail:
    lead = await _lead(lead_id, user, session)
    await leads.add_order(lead, body.amount, rules=ctx.lead_rules, actor=user, db_session=session)
    await session.commit()
    return await _detail(lead, session)


@router.post("/{lead_id}/assign", response_model=LeadDetail, responses=errors(404))
async def assign(lead_id: PathId, body: LeadAssign, user: User = Depends(require_role(*SUPERVISORS)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> LeadDetail:
    lead = await _lead(lead_id, user, session)
    target = await session.get(User, body.user_id)
    if target is None or not target.is_active or target.role == Role.OPERATOR:
        raise HTTPException(422, f"user {body.user_id} is not an active rep, manager or admin")
    await leads.route(lead, ctx.lead_rules, db_session=session, owner=target, actor=user)
    await session.commit()
    return await _detail(lead, session)
