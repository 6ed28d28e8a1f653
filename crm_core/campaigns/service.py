"""Campaigns as an operator runs them: create, edit a draft, copy, activate (enrolling the
audience), pause, resume, end. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.campaigns.audience import Audience, cancel_sends, enrol_audience, mark_exited
from crm_core.campaigns.definitions import (
    EXITS,
    CampaignCaps,
    CampaignInvalid,
    CampaignStarted,
    StepSpec,
    spec_of,
    step_rows,
    steps_of,
    validate_steps,
)
from crm_core.models import Campaign, CampaignStatus, CampaignStep, Enrolment, EnrolmentStatus, User


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
    db_session.add_all(step_rows(campaign.id, steps))
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
    db_session.add_all(step_rows(campaign.id, steps))
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
    db_session.add_all(step_rows(copy.id, [spec_of(step) for step in steps]))
    await db_session.flush()
    await audit.record("campaign.copy", entity_type="campaign", entity_id=copy.id, actor=actor,
                       db_session=db_session, details={"from": campaign.id, "name": copy.name})
    return copy


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
        await cancel_sends(ids, "campaign ended", db_session=db_session)
        await mark_exited(ids, "campaign_ended", db_session=db_session)
    await audit.record("campaign.status", entity_type="campaign", entity_id=campaign.id, actor=actor,
                       db_session=db_session, details={"from": previous.value, "to": status.value,
                                                       "enrolled": enrolled})
    return enrolled
