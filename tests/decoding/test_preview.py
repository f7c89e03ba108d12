"""Previews a browser plays: H.264 in MP4 with the index first, the short side at most
480 pixels, as long as the source; and which files a browser plays as they are."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from decoding.playable import browser_playability
from decoding.preview import PreviewError, preview_size, write_preview
from tests.support.videos import write_video

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "videos"


def _stream_facts(path: Path) -> tuple[str, str, int, int, float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return (
            container.format.name,
            stream.codec_context.name,
            stream.codec_context.width,
            stream.codec_context.height,
            float(container.duration) / av.time_base,
            frames,
        )


def _moov_before_mdat(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


@pytest.mark.parametrize(
    ("fourcc", "size", "expected"),
    [("MJPG", (720, 540), (640, 480)), ("FMP4", (640, 720), (480, 540))],
    ids=["mjpeg-avi", "mpeg4-part2-avi"],
)
def test_the_preview_of_an_avi_is_h264_within_480p_and_as_long(
    tmp_path: Path, fourcc: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    source = write_video(tmp_path / "clip.avi", seed=3, frames=18, size=size, fourcc=fourcc)
    assert not browser_playability(source).plays
    target = tmp_path / "preview.mp4"

    info = write_preview(source, target, time_limit=60)

    family, codec, width, height, duration, frames = _stream_facts(target)
    assert (family, codec) == ("mov,mp4,m4a,3gp,3g2,mj2", "h264")
    assert (width, height) == (info.width, info.height) == expected
    assert frames == info.frames == 18
    assert duration == pytest.approx(18 / 12, abs=1 / 12)
    assert _moov_before_mdat(target)  # faststart: the player needs no second request
    assert browser_playability(target).plays


def test_a_small_source_keeps_its_size_and_odd_sides_become_even() -> None:
    assert preview_size(64, 48) == (64, 48)
    assert preview_size(1920, 1080) == (852, 480)
    assert preview_size(1080, 1920, rotation=90) == (852, 480)
    assert preview_size(33, 21) == (32, 20)


def test_a_file_that_is_no_video_gives_a_preview_error(tmp_path: Path) -> None:
    source = tmp_path / "notes.avi"
    source.write_text("not a video at all\n")
    with pytest.raises(PreviewError):
        write_preview(source, tmp_path / "preview.mp4", time_limit=60)


def test_a_preview_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    source = write_video(tmp_path / "clip.avi", seed=4, frames=12)
    with pytest.raises(PreviewError, match="longer than"):
        write_preview(source, tmp_path / "preview.mp4", time_limit=1e-9)


@pytest.mark.parametrize(
    ("name", "plays"),
    [
        ("fire2.mp4", True),  # H.264 + AAC in MP4
        ("no_duration.webm", True),  # VP9 + Opus in WebM
        ("av1_video.mkv", True),  # AV1 in Matroska
        ("h265_10bits.mp4", False),  # HEVC
        ("Megamind_bugy.avi", False),  # MPEG-4 Part 2 in AVI
        ("tree.avi", False),  # Cinepak in AVI
        ("box.mp4", False),  # H.264 whose first packets make FFmpeg complain
        ("result.webm", False),  # zero bytes
        ("with-attached-pic.mp3", False),  # cover art, no video
    ],
)
def test_what_a_browser_plays_as_it_is(name: str, plays: bool) -> None:
    assert browser_playability(FIXTURES / name).plays is plays


def test_a_faulty_stream_is_judged_the_same_every_time() -> None:
    verdicts = [browser_playability(FIXTURES / "box.mp4").plays for _ in range(3)]
    assert verdicts == [False, False, False]
