"""The Host check against DNS rebinding: a page on a name its owner points at this
machine is, to the browser, the app's own origin (its Origin check passes), so the app
answers only to names it knows: loopback names and addresses on any port, the address
it listens on, and ``ACTIONTAG_WEB_ALLOWED_HOSTS``. Any other Host gets 400 before a
route runs, so no page, answer or redirect ever names it."""

from __future__ import annotations

import ipaddress
import re

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from actiontag.settings import Settings
from web.bind import is_loopback

# host[:port], the host an IPv6 address in brackets or a name without colons.
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]@]+)(?::[0-9]*)?")


def allowed_patterns(settings: Settings) -> list[str]:
    """The names besides loopback ones, as TrustedHostMiddleware matches them: the bind
    address when it is one address (not 0.0.0.0 or ::), then the configured names."""
    patterns = list(settings.web_allowed_hosts)
    host = settings.web_host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        patterns.append(host)  # a name the app was told to listen on
    else:
        if not address.is_unspecified:
            patterns.append(f"[{address}]" if address.version == 6 else str(address))
    return patterns


def names_loopback(host_header: str | None) -> bool:
    """Whether a Host header names ``localhost`` or a loopback address, any port."""
    match = _HOST_HEADER.fullmatch(host_header or "")
    return match is not None and is_loopback(match.group(1).lower())


class AllowedHosts:
    """ASGI middleware: loopback Hosts pass, the others go through Starlette's
    TrustedHostMiddleware over :func:`allowed_patterns` (its www. redirect off: it would
    answer a name it does not trust with a redirect)."""

    def __init__(self, app: ASGIApp, patterns: list[str]) -> None:
        self.app = app
        self.named = TrustedHostMiddleware(app, allowed_hosts=patterns, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and names_loopback(
            Headers(scope=scope).get("host")
        ):
            await self.app(scope, receive, send)
        else:
            await self.named(scope, receive, send)
