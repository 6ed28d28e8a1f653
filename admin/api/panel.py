"""What the admin panel reads and does beyond the resource APIs: who is signed in, the
dashboard's figures, the inbox (filtered list, one person's thread across channels,
notes, assignment), passwords and the audit log. Every route checks the role; a rep
sees only their own conversations, as everywhere in the API."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import defaultdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ANY_ROLE, ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId, QueryId
from admin.api.schemas import DeliveryRead
from crm_core import audit, reports
from crm_core.campaigns import audience
from crm_core.campaigns.definitions import CampaignInvalid, validate_channel_templates, validate_template
from crm_core.campaigns.planning import render
from crm_core.campaigns.results import results as campaign_results
from crm_core.contacts.naming import shown_names
from crm_core.conversations import service as conversations
from crm_core.db import utcnow
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    AuditLog,
    Campaign,
    ChannelAccount,
    Contact,
    Conversation,
    Deal,
    Direction,
    Identity,
    Lead,
    Message,
    Note,
    OpinionAlert,
    OutboxMessage,
    OutboxStatus,
    Role,
    User,
)
from crm_core.outbox.service import backlog
from crm_core.people import reps, web_auth
from crm_core.people.reps import RepActionRefused
from crm_core.visibility import conversation_ids as visible_conversation_ids

router = APIRouter(tags=["admin panel"])

SUPERVISING = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


class Me(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: Role
    language: str | None
    signed_in_with: Literal["session", "token"]


@router.get("/me", response_model=Me, responses=errors())
async def me(request: Request, user: User = Depends(require_role(*ANY_ROLE))) -> Me:
    via = "session" if getattr(request.state, "web_session", None) is not None else "token"
    return Me(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
              language=user.language, signed_in_with=via)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=200)
    new_password: str = Field(max_length=200)


@router.post("/me/password", status_code=204, responses=errors(429))
async def change_own_password(body: PasswordChange, request: Request, user: User = Depends(require_role(*ANY_ROLE)),
                              session: AsyncSession = Depends(db_session)) -> None:
    """The signed-in user's own password; their other sessions end, this one too (sign in again)."""
    try:
        await web_auth.check_password(user, body.current_password,
                                      ip=request.client.host if request.client else "?", db_session=session)
    except web_auth.SignInThrottled as exc:
        await session.commit()
        raise HTTPException(429, str(exc)) from None
    except web_auth.SignInRefused as exc:
        await session.commit()  # the failure counts
        raise HTTPException(403, str(exc)) from None
    try:
        await web_auth.set_password(user, body.new_password, actor=user, db_session=session)
    except web_auth.PasswordRejected as exc:
        await session.commit()  # the current password was right: that try is no failure
        raise HTTPException(422, str(exc)) from None
    await session.commit()


class PasswordSet(BaseModel):
    password: str = Field(max_length=200)


@router.post("/users/{user_id}/password", status_code=204, responses=errors(404))
async def set_user_password(user_id: PathId, body: PasswordSet, admin: User = Depends(require_role(Role.ADMIN)),
                            session: AsyncSession = Depends(db_session)) -> None:
    target = await session.get(User, user_id)
    if target is None:
        raise HTTPException(404, f"no user {user_id}")
    try:
        await web_auth.set_password(target, body.password, actor=admin, db_session=session)
    except web_auth.PasswordRejected as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()


# ---- the inbox ------------------------------------------------------------------


class InboxRow(BaseModel):
    id: int
    contact_id: Id
    name: str
    channel: str
    account: str
    status: str
    owner: str | None
    owner_id: Id | None
    last_message_at: dt.datetime
    last_text: str | None
    last_direction: str | None
    sentiment: str | None
    waiting: bool        # the customer wrote last


class InboxPage(BaseModel):
    rows: list[InboxRow]
    version: int         # the newest message id visible: poll with it to learn of changes


def _name(user: User | None) -> str | None:
    return (user.display_name or user.username) if user is not None else None


def _inbox_query(user: User) -> Any:
    """Conversations the user may see, each with its contact, account, identity and last message."""
    last_id = (select(func.max(Message.id)).where(Message.conversation_id == Conversation.id)
               .correlate(Conversation).scalar_subquery())
    return (select(Conversation, Contact, ChannelAccount, Identity, Message)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(ChannelAccount, ChannelAccount.id == Conversation.channel_account_id)
            .join(Identity, Identity.id == Conversation.identity_id)
            .outerjoin(Message, Message.id == last_id)
            .where(Conversation.id.in_(visible_conversation_ids(user))))


