"""Who may use the app: the bind rule, the token, CSRF tokens and same-origin checks.

- Without ``ACTIONTAG_WEB_TOKEN`` the app serves only a loopback address
  (:func:`web.bind.check_bind`): anyone who can reach it could upload and read.
- With a token, every page, upload and API call needs it: ``Authorization: Bearer
  TOKEN`` (programs), or the session cookie the sign-in page sets (people). The cookie
  holds the time it was issued and an HMAC of that time keyed by the token, never the
  token; it is HttpOnly, SameSite=Strict, Secure over HTTPS, and good for
  ``ACTIONTAG_WEB_SESSION_MAX_AGE``. Wrong tokens slow their sender down
  (:mod:`web.throttle`).
- Forms carry a CSRF token (double submit: a random cookie and the same value in a
  hidden field), and the page's own API writes the same value in ``X-CSRF-Token``
  (:func:`api_write_allowed`); any state-changing request whose ``Origin`` is another
  site is refused, so a page elsewhere cannot make a browser upload through a
  token-less local app.
- A correction is recorded under the token holder's name
  (``ACTIONTAG_WEB_TOKEN_HOLDER``), or ``local`` where no token is asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Request, Response

from actiontag.settings import Settings

SESSION_COOKIE = "actiontag_session"
CSRF_COOKIE = "actiontag_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# A session issued this far ahead of the clock still counts (the clock was stepped back).
CLOCK_SKEW_S = 60
# Who made a correction on an app that asks no token: whoever can reach its loopback address.
LOCAL_AUTHOR = "local"


def _session_mac(token: str, issued: str) -> str:
    message = b"actiontag-web-session:" + issued.encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def session_value(token: str, issued_at: float) -> str:
    """What the session cookie holds: when it was issued and an HMAC of that keyed by
    ``token``, so the cookie jar never holds the token and the time cannot be changed."""
    issued = str(int(issued_at))
    return f"{issued}.{_session_mac(token, issued)}"


def session_valid(cookie: str | None, token: str, max_age_s: float) -> bool:
    """Whether ``cookie`` is a session of ``token`` issued less than ``max_age_s`` ago."""
    issued, _, mac = (cookie or "").partition(".")
    if not issued.isdigit() or not hmac.compare_digest(mac, _session_mac(token, issued)):
        return False
    age = time.time() - int(issued)
    return -CLOCK_SKEW_S <= age <= max_age_s


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer_of(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def signed_in(request: Request, settings: Settings) -> bool:
    """Whether the request may use the app without a Bearer token: no token set, or
    it carries a session cookie still valid."""
    if settings.web_token is None:
        return True
    max_age_s = settings.web_session_max_age.total_seconds()
    return session_valid(request.cookies.get(SESSION_COOKIE), settings.web_token, max_age_s)


def start_session(response: Response, request: Request, settings: Settings) -> None:
    """Set the session cookie of a sign-in on ``response``."""
    assert settings.web_token is not None
    max_age_s = settings.web_session_max_age.total_seconds()
    response.set_cookie(
        SESSION_COOKIE,
        session_value(settings.web_token, time.time()),
        max_age=int(max_age_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response, request: Request) -> None:
    """Clear the session cookie (signing out)."""
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def client_address(request: Request) -> str | None:
    """The client's address, as uvicorn took it (from a trusted proxy's X-Forwarded-For)."""
    return request.client.host if request.client else None


def cross_site(request: Request) -> bool:
    """Whether a browser sent this from a page of another origin (``Origin`` names
    another host; programs send no ``Origin``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") == "cross-site"
    host = request.headers.get("host", "")
    return origin.partition("://")[2] != host


def csrf_token(request: Request) -> tuple[str, bool]:
    """The CSRF token for this browser (its cookie's), and whether it is new (to set)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing, False
    return secrets.token_urlsafe(32), True


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """Whether a form's token matches the browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie) and submitted is not None and hmac.compare_digest(cookie, submitted)


def api_write_allowed(request: Request) -> bool:
    """Whether an API write may go on: it carries a Bearer token (a program; the guard
    checked it), or no cookie at all (a program on a token-less app), or the browser's
    CSRF token in ``X-CSRF-Token`` (the page's script), so a request riding on a
    browser's cookies must come from a page of this app."""
    if bearer_of(request) is not None or not request.cookies:
        return True
    return csrf_ok(request, request.headers.get(CSRF_HEADER))


def author_of(settings: Settings) -> str:
    """The name a correction is recorded under: the token holder's, or ``local`` where
    the app asks no token (every request reaching a route then holds the token or asks
    none)."""
    return settings.web_token_holder if settings.web_token is not None else LOCAL_AUTHOR


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
