"""Nurture campaigns: an audience enrolled, steps planned when due, exits honoured.

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
import datetime as dt
import logging
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import audit, consent
from crm_core.db import utcnow
from crm_core.marketing_rules import interval_end, zone_named
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    Campaign,
    CampaignStatus,
    CampaignStep,
    ChannelAccount,
    ConsentEvent,
    Contact,
    ContactTag,
    Conversation,
    Direction,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Lead,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
    User,
    UserHandle,
)
from crm_core.ports import OutboundMessage
from crm_core.sql import insert_many_ignoring_conflict

log = logging.getLogger(__name__)

TEMPLATE_VARIABLES = ("name", "rep", "campaign")
EXITS = ("reply", "conversion")   # opt-out and manual exits always apply
SENTIMENTS = ("negative", "neutral", "positive")
CONDITIONS = ("replied", "clicked", "stages", "tag")


class CampaignInvalid(ValueError):
    """A campaign definition that cannot run; the message says what to change."""


class CampaignStarted(CampaignInvalid):
    """A change only a draft may have."""


# ---- definitions -------------------------------------------------------------

@dataclass(frozen=True)
class Audience:
    """A segment of contacts. Every given criterion must hold; staff and merged contacts never match."""

    tags: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    sentiment: str | None = None   # of the contact's latest scored message
    consent: bool = True           # only contacts whose latest marketing consent is a grant
    min_score: int | None = None   # only contacts whose open lead scores at least this

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        unknown = set(data) - {"tags", "stages", "sources", "channels", "sentiment", "consent", "min_score"}
        if unknown:
            raise CampaignInvalid(f"audience: unknown criteria {', '.join(sorted(unknown))}; known: tags, stages, "
                                  "sources, channels, sentiment, consent, min_score")

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise CampaignInvalid(f"audience.{key}: a list of non-empty strings, like [\"vip\"]")
            return tuple(v.strip() for v in value)

        sentiment = data.get("sentiment")
        if sentiment is not None and sentiment not in SENTIMENTS:
            raise CampaignInvalid(f"audience.sentiment {sentiment!r}: one of {', '.join(SENTIMENTS)}")
        if not isinstance(data.get("consent", True), bool):
            raise CampaignInvalid("audience.consent: true or false")
        min_score = data.get("min_score")
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, int)):
            raise CampaignInvalid("audience.min_score: a whole number, the lowest lead score to include")
        return cls(names("tags"), names("stages"), names("sources"), names("channels"), sentiment,
                   data.get("consent", True), min_score)

    def to_dict(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "stages": list(self.stages), "sources": list(self.sources),
                "channels": list(self.channels), "sentiment": self.sentiment, "consent": self.consent,
                "min_score": self.min_score}

    def contact_filter(self) -> list[Any]:
        """SQL conditions on `Contact` selecting the segment."""
        where: list[Any] = [Contact.is_staff.is_(False), Contact.merged_into_id.is_(None)]
        for tag in self.tags:
            where.append(exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == tag))
        if self.stages:
            where.append(Contact.stage.in_(self.stages))
        if self.sources:
            where.append(Contact.source.in_(self.sources))
        if self.channels:
            where.append(exists().where(Identity.contact_id == Contact.id,
                                        Identity.channel_account_id == ChannelAccount.id,
                                        ChannelAccount.kind.in_(self.channels)))
        if self.sentiment:
            latest = (select(Message.sentiment).join(Identity, Identity.id == Message.identity_id)
                      .where(Identity.contact_id == Contact.id, Message.direction == Direction.INBOUND,
                             Message.sentiment.is_not(None))
                      .order_by(Message.id.desc()).limit(1).scalar_subquery())
            where.append(latest == self.sentiment)
        if self.min_score is not None:
            where.append(exists().where(Lead.contact_id == Contact.id, Lead.status == "open",
                                        Lead.score >= self.min_score))
        if self.consent:
            latest_marketing = (select(ConsentEvent.granted)
                                .where(ConsentEvent.contact_id == Contact.id,
                                       ConsentEvent.purpose == MessagePurpose.MARKETING)
                                .order_by(ConsentEvent.id.desc()).limit(1).scalar_subquery())
            where.append(latest_marketing.is_(True))
        return where


@dataclass(frozen=True)
class CampaignCaps:
    """A campaign's own limits, under the hub-wide marketing cap (which the dispatcher
    applies at send time): at most `per_contact_messages` of its messages to one person in
    `per_contact_days` days, and at most `per_day` in all per day (the hub's time zone).
    A step that would go over waits until it may go; it is never dropped."""

    per_contact_messages: int | None = None
    per_contact_days: float | None = None
    per_day: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CampaignCaps:
        data = data or {}
        unknown = set(data) - {"per_contact", "per_day"}
        if unknown:
            raise CampaignInvalid(f"caps: unknown {', '.join(sorted(unknown))}; known: per_contact "
                                  "({\"messages\": 2, \"days\": 7}), per_day (500)")

        def whole(value: Any, where: str, most: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise CampaignInvalid(f"{where}: a whole number from 1 to {most}")
            return value

        per_contact = data.get("per_contact")
        messages = days = None
        if per_contact is not None:
            if not isinstance(per_contact, dict) or set(per_contact) != {"messages", "days"}:
                raise CampaignInvalid('caps.per_contact: {"messages": 2, "days": 7}: at most this many of the '
                                      "campaign's messages to one person in this many days")
            messages = whole(per_contact["messages"], "caps.per_contact.messages", 1000)
            days = per_contact["days"]
            if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 365:
                raise CampaignInvalid("caps.per_contact.days: more than 0, at most 365")
        per_day = data.get("per_day")
        if per_day is not None:
            per_day = whole(per_day, "caps.per_day", 10_000_000)
        return cls(messages, days, per_day)

    def to_dict(self) -> dict[str, Any]:
        caps: dict[str, Any] = {}
        if self.per_contact_messages is not None:
            caps["per_contact"] = {"messages": self.per_contact_messages, "days": self.per_contact_days}
        if self.per_day is not None:
            caps["per_day"] = self.per_day
        return caps


@dataclass(frozen=True)
class StepSpec:
    name: str
    template: dict[str, str]
    channel: str | None = None
    # Other wording where the contact is reached on a channel: {"email": {"zh": ..., "en": ...}}.
    channel_templates: dict[str, dict[str, str]] = field(default_factory=dict)
    delay_minutes: int = 0
    delay_from: str = "previous"
    send_at: dt.datetime | None = None
    window_start: str | None = None
    window_end: str | None = None
    condition: dict[str, Any] | None = None
    else_position: int | None = None


def validate_template(template: dict[str, str], where: str) -> None:
    if not isinstance(template, dict) or not template:
        raise CampaignInvalid(f"{where}: a template per language, like {{\"zh\": \"您好 {{name}}\", "
                              "\"en\": \"Hello {name}\"}")
    for language, text in template.items():
        if language not in ("zh", "en"):
            raise CampaignInvalid(f"{where}: language {language!r}; templates are zh and en")
        if not isinstance(text, str) or not text.strip():
            raise CampaignInvalid(f"{where}.{language}: the text is empty")
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text)
                      if name is not None]
        except ValueError as exc:
            raise CampaignInvalid(f"{where}.{language}: {exc}; write a literal brace as {{{{ or }}}}") from None
        for name, spec, conv in fields:
            if name not in TEMPLATE_VARIABLES or spec or conv:
                raise CampaignInvalid(f"{where}.{language}: unknown variable {{{name}}}; variables: "
                                      + ", ".join(f"{{{v}}}" for v in TEMPLATE_VARIABLES))


def validate_channel_templates(templates: dict[str, dict[str, str]], channel: str | None, kinds: set[str],
                               where: str) -> None:
    if not isinstance(templates, dict):
        raise CampaignInvalid(f"{where}.channel_templates: wording per channel kind, like "
                              '{"email": {"en": "Dear {name}, ..."}}')
    for kind, template in templates.items():
        if kind not in kinds:
            raise CampaignInvalid(f"{where}.channel_templates.{kind}: not a channel kind; one of "
                                  f"{', '.join(sorted(kinds))}")
        if channel is not None and kind != channel:
            raise CampaignInvalid(f"{where}.channel_templates.{kind}: the step sends only on {channel}; "
                                  "choose their latest channel to word it per channel")
        validate_template(template, f"{where}.channel_templates.{kind}")


def validate_condition(condition: dict[str, Any], where: str) -> None:
    for key in ("replied", "clicked"):
        if key in condition and not isinstance(condition[key], bool):
            raise CampaignInvalid(f"{where}.condition.{key}: true or false")
    stages = condition.get("stages")
    if "stages" in condition and (not isinstance(stages, list) or not stages
                                  or not all(isinstance(x, str) and x.strip() for x in stages)):
        raise CampaignInvalid(f"{where}.condition.stages: a list of stage names, like [\"qualified\"]")
    if "tag" in condition and (not isinstance(condition["tag"], str) or not condition["tag"].strip()):
        raise CampaignInvalid(f"{where}.condition.tag: the tag's name")


def step_template(step: CampaignStep | StepSpec, kind: str) -> dict[str, str]:
    """The step's wording for a contact reached on `kind`."""
    return (step.channel_templates or {}).get(kind) or step.template


def validate_steps(steps: list[StepSpec], channel_kinds: Iterable[str]) -> None:
    kinds = set(channel_kinds)
    if not steps:
        raise CampaignInvalid("a campaign needs at least one step")
    for position, step in enumerate(steps, start=1):
        where = f"step {position}"
        if not step.name.strip():
            raise CampaignInvalid(f"{where}: give it a name")
        validate_template(step.template, f"{where}.template")
        if step.channel is not None and step.channel not in kinds:
            raise CampaignInvalid(f"{where}.channel {step.channel!r}: one of {', '.join(sorted(kinds))}, "
                                  "or none for the contact's latest channel")
        validate_channel_templates(step.channel_templates, step.channel, kinds, where)
        if step.delay_minutes < 0:
            raise CampaignInvalid(f"{where}.delay_minutes: 0 or more")
        if step.delay_from not in ("previous", "enrolment"):
            raise CampaignInvalid(f"{where}.delay_from: previous or enrolment")
        if step.send_at is not None and step.send_at.tzinfo is None:
            raise CampaignInvalid(f"{where}.send_at: give a time zone, like 2026-12-01T09:00:00+08:00")
        if (step.window_start is None) != (step.window_end is None):
            raise CampaignInvalid(f"{where}: a send window needs both window_start and window_end")
        if step.window_start is not None:
            try:
                start, end = dt.time.fromisoformat(step.window_start), dt.time.fromisoformat(step.window_end)
            except ValueError:
                raise CampaignInvalid(f"{where}: window times as HH:MM, like 09:00 and 18:00") from None
            if start == end:
                raise CampaignInvalid(f"{where}: the send window starts and ends at the same time")
        if step.condition is not None:
            unknown = set(step.condition) - set(CONDITIONS)
            if unknown or not step.condition:
                raise CampaignInvalid(f"{where}.condition: keys among {', '.join(CONDITIONS)}")
            validate_condition(step.condition, where)
        if step.else_position is not None:
            if step.condition is None:
                raise CampaignInvalid(f"{where}.else_position: only a step with a condition branches")
            # Forward only: a campaign always ends.
            if not position < step.else_position <= len(steps):
                raise CampaignInvalid(f"{where}.else_position: a later step, {position + 1}..{len(steps)}")


def spec_of(step: CampaignStep) -> StepSpec:
    """A stored step as the definition it was made from."""
    return StepSpec(name=step.name, template=dict(step.template), channel=step.channel,
                    channel_templates=dict(step.channel_templates or {}), delay_minutes=step.delay_minutes,
                    delay_from=step.delay_from, send_at=step.send_at, window_start=step.window_start,
                    window_end=step.window_end, condition=step.condition, else_position=step.else_position)


def _step_rows(campaign_id: int, steps: list[StepSpec]) -> list[CampaignStep]:
    return [CampaignStep(campaign_id=campaign_id, position=position, name=spec.name.strip(), channel=spec.channel,
                         template=spec.template, channel_templates=spec.channel_templates,
                         delay_minutes=spec.delay_minutes, delay_from=spec.delay_from, send_at=spec.send_at,
                         window_start=spec.window_start, window_end=spec.window_end, condition=spec.condition,
                         else_position=spec.else_position)
            for position, spec in enumerate(steps, start=1)]


async def _checked(name: str, audience: dict[str, Any], steps: list[StepSpec], exits: list[str],
                   caps: dict[str, Any] | None, channel_kinds: Iterable[str], db_session: AsyncSession,
                   campaign_id: int | None = None) -> tuple[str, Audience, CampaignCaps, list[str]]:
    name = name.strip()
    if not name:
        raise CampaignInvalid("give the campaign a name")
    parsed = Audience.from_dict(audience)
    limits = CampaignCaps.from_dict(caps)
    bad = set(exits) - set(EXITS)
    if bad:
        raise CampaignInvalid(f"exits: unknown {', '.join(sorted(bad))}; choose among {', '.join(EXITS)} "
                              "(opt-out and manual exits always apply)")
    validate_steps(steps, channel_kinds)
    same = select(Campaign.id).where(Campaign.name == name)
    if campaign_id is not None:
        same = same.where(Campaign.id != campaign_id)
    if await db_session.scalar(same) is not None:
        raise CampaignInvalid(f"a campaign named {name!r} exists already")
    return name, parsed, limits, sorted(set(exits))


async def create_campaign(name: str, *, audience: dict[str, Any], steps: list[StepSpec], exits: list[str],
                          channel_kinds: Iterable[str], actor: User | None, db_session: AsyncSession,
                          caps: dict[str, Any] | None = None) -> Campaign:
    """A draft campaign; nothing is sent until it is activated."""
    name, parsed, limits, exits = await _checked(name, audience, steps, exits, caps, channel_kinds, db_session)
    campaign = Campaign(name=name, audience=parsed.to_dict(), exits=exits, caps=limits.to_dict(),
                        created_by_user_id=actor.id if actor else None)
    db_session.add(campaign)
    await db_session.flush()
    db_session.add_all(_step_rows(campaign.id, steps))
    await db_session.flush()
    await audit.record("campaign.create", entity_type="campaign", entity_id=campaign.id, actor=actor,
                       db_session=db_session, details={"name": name, "steps": len(steps), "caps": campaign.caps})
    return campaign


async def update_draft(campaign: Campaign, *, name: str, audience: dict[str, Any], steps: list[StepSpec],
                       exits: list[str], channel_kinds: Iterable[str], actor: User | None, db_session: AsyncSession,
                       caps: dict[str, Any] | None = None) -> Campaign:
    """Replace a draft's definition. A campaign that has started is not edited under the
    people in it: copy it, change the copy, and end the old one."""
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignStarted(f"campaign {campaign.name!r} is {campaign.status.value}; only a draft is edited: "
                              "copy it and change the copy")
    name, parsed, limits, exits = await _checked(name, audience, steps, exits, caps, channel_kinds, db_session,
                                                 campaign_id=campaign.id)
    campaign.name, campaign.audience, campaign.exits, campaign.caps = name, parsed.to_dict(), exits, limits.to_dict()
    await db_session.execute(delete(CampaignStep).where(CampaignStep.campaign_id == campaign.id))
    db_session.add_all(_step_rows(campaign.id, steps))
    await db_session.flush()
    await audit.record("campaign.update", entity_type="campaign", entity_id=campaign.id, actor=actor,
                       db_session=db_session, details={"name": name, "steps": len(steps), "caps": campaign.caps})
    return campaign


async def copy_campaign(campaign: Campaign, *, actor: User | None, db_session: AsyncSession) -> Campaign:
    """A new draft with the same audience, steps, exits and caps, named "<name> (copy)"."""
    taken = set((await db_session.scalars(select(Campaign.name).where(
        Campaign.name.startswith(f"{campaign.name} (copy")))).all())
    name = next(n for n in (f"{campaign.name} (copy)", *(f"{campaign.name} (copy {k})" for k in range(2, 1000)))
                if n not in taken)
    copy = Campaign(name=name[:200], audience=dict(campaign.audience), exits=list(campaign.exits),
                    caps=dict(campaign.caps or {}), created_by_user_id=actor.id if actor else None)
    db_session.add(copy)
    await db_session.flush()
    steps = await steps_of(campaign.id, db_session=db_session)
    db_session.add_all(_step_rows(copy.id, [spec_of(step) for step in steps]))
    await db_session.flush()
    await audit.record("campaign.copy", entity_type="campaign", entity_id=copy.id, actor=actor,
                       db_session=db_session, details={"from": campaign.id, "name": copy.name})
    return copy


async def steps_of(campaign_id: int, *, db_session: AsyncSession) -> list[CampaignStep]:
    return list((await db_session.scalars(
        select(CampaignStep).where(CampaignStep.campaign_id == campaign_id).order_by(CampaignStep.position))).all())


def first_due(step: CampaignStep, enrolled_at: dt.datetime) -> dt.datetime:
    return step.send_at if step.send_at is not None else enrolled_at + dt.timedelta(minutes=step.delay_minutes)


async def set_status(campaign: Campaign, status: CampaignStatus, *, actor: User | None,
                     db_session: AsyncSession, progress: Callable[[int], None] | None = None) -> int:
    """Activate (enrolling the audience), pause, resume or end. Returns how many were enrolled."""
    allowed = {CampaignStatus.ACTIVE: (CampaignStatus.DRAFT, CampaignStatus.PAUSED),
               CampaignStatus.PAUSED: (CampaignStatus.ACTIVE,),
               CampaignStatus.ENDED: (CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)}
    if campaign.status not in allowed.get(status, ()):
        raise CampaignInvalid(f"campaign {campaign.name!r} is {campaign.status.value}; it cannot become "
                              f"{status.value}")
    previous, campaign.status = campaign.status, status
    enrolled = 0
    if status == CampaignStatus.ACTIVE:
        enrolled = await enrol_audience(campaign, db_session=db_session, progress=progress)
    elif status == CampaignStatus.ENDED:
        ids = select(Enrolment.id).where(Enrolment.campaign_id == campaign.id,
                                         Enrolment.status == EnrolmentStatus.ACTIVE)
        await _cancel_sends(ids, "campaign ended", db_session=db_session)
        await _mark_exited(ids, "campaign_ended", db_session=db_session)
    await audit.record("campaign.status", entity_type="campaign", entity_id=campaign.id, actor=actor,
                       db_session=db_session, details={"from": previous.value, "to": status.value,
                                                       "enrolled": enrolled})
    return enrolled


async def enrol_audience(campaign: Campaign, *, db_session: AsyncSession, now: dt.datetime | None = None,
                         progress: Callable[[int], None] | None = None, chunk: int = 5000) -> int:
    """Enrol every contact of the audience not enrolled before; the number enrolled.

    Works in chunks of contact ids so a large audience shows progress and never
    holds one huge statement; enrolling twice enrols nobody twice.
    """
    steps = await steps_of(campaign.id, db_session=db_session)
    if not steps:
        raise CampaignInvalid(f"campaign {campaign.name!r} has no steps")
    now = now or utcnow()
    where = Audience.from_dict(campaign.audience).contact_filter()
    not_enrolled = ~exists().where(Enrolment.campaign_id == campaign.id, Enrolment.contact_id == Contact.id)
    total, after = 0, 0
    while True:
        bounds = (await db_session.scalars(
            select(Contact.id).where(Contact.id > after).order_by(Contact.id).limit(chunk))).all()
        if not bounds:
            break
        columns = Enrolment.__table__.c  # typed literals: stored as the ORM stores them (UTC timestamps...)
        chosen = (select(literal(campaign.id, columns.campaign_id.type), Contact.id, literal(1),
                         literal(EnrolmentStatus.ACTIVE, columns.status.type),
                         literal(steps[0].position), literal(first_due(steps[0], now), columns.next_due_at.type),
                         literal(now, columns.enrolled_at.type))
                  .where(Contact.id >= bounds[0], Contact.id <= bounds[-1], not_enrolled, *where))
        result = await db_session.execute(
            insert(Enrolment).from_select(["campaign_id", "contact_id", "rotation", "status", "next_position",
                                           "next_due_at", "enrolled_at"], chosen))
        total += result.rowcount or 0
        after = bounds[-1]
        if progress is not None:
            progress(total)
    return total


async def enrol_contacts(campaign: Campaign, contact_ids: Iterable[int], *, db_session: AsyncSession,
                         now: dt.datetime | None = None) -> int:
    """Enrol chosen contacts (the API, a lead form); those enrolled before are left as they are."""
    steps = await steps_of(campaign.id, db_session=db_session)
    now = now or utcnow()
    enrolled = 0
    for contact_id in dict.fromkeys(contact_ids):
        known = await db_session.scalar(select(Enrolment.id).where(Enrolment.campaign_id == campaign.id,
                                                                   Enrolment.contact_id == contact_id))
        if known is None:
            db_session.add(Enrolment(campaign_id=campaign.id, contact_id=contact_id, rotation=1,
                                     next_position=steps[0].position, next_due_at=first_due(steps[0], now),
                                     enrolled_at=now))
            enrolled += 1
    await db_session.flush()
    return enrolled


async def exit_enrolment(enrolment: Enrolment, reason: str, *, db_session: AsyncSession,
                         actor: User | None = None) -> None:
    """Take the contact out of the campaign; its queued sends are cancelled."""
    if enrolment.status != EnrolmentStatus.ACTIVE:
        return
    await _cancel_sends(select(literal(enrolment.id)), f"left the campaign: {reason}", db_session=db_session)
    enrolment.status, enrolment.exit_reason = EnrolmentStatus.EXITED, reason
    enrolment.exited_at, enrolment.next_due_at = utcnow(), None
    if actor is not None:
        await audit.record("enrolment.exit", entity_type="enrolment", entity_id=enrolment.id, actor=actor,
                           db_session=db_session, details={"reason": reason})


async def exit_on_reply(contact_id: int, *, db_session: AsyncSession) -> int:
    """The contact wrote: their enrolments in campaigns that end on a reply end, and the steps
    those queued and not yet sent (waiting for the morning, say) are cancelled, even when the
    enrolment had just completed. How many enrolments ended."""
    rows = (await db_session.execute(
        select(Enrolment.id, Enrolment.status).join(Campaign, Campaign.id == Enrolment.campaign_id)
        .where(Enrolment.contact_id == contact_id,
               Enrolment.status.in_((EnrolmentStatus.ACTIVE, EnrolmentStatus.COMPLETED)),
               cast(Campaign.exits, String).like('%"reply"%')))).all()
    if not rows:
        return 0
    await _cancel_sends([row_id for row_id, _ in rows], "left the campaign: replied", db_session=db_session)
    ended = [row_id for row_id, status in rows if status == EnrolmentStatus.ACTIVE]
    if ended:
        await _mark_exited(ended, "replied", db_session=db_session)
    return len(ended)


async def _mark_exited(enrolment_ids: Any, reason: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(update(Enrolment).where(Enrolment.id.in_(enrolment_ids))
                             .values(status=EnrolmentStatus.EXITED, exit_reason=reason, exited_at=utcnow(),
                                     next_due_at=None).execution_options(synchronize_session=False))


async def _cancel_sends(enrolment_ids: Any, reason: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.enrolment_id.in_(enrolment_ids), OutboxMessage.status.in_(consent.WAITING))
        .values(status=OutboxStatus.CANCELLED, last_error=reason).execution_options(synchronize_session=False))


# ---- planning ----------------------------------------------------------------

def render(template: dict[str, str], language: str | None, variables: dict[str, str]) -> str:
    """The step's text in the contact's language (the other one when it has none)."""
    preferred = "zh" if (language or "").lower().startswith("zh") else "en"
    text = template.get(preferred) or next(iter(template.values()))
    return string.Formatter().vformat(text, (), {name: variables.get(name, "") for name in TEMPLATE_VARIABLES})


def window_opening(now: dt.datetime, step: CampaignStep, zone: ZoneInfo) -> dt.datetime | None:
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


@dataclass(frozen=True)
class _Route:
    """One of a contact's conversations a step could be sent in."""

    conversation_id: int
    identity_id: int
    account_id: int
    kind: str
    thread: str
    assignee_user_id: int | None


@dataclass
class _Known:
    """What the planner needs about the contacts of one batch, read in a few queries
    (one query per enrolment and step was 60 sends/s; this is the difference)."""

    contacts: dict[int, Contact]
    marketing: dict[int, list[ConsentEvent]]    # each contact's marketing consent events, newest first
    last_message: dict[int, dt.datetime]        # their latest own message (an opt-out not counting)
    last_click: dict[int, dt.datetime]          # their latest button press
    tags: dict[int, set[str]]
    routes: dict[int, list[_Route]]             # newest conversation first
    owner_names: dict[int, str]
    handles: dict[tuple[int, int], str]         # (user, channel account) -> the user's id there
    # Contacts who have had a marketing message (queued or sent); the others' first one
    # says how to stop them.
    marketed: set[int] = field(default_factory=set)

    def wrote_since(self, contact_id: int, since: dt.datetime, *, clicks: bool = False) -> bool:
        at = (self.last_click if clicks else self.last_message).get(contact_id)
        return at is not None and at > since


async def _load(contact_ids: list[int], session: AsyncSession) -> _Known:
    contacts = {c.id: c for c in (await session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))).all()}
    marketing = {contact_id: events for (contact_id, _), events in (await consent.events_of(
        contact_ids, [MessagePurpose.MARKETING], db_session=session)).items()}
    last_message: dict[int, dt.datetime] = {}
    last_click: dict[int, dt.datetime] = {}
    for contact_id, kind, at in (await session.execute(
            select(Identity.contact_id, Message.kind, func.max(Message.created_at))
            .join(Identity, Identity.id == Message.identity_id)
            .where(Identity.contact_id.in_(contact_ids), _engaged((*CUSTOMER_MESSAGE_KINDS, MessageKind.CALLBACK)))
            .group_by(Identity.contact_id, Message.kind))).all():
        latest = last_click if kind == MessageKind.CALLBACK else last_message
        if contact_id not in latest or at > latest[contact_id]:
            latest[contact_id] = at
    tags: dict[int, set[str]] = {}
    for contact_id, tag in (await session.execute(
            select(ContactTag.contact_id, ContactTag.tag).where(ContactTag.contact_id.in_(contact_ids)))).all():
        tags.setdefault(contact_id, set()).add(tag)
    routes: dict[int, list[_Route]] = {}
    for row in (await session.execute(
            select(Conversation.contact_id, Conversation.id, Conversation.identity_id,
                   Conversation.channel_account_id, ChannelAccount.kind, Conversation.external_thread_id,
                   Conversation.assignee_user_id)
            .join(Identity, Identity.id == Conversation.identity_id)
            .join(ChannelAccount, ChannelAccount.id == Conversation.channel_account_id)
            .where(Conversation.contact_id.in_(contact_ids), Identity.reachable.is_(True),
                   ChannelAccount.is_active.is_(True))
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()))).all():
        routes.setdefault(row[0], []).append(_Route(*row[1:]))
    owners = {r.assignee_user_id for rs in routes.values() for r in rs if r.assignee_user_id is not None}
    owner_names, handles = {}, {}
    if owners:
        for user_id, display_name, username in (await session.execute(
                select(User.id, User.display_name, User.username).where(User.id.in_(owners)))).all():
            owner_names[user_id] = display_name or username
        for user_id, account_id, external_id in (await session.execute(
                select(UserHandle.user_id, UserHandle.channel_account_id, UserHandle.external_id)
                .where(UserHandle.user_id.in_(owners)))).all():
            handles[(user_id, account_id)] = external_id
    marketed = set((await session.scalars(
        select(Identity.contact_id).join(OutboxMessage, OutboxMessage.identity_id == Identity.id)
        .where(Identity.contact_id.in_(contact_ids), OutboxMessage.purpose == MessagePurpose.MARKETING,
               OutboxMessage.status != OutboxStatus.CANCELLED).distinct())).all())
    return _Known(contacts, marketing, last_message, last_click, tags, routes, owner_names, handles, marketed)


