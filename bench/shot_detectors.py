"""Benchmark: which PySceneDetect detector finds the truth video's cuts, and whether
feeding it the frames a decode already produced costs less than a second decode pass.

1. Detectors. The truth videos of tests/timeline (12 motions, 6 hard cuts, 5 changes of
   motion inside a shot; at 10 and 8 fps) and of bench/segment_defaults.py (14 of the
   demonstration model's motions, 5 cuts, 8 changes; at 25 and 10 fps), 64x48, rendered
   with --seeds seeds and decoded as the worker decodes (RGB at short sides 28, 40 and
   128): how far apart cuts and non-cuts are under HistogramDetector's measure (1 -
   correlation of consecutive luma histograms) and its ratio to the frames around, and
   what timeline.shots' default (AdaptiveDetector on that measure) and its variants,
   HistogramDetector alone, AdaptiveDetector and ContentDetector find.
2. Feed or second pass. A 320x240 H.264 truth video (libx264, GOP 250, 25 fps): the
   windows' decode alone (read_clips, a window of 16 frames every second, short side 128)
   against the same front-to-back decode that also converts every frame and feeds the
   detector, and against a pass of its own (timeline.shots.detect_cuts_in_file) and
   PySceneDetect's own ``detect()`` on the file (its HistogramDetector, 32 bins: the
   cost of a pass of its own). Medians of --repeats runs, in one run.

    python bench/shot_detectors.py              # about 3 minutes
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from decoding.frames import ClipSink, bgr_to_rgb, output_size
from decoding.index import index_file
from decoding.video import probe, read_clips
from timeline.shots import ShotDetector, ShotParams, detect_cuts, detect_cuts_in_file
from timeline.windows import frame_times, place_windows
from trainer.motion_videos import TRUTH_PARTS, Part, sequence_frames, sequence_truth, write_sequence

PARTS = TRUTH_PARTS  # trainer.motion_videos's truth video, as the tests render it


def decoded(path: Path, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    info = probe(path)
    frames = read_clips(path, [0], info.frames, short_side=short_side, info=info)[0]
    return frames, frame_times(index_file(str(path)))


def histogram_distances(frames: np.ndarray, bins: int) -> np.ndarray:
    """1 - correlation of each frame's luma histogram with the previous frame's."""
    from scenedetect.detectors import HistogramDetector

    hists = [
        HistogramDetector.calculate_histogram(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), bins=bins)
        for f in frames
    ]
    return np.array(
        [
            1 - cv2.compareHist(hists[i - 1], hists[i], cv2.HISTCMP_CORREL)
            for i in range(1, len(hists))
        ]
    )


def neighbour_ratios(distances: np.ndarray) -> np.ndarray:
    """Each measure over the mean of the two before and the two after (AdaptiveDetector's
    window of 2)."""
    ratios = []
    for i in range(len(distances)):
        around = [distances[j] for j in (i - 2, i - 1, i + 1, i + 2) if 0 <= j < len(distances)]
        ratios.append(distances[i] / max(float(np.mean(around)), 1e-6))
    return np.array(ratios)


VARIANTS = {
    "histogram_adaptive (default)": ShotParams(),
    "histogram_adaptive, ratio 4": ShotParams(ratio=4.0),
    "histogram_adaptive, ratio 5": ShotParams(ratio=5.0),
    "histogram_adaptive, ratio 7": ShotParams(ratio=7.0),
    "histogram_adaptive, 256 bins": ShotParams(bins=256),
    "histogram alone, 0.12": ShotParams("histogram", min_change=0.12),
    "histogram alone, 0.20": ShotParams("histogram", min_change=0.20),
    "adaptive (HSV, its defaults)": ShotParams("adaptive"),
    "content (HSV, its defaults)": ShotParams("content"),
}


def renderings(folder: Path, seeds: int):
    """(truth, fps, frames, times) of every rendering: both part lists, two frame rates
    each, three short sides, ``seeds`` seeds."""
    from segment_defaults import DEMO_PARTS  # bench/, on the path when run as a script

    for parts, rates in ((DEMO_PARTS, (25, 10)), (PARTS, (10, 8))):
        for fps in rates:
            for seed in range(seeds):
                path = folder / f"truth_{len(parts)}_{fps}_{seed}.avi"
                truth = write_sequence(path, parts, fps=fps, seed=seed)
                for short in (28, 40, 128):
                    frames, times = decoded(path, short)
                    yield truth, fps, frames, times


def detectors(folder: Path, seeds: int) -> None:
    found = dict.fromkeys(VARIANTS, 0)
    false = dict.fromkeys(VARIANTS, 0)
    at_cuts, elsewhere, cut_ratios, busy_ratios = [], [], [], []
    videos = cuts = 0
    for truth, fps, frames, times in renderings(folder, seeds):
        videos += 1
        cuts += len(truth.cuts_s)
        cut_frames = {round(c * fps) for c in truth.cuts_s}
        distances = histogram_distances(frames, 32)
        ratios = neighbour_ratios(distances)
        for i, (d, r) in enumerate(zip(distances, ratios, strict=True), start=1):
            if i in cut_frames:
                at_cuts.append(d)
                cut_ratios.append(r)
            else:
                elsewhere.append(d)
                if d > 0.1:
                    busy_ratios.append(r)
        within = 1 / fps + 1e-9
        for name, params in VARIANTS.items():
            got = detect_cuts(frames, times, float(fps), params)
            found[name] += sum(any(abs(c - x) <= within for x in got) for c in truth.cuts_s)
            false[name] += sum(not any(abs(c - x) <= within for c in truth.cuts_s) for x in got)
    print(
        f"1. detectors: {videos} renderings of the truth videos, {cuts} hard cuts "
        "(8, 10, 25 fps; short sides 28, 40, 128)"
    )
    print(
        f"   1 - luma histogram correlation (32 bins): at cuts >= {min(at_cuts):.3f} and "
        f">= {min(cut_ratios):.2f}x the 4 frames around; elsewhere <= {max(elsewhere):.3f}, "
        f"and where > 0.1, <= {max(busy_ratios):.2f}x the frames around"
    )
    for name in VARIANTS:
        print(f"   {name:<30} found {found[name]:>4}/{cuts}, false {false[name]:>4}")


def write_h264(path: Path, seconds_each: float, fps: float) -> tuple[float, ...]:
    """The truth parts at 320x240, H.264 (x264 defaults: GOP 250, B-frames)."""
    import av

    parts = [Part(p.motion, seconds_each, p.cut) for p in PARTS if "zoom" not in p.motion]
    truth = sequence_truth(parts, fps=fps, width=320, height=240)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps), options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i, bgr in enumerate(sequence_frames(truth, seed=0)):
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return truth.cuts_s


def windows_decode(path: Path, short_side: int) -> np.ndarray:
    info = probe(path)
    plan = place_windows(frame_times(index_file(str(path))), clip_len=16)
    return read_clips(path, list(plan.starts), 16, short_side=short_side, info=info)


def windows_decode_feeding(path: Path, short_side: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """The same front-to-back decode (OpenCV, as read_clips does for dense windows),
    every frame converted and shrunk, the detector fed, the windows' frames kept."""
    info = probe(path)
    times = frame_times(index_file(str(path)))
    plan = place_windows(times, clip_len=16)
    sink = ClipSink(plan.frames() % info.frames, output_size(info.width, info.height, short_side))
    detector = ShotDetector(info.fps)
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        for rank in range(info.frames):
            if not capture.grab():
                break
            ok, bgr = capture.retrieve()
            if not ok:
                break
            rgb = bgr_to_rgb(bgr, sink.size)
            if sink.wants(rank):
                sink.put(rank, rgb)
            detector.push(rgb, times[rank])
    finally:
        capture.release()
    return sink.out, detector.finish()


