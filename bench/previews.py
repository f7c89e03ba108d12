"""Benchmark: what a video's preview costs against tagging the same video.

For each video, tagging is ``Predictor.predict`` (windows every second, the engine,
shot cuts, the timeline: what a worker does for a job) and the preview is what
``worker.previews`` adds after it: ``browser_playability`` (container, codecs, the
decoder over the first packets) and ``write_preview`` (H.264, short side <= 480). The two
alternate, ``--repeats`` times; the medians and their ratio are printed per video.

The videos: what HMDB51 and UCF101 hold (MJPEG AVI and MPEG-4 Part 2 AVI at 320x240,
30 fps, ``--seconds`` long, written once into --cache-dir), the repository's MPEG-4
Part 2 fixture (720x528, 9 s) and its H.264 one that Chromium refuses (640x480, 15 s).

Target: the preview costs <= 10% of tagging the same video with the full network on a
CPU (``--small``: a small network, where the decode bounds tagging, shows the worst case).

    python bench/previews.py                 # the full network
    python bench/previews.py --small --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.pipeline import ensure_checkpoint  # noqa: E402
from decoding.playable import browser_playability  # noqa: E402
from decoding.preview import write_preview  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "videos"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--small", action="store_true", help="a small network (8x56x56)")
    parser.add_argument("--engine", default="auto", help="the worker's engine (default auto)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--seconds", type=float, default=6.0, help="the AVIs' length")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=REPO / "var" / "bench" / "previews",
        help="where the videos and the checkpoint are kept (default var/bench/previews)",
    )
    return parser.parse_args(argv)


def write_avi(path: Path, fourcc: str, seconds: float) -> Path:
    """A 320x240 30 fps AVI of a moving scene, as the benchmarks' datasets hold."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (240, 960, 3), dtype=np.uint8), (9, 9), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, (320, 240))
    frames = round(seconds * 30)
    for i in range(frames):
        x = round(i * (960 - 320) / max(1, frames - 1))
        writer.write(np.ascontiguousarray(scene[:, x : x + 320]))
    writer.release()
    return path


def make_preview(path: Path, folder: Path) -> None:
    assert not browser_playability(path).plays, path
    write_preview(path, folder / "preview.mp4", time_limit=600)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from worker.predictor import Predictor

    checkpoint = ensure_checkpoint(args.cache_dir, args.small)
    videos = {
        "MJPEG AVI 320x240": write_avi(args.cache_dir / "mjpeg.avi", "MJPG", args.seconds),
        "MPEG-4 Part 2 AVI 320x240": write_avi(args.cache_dir / "mpeg4.avi", "FMP4", args.seconds),
        "MPEG-4 Part 2 AVI 720x528 (fixture)": FIXTURES / "Megamind_bugy.avi",
        "H.264 MP4 Chromium refuses 640x480 (fixture)": FIXTURES / "box.mp4",
    }
    predictor = Predictor(checkpoint, device="cpu", engine=args.engine)
    print(f"network: {'small' if args.small else 'full'}, engine {predictor.engine.name}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for name, path in videos.items():
            predictor.predict(str(path))  # warm: first-call costs are not a video's
            tags, previews = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                predictor.predict(str(path))
                tags.append(time.perf_counter() - started)
                started = time.perf_counter()
                make_preview(path, Path(folder))
                previews.append(time.perf_counter() - started)
            tag, preview = statistics.median(tags), statistics.median(previews)
            ratios.append(preview / tag)
            print(
                f"{name}: tagging {tag * 1000:.0f} ms, preview {preview * 1000:.0f} ms, "
                f"ratio {preview / tag:.3f}"
            )
    print(f"preview / tagging: median {statistics.median(ratios):.3f}, max {max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
