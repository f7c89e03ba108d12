"""Both decoders return a rotated (phone) video the same way up."""

from __future__ import annotations

import dataclasses

import numpy as np

from decoding.video import probe, read_clips


def _read_with(path, backend: str) -> np.ndarray:
    info = dataclasses.replace(probe(path), backend=backend)
    return read_clips(path, [0, 10], 4, info=info).astype(np.int16)


def test_opencv_and_pyav_turn_fire2_the_same_way_up(fixture_video):
    path = fixture_video("fire2.mp4")
    opencv, pyav = _read_with(path, "opencv"), _read_with(path, "pyav")
    same_way = np.abs(opencv - pyav).mean()
    upside_down = np.abs(opencv - pyav[:, :, ::-1, ::-1]).mean()
    assert same_way < 3.0
    assert upside_down > 10 * same_way


def test_opencv_and_pyav_turn_a_quarter_turn_the_same_way(rotated_mp4):
    opencv, pyav = _read_with(rotated_mp4, "opencv"), _read_with(rotated_mp4, "pyav")
    assert opencv.shape == pyav.shape == (2, 4, 170, 128, 3)
    assert np.abs(opencv - pyav).mean() < 3.0


def test_a_quarter_turn_counter_clockwise_puts_the_top_left_corner_bottom_left(rotated_mp4):
    # Stored: white top-left quarter. Display matrix: 90 degrees counter-clockwise,
    # which carries the top-left corner to the bottom-left.
    for backend in ("opencv", "pyav"):
        frame = _read_with(rotated_mp4, backend)[0, 0].mean(axis=2)
        height, width = frame.shape
        quarters = {
            "top-left": frame[: height // 2, : width // 2].mean(),
            "top-right": frame[: height // 2, width // 2 :].mean(),
            "bottom-left": frame[height // 2 :, : width // 2].mean(),
            "bottom-right": frame[height // 2 :, width // 2 :].mean(),
        }
        assert max(quarters, key=quarters.get) == "bottom-left", (backend, quarters)
