"""``make_app(settings)``: the FastAPI app, its routes, its guards.

Every response carries a strict Content-Security-Policy (scripts and styles from this
site only, no framing). The Host check (:mod:`web.hosts`) runs first, then the token
guard and the same-origin check, before any route; ``/healthz``, ``/metrics``, sign-in,
sign-out and the static files need no token. Wrong Bearer tokens count against their
sender as wrong sign-ins do (:mod:`web.throttle`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from actiontag.settings import Settings
from storage.db import DatabaseUnavailable, open_database
from web import api, corrections, events, media, pages, schemas, security
from web.context import HERE, WebContext
from web.docs import mount_docs
from web.health import health
from web.hosts import AllowedHosts, allowed_patterns
from web.staging import sweeping

log = logging.getLogger(__name__)
DATABASE_DOWN = (
    "the database is unavailable: the web app cannot reach it. Try again once it is "
    "back; /healthz says what is down."
)
OPEN_PATHS = ("/healthz", "/metrics", "/login", "/logout", "/static/")
API_PATHS = ("/api/", "/docs", "/redoc", "/openapi.json")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; "
        # Strip positions are style attributes; every value in them is computed here.
        "style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def make_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """The app over ``settings``' database and inbox (``engine``: one made already)."""
    if engine is None:
        engine = open_database(
            settings.database_url, create=False, password_file=settings.database_password_file
        )
    context = WebContext(settings, engine)
    max_age_s = settings.upload_staging_max_age.total_seconds()
    app = FastAPI(
        title="actiontag",
        description="Videos tagged with the actions they show: list, detail, moments, upload.",
        version="1",
        docs_url=None,  # web.docs: served from the app's own files
        redoc_url=None,
        # Staging files of uploads a killed process never finished: swept while it runs.
        lifespan=lambda _app: sweeping(settings.inbox, max_age_s, context.uploads),
    )
    app.state.context = context
    app.include_router(api.router)
    app.include_router(corrections.router)
    app.include_router(events.router)
    app.include_router(pages.router)
    app.include_router(media.router)
    mount_docs(app, SECURITY_HEADERS["Content-Security-Policy"])
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Database and broker reachable",
        response_model=schemas.Health,
        responses={503: {"model": schemas.Health, "description": "Either is unreachable"}},
    )
    def healthz() -> JSONResponse:
        ok, report = health(context)
        answer = schemas.Health(ok=ok, **report)
        return JSONResponse(answer.model_dump(mode="json"), status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await _guarded(request, call_next, context)
        # A page with a policy of its own (web.docs: its inline script's hash) keeps it.
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # Added last, so it runs first: an unknown Host reaches neither the guard nor a route.
    app.add_middleware(AllowedHosts, patterns=allowed_patterns(settings))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(request, context, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(DatabaseUnavailable)
    async def database_down(request: Request, exc: DatabaseUnavailable) -> Response:
        # The reason names the server's address: logged for the operator, not shown.
        log.warning("answering 503: %s", exc)
        return _error(request, context, 503, DATABASE_DOWN)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request.url.path):
            # jsonable_encoder: a body that is not JSON comes back in the errors as bytes.
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        return _error(request, context, 422, "a value in the address is not valid here")

    return app


def _is_api(path: str) -> bool:
    return path.startswith(API_PATHS)


async def _guarded(
    request: Request, call_next: Callable[[Request], Awaitable[Response]], context: WebContext
) -> Response:
    path = request.url.path
    if request.method in security.UNSAFE_METHODS and security.cross_site(request):
        return PlainTextResponse("cross-site requests are refused", status_code=403)
    if path.startswith(OPEN_PATHS) or security.signed_in(request, context.settings):
        return await call_next(request)
    bearer = security.bearer_of(request)
    if bearer is not None:
        refused = _refused_bearer(request, context, bearer)
        return refused if refused is not None else await call_next(request)
    if _is_api(path) or request.method != "GET":
        return _token_required()
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _refused_bearer(request: Request, context: WebContext, bearer: str) -> Response | None:
    """None when ``bearer`` is the token; else 429 while its sender must wait after
    wrong ones, or 401 (counted)."""
    client = security.client_address(request)
    wait_s = context.throttle.wait_s(client)
    if wait_s:
        return JSONResponse(
            {"detail": f"too many wrong tokens from this address: try again in {wait_s} s"},
            status_code=429,
            headers={"Retry-After": str(wait_s)},
        )
    if context.settings.web_token is not None and security.token_matches(
        bearer, context.settings.web_token
    ):
        context.throttle.succeeded(client)
        return None
    context.throttle.failed(client)
    return _token_required()


def _token_required() -> Response:
    return JSONResponse(
        {"detail": "a token is required: send Authorization: Bearer TOKEN"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _error(
    request: Request,
    context: WebContext,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    if _is_api(request.url.path) or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return pages.render(
        request, context, "error.html", {"status": status, "message": message}, status
    )
