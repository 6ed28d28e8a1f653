"""What reps do to conversations, wherever they do it from (WeCom, DingTalk, the API).

Claim, reply, note, move the stage, hand over, reassign a departed rep's work;
every change is audited, and every message a rep sends is stored in the
conversation, so a manager can see what was promised. Users are reached in
their chat app through `UserHandle`s; `notify_user` queues a card to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, catalogues
from crm_core.accounts import channel_name
from crm_core.conversations import handover
from crm_core.conversations.service import person_takes_over
from crm_core.db import holds_changes_to
from crm_core.leads import service as leads
from crm_core.leads import teams
from crm_core.leads.service import LeadRules
from crm_core.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Identity,
    Lead,
    Note,
    OutboxMessage,
    Role,
    User,
    UserHandle,
)
from crm_core.outbox.service import enqueue_to_conversation, enqueue_to_handle, write_replies
from crm_core.people import users
from crm_core.ports import Button, OutboundMessage
from crm_core.session_memo import remembered

SUPERVISORS = (Role.ADMIN, Role.MANAGER)


class RepActionRefused(Exception):
    """The action is not allowed or makes no sense; the message says why (in English, with a `code`)."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


# ---- handles ----------------------------------------------------------------

async def add_handle(user: User, *, channel_account_id: int, external_id: str,
                     db_session: AsyncSession, actor: User | None = None) -> UserHandle:
    existing = await db_session.scalar(select(UserHandle).where(
        UserHandle.channel_account_id == channel_account_id, UserHandle.external_id == external_id))
    if existing is not None:
        if existing.user_id != user.id:
            raise RepActionRefused("handle_taken", f"{external_id} on channel account {channel_account_id} "
                                                   f"already belongs to user {existing.user_id}")
        return existing
    handle = UserHandle(user_id=user.id, channel_account_id=channel_account_id, external_id=external_id)
    db_session.add(handle)
    await db_session.flush()
    await audit.record("user.handle_add", entity_type="user", entity_id=user.id, actor=actor, db_session=db_session,
                       details={"channel_account_id": channel_account_id, "external_id": external_id})
    return handle


async def user_by_handle(channel_account_id: int, external_id: str, *,
                         db_session: AsyncSession) -> tuple[User, UserHandle] | None:
    row = (await db_session.execute(
        select(User, UserHandle).join(UserHandle, UserHandle.user_id == User.id)
        .where(UserHandle.channel_account_id == channel_account_id, UserHandle.external_id == external_id,
               User.is_active.is_(True)))).first()
    return (row[0], row[1]) if row else None


async def user_by_staff_id(external_id: str, *, db_session: AsyncSession) -> User | None:
    """The active user whose handle on any of the company's apps is `external_id` (a 微信客服
    servicer is a member of the corp's WeCom app); the oldest handle where two share it."""
    if not external_id:
        return None
    return await db_session.scalar(
        select(User).join(UserHandle, UserHandle.user_id == User.id)
        .where(UserHandle.external_id == external_id, User.is_active.is_(True)).order_by(UserHandle.id).limit(1))


async def handles_of(user_id: int, *, db_session: AsyncSession) -> list[UserHandle]:
    return list((await db_session.scalars(
        select(UserHandle).where(UserHandle.user_id == user_id).order_by(UserHandle.id))).all())


async def find_user(name: str, *, db_session: AsyncSession) -> User | None:
    """A user by username, display name or chat-app handle ("li", "@li", "Li Lei")."""
    name = name.lstrip("@").strip()
    if not name:
        return None
    user = await db_session.scalar(select(User).where(User.username == name, User.is_active.is_(True)))
    if user is None:
        user = await db_session.scalar(select(User).where(User.display_name == name, User.is_active.is_(True)))
    if user is None:
        user = await db_session.scalar(select(User).join(UserHandle, UserHandle.user_id == User.id)
                                       .where(UserHandle.external_id == name, User.is_active.is_(True)).limit(1))
    return user


async def notify_user(user_id: int, message: OutboundMessage, *, key: str, db_session: AsyncSession,
                      not_before: dt.datetime | None = None) -> int:
    """Queue `message` (recipient ignored) to each of the user's chat-app handles; how many were
    newly queued (a key queued before counts nothing)."""
    queued = 0
    for handle in await handles_of(user_id, db_session=db_session):
        if await enqueue_to_handle(handle.channel_account_id, handle.external_id, message,
                                   idempotency_key=f"{key}:h{handle.id}", not_before=not_before,
                                   db_session=db_session) is not None:
            queued += 1
    return queued


