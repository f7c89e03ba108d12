"""Benchmark: every inference engine against fp32 eager, speed and agreement, in one run.

For the full-size network (16 x 112 x 112, 51 classes) it reports, per engine, ms per
clip and clips per second at batch 1 and batch 8, the speed-up over fp32 eager measured
in the same run, the agreement with eager on real clips (top-1, expert choice, expert
usage) and the peak RSS of a process serving with that engine. Then it checks the
targets for the engine ``auto`` picks: >= 4x eager, top-1 agreement >= 99%,
RSS <= 1.5 GiB.

How it measures, on a shared, noisy machine:

- Each engine lives in its own child process (so its peak RSS is its own), started once;
  the parent then asks the children in turn for a few timed forwards, round after round,
  so a load spike hits every engine alike; the figures are medians.
- Agreement is measured on the clips of real videos: every file in tests/fixtures/videos
  that decodes (encoded by other tools) plus videos with real motion encoded here
  (tests/probes.py's write_motion_video), 320x240, clips taken by decoding.video as the
  worker takes them. The network has random weights conditioned by
  condition_for_agreement (tests/probes.py, shared with tests/inference) so that its
  decisions are not degenerate (that module's docstring says why and how); a trained
  checkpoint cannot be downloaded here.
- The RSS is read after the engine is ready and has run batch 8 and a 10-clip video,
  before the agreement clips are loaded: what a worker process holds.
- ``--pipeline`` also times the CPU question of worker.batching: the same videos tagged
  one by one (decode, then infer) against predict_stream (decode overlapped, one video
  per forward) and predict_stream packing up to 4 videos per forward, on the videos
  encoded here.

    .venv/bin/python bench/inference.py                     # ~10 minutes the first time
    .venv/bin/python bench/inference.py --engines eager,openvino --repeats 5
    .venv/bin/python bench/inference.py --pipeline

The work folder (default var/bench-inference) keeps the checkpoint, the videos and the
engine cache between runs; delete it to measure a cold export.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.inference")

REPO = Path(__file__).resolve().parents[1]
# Run as `python bench/inference.py`, the repository's own folders (tests/probes.py is not
# in the distribution) are importable only with its root on the path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
FIXTURE_VIDEOS = REPO / "tests" / "fixtures" / "videos"
DEFAULT_ENGINES = ("eager", "bf16", "openvino-fp32", "openvino")
TARGET_SPEEDUP = 4.0
TARGET_TOP1 = 0.99
TARGET_RSS_MB = 1.5 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated engines to measure; eager is always added (default "
        f"{','.join(DEFAULT_ENGINES)})",
    )
    parser.add_argument("--batches", default="1,8", help="batch sizes to time (default 1,8)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument(
        "--per-round", type=int, default=1, help="forwards per engine per round (default 1)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads per engine (default 0: what a worker takes, all cores)",
    )
    parser.add_argument(
        "--videos", type=int, default=12, help="motion videos encoded here (default 12)"
    )
    parser.add_argument(
        "--clips-per-video", type=int, default=6, help="clips per video for agreement (default 6)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "var" / "bench-inference",
        help="folder for the checkpoint, videos, clips and engine cache",
    )
    parser.add_argument(
        "--pipeline", action="store_true", help="also time worker.batching on the CPU"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- inputs


def prepare(work: Path, videos: int, clips_per_video: int) -> tuple[Path, list[Path]]:
    """The conditioned full-size checkpoint and the agreement videos (made once)."""
    import torch

    from model.checkpoint import save_checkpoint
    from model.network import ActionMoEDynamicModel, ModelConfig
    from model.transform import VideoTransform
    from tests.probes import condition_for_agreement, write_motion_video
    from worker.engines.agreement import probe_clips

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "model.pt"
    if not checkpoint.exists():
        log.info("conditioning a full-size network on 64 calibration clips (a few minutes)")
        torch.manual_seed(0)
        config = ModelConfig()
        model = ActionMoEDynamicModel(config=config)
        transform = VideoTransform.from_config(config)
        condition_for_agreement(model, probe_clips(64, transform, seed=99))
        classes = [f"action{i:02d}" for i in range(config.num_classes)]
        save_checkpoint(checkpoint, model, class_names=classes, split=1)
    folder = work / "videos"
    folder.mkdir(exist_ok=True)
    paths = sorted(p for p in FIXTURE_VIDEOS.iterdir() if p.suffix != ".md")
    for i in range(videos):
        path = folder / f"motion{i:02d}.mp4"
        if not path.exists():
            write_motion_video(path, seed=i, frames=75, size=(320, 240))
        paths.append(path)
    return checkpoint, paths


def save_clips(work: Path, checkpoint: Path, paths: list[Path], clips_per_video: int) -> list[Path]:
    """Each decodable video's clips as the worker decodes them, one file per video."""
    import torch

    from decoding.video import VideoError
    from model.checkpoint import load_checkpoint
    from model.transform import VideoTransform

    transform = VideoTransform.from_config(load_checkpoint(checkpoint).config)
    folder = work / f"clips-{clips_per_video}"
    folder.mkdir(exist_ok=True)
    files = []
    for path in paths:
        out = folder / f"{path.name}.pt"
        if not out.exists():
            try:
                clips, _ = transform.load(path, num_clips=clips_per_video)
            except VideoError as exc:
                log.info("not a video for agreement: %s (%s)", path.name, exc)
                continue
            torch.save(clips, out)
        files.append(out)
    return files


