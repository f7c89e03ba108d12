"""Uploads: streamed to a staging name the watcher ignores, renamed in under a name the
server chooses; size-limited; duplicates named; nothing left behind on a refusal; names
decoded as browsers and RFC 5987 send them. Tests against a real server process (idle
clients, a full disk, an inbox that cannot be written, a stop) are in
test_upload_server.py."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path, PurePath

from fastapi.testclient import TestClient

from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS, Settings
from storage.db import make_engine
from watcher.rules import IgnoreRules
from web.app import make_app
from web.staging import STAGING_PREFIX, STAGING_SUFFIX, new_staging_name

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
    # A browser (and httpx) sends a newline in a file name as %0A, decoded back; the
    # escape character arrives as itself; both are shown escaped.
    assert received["name"] == "outside\\nline\\x1b[31m.webm"
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


def upload_recorded_content(client: TestClient, store: Store) -> dict[str, object]:
    """The answer for one file whose content is the store's done video, under a new name."""
    assert store.done_path is not None
    answer = client.post(
        "/api/videos", files={"file": ("again.webm", store.done_path.read_bytes())}
    )
    (received,) = answer.json()["files"]
    return received


def test_content_already_recorded_names_its_video_and_is_not_added(
    client: TestClient, store: Store
) -> None:
    received = upload_recorded_content(client, store)
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


def staging_files(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.name.startswith(STAGING_PREFIX))


def multipart(disposition: str, content: bytes, boundary: str = "b0undary") -> dict:
    """A request's body and headers with one part of this Content-Disposition."""
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode("latin-1")
    return {
        "content": body + content + f"\r\n--{boundary}--\r\n".encode(),
        "headers": {"content-type": f"multipart/form-data; boundary={boundary}"},
    }


