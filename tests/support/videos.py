"""Small videos the service tests decode: moving noise (different for each seed), a
recording with a stretch of its clock that holds no frame, many tiny frames, frames
that say their own number."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def write_video(
    path: Path,
    seed: int,
    frames: int = 24,
    size: tuple[int, int] = (64, 48),
    fourcc: str = "MJPG",
) -> Path:
    """A small video of moving noise (MJPG AVI by default), different for each seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0] * 2, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 12, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, i : i + size[0]]))
    writer.release()
    return path


def write_gap_video(path: Path, before_s: float, gap_s: float, after_s: float) -> Path:
    """Moving noise at 12 fps for ``before_s`` seconds, then, ``gap_s`` seconds further on
    its clock, ``after_s`` seconds more: an MPEG-4 stream in Matroska with millisecond
    timestamps that jump over a stretch holding no frame (a paused recording)."""
    base = np.random.default_rng(9).integers(0, 256, (48, 128, 3), dtype=np.uint8)
    times_s = [i / 12 for i in range(round(before_s * 12))]
    times_s += [before_s + gap_s + i / 12 for i in range(round(after_s * 12))]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, time_s in enumerate(times_s):
            rgb = np.ascontiguousarray(np.roll(base, i, axis=1)[:, :64])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_tiny_frames(path: Path, frames: int) -> Path:
    """``frames`` frames of 16 x 16 grey at 25 fps, MPEG-4 in Matroska: many frames in a
    small file that writes fast (a P-frame of nothing new is a few bytes)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        grey = np.full((16, 16, 3), 128, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuv420p")
        for i in range(frames):
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_counting_video(path: Path, frames: int, step: int = 5) -> Path:
    """``frames`` flat grey frames of 32 x 24 at 12 fps (MJPG AVI), frame ``i`` at level
    ``step * i``: a decoded clip's mean level says which frames it holds."""
    if step * (frames - 1) > 255:
        raise ValueError(f"{frames} frames {step} levels apart do not fit in 0-255")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12, (32, 24))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        writer.write(np.full((24, 32, 3), step * i, dtype=np.uint8))
    writer.release()
    return path
