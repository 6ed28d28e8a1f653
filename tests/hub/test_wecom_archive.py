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
from crm_core.models import ChannelAccount, Identity, Message, MessagePurpose, OutboxMessage
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
