"""Conversations: list, read messages, send a message through the outbox."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api import media
from admin.api.deps import ANY_ROLE, ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import ID_MAX, Offset, PathId, QueryId
from admin.api.schemas import ConversationRead, DeliveryRead, MessageCreate, MessageRead, OutboxRead
from channels import destinations
from crm_core.conversations import csat
from crm_core.conversations import service as conversations
from crm_core.models import Conversation, User

router = APIRouter(prefix="/conversations", tags=["conversations"])


async def _visible_conversation(conversation_id: int, user: User, session: AsyncSession) -> Conversation:
    """404 unless the caller may see it (a rep: only their own)."""
    conversation = await conversations.get_conversation(conversation_id, user, db_session=session)
    if conversation is None:
        raise HTTPException(404, f"no conversation {conversation_id}")
    return conversation


@router.get("", response_model=list[ConversationRead], responses=errors())
async def list_conversations(
    contact_id: QueryId = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> list[ConversationRead]:
    rows = await conversations.list_conversations(user, db_session=session, contact_id=contact_id,
                                                  limit=limit, offset=offset)
    return [ConversationRead.model_validate(c) for c in rows]


@router.get("/{conversation_id}/messages", response_model=list[MessageRead], responses=errors(404))
async def list_messages(
    conversation_id: PathId,
    after_id: int = Query(0, ge=0, le=ID_MAX, description="Only messages newer than this id (for polling)"),
    limit: int = Query(100, ge=1, le=1000),
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
) -> list[MessageRead]:
    conversation = await _visible_conversation(conversation_id, user, session)
    views = await conversations.list_messages(conversation, db_session=session, after_id=after_id, limit=limit)
    return [
        MessageRead(id=v.message.id, direction=v.message.direction.value, kind=v.message.kind.value,
                    text=v.message.text, attachments=v.message.attachments, author_user_id=v.message.author_user_id,
                    platform_message_id=v.message.platform_message_id, created_at=v.message.created_at,
                    delivery=DeliveryRead.of(v.delivery),
                    delivery_status=v.delivery.status.value if v.delivery else None,
                    delivery_error=v.delivery.detail if v.delivery else None,
                    sentiment=v.message.sentiment, sentiment_score=v.message.sentiment_score,
                    sentiment_confidence=v.message.sentiment_confidence, intents=v.message.intents or [],
                    entities=v.message.entities or {})
        for v in views
    ]


@router.post("/{conversation_id}/messages", response_model=OutboxRead, status_code=status.HTTP_202_ACCEPTED,
             responses=errors(404, 422))
async def send_message(
    conversation_id: PathId,
    body: MessageCreate,
    idempotency_key: str | None = Header(default=None, max_length=100,
                                         description="Repeat a request with the same key: sent once"),
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> OutboxRead:
    conversation = await _visible_conversation(conversation_id, user, session)
    for what, url in (("image_url", body.image_url), ("file_url", body.file_url)):
        if url and not media.is_ours(url, ctx.base_url):  # the hub's own uploads are known; others checked
            try:
                await destinations.check_url(url, allow_private=False, what=what)
            except destinations.UnsafeDestination as exc:
                raise HTTPException(422, str(exc)) from None
    row = await conversations.send_from_user(conversation, body.text.strip(), user, db_session=session,
                                             idempotency_key=idempotency_key, image_url=body.image_url,
                                             file_url=body.file_url, file_name=body.file_name)
    await ctx.rep_review.review(row, conversation, user, db_session=session)
    await session.commit()
    ctx.on_enqueued()
    return OutboxRead.model_validate(row)


@router.post("/{conversation_id}/resolve", responses=errors(404))
async def resolve(
    conversation_id: PathId,
    user: User = Depends(require_role(*ANY_ROLE)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> dict:
    """Mark the conversation resolved; the customer is asked for a 1-5 score (once a week at most)."""
    conversation = await _visible_conversation(conversation_id, user, session)
    survey = await csat.resolve(conversation, user, db_session=session)
    await session.commit()
    ctx.on_enqueued()
    return {"conversation_id": conversation_id, "resolved_at": conversation.resolved_at,
            "survey_id": survey.id if survey else None,
            "asked": survey is not None}
