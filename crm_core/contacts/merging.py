"""Merging two contacts by hand: an operator knows two records are one person that no
platform key joined (a phone number written two ways, a colleague's referral).

`preview` says what would move and what clashes, without changing anything;
`merge` does it in the caller's transaction. Everything of the source moves to the
target: identities with their conversations (and notes), contact details, the whole
consent ledger (the newest event still decides), leads, campaign enrolments, tags,
satisfaction surveys, event registrations, what the bot remembers. Where the target
already has the one thing a person may have one of, the target's stays:

- both have an open lead: the target's stays open (with the higher score); the
  source's is closed with a "merged" event naming it;
- both are in the same campaign: the source's enrolment ends ("merged");
- both registered for the same event, both remember a bot conversation: the
  target's is kept.

The source is marked merged into the target (it is reached through it, as after an
automatic link), and the audit log has the whole account. `linking.unlink_identity`
can take an identity back out afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import (
    BotSession,
    ConsentEvent,
    ConsentRequest,
    Contact,
    ContactKey,
    ContactTag,
    Conversation,
    CsatSurvey,
    Enrolment,
    EnrolmentStatus,
    EventRegistration,
    Identity,
    Lead,
    LeadEvent,
    User,
)


class MergeRefused(ValueError):
    """Two contacts that cannot be merged; the message says why."""


@dataclass
class MergePlan:
    source_id: int
    target_id: int
    moves: dict[str, int] = field(default_factory=dict)     # what moves, per kind, how many
    conflicts: list[str] = field(default_factory=list)      # what the target keeps, in words
    result: dict[str, Any] = field(default_factory=dict)    # the target's fields after the merge

    def as_dict(self) -> dict[str, Any]:
        return {"source_contact_id": self.source_id, "target_contact_id": self.target_id, "moves": self.moves,
                "conflicts": self.conflicts, "result": self.result}


_FILLED = ("display_name", "language", "source", "timezone")
_MOVED = (("identities", Identity), ("conversations", Conversation), ("contact_details", ContactKey),
          ("consent_events", ConsentEvent), ("consent_requests", ConsentRequest), ("satisfaction_surveys", CsatSurvey))


async def _pair(source_id: int, target_id: int, db_session: AsyncSession) -> tuple[Contact, Contact]:
    if source_id == target_id:
        raise MergeRefused("a contact cannot be merged into itself")
    contacts = {c.id: c for c in (await db_session.scalars(
        select(Contact).where(Contact.id.in_((source_id, target_id))).with_for_update())).all()}
    for contact_id in (source_id, target_id):
        contact = contacts.get(contact_id)
        if contact is None:
            raise MergeRefused(f"no contact {contact_id}")
        if contact.merged_into_id is not None:
            raise MergeRefused(f"contact {contact_id} was merged into {contact.merged_into_id} already; "
                               f"use that one")
        if contact.is_staff:
            raise MergeRefused(f"contact {contact_id} is a colleague, not a customer")
    return contacts[source_id], contacts[target_id]


@dataclass
class _Survey:
    """What both contacts hold that a merge must know, read once."""

    source: Contact
    target: Contact
    source_lead: Lead | None
    target_lead: Lead | None
    shared_campaigns: list[int]
    shared_events: list[int]
    plan: MergePlan


async def _survey(source_id: int, target_id: int, db_session: AsyncSession) -> _Survey:
    source, target = await _pair(source_id, target_id, db_session)
    plan = MergePlan(source.id, target.id)
    for name, model in _MOVED:
        plan.moves[name] = await db_session.scalar(
            select(func.count()).select_from(model).where(model.contact_id == source.id)) or 0
    source_lead, target_lead = (await _open_lead(source.id, db_session), await _open_lead(target.id, db_session))
    plan.moves["leads"] = await db_session.scalar(select(func.count()).select_from(Lead).where(
        Lead.contact_id == source.id)) or 0
    if source_lead is not None and target_lead is not None:
        plan.conflicts.append(f"both have an open lead: #{target_lead.id} stays open, #{source_lead.id} is closed "
                              "as merged")
    shared_campaigns = await _shared(Enrolment, Enrolment.campaign_id, source.id, target.id, db_session)
    plan.moves["enrolments"] = await db_session.scalar(select(func.count()).select_from(Enrolment).where(
        Enrolment.contact_id == source.id, Enrolment.campaign_id.not_in(shared_campaigns))) or 0
    if shared_campaigns:
        plan.conflicts.append(f"both are in campaign(s) {', '.join(map(str, shared_campaigns))}: the source's "
                              "enrolment ends")
    shared_events = await _shared(EventRegistration, EventRegistration.event_id, source.id, target.id, db_session)
    plan.moves["event_registrations"] = await db_session.scalar(select(func.count()).select_from(EventRegistration)
                                                                .where(EventRegistration.contact_id == source.id,
                                                                       EventRegistration.event_id.not_in(shared_events))) \
        or 0
    if shared_events:
        plan.conflicts.append(f"both registered for event(s) {', '.join(map(str, shared_events))}: the target's "
                              "registration stays")
    source_tags = set((await db_session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == source.id))).all())
    target_tags = set((await db_session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == target.id))).all())
    plan.moves["tags"] = len(source_tags - target_tags)
    plan.result = {name: getattr(target, name) or getattr(source, name) for name in _FILLED}
    plan.result.update(stage=target.stage, tags=sorted(source_tags | target_tags))
    return _Survey(source, target, source_lead, target_lead, shared_campaigns, shared_events, plan)


async def preview(source_id: int, target_id: int, *, db_session: AsyncSession) -> MergePlan:
    """What `merge` would do; changes nothing."""
    return (await _survey(source_id, target_id, db_session)).plan


async def merge(source_id: int, target_id: int, *, actor: User | None, db_session: AsyncSession) -> MergePlan:
    """Merge contact `source_id` into `target_id` (see the module's docstring)."""
    survey = await _survey(source_id, target_id, db_session)
    source, target = survey.source, survey.target
    source_lead, target_lead = survey.source_lead, survey.target_lead
    shared_campaigns, shared_events = survey.shared_campaigns, survey.shared_events
    for name in _FILLED:
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))

    if source_lead is not None and target_lead is not None:
        target_lead.score = max(target_lead.score, source_lead.score)
        target_lead.details = {**(source_lead.details or {}), **(target_lead.details or {})}
        source_lead.status = "closed"
        # The leads' history, written here as everything else of the person is moved here.
        actor_id = actor.id if actor else None
        db_session.add_all([
            LeadEvent(lead_id=source_lead.id, kind="merged", details={"into_lead_id": target_lead.id},
                      actor_user_id=actor_id),
            LeadEvent(lead_id=target_lead.id, kind="merged_in", details={"lead_id": source_lead.id},
                      actor_user_id=actor_id)])
        await db_session.flush()

    if shared_campaigns:
        await db_session.execute(
            update(Enrolment).where(Enrolment.contact_id == source.id, Enrolment.campaign_id.in_(shared_campaigns),
                                    Enrolment.status == EnrolmentStatus.ACTIVE)
            .values(status=EnrolmentStatus.EXITED, exit_reason="merged", exited_at=utcnow(), next_due_at=None)
            .execution_options(synchronize_session=False))
    target_tags = select(ContactTag.tag).where(ContactTag.contact_id == target.id).scalar_subquery()
    await db_session.execute(delete(ContactTag).where(ContactTag.contact_id == source.id,
                                                      ContactTag.tag.in_(target_tags))
                             .execution_options(synchronize_session=False))
    if await db_session.scalar(select(BotSession.id).where(BotSession.contact_id == target.id)) is not None:
        await db_session.execute(delete(BotSession).where(BotSession.contact_id == source.id)
                                 .execution_options(synchronize_session=False))

    moves: list[tuple[Any, list[Any]]] = [(model, []) for _, model in _MOVED]
    moves += [(Lead, []), (ContactTag, []), (BotSession, []),
              (Enrolment, [Enrolment.campaign_id.not_in(shared_campaigns)] if shared_campaigns else []),
              (EventRegistration, [EventRegistration.event_id.not_in(shared_events)] if shared_events else [])]
    for model, extra in moves:
        await db_session.execute(update(model).where(model.contact_id == source.id, *extra)
                                 .values(contact_id=target.id).execution_options(synchronize_session=False))
    source.merged_into_id = target.id
    await db_session.flush()
    await audit.record("contact.merge", entity_type="contact", entity_id=target.id, actor=actor,
                       details=survey.plan.as_dict(), db_session=db_session)
    return survey.plan


async def _open_lead(contact_id: int, db_session: AsyncSession) -> Lead | None:
    return await db_session.scalar(select(Lead).where(Lead.contact_id == contact_id, Lead.status == "open"))


async def _shared(model: Any, column: Any, source_id: int, target_id: int, db_session: AsyncSession) -> list[int]:
    """Values of `column` (a campaign, an event) both contacts have rows for."""
    both = select(column).where(model.contact_id == target_id)
    return sorted(set((await db_session.scalars(select(column).where(model.contact_id == source_id,
                                                                    column.in_(both)))).all()))
