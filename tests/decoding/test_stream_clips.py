"""decoding.stream.stream_clips: a long video's clips in start order, a chunk at a
time, the same frames read_clips gives, with bounded memory."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc

import numpy as np
import pytest

from decoding.stream import stream_clips
from decoding.video import probe, read_clips

DEBUG_LOGGER = "decoding.video"


def _streamed(info, starts, **kwargs) -> tuple[list[int], np.ndarray]:
    firsts, chunks = [], []
    for first, clips in stream_clips(info, starts, **kwargs):
        firsts.append(first)
        chunks.append(clips)
    return firsts, np.concatenate(chunks)


@pytest.mark.parametrize("video", ["mjpg_avi", "h264_long", "vfr_mkv"])
def test_streamed_clips_are_the_clips_read_clips_gives(video, request):
    path = request.getfixturevalue(video)
    info = probe(path)
    starts = list(range(0, info.frames - 20, 7))

    firsts, clips = _streamed(info, starts, clip_len=8, stride=2, short_side=64, chunk=5)

    expected = read_clips(path, starts, 8, stride=2, short_side=64, info=info)
    np.testing.assert_array_equal(clips, expected)
    assert firsts == list(range(0, len(starts), 5))


def test_overlapping_windows_decode_each_frame_once_front_to_back(mp4v_mp4, caplog):
    info = probe(mp4v_mp4)
    starts = list(range(0, 44, 4))  # 16-frame windows every 4 frames: a frame in up to 4

    with caplog.at_level(logging.DEBUG, logger=DEBUG_LOGGER):
        _, clips = _streamed(info, starts, clip_len=16)

    assert clips.shape[0] == len(starts)
    passes = [r.getMessage() for r in caplog.records if "decoded" in r.getMessage()]
    # One pass, up to the last window's last frame (40 + 15): frames 0..55.
    assert len(passes) == 1
    assert "56 frames wanted, 56 decoded front to back" in passes[0]


def test_sparse_windows_in_a_long_video_are_reached_by_seeking(h264_long, kit, caplog):
    info = probe(h264_long)
    starts = [40, 300, 560]

    with caplog.at_level(logging.DEBUG, logger=DEBUG_LOGGER):
        _, clips = _streamed(info, starts, clip_len=16)

    np.testing.assert_array_equal(kit.numbers(clips), np.asarray(starts)[:, None] + np.arange(16))
    assert any("seeks (pyav)" in r.getMessage() for r in caplog.records)


def test_a_video_shorter_than_a_clip_loops(kit, tmp_path):
    path = kit.write_opencv(tmp_path / "five.avi", 5, "MJPG")

    _, clips = _streamed(probe(path), [0, 0], clip_len=16)

    assert kit.numbers(clips).tolist() == [[0, 1, 2, 3, 4] * 3 + [0]] * 2


def test_clips_past_a_damaged_tail_are_left_out_and_logged(kit, tmp_path, caplog):
    path = kit.write_opencv(tmp_path / "damaged.avi", 30, "MJPG")
    data = bytearray(path.read_bytes())
    last_jpeg = data.rfind(b"\xff\xd8\xff")
    data[last_jpeg : last_jpeg + 400] = b"\x55" * 400
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        _, clips = _streamed(probe(path), [0, 10, 24], clip_len=6)

    assert kit.numbers(clips).tolist() == [list(range(6)), list(range(10, 16))]
    assert "1 of 3 clips reach past them" in caplog.text


def test_the_decoder_waits_for_a_reader_that_is_behind(h264_long):
    """Memory stays bounded: with the reader stopped, at most `ahead` chunks wait."""
    info = probe(h264_long)
    starts = list(range(0, 580, 4))  # 145 clips
    tracemalloc.start()
    try:
        stream = stream_clips(info, starts, clip_len=16, short_side=64, chunk=4, ahead=2)
        next(stream)
        time.sleep(1.0)  # time enough to decode the whole video, were it not held back
        before = threading.active_count()
        _, peak = tracemalloc.get_traced_memory()
        chunk_bytes = 4 * 16 * 64 * 85 * 3
        stream.close()  # a reader that stops early stops the decoder too
    finally:
        tracemalloc.stop()
    assert peak < 12 * chunk_bytes  # the whole video's clips would be 36 chunks
    assert threading.active_count() < before
