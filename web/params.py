"""The integers a request may carry, bounded where they are declared.

The store's integers are signed 64-bit (SQLite INTEGER, PostgreSQL BIGINT): a larger
number cannot be bound into a query at all, so every id, position and offset is
refused (422) before a route runs rather than failing in the database driver.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

SQL_INT_MAX = 2**63 - 1
# Far more rows than any store holds, and small enough that a page's arithmetic
# (offset + limit, the read-ahead of storage.queries.videos) stays within SQL_INT_MAX.
MAX_OFFSET = 10**15

VideoId = Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="a video's id")]
JobId = Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="a job's id")]
AnnotationId = Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="an annotation's id")]
Position = Annotated[int, Path(ge=0, le=SQL_INT_MAX, description="a place in a list")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (paging)")]


def id_in_text(text: str) -> int | None:
    """The id ``text`` spells in decimal digits, or None when it spells none the store
    can hold (checked on the digits: a long one is never converted)."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0")
    if not digits or len(digits) > len(str(SQL_INT_MAX)) or int(digits) > SQL_INT_MAX:
        return None
    return int(digits)
