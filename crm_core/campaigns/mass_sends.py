"""One-off 群发 to WeCom customers, as WeCom requires it: the hub cannot message a company's
customers itself; it makes one task per rep (`add_msg_template`, chat_type single, the rep's own
customers as targets; or chat_type group, the customer groups they own) and the rep taps Send in
WeCom's 群发助手. What becomes of it is read back: per rep sent or not yet (`get_groupmsg_task`),
per customer or group sent, not a contact any more, or over WeCom's limit
(`get_groupmsg_send_result`). Results count only what WeCom says was sent.

WeCom lets the company send one customer (or group) 4 such messages a calendar month (China
time); those who had theirs are left out before any task is made, and listed as such.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.accounts import wecom_customer
from crm_core.models import (
    ChannelAccount,
    ContactTag,
    Conversation,
    CustomerGroup,
    Delivery,
    Identity,
    MassSend,
    MassSendTask,
    OutboxMessage,
    OutboxStatus,
    User,
    UserHandle,
)

PER_MONTH = 4  # 企业群发 a customer may receive in a calendar month
CHINA = dt.timezone(dt.timedelta(hours=8))
# get_groupmsg_send_result's per-customer status, as the panel names it.
TARGET_STATES = {0: "waiting", 1: "sent", 2: "not_contact", 3: "over_limit"}


class MassSendInvalid(ValueError):
    """What is wrong with a mass send, said so it can be fixed."""


async def plan(account: ChannelAccount | None, name: str, text: str, tags: list[str], user_ids: list[int], *,
               actor: User | None, db_session: AsyncSession, now: dt.datetime, groups: bool = False) -> MassSend:
    """The mass send and one pending task per rep with customers (or, with `groups`, customer groups
    they own) to reach; MassSendInvalid when there is nobody to send to."""
    if account is None or account.kind != "wecom":
        raise MassSendInvalid("a mass send goes through a WeCom app's channel account (kind wecom)")
    if not name.strip() or not text.strip():
        raise MassSendInvalid("name and text: say what it is and what the customers read")
    if groups and tags:
        raise MassSendInvalid("tags choose customers; a mass send to groups goes to every group of the chosen reps")
    rows = await (_groups if groups else _customers)(account.id, tags, user_ids, db_session)
    return await _save(account.id, name, text, tags, user_ids, rows, actor=actor, groups=groups,
                       db_session=db_session, now=now)


async def _customers(account_id: int, tags: list[str], user_ids: list[int],
                     db_session: AsyncSession) -> list[tuple[str, int, str]]:
    """(external userid, rep's user id, rep's WeCom userid) of each customer to reach."""
    query = (select(Identity.external_id, UserHandle.user_id, UserHandle.external_id, Identity.contact_id)
             .join(Conversation, Conversation.identity_id == Identity.id)
             .join(UserHandle, (UserHandle.user_id == Conversation.assignee_user_id)
                   & (UserHandle.channel_account_id == Identity.channel_account_id))
             .join(User, User.id == UserHandle.user_id)
             .where(Identity.channel_account_id == account_id, wecom_customer(Identity.external_id),
                    User.is_active.is_(True)).order_by(Identity.id))
    if user_ids:
        query = query.where(UserHandle.user_id.in_(user_ids))
    for tag in tags:
        query = query.where(Identity.contact_id.in_(select(ContactTag.contact_id).where(ContactTag.tag == tag)))
    return [(external, user_id, userid) for external, user_id, userid, _ in (await db_session.execute(query)).all()]


async def _groups(account_id: int, tags: list[str], user_ids: list[int],
                  db_session: AsyncSession) -> list[tuple[str, int, str]]:
    """(chat id, owner's user id, owner's WeCom userid) of each live customer group of the reps."""
    query = (select(CustomerGroup.chat_id, UserHandle.user_id, UserHandle.external_id)
             .join(UserHandle, (UserHandle.external_id == CustomerGroup.owner_userid)
                   & (UserHandle.channel_account_id == CustomerGroup.channel_account_id))
             .join(User, User.id == UserHandle.user_id)
             .where(CustomerGroup.channel_account_id == account_id, CustomerGroup.dismissed_at.is_(None),
                    User.is_active.is_(True)).order_by(CustomerGroup.id))
    if user_ids:
        query = query.where(UserHandle.user_id.in_(user_ids))
    return [tuple(row) for row in (await db_session.execute(query)).all()]


async def _save(account_id: int, name: str, text: str, tags: list[str], user_ids: list[int],
                rows: list[tuple[str, int, str]], *, actor: User | None, groups: bool, db_session: AsyncSession,
                now: dt.datetime) -> MassSend:
    received = await _received_this_month([target for target, *_ in rows], account_id, db_session, now)
    by_rep: dict[tuple[int, str], list[str]] = defaultdict(list)
    skipped: dict[str, str] = {}
    for external, user_id, userid in rows:
        if received.get(external, 0) >= PER_MONTH:
            skipped[external] = "over_limit"
        elif external not in by_rep[(user_id, userid)]:
            by_rep[(user_id, userid)].append(external)
    if not any(by_rep.values()):
        over = f" ({len(skipped)} had WeCom's {PER_MONTH} mass messages this month)" if skipped else ""
        who = "the chosen reps own no customer group" if groups else \
            "no WeCom customer of the chosen reps has those tags"
        raise MassSendInvalid(f"nobody to send to: {who}{over}")
    send = MassSend(channel_account_id=account_id, name=name.strip(), text=text.strip(),
                    chat_type="group" if groups else "single",
                    audience={"tags": tags, "user_ids": user_ids}, skipped=skipped,
                    created_by_user_id=actor.id if actor else None)
    db_session.add(send)
    await db_session.flush()
    db_session.add_all(MassSendTask(mass_send_id=send.id, user_id=user_id, sender_userid=userid,
                                    targets={external: 0 for external in externals})
                       for (user_id, userid), externals in by_rep.items() if externals)
    await db_session.flush()
    return send


async def _received_this_month(externals: list[str], account_id: int, db_session: AsyncSession,
                               now: dt.datetime) -> dict[str, int]:
    """Mass messages each customer (or group) had or may still get this month: replies sent as
    tasks and earlier mass sends' targets not known to have failed."""
    if not externals:
        return {}
    start = now.astimezone(CHINA).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts: dict[str, int] = dict((await db_session.execute(
        select(OutboxMessage.recipient, func.count()).where(
            OutboxMessage.channel_account_id == account_id, OutboxMessage.recipient.in_(externals),
            OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at >= start,
            OutboxMessage.accepted_as.in_((Delivery.AWAITING_CONFIRMATION, Delivery.CONFIRMED)))
        .group_by(OutboxMessage.recipient))).all())
    earlier = (await db_session.scalars(
        select(MassSendTask).join(MassSend, MassSend.id == MassSendTask.mass_send_id)
        .where(MassSend.channel_account_id == account_id, MassSend.created_at >= start,
               MassSendTask.status.in_(("pending", "waiting", "sent"))))).all()
    wanted = set(externals)
    for task in earlier:
        for external, status in (task.targets or {}).items():
            if external in wanted and status in (0, 1):
                counts[external] = counts.get(external, 0) + 1
    return counts


def summary(send: MassSend, tasks: list[MassSendTask]) -> dict[str, Any]:
    """Reps who sent it out of all, and customers by what WeCom says of them."""
    customers: dict[str, int] = {state: 0 for state in TARGET_STATES.values()}
    for task in tasks:
        for status in (task.targets or {}).values():
            customers[TARGET_STATES.get(status, "waiting")] += 1
    customers["over_limit"] += len(send.skipped or {})
    return {"reps": len(tasks), "reps_sent": sum(1 for t in tasks if t.status == "sent"), "customers": customers}
