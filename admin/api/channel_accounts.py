"""Channel accounts: connect (after testing the connection), list, get, test again, rename,
switch off or on, replace the credentials. Secrets never leave, except the callback token and key
an admin reveals (audited) to paste into the platform's console."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, ConnectionCheckResult, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import PathId
from admin.api.schemas import ChannelAccountCreate, ChannelAccountRead, ChannelAccountUpdate
from crm_core import accounts, audit
from crm_core.models import ChannelAccount, Role, User

router = APIRouter(prefix="/channel-accounts", tags=["channel accounts"])

MANAGE = (Role.ADMIN, Role.OPERATOR)
VIEW = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


def _read(account: ChannelAccount, ctx: ApiContext) -> ChannelAccountRead:
    return ChannelAccountRead.model_validate(
        {**{c: getattr(account, c) for c in ChannelAccountRead.model_fields if c not in ("webhook_url", "notices")},
         "webhook_url": ctx.catalog.webhook_url(account), "notices": ctx.catalog.notices(account)}
    )


def _validation_detail(kind: str, part: str, exc: ValidationError) -> list[dict]:
    return [{"loc": ["body", part, *e["loc"]], "msg": f"{kind} {part}: {e['msg']}", "type": e["type"]}
            for e in exc.errors(include_input=False, include_url=False)]


def _credentials(kind: str, raw: dict, ctx: ApiContext) -> dict:
    """The credentials as the kind's model reads them; 422 saying which field is wrong."""
    try:
        return ctx.catalog.credentials_model(kind).model_validate(raw).model_dump()
    except ValidationError as exc:
        raise HTTPException(422, _validation_detail(kind, "credentials", exc)) from None


async def _connection(ctx: ApiContext, kind: str, api_base: str | None, credentials: dict, *,
                      what: str = "connection test", then: str = "") -> ConnectionCheckResult:
    """The platform's answer to these credentials; 400 with its words when it refuses."""
    try:
        return await ctx.catalog.check_connection(kind, api_base, credentials)
    except Exception as exc:
        raise HTTPException(400, f"{what} failed: {exc}{then}") from None


async def _activate_or_roll_back(account: ChannelAccount, session: AsyncSession, ctx: ApiContext) -> None:
    """Register the webhook with the platform; nothing is saved when it refuses."""
    try:
        await ctx.catalog.activate(account)
    except Exception as exc:
        await session.rollback()
        raise HTTPException(400, f"the platform did not accept our webhook: {exc}") from None


async def account_or_404(account_id: int, session: AsyncSession) -> ChannelAccount:
    account = await accounts.get(account_id, db_session=session)
    if account is None:
        raise HTTPException(404, f"no channel account {account_id}")
    return account


@router.post("", response_model=ChannelAccountRead, status_code=status.HTTP_201_CREATED, responses=errors(400, 409))
async def create_channel_account(
    body: ChannelAccountCreate,
    user: User = Depends(require_role(*MANAGE)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> ChannelAccountRead:
    if body.kind not in ctx.catalog.kinds:
        raise HTTPException(422, f"unknown channel kind {body.kind!r}; supported: {', '.join(ctx.catalog.kinds)}")
    creds = _credentials(body.kind, body.credentials, ctx)
    try:
        settings = ctx.catalog.settings_model(body.kind).model_validate(body.settings)
    except ValidationError as exc:
        raise HTTPException(422, _validation_detail(body.kind, "settings", exc)) from None
    # Test the connection before saving anything, as the platform sees it.
    check = await _connection(ctx, body.kind, body.api_base, creds)
    try:
        account = await accounts.create(
            kind=body.kind, name=body.name, platform_account_id=check.platform_account_id, credentials=creds,
            api_base=body.api_base, settings=settings.model_dump(), cipher=ctx.cipher, actor=user,
            db_session=session,
        )
    except accounts.DuplicateAccount as exc:
        raise HTTPException(409, str(exc)) from None
    await session.flush()
    await _activate_or_roll_back(account, session, ctx)
    await session.commit()
    return _read(account, ctx)


@router.get("", response_model=list[ChannelAccountRead], responses=errors())
async def list_channel_accounts(
    _: User = Depends(require_role(*VIEW)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> list[ChannelAccountRead]:
    return [_read(a, ctx) for a in await accounts.list_all(db_session=session)]


@router.get("/{account_id}", response_model=ChannelAccountRead, responses=errors(404))
async def get_channel_account(
    account_id: PathId,
    _: User = Depends(require_role(*VIEW)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> ChannelAccountRead:
    return _read(await account_or_404(account_id, session), ctx)


# The credentials the platform's callback settings share with the hub: what an admin pastes into
# (or checks against) the platform's console beside the webhook URL. App secrets stay hidden.
CALLBACK_SECRETS = ("webhook_secret", "token", "encoding_aes_key")


@router.post("/{account_id}/secrets", responses=errors(404))
async def reveal_callback_secrets(
    account_id: PathId,
    user: User = Depends(require_role(Role.ADMIN)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> dict:
    """What to paste into the platform's callback settings: the webhook URL and the token / key the
    hub checks callbacks with. Admins only; every reveal is in the audit log (which fields, not
    their values)."""
    account = await account_or_404(account_id, session)
    credentials = accounts.to_ref(account, ctx.cipher).credentials
    shown = {name: str(credentials[name]) for name in CALLBACK_SECRETS if credentials.get(name)}
    await audit.record("channel_account.secrets_viewed", entity_type="channel_account", entity_id=account.id,
                       actor=user, details={"fields": sorted(shown)}, db_session=session)
    await session.commit()
    return {"webhook_url": ctx.catalog.webhook_url(account), "secrets": shown}


@router.post("/{account_id}/test", responses=errors(400, 404))
async def test_saved_connection(
    account_id: PathId,
    _: User = Depends(require_role(*MANAGE)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> dict:
    """Try the stored credentials against the platform now."""
    account = await account_or_404(account_id, session)
    check = await _connection(ctx, account.kind, account.api_base, accounts.to_ref(account, ctx.cipher).credentials,
                              what=f"connection test of {account.kind} account {account.id} ({account.name!r})",
                              then="; check its credentials, or replace them")
    return {"ok": True, "platform_account_id": check.platform_account_id, "display_name": check.display_name}


@router.patch("/{account_id}", response_model=ChannelAccountRead, responses=errors(400, 404, 409))
async def update_channel_account(
    account_id: PathId,
    body: ChannelAccountUpdate,
    user: User = Depends(require_role(*MANAGE)),
    session: AsyncSession = Depends(db_session),
    ctx: ApiContext = Depends(api_context),
) -> ChannelAccountRead:
    """Rename, switch off (no more receiving or sending) or on again (the webhook registered
    anew), or replace the credentials: tested first, and only for the same platform account."""
    account = await account_or_404(account_id, session)
    creds, whose = None, None
    if body.credentials is not None:
        creds = _credentials(account.kind, body.credentials, ctx)
        whose = (await _connection(ctx, account.kind, account.api_base, creds,
                                   then="; the old credentials stay")).platform_account_id
    try:
        changes = await accounts.update(account, name=body.name, is_active=body.is_active, credentials=creds,
                                        credentials_account_id=whose, cipher=ctx.cipher, actor=user,
                                        db_session=session)
    except accounts.OtherAccount as exc:
        raise HTTPException(409, str(exc)) from None
    if account.is_active and ("credentials" in changes or changes.get("is_active") is True):
        await _activate_or_roll_back(account, session, ctx)
    await session.commit()
    ctx.catalog.forget(account.id)
    return _read(account, ctx)