async def _inbox_rows(stmt: Any, session: AsyncSession) -> list[InboxRow]:
    rows = (await session.execute(stmt)).all()
    owners = {u.id: u for u in (await session.scalars(select(User).where(
        User.id.in_({c.assignee_user_id for c, *_ in rows if c.assignee_user_id})))).all()}
    return [InboxRow(
        id=c.id, contact_id=c.contact_id,
        name=identity.display_name or contact.display_name or identity.username or identity.external_id,
        channel=account.kind, account=account.name, status=c.status.value,
        owner=_name(owners.get(c.assignee_user_id)), owner_id=c.assignee_user_id, last_message_at=c.last_message_at,
        last_text=(last.text or "")[:140] if last is not None else None,
        last_direction=last.direction.value if last is not None else None,
        sentiment=last.sentiment if last is not None else None,
        waiting=last is not None and last.direction == Direction.INBOUND) for c, contact, account, identity, last in rows]


@router.get("/inbox", response_model=InboxPage, responses=errors())
async def inbox(channel: str | None = None,
                owner: str | None = Query(None, description="me, none, a user id, or team:ID (its members)"),
                status: Literal["open", "closed", "waiting", "handoff"] | None = None,
                sentiment: Literal["positive", "neutral", "negative"] | None = None,
                q: str | None = Query(None, max_length=100), limit: int = Query(50, ge=1, le=200),
                user: User = Depends(require_role(*ANY_ROLE)),
                session: AsyncSession = Depends(db_session)) -> InboxPage:
    stmt = _inbox_query(user)
    if channel:
        stmt = stmt.where(ChannelAccount.kind == channel)
    if owner == "me":
        stmt = stmt.where(Conversation.assignee_user_id == user.id)
    elif owner == "none":
        stmt = stmt.where(Conversation.assignee_user_id.is_(None))
    elif owner and owner.startswith("team:") and owner[5:].isdigit():
        stmt = stmt.where(Conversation.assignee_user_id.in_(select(User.id).where(User.team_id == int(owner[5:]))))
    elif owner:
        if not owner.isdigit():
            raise HTTPException(422, "owner is 'me', 'none', a user id or team:ID")
        stmt = stmt.where(Conversation.assignee_user_id == int(owner))
    if status in ("open", "closed"):
        stmt = stmt.where(Conversation.status == status)
    elif status == "waiting":
        stmt = stmt.where(Message.direction == Direction.INBOUND)
    elif status == "handoff":
        stmt = stmt.where(Conversation.handoff_at.is_not(None), Conversation.resolved_at.is_(None))
    if sentiment:
        stmt = stmt.where(Message.sentiment == sentiment)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Contact.display_name.ilike(like), Identity.display_name.ilike(like),
                              Identity.username.ilike(like)))
    rows = await _inbox_rows(stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                             .limit(limit), session)
    version = await session.scalar(select(func.max(Message.id)).where(
        Message.conversation_id.in_(visible_conversation_ids(user)))) or 0
    return InboxPage(version=version, rows=rows)


class MediaPart(BaseModel):
    kind: str
    name: str | None = None
    url: str | None = None

    @classmethod
    def of(cls, attachments: list[Any] | None) -> list[MediaPart]:
        parts = []
        for a in attachments or []:
            if isinstance(a, dict) and a.get("type") in ("image", "file"):
                url = a.get("url") if isinstance(a.get("url"), str) and a["url"].startswith(("https://", "http://")) \
                    else None
                parts.append(cls(kind=a["type"], name=str(a.get("name") or "")[:200] or None, url=url))
        return parts


class ThreadMessage(BaseModel):
    id: int
    conversation_id: Id
    channel: str
    direction: str
    text: str | None
    author: str | None
    created_at: dt.datetime
    sentiment: str | None
    delivery: DeliveryRead | None = None  # outgoing messages: queued, delivered, failed with the reason...
    # Recalled by its writer (撤回 in an archived WeCom chat): kept for the record, shown as recalled.
    recalled: bool = False
    # Pictures and files sent or received: kind "image" or "file", a name, the address when there is one.
    media: list[MediaPart] = []


class NoteRead(BaseModel):
    id: int
    conversation_id: int
    author: str | None
    text: str
    created_at: dt.datetime


