"""One-off 群发 to WeCom customers, as WeCom requires it: the hub cannot message a company's
customers itself; it makes one task per rep (`add_msg_template`, chat_type single, the rep's own
customers as targets) and the rep taps Send in WeCom's 群发助手. What becomes of it is read back:
per rep sent or not yet (`get_groupmsg_task`), per customer sent, not a contact any more, or
over WeCom's limit (`get_groupmsg_send_result`). Results count only what WeCom says was sent.

WeCom lets the company send one customer 4 such messages a calendar month (China time);
customers who had theirs are left out before any task is made, and listed as such.
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
               actor: User | None, db_session: AsyncSession, now: dt.datetime) -> MassSend:
    """The mass send and one pending task per rep with customers to reach; MassSendInvalid when
    there is nobody to send to."""
    if account is None or account.kind != "wecom":
        raise MassSendInvalid("a mass send goes through a WeCom app's channel account (kind wecom)")
    if not name.strip() or not text.strip():
        raise MassSendInvalid("name and text: say what it is and what the customers read")
    query = (select(Identity.external_id, UserHandle.user_id, UserHandle.external_id, Identity.contact_id)
             .join(Conversation, Conversation.identity_id == Identity.id)
             .join(UserHandle, (UserHandle.user_id == Conversation.assignee_user_id)
                   & (UserHandle.channel_account_id == Identity.channel_account_id))
             .join(User, User.id == UserHandle.user_id)
             .where(Identity.channel_account_id == account.id, wecom_customer(Identity.external_id),
                    User.is_active.is_(True)).order_by(Identity.id))
    if user_ids:
        query = query.where(UserHandle.user_id.in_(user_ids))
    for tag in tags:
        query = query.where(Identity.contact_id.in_(select(ContactTag.contact_id).where(ContactTag.tag == tag)))
    rows = (await db_session.execute(query)).all()
    received = await _received_this_month([external for external, *_ in rows], account.id, db_session, now)
    by_rep: dict[tuple[int, str], list[str]] = defaultdict(list)
    skipped: dict[str, str] = {}
    for external, user_id, userid, _ in rows:
        if received.get(external, 0) >= PER_MONTH:
            skipped[external] = "over_limit"
        elif external not in by_rep[(user_id, userid)]:
            by_rep[(user_id, userid)].append(external)
    if not any(by_rep.values()):
        over = f" ({len(skipped)} had WeCom's {PER_MONTH} mass messages this month)" if skipped else ""
        raise MassSendInvalid(f"nobody to send to: no WeCom customer of the chosen reps has those tags{over}")
    send = MassSend(channel_account_id=account.id, name=name.strip(), text=text.strip(),
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
    """Mass messages each customer had (or may still get) this month: replies sent as tasks and
    earlier mass sends' targets not known to have failed."""
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
