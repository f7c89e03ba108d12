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

3. Every detector on real footage. The videos bench/shot_truth.py builds from
   tests/fixtures/videos (joins by hard cuts; joins by dissolves, fades through black and
   wipes with a few hard cuts; single-shot clips: hand-held, whip pans, a zoom), 192x108
   at 25 fps, fed frame by frame as the worker feeds its detector: ``histogram`` (the
   default), PySceneDetect's ContentDetector (its defaults: the reference), ``transnetv2``
   gated (the learned path the setting picks) and TransNetV2 on every frame. Per
   detector: precision, recall and F1 for hard cuts and for gradual transitions apart,
   the false boundaries on the single-shot clips, and the cost per video-minute as a
   ratio to the action model's, measured in the same run: the full R(2+1)D-18 network
   (ModelConfig defaults, random weights) through the worker's default engine
   (``auto``), a window every second (timeline.windows.DEFAULT_EVERY_S), in batches of
   the worker's chunk, median of --repeats; each detector makes one pass over every
   video, after a warm-up that converts and compiles its network. Matching is one to
   one and ignores the found boundary's kind (the histogram detector calls everything a
   hard cut): a hard cut is found by a boundary within ``--hard-frames`` frames of it, a
   gradual transition by one that overlaps its span or lies within ``--gradual-frames``
   of it; a boundary that finds nothing is false, against the precision of its own kind.

    python bench/shot_detectors.py              # about 5 minutes on 2 busy cores
    python bench/shot_detectors.py --quick      # a couple of minutes
    python bench/shot_detectors.py --sections 3 # the fixtures' videos only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from decoding.frames import ClipSink, bgr_to_rgb, output_size
from decoding.index import index_file
from decoding.video import probe, read_clips
from timeline.shots import (
    ShotDetector,
    ShotParams,
    detect_cuts,
    detect_cuts_in_file,
    make_boundary_detector,
)
from timeline.values import Cut
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


@dataclass
class Score:
    """One detector's tally over the videos."""

    hard: int = 0
    hard_found: int = 0
    hard_false: int = 0
    gradual: int = 0
    gradual_found: int = 0
    gradual_false: int = 0
    single_false: int = 0
    seconds: float = 0.0  # detector time
    network_frames: int = 0
    start_errors: list[int] = field(default_factory=list)  # found - truth, frames
    end_errors: list[int] = field(default_factory=list)


def prf(found: int, false: int, truth: int) -> str:
    precision = found / (found + false) if found + false else 1.0
    recall = found / truth if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f"P {precision:.2f} R {recall:.2f} F1 {f1:.2f} ({found}/{truth}, {false} false)"


def score_video(score: Score, truth, found: tuple[Cut, ...], fps: float, args) -> None:
    """Match ``found`` to the truth's transitions one to one (module docstring)."""
    spans = [(round(c.start_s * fps), round(c.end_s * fps)) for c in found]
    used = [False] * len(spans)

    def gap(span: tuple[int, int], lo: int, hi: int) -> int:
        """Frames between a found span and [lo, hi]; 0 where they overlap."""
        return max(0, lo - span[1], span[0] - hi)

    for t in truth.transitions:
        if t.gradual:
            score.gradual += 1
            # A transition's frames are [start, end): its last blended frame is end - 1,
            # the new shot's first clean frame is end.
            lo, hi, within = t.start, t.end, args.gradual_frames
        else:
            score.hard += 1
            lo, hi, within = t.start, t.start, args.hard_frames
        near = [
            (gap(span, lo, hi), i)
            for i, span in enumerate(spans)
            if not used[i] and gap(span, lo, hi) <= within
        ]
        if not near:
            continue
        _, i = min(near)
        used[i] = True
        if t.gradual:
            score.gradual_found += 1
            if found[i].kind == "gradual":
                score.start_errors.append(spans[i][0] - t.start)
                score.end_errors.append(spans[i][1] - t.end)
        else:
            score.hard_found += 1
    for i, cut in enumerate(found):
        if used[i]:
            continue
        if cut.kind == "gradual":
            score.gradual_false += 1
        else:
            score.hard_false += 1
        if not truth.transitions:
            score.single_false += 1


