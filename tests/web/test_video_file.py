"""The player's file route: only files recorded in the store, read by descriptor, with
HTTP Range requests."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import worker.video_file

from .store import Store


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each re-hash of an opened file, counted (the real hash still decides)."""
    counted: list[int] = []
    real: Callable[[int], str] = worker.video_file.sha256_fd
    lock = threading.Lock()

    def counting(fd: int) -> str:
        with lock:
            counted.append(fd)
        time.sleep(0.2)  # long enough for concurrent requests to overlap it
        return real(fd)

    monkeypatch.setattr(worker.video_file, "sha256_fd", counting)
    return counted


def _touch(path: Path) -> None:
    now = time.time() + 5
    os.utime(path, (now, now))


def test_the_whole_file_is_served_with_its_type(client: TestClient, store: Store) -> None:
    assert store.done_path is not None
    answer = client.get(f"/videos/{store.done_video}/file")
    assert answer.status_code == 200
    assert answer.content == store.done_path.read_bytes()
    assert answer.headers["content-type"] == "video/webm"
    assert answer.headers["accept-ranges"] == "bytes"


def test_a_range_request_gets_206_and_those_bytes(client: TestClient, store: Store) -> None:
    assert store.done_path is not None
    data = store.done_path.read_bytes()
    middle = client.get(f"/videos/{store.done_video}/file", headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206
    assert middle.content == data[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(f"/videos/{store.done_video}/file", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    rest = client.get(f"/videos/{store.done_video}/file", headers={"Range": "bytes=100-"})
    assert rest.content == data[100:]


def test_a_range_beyond_the_end_gets_416(client: TestClient, store: Store) -> None:
    assert store.done_path is not None
    size = store.done_path.stat().st_size
    answer = client.get(f"/videos/{store.done_video}/file", headers={"Range": f"bytes={size}-"})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{size}"


def test_an_unknown_video_has_no_file(client: TestClient) -> None:
    assert client.get("/videos/999/file").status_code == 404


def test_a_recorded_path_swapped_for_a_link_out_of_the_inbox_is_not_served(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    assert store.done_path is not None
    secret = tmp_path / "secret.webm"
    secret.write_bytes(b"not for the web")
    store.done_path.unlink()
    os.symlink(secret, store.done_path)
    answer = client.get(f"/videos/{store.done_video}/file")
    assert answer.status_code == 410
    assert b"not for the web" not in answer.content


def test_a_video_id_beyond_the_stores_integers_is_refused(client: TestClient) -> None:
    assert client.get("/videos/99999999999999999999/file").status_code == 422


def test_a_range_start_of_thousands_of_digits_is_not_satisfiable(
    client: TestClient, store: Store
) -> None:
    assert store.done_path is not None
    size = store.done_path.stat().st_size
    answer = client.get(
        f"/videos/{store.done_video}/file", headers={"Range": "bytes=" + "9" * 5000 + "-"}
    )
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{size}"


def test_a_range_with_leading_zeros_is_read_as_its_number(client: TestClient, store: Store) -> None:
    assert store.done_path is not None
    data = store.done_path.read_bytes()
    answer = client.get(
        f"/videos/{store.done_video}/file", headers={"Range": "bytes=" + "0" * 40 + "10-19"}
    )
    assert answer.status_code == 206
    assert answer.content == data[10:20]


def test_after_a_touch_the_file_is_hashed_once_then_trusted_again(
    client: TestClient, store: Store, hashes: list[int]
) -> None:
    assert store.done_path is not None
    url = f"/videos/{store.done_video}/file"
    assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    assert hashes == []
    _touch(store.done_path)
    assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(url, headers={"Range": "bytes=10-19"}).status_code == 206
    assert len(hashes) == 1


def test_concurrent_requests_after_a_touch_hash_the_file_once(
    client: TestClient, store: Store, hashes: list[int]
) -> None:
    assert store.done_path is not None
    data = store.done_path.read_bytes()
    _touch(store.done_path)
    url = f"/videos/{store.done_video}/file"
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.get(url), range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.content == data for a in answers)
    assert len(hashes) == 1


def test_head_answers_like_get_without_a_body(client: TestClient, store: Store) -> None:
    assert store.done_path is not None
    size = store.done_path.stat().st_size
    url = f"/videos/{store.done_video}/file"
    whole = client.head(url)
    assert whole.status_code == 200
    assert (whole.headers["content-length"], whole.headers["content-type"]) == (
        str(size),
        "video/webm",
    )
    assert whole.content == b""
    part = client.head(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert part.headers["content-length"] == "10"
