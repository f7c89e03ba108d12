"""Benchmark: what decoding.video costs to get clips out of a short and a long video.

For a 5-second and a 60-minute 320x240 video (generated once into --cache-dir), it
measures the time and the peak memory of extracting N=1 and N=10 clips of 16 frames
(probe + read_clips + to_tensor, the probe's index not cached) against a full
sequential decode of the same file, and for the 5-second video against the time of
bare torchvision r2plus1d_18 (fp32, eager, batch 1, 16x112x112) on one clip, all in
one run. Every case runs in a fresh child process so that its peak RSS is its own.

Targets: 60-minute video, N=10 at most 5% of the full decode and peak
memory under 1 GiB; 5-second video, decode + preprocessing of one clip at most 10%
of the model's time for that clip.

    python bench/decode.py                 # about 3 minutes the first time, 1 after
    python bench/decode.py --minutes 10    # a shorter "long" video
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

import numpy as np

log = logging.getLogger("bench.decode")

WIDTH, HEIGHT, FPS = 320, 240, 30
CLIP_LEN = 16


# --------------------------------------------------------------------------- videos


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A smooth random luma texture twice the frame size, panned to make motion."""
    import cv2

    noise = rng.integers(0, 256, (HEIGHT * 2, WIDTH * 2), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 3)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


def _frame_planes(texture: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = (i * 3) % WIDTH, (i * 2) % HEIGHT
    luma = np.ascontiguousarray(texture[y : y + HEIGHT, x : x + WIDTH])
    # A block sweeping across the picture gives the encoder real moving content.
    bx = (i * 5) % (WIDTH - 40)
    luma[100:140, bx : bx + 40] = 235
    chroma = np.full((HEIGHT // 2, WIDTH // 2), 128 + (i // FPS) % 32, dtype=np.uint8)
    return luma, chroma, 255 - chroma


def _write_h264(path: Path, frames: int) -> str:
    """Write with libx264 (default GOP 250, B-frames) through PyAV; returns the codec used."""
    import av
    from tqdm import tqdm

    texture = _texture(np.random.default_rng(0))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.thread_type = "AUTO"
        for i in tqdm(range(frames), desc=f"writing {path.name}", unit="frame", leave=False):
            luma, u, v = _frame_planes(texture, i)
            yuv = np.concatenate([luma, u.reshape(-1, WIDTH), v.reshape(-1, WIDTH)])
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return "H.264 (libx264 veryfast, PyAV)"


def _write_mp4v(path: Path, frames: int) -> str:
    import cv2
    from tqdm import tqdm

    texture = _texture(np.random.default_rng(0))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for i in tqdm(range(frames), desc=f"writing {path.name}", unit="frame", leave=False):
        luma, u, v = _frame_planes(texture, i)
        i420 = np.concatenate([luma, u.reshape(-1, WIDTH), v.reshape(-1, WIDTH)])
        writer.write(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))
    writer.release()
    return "MPEG-4 part 2 (mp4v, OpenCV; no H.264 encoder found)"


def ensure_video(cache: Path, name: str, seconds: int) -> tuple[Path, str]:
    """The cached video of ``seconds`` seconds, written first if it is not there."""
    import av

    path = cache / f"{name}.mp4"
    stamp = cache / f"{name}.json"
    frames = seconds * FPS
    if path.exists() and stamp.exists():
        meta = json.loads(stamp.read_text())
        if meta.get("frames") == frames:
            return path, meta["codec"]
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    log.info("writing %s: %d frames at %dx%d", path, frames, WIDTH, HEIGHT)
    started = time.perf_counter()
    if "libx264" in av.codecs_available:
        codec = _write_h264(partial, frames)
    else:
        codec = _write_mp4v(partial, frames)
    partial.replace(path)
    stamp.write_text(json.dumps({"frames": frames, "codec": codec}))
    log.info("wrote %s in %.0f s with %s", path, time.perf_counter() - started, codec)
    return path, codec


# --------------------------------------------------------------------------- cases
# Each case runs in its own process: `bench/decode.py --case NAME PATH REPEATS`.


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    # VmHWM, not ru_maxrss: ru_maxrss carries the parent's resident size across exec.
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _case_clips(video: str, num_clips: int, repeats: int) -> dict[str, float]:
    from decoding import video as mv
    from decoding.index import INDEXES
    from model.network import KINETICS_MEAN, KINETICS_STD
    from model.transform import to_tensor

    def extract() -> tuple[float, float, float, float]:
        INDEXES.clear()  # every repetition pays for its own demux pass
        started = time.perf_counter()
        info = mv.probe(video)
        probed = time.perf_counter()
        starts = mv.clip_starts(info.frames, CLIP_LEN, num_clips)
        clips = mv.read_clips(video, starts, CLIP_LEN, info=info)
        read = time.perf_counter()
        batch = to_tensor(clips, mean=KINETICS_MEAN, std=KINETICS_STD)
        done = time.perf_counter()
        if batch.shape != (num_clips, 3, CLIP_LEN, 112, 112):
            raise RuntimeError(f"to_tensor gave {tuple(batch.shape)}")
        return done - started, probed - started, read - probed, done - read

    extract()  # warms the page cache and the libraries' first-call set-up
    rows = [extract() for _ in range(repeats)]
    total, probe_s, read_s, tensor_s = (statistics.median(col) for col in zip(*rows, strict=True))
    return {"seconds": total, "probe": probe_s, "read": read_s, "tensor": tensor_s}


def _case_full(video: str, repeats: int) -> dict[str, float]:
    import cv2

    times = []
    frames = 0
    for _ in range(repeats):
        started = time.perf_counter()
        capture = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
        frames = 0
        while True:
            ok, _frame = capture.read()
            if not ok:
                break
            frames += 1
        capture.release()
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "frames": frames}


def _case_model(repeats: int) -> dict[str, float]:
    import torch
    from torchvision.models.video import r2plus1d_18

    model = r2plus1d_18().eval()
    clip = torch.randn(1, 3, CLIP_LEN, 112, 112)
    times = []
    with torch.inference_mode():
        for _ in range(2):
            model(clip)
        for _ in range(max(repeats, 5)):
            started = time.perf_counter()
            model(clip)
            times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "threads": torch.get_num_threads()}


