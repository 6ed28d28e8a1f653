"""Channel accounts: connected bots, apps and mailboxes, with encrypted credentials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, catalogues
from crm_core.crypto import CredentialCipher
from crm_core.models import ChannelAccount, ChannelCursor, User
from crm_core.ports import AccountRef

# What staff call each channel (customers are told "WeChat" for WeCom: bots/customer/texts.py).
CHANNELS = {kind: catalogues.text(f"channel.{kind}") for kind in (
    "telegram", "wechat", "wecom", "wecom_kf", "dingtalk", "dingtalk_group_robot", "email")}

# WeCom external contacts' userids begin so (wm..., wo...); a member's userid is free text.
WECOM_CUSTOMER_PREFIXES = ("wm", "wo")


def wecom_customer(column: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: the identity's external id is a WeCom customer's."""
    return or_(*(column.like(prefix + "%") for prefix in WECOM_CUSTOMER_PREFIXES))


def channel_name(kind: str | None, lang: str) -> str:
    return CHANNELS.get(kind or "", {}).get(lang, kind or "")


class DuplicateAccount(Exception):
    pass


class OtherAccount(Exception):
    """New credentials that belong to another platform account than this one."""


async def create(
    *,
    kind: str,
    name: str,
    platform_account_id: str,
    credentials: dict[str, Any],
    api_base: str | None,
    settings: dict[str, Any],
    cipher: CredentialCipher,
    actor: User | None,
    db_session: AsyncSession,
) -> ChannelAccount:
    existing = await db_session.scalar(
        select(ChannelAccount).where(
            ChannelAccount.kind == kind, ChannelAccount.platform_account_id == platform_account_id
        )
    )
    if existing is not None:
        raise DuplicateAccount(
            f"this {kind} account ({platform_account_id}) is already connected as channel account "
            f"{existing.id} ({existing.name!r})"
        )
    account = ChannelAccount(
        kind=kind,
        name=name,
        platform_account_id=platform_account_id,
        credentials_encrypted=cipher.encrypt(credentials),
        api_base=api_base,
        settings=settings,
    )
    db_session.add(account)
    await db_session.flush()
    await audit.record("channel_account.create", entity_type="channel_account", entity_id=account.id,
                       actor=actor, db_session=db_session, details={"kind": kind, "name": name})
    return account


async def update(account: ChannelAccount, *, cipher: CredentialCipher, actor: User | None, db_session: AsyncSession,
                 name: str | None = None, is_active: bool | None = None, credentials: dict[str, Any] | None = None,
                 credentials_account_id: str | None = None) -> dict[str, Any]:
    """Rename, switch off or on, or replace the credentials (a rotated secret) of the same
    platform account (`credentials_account_id`: whose they are, from a connection test).
    What changed, as audited: never the secrets themselves."""
    changes: dict[str, Any] = {}
    if credentials is not None:
        if credentials_account_id != account.platform_account_id:
            raise OtherAccount(f"these credentials belong to {account.kind} account {credentials_account_id}, not "
                               f"{account.platform_account_id} ({account.name!r}); add that one as a new account")
        account.credentials_encrypted = cipher.encrypt(credentials)
        changes["credentials"] = "replaced"
    if name is not None and name.strip() and name.strip() != account.name:
        changes["name"] = {"from": account.name, "to": name.strip()}
        account.name = name.strip()
    if is_active is not None and is_active != account.is_active:
        changes["is_active"] = is_active
        account.is_active = is_active
    if changes:
        await db_session.flush()
        await audit.record("channel_account.update", entity_type="channel_account", entity_id=account.id,
                           actor=actor, db_session=db_session, details=changes)
    return changes


async def get(account_id: int, *, db_session: AsyncSession) -> ChannelAccount | None:
    return await db_session.get(ChannelAccount, account_id)


async def list_all(*, db_session: AsyncSession) -> list[ChannelAccount]:
    return list((await db_session.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all())


def to_ref(account: ChannelAccount, cipher: CredentialCipher) -> AccountRef:
    return AccountRef(
        id=account.id,
        kind=account.kind,
        api_base=account.api_base,
        credentials=cipher.decrypt(account.credentials_encrypted),
        settings=dict(account.settings or {}),
    )


async def get_cursor(account_id: int, name: str, *, db_session: AsyncSession) -> str | None:
    cursor = await db_session.get(ChannelCursor, (account_id, name))
    return cursor.value if cursor else None


async def set_cursor(account_id: int, name: str, value: str, *, db_session: AsyncSession) -> None:
    cursor = await db_session.get(ChannelCursor, (account_id, name))
    if cursor is None:
        db_session.add(ChannelCursor(channel_account_id=account_id, name=name, value=value))
    else:
        cursor.value = value