async def active_reps_with_handles(*, db_session: AsyncSession) -> Sequence[User]:
    return await _active_with_handles(Role.REP, db_session)


async def active_managers_with_handles(*, db_session: AsyncSession) -> Sequence[User]:
    return await _active_with_handles(Role.MANAGER, db_session)


async def reps_for_channel(kind: str | None, *, db_session: AsyncSession) -> Sequence[User]:
    """The reps who should hear of an unowned customer on channel `kind`: those of the teams
    that take it, else every active rep reachable in a chat app."""
    everyone = await active_reps_with_handles(db_session=db_session)
    return teams.first_in_line(everyone, await teams.covering(kind, db_session=db_session))


async def reps_for(conversation: Conversation, *, db_session: AsyncSession) -> Sequence[User]:
    kind = await teams.kind_of_conversation(conversation.id, db_session=db_session)
    return await reps_for_channel(kind, db_session=db_session)


async def manager_of(user: User, *, db_session: AsyncSession) -> User | None:
    """The user's manager if they have an active one, else their team's."""
    if user.manager_user_id is not None:
        manager = await db_session.get(User, user.manager_user_id)
        if manager is not None and manager.is_active:
            return manager
    return await teams.team_manager(user, db_session=db_session)


async def managers_for(user: User | None, *, db_session: AsyncSession) -> Sequence[User]:
    """Who manages `user`: their manager, or every manager when they have none (or nobody owns it)."""
    manager = await manager_of(user, db_session=db_session) if user is not None else None
    return [manager] if manager is not None else await active_managers_with_handles(db_session=db_session)


_ACTIVE_WITH_HANDLES = (  # built once: asked at each of the worker's transactions
    select(User).where(User.role == bindparam("role"), User.is_active.is_(True),
                       select(UserHandle.id).where(UserHandle.user_id == User.id).exists())
    .order_by(User.id))


async def _active_with_handles(role: Role, db_session: AsyncSession) -> Sequence[User]:
    async def ask() -> tuple[User, ...]:
        # Flushed first only if a user or a handle waits in the session (the bot's state does not count).
        return tuple((await db_session.scalars(_ACTIVE_WITH_HANDLES, {"role": role}, execution_options={
            "autoflush": holds_changes_to(db_session, User, UserHandle)})).all())

    # Asked for each message of a batch: once a transaction, until a user or a handle is written.
    return await remembered(db_session, ("active_with_handles", role), (User, UserHandle), ask)


# ---- conversation actions -------------------------------------------------

async def get_open_conversation(conversation_id: int, *, db_session: AsyncSession) -> Conversation:
    conversation = await db_session.get(Conversation, conversation_id)
    if conversation is None:
        raise RepActionRefused("no_conversation", f"there is no conversation #{conversation_id}",
                               id=conversation_id)
    return conversation


def ensure_may_act(user: User, conversation: Conversation) -> None:
    if user.role in SUPERVISORS or conversation.assignee_user_id == user.id:
        return
    if conversation.assignee_user_id is None:
        raise RepActionRefused("not_claimed", f"conversation #{conversation.id} is not yours: claim it first",
                               id=conversation.id)
    raise RepActionRefused("not_yours", f"conversation #{conversation.id} belongs to another rep",
                           id=conversation.id)


