"""Who is in a campaign: the audience (a segment of contacts), enrolling it, and the exits
(a reply, leaving by hand, the campaign ending) that stop a person's next steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, bindparam, cast, exists, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.campaigns.definitions import SENTIMENTS, CampaignInvalid, first_due, steps_of
from crm_core.consent import service as consent
from crm_core.contacts.tags import add_by_rule
from crm_core.db import utcnow
from crm_core.models import (
    Campaign,
    ChannelAccount,
    ConsentEvent,
    Contact,
    ContactTag,
    Direction,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Lead,
    Message,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
    User,
)


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


# Enrolled at once, at least this many: analysed at once on PostgreSQL (see enrol_audience).
ANALYSE_AFTER = 5_000


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
    if total >= ANALYSE_AFTER and (await db_session.connection()).dialect.name == "postgresql":
        # PostgreSQL's autovacuum analyses a table a minute or so after this much of it changed.
        # Meanwhile its planner guessed a few due enrolments and read and sorted all of them for
        # each batch it claimed (40 ms a batch of 500 at 100,000): the campaign's first minute.
        # Analysed with the rows this transaction enrolled; seen by all once it commits.
        await db_session.execute(text("ANALYZE enrolment"))
    return total


async def tag_enrolled(rules: dict[str, list[str]], *, db_session: AsyncSession, limit: int = 1000) -> int:
    """Tags by campaign ({tag: [campaign names]}): each contact enrolled in one of the campaigns
    who lacks the tag gets it, audited with the campaign as the rule; how many were tagged."""
    tagged = 0
    for tag, names in rules.items():
        rows = (await db_session.execute(
            select(Enrolment.contact_id, Campaign.name).join(Campaign, Campaign.id == Enrolment.campaign_id)
            .where(Campaign.name.in_(names), ~exists().where(ContactTag.contact_id == Enrolment.contact_id,
                                                             ContactTag.tag == tag))
            .order_by(Enrolment.id).limit(limit - tagged))).all()
        for contact_id, name in dict(rows).items():
            tagged += len(await add_by_rule(contact_id, [tag], f"campaign {name}", db_session=db_session))
        if tagged >= limit:
            break
    return tagged


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
    await cancel_sends(select(literal(enrolment.id)), f"left the campaign: {reason}", db_session=db_session)
    enrolment.status, enrolment.exit_reason = EnrolmentStatus.EXITED, reason
    enrolment.exited_at, enrolment.next_due_at = utcnow(), None
    if actor is not None:
        await audit.record("enrolment.exit", entity_type="enrolment", entity_id=enrolment.id, actor=actor,
                           db_session=db_session, details={"reason": reason})


# At the end of each of the worker's transactions: built once.
_ENDING_ON_REPLY = (
    select(Enrolment.id, Enrolment.status).join(Campaign, Campaign.id == Enrolment.campaign_id)
    .where(Enrolment.contact_id.in_(bindparam("contact_ids", expanding=True)),
           Enrolment.status.in_((EnrolmentStatus.ACTIVE, EnrolmentStatus.COMPLETED)),
           cast(Campaign.exits, String).like('%"reply"%'))
    # A planner moving these enrolments on holds them until it commits: the reply waits, then
    # sees the steps it queued (PostgreSQL; on SQLite the worker's transaction holds the write lock).
    .order_by(Enrolment.id).with_for_update(of=Enrolment))


async def exit_on_reply(contact_ids: Collection[int], *, db_session: AsyncSession) -> int:
    """These contacts wrote: their enrolments in campaigns that end on a reply end, and the steps
    those queued and not yet sent (waiting for the morning, say) are cancelled, even when the
    enrolment had just completed. How many enrolments ended."""
    if not contact_ids:
        return 0
    rows = (await db_session.execute(_ENDING_ON_REPLY, {"contact_ids": sorted(contact_ids)})).all()
    if not rows:
        return 0
    await cancel_sends([row_id for row_id, _ in rows], "left the campaign: replied", db_session=db_session)
    ended = [row_id for row_id, status in rows if status == EnrolmentStatus.ACTIVE]
    if ended:
        await mark_exited(ended, "replied", db_session=db_session)
    return len(ended)


async def mark_exited(enrolment_ids: Any, reason: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(update(Enrolment).where(Enrolment.id.in_(enrolment_ids))
                             .values(status=EnrolmentStatus.EXITED, exit_reason=reason, exited_at=utcnow(),
                                     next_due_at=None).execution_options(synchronize_session=False))


async def cancel_sends(enrolment_ids: Any, reason: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.enrolment_id.in_(enrolment_ids), OutboxMessage.status.in_(consent.WAITING))
        .values(status=OutboxStatus.CANCELLED, last_error=reason).execution_options(synchronize_session=False))
