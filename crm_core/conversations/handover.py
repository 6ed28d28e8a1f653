"""Handing a customer to a person where the platform holds the session itself.

On 微信客服 WeCom decides who serves a WeChat user: the API (the hub's bot), a queue, or one
servicer who chats from their own WeCom client. When the hub hands such a conversation to a
person, it tells WeCom who: the message that tells the customer carries the `hand_over` option
(`{"servicer": <WeCom userid>}`, or `{}` for WeCom's queue), and the channel's adapter moves the
session before it sends the words. Other channels ignore the option.

Who serves: the conversation's owner; else the rep the hub's routing picks among those who take
the channel (teams first) and are receiving customers in WeCom (接待中), the one with the fewest open
conversations; else WeCom's queue, where whoever claims it in the hub (or picks it up in WeCom)
takes it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import accounts, audit, catalogues
from crm_core.contacts.reach import spoken_language
from crm_core.db import held_or_get
from crm_core.models import ChannelAccount, Conversation, ConversationStatus, Role, User, UserHandle
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.ports import OutboundMessage, servicer_status

# Channel kinds whose platform routes the session to a person, and the kind of app whose member
# userids are that platform's servicers (a 微信客服 servicer is a member of the corp's WeCom).
PLATFORM_SESSIONS = {"wecom_kf": "wecom"}
TAKING_OVER = catalogues.text("handover.taking_over")


async def platform_session(conversation: Conversation, *, db_session: AsyncSession) -> str | None:
    """The kind of app whose members serve this conversation's platform session; None for channels
    where the hub alone decides who answers."""
    account = await held_or_get(db_session, ChannelAccount, conversation.channel_account_id)
    return PLATFORM_SESSIONS.get(account.kind if account is not None else "")


async def receiving(account_id: int, userid: str, *, db_session: AsyncSession) -> bool:
    """False once the platform said the servicer stopped receiving (and not since that they started)."""
    name, stopped = servicer_status(userid, False)
    return await accounts.get_cursor(account_id, name, db_session=db_session) != stopped


async def servicer_id(user_id: int, staff_kind: str, *, db_session: AsyncSession) -> str | None:
    """The user's userid on an app of `staff_kind` (their WeCom userid), if they have one."""
    return await db_session.scalar(
        select(UserHandle.external_id).join(ChannelAccount, ChannelAccount.id == UserHandle.channel_account_id)
        .where(UserHandle.user_id == user_id, ChannelAccount.kind == staff_kind).order_by(UserHandle.id).limit(1))


async def hand_over_option(conversation: Conversation, owner: User | None, candidates: list[User], *,
                           db_session: AsyncSession) -> dict[str, Any]:
    """The option that moves the platform's session to a person (empty where the platform holds
    no session): the owner, else the least busy candidate with a servicer id (who becomes the
    owner), else the platform's queue."""
    staff_kind = await platform_session(conversation, db_session=db_session)
    if staff_kind is None:
        return {}
    if owner is not None:
        userid = await servicer_id(owner.id, staff_kind, db_session=db_session)
        return {"hand_over": {"servicer": userid} if userid else {}}
    serving: list[tuple[int, int, User, str]] = []
    for user in candidates:
        userid = await servicer_id(user.id, staff_kind, db_session=db_session)
        if userid and user.is_active and user.role == Role.REP \
                and await receiving(conversation.channel_account_id, userid, db_session=db_session):
            load = await db_session.scalar(select(func.count()).select_from(Conversation).where(
                Conversation.assignee_user_id == user.id, Conversation.status == ConversationStatus.OPEN))
            serving.append((load or 0, user.id, user, userid))
    if not serving:
        return {"hand_over": {}}
    _, _, user, userid = min(serving, key=lambda s: (s[0], s[1]))
    conversation.assignee_user_id = user.id
    await audit.record("conversation.assign", entity_type="conversation", entity_id=conversation.id, actor=None,
                       actor_label="routing", db_session=db_session, details={"to": user.id, "why": "handoff"})
    return {"hand_over": {"servicer": userid}}


async def person_joins(conversation: Conversation, user: User, *, db_session: AsyncSession) -> bool:
    """`user` now serves the conversation (claimed, assigned): where the platform holds the session,
    the customer is told who, and the session moves to them. False where nothing was sent."""
    staff_kind = await platform_session(conversation, db_session=db_session)
    if staff_kind is None:
        return False
    userid = await servicer_id(user.id, staff_kind, db_session=db_session)
    lang = await spoken_language(conversation.contact_id, identity_id=conversation.identity_id,
                                 db_session=db_session)
    text = TAKING_OVER[lang].format(name=user.display_name or user.username)
    await enqueue_to_conversation(
        conversation, OutboundMessage(conversation.external_thread_id, text,
                                      options={"hand_over": {"servicer": userid} if userid else {}}),
        idempotency_key=f"joins:{conversation.id}:{user.id}:{uuid.uuid4().hex}",
        author_user_id=user.id, db_session=db_session)
    return True
