"""Opinion monitoring: hourly series per slice, and the alerts with the messages behind them.

Series are aggregates over every customer, so they are for managers, operators
and admins. Alerts are visible to reps too, but a rep sees an alert only when
messages behind it are in their own conversations, and sees only those.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ANY_ROLE, ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Offset, PathId
from admin.api.schemas import OpinionAlertRead, OpinionHourRead, OpinionMessageRead, OpinionSeriesRead
from crm_core.models import Message, OpinionAlert, Role, User
from crm_core.visibility import conversation_ids as visible_conversation_ids

router = APIRouter(prefix="/opinion", tags=["opinion"])

Dimension = Literal["channel", "campaign", "team", "keyword", "keyword_rule"]


@router.get("/series", response_model=OpinionSeriesRead, responses=errors())
async def series(
    dimension: Dimension,
    key: str = Query(min_length=1, max_length=200,
                     description="Channel account id, campaign (contact source), team manager's user id, product"),
    hours: int = Query(7 * 24, ge=1, le=8 * 24),
    _: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
    ctx: ApiContext = Depends(api_context),
) -> OpinionSeriesRead:
    hourly, terms = await ctx.opinion.series(dimension, key, hours=hours)
    return OpinionSeriesRead(
        dimension=dimension, key=key, top_terms=[list(t) for t in terms],
        hours=[OpinionHourRead(start=h.start, volume=h.volume, negative=h.negative,
                               negative_share=round(h.negative_share, 4), mean_sentiment=round(h.mean_sentiment, 4))
               for h in hourly])


@router.get("/alerts", response_model=list[OpinionAlertRead], responses=errors())
async def list_alerts(
    status: Literal["open", "closed"] | None = None,
    dimension: Dimension | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> list[OpinionAlertRead]:
    stmt = select(OpinionAlert).order_by(OpinionAlert.id.desc())
    if status:
        stmt = stmt.where(OpinionAlert.status == status)
    if dimension:
        stmt = stmt.where(OpinionAlert.dimension == dimension)
    if user.role != Role.REP:
        alerts = (await session.scalars(stmt.limit(limit).offset(offset))).all()
        return [_read(a, a.message_ids) for a in alerts]
    # A rep: only alerts with messages from their own conversations, and only those messages.
    shown: list[OpinionAlertRead] = []
    skipped = 0
    for alert in (await session.scalars(stmt)).all():
        mine = await _visible_messages(alert.message_ids, user, session)
        if not mine:
            continue
        if skipped < offset:
            skipped += 1
            continue
        shown.append(_read(alert, mine))
        if len(shown) == limit:
            break
    return shown


@router.get("/alerts/{alert_id}/messages", response_model=list[OpinionMessageRead], responses=errors(404))
async def alert_messages(
    alert_id: PathId,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> list[OpinionMessageRead]:
    """The messages behind an alert, oldest first (a rep: only those in their conversations)."""
    alert = await session.get(OpinionAlert, alert_id)
    ids = [] if alert is None else await _visible_messages(alert.message_ids, user, session)
    if alert is None or (user.role == Role.REP and not ids):
        raise HTTPException(404, f"no opinion alert {alert_id}")
    messages = (await session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))).all()
    return [OpinionMessageRead(id=m.id, conversation_id=m.conversation_id, channel_account_id=m.channel_account_id,
                               text=m.text, sentiment=m.sentiment, sentiment_score=m.sentiment_score,
                               intents=m.intents or [], created_at=m.created_at) for m in messages]


async def _visible_messages(message_ids: list[int], user: User, session: AsyncSession) -> list[int]:
    if not message_ids:
        return []
    stmt = select(Message.id).where(Message.id.in_(message_ids),
                                    Message.conversation_id.in_(visible_conversation_ids(user)))
    return sorted((await session.scalars(stmt)).all())


def _read(alert: OpinionAlert, message_ids: list[int]) -> OpinionAlertRead:
    return OpinionAlertRead(
        id=alert.id, dimension=alert.dimension, key=alert.key, status=alert.status, first_hour=alert.first_hour,
        last_hour=alert.last_hour, peak_share=alert.peak_share, baseline=alert.baseline, threshold=alert.threshold,
        volume=alert.volume, top_terms=alert.top_terms, message_ids=message_ids, covered_by_id=alert.covered_by_id,
        created_at=alert.created_at, closed_at=alert.closed_at,
        messages_url=f"/api/v1/opinion/alerts/{alert.id}/messages")

