"""One CSV cell safe to open in a spreadsheet, for every CSV the storage commands write,
and the text it stands for, for the trainer that reads such a file back."""

from __future__ import annotations

from typing import Any

# OWASP's CSV injection list: a spreadsheet reads a cell starting with one of these as a
# formula (=HYPERLINK(...), +cmd|..., @SUM(...)), and tab/CR can hide such a start. Also
# after leading spaces, and in full width (some spreadsheets in CJK locales take those).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A value as one CSV cell: text a spreadsheet would run as a formula gets a leading
    ``'``, which spreadsheets show as text and do not keep; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def plain_cell(text: str) -> str:
    """The text :func:`csv_cell` wrote ``text`` for: its leading ``'`` dropped where a
    formula start follows it; any other text as it is."""
    if text.startswith("'") and text[1:].lstrip(" ").startswith(FORMULA_STARTS):
        return text[1:]
    return text
