"""Benchmark: a long video through a real worker at the default window spacing, and a
short one against the 10-clip tagging it replaced.

1. **A long video** (``--minutes``, default 60; 320x240, 25 fps, H.264 when PyAV has
   libx264, written once into --cache-dir) dropped into the inbox of a real
   ``python -m watcher`` and ``python -m worker`` (their embedded defaults: SQLite and
   the embedded broker). Printed:
   - windows per second end to end (the job's windows over its start -> done in the
     database) / the engine's model-only windows per second on the same windows (a
     sample of them spread over the video, decoded and made tensors beforehand, through
     the same engine 16 at a time as the worker's CPU default, in this process with its
     threads; the best of two passes, before and after the worker's job, averaged).
     Target >= 0.85: decoding, the shot detector and the timeline hide behind the model;
   - the worker pool process's peak RSS (VmHWM; target <= 1.5 GiB whatever the length);
   - the worker's CPU seconds per minute of video;
   - the time from the drop to the first stored segment. A job's segments are committed
     with its results in one transaction (DESIGN.md), so this is the drop -> done time.
2. **A 5-second clip**: ``Predictor.predict`` (windows, shot cuts, timeline) against
   what it did before windows: 10 uniform clips decoded (``VideoTransform.decode``),
   their thumbnails, one forward pass, their mean (``aggregate_video``) and top-k.
   Alternated, median of ``--repeats``. Target <= 1.2: short videos must not get slower.

3. **The truth test, full size** (``--truth-minutes``, default 10): a video of the
   demonstration model's four motions in random parts of 3-8 s, some joined by hard
   cuts, some continuous (trainer.motion_videos.write_sequence; the small version is
   tests/worker/test_truth_video.py), tagged by ``Predictor`` with the demonstration
   model (trained once into var/demo/model, as `make demo` does). Printed: the share of
   the time the segments label right (target >= 90%), the farthest a true boundary lies
   from a segment boundary and an inner segment boundary from a true one (target: one
   window, 1 s), the hard cuts found within a frame (target >= 90%) and cuts found
   anywhere else (target: none).

The real network (ActionMoEDynamicModel at 16x112x112, random weights: the cost is the
architecture's) costs ~0.2-0.6 s a window on a 2-core CPU, so an hour is 12-36 minutes of
worker time: ``--minutes 5`` measures the same ratio in a few. ``--small`` uses a small
network (8 frames of 56x56), with which the decode, not the model, is the bound: that
run shows memory and CPU over a whole hour, not the overlap.

    python bench/segments.py                        # the real network, an hour
    python bench/segments.py --minutes 5            # the ratio, in minutes
    python bench/segments.py --small --minutes 60   # memory and CPU over an hour
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Run as `python bench/segments.py`: the repository's own folders (bench/, launcher/) are
# importable only with its root on the path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.pipeline import Service, ensure_checkpoint, running_service  # noqa: E402

log = logging.getLogger("bench.segments")

WIDTH, HEIGHT, FPS = 320, 240, 25
TARGET_RATIO = 0.85
TARGET_RSS_GIB = 1.5
TARGET_SHORT = 1.2
# Windows per forward pass: the worker's CPU default (worker.batching), and the bound's.
BATCH_CLIPS = 16
SHORT_SECONDS = 5


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/segments.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--minutes", type=float, default=60.0, help="the long video's length (default 60)"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="a small network (8 frames of 56x56) instead of the real one at 16x112x112",
    )
    parser.add_argument(
        "--engine", default="auto", help="inference engine, worker and bound (default auto)"
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=128,
        help="windows of the long video timed through the engine alone (default 128)",
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="runs of each side on the short clip (default 7)"
    )
    parser.add_argument(
        "--truth-minutes",
        type=float,
        default=10.0,
        help="the truth video's length with the demonstration model (default 10; 0: skip)",
    )
    parser.add_argument(
        "--skip-long", action="store_true", help="leave out the long video through a worker"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=REPO / "var" / "bench" / "segments",
        help="where the videos and checkpoints are kept between runs (default var/bench/segments)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=4 * 3600.0,
        help="give up on the long video's job after this many seconds (default 4 h)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, db)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or min(args.sample, args.repeats) < 1:
        parser.error("--minutes must be positive; --sample and --repeats at least 1")
    return args


# --------------------------------------------------------------------------- inputs


def _frames(seconds: float, seed: int) -> Iterator[np.ndarray]:
    """RGB frames: a blurred random texture panned at a speed that changes every few
    seconds, jumping to a new place now and then (a cut), with a block crossing it."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (HEIGHT * 3, WIDTH * 3, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 4)
    x = y = 0.0
    dx = dy = 0.0
    gain, offset = 1.0, 0.0
    colour = (255, 255, 255)
    for i in range(round(seconds * FPS)):
        if i % (4 * FPS) == 0:  # a new motion every 4 s, a new shot every 20 s
            dx, dy = rng.uniform(-6, 6, size=2)
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
            if i % (20 * FPS) == 0:  # a new place, lit differently: a cut
                x, y = rng.uniform(0, 2 * WIDTH), rng.uniform(0, 2 * HEIGHT)
                gain, offset = rng.uniform(0.5, 1.0), rng.uniform(0, 100)
        x, y = (x + dx) % (2 * WIDTH), (y + dy) % (2 * HEIGHT)
        view = texture[int(y) : int(y) + HEIGHT, int(x) : int(x) + WIDTH]
        frame = cv2.convertScaleAbs(view, alpha=gain, beta=offset)
        bx = (i * 5) % (WIDTH - 48)
        frame[96:144, bx : bx + 48] = colour
        yield frame