class Thread(BaseModel):
    conversation: InboxRow
    conversations: list[InboxRow] = Field(default_factory=list)  # the person's, that the caller may see: reply on any
    messages: list[ThreadMessage]    # every channel of this person that the caller may see, oldest first
    notes: list[NoteRead]
    may_act: bool


async def _conversation(conversation_id: int, user: User, session: AsyncSession) -> Conversation:
    conversation = await session.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.id.in_(visible_conversation_ids(user))))
    if conversation is None:
        raise HTTPException(404, f"no conversation {conversation_id}")
    return conversation


@router.get("/inbox/{conversation_id}", response_model=Thread, responses=errors(404))
async def thread(conversation_id: PathId, limit: int = Query(200, ge=1, le=1000),
                 user: User = Depends(require_role(*ANY_ROLE)),
                 session: AsyncSession = Depends(db_session)) -> Thread:
    conversation = await _conversation(conversation_id, user, session)
    # The person's other conversations too (one person across channels), as far as the caller may see them.
    ids = (await session.scalars(select(Conversation.id).where(
        Conversation.contact_id == conversation.contact_id,
        Conversation.id.in_(visible_conversation_ids(user))))).all()
    kinds = dict((await session.execute(select(Conversation.id, ChannelAccount.kind).join(
        ChannelAccount, ChannelAccount.id == Conversation.channel_account_id).where(Conversation.id.in_(ids)))).all())
    messages = list(reversed((await session.scalars(
        select(Message).where(Message.conversation_id.in_(ids), Message.text.is_not(None))
        .order_by(Message.id.desc()).limit(limit))).all()))
    notes = (await session.scalars(select(Note).where(Note.conversation_id.in_(ids)).order_by(Note.id))).all()
    authors = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(
        {m.author_user_id for m in messages if m.author_user_id} | {n.author_user_id for n in notes
                                                                   if n.author_user_id})))).all()}
    sent = await conversations.deliveries([m.id for m in messages if m.direction == Direction.OUTBOUND],
                                          db_session=session)
    rows = await _inbox_rows(_inbox_query(user).where(Conversation.id.in_(ids)), session)
    [row] = [r for r in rows if r.id == conversation.id]
    may_act = user.role in reps.SUPERVISORS or conversation.assignee_user_id in (None, user.id)
    return Thread(
        conversation=row, conversations=rows, may_act=may_act,
        messages=[ThreadMessage(id=m.id, conversation_id=m.conversation_id, channel=kinds.get(m.conversation_id, "?"),
                                direction=m.direction.value, text=m.text,
                                author=_name(authors.get(m.author_user_id)) if m.author_user_id else None,
                                created_at=m.created_at, sentiment=m.sentiment,
                                delivery=DeliveryRead.of(sent.get(m.id)),
                                recalled=any(isinstance(a, dict) and a.get("type") == "recalled"
                                             for a in m.attachments or []),
                                media=MediaPart.of(m.attachments)) for m in messages],
        notes=[NoteRead(id=n.id, conversation_id=n.conversation_id, author=_name(authors.get(n.author_user_id)),
                        text=n.text, created_at=n.created_at) for n in notes])


