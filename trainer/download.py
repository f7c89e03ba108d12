"""Resumable, verified HTTP downloads.

A file is streamed to `<name>.part` and renamed to `<name>` only once its size and
checksum are right, so a file under its final name is always complete. After a cut
connection the next attempt asks for the rest with an HTTP Range request; the part
file's validators (ETag / Last-Modified) go along as If-Range so that a file changed
on the server is fetched again from the start instead of being spliced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from tqdm import tqdm

from trainer.errors import DatasetError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "actiontag-trainer/0.1 (python-requests)"
# Statuses worth another try: the server is busy or failing, not refusing us.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(DatasetError):
    """The file could not be fetched (network, server, or a response that makes no sense)."""


class OfflineError(DownloadError):
    """The server's name cannot be resolved: this machine is offline (or its DNS is)."""


class ChecksumError(DatasetError):
    """The fetched file is not the expected one (wrong size, md5 or sha256)."""


class _Retry(Exception):
    """This attempt failed in a way another attempt may fix."""


class _RestartFromZero(_Retry):
    """The server's answer does not continue our part file; the part file is dropped."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} could not continue the partial download; restarting")


@dataclass(frozen=True)
class _Validators:
    """What identifies the server's version of a file, kept beside the part file."""

    url: str
    etag: str | None
    last_modified: str | None

    @classmethod
    def from_response(cls, url: str, response: requests.Response) -> _Validators:
        return cls(url, response.headers.get("ETag"), response.headers.get("Last-Modified"))

    def if_range(self) -> str | None:
        # A weak ETag may not be used in If-Range (RFC 9110, 13.1.5).
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def md5sum(path: Path) -> str:
    return file_digest(path, "md5")


def sha256sum(path: Path) -> str:
    return file_digest(path, "sha256")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of path's bytes by hashlib's ``algorithm`` (md5, sha256)."""
    digest = hashlib.new(algorithm, usedforsecurity=algorithm != "md5")
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def verify_file(
    path: Path, *, size: int | None = None, md5: str | None = None, sha256: str | None = None
) -> None:
    """Raise ChecksumError unless path has the given size, md5 and sha256 (each checked
    if given; the size first, which costs nothing)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(f"{path} has {actual_size} bytes, expected {size}.")
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None:
            actual = file_digest(path, algorithm)
            if actual != expected.lower():
                raise ChecksumError(
                    f"{path} has {algorithm} {actual}, expected {expected.lower()}."
                )


