"""Opening a job's video: the file that was recorded, inside its inbox, and nothing else.

The database names paths; what lies at a path can change after the watcher recorded it
(a link put in its place, another file renamed over it, bytes overwritten in place). So
at decode time the worker, for each recorded path, newest first:

1. applies the watcher's inbox rule (``actiontag.containment``): the path must lie under the
   inbox root it was recorded under, and its real path, every link resolved, inside
   that root's real path. A link inside the inbox to a file inside it is followed, as
   the watcher records such links; one leading out is refused. Paths recorded before
   migration 0003 have no inbox: they are taken only with no link on their way at all.
2. opens the resolved path with ``O_NOFOLLOW`` (a final link put there since is
   refused, never followed) and ``O_NONBLOCK`` (a FIFO must not block the worker), and
   refuses anything but a regular file (fstat). Where the descriptor really leads
   (``/proc/self/fd/N``) must still be inside the inbox: a folder on the way swapped for
   a link between the check and the open is caught here.
3. compares the opened file's fstat (device, inode, size, mtime, ctime) with what the
   watcher stored when it hashed the file. Any difference, or no stored identity:
   re-hash the open descriptor (sha256 of the bytes actually read) and accept only the
   recorded video's sha256. A size that differs is other content, without reading.
4. decodes through ``/proc/self/fd/N`` (OpenCV and PyAV open it as a path), so the
   decoder reads exactly the opened file whatever happens to the name meanwhile, and
   after decoding checks with fstat that nobody wrote to it during the decode.

The first path that passes is used; a path that is simply gone is skipped. When none
passes the job fails with one sentence per refused path, naming it with ``repr()``
and saying what to do. Linux only (``/proc/self/fd``), like the service.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from types import TracebackType

from actiontag.containment import is_under
from storage.inputs import JobInputs, RecordedFile

__all__ = ["FileRefused", "OpenedVideo", "open_video", "sha256_fd"]

log = logging.getLogger(__name__)

REQUEUE = "`python -m storage requeue --failed`"
_CHUNK = 1 << 20


class FileRefused(Exception):
    """No recorded path holds the recorded video; ``str()`` is the job's failure reason."""


class _Gone(Exception):
    """Nothing at this path (any more): try the next one."""


@dataclass
class OpenedVideo:
    """A recorded video's file, open and verified; decode it through :attr:`decode_path`."""

    path: str  # the recorded path, for messages
    fd: int
    opened: os.stat_result  # fstat when it was verified
    rehashed: bool  # whether its content had to be hashed again

    @property
    def decode_path(self) -> str:
        """The opened file as a path: the decoder reads this very file, never the name."""
        return f"/proc/self/fd/{self.fd}"

    def written_since_opened(self) -> str | None:
        """The failure reason when the file was written since it was verified, else None.

        Called after decoding: an in-place write during the decode may have mixed new
        bytes into the frames.
        """
        now = os.fstat(self.fd)
        if _state(now) == _state(self.opened):
            return None
        return (
            f"{self.path!r} was written to while the worker decoded it (size or "
            "modification time changed), so its results were thrown away. Let whatever "
            f"writes to it finish (the watcher records the new content), then {REQUEUE} "
            "if the recorded video is still wanted."
        )

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenedVideo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_video(inputs: JobInputs) -> OpenedVideo:
    """The first recorded path of the job's video that holds exactly that video, opened.

    Raises :class:`FileRefused` with the job's failure reason when none does.
    """
    refusals: list[str] = []
    for record in inputs.files:
        try:
            opened = _open_recorded(record, inputs.video_sha256)
        except _Gone:
            continue
        except FileRefused as refused:
            log.warning("job %d: not using %r: %s", inputs.job_id, record.path, refused)
            refusals.append(str(refused))
            continue
        if opened.rehashed:
            log.info(
                "job %d: %r is not the file recorded there (identity changed) but holds "
                "the recorded content (sha256 checked)",
                inputs.job_id,
                record.path,
            )
        return opened
    if refusals:
        raise FileRefused(" ".join(refusals))
    tried = ", ".join(repr(p) for p in inputs.paths) or "(no path recorded)"
    raise FileRefused(
        f"the video is no longer where it was seen: no file at {tried}. Put it back (or "
        f"drop it into the inbox again), then {REQUEUE}."
    )


