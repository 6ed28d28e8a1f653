"""Reports per rep for a period: conversations handled, first-response and resolution times,
SLA breaches, leads and how many were won, deals won and lost with their amount, tasks
overdue, satisfaction, and the negative share of their customers' messages.

Each conversation number drills down to exactly the conversations behind it (`behind`), from
the same computation, so the two never disagree. Who appears: every active rep and manager
for admins; a manager's people and themself; a rep is never shown a report.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import visibility
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    Contact,
    Conversation,
    CsatSurvey,
    Direction,
    Lead,
    LeadEvent,
    Message,
    Role,
    Task,
    User,
)

MAX_MESSAGES = 500_000
# The numbers that drill down to conversations.
CONVERSATION_METRICS = ("handled", "sla_breaches", "resolved", "negative", "csat")


@dataclass
class RepNumbers:
    user_id: int
    name: str
    team_id: int | None
    conversations: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    first_response_s: list[float] = field(default_factory=list)
    resolution_s: list[float] = field(default_factory=list)
    leads_by_stage: dict[str, int] = field(default_factory=dict)
    leads_created: int = 0
    won: int = 0
    lost: int = 0
    won_amount: float = 0.0
    tasks_overdue: int = 0
    csat: list[int] = field(default_factory=list)
    customer_messages_scored: int = 0
    customer_messages_negative: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "name": self.name, "team_id": self.team_id,
            **{metric: len(self.conversations[metric]) for metric in CONVERSATION_METRICS},
            "first_response_median_s": _median(self.first_response_s),
            "first_response_p90_s": _p90(self.first_response_s),
            "resolution_median_s": _median(self.resolution_s), "resolution_p90_s": _p90(self.resolution_s),
            "leads_created": self.leads_created, "leads_by_stage": self.leads_by_stage,
            "conversion_rate": round(self.won / self.leads_created, 3) if self.leads_created else None,
            "won": self.won, "lost": self.lost, "won_amount": round(self.won_amount, 2),
            "tasks_overdue": self.tasks_overdue,
            "csat_average": round(statistics.fmean(self.csat), 2) if self.csat else None,
            "negative_share": round(self.customer_messages_negative / self.customer_messages_scored, 3)
            if self.customer_messages_scored else None,
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)  # the nearest rank


async def people(viewer: User, *, team_id: int | None, db_session: AsyncSession) -> list[User]:
    """Whom `viewer` may see a report of: admins and operators every active rep and manager;
    a manager their people and themself."""
    stmt = select(User).where(User.is_active.is_(True), User.role.in_([Role.REP, Role.MANAGER]))
    if viewer.role == Role.MANAGER:
        stmt = stmt.where(or_(User.id == viewer.id, User.id.in_(visibility.team_members(viewer))))
    elif viewer.role == Role.REP:
        return []
    if team_id is not None:
        stmt = stmt.where(User.team_id == team_id)
    return list((await db_session.scalars(stmt.order_by(User.id))).all())


async def per_rep(viewer: User, since: dt.datetime, until: dt.datetime, *, sla: dt.timedelta, now: dt.datetime,
                  db_session: AsyncSession, team_id: int | None = None) -> list[RepNumbers]:
    """The numbers of each person `viewer` may see, for [since, until)."""
    reps = {u.id: RepNumbers(u.id, u.display_name or u.username, u.team_id)
            for u in await people(viewer, team_id=team_id, db_session=db_session)}
    if not reps:
        return []
    customer = Conversation.contact_id.in_(select(Contact.id).where(Contact.is_staff.is_(False)))
    assignees = dict((await db_session.execute(select(Conversation.id, Conversation.assignee_user_id)
                                               .where(customer, Conversation.assignee_user_id.in_(reps)))).all())

    # Messages: who answered, how fast (a customer's first unanswered message to a person's reply;
    # the bot's replies do not stop the clock), and the feeling of the customers' messages.
    waiting: dict[int, dt.datetime] = {}
    rows = (await db_session.execute(
        select(Message.conversation_id, Message.direction, Message.created_at, Message.author_user_id,
               Message.sentiment)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(customer, Message.created_at >= since, Message.created_at < until,
               or_(Message.direction == Direction.OUTBOUND, Message.kind.in_(CUSTOMER_MESSAGE_KINDS)))
        .order_by(Message.conversation_id, Message.created_at, Message.id).limit(MAX_MESSAGES))).all()
    for conversation_id, direction, at, author, sentiment in rows:
        if direction == Direction.INBOUND:
            waiting.setdefault(conversation_id, at)
            owner = reps.get(assignees.get(conversation_id))
            if owner is not None and sentiment is not None:
                owner.customer_messages_scored += 1
                if sentiment == "negative":
                    owner.customer_messages_negative += 1
                    owner.conversations["negative"].add(conversation_id)
            continue
        rep = reps.get(author)
        if rep is None:
            continue
        rep.conversations["handled"].add(conversation_id)
        asked = waiting.pop(conversation_id, None)
        if asked is not None:
            wait = (at - asked).total_seconds()
            rep.first_response_s.append(wait)
            if wait > sla.total_seconds():
                rep.conversations["sla_breaches"].add(conversation_id)

    for conversation_id, assignee, created, resolved in (await db_session.execute(
            select(Conversation.id, Conversation.assignee_user_id, Conversation.created_at, Conversation.resolved_at)
            .where(customer, Conversation.assignee_user_id.in_(reps), Conversation.resolved_at >= since,
                   Conversation.resolved_at < until))).all():
        reps[assignee].conversations["resolved"].add(conversation_id)
        reps[assignee].resolution_s.append((resolved - created).total_seconds())

    for conversation_id, rep_id, score in (await db_session.execute(
            select(CsatSurvey.conversation_id, CsatSurvey.rep_user_id, CsatSurvey.score)
            .where(CsatSurvey.rep_user_id.in_(reps), CsatSurvey.score.is_not(None),
                   CsatSurvey.answered_at >= since, CsatSurvey.answered_at < until))).all():
        reps[rep_id].csat.append(score)
        reps[rep_id].conversations["csat"].add(conversation_id)

    for owner_id, stage, count in (await db_session.execute(
            select(Lead.owner_user_id, Lead.stage, func.count())
            .where(Lead.owner_user_id.in_(reps), Lead.created_at >= since, Lead.created_at < until)
            .group_by(Lead.owner_user_id, Lead.stage))).all():
        reps[owner_id].leads_by_stage[stage] = count
        reps[owner_id].leads_created += count
    closing = (await db_session.execute(
        select(Lead.owner_user_id, LeadEvent.details["stage"].as_string(), Lead.order_total)
        .join(LeadEvent, LeadEvent.lead_id == Lead.id)
        .where(Lead.owner_user_id.in_(reps), LeadEvent.kind == "stage", LeadEvent.at >= since, LeadEvent.at < until,
               LeadEvent.details["stage"].as_string().in_(["won", "lost"])))).all()
    for owner_id, stage, total in closing:
        if stage == "won":
            reps[owner_id].won += 1
            reps[owner_id].won_amount += total or 0.0
        else:
            reps[owner_id].lost += 1

    for owner_id, count in (await db_session.execute(
            select(Task.owner_user_id, func.count()).where(Task.owner_user_id.in_(reps), Task.done_at.is_(None),
                                                            Task.due_at < now)
            .group_by(Task.owner_user_id))).all():
        reps[owner_id].tasks_overdue = count
    return list(reps.values())


def per_team(numbers: list[RepNumbers], team_names: dict[int, str]) -> list[RepNumbers]:
    """The same numbers added up per team (medians over the team's answers, not of its reps');
    the id is the team's."""
    teams: dict[int, RepNumbers] = {}
    for rep in numbers:
        if rep.team_id is None or rep.team_id not in team_names:
            continue
        team = teams.setdefault(rep.team_id, RepNumbers(rep.team_id, team_names[rep.team_id], rep.team_id))
        for metric, ids in rep.conversations.items():
            team.conversations[metric] |= ids
        team.first_response_s += rep.first_response_s
        team.resolution_s += rep.resolution_s
        for stage, count in rep.leads_by_stage.items():
            team.leads_by_stage[stage] = team.leads_by_stage.get(stage, 0) + count
        for name in ("leads_created", "won", "lost", "won_amount", "tasks_overdue", "customer_messages_scored",
                     "customer_messages_negative"):
            setattr(team, name, getattr(team, name) + getattr(rep, name))
        team.csat += rep.csat
    return sorted(teams.values(), key=lambda t: t.name)


async def behind(viewer: User, user_id: int, metric: str, since: dt.datetime, until: dt.datetime, *,
                 sla: dt.timedelta, now: dt.datetime, db_session: AsyncSession) -> list[int] | None:
    """The conversations behind one number of one person's row, or None when `viewer` may not
    see that person's report."""
    for rep in await per_rep(viewer, since, until, sla=sla, now=now, db_session=db_session):
        if rep.user_id == user_id:
            return sorted(rep.conversations[metric])
    return None
