"""Host addresses as a socket binds them and as a URL names them (standard library only,
for the web app and the launcher alike)."""

from __future__ import annotations


def listen_address(host: str) -> str:
    """``host`` as a socket binds it: an IPv6 address without the brackets a URL puts
    around it (``[::1]`` is ``::1``)."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """``host`` as a URL names it: an IPv6 address in brackets."""
    bare = listen_address(host)
    return f"[{bare}]" if ":" in bare else bare
