"""The bind rule: without a token, only a loopback address (standard library only, so
``python -m web`` refuses a bad address before FastAPI is imported)."""

from __future__ import annotations

import ipaddress

from actiontag.settings import Settings, env_name

TOKEN_ENV = env_name("web_token")


class BindRefused(ValueError):
    """The app would be reachable from other machines without a token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_bind(settings: Settings) -> None:
    """Refuse to serve a non-loopback address without a token."""
    if settings.web_token is None and not is_loopback(settings.web_host):
        raise BindRefused(
            f"refusing to listen on {settings.web_host} without a token: anyone who can "
            f"reach it could upload videos and read every result. Set {TOKEN_ENV} (at least "
            "16 characters), or listen on 127.0.0.1 behind your own proxy."
        )
