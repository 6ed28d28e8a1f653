"""`crm_core.sql.among`: a batch's values bound as one parameter find exactly the rows IN would."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Contact
from crm_core.sql import among

# Keys as platforms and users make them: quotes, backslashes, Chinese, an emoji, JSON's own syntax.
ORIGINS = ["plain", "it's", 'say "hi"', "back\\slash", "客户:张三", "🙂", "[1, 2]", '{"a": 1}', ""]


async def test_among_finds_what_in_finds_for_ids_and_keys_and_nothing_else(sessions):
    async with sessions() as session, session.begin():
        session.add_all([Contact(display_name=f"c{n}", origin=origin) for n, origin in enumerate(ORIGINS)])
        await session.flush()
        ids = list((await session.scalars(select(Contact.id).order_by(Contact.id))).all())
        by_origin = dict((await session.execute(select(Contact.origin, Contact.id))).all())
        for some in (ids[:3], ids[4:], [ids[2]], [], [*ids[:2], 10**12]):
            found = await session.scalars(select(Contact.id).where(among(Contact.id, some)).order_by(Contact.id))
            assert list(found) == [i for i in ids if i in some]
            others = await session.scalars(select(Contact.id).where(~among(Contact.id, some)))
            assert set(others) == set(ids) - set(some)
        # One statement, its list given when it runs, whatever the list's length.
        named = select(Contact.id).where(among(Contact.origin, name="origins"))
        for some in (ORIGINS, ORIGINS[1:4], ["客户:张三", "nobody"], ["it"], []):
            found = await session.scalars(named, {"origins": some})
            assert set(found) == {by_origin[o] for o in some if o in by_origin}
