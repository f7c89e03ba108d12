"""Safe extraction of RAR archives: rarfile reads the headers, a Debian tool unpacks.

Why not `rarfile.RarFile.extractall`: rarfile reads stored members itself but hands
compressed ones to an external tool. It picks that tool once per process
(`rarfile.tool_setup()`): the first of unrar, unar, 7z, 7zz, bsdtar whose "check"
command runs, with program names taken from the module globals `UNRAR_TOOL`,
`UNAR_TOOL`, `SEVENZIP_TOOL`, `SEVENZIP2_TOOL`, `BSDTAR_TOOL`. Debian's main archive
has no unrar, so on Debian that is usually bsdtar, and rarfile 4.5 runs it as
`bsdtar -x --to-stdout -f -- ARCHIVE`: bsdtar takes `--` as the archive name, fails,
and since rarfile merges the tool's stderr into the data pipe it reads bsdtar's error
message as the member's content, which then fails the CRC check. That is why every
compressed member of the RAR 3 and RAR 5 fixtures "fails its CRC" under rarfile +
bsdtar while stored ones (read without any tool) pass. Member-by-member extraction
would also restart a solid archive from its beginning for every member, and bsdtar
treats member names as glob patterns (HMDB51 names contain `[` and `]`).

So here rarfile only parses headers (pure Python: names, sizes, CRCs, link and
encryption flags, volumes). First of all the file must start with the RAR 4 or RAR 5
signature at offset 0: rarfile (like unrar) also accepts a RAR found anywhere in the
first 2 MiB, for self-extracting archives, so a ZIP or 7z that merely stores a RAR
would pass its header checks while bsdtar/unar, which detect the format themselves,
unpack the outer ZIP/7z unchecked. Self-extracting archives are therefore refused
too (HMDB51 ships none). Then every member is checked before anything is written
(paths that escape the target, links, special files, encryption, free space), then
the chosen tool unpacks the whole archive into the target in one pass, with argument
lists and never a shell, and every unpacked file is checked against the size and
CRC-32 (or BLAKE2sp) the archive recorded. A tool's mistake is therefore an error,
never a silently wrong file (bsdtar, for one, does not check the CRC of stored
members: it unpacks a damaged one and exits 0).

File versions (RAR's `-ver`): an archive may keep older versions of a file beside the
latest. RAR 2.9-4.x stores them under the name `name;N` with a version flag, RAR 5
under the plain name with a version record; rarfile lists only the latest version,
and bsdtar writes every older one as `name;N` (adding the `;N` for RAR 5). So the
older versions are checked like any member (they are written too), the latest is
unpacked under the plain name, and the older ones are deleted before the result is
verified: what remains is exactly the latest version of every file.

Tools, in the order `auto` tries them (ACTIONTAG_RAR_BACKEND=bsdtar|unar picks one);
each installed one is tried until one succeeds, because each misses some variants:
- `bsdtar` (Debian package libarchive-tools, what `make` installs): RAR 1.5-4.x and
  RAR 5, volumes (fed to it back to back on stdin); libarchive 3.6 cannot unpack
  solid RAR 2.9-4.x archives past their first member, which it reports as an error.
- `unar` (Debian package unar): solid archives and volumes; unar 1.10 fails on some
  RAR 5 archives (the rar5-subdirs test fixture).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rarfile

from actiontag.settings import env_name
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

BACKEND_ENV = env_name("rar_backend")
# program name -> Debian package that provides it, in the order "auto" tries them
BACKEND_PACKAGES = {"bsdtar": "libarchive-tools", "unar": "unar"}
# Space kept free beyond what an archive unpacks to (file system metadata, logs).
SPACE_MARGIN_BYTES = 64 << 20
CHUNK_BYTES = 1 << 20
# The marker block every RAR 1.5-4.x / RAR 5 archive (and each of its volumes) starts with.
RAR4_SIGNATURE = b"Rar!\x1a\x07\x00"
RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(DatasetError):
    """An archive cannot be read or unpacked."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target folder, or is a link."""


class InsufficientSpaceError(ArchiveError):
    """Not enough free disk space to unpack an archive."""


@dataclass(frozen=True)
class Backend:
    """An external program that unpacks RAR archives."""

    name: str
    executable: str


@dataclass(frozen=True)
class Member:
    """One entry of an archive, as its headers describe it."""

    name: str  # relative POSIX path, already checked to stay inside the target
    size: int
    is_dir: bool
    crc32: int | None
    blake2sp: bytes | None


