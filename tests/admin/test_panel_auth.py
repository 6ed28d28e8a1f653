"""Signing in to the admin panel: argon2 hashes, sessions, CSRF on every form and API
change, throttled failures, roles on every route, the audit of it all."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from crm_core.models import AuditLog, Role, User, WebSession
from crm_core.people import users, web_auth
from tests.fakes.stack import telegram_stack

PASSWORD = "correct horse battery"
# The sign-in, throttling and CSRF tests run on both databases; the rest on SQLite (suite time).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def a_user(stack, username: str, role: Role, password: str = PASSWORD) -> int:
    async with stack.hub.sessions() as session, session.begin():
        user = await users.get_or_create(username, role, db_session=session)
        await web_auth.set_password(user, password, actor=None, db_session=session)
        return user.id


async def sign_in(browser: httpx.AsyncClient, username: str, password: str = PASSWORD,
                  ip_note: str = "") -> httpx.Response:
    form = await browser.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return await browser.post("/admin/login", data={"username": username, "password": password, "csrf": csrf,
                                                    "next": "/admin"})


def browser_for(stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.hub_base, timeout=10)


async def csrf_of(browser: httpx.AsyncClient) -> str:
    shell = await browser.get("/admin")
    return re.search(r'name="csrf-token" content="([^"]+)"', shell.text).group(1)


async def test_a_password_is_stored_as_argon2_and_signing_in_opens_a_session(stack):
    user_id = await a_user(stack, "olga", Role.OPERATOR)
    await stack.customer_writes(930, "Do you ship to Hangzhou?", first_name="Chen")
    async with browser_for(stack) as browser:
        assert (await browser.get("/admin")).headers["location"] == "/admin/login"
        resp = await sign_in(browser, "Olga")  # usernames are not case-sensitive at sign-in
        assert resp.status_code == 303 and resp.headers["location"] == "/admin"
        cookie = resp.cookies["scrm_session"]
        shell = await browser.get("/admin")
        assert shell.status_code == 200 and "default-src 'self'" in shell.headers["content-security-policy"]
        me = (await browser.get("/api/v1/me")).json()
        # The panel's reads on this database: the dashboard's day buckets, the inbox's last messages.
        dashboard = (await browser.get("/api/v1/dashboard?days=3")).json()
        inbox = (await browser.get("/api/v1/inbox?channel=telegram&status=open")).json()
    assert (me["username"], me["role"], me["signed_in_with"]) == ("olga", "operator", "session")
    assert dashboard["messages_by_channel"]["telegram"][-1] >= 1 and len(dashboard["days"]) == 3
    assert [row["name"] for row in inbox["rows"]] == ["Chen"] and inbox["version"] > 0
    async with stack.hub.sessions() as session:
        user = await session.get(User, user_id)
        stored = (await session.scalars(select(WebSession.token_hash))).all()
        actions = (await session.scalars(select(AuditLog.action).where(AuditLog.action.like("auth.%")))).all()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert cookie not in stored  # only the token's hash is kept
    assert actions == ["auth.signed_in"]


async def test_wrong_passwords_are_refused_then_throttled_even_with_the_right_one(stack):
    await a_user(stack, "olga", Role.OPERATOR)
    async with browser_for(stack) as browser:
        refused = await sign_in(browser, "olga", "wrong password 1")
        assert refused.status_code == 401 and "Wrong username or password" in refused.text
        unknown = await sign_in(browser, "nobody", "wrong password 1")
        assert unknown.status_code == 401 and "Wrong username or password" in unknown.text  # no hint which
        for n in range(4):
            await sign_in(browser, "olga", f"wrong password {n + 2}")
        throttled = await sign_in(browser, "olga", PASSWORD)
        assert throttled.status_code == 429 and "try again in" in throttled.text
        assert int(throttled.headers["retry-after"]) > 0
        assert "scrm_session" not in throttled.cookies
    async with stack.hub.sessions() as session:
        actions = (await session.scalars(select(AuditLog.action).where(AuditLog.action.like("auth.%")))).all()
    assert actions.count("auth.failed") == 6 and actions[-1] == "auth.throttled"


async def test_the_sign_in_form_and_every_change_need_their_csrf_token(stack):
    await a_user(stack, "olga", Role.OPERATOR)
    async with browser_for(stack) as browser:
        await browser.get("/admin/login")
        forged = await browser.post("/admin/login", data={"username": "olga", "password": PASSWORD, "csrf": "x"})
        assert forged.status_code == 403 and "scrm_session" not in forged.cookies
        await sign_in(browser, "olga")
        csrf = await csrf_of(browser)
        entry = {"questions": {"en": ["Opening hours?"]}, "answers": {"en": "9 to 6."}}
        without = await browser.post("/api/v1/faq", json=entry)
        assert without.status_code == 403 and "CSRF" in without.json()["detail"]
        wrong = await browser.post("/api/v1/faq", json=entry, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        made = await browser.post("/api/v1/faq", json=entry, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        # Sign-out is a form with the token too; afterwards the cookie opens nothing.
        assert (await browser.post("/admin/logout", data={"csrf": "nope"})).status_code == 403
        out = await browser.post("/admin/logout", data={"csrf": csrf})
        assert out.status_code == 303
    async with browser_for(stack) as stale:
        stale.cookies.set("scrm_session", "not-a-session")
        assert (await stale.get("/api/v1/me")).status_code == 401


@sqlite_only
@pytest.mark.parametrize(("role", "allowed", "refused"), [
    (Role.REP, ["/api/v1/inbox", "/api/v1/contacts", "/api/v1/leads/pipeline", "/api/v1/leads/export"],
     ["/api/v1/dashboard", "/api/v1/channel-accounts", "/api/v1/audit", "/api/v1/faq", "/api/v1/users",
      "/api/v1/teams", "/api/v1/settings"]),
    (Role.MANAGER, ["/api/v1/dashboard", "/api/v1/users", "/api/v1/teams", "/api/v1/settings"],
     ["/api/v1/audit", "/api/v1/faq", "/api/v1/channel-kinds"]),
    (Role.OPERATOR, ["/api/v1/channel-kinds", "/api/v1/faq", "/api/v1/dashboard", "/api/v1/leads/export"],
     ["/api/v1/audit", "/api/v1/users", "/api/v1/teams", "/api/v1/settings"]),
])
async def test_each_role_reaches_only_its_routes(stack, role, allowed, refused):
    await a_user(stack, f"u-{role.value}", role)
    async with browser_for(stack) as browser:
        await sign_in(browser, f"u-{role.value}")
        for path in allowed:
            assert (await browser.get(path)).status_code == 200, path
        for path in refused:
            resp = await browser.get(path)
            assert resp.status_code == 403, path
            assert f"role {role.value} may not" in resp.json()["detail"]


@sqlite_only
async def test_a_password_change_ends_the_other_sessions_and_weak_ones_are_refused(stack):
    user_id = await a_user(stack, "olga", Role.ADMIN)
    async with browser_for(stack) as laptop, browser_for(stack) as phone:
        await sign_in(laptop, "olga")
        await sign_in(phone, "olga")
        csrf = await csrf_of(laptop)
        weak = await laptop.post(f"/api/v1/users/{user_id}/password", json={"password": "olga12345678"},
                                 headers={"X-CSRF-Token": csrf})
        assert weak.status_code == 422 and "username" in weak.json()["detail"]
        short = await laptop.post(f"/api/v1/users/{user_id}/password", json={"password": "short"},
                                  headers={"X-CSRF-Token": csrf})
        assert short.status_code == 422 and "at least 10" in short.json()["detail"]
        changed = await laptop.post(f"/api/v1/users/{user_id}/password", json={"password": "a new long secret"},
                                    headers={"X-CSRF-Token": csrf})
        assert changed.status_code == 204
        assert (await phone.get("/api/v1/me")).status_code == 401
    async with browser_for(stack) as browser:
        assert (await sign_in(browser, "olga", "a new long secret")).status_code == 303


@sqlite_only
async def test_next_never_leaves_the_panel(stack):
    await a_user(stack, "olga", Role.ADMIN)
    async with browser_for(stack) as browser:
        form = await browser.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        resp = await browser.post("/admin/login", data={"username": "olga", "password": PASSWORD, "csrf": csrf,
                                                        "next": "https://evil.example/admin"})
        assert resp.headers["location"] == "/admin"


@sqlite_only
async def test_changing_ones_own_password_needs_the_current_one(stack):
    await a_user(stack, "olga", Role.REP)
    async with browser_for(stack) as browser:
        await sign_in(browser, "olga")
        csrf = await csrf_of(browser)
        wrong = await browser.post("/api/v1/me/password", headers={"X-CSRF-Token": csrf},
                                   json={"current_password": "not it at all", "new_password": "another long one"})
        assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
        ok = await browser.post("/api/v1/me/password", headers={"X-CSRF-Token": csrf},
                                json={"current_password": PASSWORD, "new_password": "another long one"})
        assert ok.status_code == 204
        assert (await browser.get("/api/v1/me")).status_code == 401  # signed out everywhere, here too
    async with browser_for(stack) as browser:
        assert (await sign_in(browser, "olga", "another long one")).status_code == 303