@dataclass
class _Send:
    enrolment: Enrolment
    step: CampaignStep
    route: _Route
    text: str
    refused: str | None  # no consent when scheduled: recorded cancelled, with the reason


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
                      session: AsyncSession) -> dict[int, _CapState]:
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
            await session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
            today = await session.scalar(select(func.count()).select_from(
                sent.where(OutboxMessage.created_at >= midnight.astimezone(dt.UTC)).subquery())) or 0
        sent_to: dict[int, list[dt.datetime]] = {}
        if caps.per_contact_days is not None:
            since = now - dt.timedelta(days=caps.per_contact_days)
            for contact_id, at in (await session.execute(
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
            report = await self.run_once(now)
            for name in ("planned", "queued", "skipped", "completed", "waiting", "capped"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            for reason, count in report.exited.items():
                total.exited[reason] = total.exited.get(reason, 0) + count
            if report.planned < self.batch_size:
                return total
            # Let the dispatcher and the webhooks at the database between batches
            # (on SQLite there is one writer at a time).
            await asyncio.sleep(0.01)

    async def run_once(self, now: dt.datetime | None = None) -> PlanReport:
        """Plan one batch of due enrolments, in one transaction."""
        now = now or utcnow()
        report = PlanReport()
        async with self.sessions() as session, session.begin():
            due = (await session.scalars(
                select(Enrolment)
                .join(Campaign, Campaign.id == Enrolment.campaign_id)
                .where(Enrolment.status == EnrolmentStatus.ACTIVE, Enrolment.next_due_at <= now,
                       Campaign.status == CampaignStatus.ACTIVE)
                .order_by(Enrolment.next_due_at, Enrolment.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True, of=Enrolment))).all()
            if not due:
                return report
            campaigns: dict[int, tuple[Campaign, dict[int, CampaignStep]]] = {}
            for campaign_id in {e.campaign_id for e in due}:
                campaign = await session.get(Campaign, campaign_id)
                steps = await steps_of(campaign_id, db_session=session)
                campaigns[campaign_id] = (campaign, {s.position: s for s in steps})
            contact_ids = sorted({e.contact_id for e in due})
            known = await _load(contact_ids, session)
            capped = await _cap_states([c for c, _ in campaigns.values()], contact_ids, now,
                                       zone_named(None, self.default_timezone), session)
            sends: list[_Send] = []
            for enrolment in due:
                campaign, steps = campaigns[enrolment.campaign_id]
                report.planned += 1
                await self._advance(enrolment, campaign, steps, known, now, report, sends,
                                    capped.get(campaign.id))
            await _enqueue(sends, known, now, session)
        if report.queued and self.on_enqueued is not None:
            self.on_enqueued()
        if report.planned:
            log.info("nurture planner: %d due, %d queued, %d skipped, %d held by caps, %d completed, exits %s",
                     report.planned, report.queued, report.skipped, report.capped, report.completed, report.exited)
        return report

    async def _advance(self, enrolment: Enrolment, campaign: Campaign, steps: dict[int, CampaignStep],
                       known: _Known, now: dt.datetime, report: PlanReport, sends: list[_Send],
                       caps: _CapState | None = None) -> None:
        contact = known.contacts[enrolment.contact_id]
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
            if await self._queue(enrolment, campaign, step, contact, known, sends):
                report.queued += 1
                if caps is not None:
                    caps.count(contact.id, now)
            else:
                report.skipped += 1
            enrolment.last_step_at = now
            self._move_to(enrolment, steps.get(step.position + 1), now)

    @staticmethod
    def _exit(enrolment: Enrolment, reason: str, now: dt.datetime) -> None:
        # Its earlier steps' sends have gone or are cancelled by the opt-out itself; the
        # manual exit (exit_enrolment) is the one that cancels queued sends.
        enrolment.status, enrolment.exit_reason = EnrolmentStatus.EXITED, reason
        enrolment.exited_at, enrolment.next_due_at = now, None

    def _move_to(self, enrolment: Enrolment, step: CampaignStep | None, now: dt.datetime) -> None:
        if step is None:
            enrolment.next_position, enrolment.next_due_at = None, now
            return
        enrolment.next_position = step.position
        if step.send_at is not None:
            enrolment.next_due_at = step.send_at
        else:
            base = enrolment.enrolled_at if step.delay_from == "enrolment" else now
            enrolment.next_due_at = base + dt.timedelta(minutes=step.delay_minutes)

    def _zone(self, contact: Contact) -> ZoneInfo:
        return zone_named(contact.timezone, self.default_timezone)

    @staticmethod
    def _exit_reason(enrolment: Enrolment, campaign: Campaign, contact: Contact, known: _Known) -> str | None:
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
    def _condition_met(condition: dict[str, Any], enrolment: Enrolment, contact: Contact, known: _Known) -> bool:
        since = enrolment.last_step_at or enrolment.enrolled_at
        if "replied" in condition and known.wrote_since(contact.id, since) != bool(condition["replied"]):
            return False
        if "clicked" in condition and \
                known.wrote_since(contact.id, since, clicks=True) != bool(condition["clicked"]):
            return False
        if "stages" in condition and contact.stage not in condition["stages"]:
            return False
        return not ("tag" in condition and condition["tag"] not in known.tags.get(contact.id, set()))

    async def _queue(self, enrolment: Enrolment, campaign: Campaign, step: CampaignStep, contact: Contact,
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


async def _enqueue(sends: list[_Send], known: _Known, now: dt.datetime, session: AsyncSession) -> None:
    """The batch's step sends into the outbox, with the copies kept in their conversations, in a
    few statements. A key queued before (it cannot be, but a key is the last word) is left alone."""
    if not sends:
        return
    keys = {id(s): f"nurture:{s.enrolment.id}:{s.step.id}:{s.enrolment.rotation}" for s in sends}
    taken = set((await session.scalars(
        select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_(list(keys.values()))))).all())
    sends = [s for s in sends if keys[id(s)] not in taken]
    going = [s for s in sends if s.refused is None]
    history_ids: list[int] = []
    if going:
        history_ids = list((await session.scalars(
            insert(Message).returning(Message.id, sort_by_parameter_order=True),
            [{"conversation_id": s.route.conversation_id, "channel_account_id": s.route.account_id,
              "identity_id": s.route.identity_id, "direction": Direction.OUTBOUND, "kind": MessageKind.TEXT,
              "text": s.text, "attachments": [], "created_at": now, "processed_at": now,
              "processing_attempts": 0} for s in going])).all())
        await session.execute(update(Conversation)
                              .where(Conversation.id.in_({s.route.conversation_id for s in going}))
                              .values(last_message_at=now).execution_options(synchronize_session=False))
    history = dict(zip((id(s) for s in going), history_ids))
    rows = []
    for s in sends:
        options = {}
        sender = known.handles.get((s.route.assignee_user_id or 0, s.route.account_id))
        if sender is not None:  # platforms that send only as a person (WeCom) send as the owner
            options["sender"] = sender
        rows.append({
            "idempotency_key": keys[id(s)], "channel_account_id": s.route.account_id, "recipient": s.route.thread,
            "purpose": MessagePurpose.MARKETING,
            "payload": OutboundMessage(s.route.thread, s.text, options=options).to_payload(),
            "status": OutboxStatus.PENDING if s.refused is None else OutboxStatus.CANCELLED,
            "last_error": s.refused, "attempts": 0, "next_attempt_at": now, "created_at": now,
            "conversation_id": s.route.conversation_id, "identity_id": s.route.identity_id,
            "message_id": history.get(id(s)), "enrolment_id": s.enrolment.id, "campaign_step_id": s.step.id})
    await insert_many_ignoring_conflict(session, OutboxMessage.__table__, rows,
                                        conflict_columns=["idempotency_key"], returning=("id",))


def _engaged(kinds: Iterable[MessageKind]) -> Any:
    """The customer's own messages of these kinds, an opt-out ("STOP") not counting as a reply."""
    return and_(Message.direction == Direction.INBOUND, Message.kind.in_(tuple(kinds)),
                ~func.coalesce(cast(Message.intents, String), "").like('%"opt_out"%'))


# ---- results -------------------------------------------------------------------

async def results(campaign: Campaign, *, db_session: AsyncSession) -> dict[str, Any]:
    """Enrolled, sent, delivered, replied, opted out and converted: for the campaign and each step.

    A step's replies and opt-outs are those that came after its send; its
    conversions are enrolments that left as converted after it.
    """
    counts = dict((await db_session.execute(
        select(Enrolment.status, func.count()).where(Enrolment.campaign_id == campaign.id)
        .group_by(Enrolment.status))).all())
    exits = dict((await db_session.execute(
        select(Enrolment.exit_reason, func.count())
        .where(Enrolment.campaign_id == campaign.id, Enrolment.exit_reason.is_not(None))
        .group_by(Enrolment.exit_reason))).all())
    # Correlated two levels down, so named explicitly.
    contact_identities = select(Identity.id).where(Identity.contact_id == Enrolment.contact_id).correlate(Enrolment)
    went = OutboxMessage.status.in_((OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.IN_DOUBT))
    replied_after = exists().where(Message.identity_id.in_(contact_identities), _engaged(CUSTOMER_MESSAGE_KINDS),
                                   Message.created_at > OutboxMessage.sent_at)
    opted_out_after = exists().where(ConsentEvent.contact_id == Enrolment.contact_id,
                                     ConsentEvent.purpose == MessagePurpose.MARKETING,
                                     ConsentEvent.granted.is_(False),
                                     ConsentEvent.created_at > func.coalesce(OutboxMessage.sent_at,
                                                                             OutboxMessage.created_at))
    converted_after = and_(Enrolment.exit_reason == "converted", Enrolment.exited_at > OutboxMessage.created_at)

    def count_if(condition: Any) -> Any:
        return func.count(func.nullif(func.coalesce(condition, False), False))

    rows = (await db_session.execute(
        select(CampaignStep.position, CampaignStep.name, func.count(OutboxMessage.id),
               count_if(went), count_if(OutboxMessage.status == OutboxStatus.SENT),
               count_if(or_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.status == OutboxStatus.HELD)),
               count_if(OutboxMessage.status == OutboxStatus.CANCELLED),
               count_if(and_(OutboxMessage.status == OutboxStatus.SENT, replied_after)),
               count_if(and_(went, opted_out_after)), count_if(and_(went, converted_after)))
        .select_from(CampaignStep)
        .outerjoin(OutboxMessage, OutboxMessage.campaign_step_id == CampaignStep.id)
        .outerjoin(Enrolment, Enrolment.id == OutboxMessage.enrolment_id)
        .where(CampaignStep.campaign_id == campaign.id)
        .group_by(CampaignStep.position, CampaignStep.name).order_by(CampaignStep.position))).all()
    steps = [{"position": position, "name": name, "queued": queued, "sent": sent, "delivered": delivered,
              "waiting": waiting, "cancelled": cancelled, "replied": replied, "opted_out": opted_out,
              "converted": converted}
             for position, name, queued, sent, delivered, waiting, cancelled, replied, opted_out, converted in rows]
    return {
        "campaign_id": campaign.id, "name": campaign.name, "status": campaign.status.value,
        "enrolled": sum(counts.values()),
        "active": counts.get(EnrolmentStatus.ACTIVE, 0),
        "completed": counts.get(EnrolmentStatus.COMPLETED, 0),
        "sent": sum(s["sent"] for s in steps), "delivered": sum(s["delivered"] for s in steps),
        "replied": await _replied_enrolments(campaign, db_session),
        "opted_out": exits.get("opted_out", 0), "converted": exits.get("converted", 0),
        "exits": exits, "steps": steps,
    }


async def _replied_enrolments(campaign: Campaign, session: AsyncSession) -> int:
    """Enrolments whose contact wrote after enrolling (when replies do not end the campaign)."""
    return await session.scalar(
        select(func.count()).select_from(Enrolment)
        .where(Enrolment.campaign_id == campaign.id,
               exists().where(Message.identity_id.in_(select(Identity.id)
                                                      .where(Identity.contact_id == Enrolment.contact_id)
                                                      .correlate(Enrolment)),
                              _engaged(CUSTOMER_MESSAGE_KINDS), Message.created_at > Enrolment.enrolled_at))) or 0
