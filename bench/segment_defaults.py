"""Benchmark: the figures behind the window spacing and the segmentation defaults.

1. Segmentation rules on noisy synthetic probabilities (no model): 4 actions of 9-15
   windows, each window a confident but noisy model's output (0.65 of the mass on the
   true class on average) and one window in six outright random; the share of the time
   labelled right over 50 draws, windows 1 s apart, for smoothing over 0, 3 and 5 s,
   with and without hysteresis (floor 0.3, or floor = threshold).
2. Window spacing with the demonstration model (launcher.demo_model, trained once into
   --model-dir if it is not there: a minute or two on a CPU) on a 67-81 s truth video of its
   4 motions (14 parts of 3-9 s, 5 hard cuts, 8 changes of motion inside a shot; 64x48 at
   25 fps, the rate it was trained at), rendered with --seeds seeds, each part 0-1 s
   longer at random so boundaries fall anywhere between windows: for each
   ``every_s``, the windows (the cost: one clip each), the share of the duration whose
   segment label is the truth's (untagged counts as wrong; the mean and the worst over
   the seeds), and the farthest a true boundary is from a segment boundary, with
   segment boundaries snapped onto the shot cuts found in the same frames. Then the
   smoothing span at three spacings.

    python bench/segment_defaults.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from timeline.segments import SegmentParams, find_segments, snap_to_cuts
from timeline.windows import DEFAULT_EVERY_S, frame_times, place_windows
from trainer.motion_videos import DEMO_TRUTH_PARTS, Part, write_sequence

DEMO_PARTS = DEMO_TRUTH_PARTS
FPS = 25.0


# -- 1. rules on synthetic probabilities ------------------------------------------------


def labelled_right(segments, truth: list[int], names: list[str]) -> float:
    said = [
        next((s.label for s in segments if s.start_s <= t + 0.5 < s.end_s), None)
        for t in range(len(truth))
    ]
    return sum(a == names[b] for a, b in zip(said, truth, strict=True)) / len(truth)


def synthetic_rules(draws: int) -> None:
    names = ["a", "b", "c", "d"]
    truth = [0] * 12 + [1] * 9 + [2] * 15 + [3] * 10
    starts = np.arange(len(truth), dtype=float)
    print("1. rules on noisy synthetic windows (1 in 6 random), % of time labelled right")
    for smoothing in (0.0, 3.0, 5.0):
        for floor in (0.3, 0.5):
            scores = []
            for seed in range(draws):
                rng = np.random.default_rng(seed)
                rows = []
                for label in truth:
                    row = rng.dirichlet(np.ones(4))
                    if rng.random() > 1 / 6:
                        row = 0.35 * row
                        row[label] += 0.65
                    rows.append(row)
                params = SegmentParams(smoothing_s=smoothing, floor=floor)
                segments = find_segments(np.array(rows), starts, starts + 1, names, params=params)
                scores.append(labelled_right(segments, truth, names))
            print(
                f"   smoothing {smoothing:.0f} s, floor {floor} "
                f"{'(no hysteresis)' if floor == 0.5 else '               '}: "
                f"mean {np.mean(scores):.1%}, worst {np.min(scores):.1%} ({draws} draws)"
            )


# -- 2. window spacing with the demonstration model -------------------------------------


def demo_checkpoint(folder: Path) -> Path:
    from launcher.demo_model import cached_demo_checkpoint, train_demo_checkpoint

    model = cached_demo_checkpoint(folder)
    if model is None:
        print(f"   training the demonstration model into {folder} (once)...")
        model = train_demo_checkpoint(folder, progress=False)
    print(f"   demonstration model: {model.describe()}")
    return model.checkpoint


def window_probabilities(model, transform, info, starts) -> tuple[np.ndarray, float]:
    import torch

    clips = transform.read(info, starts)
    started = time.perf_counter()
    with torch.inference_mode():
        logits = torch.cat(
            [model(transform.to_tensor(clips[i : i + 64]))[0] for i in range(0, len(clips), 64)]
        )
    return torch.softmax(logits.float(), dim=1).numpy(), time.perf_counter() - started


def evaluate(segments, truth, frame_s: np.ndarray) -> tuple[float, float, float]:
    """(share of frames labelled right, mean and max distance of a true boundary to the
    nearest segment boundary)."""
    said = []
    for t in frame_s + 0.5 / FPS:
        said.append(next((s.label for s in segments if s.start_s <= t < s.end_s), None))
    right = np.mean([a == truth.label_at(t) for a, t in zip(said, frame_s, strict=True)])
    edges = np.array([s.start_s for s in segments] + [s.end_s for s in segments])
    if edges.size == 0:
        return float(right), float("inf"), float("inf")
    errors = [np.abs(edges - b).min() for b in truth.starts_s[1:]]
    return float(right), float(np.mean(errors)), float(np.max(errors))


def spacing(folder: Path, model_dir: Path, seeds: int) -> None:
    import torch

    from decoding.index import index_file
    from decoding.video import probe, read_clips
    from model.checkpoint import load_checkpoint
    from model.transform import VideoTransform
    from timeline.shots import detect_cuts

    torch.set_num_threads(1)
    print("\n2. window spacing with the demonstration model")
    checkpoint = load_checkpoint(demo_checkpoint(model_dir))
    model = checkpoint.build_model()
    transform = VideoTransform.from_config(checkpoint.config)
    videos = []
    for seed in range(seeds):
        path = folder / f"demo_truth_{seed}.avi"
        # Each part 0-1 s longer, at random: boundaries on whole seconds would line up
        # with windows every 1 s or 2 s and flatter those spacings.
        rng = np.random.default_rng([seed, 99])
        parts = [Part(p.motion, p.seconds + rng.uniform(0, 1), p.cut) for p in DEMO_PARTS]
        truth = write_sequence(path, parts, fps=FPS, seed=seed)
        info = probe(path)
        times = frame_times(index_file(str(path)))
        frames = read_clips(path, [0], info.frames, short_side=transform.short_side, info=info)
        cuts = detect_cuts(frames[0], times, info.fps)
        found = sum(any(abs(c - x) <= 1 / FPS for x in cuts) for c in truth.cuts_s)
        videos.append((truth, info, times, cuts, found))
    truth = videos[0][0]
    print(
        f"   truth videos: {min(v[0].duration_s for v in videos):.0f}-"
        f"{max(v[0].duration_s for v in videos):.0f} s, {len(truth.parts)} parts, "
        f"{len(truth.cuts_s)} cuts, {len(truth.changes_s)} motion changes, {seeds} seeds; "
        f"cuts found {sum(v[4] for v in videos)}/{seeds * len(truth.cuts_s)}, "
        f"false {sum(len(v[3]) - v[4] for v in videos)}; windows of {transform.clip_len} "
        f"frames ({transform.clip_len / FPS:.2f} s)"
    )

    def run(every: float, params: SegmentParams) -> tuple[int, float, float, float, float]:
        rights, worst_edge, windows, seconds, raw = [], 0.0, 0, 0.0, []
        for truth, info, times, cuts, _ in videos:
            plan = place_windows(times, clip_len=transform.clip_len, every_s=every)
            probabilities, took = window_probabilities(model, transform, info, list(plan.starts))
            segments = find_segments(
                probabilities, plan.start_s, plan.end_s, checkpoint.class_names,
                params=params, duration_s=plan.duration_s,
            )  # fmt: skip
            right, _, max_err = evaluate(snap_to_cuts(segments, cuts, plan.spacing_s), truth, times)
            rights.append(right)
            worst_edge = max(worst_edge, max_err)
            windows, seconds = len(plan), seconds + took
            raw += [
                checkpoint.class_names[int(p.argmax())] == truth.label_at((s + e) / 2)
                for p, s, e in zip(probabilities, plan.start_s, plan.end_s, strict=True)
            ]
        return windows, seconds / len(videos), float(np.mean(rights)), min(rights), worst_edge

    print("   every_s  windows  model s   right (mean / worst)   farthest boundary")
    for every in (0.25, 0.5, 1.0, 1.5, 2.0, 4.0):
        windows, seconds, right, worst, edge = run(every, SegmentParams())
        print(
            f"   {every:7.2f}  {windows:7d}  {seconds:7.2f}   {right:6.1%} / {worst:6.1%}"
            f"        {edge:5.2f} s" + ("   <- default" if every == DEFAULT_EVERY_S else "")
        )
    print("   smoothing span at three spacings: right (mean / worst), farthest boundary")
    for every in (0.5, 1.0, 2.0):
        cells = []
        for smoothing in (0.0, 1.0, 3.0, 5.0, 7.0):
            _, _, right, worst, edge = run(every, SegmentParams(smoothing_s=smoothing))
            cells.append(f"{smoothing:.0f} s {right:.1%}/{worst:.1%} {edge:.1f}")
        print(f"   every {every} s: " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("var/bench/segments"))
    parser.add_argument(
        "--model-dir", type=Path, default=Path("var/demo/model"), help="the demo's model folder"
    )
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    synthetic_rules(args.draws)
    spacing(args.cache_dir, args.model_dir, args.seeds)


if __name__ == "__main__":
    main()