def write_video(path: Path, seconds: float, seed: int) -> str:
    """Write ``seconds`` of video to ``path`` once (then reuse it); the codec used."""
    import av

    h264 = "libx264" in av.codecs_available
    codec = "H.264 (libx264)" if h264 else "MPEG-4 part 2 (mpeg4)"
    if path.exists():
        return codec
    from tqdm import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    frames = round(seconds * FPS)
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264" if h264 else "mpeg4",
            rate=FPS,
            options={"preset": "veryfast"} if h264 else {},
        )
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i, rgb in enumerate(
            tqdm(_frames(seconds, seed), total=frames, desc=f"writing {path.name}", unit="frame")
        ):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    partial.replace(path)
    return codec


# --------------------------------------------------------------------------- 1. long


def model_only_windows_per_s(predictor, clips: np.ndarray, batch: int, runs: int = 2) -> float:
    """Windows per second of the engine alone on windows already decoded and made
    tensors, ``batch`` a pass: the best of ``runs`` passes over them (the machine is
    shared: the fastest run is the one least disturbed)."""
    tensors = [
        predictor.transform.to_tensor(clips[first : first + batch])
        for first in range(0, len(clips), batch)
    ]
    predictor.engine(tensors[0])  # warm
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for tensor in tensors:
            predictor.engine(tensor)
        best = min(best, time.perf_counter() - started)
    return len(clips) / best


def _vm_hwm_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _watch_peak_rss(service: Service) -> int:
    """The largest VmHWM among the worker's pool processes."""
    peaks = [0]
    for pid in service.processes["worker"].children():
        with contextlib.suppress(OSError):  # a process gone meanwhile
            peaks.append(_vm_hwm_bytes(pid))
    return max(peaks)


def long_video(args: argparse.Namespace, checkpoint: Path, warmup: Path) -> dict:
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.queries.timelines import timelines
    from storage.schema import Job, VideoPath
    from worker.predictor import Predictor, configure_cpu_threads

    path = args.cache_dir / f"long-{args.minutes:g}min.mp4"
    codec = write_video(path, args.minutes * 60, seed=60)
    configure_cpu_threads(1)  # the worker's one CPU pool process takes every core too
    predictor = Predictor(checkpoint, device="cpu", engine=args.engine)
    plan = predictor.plan(path)
    picks = np.linspace(0, len(plan.windows) - 1, min(args.sample, len(plan.windows)))
    starts = [plan.windows.starts[int(i)] for i in picks.round()]
    log.info("model only: decoding %d of the %d windows", len(starts), len(plan.windows))
    clips = predictor.transform.read(plan.info, starts)
    run_dir = args.cache_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    service_args = argparse.Namespace(
        backend="embedded",
        engine=args.engine,
        clips=10,
        stable_seconds="0.5",
        timeout=args.timeout,
    )
    try:
        with running_service(checkpoint, warmup, service_args, run_dir) as (service, engine):
            before = model_only_windows_per_s(predictor, clips, BATCH_CLIPS)
            log.info("model only: %.2f windows/s", before)
            cpu_before = service.cpu_seconds()["worker pool"]
            target = service.inbox / path.name
            shutil.copyfile(path, run_dir / path.name)
            dropped = time.time()
            os.rename(run_dir / path.name, target)
            log.info("dropped %s (%d windows); waiting for its job", target, len(plan.windows))
            peak = 0
            while True:
                service.check_alive()
                peak = max(peak, _watch_peak_rss(service))
                with session_scope(engine) as session:
                    job = session.scalars(
                        select(Job)
                        .join(VideoPath, VideoPath.video_id == Job.video_id)
                        .where(VideoPath.path == str(target))
                    ).first()
                    if job is not None and job.finished_at is not None:
                        state, started, finished = job.state.value, job.started_at, job.finished_at
                        found = timelines(session, [job.id]).get(job.id)
                        break
                if time.time() - dropped > args.timeout:
                    sys.exit(f"bench/segments.py: no result after {args.timeout:.0f} s")
                time.sleep(1.0)
            cpu = service.cpu_seconds()["worker pool"] - cpu_before
            after = model_only_windows_per_s(predictor, clips, BATCH_CLIPS)
            log.info("model only again: %.2f windows/s", after)
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    if state != "done" or found is None:
        sys.exit(f"bench/segments.py: the long video's job ended {state}")
    seconds = finished.timestamp() - started.timestamp()
    windows = len(found.windows)
    return {
        "codec": codec,
        "minutes": args.minutes,
        "windows": windows,
        "segments": len(found.segments),
        "cuts": len(found.cuts),
        "job_seconds": seconds,
        "end_to_end_windows_per_s": windows / seconds,
        "model_only_windows_per_s": [before, after],
        "ratio": (windows / seconds) / ((before + after) / 2),
        "peak_rss_bytes": peak,
        "cpu_s_per_video_minute": cpu / args.minutes,
        "drop_to_first_segment_s": finished.timestamp() - dropped,
        "engine": predictor.engine.name,
    }


