"""Planning: the steps that are due become outbox sends, one transaction per batch.

The database is the source of truth. An enrolment holds its next step and when it
is due; the planner takes due enrolments (FOR UPDATE SKIP LOCKED, so several
planners share them), queues the step's message in the outbox and moves the
enrolment on, in one transaction. A planner killed midway rolls back and the next
tick plans the same steps again; each send's idempotency key is
(enrolment, step, rotation), so no step is ever queued twice. The dispatcher then
checks consent, the frequency cap and quiet hours at send time. A campaign's own
caps (per person, per day) hold a step back here until it fits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, bindparam, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from crm_core.campaigns.definitions import (
    TEMPLATE_VARIABLES,
    CampaignCaps,
    CampaignInvalid,
    StepSpec,
    step_template,
)
from crm_core.consent import service as consent
from crm_core.consent.marketing_rules import identities_of, interval_end, zone_named
from crm_core.db import utcnow, write_lock_first
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    Campaign,
    CampaignStatus,
    CampaignStep,
    ChannelAccount,
    Contact,
    ContactTag,
    Conversation,
    Direction,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
    User,
)
from crm_core.outbox.service import handles_of
from crm_core.ports import OutboundMessage
from crm_core.sql import among, insert_many, insert_many_returning_ids

log = logging.getLogger(__name__)


def render(template: dict[str, str], language: str | None, variables: dict[str, str]) -> str:
    """The step's text in the contact's language (the other one when it has none)."""
    preferred = "zh" if (language or "").lower().startswith("zh") else "en"
    text = template.get(preferred) or next(iter(template.values()))
    # str.format_map, not string.Formatter (the same syntax in Python, 5 us a text against 1): a step's
    # texts name only these variables, no format spec or conversion (`definitions` refuses others).
    return text.format_map({name: variables.get(name, "") for name in TEMPLATE_VARIABLES})


def window_opening(now: dt.datetime, step: StepSpec, zone: ZoneInfo) -> dt.datetime | None:
    """None if `now` is inside the step's send window, else when the window next opens (UTC):
    outside a window is the interval from its end to its start."""
    if step.window_start is None or step.window_end is None:
        return None
    return interval_end(now, zone, dt.time.fromisoformat(step.window_end), dt.time.fromisoformat(step.window_start))

@dataclass
class PlanReport:
    planned: int = 0          # enrolments looked at
    queued: int = 0           # step sends put in the outbox
    skipped: int = 0          # a condition not met, or no channel to send on
    completed: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    waiting: int = 0          # outside the step's send window
    capped: int = 0           # held back by the campaign's own caps until they allow it


class _Route(NamedTuple):
    """One of a contact's conversations a step could be sent in."""

    conversation_id: int
    identity_id: int
    account_id: int
    kind: str
    thread: str
    assignee_user_id: int | None


@dataclass(frozen=True, kw_only=True)
class _Step(StepSpec):
    """A campaign step as the planner reads it, a plain object: the ORM's attribute access (a dozen
    reads a due enrolment) was a twentieth of the planner's time."""

    id: int
    position: int


_STEP_FIELDS = tuple(f.name for f in dataclasses.fields(_Step))
# The batch's campaigns' steps as columns, one statement (as ORM objects, one campaign at a time: 2%).
_STEPS = (select(CampaignStep.campaign_id, *(getattr(CampaignStep, name) for name in _STEP_FIELDS))
          .where(CampaignStep.campaign_id.in_(bindparam("campaign_ids", expanding=True)))
          .order_by(CampaignStep.campaign_id, CampaignStep.position))


class _Plan(NamedTuple):
    """What the planner reads of a campaign for each enrolment."""

    id: int
    name: str
    exits: list[str]
    steps: dict[int, _Step]  # by position

    @property
    def reads_messages(self) -> bool:
        """Whether moving its enrolments on asks when their contacts last wrote or pressed a button."""
        return "reply" in self.exits or any("replied" in s.condition or "clicked" in s.condition
                                            for s in self.steps.values() if s.condition)

    @property
    def reads_tags(self) -> bool:
        return any("tag" in s.condition for s in self.steps.values() if s.condition)


