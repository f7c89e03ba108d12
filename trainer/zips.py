"""Safe reading of ZIP archives: the few members a caller names, read into memory.

Nothing here writes a file, and no name from an archive ever becomes a path on disk:
the caller is handed each member's bytes and writes them under a name of its own. Every
member's header is checked before anything is read, as trainer.rar does for RAR
archives, so one hostile member (an absolute name, a `..`, a link, an encrypted entry)
refuses the whole archive: an archive that holds one is not the file it claims to be.
Backslashes count as folder separators in those checks, since some Windows tools write
them. A member is read no further than the size its header declares (and at most the
caller's limit), and zipfile checks its CRC-32 at the end, so a damaged or inflating
member is an error, never silently wrong or endless data.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trainer.rar import ArchiveError, UnsafeArchiveError

__all__ = ["ZIP_SIGNATURE", "Member", "check_signature", "read_files"]

# A ZIP with members starts with a local file header; self-extracting or prefixed
# archives (which zipfile accepts, as it reads from the end) are refused.
ZIP_SIGNATURE = b"PK\x03\x04"
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]")
ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class Member:
    """One member read: its name in the archive (for messages only) and its bytes."""

    name: str
    data: bytes


def check_signature(path: Path) -> None:
    """Raise ArchiveError unless path starts with a ZIP local file header at offset 0."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(ZIP_SIGNATURE))
    except OSError as error:
        raise ArchiveError(f"{path} cannot be read: {error.strerror}.") from error
    if head != ZIP_SIGNATURE:
        raise ArchiveError(
            f"{path} is not a ZIP archive: it does not start with a ZIP file header (a RAR, "
            "a self-extracting .exe or a saved error page?). Replace it with the original "
            ".zip file."
        )


def read_files(archive: Path, names: Sequence[str], *, max_bytes: int) -> dict[str, Member]:
    """{name: member} of the members whose file name (the last part of the member's
    name, in whatever folder) is one of ``names``; each must be there exactly once.

    Raises UnsafeArchiveError when any member of the archive is unsafe, ArchiveError
    naming the files that are missing, present twice, larger than ``max_bytes`` or
    damaged.
    """
    archive = Path(archive)
    check_signature(archive)
    try:
        with zipfile.ZipFile(archive) as opened:
            infos = opened.infolist()
            for info in infos:
                _check_member(archive, info)
            found = _find(archive, infos, names)
            return {
                name: Member(info.filename, _read(archive, opened, info, max_bytes))
                for name, info in found.items()
            }
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ArchiveError(
            f"{archive} is not a readable ZIP archive ({error or type(error).__name__}): "
            "download it again."
        ) from error


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    where = f"{archive.name}: member {name!r}"
    parts = _SEPARATORS.split(name)
    if (
        not name
        or name.startswith(("/", "\\"))
        or _DRIVE.match(name)
        or "\0" in name
        or ".." in parts
    ):
        raise UnsafeArchiveError(f"{where} would be written outside the target folder.")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchiveError(f"{where} is a link or special file; refusing it.")
    if info.flag_bits & ENCRYPTED_FLAG:
        raise ArchiveError(f"{where} is encrypted; actiontag cannot read it.")


def _find(
    archive: Path, infos: list[zipfile.ZipInfo], names: Sequence[str]
) -> dict[str, zipfile.ZipInfo]:
    by_name: dict[str, list[zipfile.ZipInfo]] = {name: [] for name in names}
    for info in infos:
        if not info.is_dir():
            last = _SEPARATORS.split(info.filename)[-1]
            if last in by_name:
                by_name[last].append(info)
    missing = [name for name, found in by_name.items() if not found]
    twice = [name for name, found in by_name.items() if len(found) > 1]
    if missing or twice:
        problems = []
        if missing:
            problems.append(f"lacks {', '.join(missing)}")
        if twice:
            problems.append(f"holds {', '.join(twice)} more than once")
        raise ArchiveError(f"{archive} {' and '.join(problems)}.")
    return {name: found[0] for name, found in by_name.items()}


def _read(archive: Path, opened: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    if info.file_size > max_bytes:
        raise ArchiveError(
            f"{archive.name}: member {info.filename!r} unpacks to {info.file_size} bytes, more "
            f"than the {max_bytes} such a file can hold: this is not the expected archive."
        )
    with opened.open(info) as member:
        # zipfile stops at the declared size and checks the CRC-32 on reaching it.
        return member.read(max_bytes + 1)