# --------------------------------------------------------------------------- 2. short


def short_clip(args: argparse.Namespace, checkpoint: Path) -> dict:
    from actiontag.thumbnails import encode_thumbnails
    from model.aggregate import aggregate_video
    from worker.predictor import Predictor, configure_cpu_threads

    path = args.cache_dir / f"short-{SHORT_SECONDS}s.mp4"
    write_video(path, SHORT_SECONDS, seed=5)
    configure_cpu_threads(1)
    predictor = Predictor(checkpoint, device="cpu", engine=args.engine)

    def ten_clips() -> None:  # what Predictor.predict did before windows (ec52fb0)
        clips, _ = predictor.transform.decode(path, num_clips=10)
        batch = predictor.transform.to_tensor(clips)
        encode_thumbnails(clips[:, clips.shape[1] // 2])
        out = predictor.engine(batch)
        aggregate_video(out.probs, out.gates, out.indices).probs.topk(5)

    def windows() -> None:
        predictor.predict(path)

    ten_clips(), windows()  # warm both
    times: dict[str, list[float]] = {"10 clips": [], "windows": []}
    for _ in range(args.repeats):
        for name, run in (("10 clips", ten_clips), ("windows", windows)):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    before, now = statistics.median(times["10 clips"]), statistics.median(times["windows"])
    return {
        "windows": len(predictor.plan(path).windows),
        "ten_clips_s": before,
        "windows_s": now,
        "ratio": now / before,
        "engine": predictor.engine.name,
    }


# --------------------------------------------------------------------------- 3. truth


def truth_parts(minutes: float, seed: int) -> list:
    """Random parts of 3-8 s in the demonstration model's motions, 2 in 5 after a cut."""
    from launcher.samples import demo_classes
    from trainer.motion_videos import Part

    rng = np.random.default_rng(seed)
    motions = demo_classes()
    parts, total, last = [], 0.0, None
    while total < minutes * 60:
        motion = str(rng.choice([m for m in motions if m != last]))
        seconds = float(rng.uniform(3, 8))
        parts.append(Part(motion, seconds, cut=bool(rng.random() < 0.4)))
        total, last = total + seconds, motion
    return parts


def truth_test(args: argparse.Namespace) -> dict:
    from launcher.demo_model import cached_demo_checkpoint, train_demo_checkpoint
    from trainer.motion_videos import segment_agreement, write_sequence
    from worker.predictor import Predictor, configure_cpu_threads

    folder = REPO / "var" / "demo" / "model"
    model = cached_demo_checkpoint(folder)
    if model is None:
        log.info("training the demonstration model into %s (once)", folder)
        model = train_demo_checkpoint(folder, progress=False)
    path = args.cache_dir / f"truth-{args.truth_minutes:g}min.avi"
    partial = path.with_name(f".{path.name}.part.avi")
    truth = write_sequence(partial, truth_parts(args.truth_minutes, seed=11), fps=FPS, seed=11)
    partial.replace(path)
    configure_cpu_threads(1)
    predictor = Predictor(model.checkpoint, device="cpu", engine=args.engine)
    started = time.perf_counter()
    timeline = predictor.predict(path).timeline
    seconds = time.perf_counter() - started
    agreement = segment_agreement(timeline.segments, truth)
    edges = np.array(
        sorted({x.start_s for x in timeline.segments} | {x.end_s for x in timeline.segments})
    )
    errors = np.array([np.abs(edges - b).min() for b in truth.starts_s[1:]])
    found = np.array(timeline.cuts)
    true_cuts = np.array(truth.cuts_s)
    frame = 1 / FPS
    hits = sum(1 for c in true_cuts if found.size and np.abs(found - c).min() <= frame)
    strays = sum(1 for c in found if not true_cuts.size or np.abs(true_cuts - c).min() > frame)
    return {
        "minutes": truth.duration_s / 60,
        "parts": len(truth.parts),
        "true_cuts": len(true_cuts),
        "changes": len(truth.changes_s),
        "windows": len(timeline.windows),
        "segments": len(timeline.segments),
        "right": agreement.right,
        "farthest_boundary_s": agreement.farthest_boundary_s,
        "boundaries_within_1s": float(np.mean(errors <= 1.0)),
        "median_boundary_s": float(np.median(errors)),
        "stray_boundary_s": agreement.stray_boundary_s,
        "cuts_found": hits,
        "false_cuts": strays,
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- report


def report(figures: dict) -> None:
    model = figures["model"]
    long = figures.get("long")
    if long is not None:
        before, after = long["model_only_windows_per_s"]
        rss = long["peak_rss_bytes"] / 2**30
        print(
            f"\n1. {long['minutes']:g}-minute video ({WIDTH}x{HEIGHT}, {FPS} fps, "
            f"{long['codec']}), {model} network, engine {long['engine']}: {long['windows']} "
            f"windows, {long['segments']} segments, {long['cuts']} shot cuts"
        )
        print(
            f"   end to end {long['end_to_end_windows_per_s']:.2f} windows/s "
            f"({long['job_seconds']:.1f} s job); model only {before:.2f} / {after:.2f} "
            f"windows/s (before / after)"
        )
        verdict = "meets" if long["ratio"] >= TARGET_RATIO else "MISSES"
        print(
            f"   ratio end-to-end / model-only: {long['ratio']:.3f} ({verdict} the target "
            f"{TARGET_RATIO})"
        )
        verdict = "meets" if rss <= TARGET_RSS_GIB else "MISSES"
        print(f"   worker peak RSS {rss:.2f} GiB ({verdict} the target {TARGET_RSS_GIB} GiB)")
        print(f"   worker CPU {long['cpu_s_per_video_minute']:.1f} s per video-minute")
        print(
            f"   drop -> first stored segment {long['drop_to_first_segment_s']:.1f} s "
            "(segments are committed with the job's results)"
        )
    short = figures["short"]
    verdict = "meets" if short["ratio"] <= TARGET_SHORT else "MISSES"
    print(
        f"\n2. {SHORT_SECONDS}-second clip, {short['windows']} windows, engine "
        f"{short['engine']}: windows + cuts + timeline {1000 * short['windows_s']:.0f} ms vs "
        f"10 clips {1000 * short['ten_clips_s']:.0f} ms: ratio {short['ratio']:.3f} "
        f"({verdict} the target <= {TARGET_SHORT})"
    )

    truth = figures.get("truth")
    if truth is not None:
        print(
            f"\n3. truth video, {truth['minutes']:.1f} min of the demonstration model's "
            f"motions: {truth['parts']} parts, {truth['true_cuts']} hard cuts, "
            f"{truth['changes']} changes inside a shot; {truth['windows']} windows, "
            f"{truth['segments']} segments, tagged in {truth['seconds']:.1f} s"
        )
        print(
            f"   labelled right {truth['right']:.1%} of the time (target >= 90%); true "
            f"boundaries within 1 s of a segment boundary {truth['boundaries_within_1s']:.1%} "
            f"(median {truth['median_boundary_s']:.2f} s, farthest "
            f"{truth['farthest_boundary_s']:.2f} s), farthest stray boundary "
            f"{truth['stray_boundary_s']:.2f} s (target: all within 1 s)"
        )
        print(
            f"   hard cuts found {truth['cuts_found']}/{truth['true_cuts']} (target >= 90%), "
            f"cuts elsewhere {truth['false_cuts']} (target 0)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = ensure_checkpoint(args.cache_dir, args.small)
    figures: dict = {"model": "small" if args.small else "full"}
    figures["short"] = short_clip(args, checkpoint)
    if args.truth_minutes > 0:
        figures["truth"] = truth_test(args)
    if not args.skip_long:
        warmup = args.cache_dir / f"short-{SHORT_SECONDS}s.mp4"
        figures["long"] = long_video(args, checkpoint, warmup)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
