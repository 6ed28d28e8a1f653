"""Reports for managers and admins: per rep for a period, each conversation number drilling
down to the conversations behind it, and the same as CSV (Excel-safe, as the leads export).
A manager sees their people and themself; an admin or operator everyone; reps none."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import PathId, QueryId
from crm_core import reports
from crm_core.contacts import naming
from crm_core.db import utcnow
from crm_core.leads import export as lead_export
from crm_core.models import Contact, Conversation, Role, Team, User

router = APIRouter(prefix="/reports", tags=["reports"])
SUPERVISING = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)
MAX_DAYS = 366
Metric = Literal["handled", "sla_breaches", "resolved", "negative", "csat"]


class Period(BaseModel):
    since: dt.datetime
    until: dt.datetime
    timezone: str


class RepRow(BaseModel):
    user_id: int
    name: str
    team_id: int | None
    handled: int
    sla_breaches: int
    resolved: int
    negative: int
    csat: int
    first_response_median_s: float | None
    first_response_p90_s: float | None
    resolution_median_s: float | None
    resolution_p90_s: float | None
    leads_created: int
    leads_by_stage: dict[str, int]
    conversion_rate: float | None
    won: int
    lost: int
    won_amount: float
    tasks_overdue: int
    csat_average: float | None
    negative_share: float | None


class RepReport(BaseModel):
    period: Period
    sla_minutes: float
    rows: list[RepRow]
    teams: list[RepRow] = Field(default_factory=list, description="The rows added up per team (user_id: the "
                                                                   "team's id)")


class Behind(BaseModel):
    conversation_id: int
    contact_id: int
    name: str
    status: str
    last_message_at: dt.datetime


def _period(since: dt.date | None, until: dt.date | None, zone_name: str) -> tuple[dt.datetime, dt.datetime]:
    """[since, until] as whole days in the company's time zone (until inclusive); the last 30 days
    when not given."""
    zone = ZoneInfo(zone_name)
    today = utcnow().astimezone(zone).date()
    until = until or today
    since = since or until - dt.timedelta(days=29)
    for name, day in (("since", since), ("until", until)):
        if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
            raise HTTPException(422, f"{name} {day}: a day between 2000 and 2100")
    if since > until:
        raise HTTPException(422, f"since {since} is after until {until}: give the earlier day first")
    if (until - since).days >= MAX_DAYS:
        raise HTTPException(422, f"a report covers at most {MAX_DAYS} days; narrow since and until")
    start = dt.datetime.combine(since, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    return start, end


async def _rows(user: User, since: dt.date | None, until: dt.date | None, team_id: int | None, ctx: ApiContext,
                session: AsyncSession) -> RepReport:
    start, end = _period(since, until, ctx.timezone)
    numbers = await reports.per_rep(user, start, end, sla=ctx.sla_first_response, now=utcnow(), team_id=team_id,
                                    db_session=session)
    names = dict((await session.execute(select(Team.id, Team.name))).all())
    return RepReport(period=Period(since=start, until=end, timezone=ctx.timezone),
                     sla_minutes=ctx.sla_first_response.total_seconds() / 60,
                     rows=[RepRow(**n.row()) for n in numbers],
                     teams=[RepRow(**t.row()) for t in reports.per_team(numbers, names)])


@router.get("/reps", response_model=RepReport, responses=errors(403, 422))
async def rep_report(since: dt.date | None = Query(None, description="First day, in the company's time zone"),
                     until: dt.date | None = Query(None, description="Last day (included)"), team_id: QueryId = None,
                     user: User = Depends(require_role(*SUPERVISING)), ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> RepReport:
    """Per rep for the period (default: the last 30 days)."""
    return await _rows(user, since, until, team_id, ctx, session)


CSV_COLUMNS = (
    ("name", "姓名", "name"), ("conversations handled", "处理会话", "handled"),
    ("first response median (s)", "首次响应中位数（秒）", "first_response_median_s"),
    ("first response p90 (s)", "首次响应 P90（秒）", "first_response_p90_s"),
    ("resolution median (s)", "解决时长中位数（秒）", "resolution_median_s"),
    ("resolution p90 (s)", "解决时长 P90（秒）", "resolution_p90_s"),
    ("SLA breaches", "超时会话", "sla_breaches"), ("resolved", "已解决", "resolved"),
    ("leads created", "新线索", "leads_created"), ("conversion rate", "转化率", "conversion_rate"),
    ("won", "赢单", "won"), ("lost", "丢单", "lost"), ("won amount", "赢单金额", "won_amount"),
    ("tasks overdue", "逾期待办", "tasks_overdue"), ("CSAT average", "满意度均分", "csat_average"),
    ("negative share", "负面占比", "negative_share"),
)


@router.get("/reps.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {}}, "description": "The report as CSV (UTF-8 with a BOM)"}, **errors(403, 422)})
async def rep_report_csv(since: dt.date | None = None, until: dt.date | None = None, team_id: QueryId = None,
                         language: str = Query("en", pattern="^(zh|en)$"),
                         user: User = Depends(require_role(*SUPERVISING)), ctx: ApiContext = Depends(api_context),
                         session: AsyncSession = Depends(db_session)) -> Response:
    report = await _rows(user, since, until, team_id, ctx, session)
    lines = [lead_export.csv_line([zh if language == "zh" else en for en, zh, _ in CSV_COLUMNS])]
    for row in report.rows:
        values: dict[str, Any] = row.model_dump()
        lines.append(lead_export.csv_line([values[key] for *_, key in CSV_COLUMNS]))
    first, last = report.period.since.astimezone(ZoneInfo(ctx.timezone)).date(), \
        (report.period.until.astimezone(ZoneInfo(ctx.timezone)) - dt.timedelta(days=1)).date()
    return Response("\ufeff" + "".join(lines), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="reps-{first}-{last}.csv"'})


@router.get("/reps/{user_id}/conversations", response_model=list[Behind], responses=errors(404, 422))
async def conversations_behind(user_id: PathId, metric: Metric, since: dt.date | None = None,
                               until: dt.date | None = None, user: User = Depends(require_role(*SUPERVISING)),
                               ctx: ApiContext = Depends(api_context),
                               session: AsyncSession = Depends(db_session)) -> list[Behind]:
    """The conversations behind one number of a person's row: exactly those it counts."""
    start, end = _period(since, until, ctx.timezone)
    ids = await reports.behind(user, user_id, metric, start, end, sla=ctx.sla_first_response, now=utcnow(),
                               db_session=session)
    if ids is None:
        raise HTTPException(404, f"no report of user {user_id} for you")
    rows = (await session.execute(select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)
                                  .where(Conversation.id.in_(ids)).order_by(Conversation.id))).all()
    names = await naming.shown_names([contact for _, contact in rows], db_session=session)
    return [Behind(conversation_id=c.id, contact_id=contact.id, name=names[contact.id], status=c.status.value,
                   last_message_at=c.last_message_at) for c, contact in rows]
