"""What a transaction remembers (`crm_core.session_memo`): an answer is asked once, and again after
the transaction writes a table it was read from, in any way, or ends; a write elsewhere keeps it."""

from __future__ import annotations

from sqlalchemy import insert, select, text, update

from crm_core.models import Role, Team, User, UserHandle
from crm_core.people import reps
from crm_core.session_memo import remembered
from tests.crm_core.test_ingest import make_account


async def test_an_answer_is_kept_until_a_table_it_read_is_written_or_the_transaction_ends(sessions):
    asked: list[int] = []

    async def users(session) -> tuple[str, ...]:
        async def ask() -> tuple[str, ...]:
            asked.append(1)
            return tuple((await session.scalars(select(User.username).order_by(User.id))).all())
        return await remembered(session, "usernames", (User,), ask)

    async with sessions() as session, session.begin():
        session.add(User(username="ann", role=Role.REP))
        await session.flush()
        assert await users(session) == ("ann",) and await users(session) == ("ann",)
        assert len(asked) == 1
        session.add(Team(name="north"))  # another table: still known
        await session.flush()
        assert await users(session) == ("ann",) and len(asked) == 1

        session.add(User(username="bob", role=Role.REP))  # a new object, flushed
        assert await users(session) == ("ann", "bob") and len(asked) == 2
        (await session.scalar(select(User).where(User.username == "bob"))).display_name = "Bob"  # a change
        await session.flush()
        await users(session)
        assert len(asked) == 3
        await session.execute(insert(User).values(username="cy", role=Role.REP))  # a statement
        assert await users(session) == ("ann", "bob", "cy") and len(asked) == 4
        await session.execute(update(User.__table__).where(User.username == "cy").values(username="cyd"))
        assert await users(session) == ("ann", "bob", "cyd") and len(asked) == 5
        await session.execute(text("UPDATE user_account SET username = 'ann2' WHERE username = 'ann'"))  # plain SQL
        assert await users(session) == ("ann2", "bob", "cyd") and len(asked) == 6

    async with sessions() as session, session.begin():
        await users(session)
        assert len(asked) == 7  # another transaction asks again
        await users(session)
        assert len(asked) == 7


async def test_a_rep_let_go_in_the_transaction_is_not_among_the_reps_told(sessions):
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        ann = User(username="ann", role=Role.REP)
        bob = User(username="bob", role=Role.REP)
        session.add_all([ann, bob])
        await session.flush()
        session.add_all([UserHandle(user_id=u.id, channel_account_id=account_id, external_id=u.username)
                         for u in (ann, bob)])
        assert [u.username for u in await reps.reps_for_channel("telegram", db_session=session)] == ["ann", "bob"]
        bob.is_active = False
        assert [u.username for u in await reps.reps_for_channel("telegram", db_session=session)] == ["ann"]
