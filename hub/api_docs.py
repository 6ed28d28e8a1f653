"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with their scripts and styles
served by the hub itself from the `fastapi-offline` package: FastAPI's defaults load them from a
CDN, so offline (a demo on a laptop, a server without internet) the pages were blank."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# Images from the hub only: ReDoc's side menu shows its maker's logo from their CDN (and Swagger UI
# may show a validator badge from swagger.io); the browser is not to reach out for either.
_OWN_IMAGES = {"Content-Security-Policy": "img-src 'self' data:"}


def add_docs(app: FastAPI) -> None:
    """/docs, /docs/oauth2-redirect and /redoc for an app made with docs_url=None, redoc_url=None."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} · API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")
        page.headers.update(_OWN_IMAGES)
        return page

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} · API",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js", redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)
        page.headers.update(_OWN_IMAGES)
        return page
