"""The player's file route: only files recorded in the store, read by descriptor, with
HTTP Range requests."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

from .store import Store


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
