"""Customer satisfaction: "how did we do?" once a conversation is resolved.

A rep (or the API) marks the conversation resolved; the customer is asked for a
score from 1 to 5, with buttons where the channel has them and numbered text
where it does not. The customer bot takes the answer to the open survey
(`pending`); a low score is the manager's to follow up. Resolving hands the
conversation back to the bot. Asked at most once per conversation in
`ASK_AGAIN_AFTER`, so resolving twice does not pester anyone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, catalogues
from crm_core.contacts.reach import spoken_language
from crm_core.db import utcnow
from crm_core.models import Conversation, CsatSurvey, User
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import Button, OutboundMessage

ASK_AGAIN_AFTER = dt.timedelta(days=7)
QUESTION = catalogues.text("csat.question")
LABELS = {lang: (catalogues.text("csat.poor")[lang], "2", "3", "4", catalogues.text("csat.excellent")[lang])
          for lang in catalogues.LANGUAGES}


async def resolve(conversation: Conversation, by: User | None, *, db_session: AsyncSession,
                  via: dict[str, Any] | None = None) -> CsatSurvey | None:
    """Mark the conversation resolved and ask the customer for a score; the survey, or None
    when they were asked recently. `by` None: the platform ended the session (a 微信客服 servicer
    in WeCom), and `via` is how the question may still reach them (the event's code)."""
    now = utcnow()
    conversation.resolved_at = now
    conversation.handoff_at = conversation.handoff_reason = None
    await audit.record("conversation.resolve", entity_type="conversation", entity_id=conversation.id, actor=by,
                       actor_label=None if by is not None else "platform", db_session=db_session)
    recent = await db_session.scalar(select(CsatSurvey.id).where(
        CsatSurvey.conversation_id == conversation.id, CsatSurvey.asked_at > now - ASK_AGAIN_AFTER).limit(1))
    if recent is not None:
        return None
    survey = CsatSurvey(conversation_id=conversation.id, contact_id=conversation.contact_id,
                        rep_user_id=conversation.assignee_user_id or (by.id if by is not None else None),
                        asked_at=now)
    db_session.add(survey)
    await db_session.flush()
    lang = await spoken_language(conversation.contact_id, identity_id=conversation.identity_id,
                                 db_session=db_session)
    buttons = tuple(Button(label, f"csat:{n}") for n, label in enumerate(LABELS[lang], 1))
    await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, QUESTION[lang],
                                                                buttons, options={"automated": True, **(via or {})}),
                                  idempotency_key=f"csat:{survey.id}", db_session=db_session)
    return survey


async def pending(conversation_id: int, within: dt.timedelta, *, db_session: AsyncSession) -> CsatSurvey | None:
    return await db_session.scalar(select(CsatSurvey).where(
        CsatSurvey.conversation_id == conversation_id, CsatSurvey.score.is_(None),
        CsatSurvey.asked_at > utcnow() - within).order_by(CsatSurvey.id.desc()).limit(1))
