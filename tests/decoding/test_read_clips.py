"""read_clips(): the frames returned are exactly the frames asked for, decoded sparingly."""

from __future__ import annotations

import dataclasses
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from decoding.video import clip_starts, probe, read_clips

DEBUG_LOGGER = "decoding.video"


def _expected(starts, clip_len, stride, frames):
    return (np.asarray(starts)[:, None] + np.arange(clip_len) * stride) % frames


def _decoded_counts(caplog) -> list[tuple[int, int]]:
    """(frames decoded, seeks) of each read, from decoding.video's debug log."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        seeking = re.search(r"(\d+) decoded with (\d+) seeks", message)
        forward = re.search(r"(\d+) decoded front to back", message)
        if seeking:
            found.append((int(seeking[1]), int(seeking[2])))
        elif forward:
            found.append((int(forward[1]), 0))
    return found


@pytest.mark.parametrize(
    "video", ["mjpg_avi", "mp4v_mp4", "xvid_avi", "vp9_webm", "h264_long", "vfr_mkv"]
)
@pytest.mark.parametrize("stride", [1, 2])
def test_read_clips_returns_the_frames_asked_for(video, stride, request, kit):
    path = request.getfixturevalue(video)
    info = probe(path)
    starts = clip_starts(info.frames, 16, 4, stride=stride, rng=np.random.default_rng(1))
    clips = read_clips(path, starts, 16, stride=stride, info=info)
    np.testing.assert_array_equal(kit.numbers(clips), _expected(starts, 16, stride, info.frames))


@pytest.mark.parametrize("video", ["mjpg_avi", "vp9_webm", "h264_long", "vfr_mkv"])
def test_pyav_returns_the_frames_asked_for(video, request, kit):
    path = request.getfixturevalue(video)
    info = dataclasses.replace(probe(path), backend="pyav")
    starts = [0, 7, info.frames // 2, info.frames - 20]
    clips = read_clips(path, starts, 16, info=info)
    np.testing.assert_array_equal(kit.numbers(clips), _expected(starts, 16, 1, info.frames))


def test_read_clips_gives_uint8_rgb_clips_with_the_short_side_asked_for(mp4v_mp4):
    clips = read_clips(mp4v_mp4, [0, 10, 20], 8, short_side=96)
    assert clips.dtype == np.uint8
    assert clips.shape == (3, 8, 96, 128, 3)


def test_read_clips_gives_rgb_channel_order(tmp_path):
    import av

    path = tmp_path / "red.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        red = np.zeros((48, 64, 3), np.uint8)
        red[..., 0] = 220
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(red, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    mean = read_clips(path, [0], 3).reshape(-1, 3).mean(axis=0)
    assert mean[0] > 180 and mean[1] < 40 and mean[2] < 40


def test_read_clips_loops_a_video_shorter_than_a_clip(kit, tmp_path):
    path = kit.write_opencv(tmp_path / "five.avi", 5, "MJPG")
    clips = read_clips(path, clip_starts(5, 16, 2), 16)
    assert kit.numbers(clips).tolist() == [[0, 1, 2, 3, 4] * 3 + [0]] * 2


def test_read_clips_wraps_a_clip_that_runs_past_the_last_frame(mp4v_mp4, kit):
    clips = read_clips(mp4v_mp4, [55], 10)
    assert kit.numbers(clips).tolist() == [[55, 56, 57, 58, 59, 0, 1, 2, 3, 4]]


def test_read_clips_seeks_to_sparse_clips_in_a_long_video(h264_long, kit, caplog):
    info = probe(h264_long)
    starts = [40, 300, 560]
    with caplog.at_level(logging.DEBUG, logger=DEBUG_LOGGER):
        clips = read_clips(h264_long, starts, 16, info=info)
    (decoded, seeks), *_ = _decoded_counts(caplog)
    np.testing.assert_array_equal(kit.numbers(clips), _expected(starts, 16, 1, info.frames))
    assert seeks >= 2
    # A keyframe every 50 frames: at most 50 + 16 frames decoded per clip, not 600.
    assert decoded <= 3 * (50 + 16)


def test_read_clips_decodes_a_short_video_front_to_back_only_up_to_the_last_clip(mp4v_mp4, caplog):
    with caplog.at_level(logging.DEBUG, logger=DEBUG_LOGGER):
        read_clips(mp4v_mp4, [2, 10], 16)
    assert _decoded_counts(caplog) == [(26, 0)]


def test_read_clips_matches_a_decode_of_the_whole_file_when_frames_fail_at_the_end(kit, tmp_path):
    # Damage the last MJPEG frame: indexed, but it does not decode.
    path = kit.write_opencv(tmp_path / "damaged.avi", 30, "MJPG")
    data = bytearray(path.read_bytes())
    last_jpeg = data.rfind(b"\xff\xd8\xff")
    data[last_jpeg : last_jpeg + 400] = b"\x55" * 400
    path.write_bytes(bytes(data))
    info = probe(path)
    clips = read_clips(path, [26], 6, info=info)
    assert info.frames == 30
    # 29 frames decode: numbering wraps there, as looping a 29-frame video would.
    assert kit.numbers(clips).tolist() == [[26, 27, 28, 0, 1, 2]]


FIXTURES = [
    "tree.avi",
    "box.mp4",
    "Megamind_bugy.avi",
    "h265_10bits.mp4",
    "no_duration.webm",
    "transparent.webm",
    "fire2.mp4",
    "carphone_distorted.mp4",
]


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("backend", ["opencv", "pyav"])
def test_read_clips_matches_a_sequential_decode_of_real_files(name, backend, fixture_video, kit):
    path = fixture_video(name)
    info = dataclasses.replace(probe(path), backend=backend)
    starts = clip_starts(info.frames, 8, 3, stride=2)
    clips = read_clips(path, starts, 8, stride=2, info=info)
    # The same decoder read front to back gives the very same pixels.
    reference = kit.sequential_frames(path, (clips.shape[3], clips.shape[2]), backend)
    for clip, wanted in zip(clips, _expected(starts, 8, 2, info.frames), strict=True):
        for frame, number in zip(clip, wanted, strict=True):
            np.testing.assert_array_equal(frame, reference[number], err_msg=f"frame {number}")


def test_a_file_whose_timestamps_are_out_of_display_order_is_read_front_to_back(
    fixture_video, kit, caplog
):
    # box.mp4 stamps B-frames with their decode times: seeking cannot trust them.
    path = fixture_video("box.mp4")
    info = dataclasses.replace(probe(path), backend="pyav")
    with caplog.at_level(logging.INFO, logger=DEBUG_LOGGER):
        clips = read_clips(path, [300], 4, info=info)
    reference = kit.sequential_frames(path, (clips.shape[3], clips.shape[2]), "pyav")
    assert "front to back from now on" in caplog.text
    for t, frame in enumerate(clips[0]):
        np.testing.assert_array_equal(frame, reference[300 + t])


def test_threads_reading_at_once_each_get_their_own_frames(h264_long, mjpg_avi, kit):
    # A worker decodes the next batch while the model runs the current one.
    jobs = [(h264_long, [40 * i, 300 + 20 * i]) for i in range(4)]
    jobs += [(mjpg_avi, [i, 30 + i]) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: read_clips(job[0], job[1], 8), jobs))
    for (path, starts), clips in zip(jobs, results, strict=True):
        frames = probe(path).frames
        np.testing.assert_array_equal(kit.numbers(clips), _expected(starts, 8, 1, frames))
