"""`crm_core.sql`: a batch's values bound as one parameter find exactly the rows IN would (`among`),
and rows inserted or updated as one JSON parameter are stored as the ORM stores them (`insert_many`,
`update_many`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, cast, select

from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import Contact, Conversation, Direction, Identity, Message
from crm_core.sql import among, insert_many, insert_many_returning_ids, update_many
from tests.fakes.crowd import load_account

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


# What a platform's payload and a customer's words hold, as a JSON column and as text keep them.
PAYLOADS = [{"text": "客户 \"张三\" 说: it's 🙂", "nested": {"list": [1, 2.5, None, True], "empty": {}}},
            ["a", {"b": "\\"}], {}, [], "just a string", 0, None]


async def test_insert_many_stores_what_the_orms_insert_stores_and_skips_conflicts(sessions):
    """The rows go as one JSON parameter: every value (text with quotes and Chinese, JSON columns,
    None, booleans, times to the microsecond, a column's Python-side default) must come back as the
    ORM's own INSERT leaves it, and a time must be stored in the same form, as SQLite compares them
    as text."""
    now = utcnow()
    times = [now - dt.timedelta(days=400, microseconds=n) for n in range(len(ORIGINS))]
    async with sessions() as session, session.begin():
        account = await load_account(session, "7:token", "http://127.0.0.1:9", CredentialCipher("k" * 32))
        contacts = await insert_many(session, Contact.__table__, [
            {"display_name": origin or None, "origin": f"many:{origin}", "is_staff": n % 2 == 0, "stage": "new",
             "created_at": times[n], "updated_at": now} for n, origin in enumerate(ORIGINS)],
            conflict_columns=("origin",), returning=("origin", "id"))
        assert [origin for origin, _ in sorted(contacts, key=lambda row: row[1])] == [f"many:{o}" for o in ORIGINS]
        # Again with one new: only it is inserted and returned.
        again = await insert_many(session, Contact.__table__, [
            {"display_name": "x", "origin": f"many:{origin}", "is_staff": False, "stage": "new", "created_at": now,
             "updated_at": now} for origin in [*ORIGINS, "new one"]], conflict_columns=("origin",),
            returning=("origin",))
        assert again == [("many:new one",)]
        by_orm = [Contact(display_name=origin or None, origin=f"orm:{origin}", is_staff=n % 2 == 0, stage="new",
                          created_at=times[n], updated_at=now) for n, origin in enumerate(ORIGINS)]
        session.add_all(by_orm)
        await session.flush()
        identity = Identity(contact_id=by_orm[0].id, channel_account_id=account.id, external_id="42")
        session.add(identity)
        await session.flush()
        conversation = Conversation(contact_id=by_orm[0].id, identity_id=identity.id, channel_account_id=account.id,
                                    external_thread_id="42", last_message_at=now)
        session.add(conversation)
        await session.flush()
        common = {"conversation_id": conversation.id, "channel_account_id": account.id, "identity_id": identity.id}
        many_ids = await insert_many_returning_ids(session, Message.__table__, [
            {**common, "direction": Direction.INBOUND, "text": origin, "raw": payload, "created_at": times[n]}
            for n, (origin, payload) in enumerate(zip(ORIGINS, PAYLOADS, strict=False))],
            same={"attachments": [{"type": "image", "name": "图.png"}]}, matched_by=("conversation_id", "text"))
        orm_messages = [Message(**common, direction=Direction.INBOUND, text=origin, raw=payload, created_at=times[n],
                                attachments=[{"type": "image", "name": "图.png"}])
                        for n, (origin, payload) in enumerate(zip(ORIGINS, PAYLOADS, strict=False))]
        session.add_all(orm_messages)
        await session.flush()
        stored_times = (await session.execute(
            select(Message.id, cast(Message.created_at, String)).where(Message.conversation_id == conversation.id)
            .order_by(Message.id))).all()

    columns = ("display_name", "is_staff", "stage", "created_at", "updated_at", "language", "timezone")
    async with sessions() as session:
        mine = {c.origin: c for c in (await session.scalars(select(Contact))).all()}
        for origin in ORIGINS:
            assert [getattr(mine[f"many:{origin}"], name) for name in columns] == \
                   [getattr(mine[f"orm:{origin}"], name) for name in columns]
        messages = {m.id: m for m in (await session.scalars(select(Message))).all()}
        columns = ("text", "raw", "created_at", "attachments", "kind", "direction", "processing_attempts",
                   "processed_at", "intents")
        for many_id, orm_message in zip(many_ids, orm_messages, strict=True):
            assert [getattr(messages[many_id], name) for name in columns] == \
                   [getattr(messages[orm_message.id], name) for name in columns]
    # Stored alike: the same time written both ways is the same text in the database.
    as_text = dict(stored_times)
    for many_id, orm_message in zip(many_ids, orm_messages, strict=True):
        assert as_text[many_id] == as_text[orm_message.id]


async def _account_and_contact(session, token: str) -> tuple:
    account = await load_account(session, token, "http://127.0.0.1:9", CredentialCipher("k" * 32))
    contact = Contact(display_name="c", stage="new")
    session.add(contact)
    await session.flush()
    return account, contact


async def test_insert_many_skips_rows_a_partial_unique_index_holds_and_gives_ids_in_the_rows_order(sessions):
    now = utcnow()
    async with sessions() as session, session.begin():
        account, contact = await _account_and_contact(session, "8:token")
        identity = Identity(contact_id=contact.id, channel_account_id=account.id, external_id="1")
        session.add(identity)
        await session.flush()
        rows = [{"contact_id": contact.id, "identity_id": identity.id, "channel_account_id": account.id,
                 "external_thread_id": thread, "status": status, "created_at": now, "last_message_at": now}
                for thread, status in (("t1", "open"), ("t2", "closed"), ("t3", "open"))]
        first = await insert_many(session, Conversation.__table__, rows, conflict_columns=(
            "channel_account_id", "external_thread_id"), conflict_where="status = 'open'",
            returning=("external_thread_id",))
        assert sorted(first) == [("t1",), ("t2",), ("t3",)]
        # The open ones are taken; a closed thread may have any number of closed conversations.
        second = await insert_many(session, Conversation.__table__, rows, conflict_columns=(
            "channel_account_id", "external_thread_id"), conflict_where="status = 'open'",
            returning=("external_thread_id",))
        assert second == [("t2",)]
        conversation_id = (await session.scalars(select(Conversation.id).where(
            Conversation.external_thread_id == "t1"))).one()
        # Rows alike in the matching columns get their ids in the rows' order.
        words = ["same", "other", "same", "same"]
        ids = await insert_many_returning_ids(session, Message.__table__, [
            {"conversation_id": conversation_id, "text": text} for text in words],
            same={"channel_account_id": account.id, "direction": Direction.OUTBOUND, "created_at": now},
            matched_by=("conversation_id", "text"))
        assert len(set(ids)) == 4 and [i for i, w in zip(ids, words, strict=True) if w == "same"] == sorted(
            i for i, w in zip(ids, words, strict=True) if w == "same")
        stored = dict((await session.execute(select(Message.id, Message.text).where(Message.id.in_(ids)))).all())
        assert [stored[i] for i in ids] == words


async def test_update_many_sets_what_the_orm_sets_keeps_what_it_is_told_and_touches_no_other_row(sessions):
    """Each row found by its id and given its own values (text as platforms send it, booleans, a
    time to the microsecond or none): the same as the ORM's UPDATE leaves them, a column kept
    where a row gives None for it, the rows not named left alone."""
    now = utcnow()
    async with sessions() as session, session.begin():
        account, contact = await _account_and_contact(session, "9:token")
        made = [Identity(contact_id=contact.id, channel_account_id=account.id, external_id=f"{way}:{n}",
                         display_name="before", language="en", reachable=True, last_inbound_at=now)
                for way in ("many", "orm", "untouched") for n in range(len(ORIGINS))]
        session.add_all(made)
        await session.flush()
        ids = {i.external_id: i.id for i in made}
    changes = [{"display_name": origin or None, "reachable": n % 2 == 0, "language": None if n % 3 else "zh-CN",
                "unreachable_since": None if n % 2 == 0 else now - dt.timedelta(microseconds=n),
                "last_inbound_at": None if n % 4 else now + dt.timedelta(seconds=n)}
               for n, origin in enumerate(ORIGINS)]
    kept = ("language", "last_inbound_at")
    async with sessions() as session, session.begin():
        await update_many(session, Identity.__table__, [{"id": ids[f"many:{n}"], **change}
                                                        for n, change in enumerate(changes)], kept_when_none=kept)
        for n, change in enumerate(changes):
            identity = await session.get(Identity, ids[f"orm:{n}"])
            for name, value in change.items():
                if value is not None or name not in kept:
                    setattr(identity, name, value)
    columns = ("display_name", "reachable", "language", "unreachable_since", "last_inbound_at")
    async with sessions() as session:
        stored = {i.external_id: i for i in (await session.scalars(select(Identity))).all()}
        as_text = dict((await session.execute(
            select(Identity.external_id, cast(Identity.unreachable_since, String)))).all())
    for n in range(len(ORIGINS)):
        assert [getattr(stored[f"many:{n}"], name) for name in columns] == \
               [getattr(stored[f"orm:{n}"], name) for name in columns]
        assert as_text[f"many:{n}"] == as_text[f"orm:{n}"]
        untouched = stored[f"untouched:{n}"]
        assert (untouched.display_name, untouched.language, untouched.last_inbound_at) == ("before", "en", now)
    assert stored["many:1"].language == "en" and stored["many:3"].language == "zh-CN"
    assert stored["many:4"].last_inbound_at == now + dt.timedelta(seconds=4) and stored["many:1"].last_inbound_at == now


async def test_a_value_too_long_for_its_column_fares_as_with_the_orm_never_cut_to_fit(sessions):
    """PostgreSQL checks a string column's length as a value is stored (SQLite keeps any length): a
    value read from the rows' JSON is refused where the ORM's is refused and kept whole where the
    ORM's is kept, by `insert_many` and by `update_many`, never cut to the column's length."""
    from sqlalchemy.exc import DBAPIError

    long_name = "名" * 201  # the column holds 200
    outcomes = {}
    for way in ("orm", "insert_many", "update_many"):
        try:
            async with sessions() as session, session.begin():
                if way == "orm":
                    session.add(Contact(display_name=long_name, stage="new", origin=way))
                elif way == "insert_many":
                    now = utcnow()
                    await insert_many(session, Contact.__table__, [{
                        "display_name": long_name, "origin": way, "is_staff": False, "stage": "new",
                        "created_at": now, "updated_at": now}])
                else:
                    contact = Contact(display_name="short", stage="new", origin=way)
                    session.add(contact)
                    await session.flush()
                    await update_many(session, Contact.__table__, [{"id": contact.id, "display_name": long_name}])
            async with sessions() as session:
                outcomes[way] = await session.scalar(select(Contact.display_name).where(Contact.origin == way))
        except DBAPIError:
            outcomes[way] = "refused"
    assert outcomes["orm"] in ("refused", long_name)
    assert outcomes == dict.fromkeys(outcomes, outcomes["orm"]), outcomes
    # Nor is a value looked up with `among` cut: the longer name is not the one that fits.
    async with sessions() as session, session.begin():
        session.add(Contact(display_name=long_name[:200], stage="new", origin="fits"))
        await session.flush()
        found = await session.scalars(select(Contact.origin).where(among(Contact.display_name, [long_name])))
        assert list(found) == ([] if outcomes["orm"] == "refused" else ["orm", "insert_many", "update_many"])