@dataclass(frozen=True)
class Listing:
    """What an archive holds, read from its headers without unpacking anything."""

    path: Path
    volumes: tuple[Path, ...]
    members: tuple[Member, ...]
    # older file versions, named as the backends write them (`name;N`); never kept
    old_versions: tuple[Member, ...] = ()

    @property
    def files(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.is_dir)

    @property
    def unpacked_size(self) -> int:
        return sum(m.size for m in self.files)


def available_backends(name: str = "auto") -> list[Backend]:
    """The unpacking programs to try, in order: ``name`` (the ``rar_backend`` setting,
    ``$ACTIONTAG_RAR_BACKEND``), "auto" by default.

    "auto" gives every installed one (bsdtar, then unar), so that an archive one of
    them cannot read goes to the other. Raises DatasetError naming the Debian
    package to install when none is found.
    """
    choice = (name or "auto").strip().lower()
    if choice != "auto" and choice not in BACKEND_PACKAGES:
        raise DatasetError(
            f"Unknown RAR backend {choice!r} (from {BACKEND_ENV} or the caller); "
            f"choose one of: auto, {', '.join(BACKEND_PACKAGES)}."
        )
    candidates = list(BACKEND_PACKAGES) if choice == "auto" else [choice]
    found = [Backend(p, exe) for p in candidates if (exe := shutil.which(p))]
    if not found:
        wanted = " or ".join(f"{p} (Debian package {BACKEND_PACKAGES[p]})" for p in candidates)
        raise DatasetError(
            f"No program to unpack RAR archives was found: install {wanted}, e.g. "
            f"`sudo apt-get install {BACKEND_PACKAGES[candidates[0]]}` "
            "(`make install` does this)."
        )
    return found


def check_signature(path: Path) -> None:
    """Raise ArchiveError unless path starts with a RAR 4 or RAR 5 signature at offset 0."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(RAR5_SIGNATURE))
    except OSError as error:
        raise ArchiveError(f"{path} cannot be read: {error.strerror}.") from error
    if not head.startswith((RAR4_SIGNATURE, RAR5_SIGNATURE)):
        raise ArchiveError(
            f"{path} is not a RAR archive: it does not start with a RAR 4 or RAR 5 signature "
            "(a ZIP, 7z, self-extracting .exe or a saved error page?). Replace it with the "
            "original .rar file."
        )


def list_members(archive: Path) -> Listing:
    """Read and check an archive's headers; raise before anything unsafe is written."""
    archive = Path(archive)
    check_signature(archive)  # before rarfile, which would look further into the file
    old_versions: dict[str, rarfile.RarInfo] = {}

    def note_old_version(info: rarfile.RarInfo) -> None:
        name = _old_version_name(info)
        if name is not None:
            old_versions.setdefault(name, info)

    try:
        headers = rarfile.RarFile(archive, info_callback=note_old_version)
        infos = headers.infolist()
        volumes = tuple(Path(v) for v in headers.volumelist())
    except rarfile.NeedFirstVolume as error:
        raise ArchiveError(
            f"{archive} is not the first volume of a multi-volume archive; "
            "give the first one (name.part1.rar or name.rar)."
        ) from error
    except (rarfile.Error, OSError) as error:
        raise ArchiveError(f"{archive} is not a readable RAR archive: {error}") from error
    for volume in volumes[1:]:  # bsdtar is fed them back to back
        check_signature(volume)
    if headers.needs_password():
        raise ArchiveError(f"{archive} is password-protected; actiontag cannot unpack it.")
    members = tuple(_checked_member(archive, info) for info in infos)
    seen: set[str] = set()
    for member in members:
        if member.name in seen and not member.is_dir:
            raise ArchiveError(f"{archive} holds {member.name!r} twice; refusing to pick one.")
        seen.add(member.name)
    old = tuple(_checked_member(archive, info, name) for name, info in old_versions.items())
    for member in old:
        if member.name in seen:
            raise ArchiveError(
                f"{archive} holds {member.name!r} both as a file and as an older version "
                "of another (RAR file versions); refusing to pick one."
            )
    return Listing(archive, volumes, members, old)