def scenedetect_own(path: Path) -> tuple[float, ...]:
    from scenedetect import detect
    from scenedetect.detectors import HistogramDetector

    scenes = detect(str(path), HistogramDetector(threshold=0.15, bins=32, min_scene_len=12))
    return tuple(start.get_seconds() for start, _ in scenes[1:])


def timed(function, repeats: int):
    function()  # page cache, first-call set-up
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def feed_or_second_pass(folder: Path, repeats: int) -> None:
    path = folder / "truth_320x240.mp4"
    cuts = write_h264(path, 6.0, 25.0)
    info = probe(path)
    print(
        f"\n2. feed or second pass: {path.name}, {info.frames} frames ({info.duration:.0f} s) "
        f"320x240 H.264, {len(cuts)} cuts; windows of 16 frames every 1 s, short side 128"
    )
    alone, _ = timed(lambda: windows_decode(path, 128), repeats)
    fed, (_, fed_cuts) = timed(lambda: windows_decode_feeding(path, 128), repeats)
    own, own_cuts = timed(lambda: detect_cuts_in_file(path, short_side=128), repeats)
    theirs, their_cuts = timed(lambda: scenedetect_own(path), repeats)
    frame = 1 / info.fps + 1e-9

    def found(got):
        return sum(any(abs(c - g) <= frame for g in got) for c in cuts)

    print(f"   windows' decode alone (read_clips)           {alone * 1e3:7.0f} ms")
    print(
        f"   the same decode feeding the detector          {fed * 1e3:7.0f} ms  "
        f"(+{(fed - alone) * 1e3:.0f} ms; cuts found {found(fed_cuts)}/{len(cuts)})"
    )
    print(
        f"   second pass, timeline.shots.detect_cuts_in_file  {own * 1e3:7.0f} ms  "
        f"(cuts found {found(own_cuts)}/{len(cuts)})"
    )
    print(
        f"   second pass, scenedetect.detect (its own)     {theirs * 1e3:7.0f} ms  "
        f"(cuts found {found(their_cuts)}/{len(cuts)})"
    )
    print(
        f"   feeding costs {(fed - alone) / own:.2f}x our second pass, "
        f"{(fed - alone) / theirs:.2f}x PySceneDetect's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench/shots"))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    detectors(args.cache_dir, args.seeds)
    feed_or_second_pass(args.cache_dir, args.repeats)


if __name__ == "__main__":
    main()
