"""Text from outside (file names, labels from checkpoints, error messages that quote
them) made safe to print on one line.

A file name may hold any byte but ``/`` and NUL: a newline would start a forged log
line, an ANSI escape would recolour or rewrite the operator's terminal, a bidi override
would display ``evil\u202egnp.mp4`` as ``evilmp4.png``. :func:`escape_control` rewrites
every such character as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), the way
``repr()`` does, and leaves everything else, accents and other scripts included, as it is.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included), DEL and the C1 controls; U+2028/U+2029 (line
# and paragraph separators: some viewers break lines there); the bidi embeddings,
# overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the implicit marks (U+200E,
# U+200F, U+061C), which reorder what a terminal shows; U+FEFF (a zero-width no-break
# space that some tools strip or treat as a byte-order mark).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: object) -> str:
    """``text`` (``str()`` of it) on one line, every control character escaped visibly.

    Idempotent: the result holds no control character, so escaping it again changes
    nothing. Backslashes are left alone, which keeps it so (and keeps Windows paths
    readable); a name that already holds ``\\n`` literally reads the same as one holding
    a newline, which is harmless in a log.
    """
    string = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, string)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character :func:`escape_control` would escape."""
    return _UNSAFE.search(text) is not None
