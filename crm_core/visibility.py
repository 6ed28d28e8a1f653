"""Who may see which record: one rule per record kind, used by every path that reaches one.

Reps see the conversations assigned to them, the contacts of those conversations
and of the leads they own, and the leads they own; admins, operators and managers
see every customer record. A task is seen by its owner, their manager, admins and
operators. A path that reaches a record some other way (a phone or an email in a
new lead, an import row, a merge, an export, a search) asks the same functions,
so a rep cannot reach through it what reading by id would hide: reading answers
"not found", and a write that would touch someone else's record is refused.
Colleagues' chats with the rep bot are never customer records.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Contact, Conversation, Lead, Role, Task, Team, User


def conversations(user: User) -> Select:
    """The conversations `user` may read."""
    stmt = select(Conversation).where(
        Conversation.contact_id.in_(select(Contact.id).where(Contact.is_staff.is_(False))))
    if user.role == Role.REP:
        stmt = stmt.where(Conversation.assignee_user_id == user.id)
    return stmt


def conversation_ids(user: User) -> Select:
    """The ids of the conversations `user` may read, as a subquery."""
    return conversations(user).with_only_columns(Conversation.id)


def contacts(user: User) -> Select:
    """The contacts `user` may read: a rep's are in a conversation they own, or the person of a
    lead they own (an imported lead may have no conversation yet)."""
    stmt = select(Contact).where(Contact.is_staff.is_(False))
    if user.role == Role.REP:
        stmt = stmt.where(or_(
            exists().where(Conversation.contact_id == Contact.id, Conversation.assignee_user_id == user.id),
            exists().where(Lead.contact_id == Contact.id, Lead.owner_user_id == user.id)))
    return stmt


def team_members(manager: User) -> Select:
    """The ids of the people a manager leads: those who report to them and their teams' members."""
    managed = select(Team.id).where(Team.manager_user_id == manager.id)
    return select(User.id).where(or_(User.manager_user_id == manager.id, User.team_id.in_(managed)))


def tasks(user: User) -> ColumnElement[bool]:
    """The condition on `Task` for the tasks `user` may read: a rep's own; a manager's own and their
    people's; admins and operators every one."""
    if user.role == Role.REP:
        return Task.owner_user_id == user.id
    if user.role == Role.MANAGER:
        return or_(Task.owner_user_id == user.id, Task.owner_user_id.in_(team_members(user)))
    return true()


def leads(user: User) -> ColumnElement[bool]:
    """The condition on `Lead` for the leads `user` may read: a rep's own."""
    return Lead.owner_user_id == user.id if user.role == Role.REP else true()


async def may_see_contact(user: User, contact_id: int, *, db_session: AsyncSession) -> bool:
    return await db_session.scalar(contacts(user).with_only_columns(Contact.id).where(Contact.id == contact_id)) \
        is not None


def may_see_lead(user: User, lead: Lead) -> bool:
    return user.role != Role.REP or lead.owner_user_id == user.id


def may_take_lead(user: User, lead: Lead) -> bool:
    """May `user` change this lead, or become its owner by adding it again? Their own, or one
    nobody owns yet (a claim); a supervisor any."""
    return user.role != Role.REP or lead.owner_user_id in (None, user.id)