def _open_recorded(record: RecordedFile, sha256: str) -> OpenedVideo:
    path = record.path
    if not os.path.lexists(path):
        raise _Gone(path)
    real = os.path.realpath(path)
    real_root = _check_inbox_rule(record, real)
    fd = _open_no_follow(path, real)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise FileRefused(
                f"{path!r} is not a regular file (a FIFO, device or folder is there now); "
                "the worker reads only regular files. Put the video itself there, then "
                f"{REQUEUE}."
            )
        _check_where_opened(record, fd, real, real_root)
        if opened.st_size != record.size:
            raise FileRefused(
                f"{path!r} no longer holds the recorded video: it has {opened.st_size} "
                f"bytes, the recorded video {record.size}. The watcher records the new "
                "content as a new video; to tag the old one, put it back, then "
                f"{REQUEUE}."
            )
        rehashed = record.identity is None or _identity(opened) != record.identity
        if rehashed:
            _check_content(record, fd, opened, sha256)
        return OpenedVideo(path, fd, opened, rehashed)
    except BaseException:
        os.close(fd)
        raise


def _check_inbox_rule(record: RecordedFile, real: str) -> str | None:
    """The inbox root's real path (None for a path recorded without its inbox), after
    checking that ``record.path`` lies in it without a link leading out."""
    path = record.path
    if record.inbox is None:
        # Recorded before migration 0003: the inbox root is unknown, so no link at all.
        if real != os.path.normpath(os.path.abspath(path)):
            raise FileRefused(
                f"{path!r} leads through a link to {real!r}, and it was recorded before "
                "the worker checked where files lie, so the worker cannot tell whether "
                "that is inside the inbox. Drop the video into the inbox again (the "
                f"watcher records where it lies), then {REQUEUE}."
            )
        return None
    real_root = os.path.realpath(record.inbox)
    if not is_under(os.path.normpath(path), os.path.normpath(record.inbox)) or not is_under(
        real, real_root
    ):
        raise FileRefused(
            f"{path!r} leads outside the inbox {record.inbox!r} (to {real!r}); the worker "
            "reads nothing outside the inbox. Put the video itself in the inbox, not a "
            f"link to it, then {REQUEUE}."
        )
    return real_root


def _open_no_follow(path: str, real: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(real, flags)
    except FileNotFoundError:
        raise _Gone(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileRefused(
                f"{path!r} was replaced by a link while the worker opened it; links are "
                f"never followed at that point. Put the video itself there, then {REQUEUE}."
            ) from None
        raise FileRefused(
            f"the worker cannot open {path!r}: {exc.strerror}. Give the worker's user "
            f"read access to the inbox, then {REQUEUE}."
        ) from None


def _check_where_opened(record: RecordedFile, fd: int, real: str, real_root: str | None) -> None:
    """Refuse a descriptor that leads outside the inbox after all: a folder on the way
    was swapped for a link between resolving the path and opening it."""
    opened_at = os.readlink(f"/proc/self/fd/{fd}")
    inside = opened_at == real if real_root is None else is_under(opened_at, real_root)
    if not inside:
        raise FileRefused(
            f"{record.path!r} led to {opened_at!r} when the worker opened it, outside the "
            "inbox (a folder on its way was replaced by a link); the worker reads nothing "
            f"outside the inbox. Put the video itself in the inbox, then {REQUEUE}."
        )


def _check_content(record: RecordedFile, fd: int, opened: os.stat_result, sha256: str) -> None:
    """Re-hash the open file; refuse it unless it holds the recorded content."""
    digest = sha256_fd(fd)
    if _state(os.fstat(fd)) != _state(opened):
        raise FileRefused(
            f"{record.path!r} was written to while the worker checked its content. Let "
            f"whatever writes to it finish, then {REQUEUE}."
        )
    if digest != sha256:
        raise FileRefused(
            f"{record.path!r} no longer holds the recorded video: the file there now has "
            f"sha256 {digest[:12]}…, the recorded video {sha256[:12]}… (it was replaced or "
            "overwritten after it was recorded). The watcher records the new content as "
            f"a new video; to tag the old one, put it back, then {REQUEUE}."
        )


def sha256_fd(fd: int) -> str:
    """The sha256 of an open file's bytes, read from offset 0 with ``pread`` (the
    descriptor's own position is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _identity(result: os.stat_result) -> tuple[int, int, int, int, int]:
    return (result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns, result.st_ctime_ns)


def _state(result: os.stat_result) -> tuple[int, int, int]:
    # What a write changes (ctime too: mtime can be set back, ctime cannot).
    return (result.st_size, result.st_mtime_ns, result.st_ctime_ns)