def download(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    progress: bool = True,
    session: requests.Session | None = None,
) -> Path:
    """Download url to dest, resuming a previous partial download, and verify it.

    size, md5 and sha256, when given, must match or ChecksumError is raised; the bad file is
    kept aside as `<name>.bad` for inspection. Network failures and busy-server answers
    are retried with exponential backoff; after `retries` attempts in a row that
    received nothing, DownloadError is raised. A host name that cannot be resolved
    raises OfflineError after the first attempt: waiting does not bring a network
    back, and retrying only delays the advice. An existing, verified dest is returned
    as it is, without any request.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            verify_file(dest, size=size, md5=md5, sha256=sha256)
        except ChecksumError as error:
            raise ChecksumError(f"{error} Delete it to download it again.") from None
        log.info("%s is already here and verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    http = session or _new_session()
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _attempt(http, url, part, meta, size=size, timeout_s=timeout_s, progress=progress)
            break
        except (
            _Retry,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
        ) as error:
            if _name_not_resolved(error):
                host = urlsplit(url).hostname
                raise OfflineError(
                    f"Could not download {url}: the name {host!r} cannot be resolved, so this "
                    "machine looks offline (or its DNS does not know that name: check the URL)."
                ) from error
            made_progress = part.exists() and part.stat().st_size > before
            failures = 0 if made_progress else failures + 1
            if failures >= retries:
                raise DownloadError(
                    f"Could not download {url} after {retries} failed attempts: {error}"
                ) from error
            wait_s = backoff_s * 2 ** max(failures - 1, 0)
            log.warning("Download of %s interrupted (%s); retrying in %.1f s", url, error, wait_s)
            time.sleep(wait_s)
        except requests.RequestException as error:
            raise DownloadError(f"Could not download {url}: {error}") from error
    meta.unlink(missing_ok=True)
    _accept(part, dest, size=size, md5=md5, sha256=sha256)
    return dest


def _name_not_resolved(error: BaseException) -> bool:
    """Whether a DNS lookup failure is among error's causes (requests nests them deeply)."""
    todo: list[object] = [error]
    seen: set[int] = set()
    while todo:
        cause = todo.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror | urllib3.exceptions.NameResolutionError):
            return True
        todo += [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
    return False


def _new_session() -> requests.Session:
    session = requests.Session()
    # Byte ranges must count bytes of the file itself, never of a compressed transfer.
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return session


def _attempt(
    http: requests.Session,
    url: str,
    part: Path,
    meta: Path,
    *,
    size: int | None,
    timeout_s: float,
    progress: bool,
) -> None:
    """One request: fetch what the part file lacks, append it, return when complete."""
    offset = part.stat().st_size if part.exists() else 0
    headers: dict[str, str] = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validators = _read_validators(meta)
        if_range = validators.if_range() if validators and validators.url == url else None
        if if_range:
            headers["If-Range"] = if_range
    with http.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
        try:
            total = _plan(response, url, offset, size)
        except _RestartFromZero:
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            raise
        if total is not None and offset == total:
            return  # 416: the part file already holds everything
        if response.status_code == 200:
            if offset:
                log.warning("%s ignored the resume request; starting again from byte 0", url)
            offset = 0
            _write_validators(meta, _Validators.from_response(url, response))
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            # read1 hands over whatever arrived, so bytes before a cut are kept for the
            # resume; iter_content would buffer them and lose them with the error.
            while chunk := response.raw.read1(CHUNK_BYTES):
                out.write(chunk)
                bar.update(len(chunk))
    received = part.stat().st_size
    if total is not None and received < total:
        raise _Retry(f"connection closed after {received} of {total} bytes")
    if total is not None and received > total:
        part.unlink()
        raise DownloadError(f"{url} sent {received} bytes but announced {total}; try again.")


def _plan(response: requests.Response, url: str, offset: int, size: int | None) -> int | None:
    """Check the response status and return the file's full size when the server says it."""
    status = response.status_code
    if status == 416 and offset:
        total = _content_range_total(response)
        if total == offset:
            return total
        # The part file does not fit the server's file (longer, or unknown): start over.
        raise _RestartFromZero(url)
    if status in RETRYABLE_STATUS:
        raise _Retry(f"HTTP {status} {response.reason}")
    if status == 206 and offset:
        start = _content_range_start(response)
        if start != offset:
            raise _RestartFromZero(url)
        total = _content_range_total(response)
    elif status == 200:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
    else:
        raise DownloadError(
            f"{url} answered HTTP {status} {response.reason}; check the address "
            "(or the mirror) and that the file is still served there."
        )
    if size is not None and total is not None and total != size:
        raise ChecksumError(
            f"{url} offers {total} bytes but the expected file has {size}: "
            "the server holds a different file (an error page?). Check the URL or mirror."
        )
    return total if total is not None else size


def _content_range_total(response: requests.Response) -> int | None:
    # "bytes 100-199/200", "bytes */200", or a "*" total when unknown.
    value = response.headers.get("Content-Range", "")
    total = value.rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _content_range_start(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    first = rest.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _accept(
    part: Path, dest: Path, *, size: int | None, md5: str | None, sha256: str | None
) -> None:
    """Rename a complete part file to dest, or keep it aside as .bad if it is wrong."""
    try:
        verify_file(part, size=size, md5=md5, sha256=sha256)
    except ChecksumError as error:
        bad = dest.with_name(dest.name + ".bad")
        os.replace(part, bad)
        raise ChecksumError(
            f"Downloaded {dest.name} is not the expected file: {error} "
            f"It was kept as {bad} for inspection; delete it and download again, "
            "or use another mirror."
        ) from None
    os.replace(part, dest)
    log.info("Downloaded %s", dest)


def _read_validators(meta: Path) -> _Validators | None:
    try:
        return _Validators(**json.loads(meta.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_validators(meta: Path, validators: _Validators) -> None:
    meta.write_text(json.dumps(validators.__dict__))