class NoteCreate(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


@router.post("/conversations/{conversation_id}/notes", response_model=NoteRead, status_code=201,
             responses=errors(404, 409))
async def add_note(conversation_id: PathId, body: NoteCreate, user: User = Depends(require_role(*ANY_ROLE)),
                   session: AsyncSession = Depends(db_session)) -> NoteRead:
    conversation = await _conversation(conversation_id, user, session)
    try:
        note = await reps.add_note(conversation, user, body.text, db_session=session)
    except RepActionRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await audit.record("conversation.note", entity_type="conversation", entity_id=conversation.id, actor=user,
                       details={"note_id": note.id}, db_session=session)
    await session.commit()
    return NoteRead(id=note.id, conversation_id=note.conversation_id, author=_name(user), text=note.text,
                    created_at=note.created_at)


class AssignBody(BaseModel):
    user_id: Id | None = Field(description="The new owner; null: back to the queue")


@router.post("/conversations/{conversation_id}/assign", status_code=204, responses=errors(404, 409))
async def assign(conversation_id: PathId, body: AssignBody, user: User = Depends(require_role(*ANY_ROLE)),
                 session: AsyncSession = Depends(db_session), ctx: ApiContext = Depends(api_context)) -> None:
    conversation = await _conversation(conversation_id, user, session)
    to_user = None
    if body.user_id is not None:
        to_user = await session.get(User, body.user_id)
        if to_user is None:
            raise HTTPException(422, f"no user {body.user_id}")
    try:
        await reps.assign(conversation, to_user, user, db_session=session)
    except RepActionRefused as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()


# ---- the dashboard --------------------------------------------------------------


def _day(value: Any) -> str:
    return str(value)[:10]


@router.get("/dashboard", responses=errors())
async def dashboard(days: int = Query(14, ge=1, le=90), user: User = Depends(require_role(*SUPERVISING)),
                    session: AsyncSession = Depends(db_session), ctx: ApiContext = Depends(api_context)) -> dict:
    """Messages per day by channel, the leads funnel, response times, the sentiment trend with
    its alerts, and campaign results, for the last `days` days (UTC)."""
    since = (utcnow() - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    labels = [(since + dt.timedelta(days=n)).date().isoformat() for n in range(days)]
    customer = Conversation.contact_id.in_(select(Contact.id).where(Contact.is_staff.is_(False)))
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    for day, kind, count in (await session.execute(
            select(func.date(Message.created_at), ChannelAccount.kind, func.count())
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
            .where(Message.created_at >= since, customer)
            .group_by(func.date(Message.created_at), ChannelAccount.kind))).all():
        if _day(day) in labels:
            by_channel[kind][_day(day)] += count

    stage_counts = dict((await session.execute(
        select(Lead.stage, func.count()).group_by(Lead.stage))).all())
    funnel = [{"stage": stage, "count": stage_counts.get(stage, 0)} for stage in ctx.lead_rules.stages]

    # Response time: from a customer's message to the next answer (bot or person) in that conversation.
    rows = (await session.execute(
        select(Message.conversation_id, Message.direction, Message.created_at, Message.author_user_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.created_at >= since, customer,
               or_(Message.direction == Direction.OUTBOUND, Message.kind.in_(CUSTOMER_MESSAGE_KINDS)))
        .order_by(Message.conversation_id, Message.id).limit(50_000))).all()
    waits: dict[str, list[float]] = defaultdict(list)
    person_waits: dict[str, list[float]] = defaultdict(list)
    asked: dict[int, dt.datetime] = {}
    for conversation_id, direction, at, author in rows:
        if direction == Direction.INBOUND:
            asked.setdefault(conversation_id, at)
        elif conversation_id in asked:
            start = asked.pop(conversation_id)
            (person_waits if author else waits)[_day(start.date())].append((at - start).total_seconds())
    response = [{"day": d, "bot_median_s": round(statistics.median(waits[d]), 1) if waits[d] else None,
                 "person_median_s": round(statistics.median(person_waits[d]), 1) if person_waits[d] else None}
                for d in labels]

    sentiment = {d: {"day": d, "messages": 0, "negative": 0} for d in labels}
    for day, label, count in (await session.execute(
            select(func.date(Message.created_at), Message.sentiment, func.count())
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.created_at >= since, Message.direction == Direction.INBOUND, customer,
                   Message.sentiment.is_not(None))
            .group_by(func.date(Message.created_at), Message.sentiment))).all():
        if _day(day) in sentiment:
            sentiment[_day(day)]["messages"] += count
            if label == "negative":
                sentiment[_day(day)]["negative"] += count
    alerts = (await session.scalars(select(OpinionAlert).where(OpinionAlert.last_hour >= since)
                                    .order_by(OpinionAlert.first_hour))).all()

    campaigns = []
    for campaign in (await session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(8))).all():
        result = await campaign_results(campaign, db_session=session)
        campaigns.append({"id": campaign.id, "name": campaign.name, "status": campaign.status.value,
                          **{k: result.get(k) for k in ("enrolled", "sent", "delivered", "replied", "opted_out",
                                                        "converted") if k in result}})
    weeks, weekly = await _weekly(session)
    leaders = await reports.per_rep(user, since, utcnow() + dt.timedelta(seconds=1), sla=ctx.sla_first_response,
                                    now=utcnow(), db_session=session)
    return {
        "days": labels,
        "weeks": weeks,
        "weekly": weekly,
        "leaderboard": [{"user_id": r.user_id, "name": r.name, **{k: row[k] for k in (
            "handled", "first_response_median_s", "won", "won_amount", "csat_average")}}
            for r, row in sorted(((r, r.row()) for r in leaders), key=lambda pair: -pair[1]["handled"])[:10]
            if row["handled"] or row["won"]],
        "health": await _health(session),
        "messages_by_channel": {kind: [counts[d] for d in labels] for kind, counts in sorted(by_channel.items())},
        "funnel": funnel,
        "response_times": response,
        "sentiment": [{**v, "negative_share": round(v["negative"] / v["messages"], 3) if v["messages"] else None}
                      for v in sentiment.values()],
        "alerts": [{"id": a.id, "dimension": a.dimension, "key": a.key, "status": a.status,
                    "day": a.first_hour.date().isoformat(), "peak_share": a.peak_share} for a in alerts],
        "campaigns": campaigns,
    }


