"""WeCom customer groups (客户群): kept as WeCom describes them (`groupchat/get`), after each
`change_external_chat` event and in a periodic full pass (`groupchat/list`). A customer in a
group is the same contact as in their 1:1 chats: the member's external userid is their identity
on the app; one the hub has not met yet becomes a contact, named as the group shows them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import Contact, CustomerGroup, CustomerGroupLeave, CustomerGroupMember, Identity

CUSTOMER = 2  # groupchat/get member type: 1 a member of the company, 2 an external contact


def _at(seconds: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC) if seconds else None


async def apply_group(account_id: int, chat: dict[str, Any], *, db_session: AsyncSession) -> CustomerGroup:
    """Make the kept group what WeCom says it is now: name, owner, notice, members."""
    chat_id = str(chat["chat_id"])
    group = await db_session.scalar(select(CustomerGroup).where(
        CustomerGroup.channel_account_id == account_id, CustomerGroup.chat_id == chat_id))
    if group is None:
        group = CustomerGroup(channel_account_id=account_id, chat_id=chat_id)
        db_session.add(group)
    group.name, group.owner_userid = str(chat.get("name") or ""), str(chat.get("owner") or "")
    group.notice, group.created_at = chat.get("notice") or None, _at(chat.get("create_time"))
    group.dismissed_at, group.synced_at = None, utcnow()
    await db_session.flush()
    members = [m for m in chat.get("member_list") or [] if m.get("userid")]
    customers = [str(m["userid"]) for m in members if m.get("type") == CUSTOMER]
    known = dict((await db_session.execute(select(Identity.external_id, Identity.contact_id).where(
        Identity.channel_account_id == account_id, Identity.external_id.in_(customers))))
        .all()) if customers else {}
    for member in members:
        userid = str(member["userid"])
        if member.get("type") == CUSTOMER and userid not in known:
            known[userid] = await _new_customer(account_id, userid, member.get("name") or None, db_session)
    # Who is gone since the group was last read left it (WeCom counts joins, not departures).
    staying = {str(m["userid"]) for m in members}
    db_session.add_all(CustomerGroupLeave(group_id=group.id, userid=userid, is_customer=is_customer,
                                          contact_id=contact_id)
                       for userid, is_customer, contact_id in (await db_session.execute(
                           select(CustomerGroupMember.userid, CustomerGroupMember.is_customer,
                                  CustomerGroupMember.contact_id).where(CustomerGroupMember.group_id == group.id)))
                       if userid not in staying)
    await db_session.execute(delete(CustomerGroupMember).where(CustomerGroupMember.group_id == group.id))
    db_session.add_all(CustomerGroupMember(
        group_id=group.id, userid=str(m["userid"]), is_customer=m.get("type") == CUSTOMER,
        contact_id=known.get(str(m["userid"])), name=m.get("group_nickname") or m.get("name") or None,
        joined_at=_at(m.get("join_time")), join_scene=m.get("join_scene"), state=(m.get("state") or None))
        for m in members)
    await db_session.flush()
    return group


async def _new_customer(account_id: int, userid: str, name: str | None, db_session: AsyncSession) -> int:
    contact = Contact(display_name=name, source="WeCom group")
    db_session.add(contact)
    await db_session.flush()
    # The profile (name, unionid) is looked up before their first message, as for any new identity.
    db_session.add(Identity(contact_id=contact.id, channel_account_id=account_id, external_id=userid,
                            display_name=name))
    await db_session.flush()
    return contact.id


async def dismissed(account_id: int, chat_id: str, *, db_session: AsyncSession) -> None:
    group = await db_session.scalar(select(CustomerGroup).where(
        CustomerGroup.channel_account_id == account_id, CustomerGroup.chat_id == chat_id))
    if group is not None and group.dismissed_at is None:
        group.dismissed_at = utcnow()
        await db_session.flush()
