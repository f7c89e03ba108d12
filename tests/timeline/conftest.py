"""A truth video for the segment and shot tests: trainer.motion_videos's motions joined into
one encoded file with known boundaries, some by hard cuts (a new texture from a new
pose), some continuous (the same view, only the motion changes)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from decoding.index import index_file
from decoding.video import probe, read_clips
from timeline.windows import frame_times
from trainer.motion_videos import TRUTH_PARTS, write_sequence

FPS = 10.0
# The demonstration model's short side: the frames a worker decodes for it.
SHORT_SIDE = 40


@pytest.fixture(scope="session")
def truth_video(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The truth video on disk (64x48 MJPG), its truth, and every frame decoded as the
    worker decodes a window's frames (RGB at SHORT_SIDE) with its timestamp."""
    path = Path(tmp_path_factory.mktemp("truth")) / "truth.avi"
    truth = write_sequence(path, TRUTH_PARTS, fps=FPS, width=64, height=48, seed=0)
    info = probe(path)
    frames = read_clips(path, [0], info.frames, short_side=SHORT_SIDE, info=info)[0]
    times = frame_times(index_file(str(path)))
    assert len(frames) == len(times) == truth.frames
    return SimpleNamespace(path=path, truth=truth, frames=frames, times=np.asarray(times))