class _Person(NamedTuple):
    """What the planner reads of a contact: columns, not ORM objects (those cost the planner a
    tenth of its time, 500 a batch, and it changes none)."""

    id: int
    display_name: str | None
    language: str | None
    timezone: str | None
    stage: str
    merged_into_id: int | None


@dataclass(eq=False, slots=True)
class _Due:
    """A due enrolment as the planner moves it on: read as columns and written back in one
    statement a batch (as ORM objects, loading and flushing 500 a batch was a third of the
    planner's time). The batch's rows are locked (FOR UPDATE on PostgreSQL, the one write lock
    on SQLite), so writing every column back loses no one else's change."""

    id: int
    campaign_id: int
    contact_id: int
    rotation: int
    status: EnrolmentStatus
    next_position: int | None
    next_due_at: dt.datetime | None
    enrolled_at: dt.datetime
    last_step_at: dt.datetime | None
    note: str | None
    exit_reason: str | None
    exited_at: dt.datetime | None


_PERSON_COLUMNS = [getattr(Contact, name) for name in _Person._fields]
_DUE_COLUMNS = [getattr(Enrolment, f.name) for f in dataclasses.fields(_Due)]
_MOVED = ("status", "next_position", "next_due_at", "last_step_at", "note", "exit_reason", "exited_at")
_MOVED_VALUES = operator.attrgetter(*_MOVED)
_ENROLMENT = Enrolment.__table__
_BOUND = tuple(f"b_{name}" for name in _MOVED)
_MOVED_TO = {name: bindparam(bound) for name, bound in zip(_MOVED, _BOUND, strict=True)}
_WRITE_SHARED = update(_ENROLMENT).where(among(_ENROLMENT.c.id, name="ids")).values(_MOVED_TO)
_WRITE_EACH = update(_ENROLMENT).where(_ENROLMENT.c.id == bindparam("b_id")).values(_MOVED_TO)
# The running campaigns, then a batch of their due enrolments: built once.
_ACTIVE = select(Campaign).where(Campaign.status == CampaignStatus.ACTIVE)
_DUE = (select(*_DUE_COLUMNS)
        .where(Enrolment.campaign_id.in_(bindparam("campaign_ids", expanding=True)),
               Enrolment.status == EnrolmentStatus.ACTIVE, Enrolment.next_due_at <= bindparam("now"))
        .order_by(Enrolment.next_due_at, Enrolment.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True))
_SHARED = 16  # rows moved alike that go as one statement: fewer cost more as statements than as rows


async def _write_back(due: list[_Due], db: AsyncConnection) -> None:
    """The batch's moved columns, one statement for each set of values many rows share ("completed
    now", "step 2 due at ..."), the others in one executemany: a campaign's batch is mostly one or a
    few sets, and the executemany's parameters for each row were a tenth of the planner's time
    (17 us a row against 4-5). Steps due a delay after each enrolment's own time share little."""
    alike: dict[tuple[Any, ...], list[_Due]] = {}
    for enrolment in due:
        alike.setdefault(_MOVED_VALUES(enrolment), []).append(enrolment)
    each = []
    for values, rows in alike.items():
        if len(rows) < _SHARED:
            each += rows
        else:
            await db.execute(_WRITE_SHARED, {"ids": [e.id for e in rows], **dict(zip(_BOUND, values, strict=True))})
    if each:
        await db.execute(_WRITE_EACH, [{"b_id": e.id, **dict(zip(_BOUND, _MOVED_VALUES(e), strict=True))}
                                       for e in each])


# Who of a batch has had a marketing message: their identities (`identities_of`), then those
# identities' sends. Asked as one join, PostgreSQL whose statistics lagged a campaign read every
# marketing send for each batch.
_MARKETED = select(OutboxMessage.identity_id).where(
    among(OutboxMessage.identity_id, name="identity_ids"),
    OutboxMessage.purpose == MessagePurpose.MARKETING, OutboxMessage.status != OutboxStatus.CANCELLED).distinct()


