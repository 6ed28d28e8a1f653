"""A person's data: everything the hub holds about one contact, machine-readable (export),
and its erasure, which keeps the aggregate counts and the consent proof.

The export covers the contact and every contact merged into it (one person
across channels): identities, contact keys, conversations with every message
(text, attachments as recorded, the platform's raw payload, sentiment, intents,
entities, delivery state), notes, the consent ledger with its evidence, and the
audit entries about them. Staff contacts (colleagues writing to the rep bot) are
not customers and are not exported here.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import (
    AuditLog,
    ChannelAccount,
    ConsentEvent,
    Contact,
    ContactKey,
    Conversation,
    ConversationStatus,
    Identity,
    Message,
    Note,
    OutboxMessage,
    OutboxStatus,
    ThreadAlias,
    User,
)

EXPORT_FORMAT = "scrm-hub.person-export.v1"


def _plain(row: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A model row's columns as JSON-ready values."""
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        out[column.key] = value
    return out


async def _with_merged(contact: Contact, db_session: AsyncSession) -> list[Contact]:
    """One person: the contact and the contacts merged into it (met earlier on other channels)."""
    return [contact, *(await db_session.scalars(
        select(Contact).where(Contact.merged_into_id == contact.id).order_by(Contact.id))).all()]


async def export_person(contact: Contact, *, db_session: AsyncSession) -> dict[str, Any]:
    contacts = await _with_merged(contact, db_session)
    ids = [c.id for c in contacts]
    identities = (await db_session.scalars(
        select(Identity).where(Identity.contact_id.in_(ids)).order_by(Identity.id))).all()
    accounts = {a.id: a for a in (await db_session.scalars(select(ChannelAccount).where(
        ChannelAccount.id.in_({i.channel_account_id for i in identities})))).all()}
    conversations = (await db_session.scalars(
        select(Conversation).where(Conversation.contact_id.in_(ids)).order_by(Conversation.id))).all()
    conversation_ids = [c.id for c in conversations]
    messages = (await db_session.execute(
        select(Message, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Message.conversation_id.in_(conversation_ids)).order_by(Message.id))).all()
    notes = (await db_session.scalars(
        select(Note).where(Note.conversation_id.in_(conversation_ids)).order_by(Note.id))).all()
    consent = (await db_session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id.in_(ids)).order_by(ConsentEvent.id))).all()
    keys = (await db_session.scalars(
        select(ContactKey).where(ContactKey.contact_id.in_(ids)).order_by(ContactKey.id))).all()
    audit = (await db_session.scalars(select(AuditLog).where(
        ((AuditLog.entity_type == "contact") & AuditLog.entity_id.in_([str(i) for i in ids]))
        | ((AuditLog.entity_type == "conversation") & AuditLog.entity_id.in_([str(i) for i in conversation_ids])))
        .order_by(AuditLog.id))).all()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "contact": _plain(contact),
        "merged_contacts": [_plain(c) for c in contacts[1:]],
        "identities": [{**_plain(i), "channel": accounts[i.channel_account_id].kind
                        if i.channel_account_id in accounts else None} for i in identities],
        "contact_keys": [_plain(k) for k in keys],
        "conversations": [_plain(c) for c in conversations],
        "messages": [{**_plain(m, skip=("processing_owner", "processing_lease_until", "processing_attempts",
                                        "processing_error")), "delivery_status": status}
                     for m, status in messages],
        "notes": [_plain(n) for n in notes],
        "consent_ledger": [_plain(e) for e in consent],
        "audit": [_plain(a) for a in audit],
    }


class ErasureRefused(Exception):
    pass


ERASED = "[erased]"


async def erase_person(contact: Contact, *, actor: User | None, db_session: AsyncSession) -> dict[str, int]:
    """Remove the person's data, keeping what the law and the figures need.

    Removed: names, platform ids (replaced by "erased:<row id>", so the rows stay
    unique and the counts stay right), contact keys (phones, emails, unionids),
    message texts, attachments, raw payloads and extracted entities, thread
    aliases, note texts, the texts of queued sends (pending ones are cancelled).
    Kept: the rows themselves with times, directions, kinds and sentiment (the
    aggregate counts and opinion series), and the consent ledger with its
    evidence (the proof of consent and of its withdrawal). The person writing
    again is a new contact. Audited, with the counts.
    """
    if contact.is_staff:
        raise ErasureRefused(f"contact {contact.id} is a colleague, not a customer")
    if contact.merged_into_id is not None:
        raise ErasureRefused(f"contact {contact.id} was merged into {contact.merged_into_id}; erase that one")
    contacts = await _with_merged(contact, db_session)
    ids = [c.id for c in contacts]
    counts: dict[str, int] = {"contacts": len(contacts)}
    for person in contacts:
        person.display_name = None
        person.language = person.timezone = None
        person.origin = f"erased:{person.id}"
    identities = (await db_session.scalars(select(Identity).where(Identity.contact_id.in_(ids)))).all()
    for identity in identities:
        identity.external_id = f"erased:{identity.id}"
        identity.display_name = identity.username = None
        identity.reachable, identity.unreachable_reason = False, "erased"
    counts["identities"] = len(identities)
    counts["contact_keys"] = (await db_session.execute(
        delete(ContactKey).where(ContactKey.contact_id.in_(ids)))).rowcount or 0
    conversations = (await db_session.scalars(select(Conversation).where(Conversation.contact_id.in_(ids)))).all()
    conversation_ids = [c.id for c in conversations]
    for conversation in conversations:
        conversation.external_thread_id = f"erased:{conversation.id}"
        conversation.status = ConversationStatus.CLOSED
    await db_session.execute(delete(ThreadAlias).where(ThreadAlias.conversation_id.in_(conversation_ids)))
    counts["messages"] = (await db_session.execute(
        update(Message).where(Message.conversation_id.in_(conversation_ids))
        .values(text=None, attachments=[], raw=None, entities=None))).rowcount or 0
    await db_session.execute(update(Note).where(Note.conversation_id.in_(conversation_ids)).values(text=ERASED))
    for_them = or_(OutboxMessage.conversation_id.in_(conversation_ids),
                   OutboxMessage.identity_id.in_([i.id for i in identities]))
    counts["sends_cancelled"] = (await db_session.execute(
        update(OutboxMessage).where(for_them, OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD]))
        .values(status=OutboxStatus.CANCELLED, last_error="cancelled: the person's data was erased"))).rowcount or 0
    await db_session.execute(update(OutboxMessage).where(for_them).values(payload={}, recipient="erased"))
    await db_session.flush()
    await audit.record("contact.erase", entity_type="contact", entity_id=contact.id, actor=actor,
                       details=counts, db_session=db_session)
    return counts