def extract(archive: Path, target: Path, *, backends: Sequence[Backend] | None = None) -> Listing:
    """Unpack archive into target (created; must be empty) and verify every file.

    Each backend (default: available_backends()) is tried in turn until one gives
    exactly the archive's files with the right checksums. Raises UnsafeArchiveError
    for members that would escape target or are links, InsufficientSpaceError when
    the disk is too small, ArchiveError when no backend succeeds. On error target may
    hold partial output: callers unpack into a temporary folder and rename it into
    place only on success.
    """
    listing = list_members(archive)
    tools = list(backends) if backends else available_backends()
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ArchiveError(f"Refusing to unpack {archive.name} into non-empty {target}.")
    old_bytes = sum(m.size for m in listing.old_versions)  # written, then deleted
    check_free_space(target, listing.unpacked_size + old_bytes, what=archive.name)
    failures: list[str] = []
    for backend in tools:
        if failures:
            shutil.rmtree(target)
            target.mkdir()
        log.info(
            "Unpacking %s (%d files, %s) with %s",
            archive.name,
            len(listing.files),
            human_bytes(listing.unpacked_size),
            backend.name,
        )
        try:
            _run_backend(backend, listing, target)
            _refuse_links(target, backend)  # before deleting anything under target
            _drop_old_versions(listing, target)
            _verify(listing, target, backend)
            return listing
        except UnsafeArchiveError:
            raise
        except ArchiveError as error:
            log.warning("%s", error)
            failures.append(str(error))
    if listing.old_versions:
        failures.append(
            f"{archive.name} holds older file versions (RAR's `name;N`, e.g. "
            f"{listing.old_versions[0].name!r}), which these programs may not handle: "
            "repack it without them (rar a without -ver), or try the other program."
        )
    raise ArchiveError(" ".join(failures) + " " + _advice(tools))


def check_free_space(folder: Path, needed: int, *, what: str) -> None:
    """Raise InsufficientSpaceError unless folder's file system has needed bytes free."""
    probe = Path(folder)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed + SPACE_MARGIN_BYTES > free:
        raise InsufficientSpaceError(
            f"Unpacking {what} needs {human_bytes(needed)} (+{human_bytes(SPACE_MARGIN_BYTES)} "
            f"margin) in {folder}, but only {human_bytes(free)} is free there. Free some "
            "space, or choose a data folder on a larger disk (--data-dir)."
        )


def human_bytes(count: float) -> str:
    if abs(count) < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if abs(count) < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} TiB"


def _old_version_name(info: rarfile.RarInfo) -> str | None:
    """The name backends write an older file version under (`name;N`); None if not one."""
    if getattr(info, "type", None) != rarfile.RAR_BLOCK_FILE:
        return None
    if isinstance(info, rarfile.Rar5FileInfo):
        if info.file_version is None or info.block_flags & rarfile.RAR5_BLOCK_FLAG_SPLIT_BEFORE:
            return None
        return f"{info.filename};{info.file_version[1]}"
    if info.flags & rarfile.RAR_FILE_SPLIT_BEFORE or not info.flags & rarfile.RAR_FILE_VERSION:
        return None
    return info.filename  # RAR 2.9-4.x stores the `;N` in the name itself


def _checked_member(archive: Path, info: rarfile.RarInfo, name: str | None = None) -> Member:
    name = info.filename if name is None else name
    where = f"{archive.name}: member {name!r}"
    if info.needs_password():
        raise ArchiveError(f"{where} is encrypted; actiontag cannot unpack it.")
    if info.file_redir is not None or info.is_symlink():
        raise UnsafeArchiveError(f"{where} is a link (symbolic, hard or copy); refusing it.")
    if info.host_os == rarfile.RAR_OS_UNIX and info.mode is not None:
        kind = stat.S_IFMT(info.mode)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{where} is a special file (mode {info.mode:o}).")
    parts = PurePosixPath(name).parts
    if (
        not parts
        or name.startswith("/")
        or _DRIVE.match(name)
        or "\0" in name
        or any(part == ".." for part in parts)
    ):
        raise UnsafeArchiveError(f"{where} would be written outside the target folder.")
    return Member(
        name="/".join(parts),
        size=0 if info.is_dir() else info.file_size,
        is_dir=info.is_dir(),
        crc32=info.CRC,
        blake2sp=info.blake2sp_hash,
    )


