"""An uploaded part's file name: read from its Content-Disposition, then made display
text and its video extension read.

Browsers send the name as ``filename="…"`` with the HTML form encoding (a ``"`` as
``%22``, CR and LF as ``%0D`` and ``%0A``: only those three, ``%`` itself is sent as it
is); some clients send RFC 5987's ``filename*=UTF-8''…`` instead (or as well, which then
wins, as RFC 6266 says). The name is only ever shown: it never becomes a path.
"""

from __future__ import annotations

import email.message
import email.utils
import re

from python_multipart.multipart import parse_options_header

from actiontag.text import escape_control

DISPLAY_NAME_CHARS = 200
# The longest extension kept at the end of a shortened display name.
KEPT_EXTENSION_CHARS = 16
NO_NAME = "(no name)"
_FORM_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}
_FORM_ESCAPE = re.compile("|".join(_FORM_ESCAPES), re.IGNORECASE)


def part_file_name(content_disposition: bytes) -> str | None:
    """The file name a part's Content-Disposition gives, decoded; None for a part that
    is a plain form field (neither ``filename`` nor ``filename*``)."""
    extended = _extended_file_name(content_disposition)
    if extended is not None:
        return extended
    _, options = parse_options_header(content_disposition)
    if b"filename" not in options:
        return None
    text = options[b"filename"].decode("utf-8", errors="replace")
    return _FORM_ESCAPE.sub(lambda found: _FORM_ESCAPES[found.group().upper()], text)


def _extended_file_name(content_disposition: bytes) -> str | None:
    # python-multipart skips RFC 5987 parameters (RFC 7578 forbids them in forms); the
    # standard library's email parser decodes them.
    if b"filename*" not in content_disposition.lower():
        return None
    header = email.message.Message()
    header["content-disposition"] = content_disposition.decode("latin-1")
    for key, value in header.get_params(header="content-disposition") or []:
        if key.lower() == "filename" and isinstance(value, tuple):
            return email.utils.collapse_rfc2231_value(value, errors="replace")
    return None


def last_component(name: str) -> str:
    """What follows the name's last slash or backslash (a client may send a path)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def display_name(name: str) -> str:
    """The name to show: its last component, control characters escaped, cut to
    :data:`DISPLAY_NAME_CHARS` keeping its extension."""
    shown = escape_control(last_component(name)) or NO_NAME
    if len(shown) <= DISPLAY_NAME_CHARS:
        return shown
    stem, dot, extension = shown.rpartition(".")
    tail = f"{dot}{extension}" if stem and len(extension) <= KEPT_EXTENSION_CHARS else ""
    return shown[: DISPLAY_NAME_CHARS - len(tail) - 1] + "…" + tail


def extension_of(name: str, extensions: frozenset[str]) -> str | None:
    """The video extension of the name's last component (lower case), or None."""
    base = last_component(name)
    extension = base.rpartition(".")[2].lower() if "." in base else ""
    return extension if extension in extensions and extension.isalnum() else None