def action_model_seconds_per_minute(folder: Path, repeats: int) -> tuple[float, str]:
    """The full network's engine time for a video-minute of windows, and the engine."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.pipeline
    from bench.pipeline import ensure_checkpoint
    from timeline.windows import DEFAULT_EVERY_S
    from worker.predictor import DEFAULT_CHUNK, Predictor

    predictor = Predictor(ensure_checkpoint(folder, small=False), device="cpu", engine="auto")
    config = predictor.config
    batch = torch.randn(DEFAULT_CHUNK, 3, config.clip_len, config.crop_size, config.crop_size)
    per_batch, _ = timed(lambda: predictor.engine(batch), repeats)
    windows_per_minute = 60.0 / DEFAULT_EVERY_S
    return per_batch / DEFAULT_CHUNK * windows_per_minute, predictor.engine.name


def fixture_detectors(folder: Path, quick: bool, repeats: int, args) -> None:
    from shot_truth import FPS, SIZE, truth_videos  # bench/, on the path as a script

    from timeline.learned_shots import LearnedParams, LearnedShotDetector

    videos = list(truth_videos(quick=quick))
    seconds = sum(v.seconds for v in videos)
    hard = sum(not t.gradual for v in videos for t in v.transitions)
    gradual = sum(t.gradual for v in videos for t in v.transitions)
    singles = sum(not v.transitions for v in videos)
    print(
        f"\n3. on the fixtures' videos (bench/shot_truth.py{', --quick' if quick else ''}): "
        f"{len(videos)} videos, {seconds:.0f} s at {FPS:.0f} fps, {SIZE[0]}x{SIZE[1]}; "
        f"{hard} hard cuts, {gradual} gradual transitions, {singles} single-shot clips"
    )
    model_s, engine = action_model_seconds_per_minute(folder, repeats)
    print(
        f"   action model (R(2+1)D-18, ModelConfig defaults, engine {engine}): "
        f"{model_s:.1f} s per video-minute"
    )
    detectors = {
        "histogram (default)": lambda: make_boundary_detector("histogram", FPS),
        "content (PySceneDetect, reference)": lambda: _Hard(
            ShotDetector(FPS, ShotParams("content"))
        ),
        "transnetv2, gated": lambda: make_boundary_detector("transnetv2", FPS),
        "transnetv2, every frame": lambda: LearnedShotDetector(FPS, LearnedParams(gate=False)),
    }
    for name, make in detectors.items():
        warm = make()  # the network's conversion and compilation are a process's, once
        for rgb in videos[0].frames[:120]:
            warm.push(rgb, 0.0)
        warm.finish()
        score = Score()
        for video in videos:
            detector = make()
            started = time.perf_counter()
            for number, rgb in enumerate(video.frames):
                detector.push(rgb, number / FPS)
            found = detector.finish()
            score.seconds += time.perf_counter() - started
            score.network_frames += getattr(detector, "network_frames", 0)
            score_video(score, video, found, FPS, args)
        per_minute = score.seconds / seconds * 60
        frames = sum(len(v.frames) for v in videos)
        network = (
            f"; network on {score.network_frames / frames:.2f} frames per frame"
            if score.network_frames
            else ""
        )
        print(f"   {name}")
        print(f"     hard    {prf(score.hard_found, score.hard_false, score.hard)}")
        print(f"     gradual {prf(score.gradual_found, score.gradual_false, score.gradual)}")
        if score.start_errors:
            worst_start = max(score.start_errors, key=abs)
            worst_end = max(score.end_errors, key=abs)
            print(
                f"     gradual spans found: start off by median "
                f"{statistics.median(map(abs, score.start_errors)):.0f}, worst {worst_start:+d} "
                f"frames; end median {statistics.median(map(abs, score.end_errors)):.0f}, "
                f"worst {worst_end:+d}"
            )
        print(
            f"     single-shot clips: {score.single_false} false boundaries; cost "
            f"{per_minute:.2f} s per video-minute = {per_minute / model_s:.3f}x the action "
            f"model{network}"
        )


class _Hard:
    """A ShotDetector's cut times as hard cuts."""

    def __init__(self, detector: ShotDetector) -> None:
        self.detector = detector

    def push(self, rgb: np.ndarray, time_s: float) -> None:
        self.detector.push(rgb, time_s)

    def finish(self) -> tuple[Cut, ...]:
        return tuple(Cut.at(t) for t in self.detector.finish())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench/shots"))
    parser.add_argument("--seeds", type=int, default=None, help="renderings in 1 (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, a fifth of the fixtures' video"
    )
    parser.add_argument("--sections", default="1,2,3", help="which parts to run (default 1,2,3)")
    parser.add_argument("--hard-frames", type=int, default=2, help="a hard cut's tolerance")
    parser.add_argument(
        "--gradual-frames", type=int, default=2, help="a gradual transition's tolerance"
    )
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 8)
    sections = {s.strip() for s in args.sections.split(",")}
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    if "1" in sections:
        detectors(args.cache_dir, seeds)
    if "2" in sections:
        feed_or_second_pass(args.cache_dir, args.repeats)
    if "3" in sections:
        fixture_detectors(args.cache_dir, args.quick, args.repeats, args)


if __name__ == "__main__":
    main()
