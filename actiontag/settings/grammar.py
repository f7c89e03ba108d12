"""The syntax of setting values: one for durations, one for sizes, and each setting's parser.

Durations (:func:`parse_duration`): a number of seconds (``30``, ``0.5``) or a number and
a unit, ``ms``, ``s``, ``m`` or ``min``, ``h``, ``d``, ``w`` (``500ms``, ``30s``,
``1.5min``, ``2h``, ``7d``, ``1w``), case-insensitive. Sizes (:func:`parse_size`): bytes,
or ``K``, ``M``, ``G``, ``T`` (powers of 1024, an optional ``B`` or ``iB`` after them):
``4096``, ``512K``, ``256M``, ``1.5GiB``. A parser raises :class:`ValueError` with a
message that reads after the setting's name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit


class OutOfRange(ValueError):
    """A value written correctly but past the largest the grammar allows (``MAX_*``)."""


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"\s*{_NUMBER}\s*(ms|s|m|min|h|d|w)?\s*", re.IGNORECASE)
_SECONDS_PER_UNIT = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_SIZE = re.compile(rf"\s*{_NUMBER}\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_BYTES_PER_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# The longest duration a value may give: past any timeout or age anyone means, and short
# enough that a moment that long ago is still a date (datetime starts at year 1).
MAX_DURATION = timedelta(weeks=5200)
# The largest size a value may give (an exbibyte): every size still fits a database integer.
MAX_SIZE = 1 << 60
# The largest integer a database column holds (SQLite's INTEGER, PostgreSQL's BIGINT):
# an id or a limit beyond it can name nothing.
MAX_INTEGER = (1 << 63) - 1


def parse_duration(text: str) -> timedelta:
    """``"30"``, ``"500ms"``, ``"30s"``, ``"1.5min"``, ``"2h"``, ``"7d"``, ``"1w"``: seconds
    unless a unit is given; never negative."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write seconds or a number and a unit "
            "(ms, s, m, h, d, w), e.g. 30, 500ms, 5m, 2h or 7d"
        )
    unit = match.group(2).lower() if match.group(2) else None
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise OutOfRange(
            f"{text!r} is too long a duration: at most {format_duration(MAX_DURATION)} "
            "(about a century)"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``timedelta(minutes=5)`` -> ``"5m"``: the largest unit that divides it exactly."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        scale = _SECONDS_PER_UNIT[unit]
        if seconds >= scale and seconds % scale == 0:
            return f"{int(seconds // scale)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def parse_size(text: str) -> int:
    """``"4096"``, ``"512K"``, ``"256M"``, ``"1.5GiB"``, ``"20G"``: bytes (powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write e.g. 4096, 512K, 256M or 20G")
    size = float(match.group(1)) * _BYTES_PER_UNIT[match.group(2).lower()]
    if size > MAX_SIZE:
        raise OutOfRange(f"{text!r} is too large a size: at most {size_text(MAX_SIZE)}")
    return int(size)


def format_size(size: int) -> str:
    """``268435456`` -> ``"256 MiB"``, for messages."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def size_text(size: int) -> str:
    """``268435456`` -> ``"256M"``: a size as the setting is written."""
    for unit in ("T", "G", "M", "K"):
        scale = _BYTES_PER_UNIT[unit.lower()]
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a yes/no value; write 1 or 0")


def parse_extensions(text: str) -> frozenset[str]:
    """Extensions from a comma- or space-separated list (``"mp4, .MKV webm"``)."""
    extensions = frozenset(
        item.lower().lstrip(".") for item in re.split(r"[\s,;]+", text) if item.strip(".")
    )
    if not extensions:
        raise ValueError(f"no video extensions in {text!r}; give a list such as 'mp4,mkv,avi'")
    return extensions


def parse_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise ValueError(f"{value} must be at least {minimum}")
        if value > MAX_INTEGER:
            raise OutOfRange(f"{value} must be at most {MAX_INTEGER}")
        return value

    return parse


def parse_seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def parse_positive_seconds(text: str) -> float:
    return parse_positive_duration(text).total_seconds()


def parse_positive_duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError("must be more than 0")
    return value


def parse_positive_size(text: str) -> int:
    value = parse_size(text)
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


def parse_size_limit(text: str) -> int | None:
    return parse_size(text) or None  # 0: no limit


def parse_path(text: str) -> Path:
    return Path(text).expanduser()


def parse_queues(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError("name at least one queue")
    return names


def parse_lower(text: str) -> str:
    return text.strip().lower()


def parse_one_of(*names: str) -> Callable[[str], str]:
    """One of ``names``, case and surrounding spaces aside."""

    def parse(text: str) -> str:
        value = parse_lower(text)
        if value not in names:
            raise ValueError(f"{text!r} is none of {', '.join(names)}")
        return value

    return parse


def parse_host(text: str) -> str:
    host = text.strip()
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"{text!r} is not an address; give e.g. 127.0.0.1 or 0.0.0.0")
    return host


def parse_http_url(text: str) -> str:
    """An http or https address with a host (where the webhook posts)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give an http:// or https:// address with a host name")
    return text.strip()


def parse_port(text: str) -> int:
    value = parse_at_least(1)(text)
    if value > 65535:
        raise ValueError(f"{value} is not a TCP port (1 to 65535)")
    return value


def parse_host_patterns(text: str) -> tuple[str, ...]:
    """Names the web app answers to, as Starlette's TrustedHostMiddleware matches them:
    a name or address (no port), ``*.example.com`` for a domain's names, ``*`` for any."""
    patterns = []
    for item in re.split(r"[\s,]+", text.strip().lower()):
        if not item:
            continue
        if ":" in item:
            item = _bracketed_ipv6(item)
        wildcard_ok = item == "*" or (item.startswith("*.") and "*" not in item[1:])
        if "*" in item and not wildcard_ok:
            raise ValueError(
                f"{item!r}: a wildcard is only '*' or a leading '*.', as in *.example.com"
            )
        if any(c in item for c in "/@?#"):
            raise ValueError(f"{item!r} is not a host name; give names without a scheme or path")
        patterns.append(item)
    return tuple(patterns)


def _bracketed_ipv6(item: str) -> str:
    """``::1`` or ``[::1]`` -> ``[::1]``, as a Host header writes an IPv6 address."""
    try:
        return f"[{ipaddress.IPv6Address(item.removeprefix('[').removesuffix(']'))}]"
    except ValueError:
        raise ValueError(f"{item!r} is not a host name; give names without a port") from None


def parse_ip_list(text: str) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``), checked as uvicorn's proxy headers take them."""
    items = tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return items


# A shorter secret is guessable over the network.
MIN_TOKEN_LENGTH = 16


def parse_token(text: str) -> str:
    if len(text) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"a token of {len(text)} characters is too easy to guess; use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe())'`"
        )
    return text


# The width of the column a name is stored in (an annotation's author).
MAX_NAME_LENGTH = 255


def parse_name(text: str) -> str:
    """A person's name as records show it: one line of printable text."""
    name = text.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValueError(f"give a name of 1 to {MAX_NAME_LENGTH} printable characters on one line")
    return name
