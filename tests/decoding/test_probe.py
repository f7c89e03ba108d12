"""probe(): frames counted rather than believed, the decoder chosen, the picture's shape."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from decoding.index import FrameIndex, IndexCache
from decoding.video import frame_index, probe, read_clips

# name, frames that really decode (counted by a front-to-back decode below too)
FIXTURE_FRAMES = [
    ("tree.avi", 68),  # header: 444
    ("box.mp4", 455),  # header: 456, the last sample trimmed by the edit list
    ("no_duration.webm", 74),  # header: a huge negative count
    ("av1_video.mkv", 125),
    ("h265_10bits.mp4", 30),
    ("transparent.webm", 150),
    ("fire2.mp4", 25),
    ("carphone_distorted.mp4", 120),
    ("Megamind_bugy.avi", 270),
]


def _decoded_frame_count(path) -> int:
    """Frames a full front-to-back decode yields (PyAV: OpenCV cannot decode AV1)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize(("name", "frames"), FIXTURE_FRAMES)
def test_probe_counts_the_frames_that_decode(fixture_video, name, frames):
    path = fixture_video(name)
    assert probe(path).frames == frames == _decoded_frame_count(path)


def test_probe_does_not_believe_the_avi_header_of_tree_avi(fixture_video):
    path = fixture_video("tree.avi")
    capture = cv2.VideoCapture(str(path))
    header_frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    assert header_frames == 444
    assert probe(path).frames == 68


def test_probe_gives_a_webm_without_duration_its_real_duration_and_rate(fixture_video):
    info = probe(fixture_video("no_duration.webm"))
    assert info.duration == pytest.approx(74 / 14.985, rel=0.01)
    assert info.fps == pytest.approx(14.985, rel=0.01)


def test_probe_gives_a_video_with_a_timestamp_gap_its_clock_and_the_rate_of_its_frames(
    kit, tmp_path
):
    # 25 frames at 25 fps, an hour with none, 25 more: two seconds of pictures.
    pts = list(range(25)) + [3600 * 25 + i for i in range(25, 50)]
    path = kit.write_pyav(tmp_path / "gap.mkv", 50, "mpeg4", rate=25, pts=pts)

    info = probe(path)

    assert info.duration == pytest.approx(3600 + 2.0)
    assert info.fps == pytest.approx(25.0)


def test_probe_reports_what_opencv_wrote(kit, tmp_path):
    path = kit.write_opencv(tmp_path / "clip.mp4", 50, "mp4v", fps=25)
    info = probe(path)
    assert (info.frames, info.width, info.height, info.rotation) == (50, 160, 120, 0)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(2.0)
    assert info.backend == "opencv"
    assert info.path == str(path)


def test_probe_chooses_pyav_when_opencv_opens_a_file_but_reads_no_frame(fixture_video):
    path = fixture_video("av1_video.mkv")
    capture = cv2.VideoCapture(str(path))
    opencv_reads = capture.read()[0]
    capture.release()
    info = probe(path)
    assert capture is not None and not opencv_reads
    assert (info.backend, info.width, info.height) == ("pyav", 640, 360)


def test_probe_reports_the_displayed_size_of_a_rotated_video(rotated_mp4):
    info = probe(rotated_mp4)
    # Stored 160x120 with a quarter turn counter-clockwise: shown 120x160, and
    # the turn is reported as OpenCV does, clockwise.
    assert (info.width, info.height, info.rotation) == (120, 160, 270)


def test_probe_reports_the_half_turn_of_a_phone_video(fixture_video):
    info = probe(fixture_video("fire2.mp4"))
    assert (info.width, info.height, info.rotation) == (1280, 720, 180)


def test_probe_counts_only_the_frames_left_in_a_cut_avi(kit, tmp_path):
    whole = kit.write_opencv(tmp_path / "whole.avi", 60, "MJPG")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    info = probe(cut)
    assert 20 < info.frames < 40
    last = read_clips(cut, [info.frames - 1], 1, info=info)
    assert kit.read_number(last[0, 0]) == info.frames - 1


def test_probe_reuses_nothing_from_a_file_that_was_replaced(kit, tmp_path):
    path = kit.write_opencv(tmp_path / "clip.avi", 30, "MJPG")
    assert probe(path).frames == 30
    kit.write_opencv(tmp_path / "other.avi", 12, "MJPG").replace(path)
    assert probe(path).frames == 12
    assert kit.numbers(read_clips(path, [11], 1))[0, 0] == 11


def _index_of(frames: int) -> FrameIndex:
    return FrameIndex(
        stream_index=0,
        first_video_stream=True,
        codec="mpeg4",
        frames=frames,
        time_base=Fraction(1, 25),
        pts=np.arange(frames, dtype=np.int64),
        key_ranks=np.zeros(1, np.int64),
        nominal_rate=Fraction(25),
    )


def test_the_index_cache_keeps_no_more_frames_than_its_budget_but_the_newest(tmp_path):
    first, second = tmp_path / "first.mkv", tmp_path / "second.mkv"
    first.write_bytes(b"1")
    second.write_bytes(b"2")
    cache = IndexCache(capacity=16, max_frames=100)

    cache.put(str(first), _index_of(60))
    cache.put(str(second), _index_of(60))

    assert cache.get(str(first)) is None
    assert cache.get(str(second)).frames == 60


def test_a_raw_stream_without_timestamps_is_indexed_by_counting_and_never_seeks(kit, tmp_path):
    codec, options = kit.inter_codec()
    suffix = ".h264" if codec == "libx264" else ".m4v"  # elementary streams: no container
    path = kit.write_pyav(tmp_path / f"raw{suffix}", 40, codec, options=options, gop=10)
    info = probe(path)
    index = frame_index(str(path))
    assert (info.frames, index.pts, index.seekable) == (40, None, False)
    assert index.key_ranks.tolist() == [0] and index.gaps.size == 0
    clips = read_clips(path, [0, 30], 4, info=info)
    assert kit.numbers(clips).tolist() == [[0, 1, 2, 3], [30, 31, 32, 33]]