WEEKS = 12


async def _weekly(session: AsyncSession) -> tuple[list[str], dict[str, list[int]]]:
    """The last 12 ISO weeks (this one last): customers who wrote, new leads, deals won."""
    today = utcnow().date()
    monday = today - dt.timedelta(days=today.weekday())
    starts = [monday - dt.timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
    since = dt.datetime.combine(starts[0], dt.time(0), tzinfo=dt.UTC)
    labels = [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in starts]

    def week(at: dt.datetime) -> int:
        return (at.date() - starts[0]).days // 7

    customer = Conversation.contact_id.in_(select(Contact.id).where(Contact.is_staff.is_(False)))
    series = {"customers": [0] * WEEKS, "leads": [0] * WEEKS, "won": [0] * WEEKS}
    seen: set[tuple[int, int]] = set()
    for conversation_id, at in (await session.execute(
            select(Message.conversation_id, Message.created_at).join(Conversation)
            .where(customer, Message.direction == Direction.INBOUND, Message.created_at >= since)
            .limit(200_000))).all():
        if 0 <= week(at) < WEEKS and (week(at), conversation_id) not in seen:
            seen.add((week(at), conversation_id))
            series["customers"][week(at)] += 1
    for at in (await session.scalars(select(Lead.created_at).where(Lead.created_at >= since))).all():
        if 0 <= week(at) < WEEKS:
            series["leads"][week(at)] += 1
    for at in (await session.scalars(select(Deal.closed_at).where(Deal.status == "won",
                                                                 Deal.closed_at >= since))).all():
        if 0 <= week(at) < WEEKS:
            series["won"][week(at)] += 1
    return labels, series


# What a channel's failures usually mean, and what to do (the platform's words -> advice key).
_FAILURE_ADVICE = (
    (re.compile(r"unauthori[sz]ed|invalid[ _]?(token|credential|secret|appsecret)|40001|40014|42001|"
                r"access_token|token (expired|revoked)|\b401\b", re.I), "credentials"),
    (re.compile(r"\bip\b.*(not allowed|whitelist|trusted)|60020|40164|invalid ip", re.I), "ip"),
    (re.compile(r"rate limit|too many requests|45009|\b429\b", re.I), "rate"),
)
KEEPS_FAILING = 3  # failed sends on one channel in 24 h: the dashboard warns


async def _health(session: AsyncSession) -> dict:
    """The hub's own health: what waits, and the channels whose sends keep failing, with advice."""
    waits = await backlog(db_session=session)
    since = utcnow() - dt.timedelta(hours=24)
    failing = []
    for account_id, name, kind, failed, last in (await session.execute(
            select(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind, func.count(),
                   func.max(OutboxMessage.id))
            .join(OutboxMessage, OutboxMessage.channel_account_id == ChannelAccount.id)
            .where(OutboxMessage.status == OutboxStatus.FAILED, OutboxMessage.created_at >= since)
            .group_by(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind)
            .having(func.count() >= KEEPS_FAILING))).all():
        error = await session.scalar(select(OutboxMessage.last_error).where(OutboxMessage.id == last)) or ""
        advice = next((key for rule, key in _FAILURE_ADVICE if rule.search(error)), "other")
        failing.append({"account_id": account_id, "name": name, "kind": kind, "failed_24h": failed,
                        "last_error": error[:300], "advice": advice})
    return {"waiting_messages": waits.waiting_messages,
            "outbox": {status.value: waits.outbox[status]
                       for status in (OutboxStatus.PENDING, OutboxStatus.IN_DOUBT, OutboxStatus.HELD)},
            "oldest_due_s": round(waits.oldest_due_seconds),
            "failing_channels": failing}


# ---- the audit log --------------------------------------------------------------


@router.get("/audit", responses=errors())
async def audit_log(limit: int = Query(100, ge=1, le=1000), before_id: QueryId = None,
                    action: str | None = Query(None, max_length=100, description="Actions starting with this"),
                    entity_type: str | None = Query(None, max_length=50),
                    entity_id: str | None = Query(None, max_length=100),
                    actor_user_id: QueryId = None,
                    _: User = Depends(require_role(Role.ADMIN)),
                    session: AsyncSession = Depends(db_session)) -> list[dict]:
    """Newest first; `before_id` pages back."""
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    if action:
        stmt = stmt.where(AuditLog.action.startswith(action))
    if entity_type:
        stmt = stmt.where(AuditLog.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditLog.entity_id == entity_id)
    if actor_user_id is not None:
        stmt = stmt.where(AuditLog.actor_user_id == actor_user_id)
    return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor_label, "actor_user_id": e.actor_user_id,
             "action": e.action, "entity_type": e.entity_type, "entity_id": e.entity_id,
             "entity": f"{e.entity_type} {e.entity_id or ''}".strip(), "details": e.details}
            for e in (await session.scalars(stmt)).all()]