@dataclass
class _Known:
    """What the planner needs about the contacts of one batch, read in a few queries
    (one query per enrolment and step was 60 sends/s; this is the difference)."""

    contacts: dict[int, _Person]
    marketing: dict[int, list[consent.EventFact]]  # each contact's marketing consent events, newest first
    last_message: dict[int, dt.datetime]           # their latest own message (an opt-out not counting)
    last_click: dict[int, dt.datetime]             # their latest button press
    tags: dict[int, set[str]]
    routes: dict[int, list[_Route]]                # newest conversation first
    owner_names: dict[int, str]
    handles: dict[tuple[int, int], str]            # (user, channel account) -> the user's id there
    # Contacts who have had a marketing message (queued or sent); the others' first one
    # says how to stop them.
    marketed: set[int] = field(default_factory=set)

    def wrote_since(self, contact_id: int, since: dt.datetime, *, clicks: bool = False) -> bool:
        at = (self.last_click if clicks else self.last_message).get(contact_id)
        return at is not None and at > since


def engaged(kinds: Iterable[MessageKind]) -> Any:
    """The customer's own messages of these kinds, an opt-out ("STOP") not counting as a reply."""
    return and_(Message.direction == Direction.INBOUND, Message.kind.in_(tuple(kinds)),
                ~func.coalesce(cast(Message.intents, String), "").like('%"opt_out"%'))


# What `_load` reads, built once: a batch's statements built anew were 2% of the planner's time.
_CONTACTS = select(*_PERSON_COLUMNS).where(among(Contact.id, name="contact_ids"))
_LAST_ENGAGED = (select(Identity.contact_id, Message.kind, func.max(Message.created_at))
                 .join(Identity, Identity.id == Message.identity_id)
                 .where(among(Identity.contact_id, name="contact_ids"),
                        engaged((*CUSTOMER_MESSAGE_KINDS, MessageKind.CALLBACK)))
                 .group_by(Identity.contact_id, Message.kind))
_TAGS = select(ContactTag.contact_id, ContactTag.tag).where(among(ContactTag.contact_id, name="contact_ids"))
_ROUTES = (select(Conversation.contact_id, Conversation.id, Conversation.identity_id,
                  Conversation.channel_account_id, ChannelAccount.kind, Conversation.external_thread_id,
                  Conversation.assignee_user_id)
           .join(Identity, Identity.id == Conversation.identity_id)
           .join(ChannelAccount, ChannelAccount.id == Conversation.channel_account_id)
           .where(among(Conversation.contact_id, name="contact_ids"), Identity.reachable.is_(True),
                  ChannelAccount.is_active.is_(True))
           .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()))
_OWNER_NAMES = select(User.id, User.display_name, User.username).where(among(User.id, name="user_ids"))


async def _load(contact_ids: list[int], db: AsyncConnection, *, messages: bool, tags: bool) -> _Known:
    """What the batch needs of its contacts; when they last wrote and their tags only if asked."""
    ids = {"contact_ids": contact_ids}
    contacts = {row[0]: _Person(*row) for row in (await db.execute(_CONTACTS, ids)).all()}
    marketing = {contact_id: events for (contact_id, _), events in (await consent.events_of(
        contact_ids, [MessagePurpose.MARKETING], db_session=db)).items()}
    last_message: dict[int, dt.datetime] = {}
    last_click: dict[int, dt.datetime] = {}
    for contact_id, kind, at in (await db.execute(_LAST_ENGAGED, ids)).all() if messages else ():
        latest = last_click if kind == MessageKind.CALLBACK else last_message
        if contact_id not in latest or at > latest[contact_id]:
            latest[contact_id] = at
    tagged: dict[int, set[str]] = {}
    for contact_id, tag in (await db.execute(_TAGS, ids)).all() if tags else ():
        tagged.setdefault(contact_id, set()).add(tag)
    routes: dict[int, list[_Route]] = {}
    for row in (await db.execute(_ROUTES, ids)).all():
        routes.setdefault(row[0], []).append(_Route(*row[1:]))
    owners = sorted({r.assignee_user_id for rs in routes.values() for r in rs if r.assignee_user_id is not None})
    owner_names = {}
    if owners:
        for user_id, display_name, username in (await db.execute(_OWNER_NAMES, {"user_ids": owners})).all():
            owner_names[user_id] = display_name or username
    handles = await handles_of(owners, db)
    contact_of = await identities_of(contact_ids, db)
    marketed = {contact_of[identity_id] for identity_id in (await db.scalars(
        _MARKETED, {"identity_ids": list(contact_of)})).all()}
    return _Known(contacts, marketing, last_message, last_click, tagged, routes, owner_names, handles, marketed)


