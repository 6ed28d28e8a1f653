"""Double opt-in: a grant someone made on a person's behalf (a rep, an imported form) is asked
back of the person in their latest reachable conversation; the ledger (`crm_core.consent`)
records it only when they answer yes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import catalogues
from crm_core.consent.service import DOUBLE_OPT_IN_DAYS
from crm_core.db import utcnow
from crm_core.models import ConsentRequest, Conversation, Identity, MessagePurpose
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage

QUESTION = catalogues.text("double_opt_in.question")
WHAT = {MessagePurpose.MARKETING: catalogues.text("double_opt_in.marketing"),
        MessagePurpose.SERVICE: catalogues.text("double_opt_in.service")}
YOU = catalogues.text("double_opt_in.you")  # who signed them up, when they did it themselves (a form)


async def request_confirmation(contact_id: int, *, purpose: MessagePurpose, source: str, actor_label: str,
                               evidence: dict[str, Any], db_session: AsyncSession, language: str = "zh",
                               channel: str | None = None) -> ConsentRequest:
    """Ask the person to confirm a grant made on their behalf, in their latest reachable
    conversation; nothing enters the ledger until they answer yes. Raises LookupError
    when there is no conversation to ask in."""
    conversation = await db_session.scalar(
        select(Conversation).join(Identity, Identity.id == Conversation.identity_id)
        .where(Conversation.contact_id == contact_id, Identity.reachable.is_(True))
        .order_by(Conversation.last_message_at.desc()).limit(1))
    if conversation is None:
        raise LookupError(f"contact {contact_id} has no conversation to ask for confirmation in")
    now = utcnow()
    request = ConsentRequest(contact_id=contact_id, purpose=purpose, channel=channel, source=source,
                             evidence=evidence, actor_label=actor_label,
                             expires_at=now + dt.timedelta(days=DOUBLE_OPT_IN_DAYS))
    db_session.add(request)
    await db_session.flush()
    lang = "zh" if language.startswith("zh") else "en"
    text = QUESTION[lang].format(who=actor_label if source != "form" else YOU[lang],
                                 what=WHAT[purpose][lang])
    row = await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text),
                                        idempotency_key=f"consent-request:{request.id}", db_session=db_session)
    request.outbox_id = row.id
    return request
