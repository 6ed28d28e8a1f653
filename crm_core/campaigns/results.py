"""A campaign's results: per step, how many were queued, sent, delivered, waiting, cancelled,
and how many people replied, opted out or converted after it. Delivered counts only what reached
the customer: a WeCom 群发 task still waiting for the rep's Send is counted apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.planning import engaged
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    Campaign,
    CampaignStep,
    ConsentEvent,
    Delivery,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Message,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)


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
    replied_after = exists().where(Message.identity_id.in_(contact_identities), engaged(CUSTOMER_MESSAGE_KINDS),
                                   Message.created_at > OutboxMessage.sent_at)
    opted_out_after = exists().where(ConsentEvent.contact_id == Enrolment.contact_id,
                                     ConsentEvent.purpose == MessagePurpose.MARKETING,
                                     ConsentEvent.granted.is_(False),
                                     ConsentEvent.created_at > func.coalesce(OutboxMessage.sent_at,
                                                                             OutboxMessage.created_at))
    converted_after = and_(Enrolment.exit_reason == "converted", Enrolment.exited_at > OutboxMessage.created_at)

    def count_if(condition: Any) -> Any:
        return func.count(func.nullif(func.coalesce(condition, False), False))

    waits_for_a_person = OutboxMessage.accepted_as == Delivery.AWAITING_CONFIRMATION
    awaiting = and_(OutboxMessage.status == OutboxStatus.SENT, waits_for_a_person)
    delivered = and_(OutboxMessage.status == OutboxStatus.SENT,
                     or_(OutboxMessage.accepted_as.is_(None), ~waits_for_a_person))

    rows = (await db_session.execute(
        select(CampaignStep.position, CampaignStep.name, func.count(OutboxMessage.id),
               count_if(went), count_if(delivered), count_if(awaiting),
               count_if(or_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.status == OutboxStatus.HELD)),
               count_if(OutboxMessage.status == OutboxStatus.CANCELLED),
               count_if(and_(OutboxMessage.status == OutboxStatus.SENT, replied_after)),
               count_if(and_(went, opted_out_after)), count_if(and_(went, converted_after)))
        .select_from(CampaignStep)
        .outerjoin(OutboxMessage, OutboxMessage.campaign_step_id == CampaignStep.id)
        .outerjoin(Enrolment, Enrolment.id == OutboxMessage.enrolment_id)
        .where(CampaignStep.campaign_id == campaign.id)
        .group_by(CampaignStep.position, CampaignStep.name).order_by(CampaignStep.position))).all()
    steps = [{"position": position, "name": name, "queued": queued, "sent": sent, "delivered": delivered_n,
              "awaiting_confirmation": awaiting_n, "waiting": waiting, "cancelled": cancelled, "replied": replied,
              "opted_out": opted_out, "converted": converted}
             for position, name, queued, sent, delivered_n, awaiting_n, waiting, cancelled, replied, opted_out,
             converted in rows]
    return {
        "campaign_id": campaign.id, "name": campaign.name, "status": campaign.status.value,
        "enrolled": sum(counts.values()),
        "active": counts.get(EnrolmentStatus.ACTIVE, 0),
        "completed": counts.get(EnrolmentStatus.COMPLETED, 0),
        "sent": sum(s["sent"] for s in steps), "delivered": sum(s["delivered"] for s in steps),
        "awaiting_confirmation": sum(s["awaiting_confirmation"] for s in steps),
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
                              engaged(CUSTOMER_MESSAGE_KINDS), Message.created_at > Enrolment.enrolled_at))) or 0