@dataclass
class _Send:
    enrolment: _Due
    step: _Step
    route: _Route
    text: str
    refused: str | None  # no consent when scheduled: recorded cancelled, with the reason
    copy_id: int | None = None  # its copy in the conversation, once written


@dataclass
class _CapState:
    """What one capped campaign has sent, as far as the batch's contacts and today go."""

    caps: CampaignCaps
    sent_to: dict[int, list[dt.datetime]]   # contact -> the campaign's sends in the per-person window, oldest first
    today: int
    tomorrow: dt.datetime                   # when the next day's count starts (UTC)

    def wait(self, contact_id: int, now: dt.datetime) -> tuple[dt.datetime, str] | None:
        """When the next send to this contact may go, and why not now; None: now."""
        if self.caps.per_day is not None and self.today >= self.caps.per_day:
            return self.tomorrow, f"the campaign's {self.caps.per_day} a day have gone"
        messages = self.caps.per_contact_messages
        if messages is not None and self.caps.per_contact_days is not None:
            window = dt.timedelta(days=self.caps.per_contact_days)
            recent = [at for at in self.sent_to.get(contact_id, []) if at > now - window]
            if len(recent) >= messages:
                # Once the oldest that still counts leaves the window, one more fits.
                return recent[len(recent) - messages] + window, \
                    f"{messages} in {self.caps.per_contact_days:g} days to this person already"
        return None

    def count(self, contact_id: int, now: dt.datetime) -> None:
        self.sent_to.setdefault(contact_id, []).append(now)
        self.today += 1


async def _cap_states(campaigns: Iterable[Campaign], contact_ids: list[int], now: dt.datetime, zone: ZoneInfo,
                      db: AsyncConnection) -> dict[int, _CapState]:
    states: dict[int, _CapState] = {}
    local = now.astimezone(zone)
    midnight = dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)
    tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    for campaign in sorted(campaigns, key=lambda c: c.id):
        try:
            caps = CampaignCaps.from_dict(campaign.caps)
        except CampaignInvalid as exc:
            # Saved through the API they are valid; one edited by hand must not stop every campaign.
            log.error("campaign %d (%s): its caps are ignored, only the hub's marketing cap applies: %s",
                      campaign.id, campaign.name, exc)
            continue
        if caps == CampaignCaps():
            continue
        sent = (select(Enrolment.contact_id, OutboxMessage.created_at)
                .join(Enrolment, Enrolment.id == OutboxMessage.enrolment_id)
                .where(Enrolment.campaign_id == campaign.id, OutboxMessage.status != OutboxStatus.CANCELLED))
        today = 0
        if caps.per_day is not None:
            # Planners in other processes count the same day: one at a time per campaign
            # (in id order, so two never wait on each other).
            await db.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
            today = await db.scalar(select(func.count()).select_from(
                sent.where(OutboxMessage.created_at >= midnight.astimezone(dt.UTC)).subquery())) or 0
        sent_to: dict[int, list[dt.datetime]] = {}
        if caps.per_contact_days is not None:
            since = now - dt.timedelta(days=caps.per_contact_days)
            for contact_id, at in (await db.execute(
                    sent.where(Enrolment.contact_id.in_(contact_ids), OutboxMessage.created_at > since)
                    .order_by(OutboxMessage.created_at))).all():
                sent_to.setdefault(contact_id, []).append(at)
        states[campaign.id] = _CapState(caps, sent_to, today, tomorrow.astimezone(dt.UTC))
    return states


