"""Teams: reps who work together under a manager, and the channels whose new leads
and unclaimed customers go to them first (a routing rule: "WeCom leads go to the
Shanghai team"). A rep is in at most one team; a team's manager hears of its reps'
missed deadlines and unhappy customers when the rep has no manager of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import held_or_get, holds_changes_to
from crm_core.models import ChannelAccount, Conversation, Role, Team, User
from crm_core.session_memo import remembered

LEADERS = (Role.MANAGER, Role.ADMIN)


class TeamRefused(ValueError):
    """A team change that cannot be made; the message says what to change."""


class TeamNameTaken(TeamRefused):
    """Another team has the name already."""


async def _check(name: str, manager_user_id: int | None, channels: Iterable[str], channel_kinds: Iterable[str],
                 db_session: AsyncSession, team_id: int | None = None) -> tuple[str, list[str]]:
    name = name.strip()
    if not name or len(name) > 100:
        raise TeamRefused("give the team a name of 1 to 100 characters")
    same = select(Team.id).where(func.lower(Team.name) == name.lower())
    if team_id is not None:
        same = same.where(Team.id != team_id)
    if await db_session.scalar(same) is not None:
        raise TeamNameTaken(f"a team named {name!r} exists already")
    if manager_user_id is not None:
        manager = await db_session.get(User, manager_user_id)
        if manager is None or not manager.is_active or manager.role not in LEADERS:
            raise TeamRefused(f"user {manager_user_id} cannot lead a team: choose an active manager")
    kinds = set(channel_kinds)
    chosen = sorted(set(channels))
    unknown = [c for c in chosen if c not in kinds]
    if unknown:
        raise TeamRefused(f"channels: {', '.join(unknown)} not a channel kind; one of {', '.join(sorted(kinds))}")
    return name, chosen


async def create(name: str, *, manager_user_id: int | None, channels: Iterable[str], channel_kinds: Iterable[str],
                 actor: User | None, db_session: AsyncSession) -> Team:
    name, chosen = await _check(name, manager_user_id, channels, channel_kinds, db_session)
    team = Team(name=name, manager_user_id=manager_user_id, channels=chosen)
    db_session.add(team)
    await db_session.flush()
    await audit.record("team.create", entity_type="team", entity_id=team.id, actor=actor, db_session=db_session,
                       details={"name": name, "manager_user_id": manager_user_id, "channels": chosen})
    return team


async def update_team(team: Team, *, name: str, manager_user_id: int | None, channels: Iterable[str],
                      channel_kinds: Iterable[str], actor: User | None, db_session: AsyncSession) -> Team:
    name, chosen = await _check(name, manager_user_id, channels, channel_kinds, db_session, team_id=team.id)
    before = {"name": team.name, "manager_user_id": team.manager_user_id, "channels": team.channels}
    team.name, team.manager_user_id, team.channels = name, manager_user_id, chosen
    await db_session.flush()
    await audit.record("team.update", entity_type="team", entity_id=team.id, actor=actor, db_session=db_session,
                       details={"from": before, "to": {"name": name, "manager_user_id": manager_user_id,
                                                       "channels": chosen}})
    return team


async def delete(team: Team, *, actor: User | None, db_session: AsyncSession) -> int:
    """Remove the team; its members stay, in no team. How many were in it."""
    members = (await db_session.execute(update(User).where(User.team_id == team.id).values(team_id=None)
                                        .execution_options(synchronize_session="fetch"))).rowcount or 0
    await audit.record("team.delete", entity_type="team", entity_id=team.id, actor=actor, db_session=db_session,
                       details={"name": team.name, "members": members})
    await db_session.delete(team)
    await db_session.flush()
    return members


async def join(user: User, team_id: int | None, *, db_session: AsyncSession) -> None:
    """Put the user in a team (None: in none); the caller audits the user's change."""
    if team_id is not None and await db_session.get(Team, team_id) is None:
        raise TeamRefused(f"there is no team {team_id}")
    user.team_id = team_id


async def team_manager(user: User, *, db_session: AsyncSession) -> User | None:
    """The active manager of the user's team, unless that is the user."""
    if user.team_id is None:
        return None
    team = await db_session.get(Team, user.team_id)
    if team is None or team.manager_user_id is None or team.manager_user_id == user.id:
        return None
    manager = await db_session.get(User, team.manager_user_id)
    return manager if manager is not None and manager.is_active and manager.role in LEADERS else None


async def covering(kind: str | None, *, db_session: AsyncSession) -> Sequence[Team]:
    """The teams that take the new leads of channel `kind`."""
    if kind is None:
        return []
    async def ask() -> tuple[Team, ...]:
        return tuple((await db_session.scalars(select(Team).order_by(Team.id), execution_options={
            "autoflush": holds_changes_to(db_session, Team)})).all())

    teams = await remembered(db_session, "teams", (Team,), ask)  # once a transaction, until a team is written
    return [t for t in teams if kind in (t.channels or [])]


async def kind_of_conversation(conversation_id: int | None, *, db_session: AsyncSession) -> str | None:
    # By primary key: the worker has the batch's conversations and accounts loaded already.
    conversation = await held_or_get(db_session, Conversation, conversation_id) \
        if conversation_id is not None else None
    account = await held_or_get(db_session, ChannelAccount, conversation.channel_account_id) \
        if conversation else None
    return account.kind if account is not None else None


async def latest_kind(contact_id: int, *, db_session: AsyncSession) -> str | None:
    """The channel the contact last wrote on (their newest conversation)."""
    return await db_session.scalar(select(ChannelAccount.kind)
                                   .join(Conversation, Conversation.channel_account_id == ChannelAccount.id)
                                   .where(Conversation.contact_id == contact_id)
                                   .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1))


def members_of(users: Sequence[User], teams: Sequence[Team]) -> list[User]:
    ids = {t.id for t in teams}
    return [u for u in users if u.team_id in ids]


def first_in_line(users: Sequence[User], teams: Sequence[Team]) -> list[User]:
    """Of `users`, the members of `teams`; all of them when none is a member (a team
    without active reps must not leave a customer waiting)."""
    return members_of(users, teams) or list(users)