async def claim(conversation: Conversation, user: User, *, db_session: AsyncSession) -> bool:
    """Take an unowned conversation; False if it was already the user's. Two reps racing: one wins."""
    if conversation.assignee_user_id == user.id:
        return False
    result = await db_session.execute(
        update(Conversation).where(Conversation.id == conversation.id, Conversation.assignee_user_id.is_(None))
        .values(assignee_user_id=user.id).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        await db_session.refresh(conversation)
        owner = await db_session.get(User, conversation.assignee_user_id)
        raise RepActionRefused("taken", f"conversation #{conversation.id} was already claimed by "
                                        f"{_name(owner)}", id=conversation.id, owner=_name(owner))
    await db_session.refresh(conversation)
    person_takes_over(conversation, "claimed")
    await handover.person_joins(conversation, user, db_session=db_session)
    await leads.claimed(conversation.contact_id, user, db_session=db_session)
    await audit.record("conversation.claim", entity_type="conversation", entity_id=conversation.id, actor=user,
                       db_session=db_session)
    return True


async def assign(conversation: Conversation, to_user: User | None, by: User, *, db_session: AsyncSession) -> None:
    """Hand the conversation to `to_user` (None: back to the queue). Owners and supervisors may."""
    ensure_may_act(by, conversation)
    if to_user is not None and (to_user.role not in (Role.REP, *SUPERVISORS) or not to_user.is_active):
        raise RepActionRefused("not_a_rep", f"{_name(to_user)} cannot own conversations", user=_name(to_user))
    previous = conversation.assignee_user_id
    conversation.assignee_user_id = to_user.id if to_user else None
    person_takes_over(conversation, "assigned")  # back to the queue: still waiting for a person
    if to_user is not None and to_user.id != previous:
        await handover.person_joins(conversation, to_user, db_session=db_session)
    # Other people's "reply" focus on this conversation ends with their ownership.
    unfocus = update(UserHandle).where(UserHandle.focus_conversation_id == conversation.id)
    if to_user is not None:
        unfocus = unfocus.where(UserHandle.user_id != to_user.id)
    await db_session.execute(unfocus.values(focus_conversation_id=None).execution_options(synchronize_session=False))
    await audit.record("conversation.assign", entity_type="conversation", entity_id=conversation.id, actor=by,
                       db_session=db_session, details={"from": previous, "to": to_user.id if to_user else None})


async def reply(conversation: Conversation, user: User, text: str, *, key: str,
                db_session: AsyncSession, image_url: str | None = None, file_url: str | None = None,
                file_name: str | None = None) -> OutboxMessage:
    """The rep's message to the customer, on the customer's channel, stored in the conversation."""
    ensure_may_act(user, conversation)
    text = text.strip()
    if not text:
        raise RepActionRefused("empty", "the reply is empty")
    if conversation.status != ConversationStatus.OPEN:
        raise RepActionRefused("closed", f"conversation #{conversation.id} is closed", id=conversation.id)
    person_takes_over(conversation, "replied")
    row = await enqueue_to_conversation(conversation, OutboundMessage(conversation.external_thread_id, text,
                                                                      image_url=image_url, file_url=file_url,
                                                                      file_name=file_name),
                                        idempotency_key=f"rep:{user.id}:{key}", author_user_id=user.id,
                                        db_session=db_session)
    await audit.record("conversation.send", entity_type="conversation", entity_id=conversation.id, actor=user,
                       db_session=db_session, details={"outbox_id": row.id})
    await leads.responded(conversation.contact_id, db_session=db_session)
    return row


async def add_note(conversation: Conversation, user: User, text: str, *, db_session: AsyncSession) -> Note:
    ensure_may_act(user, conversation)
    if not text.strip():
        raise RepActionRefused("empty", "the note is empty")
    note = Note(conversation_id=conversation.id, author_user_id=user.id, text=text.strip())
    db_session.add(note)
    await db_session.flush()
    return note


async def set_stage(conversation: Conversation, user: User, stage: str, *, db_session: AsyncSession,
                    rules: LeadRules | None = None) -> str:
    """Move the customer (and their open lead) to one of the pipeline's stages (SCRM_LEAD_STAGES)."""
    ensure_may_act(user, conversation)
    rules = rules or LeadRules()
    stage = stage.strip().lower()
    if stage not in rules.stages:
        raise RepActionRefused("bad_stage", f"unknown stage {stage!r}; stages: {', '.join(rules.stages)}",
                               stage=stage, stages=", ".join(rules.stages))
    contact = await db_session.get(Contact, conversation.contact_id)
    assert contact is not None
    previous, contact.stage = contact.stage, stage
    lead = await db_session.scalar(select(Lead).where(Lead.contact_id == contact.id, Lead.status == "open"))
    if lead is not None:
        await leads.set_stage(lead, stage, rules=rules, actor=user, db_session=db_session)
    await audit.record("contact.stage", entity_type="contact", entity_id=contact.id, actor=user,
                       db_session=db_session, details={"from": previous, "to": stage,
                                                       "conversation_id": conversation.id})
    return previous


async def mine(user: User, *, db_session: AsyncSession, limit: int = 20) -> list[tuple[Conversation, Contact]]:
    rows = await db_session.execute(
        select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.assignee_user_id == user.id, Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.last_message_at.desc()).limit(limit))
    return [(c, p) for c, p in rows.all()]