# ---- campaign builder: audience and message preview -------------------------------


class CampaignPreview(BaseModel):
    audience: dict[str, Any] = Field(default_factory=dict)
    templates: list[dict[str, str]] = Field(default_factory=list, description="Each step's template")
    channel_templates: list[dict[str, dict[str, str]]] = Field(
        default_factory=list, description="Each step's wording per channel kind, beside `templates`")


@router.post("/campaigns/preview", responses=errors())
async def campaign_preview(body: CampaignPreview, _: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                           ctx: ApiContext = Depends(api_context),
                           session: AsyncSession = Depends(db_session)) -> dict:
    """How many contacts the audience holds now, a few of them, and each step's text as
    the first of them would read it (per language, and per channel where worded so),
    before anything is saved."""
    per_channel = body.channel_templates + [{}] * (len(body.templates) - len(body.channel_templates))
    try:
        where = audience.Audience.from_dict(body.audience).contact_filter()
        for n, (template, by_kind) in enumerate(zip(body.templates, per_channel, strict=False), 1):
            validate_template(template, f"step {n}")
            validate_channel_templates(by_kind, None, set(ctx.catalog.kinds), f"step {n}")
    except CampaignInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    count = await session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
    # A few of the very contacts counted, called as the panel calls them (a nickname, never "#8").
    sample = (await session.scalars(select(Contact).where(*where).order_by(Contact.id).limit(5))).all()
    names = await shown_names(sample, db_session=session)
    first = sample[0] if sample else None
    variables = {"name": (first.display_name if first else None) or "王伟", "rep": "李雷", "campaign": "…"}
    return {"count": count,
            "sample": [{"id": c.id, "name": names[c.id], "language": c.language} for c in sample],
            "previews": [{**{lang: render(template, lang, variables) for lang in template},
                          **{f"{kind} · {lang}": render(worded, lang, variables)
                             for kind, worded in by_kind.items() for lang in worded}}
                         for template, by_kind in zip(body.templates, per_channel, strict=False)]}


# ---- channels: the fields each kind needs, and a connection test ------------------


@router.get("/channel-kinds", responses=errors())
async def channel_kinds(_: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                        ctx: ApiContext = Depends(api_context)) -> dict:
    """Per kind, the JSON schema of its credentials and settings, for a guided form."""
    return {kind: {"credentials": ctx.catalog.credentials_model(kind).model_json_schema(),
                   "settings": ctx.catalog.settings_model(kind).model_json_schema()} for kind in ctx.catalog.kinds}


class ConnectionTest(BaseModel):
    kind: str
    credentials: dict[str, Any]
    api_base: str | None = None


@router.post("/channel-accounts/test", responses=errors(400))
async def test_connection(body: ConnectionTest, _: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                          ctx: ApiContext = Depends(api_context)) -> dict:
    """Try the credentials against the platform without saving anything."""
    if body.kind not in ctx.catalog.kinds:
        raise HTTPException(422, f"unknown channel kind {body.kind!r}; supported: {', '.join(ctx.catalog.kinds)}")
    try:
        credentials = ctx.catalog.credentials_model(body.kind).model_validate(body.credentials)
    except ValidationError as exc:
        raise HTTPException(422, [{"loc": ["body", "credentials", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                  for e in exc.errors(include_input=False, include_url=False)]) from None
    try:
        check = await ctx.catalog.check_connection(body.kind, body.api_base, credentials.model_dump())
    except Exception as exc:
        raise HTTPException(400, f"connection test failed: {exc}") from None
    return {"ok": True, "platform_account_id": check.platform_account_id, "display_name": check.display_name}
