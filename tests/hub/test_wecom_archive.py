"""WeCom's session archive through a compiled stand-in for Tencent's finance SDK (the same C
functions and signatures, loaded with ctypes): the RSA step with rotated keys, the committed seq,
and a customer who writes 退订 to their rep being opted out, with no bot answering a person's chat."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select

from channels.wecom.adapter import WeComAdapter
from channels.wecom.archive import ArchiveUnavailable, FinanceSdk
from crm_core import accounts
from crm_core.consent import service as consent
from crm_core.models import ChannelAccount, Identity, Message, MessagePurpose, OutboxMessage
from tests.fakes.stack import eventually, workspace_stack

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SDK_SOURCE = Path(__file__).parents[1] / "fakes" / "finance_sdk.c"
ARCHIVE_SECRET = "archive-secret-0123456789"


@pytest.fixture
def sdk_library(tmp_path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the stand-in for WeCom's finance SDK")
    library = tmp_path / "libWeWorkFinanceSdk_C.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SDK_SOURCE)], check=True)
    return library


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _entry(seq: int, message: dict, key: rsa.RSAPrivateKey, version: int) -> str:
    random_key = f"rk{seq:04d}abcdefghijklmnopqrstuvwxyz"
    plain = json.dumps(message, ensure_ascii=False).encode()
    cipher = bytes(b ^ random_key.encode()[i % len(random_key)] for i, b in enumerate(plain)).hex()
    wrapped = key.public_key().encrypt(random_key.encode(), padding.PKCS1v15())
    return json.dumps({"seq": seq, "msgid": message["msgid"], "publickey_ver": version,
                       "encrypt_random_key": base64.b64encode(wrapped).decode(), "encrypt_chat_msg": cipher})


def _said(seq: int, sender: str, to: str, text: str, **extra) -> dict:
    return {"msgid": f"m{seq}", "action": "send", "from": sender, "tolist": [to], "roomid": "",
            "msgtime": 1733300000000 + seq, "msgtype": "text", "text": {"content": text}, **extra}


def test_the_binding_refuses_a_wrong_secret_and_a_missing_library(sdk_library, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FINANCE_CORP", "ww0123456789abcdef")
    monkeypatch.setenv("FAKE_FINANCE_SECRET", ARCHIVE_SECRET)
    with pytest.raises(ArchiveUnavailable, match="10000"):
        FinanceSdk(str(sdk_library), "ww0123456789abcdef", "not the secret")
    with pytest.raises(ArchiveUnavailable, match="会话内容存档"):
        FinanceSdk(str(tmp_path / "missing.so"), "ww0123456789abcdef", ARCHIVE_SECRET)


@sqlite_only
async def test_archived_chat_is_read_once_with_rotated_keys_and_a_customers_stop_opts_them_out(
        database_url, tmp_path, sdk_library, monkeypatch):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        await ws.wecom_post("customers/wmDana000001/add", {"rep": "li", "name": "Dana"})
        await ws.rep_receives("li", "Dana")
        old_key, new_key = _key(), _key()
        data = tmp_path / "archive.jsonl"
        data.write_text("\n".join([
            _entry(1, _said(1, "wmDana000001", "li", "你好，上次的报价还有效吗？"), old_key, 1),
            _entry(2, _said(2, "li", "wmDana000001", "有效的，这周内都可以"), old_key, 1),  # the rep's words
            _entry(3, _said(3, "wmDana000001", "li", "退订"), new_key, 2),               # after the key rotated
        ]) + "\n")
        monkeypatch.setenv("FAKE_FINANCE_DATA", str(data))
        monkeypatch.setenv("FAKE_FINANCE_CORP", app.corp_id)
        monkeypatch.setenv("FAKE_FINANCE_SECRET", ARCHIVE_SECRET)

        async with hub.sessions() as session:
            row = await session.get(ChannelAccount, ws.wecom_account_id)
            ref = accounts.to_ref(row, hub.cipher)
        credentials = {**ref.credentials, "archive_secret": ARCHIVE_SECRET,
                       "archive_private_keys": {"1": _pem(old_key), "2": _pem(new_key)}}
        settings = {**ref.settings, "archive_sdk_path": str(sdk_library)}
        ref = type(ref)(**{**ref.__dict__, "credentials": credentials, "settings": settings})
        adapter = hub.channels.get("wecom")
        assert isinstance(adapter, WeComAdapter) and adapter.wants_polling(ref)

        async def load_cursor(name: str) -> str | None:
            async with hub.sessions() as session:
                return await accounts.get_cursor(ws.wecom_account_id, name, db_session=session)
        poller = adapter.make_poller(ref, hub.ingest, load_cursor)
        assert await poller.pull_once() == 3
        assert await poller.pull_once() == 0  # the seq was committed with the messages
        restarted = adapter.make_poller(ref, hub.ingest, load_cursor)
        assert await restarted.pull_once() == 0
        poller.reader.sdk.close()
        restarted.reader.sdk.close()

        async with hub.sessions() as session:
            dana = await session.scalar(select(Identity).where(Identity.external_id == "wmDana000001"))
            texts = (await session.scalars(select(Message.text).where(
                Message.identity_id == dana.id, Message.platform_message_id.like("archive:%")))).all()
        assert sorted(texts) == sorted(["你好，上次的报价还有效吗？", "退订"])  # the customer's words, once each

        async def opted_out():
            async with hub.sessions() as session:
                events = await consent.events_of({dana.contact_id}, {MessagePurpose.MARKETING}, db_session=session)
            found = events.get((dana.contact_id, MessagePurpose.MARKETING), [])
            return found if found and not found[-1].granted else None
        await eventually(opted_out, timeout=15)
        async with hub.sessions() as session:
            # Nothing answered Dana: a person was talking.
            answers = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.identity_id == dana.id, OutboxMessage.idempotency_key.like("reply:%")))
        assert answers == 0
