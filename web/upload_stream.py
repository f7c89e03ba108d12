"""Uploads: each file streamed to a hidden staging name inside the inbox, then renamed in.

The body is parsed as it arrives (python-multipart's streaming parser), so a file is
never held in memory or spooled elsewhere: its bytes go straight to
``<inbox>/.upload-<random>.part``, a name the watcher ignores (hidden, ``.part``), while
its sha256 is computed. Only when the whole request has arrived within the limits is
each file renamed to a name the server chooses (``upload-<UTC time>-<random>.<ext>``)
in the inbox root, where the watcher records it as it records any drop. A request cut
short, over the limit, silent for the idle timeout or failing in any other way leaves
nothing behind. The user's file name is display text only (web.filenames): it chooses
nothing but the extension, and only from the configured video extensions. A file whose
content is already a recorded video is not added again: the answer names that video;
content this process placed and the watcher has not recorded yet is not placed twice.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from actiontag.settings import format_duration
from web.filenames import display_name, extension_of, part_file_name
from web.recent import RecentUploads
from web.staging import new_staging_name

# Room for the multipart framing and form fields besides the files themselves.
FORM_OVERHEAD = 1 << 20
MAX_FILES = 50
MAX_FIELD_BYTES = 4096
# Errors writing to the inbox that mean it has no room (507), or that this process may
# not write there (503); any other is a plain 500. All three are the server's to fix.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NOT_ALLOWED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class UploadRefused(Exception):
    """The request cannot be taken as a whole; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close  # the body was not read to its end: end the connection too


def inbox_write_error(exc: OSError, inbox: Path) -> UploadRefused:
    """The answer to ``exc``, raised while writing an upload into ``inbox``."""
    if exc.errno in NO_ROOM:
        return UploadRefused(
            507, f"no room for the upload in the inbox {inbox} ({exc.strerror}): free space there"
        )
    if exc.errno in NOT_ALLOWED:
        return UploadRefused(
            503,
            f"cannot write to the inbox {inbox} ({exc.strerror}): give the web app's user "
            "write access to it",
        )
    return UploadRefused(500, f"cannot write to the inbox {inbox}: {exc.strerror or exc}")


@dataclass
class ReceivedFile:
    """One file of an upload and what became of it."""

    display_name: str  # the user's name, control characters escaped; never a path
    extension: str | None = None  # its video extension, read before it was shortened
    size: int = 0
    sha256: str = ""
    stored_name: str | None = None  # the name in the inbox, once renamed in
    duplicate_of: int | None = None  # the video this content already is
    same_as: str | None = None  # the stored name of this content, placed but not recorded yet
    refused: str | None = None  # why it was not taken
    staging: str | None = field(default=None, repr=False)

    @property
    def video_url(self) -> str | None:
        """Where the API answers for this file's video: by id for a recorded one, else
        by sha256 (404 until the watcher records it)."""
        if self.duplicate_of is not None:
            return f"/api/videos/{self.duplicate_of}"
        if self.stored_name is not None or self.same_as is not None:
            return f"/api/videos/{self.sha256}"
        return None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.display_name,
            "size": self.size,
            "sha256": self.sha256 or None,
            "stored_name": self.stored_name,
            "duplicate_of": self.duplicate_of,
            "same_as": self.same_as,
            "video_url": self.video_url,
            "refused": self.refused,
        }


@dataclass
class ReceivedForm:
    files: list[ReceivedFile]
    fields: dict[str, str]


