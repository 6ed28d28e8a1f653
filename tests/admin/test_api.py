"""The REST API: tokens and roles, channel accounts without secrets, contacts,
conversations, sending into a conversation, health and OpenAPI."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from crm_core.db import utcnow
from crm_core.models import AuditLog, ChannelAccount, Conversation, Message, OutboxMessage, OutboxStatus, Role
from crm_core.people import users
from tests.fakes.stack import eventually, telegram_stack


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def token_for(stack, role: Role, username: str | None = None) -> tuple[str, int]:
    async with stack.hub.sessions() as session, session.begin():
        user = await users.get_or_create(username or f"u-{role.value}", role, db_session=session)
        return await users.create_token(user, name="t", db_session=session), user.id


async def a_conversation(stack, user_id: int = 801, text: str = "hello") -> int:
    await stack.customer_writes(user_id, text, first_name="Eve")

    async def found():
        async with stack.hub.sessions() as session:
            return await session.scalar(select(Conversation.id).where(Conversation.external_thread_id == str(user_id)))

    return await eventually(found)


async def test_requests_without_a_valid_token_are_401(stack):
    for headers in ({}, {"Authorization": "Bearer scrm_nope"}, {"Authorization": "Basic abc"}):
        resp = await stack.client.get(f"{stack.hub_base}/api/v1/contacts", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["detail"]


async def test_connecting_a_telegram_bot_tests_it_and_never_returns_secrets(stack):
    bot = stack.simulator.create_bot(username="second_bot")
    body = {"kind": "telegram", "name": "Support bot", "api_base": stack.sim_base,
            "credentials": {"bot_token": bot.token}}
    resp = await stack.client.post(f"{stack.hub_base}/api/v1/channel-accounts", json=body, headers=stack.api())
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["platform_account_id"] == str(bot.id)
    assert created["webhook_url"] == f"{stack.hub.settings.base_url}/hooks/telegram/{created['id']}"
    assert bot.webhook_url == created["webhook_url"]  # registered with the platform
    for listing in (created, (await stack.client.get(f"{stack.hub_base}/api/v1/channel-accounts/{created['id']}",
                                                     headers=stack.api())).json(),
                    (await stack.client.get(f"{stack.hub_base}/api/v1/channel-accounts", headers=stack.api())).json()):
        assert bot.token not in str(listing)
        assert bot.secret_token not in str(listing)
        assert "credentials" not in str(listing)
    async with stack.hub.sessions() as session:
        row = await session.get(ChannelAccount, created["id"])
        audit = (await session.scalars(select(AuditLog.action))).all()
    assert bot.token not in row.credentials_encrypted  # encrypted at rest
    assert "channel_account.create" in audit

    again = await stack.client.post(f"{stack.hub_base}/api/v1/channel-accounts", json=body, headers=stack.api())
    assert again.status_code == 409
    assert "already connected" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"kind": "fax", "name": "x", "credentials": {}}, 422, "unknown channel kind"),
        ({"kind": "telegram", "name": "x", "credentials": {"bot_token": "not-a-token"}}, 422, "telegram credentials"),
        ({"kind": "telegram", "name": "x", "credentials": {"bot_token": "123456:" + "A" * 35}}, 400,
         "connection test failed"),
        ({"kind": "telegram", "name": "x", "credentials": {"bot_token": "123456:" + "A" * 35},
          "settings": {"mode": "carrier-pigeon"}}, 422, "telegram settings"),
    ],
    ids=["unknown-kind", "malformed-token", "token-the-platform-refuses", "bad-settings"],
)
async def test_bad_channel_accounts_are_refused_with_the_reason(stack, body, status, detail):
    body = {**body, "api_base": stack.sim_base}
    resp = await stack.client.post(f"{stack.hub_base}/api/v1/channel-accounts", json=body, headers=stack.api())
    assert resp.status_code == status, resp.text
    assert detail in str(resp.json()["detail"])


async def test_reps_cannot_manage_channels(stack):
    rep_token, _ = await token_for(stack, Role.REP)
    resp = await stack.client.get(f"{stack.hub_base}/api/v1/channel-accounts", headers=stack.api(rep_token))
    assert resp.status_code == 403
    assert "role rep" in resp.json()["detail"]


async def test_contacts_and_conversations_with_identities_and_messages(stack):
    conversation_id = await a_conversation(stack)
    await eventually(lambda: _sent_count(stack, 1))
    contacts = (await stack.client.get(f"{stack.hub_base}/api/v1/contacts", headers=stack.api())).json()
    [contact] = contacts
    detail = (await stack.client.get(f"{stack.hub_base}/api/v1/contacts/{contact['id']}", headers=stack.api())).json()
    assert detail["display_name"] == "Eve"
    assert [(i["external_id"], i["reachable"]) for i in detail["identities"]] == [("801", True)]
    convs = (await stack.client.get(f"{stack.hub_base}/api/v1/conversations?contact_id={contact['id']}",
                                    headers=stack.api())).json()
    assert [c["id"] for c in convs] == [conversation_id]
    messages = (await stack.client.get(f"{stack.hub_base}/api/v1/conversations/{conversation_id}/messages",
                                       headers=stack.api())).json()
    assert [(m["direction"], m["delivery_status"]) for m in messages] == [("in", None), ("out", "sent")]
    newer = (await stack.client.get(
        f"{stack.hub_base}/api/v1/conversations/{conversation_id}/messages?after_id={messages[0]['id']}",
        headers=stack.api())).json()
    assert [m["id"] for m in newer] == [messages[1]["id"]]
    missing = await stack.client.get(f"{stack.hub_base}/api/v1/contacts/99999", headers=stack.api())
    assert missing.status_code == 404


async def test_a_person_sends_into_a_conversation_and_the_customer_receives_it(stack):
    conversation_id = await a_conversation(stack, 802)
    await eventually(lambda: _sent_count(stack, 1))
    headers = {**stack.api(), "Idempotency-Key": "reply-1"}
    url = f"{stack.hub_base}/api/v1/conversations/{conversation_id}/messages"
    first = await stack.client.post(url, json={"text": "Our price list is attached."}, headers=headers)
    second = await stack.client.post(url, json={"text": "Our price list is attached."}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]  # the retried request is one send
    await eventually(lambda: _sent_count(stack, 2))
    assert stack.bot_lines(802)[-1] == "Our price list is attached."
    assert stack.bot_lines(802).count("Our price list is attached.") == 1
    empty = await stack.client.post(url, json={"text": ""}, headers=stack.api())
    assert empty.status_code == 422


async def test_a_rep_sees_only_their_own_conversations_and_contacts(stack):
    mine = await a_conversation(stack, 803)
    theirs = await a_conversation(stack, 804)
    rep_token, rep_id = await token_for(stack, Role.REP, "li")
    async with stack.hub.sessions() as session, session.begin():
        await session.execute(update(Conversation).where(Conversation.id == mine).values(assignee_user_id=rep_id))
    h = stack.api(rep_token)
    convs = (await stack.client.get(f"{stack.hub_base}/api/v1/conversations", headers=h)).json()
    assert [c["id"] for c in convs] == [mine]
    contacts = (await stack.client.get(f"{stack.hub_base}/api/v1/contacts", headers=h)).json()
    assert len(contacts) == 1
    for path in (f"/api/v1/conversations/{theirs}/messages",):
        assert (await stack.client.get(stack.hub_base + path, headers=h)).status_code == 404
    resp = await stack.client.post(f"{stack.hub_base}/api/v1/conversations/{theirs}/messages",
                                   json={"text": "hi"}, headers=h)
    assert resp.status_code == 404


async def test_health_and_openapi(stack):
    health = await stack.client.get(f"{stack.hub_base}/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["database"] in ("sqlite", "postgresql")
    spec = (await stack.client.get(f"{stack.hub_base}/openapi.json")).json()
    for path in ("/api/v1/channel-accounts", "/api/v1/contacts/{contact_id}",
                 "/api/v1/conversations/{conversation_id}/messages", "/hooks/{kind}/{account_id}"):
        assert path in spec["paths"]


async def test_health_is_503_when_the_database_is_gone(stack):
    from crm_core.db import create_engine, session_factory

    stack.hub.sessions = session_factory(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    resp = await stack.client.get(f"{stack.hub_base}/healthz")
    assert resp.status_code == 503
    assert resp.json()["status"] == "error"


async def _sent_count(stack, n: int) -> bool:
    async with stack.hub.sessions() as session:
        rows = (await session.scalars(select(OutboxMessage.status))).all()
    return sum(1 for s in rows if s == OutboxStatus.SENT) >= n


async def test_a_persons_data_is_exported_whole_and_only_theirs(stack):
    import json

    from crm_core.consent import service as consent
    from crm_core.models import Contact, MessagePurpose

    mine = await a_conversation(stack, 805, text="my email is eve@example.com")
    await a_conversation(stack, 806, text="someone else entirely")
    await eventually(lambda: _sent_count(stack, 2))
    async with stack.hub.sessions() as session, session.begin():
        conversation = await session.get(Conversation, mine)
        await consent.record(conversation.contact_id, purpose=MessagePurpose.MARKETING, granted=True, source="form",
                             evidence={"form": "spring-fair"}, actor_label="operator", db_session=session)
        contact_id = conversation.contact_id
        # The same person met earlier on another channel, merged into this contact.
        earlier = Contact(display_name="Eve (email)", stage="new", merged_into_id=contact_id)
        session.add(earlier)
        await session.flush()
        await consent.record(earlier.id, purpose=MessagePurpose.MARKETING, granted=False, source="message",
                             evidence={"words": "STOP"}, db_session=session)
        earlier_id = earlier.id
        other = await session.scalar(select(Contact.id).where(Contact.id.not_in([contact_id, earlier.id]),
                                                              Contact.is_staff.is_(False)))
    resp = await stack.client.get(f"{stack.hub_base}/api/v1/contacts/{contact_id}/export", headers=stack.api())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-disposition"] == f'attachment; filename="contact-{contact_id}-export.json"'
    data = resp.json()
    assert data["format"] == "scrm-hub.person-export.v1" and data["contact"]["id"] == contact_id
    assert [(i["channel"], i["external_id"]) for i in data["identities"]] == [("telegram", "805")]
    assert [m["text"] for m in data["messages"]][0] == "my email is eve@example.com"
    assert data["messages"][1]["direction"] == "out" and data["messages"][1]["delivery_status"] == "sent"
    assert [c["display_name"] for c in data["merged_contacts"]] == ["Eve (email)"]
    assert [(e["purpose"], e["granted"], e["evidence"]) for e in data["consent_ledger"]] == [
        ("marketing", True, {"form": "spring-fair"}), ("marketing", False, {"words": "STOP"})]
    assert "someone else entirely" not in json.dumps(data, ensure_ascii=False)
    async with stack.hub.sessions() as session:
        exported = (await session.scalars(select(AuditLog).where(AuditLog.action == "contact.export"))).all()
    assert [(a.entity_id, a.details["messages"]) for a in exported] == [(str(contact_id), 2)]
    # Only admins and operators may take a person's data out; a rep or manager may not.
    for role in (Role.REP, Role.MANAGER):
        token, _ = await token_for(stack, role)
        denied = await stack.client.get(f"{stack.hub_base}/api/v1/contacts/{other}/export", headers=stack.api(token))
        assert denied.status_code == 403
    merged = await stack.client.get(f"{stack.hub_base}/api/v1/contacts/{earlier_id}/export", headers=stack.api())
    assert merged.status_code == 409 and f"merged into {contact_id}" in merged.json()["detail"]
    missing = await stack.client.get(f"{stack.hub_base}/api/v1/contacts/999999/export", headers=stack.api())
    assert missing.status_code == 404


async def test_erasure_removes_the_person_and_keeps_counts_and_consent_proof(stack):
    import json

    from crm_core.consent import service as consent
    from crm_core.models import Contact, ContactKey, Identity, Message, MessagePurpose
    from crm_core.outbox.service import enqueue_to_conversation
    from crm_core.ports import OutboundMessage

    conversation_id = await a_conversation(stack, 807, text="I'm Eve Zhang, my phone is +8613800138000")
    await eventually(lambda: _sent_count(stack, 1))
    async with stack.hub.sessions() as session, session.begin():
        conversation = await session.get(Conversation, conversation_id)
        contact_id = conversation.contact_id
        keys = (await session.scalars(select(ContactKey.value).where(ContactKey.contact_id == contact_id))).all()
        assert keys == ["+8613800138000"]  # the phone they stated, a key linking channels
        await consent.record(contact_id, purpose=MessagePurpose.MARKETING, granted=False, source="message",
                             evidence={"words": "STOP"}, db_session=session)
        queued = await enqueue_to_conversation(
            conversation, OutboundMessage(conversation.external_thread_id, "Eve, our spring offer"),
            idempotency_key="later", purpose=MessagePurpose.SERVICE, db_session=session,
            not_before=utcnow() + dt.timedelta(days=1))
        queued_id = queued.id
    url = f"{stack.hub_base}/api/v1/contacts/{contact_id}/erase"
    wrong = await stack.client.post(url, json={"confirm_contact_id": contact_id + 1}, headers=stack.api())
    assert wrong.status_code == 422
    for role in (Role.OPERATOR, Role.MANAGER, Role.REP):
        token, _ = await token_for(stack, role)
        assert (await stack.client.post(url, json={"confirm_contact_id": contact_id},
                                        headers=stack.api(token))).status_code == 403
    resp = await stack.client.post(url, json={"confirm_contact_id": contact_id}, headers=stack.api())
    assert resp.status_code == 200, resp.text
    assert resp.json()["messages"] == 3 and resp.json()["sends_cancelled"] == 1  # in, greeting, queued

    data = (await stack.client.get(f"{stack.hub_base}/api/v1/contacts/{contact_id}/export",
                                   headers=stack.api())).json()
    dumped = json.dumps(data, ensure_ascii=False)
    for personal in ("Eve", "8613800138000", '"807"', "spring offer"):
        assert personal not in dumped, personal
    assert len(data["messages"]) == 3 and all(m["text"] is None for m in data["messages"])  # counts kept
    assert [(e["granted"], e["evidence"]) for e in data["consent_ledger"]] == [(False, {"words": "STOP"})]
    async with stack.hub.sessions() as session:
        assert (await session.scalars(select(ContactKey).where(ContactKey.contact_id == contact_id))).all() == []
        row = await session.get(OutboxMessage, queued_id)
        assert row.status == OutboxStatus.CANCELLED and row.payload == {}
        assert (await session.scalars(select(AuditLog.action).where(AuditLog.action == "contact.erase"))).all()

    # Writing again, the person is someone new: nothing links back to the erased contact.
    await stack.customer_writes(807, "hello again", first_name="Eve")

    async def new_contact():
        async with stack.hub.sessions() as session:
            return await session.scalar(select(Identity.contact_id).where(Identity.external_id == "807"))

    assert await eventually(new_contact) != contact_id
    async with stack.hub.sessions() as session:
        erased = await session.get(Contact, contact_id)
        assert erased.display_name is None and erased.merged_into_id is None
        assert await session.scalar(select(Message.text).where(Message.text == "hello again"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_operator_retests_renames_switches_off_and_rotates_a_channels_secret(stack):
    base = f"{stack.hub_base}/api/v1/channel-accounts/{stack.account_id}"
    client = stack.client
    ok = (await client.post(f"{base}/test", headers=stack.api())).json()
    assert ok["ok"] and ok["platform_account_id"] == str(stack.bot.id)
    rep, _ = await token_for(stack, Role.REP, "li")
    assert (await client.patch(base, json={"is_active": False}, headers=stack.api(rep))).status_code == 403

    # Switched off: the platform's calls are refused and nothing is stored, though the hub had
    # just taken a message from it; on again, the webhook is registered anew.
    await stack.customer_writes(610, "hello while on")

    async def stored():
        async with stack.hub.sessions() as session:
            return await session.scalar(select(Message.id).where(Message.text == "hello while on"))
    await eventually(stored)
    resp = await client.patch(base, json={"is_active": False, "name": "Old bot"}, headers=stack.api())
    assert (resp.json()["is_active"], resp.json()["name"]) == (False, "Old bot")
    await stack.customer_writes(611, "hello while off")
    await asyncio.sleep(0.5)  # the simulator pushes it at once, and again after 0.05, 0.1 and 0.2 s
    async with stack.hub.sessions() as session:
        assert await session.scalar(select(Message.id).where(Message.text == "hello while off")) is None
    stack.bot.webhook_url = None
    resp = await client.patch(base, json={"is_active": True}, headers=stack.api())
    assert resp.json()["is_active"] and stack.bot.webhook_url == resp.json()["webhook_url"]

    # The token is rotated at the platform: the saved one stops working, the new one replaces it.
    rotated = stack.simulator.create_bot(token=f"{stack.bot.id}:{'r' * 35}")
    failed = await client.post(f"{base}/test", headers=stack.api())
    assert failed.status_code == 400 and "check its credentials, or replace them" in failed.json()["detail"]
    other = stack.simulator.create_bot(username="someone_elses_bot")
    for credentials, status, words in (({"bot_token": "nope"}, 422, "telegram credentials"),
                                       ({"bot_token": f"{stack.bot.id}:{'w' * 35}"}, 400, "the old credentials stay"),
                                       ({"bot_token": other.token}, 409, "add that one as a new account")):
        resp = await client.patch(base, json={"credentials": credentials}, headers=stack.api())
        assert resp.status_code == status and words in str(resp.json()["detail"]), resp.text
    resp = await client.patch(base, json={"credentials": {"bot_token": rotated.token}}, headers=stack.api())
    assert resp.status_code == 200 and rotated.token not in resp.text
    assert rotated.webhook_url == resp.json()["webhook_url"]
    assert (await client.post(f"{base}/test", headers=stack.api())).json()["ok"]
    async with stack.hub.sessions() as session:
        updates = (await session.scalars(select(AuditLog).where(AuditLog.action == "channel_account.update")
                                         .order_by(AuditLog.id))).all()
    assert [u.details for u in updates] == [{"name": {"from": "Test bot", "to": "Old bot"}, "is_active": False},
                                            {"is_active": True}, {"credentials": "replaced"}]
    assert rotated.token not in str([u.details for u in updates])
