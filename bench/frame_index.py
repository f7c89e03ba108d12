"""Benchmark: what indexing a video of many frames costs, against the index it replaced.

A file of tiny frames (16x16 MPEG-4, 25 fps, written once into --cache-dir) holds
millions of frames in a few MB. For it this measures, per million frames, the time and
the peak of Python and numpy allocations (tracemalloc) of

- ``probe``'s demux pass (decoding.index.index_file) against the list-based pass it
  replaced (kept below as ``list_index``: a Python int and list slot per frame, a set of
  them, numpy copies and an argsort), and
- placing the windows (timeline.windows.place_windows) over the index's own timestamps
  (decoding.frame_times.FrameTimes) against a float array of every frame's time,

all in one run, each case timed untraced and then traced once for its peak.

    python bench/frame_index.py                   # 1,000,000 frames (about 10 s to write)
    python bench/frame_index.py --frames 200000
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from decoding.frame_times import FrameTimes
from decoding.index import index_file, open_container, select_video_stream
from timeline.windows import place_windows


def cached_tiny_frames(path: Path, frames: int) -> Path:
    """The test suite's many-frame video, written once under ``path`` and reused."""
    # Run as `python bench/frame_index.py`, the tests' helpers are importable only with
    # the repository's root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.videos import write_tiny_frames

    if not path.exists():
        partial = write_tiny_frames(path.with_suffix(".part.mkv"), frames)
        partial.rename(path)
    return path


def list_index(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The demux pass as it was: (sorted timestamps, keyframe ranks)."""
    with open_container(path) as container:
        stream = select_video_stream(container, path)
        pts: list[int] = []
        keys: list[bool] = []
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
    assert None not in pts and len(set(pts)) == len(pts)
    pts_array = np.asarray(pts, dtype=np.int64)
    order = np.argsort(pts_array, kind="stable")
    ranks = np.empty(len(pts), dtype=np.int64)
    ranks[order] = np.arange(len(pts))
    return pts_array[order], np.sort(ranks[np.asarray(keys, dtype=bool)])


def measure(run: Callable[[], object]) -> tuple[float, int]:
    """(seconds untraced, peak bytes traced) of one call."""
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = str(cached_tiny_frames(args.cache_dir / f"tiny-{args.frames}.mkv", args.frames))
    index = index_file(path)
    assert index.frames == args.frames
    per_million = 1e6 / index.frames

    def times_array() -> object:
        seconds = (index.pts - index.pts[0]).astype(np.float64) * float(index.time_base)
        return place_windows(seconds, clip_len=16)

    cases = [
        ("demux pass", lambda: list_index(path), lambda: index_file(path)),
        (
            "window placement",
            times_array,
            lambda: place_windows(FrameTimes.of_index(index), clip_len=16),
        ),
    ]
    print(f"{index.frames} frames of 16x16 MPEG-4, figures per million frames")
    for name, old, new in cases:
        old_s, old_peak = measure(old)
        new_s, new_peak = measure(new)
        print(
            f"{name:17s} time {new_s * per_million:7.3f} s against {old_s * per_million:7.3f} s "
            f"({new_s / old_s:.2f}x); peak {new_peak * per_million / 2**20:6.1f} MiB against "
            f"{old_peak * per_million / 2**20:6.1f} MiB ({new_peak / old_peak:.2f}x, "
            f"{new_peak / index.frames:.1f} against {old_peak / index.frames:.1f} bytes a frame)"
        )


if __name__ == "__main__":
    main()
