"""A contact who never gave a name is called by a channel's nickname, else by the channel and
their id there: never a bare "#8"."""

from __future__ import annotations

from crm_core.contacts.naming import shown_names
from crm_core.models import Contact, Identity
from tests.crm_core.test_ingest import make_account


async def test_a_contact_without_a_name_is_shown_by_nickname_or_channel(sessions):
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        named, nicknamed, bare = (Contact(display_name="Wang Wei", stage="new"), Contact(stage="new"),
                                  Contact(stage="new"))
        session.add_all([named, nicknamed, bare])
        await session.flush()
        session.add_all([Identity(contact_id=nicknamed.id, channel_account_id=account_id, external_id="501"),
                         Identity(contact_id=nicknamed.id, channel_account_id=account_id, external_id="502",
                                  display_name="小王"),
                         Identity(contact_id=bare.id, channel_account_id=account_id, external_id="10002")])
        await session.flush()
        names = await shown_names([named, nicknamed, bare, Contact(id=999, stage="new")], db_session=session)
    assert names == {named.id: "Wang Wei", nicknamed.id: "小王", bare.id: "Telegram 10002", 999: "#999"}
