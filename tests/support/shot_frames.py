"""Short videos of real frames with known shot boundaries, for the shot detectors' tests.

Shots are stretches of tests/fixtures/videos/box.mp4, some mirrored and zoomed so that
two shots of one file differ; frames are 96 x 54 RGB at 25 fps.
"""

from __future__ import annotations

import functools
from pathlib import Path

import av
import cv2
import numpy as np

BOX = Path(__file__).resolve().parent.parent / "fixtures" / "videos" / "box.mp4"
MEGAMIND = Path(__file__).resolve().parent.parent / "fixtures" / "videos" / "Megamind_bugy.avi"
SIZE = (96, 54)
FPS = 25.0


@functools.cache
def _frames(path: Path, count: int) -> np.ndarray:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(
                cv2.resize(frame.to_ndarray(format="rgb24"), SIZE, interpolation=cv2.INTER_AREA)
            )
            if len(out) == count:
                break
    return np.stack(out)


def box_shot(frames: int, offset: int = 0) -> list[np.ndarray]:
    return list(_frames(BOX, 160)[offset : offset + frames])


def other_shot(frames: int) -> list[np.ndarray]:
    """Megamind_bugy.avi's last shot (its frames 200-269), a scene unlike the box's."""
    return list(_frames(MEGAMIND, 270)[200 : 200 + frames])


def dissolve(a: list[np.ndarray], b: list[np.ndarray], length: int) -> list[np.ndarray]:
    """``a`` then ``b``, the last ``length`` frames of a blended into b's first."""
    mixed = [
        cv2.addWeighted(x, 1 - (i + 1) / (length + 1), y, (i + 1) / (length + 1), 0)
        for i, (x, y) in enumerate(zip(a[-length:], b[:length], strict=True))
    ]
    return a[:-length] + mixed + b[length:]


def fade(a: list[np.ndarray], b: list[np.ndarray], length: int) -> list[np.ndarray]:
    """``a`` faded out to black and ``b`` in from it over ``length`` frames."""
    out = []
    for i, (x, y) in enumerate(zip(a[-length:], b[:length], strict=True)):
        alpha = (i + 1) / (length + 1)
        out.append(
            (x * (1 - 2 * alpha)).astype(np.uint8)
            if alpha < 0.5
            else (y * (2 * alpha - 1)).astype(np.uint8)
        )
    return a[:-length] + out + b[length:]
