"""Who may use the app: the bind rule, the token, CSRF tokens and same-origin checks.

- Without ``ACTIONTAG_WEB_TOKEN`` the app serves only a loopback address
  (:func:`web.bind.check_bind`): anyone who can reach it could upload and read.
- With a token, every page, upload and API call needs it: ``Authorization: Bearer
  TOKEN`` (programs), or the session cookie the sign-in page sets (people). The cookie
  holds an HMAC of the token, never the token, and is HttpOnly and SameSite=Strict.
- Forms carry a CSRF token (double submit: a random cookie and the same value in a
  hidden field); any state-changing request whose ``Origin`` is another site is refused,
  so a page elsewhere cannot make a browser upload through a token-less local app.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

SESSION_COOKIE = "actiontag_session"
CSRF_COOKIE = "actiontag_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_value(token: str) -> str:
    """What the session cookie holds for ``token``: a keyed hash, so the cookie jar
    never holds the token itself."""
    return hmac.new(token.encode(), b"actiontag-web-session", hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def authorized(request: Request, token: str | None) -> bool:
    """Whether the request may use the app: no token set, or it presents the token."""
    if token is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(value.strip(), token):
        return True
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and hmac.compare_digest(cookie, session_value(token))


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


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
