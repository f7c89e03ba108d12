"""Benchmark: which PySceneDetect detector finds the truth video's cuts, and whether
feeding it the frames a decode already produced costs less than a second decode pass.

1. Detectors. The truth video of tests/segments (12 motions, 6 hard cuts, 5 changes of
   motion inside a shot; 64x48 at 10 fps, and at 8 fps) rendered with several seeds and
   decoded as the worker decodes (RGB at a model's short side): how far apart cuts and
   non-cuts are under HistogramDetector's measure (1 - correlation of consecutive luma
   histograms), and what ContentDetector, AdaptiveDetector and HistogramDetector find.
2. Feed or second pass. A 320x240 H.264 truth video (libx264, GOP 250, 25 fps): the
   windows' decode alone (read_clips, a window of 16 frames every second, short side 128)
   against the same front-to-back decode that also converts every frame and feeds the
   detector, and against a pass of its own (model.shots.detect_cuts_in_file) and
   PySceneDetect's own ``detect()`` on the file. Medians of --repeats runs, in one run.

    python bench/shot_detectors.py              # about a minute
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from model.decode_frames import ClipSink, bgr_to_rgb, output_size
from model.decode_index import index_file
from model.shots import ShotDetector, ShotParams, detect_cuts, detect_cuts_in_file
from model.video import probe, read_clips
from model.windows import frame_times, place_windows
from trainer.synthetic import Part, sequence_frames, sequence_truth, write_sequence

# tests/segments/conftest.py's TRUTH_PARTS (bench does not import tests).
PARTS = (
    Part("pan_up", 4),
    Part("still", 3, cut=False),
    Part("pan_sideways", 5, cut=False),
    Part("spin", 4),
    Part("shake", 3, cut=False),
    Part("zoom_in", 3),
    Part("pan_down", 5),
    Part("still", 4, cut=False),
    Part("shake", 6),
    Part("pan_up", 3, cut=False),
    Part("zoom_out", 3),
    Part("pan_sideways", 8),
)


def decoded(path: Path, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    info = probe(path)
    frames = read_clips(path, [0], info.frames, short_side=short_side, info=info)[0]
    return frames, frame_times(index_file(str(path)))


def histogram_distances(frames: np.ndarray, bins: int) -> np.ndarray:
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


def detectors(folder: Path, seeds: int) -> None:
    print("1. detectors on the truth video (64x48): 1 - histogram correlation, 32 bins")
    for fps, short in ((10, 28), (10, 40), (10, 48), (10, 128), (8, 40)):
        at_cuts, elsewhere = [], []
        for seed in range(seeds):
            path = folder / f"truth_{fps}_{seed}.avi"
            truth = write_sequence(path, PARTS, fps=fps, seed=seed)
            frames, _ = decoded(path, short)
            cut_frames = {round(c * fps) for c in truth.cuts_s}
            for i, d in enumerate(histogram_distances(frames, 32), start=1):
                (at_cuts if i in cut_frames else elsewhere).append(d)
        print(
            f"   {fps:>2} fps, short side {short:>3}: cuts {min(at_cuts):.3f} at least, "
            f"elsewhere {max(elsewhere):.3f} at most ({seeds} seeds)"
        )
    path = folder / "truth_10_0.avi"
    truth = write_sequence(path, PARTS, fps=10, seed=0)
    frames, times = decoded(path, 40)
    within = 1 / 10 + 1e-9
    for name in ("histogram", "content", "adaptive"):
        cuts = detect_cuts(frames, times, 10.0, ShotParams(detector=name))
        found = [c for c in truth.cuts_s if any(abs(c - x) <= within for x in cuts)]
        false = [x for x in cuts if not any(abs(c - x) <= within for c in truth.cuts_s)]
        print(
            f"   {name:>9}: {len(found)} of {len(truth.cuts_s)} cuts, {len(false)} false "
            "(seed 0, 10 fps, short side 40)"
        )


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
        f"   second pass, model.shots.detect_cuts_in_file  {own * 1e3:7.0f} ms  "
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
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    detectors(args.cache_dir, args.seeds)
    feed_or_second_pass(args.cache_dir, args.repeats)


if __name__ == "__main__":
    main()
