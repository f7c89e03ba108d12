"""Serving a recorded video to the player, with HTTP Range requests.

No path from the request reaches the file system: the request names a video id; the
file is the one the worker would read for that video (``worker.video_file``: a recorded
path inside its inbox, no final link, a regular file, the recorded content), opened
once and read by descriptor; this module answers with the whole file or the byte
range the request asks for.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi.responses import Response, StreamingResponse

from worker.video_file import OpenedVideo

CHUNK = 256 << 10
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# A range number with more digits than this lies beyond any file: it is read as this
# cap, never converted (a number of thousands of digits is slow or refused by int()).
_RANGE_CAP = 10**18
# Types browsers play, by extension; anything else is offered as bytes.
_EXTRA_TYPES = {"mkv": "video/x-matroska", "webm": "video/webm", "ogv": "video/ogg"}


class RangeNotSatisfiable(Exception):
    """The range starts at or beyond the end of the file."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range ``header`` asks for, or None for the whole file (no
    header, several ranges, or one we do not read: RFC 9110 lets us ignore it).
    Raises :class:`RangeNotSatisfiable` for a range wholly beyond the end."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix, 0), size - 1)
    start = _number(first)
    end = min(_number(last), size - 1) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiable
    if end < start:
        return None
    return ByteRange(start, end)


def _number(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(_RANGE_CAP)):
        return _RANGE_CAP
    return min(int(significant), _RANGE_CAP)


def content_type(path: str) -> str:
    extension = path.rpartition(".")[2].lower()
    guessed = _EXTRA_TYPES.get(extension) or mimetypes.guess_type(f"x.{extension}")[0]
    return guessed or "application/octet-stream"


def _read(opened: OpenedVideo, start: int, length: int) -> Iterator[bytes]:
    try:
        offset, left = start, length
        while left > 0:
            chunk = os.pread(opened.fd, min(CHUNK, left), offset)
            if not chunk:
                break
            offset += len(chunk)
            left -= len(chunk)
            yield chunk
    finally:
        opened.close()


def video_response(
    opened: OpenedVideo, range_header: str | None, *, head: bool = False
) -> Response:
    """The file (or the asked range of it) as the response; closes ``opened`` when sent.
    ``head``: the same status and headers, no body (``opened`` is closed at once)."""
    size = opened.opened.st_size
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
    }
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        opened.close()
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    media_type = content_type(opened.path)
    status, start, length = (200, 0, size) if wanted is None else (206, wanted.start, wanted.length)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    headers["Content-Length"] = str(length)
    if head:
        opened.close()
        return Response(status_code=status, media_type=media_type, headers=headers)
    return StreamingResponse(
        _read(opened, start, length), status_code=status, media_type=media_type, headers=headers
    )