def _run_backend(backend: Backend, listing: Listing, target: Path) -> None:
    # Names are decoded to the locale: without UTF-8 bsdtar skips non-ASCII names.
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    first_volume = str(listing.path.resolve())
    stream_volumes = backend.name == "bsdtar" and len(listing.volumes) > 1
    if backend.name == "bsdtar":
        # bsdtar reads one file; libarchive follows a volume set read back to back.
        source = "-" if stream_volumes else first_volume
        argv = [backend.executable, "-x", "--no-same-owner", "-f", source, "-C", str(target)]
    else:
        argv = [backend.executable, "-quiet", "-force-overwrite", "-no-directory"]
        argv += ["-no-recursion", "-output-directory", str(target), first_volume]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stream_volumes else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        if stream_volumes:
            _feed_volumes(process, listing.volumes)
        returncode = process.wait()
        stderr.seek(0)
        message = stderr.read().decode("utf-8", "replace").strip()
    if returncode != 0:
        raise ArchiveError(
            f"{backend.name} could not unpack {listing.path.name} "
            f"(exit {returncode}: {_tail(message)})."
        )


def _drop_old_versions(listing: Listing, target: Path) -> None:
    """Delete the older file versions a backend wrote, keeping the latest ones only."""
    for member in listing.old_versions:
        path = target / member.name
        # Only a regular file at that exact name (links were refused before).
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(path.lstat().st_mode):
                path.unlink()


def _feed_volumes(process: subprocess.Popen[bytes], volumes: tuple[Path, ...]) -> None:
    assert process.stdin is not None
    # A tool that stops reading early says why in its exit status and stderr.
    with contextlib.suppress(BrokenPipeError):
        try:
            for volume in volumes:
                with open(volume, "rb") as f:
                    shutil.copyfileobj(f, process.stdin, CHUNK_BYTES)
        finally:
            process.stdin.close()


def _advice(tried: Sequence[Backend]) -> str:
    untried = [p for p in BACKEND_PACKAGES if p not in {b.name for b in tried}]
    if not untried:
        return "The archive is damaged or uses a RAR variant none of them reads: download it again."
    installed = [p for p in untried if shutil.which(p)]
    missing = " ".join(BACKEND_PACKAGES[p] for p in untried if p not in installed)
    advice = [
        "Each RAR program misses some RAR variants (libarchive's bsdtar: solid RAR 2.9-4.x "
        "archives; unar 1.10: some RAR 5 archives):"
    ]
    if installed:
        advice.append(f"unset {BACKEND_ENV} so that {' and '.join(installed)} is tried too.")
    if missing:
        advice.append(
            f"install {missing} (`sudo apt-get install {missing}`), tried next when present."
        )
    advice.append("Otherwise the archive is damaged: download it again.")
    return " ".join(advice)


def _tail(message: str, lines: int = 5) -> str:
    return " | ".join(message.splitlines()[-lines:]).rstrip(".") or "no message"


def _refuse_links(target: Path, backend: Backend) -> None:
    for folder, dirnames, filenames in os.walk(target):
        for name in dirnames + filenames:
            path = Path(folder, name)
            if path.is_symlink():
                raise UnsafeArchiveError(f"{backend.name} created a link {path}; refusing it.")


def _verify(listing: Listing, target: Path, backend: Backend) -> None:
    """Check that target (links refused) holds exactly the archive's files and checksums."""
    found: dict[str, Path] = {}
    for folder, _, filenames in os.walk(target):
        for name in filenames:
            path = Path(folder, name)
            found[path.relative_to(target).as_posix()] = path
    expected = {m.name: m for m in listing.files}
    problems = [f"{name!r} was not unpacked" for name in sorted(expected.keys() - found.keys())]
    problems += [f"unexpected file {name!r}" for name in sorted(found.keys() - expected.keys())]
    for name in sorted(expected.keys() & found.keys()):
        problem = _check_file(found[name], expected[name])
        if problem:
            problems.append(f"{name!r} {problem}")
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise ArchiveError(
            f"Unpacking {listing.path.name} with {backend.name} gave wrong results: {shown}."
        )


def _check_file(path: Path, member: Member) -> str | None:
    size = path.stat().st_size
    if size != member.size:
        return f"has {size} bytes, the archive says {member.size}"
    if member.crc32 is not None:
        crc = 0
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                crc = zlib.crc32(block, crc)
        if crc != member.crc32:
            return f"fails its CRC-32 check (got {crc:08x}, expected {member.crc32:08x})"
    elif member.blake2sp is not None:
        digest = rarfile.Blake2SP()
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                digest.update(block)
        if digest.digest() != member.blake2sp:
            return "fails its BLAKE2sp check"
    return None
