"""Resumable, verified downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests

from trainer.download import ChecksumError, DownloadError, OfflineError, download

DATA = os.urandom(200_000)
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def server(file_server):
    file_server.files["file.rar"] = DATA
    return file_server


def fetch(server, dest, **kwargs):
    kwargs = {"retries": 3, "backoff_s": 0.0, "progress": False, **kwargs}
    return download(server.url("file.rar"), dest, **kwargs)


def test_download_writes_the_file_and_no_leftovers(server, tmp_path):
    dest = fetch(server, tmp_path / "file.rar", md5=MD5, size=len(DATA))

    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.rar"]


def test_cut_connection_is_resumed_with_a_range_request(server, tmp_path):
    server.cut_after, server.cuts = 70_000, 1

    dest = fetch(server, tmp_path / "file.rar", md5=MD5)

    assert dest.read_bytes() == DATA
    first, second = server.requests
    assert (first.range, first.status) == (None, 200)
    assert (second.range, second.status) == ("bytes=70000-", 206)
    assert second.if_range == server.etag("file.rar")


def test_final_name_appears_only_once_the_file_is_complete(server, tmp_path):
    dest = tmp_path / "file.rar"
    part = tmp_path / "file.rar.part"
    seen = []
    server.on_request = lambda _: seen.append(
        (dest.exists(), part.stat().st_size if part.exists() else 0)
    )
    server.cut_after, server.cuts = 50_000, 3

    fetch(server, dest, md5=MD5)

    assert seen == [(False, 0), (False, 50_000), (False, 100_000), (False, 150_000)]
    assert dest.read_bytes() == DATA
    assert not part.exists()


def test_failed_download_leaves_only_the_part_file(server, tmp_path):
    server.cut_after, server.cuts = 0, 100  # every answer dies before its first byte

    with pytest.raises(DownloadError, match="after 2 failed attempts"):
        fetch(server, tmp_path / "file.rar", retries=2)

    assert not (tmp_path / "file.rar").exists()
    assert len(server.requests) == 2


def test_server_ignoring_range_restarts_from_byte_zero(server, tmp_path):
    (tmp_path / "file.rar.part").write_bytes(b"x" * 5000)
    server.ignore_range = True

    dest = fetch(server, tmp_path / "file.rar", md5=MD5)

    assert dest.read_bytes() == DATA
    assert [(r.range, r.status) for r in server.requests] == [("bytes=5000-", 200)]


def test_complete_part_file_is_accepted_when_the_server_answers_416(server, tmp_path):
    (tmp_path / "file.rar.part").write_bytes(DATA)

    dest = fetch(server, tmp_path / "file.rar", md5=MD5)

    assert dest.read_bytes() == DATA
    assert [(r.range, r.status) for r in server.requests] == [(f"bytes={len(DATA)}-", 416)]


def test_part_file_longer_than_the_remote_file_is_dropped(server, tmp_path):
    (tmp_path / "file.rar.part").write_bytes(DATA + b"junk")

    dest = fetch(server, tmp_path / "file.rar", md5=MD5)

    assert dest.read_bytes() == DATA
    assert [r.status for r in server.requests] == [416, 200]


def test_file_changed_on_the_server_is_fetched_again_not_spliced(server, tmp_path):
    old = os.urandom(len(DATA))
    (tmp_path / "file.rar.part").write_bytes(old[:80_000])
    validators = {"url": server.url("file.rar"), "etag": '"old"', "last_modified": None}
    (tmp_path / "file.rar.part.json").write_text(json.dumps(validators))

    dest = fetch(server, tmp_path / "file.rar", md5=MD5)

    assert dest.read_bytes() == DATA
    assert [(r.if_range, r.status) for r in server.requests] == [('"old"', 200)]


def test_wrong_checksum_is_rejected_and_the_file_kept_aside(server, tmp_path):
    with pytest.raises(ChecksumError, match=r"kept as .*file\.rar\.bad"):
        fetch(server, tmp_path / "file.rar", md5="0" * 32)

    assert not (tmp_path / "file.rar").exists()
    assert (tmp_path / "file.rar.bad").read_bytes() == DATA


def test_a_sha256_is_checked_like_an_md5(server, tmp_path):
    good = fetch(server, tmp_path / "good" / "file.rar", sha256=hashlib.sha256(DATA).hexdigest())

    with pytest.raises(ChecksumError, match=f"has sha256 {hashlib.sha256(DATA).hexdigest()}"):
        fetch(server, tmp_path / "bad" / "file.rar", sha256="0" * 64)

    assert good.read_bytes() == DATA
    assert (tmp_path / "bad" / "file.rar.bad").read_bytes() == DATA


def test_size_announced_by_the_server_must_match_the_known_size(server, tmp_path):
    with pytest.raises(ChecksumError, match=f"offers {len(DATA)} bytes"):
        fetch(server, tmp_path / "file.rar", size=len(DATA) + 1)

    assert not (tmp_path / "file.rar").exists()


def test_missing_file_on_the_server_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("other.rar"), tmp_path / "other.rar", retries=5, progress=False)

    assert len(server.requests) == 1


def test_unreachable_server_fails_after_the_retries(closed_port_url, tmp_path):
    url = f"{closed_port_url}/file.rar"

    with pytest.raises(DownloadError, match=f"Could not download {url} after 2 failed"):
        download(url, tmp_path / "file.rar", retries=2, backoff_s=0.0, progress=False)


def test_verified_existing_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "file.rar").write_bytes(DATA)

    fetch(server, tmp_path / "file.rar", md5=MD5)

    assert server.requests == []


def test_existing_file_with_a_wrong_checksum_is_reported(server, tmp_path):
    # The last byte flipped: DATA is random, and a fixed byte was already there 1 run in 256.
    (tmp_path / "file.rar").write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 0xFF]))

    with pytest.raises(ChecksumError, match="Delete it to download it again"):
        fetch(server, tmp_path / "file.rar", md5=MD5)

    assert server.requests == []


class CountingSession(requests.Session):
    """A real session that counts its GET requests (and ignores proxy settings)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.gets = 0

    def get(self, *args, **kwargs):
        self.gets += 1
        return super().get(*args, **kwargs)


def test_host_name_that_cannot_be_resolved_is_reported_offline_after_one_try(tmp_path):
    session = CountingSession()
    url = "http://hmdb51-mirror.invalid/file.rar"  # .invalid never resolves (RFC 6761)

    with pytest.raises(OfflineError, match=r"'hmdb51-mirror\.invalid' cannot be resolved.*offline"):
        download(url, tmp_path / "file.rar", retries=5, backoff_s=0.01, session=session)

    assert session.gets == 1
