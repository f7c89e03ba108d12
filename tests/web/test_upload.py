"""Uploads: streamed to a staging name the watcher ignores, renamed in under a name the
server chooses; size-limited; duplicates named; nothing left behind on a refusal."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from fastapi.testclient import TestClient

from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS
from watcher.rules import IgnoreRules
from web.upload import STAGING_PREFIX, STAGING_SUFFIX

from .store import Store, write_webm

STORED = re.compile(r"upload-\d{8}T\d{6}Z-[0-9a-f]{12}\.webm")
BEFORE = {"broken.webm", "done.webm", "waiting.webm"}


def new_files(inbox: Path) -> list[Path]:
    return sorted(p for p in inbox.iterdir() if p.name not in BEFORE)


def test_an_uploaded_file_lands_in_the_inbox_under_a_name_the_server_chose(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "mine.webm", seed=11).read_bytes()
    answer = client.post("/api/videos", files={"file": ("holiday.webm", video)})
    assert answer.status_code == 202, answer.text
    (received,) = answer.json()["files"]
    assert received["name"] == "holiday.webm" and received["size"] == len(video)
    assert STORED.fullmatch(received["stored_name"])
    (placed,) = new_files(store.inbox)
    assert placed.name == received["stored_name"] and placed.read_bytes() == video


def test_several_files_go_in_one_form(client: TestClient, store: Store, tmp_path: Path) -> None:
    files = [
        ("file", (f"clip{i}.webm", write_webm(tmp_path / f"{i}.webm", seed=20 + i).read_bytes()))
        for i in range(3)
    ]
    answer = client.post("/api/videos", files=files)
    assert answer.status_code == 202
    assert len(new_files(store.inbox)) == 3


def test_the_staging_name_is_one_the_watcher_ignores() -> None:
    staging = f"{STAGING_PREFIX}0123456789abcdef01234567{STAGING_SUFFIX}"
    ignored = IgnoreRules(DEFAULT_VIDEO_EXTENSIONS).reason_to_ignore(PurePath(staging))
    assert ignored is not None and ignored.routine


def test_a_hostile_file_name_is_display_text_only(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "x.webm", seed=12).read_bytes()
    name = "../../outside\nline\x1b[31m.webm"
    answer = client.post("/api/videos", files={"file": (name, video)})
    (received,) = answer.json()["files"]
    # A browser (and httpx) sends a newline in a file name as %0A; the escape character
    # arrives as itself and is shown escaped.
    assert received["name"] == "outside%0Aline\\x1b[31m.webm"
    assert STORED.fullmatch(received["stored_name"])
    assert [p.name for p in new_files(store.inbox)] == [received["stored_name"]]
    assert not any(p.name.startswith("outside") for p in tmp_path.rglob("*"))


def test_a_file_over_the_limit_is_refused_with_413_and_leaves_nothing(
    client: TestClient, store: Store
) -> None:
    answer = client.post("/api/videos", files={"file": ("big.webm", b"\0" * 200_001)})
    assert answer.status_code == 413
    assert "ACTIONTAG_UPLOAD_MAX_BYTES" in answer.json()["detail"]
    assert new_files(store.inbox) == []


def test_content_already_recorded_names_its_video_and_is_not_added(
    client: TestClient, store: Store
) -> None:
    assert store.done_path is not None
    answer = client.post(
        "/api/videos", files={"file": ("again.webm", store.done_path.read_bytes())}
    )
    (received,) = answer.json()["files"]
    assert received["duplicate_of"] == store.done_video and received["stored_name"] is None
    assert new_files(store.inbox) == []


def test_a_name_without_a_video_extension_is_refused(client: TestClient, store: Store) -> None:
    answer = client.post("/api/videos", files={"file": ("notes.txt", b"hello")})
    assert answer.status_code == 415
    assert "not a video file name" in answer.json()["files"][0]["refused"]
    assert new_files(store.inbox) == []


def test_a_body_that_is_not_a_form_is_refused(client: TestClient) -> None:
    answer = client.post("/api/videos", content=b"raw", headers={"content-type": "video/webm"})
    assert answer.status_code == 415


def test_the_upload_form_places_files_and_lists_them(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    page = client.get("/upload").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    video = write_webm(tmp_path / "f.webm", seed=13).read_bytes()
    answer = client.post("/upload", files={"file": ("<b>form&co.webm", video)}, data={"csrf": csrf})
    assert answer.status_code == 200
    assert "&lt;b&gt;form&amp;co.webm" in answer.text
    (placed,) = new_files(store.inbox)
    assert placed.name in answer.text