def run_case(case: str, video: str, repeats: int) -> None:
    """Run one case here and print its figures as JSON, peak memory included."""
    import cv2  # noqa: F401  (libraries loaded before the baseline RSS is taken)
    import torch  # noqa: F401

    import decoding.video  # noqa: F401
    import model.transform  # noqa: F401

    base_rss = _rss_bytes()
    if case == "full":
        figures = _case_full(video, repeats)
    elif case == "model":
        figures = _case_model(repeats)
    else:
        figures = _case_clips(video, int(case.removeprefix("clips")), repeats)
    peak = _peak_rss_bytes()
    figures.update(peak_rss=peak, growth=max(0, peak - base_rss))
    print(json.dumps(figures))


def measure(case: str, video: Path | None, repeats: int) -> dict[str, float]:
    """Run one case in a child process and return its figures."""
    command = [sys.executable, __file__, "--case", case, str(video or "-"), str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"case {case} on {video} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def _mib(value: float) -> str:
    return f"{value / 2**20:7.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("var/bench"), help="where the videos are kept"
    )
    parser.add_argument(
        "--minutes", type=int, default=60, help="length of the long video (default 60)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repetitions per short case; the median counts"
    )
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        case, video, repeats = args.case
        run_case(case, video, int(repeats))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    short, codec = ensure_video(args.cache_dir, "decode_5s", 5)
    long, _ = ensure_video(args.cache_dir, f"decode_{args.minutes}min", args.minutes * 60)
    print(f"videos: {WIDTH}x{HEIGHT} at {FPS} fps, {codec}; {os.cpu_count()} CPUs")

    model = measure("model", None, args.repeats)
    print(
        f"model: r2plus1d_18 fp32 eager, batch 1, 1x3x16x112x112: "
        f"{model['seconds'] * 1e3:.0f} ms/clip ({model['threads']} threads)"
    )
    failed = []
    for label, video, repeats in (("5 s", short, args.repeats), (f"{args.minutes} min", long, 3)):
        full = measure("full", video, 1 if video is long else repeats)
        print(
            f"\n{label} ({video.name}): full sequential decode of {full['frames']} frames "
            f"{full['seconds'] * 1e3:.0f} ms, peak RSS {_mib(full['peak_rss'])}"
        )
        for n in (1, 10):
            got = measure(f"clips{n}", video, repeats)
            ratio = got["seconds"] / full["seconds"]
            print(
                f"  N={n:2d} clips: {got['seconds'] * 1e3:8.1f} ms "
                f"(probe {got['probe'] * 1e3:.1f}, read {got['read'] * 1e3:.1f}, "
                f"to_tensor {got['tensor'] * 1e3:.1f})  = {ratio:6.2%} of full decode;  "
                f"peak RSS {_mib(got['peak_rss'])} (+{_mib(got['growth']).strip()} for the read)"
            )
            if video is long and n == 10 and args.minutes >= 60:
                ok = ratio <= 0.05 and got["peak_rss"] < 2**30
                failed += [] if ok else [f"{label} N=10"]
                print(
                    f"  target N=10 <= 5% of full decode, peak < 1 GiB: {'met' if ok else 'MISSED'}"
                )
            if video is short and n == 1:
                share = got["seconds"] / model["seconds"]
                ok = share <= 0.10
                failed += [] if ok else [f"{label} N=1 vs model"]
                print(
                    f"  decode+preprocess of one clip = {share:.1%} of the model's time for it "
                    f"(target <= 10%: {'met' if ok else 'MISSED'})"
                )
    if failed:
        print(f"\ntargets missed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
