"""A benchmark's archives, made available and verified: downloaded from its server or a
mirror, or taken from a folder the user already has (``--archives DIR``: offline).

What HMDB51 and UCF101 share. Each dataset declares its archives (file name, original
address, and the size and checksum where one is published) and the setting that names
its mirror; a mirror is a base URL under which every archive has its own file name.
Downloads resume and are verified (trainer.download); a given folder is never
supplemented by a download, so that "offline" means offline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actiontag.settings import env_name
from actiontag.settings.spec import BY_NAME
from trainer.download import ChecksumError, DownloadError, download, verify_file
from trainer.errors import DatasetError

__all__ = ["Archive", "ArchiveSet", "fetch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    """One file of a dataset: where it comes from and what it must be.

    size, md5 and sha256 are checked where given (None: no published value); check
    raises DatasetError when the file is not of its format (a RAR, a ZIP), which also
    catches an error page a server saved under the archive's name.
    """

    name: str
    url: str
    check: Callable[[Path], None]
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ArchiveSet:
    """The archives of one dataset, and what to tell a user who cannot download them."""

    dataset: str  # as messages name it: "HMDB51"
    archives: tuple[Archive, ...]
    mirror_setting: str  # the Settings field naming a mirror: its variable and flag are advised
    server_note: str = "Its server may be down, or this machine may be offline."

    @property
    def names(self) -> str:
        return " and ".join(a.name for a in self.archives)


def fetch(
    wanted: ArchiveSet,
    dest: Path,
    *,
    mirror: str | None = None,
    archives_dir: Path | None = None,
    retries: int = 5,
    progress: bool = True,
) -> dict[str, Path]:
    """Make every archive of ``wanted`` available and verified; return {file name: path}.

    With archives_dir (--archives) nothing is downloaded: every file must be there and
    is used where it is. Otherwise each is downloaded into dest from mirror (a base URL),
    else its original address. Raises DatasetError saying what to do when offline, a
    file is missing or a file is wrong.
    """
    if archives_dir is not None:
        return _given(wanted, Path(archives_dir))
    paths: dict[str, Path] = {}
    for archive in wanted.archives:
        url = f"{mirror.rstrip('/')}/{archive.name}" if mirror else archive.url
        try:
            path = download(
                url,
                Path(dest) / archive.name,
                size=archive.size,
                md5=archive.md5,
                sha256=archive.sha256,
                retries=retries,
                progress=progress,
            )
        except DownloadError as error:
            raise DatasetError(_offline_advice(wanted, error, Path(dest))) from error
        try:
            archive.check(path)
        except DatasetError as error:
            raise DatasetError(
                f"{error} Delete it and download it again, or use another mirror."
            ) from None
        paths[archive.name] = path
    return paths


def _given(wanted: ArchiveSet, folder: Path) -> dict[str, Path]:
    """The archives in folder (--archives: offline), each checked; never a download."""
    if not folder.is_dir():
        raise DatasetError(f"The archives folder {folder} (--archives) does not exist.")
    lacking = [a.name for a in wanted.archives if not (folder / a.name).is_file()]
    if lacking:
        raise DatasetError(
            f"{folder / lacking[0]} does not exist: --archives DIR means offline, so nothing "
            f"is downloaded and {'both ' if len(wanted.archives) == 2 else ''}{wanted.names} "
            f"must be in {folder}. Copy {' and '.join(lacking)} there, or run without "
            "--archives to download "
            f"{'it' if len(lacking) == 1 else 'them'}."
        )
    paths: dict[str, Path] = {}
    for archive in wanted.archives:
        given = folder / archive.name
        try:
            verify_file(given, size=archive.size, md5=archive.md5, sha256=archive.sha256)
        except ChecksumError as error:
            raise ChecksumError(f"{error} Replace it with a good copy.") from None
        archive.check(given)
        log.info("Using %s", given)
        paths[archive.name] = given
    return paths


def _offline_advice(wanted: ArchiveSet, error: DownloadError, dest: Path) -> str:
    flag = BY_NAME[wanted.mirror_setting].flag
    return (
        f"{error}\n{wanted.server_note} Either\n"
        f"  - put {wanted.names} in a folder and pass --archives DIR (or copy them into "
        f"{dest}), or\n"
        f"  - set {env_name(wanted.mirror_setting)}=<base URL> (or pass {flag} URL) to a "
        "server that has them."
    )