class _Receiver:
    """The multipart callbacks: headers of each part, its bytes to a staging file."""

    def __init__(
        self, inbox_fd: int, max_bytes: int, extensions: frozenset[str], uploads: RecentUploads
    ) -> None:
        self.inbox_fd = inbox_fd
        self.max_bytes = max_bytes
        self.extensions = extensions
        self.uploads = uploads
        self.form = ReceivedForm([], {})
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field: str | None = None
        self._value = bytearray()
        self._file: ReceivedFile | None = None
        self._fd = -1
        self._hash = hashlib.sha256()
        self.pending: list[bytes] = []  # bytes of the current file not yet written

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = None
        self._value = bytearray()
        self._file = None

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        name = part_file_name(disposition)
        if name is None:
            _, options = parse_options_header(disposition)
            self._field = options.get(b"name", b"").decode("utf-8", errors="replace")
            return
        if len(self.form.files) >= MAX_FILES:
            raise UploadRefused(413, f"at most {MAX_FILES} files per upload")
        received = ReceivedFile(display_name(name), extension_of(name, self.extensions))
        self.form.files.append(received)
        if received.extension is None:
            received.refused = (
                "not a video file name: its extension is none the inbox takes "
                f"({', '.join(sorted(self.extensions)[:8])}, ...)"
            )
            return
        self._file = received
        self._hash = hashlib.sha256()
        received.staging = new_staging_name()
        self.uploads.staging_started(received.staging)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(received.staging, flags, 0o644, dir_fd=self.inbox_fd)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            chunk = data[start:end]
            self._file.size += len(chunk)
            if self._file.size > self.max_bytes:
                raise UploadRefused(
                    413,
                    f"{self._file.display_name!r} is larger than the upload limit of "
                    f"{self.max_bytes} bytes (ACTIONTAG_UPLOAD_MAX_BYTES); copy it into "
                    "the inbox folder instead",
                )
            self._hash.update(chunk)
            self.pending.append(chunk)
        elif self._field is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise UploadRefused(413, "a form field is too long")

    def _part_end(self) -> None:
        if self._file is not None:
            self.write_pending()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._file.sha256 = self._hash.hexdigest()
            self._file = None
        elif self._field is not None:
            self.form.fields[self._field] = self._value.decode("utf-8", errors="replace")

    def write_pending(self) -> None:
        for chunk in self.pending:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
        self.pending.clear()

    def discard(self) -> None:
        """Remove every staging file of this request (it failed)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        discard_staging(self.form, self.inbox_fd, self.uploads)


def discard_staging(form: ReceivedForm, inbox_fd: int, uploads: RecentUploads) -> None:
    """Remove the staging files of ``form`` that are still there."""
    for received in form.files:
        if received.staging is not None:
            _unlink_quietly(received.staging, inbox_fd)
            uploads.staging_ended(received.staging)
            received.staging = None


def _unlink_quietly(name: str, dir_fd: int) -> None:
    # A file that cannot be removed (the inbox turned read-only) is the sweep's later.
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def open_inbox(inbox: Path) -> int:
    """A descriptor of the inbox folder: staging and renames happen relative to it, so
    a name from nobody reaches a path."""
    try:
        return os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UploadRefused(
            503,
            f"the inbox {str(inbox)!r} cannot be opened ({exc.strerror}); create it or "
            "set ACTIONTAG_INBOX to the watcher's inbox",
        ) from exc


async def receive(
    request: Request,
    *,
    inbox: Path,
    max_bytes: int,
    extensions: frozenset[str],
    idle_timeout_s: float,
    uploads: RecentUploads,
) -> tuple[ReceivedForm, int]:
    """Stream a multipart upload's files to staging names in ``inbox``; its fields too.

    Returns the form and the inbox's descriptor (for :func:`place`, which closes it).
    Raises :class:`UploadRefused` (nothing left behind) for a body that is not
    multipart, too large, cut short or silent for ``idle_timeout_s``, and for an inbox
    that cannot be written. A cancelled request (the server stopping) removes its files
    too.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(415, "send the files as multipart/form-data (a form with a file input)")
    length = request.headers.get("content-length")
    if (
        length is not None
        and length.isdigit()
        and int(length) > max_bytes * MAX_FILES + FORM_OVERHEAD
    ):
        raise UploadRefused(413, f"the upload is larger than {MAX_FILES} files of the limit")
    inbox_fd = open_inbox(inbox)
    receiver = _Receiver(inbox_fd, max_bytes, extensions, uploads)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    chunks = request.stream()
    try:
        while (chunk := await _next_chunk(chunks, idle_timeout_s)) is not None:
            parser.write(chunk)
            if receiver.pending:
                await anyio.to_thread.run_sync(receiver.write_pending)
        parser.finalize()
    except BaseException as exc:
        receiver.discard()
        os.close(inbox_fd)
        if isinstance(exc, UploadRefused):
            raise
        if isinstance(exc, OSError):
            raise inbox_write_error(exc, inbox) from exc
        if isinstance(exc, Exception):
            raise UploadRefused(400, f"the upload could not be read: {exc}") from exc
        raise
    if receiver._file is not None:  # the body ended inside a file
        receiver.discard()
        os.close(inbox_fd)
        raise UploadRefused(400, "the upload ended before its last file did")
    return receiver.form, inbox_fd


async def _next_chunk(chunks: AsyncIterator[bytes], idle_timeout_s: float) -> bytes | None:
    """The body's next chunk; None at its end. A client that sends nothing for
    ``idle_timeout_s`` would otherwise hold its connection and staging file for ever."""
    try:
        with anyio.fail_after(idle_timeout_s):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        idle = format_duration(timedelta(seconds=idle_timeout_s))
        raise UploadRefused(
            408,
            f"the upload sent nothing for {idle} (ACTIONTAG_UPLOAD_IDLE_TIMEOUT): it is "
            "ended; send it again",
            close=True,
        ) from None


def discard(form: ReceivedForm, inbox_fd: int, uploads: RecentUploads) -> None:
    """Remove the staged files of a request that is refused after all; closes ``inbox_fd``."""
    discard_staging(form, inbox_fd, uploads)
    os.close(inbox_fd)


def stored_name(extension: str) -> str:
    """The name a new upload gets in the inbox: when, a random part, its extension."""
    return f"upload-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}.{extension}"


def place(
    form: ReceivedForm,
    inbox_fd: int,
    known_video: Callable[[str], int | None],
    uploads: RecentUploads,
    name_upload: Callable[[str, str], None] = lambda sha256, name: None,
) -> None:
    """Rename each staged file into the inbox, unless it is empty, its content is a
    video already (``known_video(sha256)``) or was placed by this process and not yet
    recorded (``uploads``, this request's earlier files among them); closes
    ``inbox_fd``. ``name_upload(sha256, display name)`` is called before a file is
    renamed in, so that the watcher finds the name the person gave it. Whatever it
    raises, no staging file of ``form`` is left."""
    try:
        for received in form.files:
            if received.staging is not None:
                _place_one(received, inbox_fd, known_video, uploads, name_upload)
    finally:
        discard(form, inbox_fd, uploads)


def _place_one(
    received: ReceivedFile,
    inbox_fd: int,
    known_video: Callable[[str], int | None],
    uploads: RecentUploads,
    name_upload: Callable[[str, str], None],
) -> None:
    assert received.staging is not None and received.extension is not None  # staged with one
    if received.size == 0:
        received.refused = "the file is empty"
        return
    received.duplicate_of = known_video(received.sha256)
    if received.duplicate_of is not None:
        return
    with uploads.placing():
        received.same_as = uploads.placed_as(received.sha256, inbox_fd)
        if received.same_as is not None:
            return
        name = stored_name(received.extension)
        name_upload(received.sha256, received.display_name)
        os.rename(received.staging, name, src_dir_fd=inbox_fd, dst_dir_fd=inbox_fd)
        uploads.staging_ended(received.staging)
        received.staging = None
        received.stored_name = name
        uploads.placed(received.sha256, name)
