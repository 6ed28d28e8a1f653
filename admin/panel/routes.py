"""Sign-in, sign-out and the shell of the admin panel.

The sign-in form carries a CSRF token of its own (a cookie and a hidden field that
must match), so another site cannot sign a browser in to an account of its choosing.
Once signed in, the session's CSRF token is in the page; the script sends it with
every change (X-CSRF-Token), and sign-out is a form that carries it.
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import SESSION_COOKIE, db_session
from crm_core.people import web_auth

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
LOGIN_CSRF_COOKIE = "scrm_login_csrf"
LANG_COOKIE = "scrm_lang"

def _sign_in_texts() -> dict[str, dict[str, str]]:
    """The sign-in page's texts (`signin_*`) from the panel's catalogue of each language."""
    texts: dict[str, dict[str, str]] = {}
    for lang in ("zh", "en"):
        catalogue = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))["text"]
        texts[lang] = {key.removeprefix("signin_"): text for key, text in catalogue.items()
                       if key.startswith("signin_")}
    return texts


TEXTS = _sign_in_texts()


# Scripts and styles only from the hub; pictures may come from the web (FAQ answers show them).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: https: http:; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in TEXTS:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _safe_next(target: str | None) -> str:
    """Only a path inside the panel: never another site (an open redirect)."""
    if not target:
        return "/admin"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin") or target.startswith("//"):
        return "/admin"
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, *, error: str | None = None, username: str = "", status: int = 200,
                next_url: str = "/admin") -> Response:
    lang = language(request)
    t = TEXTS[lang]
    token = secrets.token_urlsafe(24)
    other = "en" if lang == "zh" else "zh"
    page = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t['title']}</title><link rel="stylesheet" href="/admin/static/app.css"></head>
<body class="login-body"><main class="login-card">
<h1>SCRM Hub</h1><h2>{t['heading']}</h2>
{f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ''}
<form method="post" action="/admin/login">
<input type="hidden" name="csrf" value="{token}">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label>{t['username']}<input name="username" autocomplete="username" required value="{html.escape(username)}"
 autofocus></label>
<label>{t['password']}<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" class="primary">{t['submit']}</button>
</form>
<p class="switch"><a href="/admin/language/{other}?next={quote('/admin/login')}" id="switch-language">{t['switch']}</a></p>
</main></body></html>"""
    response = _secured(HTMLResponse(page, status_code=status))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        path="/admin/login", max_age=3600)
    return response


@router.get("/admin/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=_safe_next(next))


@router.post("/admin/login")
async def login(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                next: str = Form("/admin"), session: AsyncSession = Depends(db_session)) -> Response:
    t = TEXTS[language(request)]
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf or not expected or not secrets.compare_digest(csrf, expected):
        return _login_page(request, error=t["expired"], username=username, status=403, next_url=_safe_next(next))
    try:
        signed = await web_auth.sign_in(username, password, ip=_client_ip(request),
                                        user_agent=request.headers.get("user-agent"), db_session=session)
    except web_auth.SignInThrottled as exc:
        await session.commit()
        minutes = max(1, round(exc.retry_after.total_seconds() / 60))
        page = _login_page(request, error=t["throttled"].format(minutes=minutes), username=username, status=429,
                           next_url=_safe_next(next))
        page.headers["Retry-After"] = str(int(exc.retry_after.total_seconds()) + 1)
        return page
    except web_auth.SignInRefused:
        await session.commit()  # the failed attempt counts
        return _login_page(request, error=t["refused"], username=username, status=401, next_url=_safe_next(next))
    await session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, signed.token, httponly=True, samesite="lax", secure=_secure(request),
                        path="/", max_age=int(web_auth.LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    if signed.user.language in TEXTS and not request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, signed.user.language, samesite="lax", path="/", max_age=365 * 86400)
    return response


async def _signed_in(request: Request, session: AsyncSession):
    found = await web_auth.session_user(request.cookies.get(SESSION_COOKIE, ""), db_session=session)
    await session.commit()
    return found


@router.post("/admin/logout")
async def logout(request: Request, csrf: str = Form(""), session: AsyncSession = Depends(db_session)) -> Response:
    found = await _signed_in(request, session)
    if found is not None:
        user, web_session = found
        if not web_auth.csrf_matches(web_session, csrf):
            return HTMLResponse("missing or wrong CSRF token: reload the page and sign out again", status_code=403)
        await web_auth.sign_out(web_session, user, db_session=session)
        await session.commit()
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/admin/language/{lang}")
async def switch_language(lang: str, request: Request, next: str | None = None) -> Response:
    """The zh / en switch: a cookie the panel and the sign-in page read."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in TEXTS:
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", path="/", max_age=365 * 86400)
    return response


@router.get("/admin/static/{name:path}")
async def static(name: str) -> Response:
    """The panel's files: the page, its style, and its ES modules under js/ (nothing outside static/)."""
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        return Response("not found", status_code=404)
    return _secured(FileResponse(path, headers={"Cache-Control": "no-cache"}))


@router.get("/admin")
@router.get("/admin/")
async def shell(request: Request, session: AsyncSession = Depends(db_session)) -> Response:
    found = await _signed_in(request, session)
    if found is None:
        return RedirectResponse("/admin/login", status_code=303)
    user, web_session = found
    me = {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role.value}
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{lang}}", "zh-CN" if language(request) == "zh" else "en")
    page = page.replace("{{csrf}}", html.escape(web_session.csrf_token))
    page = page.replace("{{me}}", html.escape(json.dumps(me, ensure_ascii=False)))
    page = page.replace("{{language}}", language(request))
    return _secured(HTMLResponse(page, headers={"Cache-Control": "no-store"}))