# --------------------------------------------------------------------------- child


def child_main(engine_name: str, checkpoint: Path, threads: int) -> int:
    """Serve commands on stdin, one JSON reply per line on stdout."""
    import torch

    from model.checkpoint import load_checkpoint
    from worker.predictor import configure_cpu_threads, make_inference_engine

    if threads:
        torch.set_num_threads(threads)
    else:
        configure_cpu_threads(1)
    started = time.perf_counter()
    engine = make_inference_engine(engine_name, load_checkpoint(checkpoint), torch.device("cpu"))
    ready_s = time.perf_counter() - started
    shape = _clip_shape(checkpoint)
    generator = torch.Generator().manual_seed(0)
    inputs: dict[int, torch.Tensor] = {}
    _reply(
        {
            "engine": engine.name,
            "ready_s": ready_s,
            "threads": torch.get_num_threads(),
            "rss_mb": _peak_rss_mb(),
        }
    )
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "time":
            batch = command["batch"]
            if batch not in inputs:
                inputs[batch] = torch.randn(batch, *shape, generator=generator)
                engine(inputs[batch])  # warm-up: first-run allocations and kernel choice
            times = []
            for _ in range(command["count"]):
                t0 = time.perf_counter()
                engine(inputs[batch])
                times.append(time.perf_counter() - t0)
            _reply({"times": times, "rss_mb": _peak_rss_mb()})
        elif command["do"] == "agree":
            outs = [engine(torch.load(f, weights_only=True)) for f in command["files"]]
            torch.save(
                {
                    "probs": torch.cat([o.probs for o in outs]),
                    "gates": torch.cat([o.gates for o in outs]),
                    "indices": torch.cat([o.indices for o in outs]),
                    "groups": [o.probs.shape[0] for o in outs],
                },
                command["out"],
            )
            _reply({"rss_mb": _peak_rss_mb()})
        elif command["do"] == "pipeline":
            _reply(_time_pipeline(engine_name, checkpoint, command["videos"]))
        else:
            _reply({"error": f"unknown command {command}"})
    return 0


def _clip_shape(checkpoint: Path) -> tuple[int, int, int, int]:
    from model.checkpoint import load_checkpoint
    from worker.engines.base import clip_shape

    return clip_shape(load_checkpoint(checkpoint))