async def reassign_all(from_user: User, to_user: User, by: User, *, db_session: AsyncSession,
                       deactivate: bool = True) -> int:
    """离职继承: every open conversation and lead of a departing rep goes, with its history, to `to_user`."""
    if by.role not in SUPERVISORS:
        raise RepActionRefused("forbidden", "only managers and admins reassign a rep's conversations")
    if to_user.id == from_user.id or not to_user.is_active:
        raise RepActionRefused("bad_target", "choose another, active user to inherit the conversations")
    if deactivate and from_user.is_active:
        users.check_may_switch_off(by, from_user)
    ids = list((await db_session.scalars(select(Conversation.id).where(
        Conversation.assignee_user_id == from_user.id, Conversation.status == ConversationStatus.OPEN))).all())
    if ids:
        await db_session.execute(update(Conversation).where(Conversation.id.in_(ids))
                                 .values(assignee_user_id=to_user.id).execution_options(synchronize_session=False))
    await db_session.execute(update(UserHandle).where(UserHandle.user_id == from_user.id)
                             .values(focus_conversation_id=None).execution_options(synchronize_session=False))
    lead_ids = await leads.reassign(from_user, to_user, by, db_session=db_session)
    if deactivate:
        from_user.is_active = False
    await audit.record("user.handover", entity_type="user", entity_id=from_user.id, actor=by, db_session=db_session,
                       details={"to": to_user.id, "conversations": ids, "leads": lead_ids,
                                "deactivated": deactivate})
    return len(ids)


async def contact_card(conversation: Conversation, *, db_session: AsyncSession, lang: str = "en") -> dict:
    """What a rep needs on a card: who, where (the channel named in `lang`), how to reach them,
    stage, source, owner, last messages."""
    from crm_core.models import (  # local: only the card needs them
        ChannelAccount,
        ContactKey,
        Direction,
        Message,
    )

    contact = await db_session.get(Contact, conversation.contact_id)
    identity = await db_session.get(Identity, conversation.identity_id)
    account = await db_session.get(ChannelAccount, conversation.channel_account_id)
    keys = (await db_session.scalars(select(ContactKey.value).where(ContactKey.contact_id == conversation.contact_id)
                                     .order_by(ContactKey.id))).all()
    owner = await db_session.get(User, conversation.assignee_user_id) if conversation.assignee_user_id else None
    await write_replies(db_session)  # the bot's replies queued in this transaction, in their place
    recent = (await db_session.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.text.is_not(None))
        .order_by(Message.id.desc()).limit(5))).all()
    notes = await db_session.scalar(select(func.count()).select_from(Note)
                                    .where(Note.conversation_id == conversation.id))
    assert contact is not None and identity is not None
    return {
        "id": conversation.id,
        "name": identity.display_name or contact.display_name or identity.username or identity.external_id,
        "channel_account_id": conversation.channel_account_id,
        "where": f"{channel_name(account.kind, lang)} · {account.name}" if account else "",
        "keys": list(keys),
        "stage": contact.stage,
        "source": contact.source,
        "owner": _name(owner) if owner else None,
        "reachable": identity.reachable,
        "notes": notes or 0,
        "recent": [("→ " if m.direction == Direction.OUTBOUND else "← ") + (m.text or "")[:80]
                   for m in reversed(recent)],
    }


_BUTTONS = {action: catalogues.text(f"card.{action}") for action in ("claim", "reply", "snooze", "remind", "handover")}


def card_buttons(conversation_id: int, *, claimed: bool, lang: str = "zh") -> tuple[Button, ...]:
    """Buttons on a rep's card, in the rep's language; their data comes back as
    `<action>:<conversation id>`.

    Unowned: claim, reply (claims too), snooze. Owned: reply, snooze, remind me tomorrow (a
    follow-up task), hand over.
    """
    actions = ("reply", "snooze", "remind", "handover") if claimed else ("claim", "reply", "snooze")
    return tuple(Button(_BUTTONS[action]["zh" if lang == "zh" else "en"], f"{action}:{conversation_id}")
                 for action in actions)


def _name(user: User | None) -> str:
    if user is None:
        return "nobody"
    return user.display_name or user.username

