"""The video page's player: the worker's preview where there is one (served with HTTP
Range like the file itself), the recorded file where the browser plays it, and the
reason with a download link where nothing plays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from actiontag.settings import Settings
from decoding.preview import write_preview
from storage.db import make_sessionmaker, write_transaction
from storage.previews import preview_name, record_preview
from storage.queries.videos import video_by_id
from storage.schema import PreviewState
from web.app import make_app

from .store import Store


@pytest.fixture
def previews(tmp_path: Path) -> Path:
    folder = tmp_path / "previews"
    folder.mkdir()
    return folder


@pytest.fixture
def preview_client(settings: Settings, store: Store, previews: Path) -> Iterator[TestClient]:
    app = make_app(replace(settings, preview_dir=previews), engine=store.engine)
    with TestClient(app) as test_client:
        yield test_client


def _record(store: Store, video_id: int, state: PreviewState, detail: str) -> str:
    with make_sessionmaker(store.engine)() as session, write_transaction(session):
        record_preview(session, video_id, state, detail)
        return video_by_id(session, video_id).sha256


@pytest.fixture
def made(store: Store, previews: Path) -> bytes:
    """The done video's preview, made and recorded as the worker does."""
    assert store.done_path is not None
    sha256 = _record(store, store.done_video, PreviewState.MADE, "for the test")
    write_preview(store.done_path, previews / preview_name(sha256), time_limit=60)
    return (previews / preview_name(sha256)).read_bytes()


def _player(page: str) -> str:
    return page.split('<video id="player"', 1)[1].split(">", 1)[0] if "<video" in page else ""


def test_the_page_plays_the_preview_when_there_is_one(
    preview_client: TestClient, store: Store, made: bytes
) -> None:
    page = preview_client.get(f"/videos/{store.done_video}").text
    assert f'src="/videos/{store.done_video}/preview"' in _player(page)


def test_the_preview_is_served_whole_and_by_range(
    preview_client: TestClient, store: Store, made: bytes
) -> None:
    address = f"/videos/{store.done_video}/preview"
    whole = preview_client.get(address)
    assert whole.status_code == 200
    assert whole.content == made
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = preview_client.get(address, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == made[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(made)}"
    beyond = preview_client.get(address, headers={"Range": f"bytes={len(made)}-"})
    assert beyond.status_code == 416
    head = preview_client.head(address)
    assert head.headers["content-length"] == str(len(made)) and head.content == b""


def test_a_video_without_a_preview_plays_its_file_and_has_no_preview_to_serve(
    preview_client: TestClient, store: Store
) -> None:
    page = preview_client.get(f"/videos/{store.done_video}").text
    assert f'src="/videos/{store.done_video}/file"' in _player(page)
    assert 'id="player-message" hidden' in page  # shown by the script on a media error
    assert preview_client.get(f"/videos/{store.done_video}/preview").status_code == 404


def test_a_preview_whose_file_is_gone_is_not_offered(
    preview_client: TestClient, store: Store, made: bytes, previews: Path
) -> None:
    for file in previews.iterdir():
        file.unlink()
    page = preview_client.get(f"/videos/{store.done_video}").text
    assert f'src="/videos/{store.done_video}/file"' in _player(page)
    assert preview_client.get(f"/videos/{store.done_video}/preview").status_code == 404


def test_a_failed_preview_shows_why_with_a_download_link_and_no_player(
    preview_client: TestClient, store: Store
) -> None:
    _record(store, store.done_video, PreviewState.FAILED, "MJPEG in AVI; <decoder> said no")
    page = preview_client.get(f"/videos/{store.done_video}").text
    assert _player(page) == ""
    message = page.split('id="player-message"', 1)[1].split("</p>", 1)[0]
    assert "cannot be played in the browser" in message
    assert "MJPEG in AVI; &lt;decoder&gt; said no" in message
    assert f'<a href="/videos/{store.done_video}/file" download>' in message