def _time_pipeline(engine_name: str, checkpoint: Path, videos: list[str]) -> dict[str, Any]:
    """Seconds to tag ``videos``: one by one, streamed, streamed with cross-video batches."""
    from worker.batching import BatchSettings, predict_stream
    from worker.predictor import Predictor

    predictor = Predictor(checkpoint, device="cpu", engine=engine_name)
    ways = {
        "one by one": None,
        "stream, 1 video per forward": BatchSettings(1, predictor.num_clips, 1),
        "stream, up to 4 videos per forward": BatchSettings(4, 4 * predictor.num_clips, 1),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for repeat in range(3):
        order = list(ways) if repeat % 2 == 0 else list(reversed(ways))
        for name in order:
            started = time.perf_counter()
            if ways[name] is None:
                for path in videos:
                    predictor.predict(path)
            else:
                for _ in predict_stream(predictor, videos, lambda p: p, ways[name]):
                    pass
            seconds[name].append(time.perf_counter() - started)
    return {"seconds": {k: statistics.median(v) for k, v in seconds.items()}}


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: ru_maxrss carries the parent's resident size across exec.
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class Child:
    """An engine's process, driven line by line."""

    def __init__(self, engine: str, checkpoint: Path, threads: int, work: Path) -> None:
        env = {**os.environ, "ACTIONTAG_ENGINE_CACHE": str(work / "engine-cache")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                engine,
                "--checkpoint",
                str(checkpoint),
                "--threads",
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.info = self.read()

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"engine process exited with {self.process.wait()}")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --------------------------------------------------------------------------- parent


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.checkpoint, args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engines = ["eager", *[e for e in args.engines.split(",") if e and e != "eager"]]
    batches = [int(b) for b in args.batches.split(",")]

    checkpoint, videos = prepare(args.work, args.videos, args.clips_per_video)
    clip_files = save_clips(args.work, checkpoint, videos, args.clips_per_video)

    log.info("starting one process per engine (the first start exports and checks)")
    children = {name: Child(name, checkpoint, args.threads, args.work) for name in engines}
    auto = Child("auto", checkpoint, args.threads, args.work)
    default = auto.info["engine"]
    auto.close()
    if default not in children:
        children[default] = Child(default, checkpoint, args.threads, args.work)
        engines.append(default)

    times: dict[tuple[str, int], list[float]] = {(e, b): [] for e in engines for b in batches}
    for batch in batches:
        for repeat in range(args.repeats):
            order = engines if repeat % 2 == 0 else list(reversed(engines))
            for name in order:
                reply = children[name].ask(do="time", batch=batch, count=args.per_round)
                times[(name, batch)].extend(t / batch for t in reply["times"])
            log.info("batch %d: round %d/%d", batch, repeat + 1, args.repeats)
    serving_rss = {
        name: children[name].ask(do="time", batch=10, count=1)["rss_mb"] for name in engines
    }

    log.info("agreement on %d videos", len(clip_files))
    outputs = {}
    for name in engines:
        out = args.work / f"outputs-{name}.pt"
        children[name].ask(do="agree", files=[str(f) for f in clip_files], out=str(out))
        outputs[name] = out
    infos = {name: child.info for name, child in children.items()}
    report(args, engines, batches, times, serving_rss, outputs, infos, default, len(clip_files))
    if args.pipeline:
        # The HMDB51-like videos made here (320x240, 3 s), all of which decode.
        motion = [str(v) for v in videos if v.parent == args.work / "videos"]
        report_pipeline(children[default].ask(do="pipeline", videos=motion), len(motion))
    for child in children.values():
        child.close()
    return 0


def report(
    args: argparse.Namespace,
    engines: list[str],
    batches: list[int],
    times: dict[tuple[str, int], list[float]],
    rss: dict[str, float],
    outputs: dict[str, Path],
    infos: dict[str, dict[str, Any]],
    default: str,
    videos: int,
) -> None:
    import torch

    from worker.engines import EngineOutput
    from worker.engines.agreement import compare

    def load(name: str) -> tuple[EngineOutput, list[int]]:
        data = torch.load(outputs[name], weights_only=True)
        return EngineOutput(data["probs"], data["gates"], data["indices"]), data["groups"]

    reference, groups = load("eager")
    median_ms = {key: statistics.median(v) * 1e3 for key, v in times.items()}
    threads = infos["eager"]["threads"]
    print()
    print(
        f"CPU, {threads} threads per engine, full-size clips 3 x 16 x 112 x 112, "
        f"{args.repeats} interleaved rounds (medians); agreement on {reference.probs.shape[0]} "
        f"clips of {videos} real videos"
    )
    header = f"{'engine':15s}"
    for b in batches:
        header += f" | b{b} ms/clip  clips/s  x eager"
    header += " | top-1   experts  usage-d  video-usage-d  max-p-d | RSS MB | ready s"
    print(header)
    results: dict[str, dict[str, float]] = {}
    for name in engines:
        fast, _ = load(name)
        agreement = compare(reference, fast, groups)
        line = f"{infos[name]['engine']:15s}"
        speedups = []
        for b in batches:
            ms = median_ms[(name, b)]
            speedup = median_ms[("eager", b)] / ms
            speedups.append(speedup)
            line += f" | {ms:11.1f} {1000 / ms:8.2f} {speedup:8.2f}"
        line += (
            f" | {agreement.top1:6.2%} {agreement.experts:8.2%} {agreement.usage_diff:8.4f} "
            f"{agreement.video_usage_diff:14.4f} {agreement.max_prob_diff:8.4f} | {rss[name]:6.0f} "
            f"| {infos[name]['ready_s']:7.1f}"
        )
        print(line)
        results[name] = {
            "speedup": min(speedups),
            "top1": agreement.top1,
            "usage": agreement.usage_diff,
            "rss": rss[name],
        }
    r = results[default]
    print()
    print(f"default engine (auto): {default}")
    print(
        f"  speed-up over fp32 eager (worst batch) {r['speedup']:.2f}x, target >= {TARGET_SPEEDUP}x: "
        f"{'met' if r['speedup'] >= TARGET_SPEEDUP else 'NOT met'}"
    )
    print(
        f"  top-1 agreement {r['top1']:.2%}, target >= {TARGET_TOP1:.0%}; expert usage within "
        f"{r['usage']:.4f}, target <= 0.02: "
        f"{'met' if r['top1'] >= TARGET_TOP1 and r['usage'] <= 0.02 else 'NOT met'}"
    )
    print(
        f"  peak RSS serving {r['rss']:.0f} MB, target <= {TARGET_RSS_MB:.0f} MB: "
        f"{'met' if r['rss'] <= TARGET_RSS_MB else 'NOT met'}"
    )


def report_pipeline(pipeline: dict[str, Any], videos: int) -> None:
    seconds = pipeline["seconds"]
    base = seconds["one by one"]
    print()
    print(f"worker.batching on the CPU, {videos} videos, default engine (medians of 3):")
    for name, s in seconds.items():
        print(f"  {name:36s} {s:7.2f} s  {videos / s:6.2f} videos/s  x{base / s:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
