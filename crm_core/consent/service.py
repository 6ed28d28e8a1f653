"""Consent: an append-only ledger, the state derived from it, and its use.

Every grant or withdrawal is a `ConsentEvent` with its source and evidence
(the message and words, the unsubscribe link, the form). The state for a
purpose on a channel is the newest event for that purpose on that channel or
on all channels. Marketing needs a grant; service messages (an answer to the
customer's own question) need none, but a service withdrawal stops them too.

An opt-out arrives as an inbound message carrying an `opt_out` attachment
(email's one-click List-Unsubscribe today; keywords such as STOP / 退订 with
the NLP issue): `apply_opt_outs` records it and cancels every pending
marketing send to the contact. The dispatcher checks again at send time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crm_core import catalogues
from crm_core.db import holds_changes_to, utcnow
from crm_core.models import (
    ConsentEvent,
    ConsentRequest,
    Contact,
    Enrolment,
    EnrolmentStatus,
    Identity,
    Message,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)
from crm_core.sql import among

WAITING = (OutboxStatus.PENDING, OutboxStatus.HELD)
# A person's "yes" to a double opt-in question.
CONFIRMATION_WORDS = re.compile(r"^\s*(yes|y|ok|okay|confirm|i confirm|是|是的|确认|好|好的|同意|可以)\s*[.!。！]*\s*$", re.I)
REFUSAL_WORDS = re.compile(r"^\s*(no|n|nope|no thanks|不|否|不要|不用|不需要|不同意)\s*[.!。！]*\s*$", re.I)


class EventFact(NamedTuple):
    """What deciding reads of a ledger event: columns, not the ORM object (the planner and the
    dispatcher read the ledgers of 500 contacts a batch; nothing changes an event)."""

    id: int
    contact_id: int
    purpose: MessagePurpose
    channel: str | None
    granted: bool
    source: str
    created_at: dt.datetime


# Built once (the dispatcher asks at every group of sends): the ledgers of some contacts, newest first.
_FACTS_OF = (select(*(getattr(ConsentEvent, name) for name in EventFact._fields))
             .where(among(ConsentEvent.contact_id, name="contact_ids"),
                    ConsentEvent.purpose.in_(bindparam("purposes", expanding=True)))
             .order_by(ConsentEvent.id.desc()))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    event: ConsentEvent | EventFact | None
    purpose: MessagePurpose

    @property
    def reason(self) -> str:
        """Why, in words (written when asked: a campaign's send asks only whether it may go)."""
        if self.event is not None:
            when = self.event.created_at.strftime("%Y-%m-%d %H:%M UTC")
            verb = "granted" if self.event.granted else "withdrawn"
            return f"{self.purpose.value} consent {verb} {when} via {self.event.source}"
        if self.purpose == MessagePurpose.MARKETING:
            return "no marketing consent recorded for this contact"
        return "service messages need no consent"


async def record(contact_id: int, *, purpose: MessagePurpose, granted: bool, source: str,
                 channel: str | None = None, evidence: dict[str, Any] | None = None, actor_label: str = "system",
                 db_session: AsyncSession) -> ConsentEvent:
    event = ConsentEvent(contact_id=contact_id, purpose=purpose, channel=channel, granted=granted, source=source,
                         evidence=evidence or {}, actor_label=actor_label)
    db_session.add(event)
    await db_session.flush()
    return event


async def decide(contact_id: int, *, purpose: MessagePurpose, channel: str, db_session: AsyncSession) -> Decision:
    """May this contact be sent a message of this purpose on this channel now?"""
    latest = await db_session.scalar(
        select(ConsentEvent)
        .where(ConsentEvent.contact_id == contact_id, ConsentEvent.purpose == purpose,
               or_(ConsentEvent.channel.is_(None), ConsentEvent.channel == channel))
        .order_by(ConsentEvent.id.desc()).limit(1))
    return decide_from([latest] if latest is not None else [], purpose=purpose, channel=channel)


async def events_of(contact_ids: Iterable[int], purposes: Iterable[MessagePurpose], *,
                    db_session: AsyncSession | AsyncConnection) -> dict[tuple[int, MessagePurpose], list[EventFact]]:
    """Many contacts' ledgers at once, for `decide_from`: (contact, purpose) -> events, newest first."""
    contact_ids, purposes = sorted(set(contact_ids)), sorted(set(purposes))
    found: dict[tuple[int, MessagePurpose], list[EventFact]] = {}
    if not contact_ids or not purposes:
        return found
    for row in (await db_session.execute(_FACTS_OF, {"contact_ids": contact_ids, "purposes": purposes})).all():
        event = EventFact(*row)
        found.setdefault((event.contact_id, event.purpose), []).append(event)  # the column's type gives the member
    return found


def decide_from(events: Sequence[ConsentEvent | EventFact], *, purpose: MessagePurpose, channel: str) -> Decision:
    """`decide` on events read already: the contact's events for `purpose`, newest first."""
    latest = next((e for e in events if e.channel is None or e.channel == channel), None)
    if latest is not None:
        return Decision(latest.granted, latest, purpose)
    return Decision(purpose != MessagePurpose.MARKETING, None, purpose)


# The intent of a message that may be an opt-out: not recorded; the customer is asked to confirm.
UNSURE_OPT_OUT = "opt_out_unsure"


def opt_out_requests(message: Message) -> list[dict[str, Any]]:
    """The opt-outs a stored message carries: `opt_out` attachments (an email one-click
    unsubscribe...), or else the opt_out intent in the customer's words."""
    requests = [item for item in message.attachments or [] if isinstance(item, dict) and item.get("type") == "opt_out"]
    if "opt_out" in (message.intents or []) and not requests:
        requests.append({"type": "opt_out", "purpose": MessagePurpose.MARKETING.value, "source": "message"})
    return requests


async def apply_opt_outs(message: Message, contact: Contact, channel: str, *, db_session: AsyncSession) -> int:
    """Record the opt-outs a stored message carries; cancel pending marketing. Rows cancelled."""
    cancelled = 0
    for item in opt_out_requests(message):
        purpose = MessagePurpose(item.get("purpose", MessagePurpose.MARKETING.value))
        await record(contact.id, purpose=purpose, granted=False, source=str(item.get("source", "message")),
                     channel=item.get("channel_only"),  # an opt-out covers every channel unless it says otherwise
                     evidence={"message_id": message.id, "channel": channel, "words": message.text},
                     db_session=db_session)
        cancelled += await cancel_pending(contact.id, purpose, reason=f"{purpose.value} consent withdrawn "
                                          f"({item.get('source', 'message')})", db_session=db_session)
    return cancelled


async def newly_withdrawn(contact_id: int, message_id: int, *, db_session: AsyncSession) -> bool:
    """Did this message withdraw marketing consent that was not already withdrawn?
    (An opt-out is confirmed to the customer once, not at every repeat.)"""
    latest = (await db_session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact_id,
                                   ConsentEvent.purpose == MessagePurpose.MARKETING,
                                   ConsentEvent.channel.is_(None))
        .order_by(ConsentEvent.id.desc()).limit(2))).all()
    if not latest or latest[0].granted or latest[0].evidence.get("message_id") != message_id:
        return False
    return len(latest) == 1 or latest[1].granted


