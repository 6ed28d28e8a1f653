"""Leads: opened once per contact, routed to a rep, scored, segmented, timed, handed on.

No lead is forgotten: each open lead has an owner from the routing rules (sticky
to the contact's existing owner, else the team taking the customer's channel, by
territory, then round-robin or load), a first-response deadline the SLA watcher
enforces, and a history (`LeadEvent`) that survives the rep: a departed rep's
leads move to a successor with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import catalogues, visibility
from crm_core.contacts.tags import add_by_rule
from crm_core.db import held_or_get, utcnow
from crm_core.leads import teams
from crm_core.models import Contact, Conversation, Lead, LeadEvent, Role, User
from crm_core.session_memo import Preloaded

DEFAULT_STAGES = ("new", "contacted", "qualified", "proposal", "won", "lost")
# The default stages as people say them; a stage an operator named is shown as they named it.
STAGE_NAMES = {stage: catalogues.text(f"stage.{stage}") for stage in DEFAULT_STAGES}
CLOSED_STAGES = ("won", "lost")
SOURCE_KINDS = ("signal", "qr", "form", "import", "api")


def stage_name(stage: str, lang: str) -> str:
    return STAGE_NAMES.get(stage, {}).get(lang, stage)


NOT_YOURS = ("this person is another rep's customer: ask your manager to hand them to you "
             "(nothing was changed)")


@dataclass(frozen=True)
class ScoringRule:
    event: str
    delta: int
    repeatable: bool = False
    cap: int | None = None        # a repeatable rule's points on one lead, at most


# What the hub scores: a buying signal in a message, registering for an event, opting in to
# marketing, any message, an order, a phone or email given in the chat.
SCORING_EVENTS = ("buying_signal", "event_registration", "opt_in", "message", "order", "stated_contact")
DEFAULT_SCORING = (
    ScoringRule("buying_signal", 20), ScoringRule("event_registration", 15), ScoringRule("opt_in", 10),
    ScoringRule("message", 2, repeatable=True), ScoringRule("order", 30, repeatable=True),
    ScoringRule("stated_contact", 10),
)


@dataclass(frozen=True)
class LeadRules:
    stages: tuple[str, ...] = DEFAULT_STAGES
    scoring: tuple[ScoringRule, ...] = DEFAULT_SCORING
    hot_score: int = 50                       # crossing it alerts the owner once
    # After the sticky owner: "claim" (every rep gets a claimable card, the first to claim owns
    # it), "round_robin" (the rep who waited longest for a lead) or "load" (fewest open leads);
    # the last two prefer reps whose territory covers the lead's region and industry.
    routing: str = "claim"
    first_response: dt.timedelta = dt.timedelta(minutes=60)
    escalate_after: dt.timedelta = dt.timedelta(minutes=240)
    # A-E: order total at least these (A first), or at least these many orders.
    segment_totals: tuple[float, ...] = (100_000, 30_000, 10_000, 1)
    segment_counts: tuple[int, ...] = (10, 5, 3, 1)
    # (stage, tag): a lead moved to the stage tags its contact (audited with the rule).
    stage_tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.stages)) != len(self.stages) or not set(CLOSED_STAGES) <= set(self.stages):
            raise ValueError(f"lead stages {', '.join(self.stages)}: distinct names that include won and lost")
        if self.stages[0] in CLOSED_STAGES:
            raise ValueError(f"lead stages: new leads start in the first stage, so it cannot be {self.stages[0]}")
        too_long = [s for s in self.stages if len(s) > 32]
        if too_long:
            raise ValueError(f"lead stage {too_long[0]!r}: at most 32 characters")
        if self.routing not in ("claim", "round_robin", "load"):
            raise ValueError(f"lead routing {self.routing!r}: claim, round_robin or load")
        unknown = sorted({stage for stage, _ in self.stage_tags} - set(self.stages))
        if unknown:
            raise ValueError(f"stage tags name stages the pipeline lacks: {', '.join(unknown)}")
        self.check_scoring(self.scoring)

    @staticmethod
    def check_scoring(scoring: tuple[ScoringRule, ...]) -> None:
        events = [rule.event for rule in scoring]
        for rule in scoring:
            if rule.event not in SCORING_EVENTS:
                raise ValueError(f"scoring: unknown event {rule.event!r}; events: {', '.join(SCORING_EVENTS)}")
            if events.count(rule.event) > 1:
                raise ValueError(f"scoring: {rule.event} has two rules; keep one")
            if not -100 <= rule.delta <= 1000:
                raise ValueError(f"scoring: {rule.event} gives {rule.delta} points; from -100 to 1000")
            if rule.cap is not None and (not rule.repeatable or rule.cap < 1):
                raise ValueError(f"scoring: {rule.event}'s cap limits a repeatable rule and is at least 1; "
                                 "make it repeatable or leave the cap empty")

    def rule(self, event: str) -> ScoringRule | None:
        return next((r for r in self.scoring if r.event == event), None)

    def segment(self, total: float, count: int) -> str:
        for letter, at_least_total, at_least_count in zip("ABCD", self.segment_totals, self.segment_counts):
            if total >= at_least_total or count >= at_least_count:
                return letter
        return "E"


async def stages_held(stages: Iterable[str], *, db_session: AsyncSession) -> dict[str, int]:
    """Stages outside `stages` that open leads are still in, with how many: a pipeline
    without them would strand those leads, so they must be moved first."""
    rows = (await db_session.execute(
        select(Lead.stage, func.count()).where(Lead.status == "open", Lead.stage.not_in(list(stages)))
        .group_by(Lead.stage).order_by(Lead.stage))).all()
    return {stage: count for stage, count in rows}


class LeadRefused(ValueError):
    """A lead change that is not allowed; the message says why."""


class LeadNotYours(LeadRefused):
    """The person's open lead is another rep's: adding it again would reach into it."""


@dataclass
class Opened:
    lead: Lead
    created: bool
    routed_why: str | None = None
    hot: bool = False
    events: list[str] = field(default_factory=list)


async def record(lead: Lead, kind: str, *, db_session: AsyncSession, actor: User | None = None,
                 **details: Any) -> None:
    """A line of the lead's history, written at once on the session's connection: an event is never
    changed, so it needs no object in the session, whose unit of work cost more than the insert
    (the worker scores a lead at each of its customer's messages)."""
    connection = await db_session.connection()
    await connection.execute(_INSERT_EVENT, {"lead_id": lead.id, "kind": kind, "details": details,
                                             "actor_user_id": actor.id if actor else None, "at": utcnow()})


_INSERT_EVENT = LeadEvent.__table__.insert()


OPEN_LEADS = Preloaded("open_leads")  # contact id -> the id of their open lead, for the worker's batch


# Asked for each message a worker handles: built once, the values bound when they run.
_OPEN_LEADS = select(Lead).where(Lead.contact_id.in_(bindparam("contact_ids", expanding=True)), Lead.status == "open")
_SCORED = (LeadEvent.lead_id == bindparam("lead_id"), LeadEvent.kind == "score",
           LeadEvent.details["event"].as_string() == bindparam("event"))
# Without flushing the session first: a lead's events are written with Core statements (`record`)
# and never wait in it (the worker scores at each customer message; a flush costs about 330 us).
_SCORED_BEFORE = select(LeadEvent.id).where(*_SCORED).limit(1).execution_options(autoflush=False)
_EARNED = select(func.sum(LeadEvent.details["delta"].as_integer())).where(*_SCORED).execution_options(autoflush=False)


async def preload_open_leads(contact_ids: Iterable[int], *, db_session: AsyncSession) -> list[Lead]:
    """The open leads of the contacts, read in one statement and remembered in the session, so
    `open_lead_of` does not ask again for each message of a batch (the worker's). The loaded leads
    are returned, to be kept referenced while the session runs (it holds objects weakly)."""
    contact_ids = set(contact_ids)
    found = (await db_session.scalars(_OPEN_LEADS, {"contact_ids": list(contact_ids)})).all()
    OPEN_LEADS.load(db_session, contact_ids, {lead.contact_id: lead.id for lead in found})
    return list(found)


async def open_lead_of(contact_id: int, *, db_session: AsyncSession) -> Lead | None:
    """The contact's open lead. A lead preloaded for the contact (`preload_open_leads`) is checked
    as the session holds it now (closed or moved since: asked again); a lead opened since is
    known, as `open_lead` records it."""
    preloaded, lead_id = OPEN_LEADS.lookup(db_session, contact_id)
    if preloaded:
        if lead_id is None:
            return None
        lead = await held_or_get(db_session, Lead, lead_id)
        if lead is not None and lead.status == "open" and lead.contact_id == contact_id:
            return lead
    lead = await db_session.scalar(select(Lead).where(Lead.contact_id == contact_id, Lead.status == "open"))
    OPEN_LEADS.record(db_session, contact_id, lead.id if lead is not None else None)
    return lead


async def open_lead(contact_id: int, *, source_kind: str, rules: LeadRules, db_session: AsyncSession,
                    source: str | None = None, company: str | None = None, region: str | None = None,
                    industry: str | None = None, actor: User | None = None, owner: User | None = None,
                    source_message_id: int | None = None) -> Opened:
    """The contact's open lead, or a new one routed to a rep (or to `owner`). A person
    `actor` may not take the open lead of (another rep's) is refused with LeadNotYours."""
    if source_kind not in SOURCE_KINDS:
        raise LeadRefused(f"lead source {source_kind!r}: one of {', '.join(SOURCE_KINDS)}")
    existing = await open_lead_of(contact_id, db_session=db_session)
    if existing is not None:
        if actor is not None and not visibility.may_take_lead(actor, existing):
            raise LeadNotYours(NOT_YOURS)
        for name, value in (("company", company), ("region", region), ("industry", industry)):
            if value and not getattr(existing, name):
                setattr(existing, name, value)
        return Opened(existing, created=False)
    now = utcnow()
    lead = Lead(contact_id=contact_id, source_kind=source_kind, source=source, company=company, region=region,
                industry=industry, source_message_id=source_message_id, stage=rules.stages[0], score=0, segment="E",
                first_response_due_at=now + rules.first_response)
    db_session.add(lead)
    await db_session.flush()
    OPEN_LEADS.record(db_session, contact_id, lead.id)
    await record(lead, "created", db_session=db_session, actor=actor, source_kind=source_kind, source=source)
    why = await route(lead, rules, db_session=db_session, owner=owner, actor=actor)
    return Opened(lead, created=True, routed_why=why)


async def route(lead: Lead, rules: LeadRules, *, db_session: AsyncSession, owner: User | None = None,
                actor: User | None = None) -> str | None:
    """Give the lead an owner; why that one ("sticky", "territory", "round_robin"...), or None if no rep is free."""
    why = "chosen"
    if owner is None:
        owner, why = await _sticky_owner(lead, db_session)
    if owner is None and rules.routing == "claim":
        await record(lead, "unrouted", db_session=db_session, reason="waiting for a rep to claim it")
        return None
    if owner is None:
        everyone = list((await db_session.scalars(select(User).where(User.role == Role.REP,
                                                                     User.is_active.is_(True))
                                                  .order_by(User.id))).all())
        # Teams that take the channel the customer wrote on come first, then territories.
        kind = await teams.latest_kind(lead.contact_id, db_session=db_session)
        in_team = teams.members_of(everyone, await teams.covering(kind, db_session=db_session))
        reps, why = (in_team, "team, ") if in_team else (everyone, "")
        covering = [r for r in reps if _covers(r, lead)]
        candidates, why = (covering, why + "territory, ") if covering else (reps, why)
        if not candidates:
            await record(lead, "unrouted", db_session=db_session, reason="no active rep")
            return None
        if rules.routing == "load":
            counts = dict((await db_session.execute(
                select(Lead.owner_user_id, func.count()).where(Lead.status == "open",
                                                               Lead.owner_user_id.in_([c.id for c in candidates]))
                .group_by(Lead.owner_user_id))).all())
            owner = min(candidates, key=lambda r: (counts.get(r.id, 0), _since(r), r.id))
            why += "load"
        else:
            owner = min(candidates, key=lambda r: (_since(r), r.id))
            why += "round_robin"
    lead.owner_user_id = owner.id
    owner.last_lead_at = utcnow()
    await record(lead, "assigned", db_session=db_session, actor=actor, owner_user_id=owner.id, why=why)
    # The rep works the lead in the contact's conversations: unowned ones become theirs.
    await db_session.execute(update(Conversation).where(Conversation.contact_id == lead.contact_id,
                                                        Conversation.assignee_user_id.is_(None))
                             .values(assignee_user_id=owner.id).execution_options(synchronize_session=False))
    return why


def _since(user: User) -> dt.datetime:
    return user.last_lead_at or dt.datetime.min.replace(tzinfo=dt.UTC)


def _covers(rep: User, lead: Lead) -> bool:
    territory = rep.territory or {}
    wanted = [(lead.region, territory.get("regions") or []), (lead.industry, territory.get("industries") or [])]
    given = [(value, covered) for value, covered in wanted if value]
    return bool(given) and all(value.lower() in {c.lower() for c in covered} for value, covered in given)


# Asked for each new lead: built once.
_STICKY = (select(User).join(Conversation, Conversation.assignee_user_id == User.id)  # an owned conversation's rep
           .where(Conversation.contact_id == bindparam("contact_id"), User.is_active.is_(True))
           .order_by(Conversation.last_message_at.desc()).limit(1),
           select(User).join(Lead, Lead.owner_user_id == User.id)  # the owner of the person's last lead
           .where(Lead.contact_id == bindparam("contact_id"), Lead.id != bindparam("lead_id"),
                  User.is_active.is_(True))
           .order_by(Lead.id.desc()).limit(1))


async def _sticky_owner(lead: Lead, session: AsyncSession) -> tuple[User | None, str]:
    """The rep who already has this person: an owned conversation, else their last lead's owner."""
    assert lead.id is not None, "the lead is flushed first: its own row is left out"
    for stmt in _STICKY:
        user = await session.scalar(stmt, {"contact_id": lead.contact_id, "lead_id": lead.id})
        if user is not None and user.role in (Role.REP, Role.MANAGER, Role.ADMIN):
            return user, "sticky"
    return None, ""


async def score(lead: Lead, event: str, *, rules: LeadRules, db_session: AsyncSession, actor: User | None = None,
                **details: Any) -> bool:
    """Apply a scoring rule; True when this made the lead hot (once per lead)."""
    rule = rules.rule(event)
    if rule is None:
        return False
    scored = {"lead_id": lead.id, "event": event}
    if not rule.repeatable and await db_session.scalar(_SCORED_BEFORE, scored):
        return False
    delta = rule.delta
    if rule.cap is not None:
        earned = await db_session.scalar(_EARNED, scored) or 0
        delta = max(0, min(delta, rule.cap - earned))
        if not delta:
            return False
    lead.score += delta
    await record(lead, "score", db_session=db_session, actor=actor, event=event, delta=delta,
                 score=lead.score, **details)
    if lead.score >= rules.hot_score and lead.hot_alerted_at is None:
        lead.hot_alerted_at = utcnow()
        return True
    return False


async def set_stage(lead: Lead, stage: str, *, rules: LeadRules, actor: User | None, db_session: AsyncSession) -> str:
    stage = stage.strip().lower()
    if stage not in rules.stages:
        raise LeadRefused(f"unknown stage {stage!r}; stages: {', '.join(rules.stages)}")
    if lead.status != "open":
        raise LeadRefused(f"lead {lead.id} is closed ({lead.stage}); open a new one for new business")
    previous, lead.stage = lead.stage, stage
    if previous == rules.stages[0] and stage != previous and lead.first_responded_at is None:
        lead.first_responded_at = utcnow()
    if stage in CLOSED_STAGES:
        lead.status = "closed"
    contact = await db_session.get(Contact, lead.contact_id)
    if contact is not None:
        contact.stage = stage
        tags = [tag for at, tag in rules.stage_tags if at == stage and stage != previous]
        if tags:
            await add_by_rule(contact.id, tags, f"lead stage {stage}", db_session=db_session)
    await record(lead, "stage", db_session=db_session, actor=actor, previous=previous, stage=stage)
    return previous


async def add_order(lead: Lead, amount: float, *, rules: LeadRules, actor: User | None,
                    db_session: AsyncSession) -> bool:
    """An order: total, count and segment updated, scored; True when that made the lead hot."""
    if not amount > 0:
        raise LeadRefused("an order amount is more than 0")
    lead.order_total += amount
    lead.order_count += 1
    previous, lead.segment = lead.segment, rules.segment(lead.order_total, lead.order_count)
    await record(lead, "order", db_session=db_session, actor=actor, amount=amount, total=lead.order_total,
                 segment=lead.segment, previous_segment=previous)
    return await score(lead, "order", rules=rules, db_session=db_session, actor=actor)


async def claimed(contact_id: int, user: User, *, db_session: AsyncSession) -> None:
    """A rep claimed the contact's conversation: an unowned open lead of theirs is the rep's too."""
    lead = await db_session.scalar(select(Lead).where(Lead.contact_id == contact_id, Lead.status == "open",
                                                      Lead.owner_user_id.is_(None)))
    if lead is not None:
        lead.owner_user_id = user.id
        user.last_lead_at = utcnow()
        await record(lead, "assigned", db_session=db_session, actor=user, owner_user_id=user.id, why="claimed")


async def responded(contact_id: int, *, db_session: AsyncSession) -> None:
    """A person wrote to the contact: their open lead's first response is met (if it was not)."""
    await db_session.execute(update(Lead).where(Lead.contact_id == contact_id, Lead.status == "open",
                                                Lead.first_responded_at.is_(None))
                             .values(first_responded_at=utcnow()).execution_options(synchronize_session=False))


async def reassign(from_user: User, to_user: User, by: User, *, db_session: AsyncSession) -> list[int]:
    """A departing rep's open leads go to `to_user`, each with an event in its history."""
    leads = (await db_session.scalars(select(Lead).where(Lead.owner_user_id == from_user.id,
                                                         Lead.status == "open"))).all()
    for lead in leads:
        lead.owner_user_id = to_user.id
        await record(lead, "reassigned", db_session=db_session, actor=by, from_user_id=from_user.id,
                     to_user_id=to_user.id)
    return [lead.id for lead in leads]


async def overdue_first_responses(now: dt.datetime, rules: LeadRules, *,
                                  db_session: AsyncSession) -> Sequence[tuple[Lead, bool]]:
    """Open leads whose first response is late: (lead, escalate?) for those not yet reminded or escalated."""
    leads = (await db_session.scalars(
        select(Lead).where(Lead.status == "open", Lead.first_responded_at.is_(None),
                           Lead.first_response_due_at <= now, Lead.sla_escalated_at.is_(None))
        .order_by(Lead.first_response_due_at).limit(500))).all()
    due = []
    for lead in leads:
        escalate = now >= lead.first_response_due_at - rules.first_response + rules.escalate_after
        if escalate or lead.sla_reminded_at is None:
            due.append((lead, escalate))
    return due


async def mark_reminded(lead: Lead, *, escalated: bool, db_session: AsyncSession) -> bool:
    """Compare-and-set, so two workers never remind twice; False if another did."""
    column = Lead.sla_escalated_at if escalated else Lead.sla_reminded_at
    result = await db_session.execute(update(Lead).where(Lead.id == lead.id, column.is_(None))
                                      .values({column.key: utcnow()}).execution_options(synchronize_session=False))
    return result.rowcount == 1