class NurturePlanner:
    """Turns due enrolment steps into outbox rows. Safe to run in every worker process;
    the hub's scheduler calls `run_until_idle` every few seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, batch_size: int = 500,
                 default_timezone: str = "Asia/Shanghai", on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.batch_size = batch_size
        self.default_timezone = default_timezone
        self.on_enqueued = on_enqueued

    async def run_until_idle(self, now: dt.datetime | None = None) -> PlanReport:
        total = PlanReport()
        while True:
            began = time.monotonic()
            report = await self.run_once(now)
            for name in ("planned", "queued", "skipped", "completed", "waiting", "capped"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            for reason, count in report.exited.items():
                total.exited[reason] = total.exited.get(reason, 0) + count
            if report.planned < self.batch_size:
                return total
            # As long again for the rest of the process (the dispatcher sending what was just
            # queued, the message worker answering customers) and, on SQLite, for the other writers
            # of the one database: a campaign of 100,000 never holds them up for its whole planning.
            await asyncio.sleep(time.monotonic() - began)

    async def run_once(self, now: dt.datetime | None = None) -> PlanReport:
        """Plan one batch of due enrolments, in one transaction."""
        now = now or utcnow()
        report = PlanReport()
        async with self.sessions() as session, session.begin():
            # The running campaigns first, then their due enrolments by id: joined to the campaigns,
            # PostgreSQL (which never analyses a table of a few rows) guessed few due and read and
            # sorted all of them for each batch instead of the first entries of ix_enrolment_due.
            active = {c.id: c for c in (await session.scalars(_ACTIVE)).all()}
            if not active:
                return report
            # On SQLite the batch is read under the one write lock, so no other process plans it
            # meanwhile (PostgreSQL: FOR UPDATE SKIP LOCKED).
            await write_lock_first(session, _ENROLMENT)
            # The rest as SQLAlchemy Core on the session's connection: the planner reads columns and
            # writes whole statements, and the ORM's loading of each row was a tenth of its time.
            db = await session.connection()
            due = [_Due(*row) for row in (await db.execute(
                _DUE, {"campaign_ids": list(active), "now": now, "limit": self.batch_size})).all()]
            if not due:
                return report
            steps: dict[int, dict[int, _Step]] = {campaign_id: {} for campaign_id in {e.campaign_id for e in due}}
            for campaign_id, *values in (await db.execute(_STEPS, {"campaign_ids": list(steps)})).all():
                step = _Step(**dict(zip(_STEP_FIELDS, values, strict=True)))
                steps[campaign_id][step.position] = step
            plans = {campaign_id: _Plan(campaign_id, active[campaign_id].name, list(active[campaign_id].exits),
                                        by_position) for campaign_id, by_position in steps.items()}
            contact_ids = sorted({e.contact_id for e in due})
            known = await _load(contact_ids, db, messages=any(p.reads_messages for p in plans.values()),
                                tags=any(p.reads_tags for p in plans.values()))
            capped = await _cap_states([active[campaign_id] for campaign_id in plans], contact_ids, now,
                                       zone_named(None, self.default_timezone), db)
            sends: list[_Send] = []
            for enrolment in due:
                plan = plans[enrolment.campaign_id]
                report.planned += 1
                self._advance(enrolment, plan, known, now, report, sends, capped.get(plan.id))
            await _enqueue(sends, known, now, db)
            await _write_back(due, db)
        if report.queued and self.on_enqueued is not None:
            self.on_enqueued()
        if report.planned:
            log.info("nurture planner: %d due, %d queued, %d skipped, %d held by caps, %d completed, exits %s",
                     report.planned, report.queued, report.skipped, report.capped, report.completed, report.exited)
        return report

    def _advance(self, enrolment: _Due, campaign: _Plan, known: _Known, now: dt.datetime, report: PlanReport,
                 sends: list[_Send], caps: _CapState | None = None) -> None:
        contact = known.contacts[enrolment.contact_id]
        steps = campaign.steps
        reason = self._exit_reason(enrolment, campaign, contact, known)
        if reason is not None:
            self._exit(enrolment, reason, now)
            report.exited[reason] = report.exited.get(reason, 0) + 1
            return
        for _ in range(len(steps) + 1):  # branches only go forward, so this ends
            step = steps.get(enrolment.next_position or 0)
            if step is None:
                enrolment.status, enrolment.next_due_at = EnrolmentStatus.COMPLETED, None
                report.completed += 1
                return
            if enrolment.next_due_at is not None and enrolment.next_due_at > now:
                return
            if step.condition and not self._condition_met(step.condition, enrolment, contact, known):
                report.skipped += 1
                if step.else_position is None:
                    self._exit(enrolment, "condition_not_met", now)
                    enrolment.note = f"step {step.position} ({step.name}): condition not met"
                    report.exited["condition_not_met"] = report.exited.get("condition_not_met", 0) + 1
                    return
                enrolment.note = f"step {step.position} ({step.name}): condition not met; " \
                                 f"went to step {step.else_position}"
                self._move_to(enrolment, steps.get(step.else_position), now)
                continue
            if step.window_start is not None:  # the contact's zone asked only then (1 us a due enrolment)
                zone = self._zone(contact)
                opening = window_opening(now, step, zone)
                if opening is not None:
                    enrolment.next_due_at = opening
                    enrolment.note = f"step {step.position}: waiting for its send window " \
                                     f"{step.window_start}-{step.window_end} {zone.key}"
                    report.waiting += 1
                    return
            wait = caps.wait(contact.id, now) if caps is not None else None
            if wait is not None:
                enrolment.next_due_at = wait[0]
                enrolment.note = f"step {step.position}: waiting for the campaign's cap ({wait[1]})"
                report.capped += 1
                return
            if self._queue(enrolment, campaign, step, contact, known, sends):
                report.queued += 1
                if caps is not None:
                    caps.count(contact.id, now)
            else:
                report.skipped += 1
            enrolment.last_step_at = now
            self._move_to(enrolment, steps.get(step.position + 1), now)

    @staticmethod
    def _exit(enrolment: _Due, reason: str, now: dt.datetime) -> None:
        # Its earlier steps' sends have gone or are cancelled by the opt-out itself; the
        # manual exit (exit_enrolment) is the one that cancels queued sends.
        enrolment.status, enrolment.exit_reason = EnrolmentStatus.EXITED, reason
        enrolment.exited_at, enrolment.next_due_at = now, None

    def _move_to(self, enrolment: _Due, step: _Step | None, now: dt.datetime) -> None:
        if step is None:
            enrolment.next_position, enrolment.next_due_at = None, now
            return
        enrolment.next_position = step.position
        if step.send_at is not None:
            enrolment.next_due_at = step.send_at
        else:
            base = enrolment.enrolled_at if step.delay_from == "enrolment" else now
            enrolment.next_due_at = base + dt.timedelta(minutes=step.delay_minutes)

    def _zone(self, contact: _Person) -> ZoneInfo:
        return zone_named(contact.timezone, self.default_timezone)

    @staticmethod
    def _exit_reason(enrolment: _Due, campaign: _Plan, contact: _Person, known: _Known) -> str | None:
        everywhere = next((e for e in known.marketing.get(contact.id, []) if e.channel is None), None)
        if everywhere is not None and not everywhere.granted:
            return "opted_out"
        if contact.merged_into_id is not None:
            return "merged"
        if "conversion" in campaign.exits and contact.stage == "won":
            return "converted"
        if "reply" in campaign.exits and known.wrote_since(contact.id, enrolment.enrolled_at):
            return "replied"
        return None

    @staticmethod
    def _condition_met(condition: dict[str, Any], enrolment: _Due, contact: _Person, known: _Known) -> bool:
        since = enrolment.last_step_at or enrolment.enrolled_at
        if "replied" in condition and known.wrote_since(contact.id, since) != bool(condition["replied"]):
            return False
        if "clicked" in condition and \
                known.wrote_since(contact.id, since, clicks=True) != bool(condition["clicked"]):
            return False
        if "stages" in condition and contact.stage not in condition["stages"]:
            return False
        return not ("tag" in condition and condition["tag"] not in known.tags.get(contact.id, set()))

    def _queue(self, enrolment: _Due, campaign: _Plan, step: _Step, contact: _Person,
               known: _Known, sends: list[_Send]) -> bool:
        """Add the step's message to the batch's sends; False (with the reason noted) if it cannot go."""
        route = next((r for r in known.routes.get(contact.id, []) if step.channel in (None, r.kind)), None)
        if route is None:
            enrolment.note = f"step {step.position} ({step.name}): not sent, the contact has no reachable " \
                             f"{step.channel or 'channel'} conversation"
            return False
        text = render(step_template(step, route.kind), contact.language,
                      {"name": contact.display_name or "", "campaign": campaign.name,
                       "rep": known.owner_names.get(route.assignee_user_id or 0, "")})
        if contact.id not in known.marketed:
            text += consent.opt_out_hint(contact.language, route.kind)
            known.marketed.add(contact.id)
        # Consent when the send is scheduled (and again when it is sent, by the dispatcher).
        decision = consent.decide_from(known.marketing.get(contact.id, []), purpose=MessagePurpose.MARKETING,
                                       channel=route.kind)
        refused = None if decision.allowed else f"not scheduled: {decision.reason}"
        sends.append(_Send(enrolment, step, route, text, refused))
        enrolment.note = None if refused is None else f"step {step.position} ({step.name}): {refused}"
        return refused is None


# The keys queued before among a batch's, and its conversations' last message: built once.
_TAKEN = select(OutboxMessage.idempotency_key).where(among(OutboxMessage.idempotency_key, name="keys"))
_TOUCHED = (update(Conversation.__table__).where(among(Conversation.id, name="ids"))
            .values(last_message_at=bindparam("now", type_=Conversation.last_message_at.type)))


async def _enqueue(sends: list[_Send], known: _Known, now: dt.datetime, db: AsyncConnection) -> None:
    """The batch's step sends into the outbox, with the copies kept in their conversations, in a
    few statements. A key queued before (it cannot be, but a key is the last word) is left alone."""
    if not sends:
        return
    keyed = [(f"nurture:{s.enrolment.id}:{s.step.id}:{s.enrolment.rotation}", s) for s in sends]
    taken = set((await db.scalars(_TAKEN, {"keys": [key for key, _ in keyed]})).all())
    keyed = [(key, s) for key, s in keyed if key not in taken]
    going = [s for _, s in keyed if s.refused is None]
    if going:
        copies = await insert_many_returning_ids(db, Message.__table__, [
            {"conversation_id": s.route.conversation_id, "channel_account_id": s.route.account_id,
             "identity_id": s.route.identity_id, "text": s.text} for s in going],
            same={"direction": Direction.OUTBOUND, "kind": MessageKind.TEXT, "attachments": [], "created_at": now,
                  "processed_at": now, "processing_attempts": 0}, matched_by=("conversation_id", "text"))
        for s, copy_id in zip(going, copies, strict=True):
            s.copy_id = copy_id
        await db.execute(_TOUCHED, {"ids": sorted({s.route.conversation_id for s in going}), "now": now})
    rows = []
    for key, s in keyed:
        sender = known.handles.get((s.route.assignee_user_id or 0, s.route.account_id))  # WeCom: as its owner
        options = {"sender": sender} if sender is not None else None
        rows.append({
            "idempotency_key": key, "channel_account_id": s.route.account_id, "recipient": s.route.thread,
            "payload": OutboundMessage.text_payload(s.text, options),
            "status": OutboxStatus.PENDING if s.refused is None else OutboxStatus.CANCELLED,
            "last_error": s.refused, "conversation_id": s.route.conversation_id, "identity_id": s.route.identity_id,
            "message_id": s.copy_id, "enrolment_id": s.enrolment.id, "campaign_step_id": s.step.id})
    await insert_many(db, OutboxMessage.__table__, rows, conflict_columns=("idempotency_key",), same={
        "purpose": MessagePurpose.MARKETING, "attempts": 0, "next_attempt_at": now, "created_at": now})