async def cancel_pending(contact_id: int, purpose: MessagePurpose, *, reason: str, db_session: AsyncSession) -> int:
    """Cancel the contact's waiting sends of this purpose; a marketing withdrawal also ends
    their nurture campaigns at once. Returns the sends cancelled."""
    identities = select(Identity.id).where(Identity.contact_id == contact_id)
    result = await db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.identity_id.in_(identities), OutboxMessage.purpose == purpose,
               OutboxMessage.status.in_(WAITING))
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False))
    if purpose == MessagePurpose.MARKETING:
        await db_session.execute(
            update(Enrolment)
            .where(Enrolment.contact_id == contact_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .values(status=EnrolmentStatus.EXITED, exit_reason="opted_out", exited_at=utcnow(), next_due_at=None,
                    note=reason)
            .execution_options(synchronize_session=False))
    return result.rowcount or 0


# ---- double opt-in -------------------------------------------------------------

# Asked for each "yes" or "no" the worker reads: built once.
_PENDING_REQUESTS = (select(ConsentRequest).where(ConsentRequest.contact_id == bindparam("contact_id"),
                                                  ConsentRequest.status == "pending").order_by(ConsentRequest.id))

DOUBLE_OPT_IN_DAYS = 7
OPT_OUT_HINT = catalogues.text("consent.opt_out_hint")


def opt_out_hint(language: str | None, channel: str) -> str:
    """How to stop marketing, added to a person's first marketing message; email has its
    one-click unsubscribe link instead."""
    if channel == "email":
        return ""
    return OPT_OUT_HINT["zh" if (language or "").lower().startswith("zh") else "en"]


async def apply_opt_ins(message: Message, contact: Contact, channel: str, *,
                        db_session: AsyncSession) -> list[ConsentEvent]:
    """What a customer message says to consent: a "yes" or "no" to pending requests (a
    "no" is kept as a refusal, with their words), else their own "subscribe me" / "订阅"
    (a bare "yes" grants nothing unless they were asked)."""
    if is_refusal(message.text):
        return await answer_pending(message, contact, channel, granted=False, db_session=db_session)
    confirmed = await answer_pending(message, contact, channel, granted=True, db_session=db_session)
    if confirmed or "opt_in" not in (message.intents or []) or is_confirmation(message.text):
        return confirmed
    return [await record(contact.id, purpose=MessagePurpose.MARKETING, granted=True, source="message",
                         evidence={"message_id": message.id, "channel": channel, "words": message.text},
                         db_session=db_session)]


def is_confirmation(text: str | None) -> bool:
    return bool(text) and CONFIRMATION_WORDS.match(text) is not None


async def recorded_from(message_id: int, contact_id: int, *, granted: bool, db_session: AsyncSession,
                        source: str | None = None, known: Sequence[ConsentEvent] | None = None) -> bool:
    """Did this message put a grant (or a refusal) in the contact's ledger (optionally from `source`)?
    `known`: what the worker recorded from it (`HandlerContext.consent_recorded`), if it says; then
    the ledger is not asked."""
    if known is not None:
        return any(event.granted == granted and source in (None, event.source) for event in known)
    stmt = select(ConsentEvent.id).where(ConsentEvent.contact_id == contact_id, ConsentEvent.granted.is_(granted),
                                         ConsentEvent.evidence["message_id"].as_integer() == message_id)
    if source is not None:
        stmt = stmt.where(ConsentEvent.source == source)
    return await db_session.scalar(stmt.limit(1)) is not None


def is_refusal(text: str | None) -> bool:
    return bool(text) and REFUSAL_WORDS.match(text) is not None


async def answer_pending(message: Message, contact: Contact, channel: str, *, granted: bool,
                         db_session: AsyncSession) -> list[ConsentEvent]:
    """The person's "yes" (`granted`) or "no" to open confirmation requests: each becomes a
    grant or a refusal in the ledger, with both halves of the proof (who asked, and the
    person's own words). Returns the events recorded."""
    if not (is_confirmation(message.text) if granted else is_refusal(message.text)):
        return []
    now = utcnow()
    # Flushed first only when a request of the session's is changed or new: else what is pending (the
    # bot's state, a lead's score) cannot change the answer, and is flushed later with more.
    requests = (await db_session.scalars(_PENDING_REQUESTS, {"contact_id": contact.id}, execution_options={
        "autoflush": holds_changes_to(db_session, ConsentRequest)})).all()
    events = []
    for request in requests:
        if request.expires_at <= now:
            request.status = "expired"
            continue
        event = await record(contact.id, purpose=request.purpose, granted=granted, source="double_opt_in",
                             channel=request.channel, actor_label=request.actor_label,
                             evidence={"request_id": request.id, "requested_via": request.source,
                                       "requested_by": request.actor_label, "request": request.evidence,
                                       "message_id": message.id, "channel": channel, "words": message.text},
                             db_session=db_session)
        request.status, request.confirmed_event_id = "confirmed" if granted else "declined", event.id
        events.append(event)
    return events


async def ledger(contact_id: int, *, db_session: AsyncSession) -> dict[str, Any]:
    """The state per purpose and channel, every event as proof, and confirmations still awaited."""
    events = (await db_session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                       .order_by(ConsentEvent.id))).all()
    # Per purpose: "*" is the newest all-channel event; a channel is listed while an event of
    # its own is what decides it (`decide_from`), i.e. newer than the newest all-channel one.
    state: dict[str, dict[str, Any]] = {}
    for purpose in dict.fromkeys(e.purpose for e in events):
        newest_first = [e for e in reversed(events) if e.purpose == purpose]
        deciding = {"*": next((e for e in newest_first if e.channel is None), None)}
        for channel in dict.fromkeys(e.channel for e in events if e.purpose == purpose and e.channel):
            event = decide_from(newest_first, purpose=purpose, channel=channel).event
            if event is not None and event.channel == channel:
                deciding[channel] = event
        state[purpose.value] = {scope: {"granted": e.granted, "since": e.created_at.isoformat(),
                                        "source": e.source, "event_id": e.id}
                                for scope, e in deciding.items() if e is not None}
    pending = (await db_session.scalars(select(ConsentRequest).where(
        ConsentRequest.contact_id == contact_id, ConsentRequest.status == "pending"))).all()
    return {
        "contact_id": contact_id,
        "state": state,
        "events": [{"id": e.id, "purpose": e.purpose.value, "channel": e.channel, "granted": e.granted,
                    "source": e.source, "evidence": e.evidence, "actor": e.actor_label,
                    "at": e.created_at.isoformat()} for e in events],
        "awaiting_confirmation": [{"id": r.id, "purpose": r.purpose.value, "source": r.source,
                                   "requested_by": r.actor_label, "expires_at": r.expires_at.isoformat()}
                                  for r in pending],
    }
