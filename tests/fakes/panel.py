"""The admin panel in Chromium for a user of a given role: made with a password, signed in, in the
language the browser asks for; the page's script errors are kept on `page.script_errors`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from crm_core.models import Role
from crm_core.people import users, web_auth
from hub.context import Hub

PASSWORD = "panel password 1"


@contextlib.asynccontextmanager
async def signed_in(browser: Any, hub: Hub, base_url: str, username: str, role: Role, *,
                    locale: str = "zh-CN") -> AsyncIterator[Any]:
    async with hub.sessions() as session, session.begin():
        user = await users.get_or_create(username, role, db_session=session, display_name=username.title())
        await web_auth.set_password(user, PASSWORD, actor=None, db_session=session)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url, locale=locale)
    try:
        page = await context.new_page()
        page.script_errors = []
        page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
        await page.goto("/admin")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#nav a")
        yield page
    finally:
        await context.close()
