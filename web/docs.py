"""``/docs``: Swagger UI served from the app itself, never a CDN.

The assets are the files the ``fastapi-offline`` package ships (Swagger UI's bundle and
stylesheet), mounted under ``/static/docs``: public like the other static files, while
the page and ``/openapi.json`` stay behind the token as every API path does. The page
starts Swagger UI with one inline script FastAPI writes; its Content-Security-Policy is
every page's, with exactly that script allowed by its sha256. There is no ``/redoc``:
ReDoc's standalone script loads its logo from its makers' site.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/static/docs"
SWAGGER_JS = f"{ASSETS}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS}/swagger-ui.css"
FAVICON = f"{ASSETS}/favicon.png"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def mount_docs(app: FastAPI, policy: str) -> None:
    """Mount the assets (before ``/static``, which would otherwise answer for them) and
    the page, answered with ``policy`` plus its inline script's hash."""
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - API",
        swagger_js_url=SWAGGER_JS,
        swagger_css_url=SWAGGER_CSS,
        swagger_favicon_url=FAVICON,
        oauth2_redirect_url=None,
        # Swagger UI's online validator is another site: never asked.
        swagger_ui_parameters={"validatorUrl": None},
    )
    swagger_page = _with_policy(swagger, policy)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return swagger_page()


def _with_policy(page: HTMLResponse, policy: str) -> Callable[[], HTMLResponse]:
    """A new response with ``page``'s body each time, its inline scripts allowed by hash."""
    body = bytes(page.body)
    allowed = "".join(
        f" '{_sha256_source(script)}'" for script in _INLINE_SCRIPT.findall(body.decode())
    )
    headers = {
        "Content-Security-Policy": policy.replace(
            "script-src 'self'", "script-src 'self'" + allowed
        )
    }
    return lambda: HTMLResponse(body, headers=headers)


def _sha256_source(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