def test_the_database_down_while_placing_answers_503_and_leaves_no_staging_file(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    nothing_there = make_engine("postgresql://postgres@127.0.0.1:1/actiontag")  # port 1: closed
    video = write_webm(tmp_path / "v.webm", seed=30).read_bytes()
    with TestClient(make_app(settings, engine=nothing_there)) as client:
        answer = client.post("/api/videos", files={"file": ("v.webm", video)})
    assert answer.status_code == 503, answer.text
    assert "the database is unavailable" in answer.json()["detail"]
    assert new_files(store.inbox) == []


def test_old_staging_files_are_swept_when_the_app_starts(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    old, fresh = new_staging_name(), new_staging_name()
    for name in (old, fresh):
        (store.inbox / name).write_bytes(b"half an upload")
    hour_ago = time.time() - 3600 - 60
    os.utime(store.inbox / old, (hour_ago, hour_ago))
    with TestClient(make_app(settings, engine=store.engine)):
        assert staging_files(store.inbox) == [fresh]


def test_the_sweep_leaves_other_files_and_links_with_staging_names(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.webm"
    outside.write_bytes(b"not the inbox's")
    link = store.inbox / new_staging_name()
    link.symlink_to(outside)
    others = [store.inbox / ".upload-mine.part", store.inbox / "upload-kept.part"]
    for other in others:
        other.write_bytes(b"someone else's")
    hour_ago = time.time() - 7200
    for path in (outside, *others):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(link, (hour_ago, hour_ago), follow_symlinks=False)
    with TestClient(make_app(settings, engine=store.engine)):
        assert link.is_symlink() and outside.exists() and all(p.exists() for p in others)


def test_staging_files_are_swept_periodically_while_the_app_runs(
    settings: Settings, store: Store
) -> None:
    short = replace(settings, upload_staging_max_age=timedelta(seconds=2))
    with TestClient(make_app(short, engine=store.engine)):
        left = store.inbox / new_staging_name()
        left.write_bytes(b"left by a killed process")
        os.utime(left, (time.time() - 60, time.time() - 60))  # after the sweep at start
        deadline = time.monotonic() + 10
        while left.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left.exists()


def test_a_form_with_no_file_is_refused_with_400(client: TestClient, store: Store) -> None:
    answer = client.post("/api/videos", **multipart('form-data; name="note"', b"hello"))
    assert answer.status_code == 400, answer.text
    assert "holds no file" in answer.json()["detail"]


def test_a_part_named_only_by_rfc5987_filename_star_is_a_file_with_that_name(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=31).read_bytes()
    disposition = "form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9%20%22one%22.webm"
    answer = client.post("/api/videos", **multipart(disposition, video))
    assert answer.status_code == 202, answer.text
    (received,) = answer.json()["files"]
    assert received["name"] == 'café "one".webm' and STORED.fullmatch(received["stored_name"])


def test_a_quote_in_a_browser_sent_name_is_shown_as_a_quote(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=32).read_bytes()
    # What Chromium and Firefox send for the name 'say "hi".webm' (the HTML form encoding).
    disposition = 'form-data; name="file"; filename="say %22hi%22.webm"'
    answer = client.post("/api/videos", **multipart(disposition, video))
    (received,) = answer.json()["files"]
    assert received["name"] == 'say "hi".webm'


def test_a_long_legal_name_is_taken_and_shown_cut_with_its_extension(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=33).read_bytes()
    name = "a" * 229 + ".webm"  # 234 characters: within a Linux file name's 255 bytes
    answer = client.post("/api/videos", files={"file": (name, video)})
    assert answer.status_code == 202, answer.text
    (received,) = answer.json()["files"]
    assert received["refused"] is None and STORED.fullmatch(received["stored_name"])
    assert len(received["name"]) == 200 and received["name"].endswith("a….webm")


def test_the_answer_gives_a_placed_file_the_api_url_to_poll(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=34).read_bytes()
    (received,) = client.post("/api/videos", files={"file": ("v.webm", video)}).json()["files"]
    assert received["video_url"] == f"/api/videos/{hashlib.sha256(video).hexdigest()}"
    assert client.get(received["video_url"]).status_code == 404  # not recorded yet
    video_id, _ = store.record(store.inbox / received["stored_name"])
    assert client.get(received["video_url"]).json()["video_id"] == video_id


def test_the_answer_gives_a_recorded_duplicate_its_video_url(
    client: TestClient, store: Store
) -> None:
    received = upload_recorded_content(client, store)
    assert received["video_url"] == f"/api/videos/{store.done_video}"


def test_the_same_content_twice_in_one_request_is_placed_once(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=35).read_bytes()
    files = [("file", ("one.webm", video)), ("file", ("two.webm", video))]
    first, second = client.post("/api/videos", files=files).json()["files"]
    assert [p.name for p in new_files(store.inbox)] == [first["stored_name"]]
    assert second["stored_name"] is None and second["same_as"] == first["stored_name"]
    assert second["video_url"] == first["video_url"]


def test_the_same_content_again_before_the_watcher_records_it_is_not_placed_again(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=36).read_bytes()
    (first,) = client.post("/api/videos", files={"file": ("a.webm", video)}).json()["files"]
    (again,) = client.post("/api/videos", files={"file": ("b.webm", video)}).json()["files"]
    assert again["same_as"] == first["stored_name"] and again["stored_name"] is None
    assert len(new_files(store.inbox)) == 1


def test_content_placed_then_removed_from_the_inbox_is_placed_again(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "v.webm", seed=37).read_bytes()
    (first,) = client.post("/api/videos", files={"file": ("a.webm", video)}).json()["files"]
    (store.inbox / first["stored_name"]).unlink()
    (again,) = client.post("/api/videos", files={"file": ("a.webm", video)}).json()["files"]
    assert again["same_as"] is None and STORED.fullmatch(again["stored_name"])


def test_the_upload_page_names_the_first_copy_of_content_sent_twice(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    page = client.get("/upload").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    video = write_webm(tmp_path / "f.webm", seed=38).read_bytes()
    files = [("file", ("one.webm", video)), ("file", ("two.webm", video))]
    answer = client.post("/upload", files=files, data={"csrf": csrf})
    (placed,) = new_files(store.inbox)
    assert f"same content as <code>{placed.name}</code>" in answer.text
