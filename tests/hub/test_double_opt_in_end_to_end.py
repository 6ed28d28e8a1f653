"""Double opt-in: a grant an operator enters for someone is only a question until the
person answers yes; the ledger then holds both halves of the proof. A bare "yes" from
someone never asked grants nothing; "subscribe me" does, with their words."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Contact, Identity, Message
from tests.fakes.stack import eventually, telegram_stack


async def test_an_operators_grant_waits_for_the_persons_yes(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        hub, api, base = stack.hub, stack.api(), f"{stack.hub_base}/api/v1/contacts"
        for user, text in ((6001, "hello"), (6002, "hi")):
            await stack.customer_writes(user, text, first_name=f"U{user}", language_code="en")
        await eventually(stack.delivered)

        async def contact_of(user: int) -> int:
            async with hub.sessions() as session:
                return await session.scalar(select(Contact.id).join(Identity, Identity.contact_id == Contact.id)
                                            .where(Identity.external_id == str(user)))
        anna, ben = await contact_of(6001), await contact_of(6002)

        resp = await stack.client.post(f"{base}/{anna}/consent", headers=api,
                                       json={"granted": True, "double_opt_in": True, "note": "expo form"})
        assert resp.json()["status"] == "awaiting_confirmation", resp.text
        await eventually(lambda: _has_line(stack, 6001, "Reply YES to confirm"))
        ledger = (await stack.client.get(f"{base}/{anna}/consent", headers=api)).json()
        assert ledger["state"] == {} and len(ledger["awaiting_confirmation"]) == 1

        await stack.customer_writes(6001, "YES")
        await eventually(lambda: _has_line(stack, 6001, "you are subscribed"))
        ledger = (await stack.client.get(f"{base}/{anna}/consent", headers=api)).json()
        assert ledger["state"]["marketing"]["*"]["granted"] is True
        proof = ledger["events"][-1]
        assert proof["source"] == "double_opt_in" and proof["evidence"]["words"] == "YES"
        assert proof["evidence"]["requested_by"] == "admin" and proof["evidence"]["request"]["note"] == "expo form"
        assert ledger["awaiting_confirmation"] == []

        # Ben was never asked: his "yes" grants nothing; "subscribe me" does.
        await stack.customer_writes(6002, "yes")

        async def read_by_the_worker() -> bool:  # not only stored: nothing it could grant is still to come
            async with hub.sessions() as session:
                return await session.scalar(select(Message.processed_at).where(Message.text == "yes")) is not None
        await eventually(read_by_the_worker)
        assert (await stack.client.get(f"{base}/{ben}/consent", headers=api)).json()["events"] == []
        await stack.customer_writes(6002, "please subscribe me to your news")
        await eventually(lambda: _has_line(stack, 6002, "you are subscribed"))
        events = (await stack.client.get(f"{base}/{ben}/consent", headers=api)).json()["events"]
        assert [(e["source"], e["granted"]) for e in events] == [("message", True)]

        # Withdrawn by an operator after a phone call: recorded with who and why.
        resp = await stack.client.post(f"{base}/{ben}/consent", headers=api,
                                       json={"granted": False, "note": "asked on the phone"})
        assert resp.json()["state"]["marketing"]["*"]["granted"] is False
        assert resp.json()["events"][-1]["actor"] == "admin"


async def _has_line(stack, user: int, text: str) -> bool:
    return any(text in line for line in stack.bot_lines(user))
