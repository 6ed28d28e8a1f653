"""WeCom's session archive as WeCom delivers it: what a customer writes to a rep is never posted to
the app's callback; the hub reads it from the archive through a compiled stand-in for Tencent's
finance SDK (the same C functions and signatures, loaded with ctypes), with the RSA step, keys
rotated and given to the hub through the API, and the seq committed with the messages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from channels.simulators.wecom_archive import Archive, build_sdk
from channels.wecom.archive import ArchiveUnavailable, FinanceSdk
from crm_core import accounts
from crm_core.consent import service as consent
from crm_core.models import AuditLog, ChannelAccount, Conversation, Identity, Message, MessagePurpose, OutboxMessage
from tests.fakes.stack import eventually, workspace_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_the_binding_says_what_is_wrong_with_the_sdk(tmp_path):
    library = build_sdk(tmp_path)
    archive = Archive(tmp_path / "data", "ww0123456789abcdef")
    with pytest.raises(ArchiveUnavailable, match="10000"):
        FinanceSdk(str(library), archive.corp_id, "not the secret")
    with pytest.raises(ArchiveUnavailable, match="会话内容存档"):
        FinanceSdk(str(tmp_path / "missing.so"), archive.corp_id, archive.secret)
    sdk = FinanceSdk(str(library), archive.corp_id, archive.secret)
    try:
        assert sdk.chat_data(0) == []
        with pytest.raises(ArchiveUnavailable, match="10006"):
            sdk.decrypt("a key", "not hex")
        # A picture of several pieces (the stand-in serves 4 KB a call), read to its end.
        picture = bytes(range(256)) * 70
        media = tmp_path / "data" / f"{archive.corp_id}.media"
        media.mkdir()
        (media / "sdkFILE01").write_bytes(picture)
        assert sdk.media("sdkFILE01") == picture
        with pytest.raises(ArchiveUnavailable, match="10005"):
            sdk.media("no-such-file")
    finally:
        sdk.close()


@sqlite_only
async def test_a_customers_words_to_a_rep_come_from_the_archive_once_and_a_stop_opts_them_out(
        database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        await ws.wecom_post("customers/wmDana000001/add", {"rep": "li", "name": "Dana"})
        await ws.rep_receives("li", "Dana")
        callbacks = len(app.deliveries)
        await ws.wecom_post("customers/wmDana000001/messages", {"text": "你好，上次的报价还有效吗？"})
        assert len(app.deliveries) == callbacks  # nothing on the app's callback, as in WeCom
        await ws.rep_receives("li", "上次的报价")  # the owner's card, from the archive

        # The channels page says nothing is missing; a WeCom app without the archive is told it is.
        page = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/channel-accounts/{ws.wecom_account_id}",
                                       headers=ws.tg.api())).json()
        assert page["notices"] == []
        bare = ws.wecom.create_app()
        async with hub.sessions() as session, session.begin():
            other = await accounts.create(
                kind="wecom", name="No archive", platform_account_id=f"{bare.corp_id}:{bare.agent_id}",
                credentials={"corp_id": bare.corp_id, "agent_id": bare.agent_id, "secret": bare.secret,
                             "token": bare.token, "encoding_aes_key": bare.encoding_aes_key},
                api_base=ws.wecom_base, settings={}, cipher=hub.cipher, actor=None, db_session=session)
        page = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/channel-accounts/{other.id}",
                                       headers=ws.tg.api())).json()
        assert ["会话存档" in n and "archive_sdk_path" in n for n in page["notices"]] == [True]

        # The company sets a new public key in WeCom; the new private key is given to the hub.
        app.archive.rotate()
        async with hub.sessions() as session:
            ref = accounts.to_ref(await session.get(ChannelAccount, ws.wecom_account_id), hub.cipher)
        resp = await ws.tg.client.patch(
            f"{ws.tg.hub_base}/api/v1/channel-accounts/{ws.wecom_account_id}", headers=ws.tg.api(),
            json={"credentials": {**ref.credentials, "archive_private_keys": app.archive.private_keys_pem()}})
        assert resp.status_code == 200, resp.text
        await ws.wecom_post("customers/wmDana000001/messages", {"text": "退订"})  # under key version 2

        async with hub.sessions() as session:
            dana = await session.scalar(select(Identity).where(Identity.external_id == "wmDana000001"))

        async def opted_out():
            async with hub.sessions() as session:
                events = await consent.events_of({dana.contact_id}, {MessagePurpose.MARKETING}, db_session=session)
            found = events.get((dana.contact_id, MessagePurpose.MARKETING), [])
            return found if found and not found[-1].granted else None
        await eventually(opted_out, timeout=20)

        async with hub.sessions() as session:
            texts = (await session.scalars(select(Message.text).where(
                Message.identity_id == dana.id, Message.platform_message_id.like("archive:%")))).all()
            answers = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.identity_id == dana.id, OutboxMessage.idempotency_key.like("reply:%")))
            seq = await accounts.get_cursor(ws.wecom_account_id, "archive_seq", db_session=session)
        assert sorted(texts) == sorted(["你好，上次的报价还有效吗？", "退订"])  # each once
        assert answers == 0  # a person was talking: the bot answered neither
        assert seq == "2"

        # A poller started afresh (a restart, another process) reads nothing again.
        async with hub.sessions() as session:
            ref = accounts.to_ref(await session.get(ChannelAccount, ws.wecom_account_id), hub.cipher)

        async def load_cursor(name: str) -> str | None:
            async with hub.sessions() as session:
                return await accounts.get_cursor(ws.wecom_account_id, name, db_session=session)
        restarted = hub.channels.get("wecom").make_poller(ref, hub.ingest, load_cursor)
        try:
            assert await restarted.pull_once() == 0
        finally:
            restarted.reader.sdk.close()


@sqlite_only
async def test_the_archive_brings_the_reps_words_groups_and_recalls_and_nothing_of_who_refused(
        database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub, sim = ws.wecom_app, ws.tg.hub, ws.wecom
        for external, name in (("wmErin000001", "Erin"), ("wmFrank00001", "Frank")):
            await ws.wecom_post(f"customers/{external}/add", {"rep": "li", "name": name})
        await ws.rep_receives("li", "Frank")
        # Li Lei answers Erin from his WeCom client, and recalls a slip.
        said = sim.rep_writes(app, "li", "wmErin000001", "给您打九折，保证明天到货")
        slip = sim.rep_writes(app, "li", "wmErin000001", "发错了")
        sim.recalls(app, "li", slip["msgid"])
        # A customer group with Erin and Li Lei.
        sim.group_writes(app, "wrGroup0001", "wmErin000001", ["li", "wmErin000001"], "群里问一下：发票怎么开？")
        # Frank refuses archiving, then writes.
        sim.customer_answers_archiving(app, "wmFrank00001", agree=False)
        sim.customer_writes(app, "wmFrank00001", "我的私事")
        last = sim.customer_writes(app, "wmErin000001", "好的谢谢")["archived"]

        async def read():
            async with hub.sessions() as session:
                seq = await accounts.get_cursor(ws.wecom_account_id, "archive_seq", db_session=session)
                pending = await session.scalar(select(func.count()).select_from(Message).where(
                    Message.processed_at.is_(None)))
            return seq == str(last) and pending == 0
        await eventually(read, timeout=30)

        async with hub.sessions() as session:
            rows = (await session.execute(select(Message, Conversation.external_thread_id).join(
                Conversation, Conversation.id == Message.conversation_id).where(
                Message.platform_message_id.like("archive:%")).order_by(Message.id))).all()
            li = ws.reps["li"]
            by_text = {m.text: (m, thread) for m, thread in rows if m.text}
            words, thread = by_text["给您打九折，保证明天到货"]
            assert (words.direction.value, words.author_user_id, thread) == ("out", li, "wmErin000001")
            assert any(a.get("type") == "recalled" for a in by_text["发错了"][0].attachments)
            assert by_text["群里问一下：发票怎么开？"][1] == "room:wrGroup0001"
            assert "我的私事" not in by_text and not any("Frank" in (m.text or "") for m, _ in rows)
            # The rep review read his words: a discount and a guarantee are flagged to his manager.
            flagged = (await session.scalars(select(AuditLog.details).where(
                AuditLog.action == "compliance.flagged"))).all()
            assert [d["message_id"] for d in flagged] == [words.id]
            # Nobody answered anything read from the archive.
            assert await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.recipient.in_(["wmErin000001", "wmFrank00001", "room:wrGroup0001"]),
                OutboxMessage.idempotency_key.not_like("welcome:%"))) == 0  # only the welcomes on adding
        assert said["msgid"]
        # The inbox shows the recall; the rep's words are his.
        thread = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/inbox/{words.conversation_id}",
                                         headers=ws.tg.api())).json()["messages"]
        shown = {m["text"]: (m["recalled"], m["author"]) for m in thread}
        assert shown["发错了"] == (True, "Li Lei") and shown["给您打九折，保证明天到货"] == (False, "Li Lei")
