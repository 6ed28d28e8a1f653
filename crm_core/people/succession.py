"""Customers handed from one rep to another in WeCom as well as in the hub (在职 / 离职继承).

When a rep's conversations are handed to a colleague, the WeCom customers among them are also
moved in WeCom, or they would still see the departing rep in WeChat. Each such customer becomes
a `CustomerTransfer` row: `pending` until the hub asks WeCom (`transfer_customer`, 100 a call;
`asking` while one process does), `waiting` while WeCom asks the customer (24 hours to refuse),
then `done`, `refused`, `over_limit` (the new rep has too many customers, or the customer was
moved twice in 90 days) or `failed` with WeCom's reason. The customer groups they own get the
heir as owner at once (`groupchat/onjob_transfer`). Customers of people who already left WeCom
(its unassigned list) are moved the same way with `resigned` set. The asking and the following
are the hub's jobs (hub/succession.py); this module decides who moves and keeps the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.accounts import WECOM_CUSTOMER_PREFIXES
from crm_core.db import utcnow
from crm_core.models import (
    ChannelAccount,
    Conversation,
    ConversationStatus,
    CustomerGroup,
    CustomerTransfer,
    Identity,
    User,
    UserHandle,
)

STATUSES = ("pending", "asking", "waiting", "done", "refused", "over_limit", "failed")


async def plan_handover(from_user: User, to_user: User, *, db_session: AsyncSession) -> list[CustomerTransfer]:
    """Transfers for the departing rep's WeCom customers (their open conversations on each WeCom app
    where both reps have a handle); call before the conversations are reassigned."""
    handles = (await db_session.execute(
        select(UserHandle.channel_account_id, UserHandle.user_id, UserHandle.external_id)
        .join(ChannelAccount, ChannelAccount.id == UserHandle.channel_account_id)
        .where(ChannelAccount.kind == "wecom", UserHandle.user_id.in_([from_user.id, to_user.id]))
        .order_by(UserHandle.id))).all()
    by_app: dict[int, dict[int, str]] = {}
    for account_id, user_id, userid in handles:
        by_app.setdefault(account_id, {}).setdefault(user_id, userid)
    planned: list[CustomerTransfer] = []
    for account_id, ids in by_app.items():
        if from_user.id not in ids or to_user.id not in ids:
            continue
        customers = (await db_session.execute(
            select(Identity.external_id, Identity.contact_id)
            .join(Conversation, Conversation.identity_id == Identity.id)
            .where(Conversation.channel_account_id == account_id, Conversation.assignee_user_id == from_user.id,
                   Conversation.status == ConversationStatus.OPEN).order_by(Identity.id))).all()
        planned += await _plan(account_id, ids[from_user.id], ids[to_user.id], customers, resigned=False,
                               db_session=db_session)
        planned += await _groups_of(account_id, ids[from_user.id], ids[to_user.id], resigned=False,
                                    db_session=db_session)
    return planned


async def plan_resigned(account_id: int, customers: Iterable[tuple[str, str]], to_user: User, *,
                        db_session: AsyncSession) -> list[CustomerTransfer]:
    """Transfers of customers (handover userid, external userid) whose rep left WeCom, to `to_user`;
    ValueError when `to_user` has no WeCom userid on that app."""
    takeover = await db_session.scalar(select(UserHandle.external_id).where(
        UserHandle.user_id == to_user.id, UserHandle.channel_account_id == account_id).order_by(UserHandle.id))
    if takeover is None or not to_user.is_active:
        raise ValueError(f"{to_user.username} is not an active member of this WeCom app: link their WeCom userid first")
    planned: list[CustomerTransfer] = []
    by_handover: dict[str, list[str]] = {}
    for handover, external in customers:
        by_handover.setdefault(handover, []).append(external)
    for handover, externals in by_handover.items():
        contacts = dict((await db_session.execute(select(Identity.external_id, Identity.contact_id).where(
            Identity.channel_account_id == account_id, Identity.external_id.in_(externals)))).all())
        planned += await _plan(account_id, handover, takeover, [(e, contacts.get(e)) for e in externals],
                               resigned=True, db_session=db_session)
        planned += await _groups_of(account_id, handover, takeover, resigned=True, db_session=db_session)
    return planned


async def _groups_of(account_id: int, handover: str, takeover: str, *, resigned: bool,
                     db_session: AsyncSession) -> list[CustomerTransfer]:
    """The live customer groups `handover` owns, to get `takeover` as owner (groupchat/onjob_transfer,
    or groupchat/transfer once they left); those already being moved are left out."""
    moving = select(CustomerTransfer.external_userid).where(
        CustomerTransfer.channel_account_id == account_id, CustomerTransfer.is_group.is_(True),
        CustomerTransfer.status.in_(("pending", "asking")))
    chats = (await db_session.scalars(select(CustomerGroup.chat_id).where(
        CustomerGroup.channel_account_id == account_id, CustomerGroup.owner_userid == handover,
        CustomerGroup.dismissed_at.is_(None), CustomerGroup.chat_id.not_in(moving)).order_by(CustomerGroup.id))).all()
    rows = [CustomerTransfer(channel_account_id=account_id, contact_id=None, external_userid=chat_id,
                             handover_userid=handover, takeover_userid=takeover, resigned=resigned, is_group=True)
            for chat_id in chats]
    db_session.add_all(rows)
    await db_session.flush()
    return rows


async def _plan(account_id: int, handover: str, takeover: str, customers: Sequence[tuple[str, int | None]], *,
                resigned: bool, db_session: AsyncSession) -> list[CustomerTransfer]:
    open_already = set((await db_session.scalars(select(CustomerTransfer.external_userid).where(
        CustomerTransfer.channel_account_id == account_id, CustomerTransfer.status.in_(("pending", "waiting")),
        CustomerTransfer.external_userid.in_([e for e, _ in customers])))).all()) if customers else set()
    rows = [CustomerTransfer(channel_account_id=account_id, contact_id=contact_id, external_userid=external,
                             handover_userid=handover, takeover_userid=takeover, resigned=resigned)
            for external, contact_id in dict(customers).items()
            if external.startswith(WECOM_CUSTOMER_PREFIXES) and external not in open_already]
    db_session.add_all(rows)
    await db_session.flush()
    if rows:
        await audit.record("customer.transfer", entity_type="channel_account", entity_id=account_id, actor=None,
                           actor_label="handover", db_session=db_session,
                           details={"from": handover, "to": takeover, "resigned": resigned,
                                    "customers": [r.external_userid for r in rows]})
    return rows


def settle(row: CustomerTransfer, status: str, reason: str | None = None, errcode: int | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"transfer status {status!r}")
    row.status, row.reason, row.errcode, row.updated_at = status, reason, errcode, utcnow()


async def assign_in_hub(rows: Sequence[CustomerTransfer], heir: User, by: User, *, db_session: AsyncSession) -> int:
    """The moved customers' open conversations on their app become the heir's (离职继承 of customers
    the hub had left with someone who is gone); how many."""
    moved = 0
    for row in rows:
        conversations = (await db_session.scalars(
            select(Conversation).join(Identity, Identity.id == Conversation.identity_id)
            .where(Conversation.channel_account_id == row.channel_account_id,
                   Identity.external_id == row.external_userid, Conversation.status == ConversationStatus.OPEN))).all()
        for conversation in conversations:
            if conversation.assignee_user_id != heir.id:
                conversation.assignee_user_id = heir.id
                moved += 1
                await audit.record("conversation.assign", entity_type="conversation", entity_id=conversation.id,
                                   actor=by, db_session=db_session,
                                   details={"to": heir.id, "why": f"离职继承 of {row.handover_userid}'s customer"})
    await db_session.flush()
    return moved
