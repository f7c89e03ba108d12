"""One video -> its top-k actions, expert usage and timeline, with the model loaded once
per process.

    predictor = Predictor("models/actiontag.pt", device="auto", top_k=5)
    result = predictor.predict("inbox/clip.mp4")   # VideoPrediction

A video is scored on windows (timeline.windows): one clip of the checkpoint's clip length x
frame stride every ``window_every`` seconds, at most ``max_windows`` (then spread evenly
over the whole video), at least ``num_clips`` (then the evaluation's uniform clips, so a
short video is never judged on fewer clips than evaluation uses). Three stages:

- ``plan(path)``: probe, read the frame timestamps, place the windows, and choose a
  front-to-back decode or seeking by their density (timeline.windows.choose_decode).
- ``score(plan)``: the windows decode in a background thread (decoding.stream),
  centre-cropped and normalised with the checkpoint's own model.transform.VideoTransform,
  and go through an :class:`Engine` ``chunk`` at a time while the next ones decode, so
  memory stays bounded whatever the length. A front-to-back decode also feeds the shot
  detector (timeline.shots.ShotFeed, ``shot_detector``: the cheap ``histogram``, the
  default, or the learned ``transnetv2``); sparse windows get the boundaries from a pass of their own.
- the result: the video's top-k is the mean of all its windows' softmax and its expert
  usage the mean of their gate weights with how many windows chose each expert
  (DESIGN.md); the timeline (worker.timelines) holds the windows, the segments and the
  cuts. Short videos can instead be decoded whole (``decode``) and batched with others
  (``infer_many``, worker.batching): the same numbers.

An engine is anything callable as ``engine(batch) -> EngineOutput``; engines are made
by name from :data:`ENGINES` (``ACTIONTAG_ENGINE``): ``eager`` (fp32 PyTorch, the
reference), ``bf16`` (autocast + channels_last_3d; the CUDA engine), ``openvino`` and
``openvino-fp32`` (the network exported once per checkpoint and cached on disk). ``auto``
is the fastest one that runs here and agrees with eager on the checkpoint; see
worker.engines for the engines, the cache and the agreement check.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from actiontag.thumbnails import encode_thumbnails
from decoding.index import DEFAULT_MAX_FRAMES
from decoding.stream import stream_clips
from decoding.video import VideoError, VideoInfo, frame_index, probe
from model.aggregate import aggregate_video
from model.checkpoint import Checkpoint, load_checkpoint
from model.transform import VideoTransform
from timeline.shots import ShotFeed, detect_boundaries_in_file
from timeline.values import Cut, Timeline
from timeline.windows import (
    DEFAULT_EVERY_S,
    DEFAULT_MAX_WINDOWS,
    FrameTimes,
    WindowPlan,
    choose_decode,
    place_windows,
)
from worker.engines import AUTO_ORDER, FACTORIES, EagerEngine, Engine, EngineOutput
from worker.engines.auto import EngineFactory, choose
from worker.engines.base import EngineUnavailable
from worker.engines.cache import CacheEntry
from worker.timelines import build_timeline, strip_picks

__all__ = [
    "AUTO_ENGINES",
    "DEFAULT_NUM_CLIPS",
    "ENGINES",
    "DecodedVideo",
    "EagerEngine",
    "Engine",
    "EngineOutput",
    "Predictor",
    "VideoPlan",
    "VideoPrediction",
    "configure_cpu_threads",
    "make_inference_engine",
    "resolve_device",
]

log = logging.getLogger(__name__)

DEFAULT_NUM_CLIPS = 10
# Windows per forward pass when streaming a video: the CPU engines' cost per clip is flat
# from batch 1 (worker.batching), so a small chunk keeps memory low at no cost.
DEFAULT_CHUNK = 16


ENGINES: dict[str, EngineFactory] = dict(FACTORIES)
# What "auto" tries, per device type, fastest first (worker.engines).
AUTO_ENGINES: dict[str, tuple[str, ...]] = dict(AUTO_ORDER)


def make_inference_engine(name: str, checkpoint: Checkpoint, device: torch.device) -> Engine:
    """The engine registered as ``name`` for ``checkpoint`` on ``device``.

    "auto": the first of :data:`AUTO_ENGINES` for the device that can run here and agrees
    with fp32 eager on this checkpoint (worker.engines.auto). A named engine is used as it
    is; one that cannot run here raises ValueError saying why.
    """
    if name == "auto":
        return choose(AUTO_ENGINES.get(device.type, ("eager",)), ENGINES, checkpoint, device)
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown inference engine {name!r}; choose auto or one of {sorted(ENGINES)} "
            "(ACTIONTAG_ENGINE or --engine)"
        ) from None
    try:
        return factory(checkpoint, device)
    except EngineUnavailable as why:
        raise ValueError(
            f"inference engine {name!r} cannot run here: {why}. Choose auto (the fastest that "
            "can) or another of " + ", ".join(sorted(ENGINES))
        ) from why


def resolve_device(device: str = "auto", slot: int = 0) -> torch.device:
    """The torch device for ``device`` ("auto", "cpu", "cuda", "cuda:N").

    "auto" is CUDA when there is a GPU, else the CPU. "auto" and "cuda" pick GPU
    ``slot % count``, so pool process ``slot`` of a worker with one process per GPU gets
    its own GPU. Call only in the process that will run the model: asking CUDA
    initialises it, and a process that forks after that cannot use CUDA in its children.
    """
    if device == "cpu":
        return torch.device("cpu")
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not torch.cuda.is_available():
        if device == "auto":
            return torch.device("cpu")
        raise ValueError(
            f"device {device!r} asks for CUDA but torch sees no GPU here; "
            "use --device cpu (ACTIONTAG_DEVICE=cpu) or check the driver"
        )
    if device.startswith("cuda:"):
        return torch.device(device)
    return torch.device("cuda", slot % torch.cuda.device_count())


def configure_cpu_threads(processes: int = 1) -> int:
    """Give torch this process's share of the CPU cores it may run on; the count set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // max(1, processes))
    torch.set_num_threads(threads)
    return threads


@dataclass(frozen=True)
class VideoPlan:
    """A probed video and the windows it will be scored on (timeline.windows).

    ``times``: each frame's time in seconds (the container's timestamps, read from the
    frame index as they are asked for); ``sequential``: the windows are dense enough to
    decode front to back (``choose_decode``), so the shot detector can be fed the same
    frames.
    """

    info: VideoInfo
    times: FrameTimes
    windows: WindowPlan
    sequential: bool


@dataclass(frozen=True)
class DecodedVideo:
    """A video's windows, ready for the network: float32 N x 3 x T x H x W.

    thumbnails: one JPEG per window (its middle frame), taken from frames already
    decoded so the report never has to decode the video again; cuts: its shot cuts.
    """

    path: str
    clips: torch.Tensor
    info: VideoInfo
    decode_ms: float
    thumbnails: list[bytes]
    plan: VideoPlan
    cuts: tuple[Cut, ...]


@dataclass(frozen=True)
class VideoPrediction:
    """One video's result.

    top: (label, confidence) pairs, most confident first: the mean over all windows.
    expert_usage: (mean gate weight, times chosen) per expert, in expert order; times
    chosen is the number of windows whose top-k experts include it.
    num_clips: the windows scored. thumbnails: the report's strip, ``num_clips`` at most,
    spread over the video. timeline: the windows, segments and shot cuts.
    decode_ms: time spent decoding, preparing frames and finding shot cuts that the
    model did not run alongside; inference_ms: the engine's time.
    """

    top: list[tuple[str, float]]
    expert_usage: list[tuple[float, int]]
    info: VideoInfo
    num_clips: int
    decode_ms: float
    inference_ms: float
    thumbnails: list[bytes]
    timeline: Timeline


class Predictor:
    """A checkpoint's network, ready to tag videos (load it once per process)."""

    def __init__(
        self,
        checkpoint: Checkpoint | str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        num_clips: int | None = None,
        top_k: int = 5,
        engine: str = "auto",
        slot: int = 0,
        window_every: float = DEFAULT_EVERY_S,
        max_windows: int = DEFAULT_MAX_WINDOWS,
        chunk: int = DEFAULT_CHUNK,
        max_frames: int = DEFAULT_MAX_FRAMES,
        shot_detector: str = "histogram",
    ) -> None:
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(Path(checkpoint))
        num_clips = DEFAULT_NUM_CLIPS if num_clips is None else num_clips
        if num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {num_clips}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if max_windows < num_clips:
            raise ValueError(
                f"max_windows ({max_windows}) must be at least num_clips ({num_clips}): a "
                "video is never scored on fewer windows than the evaluation's clips"
            )
        if not window_every > 0:
            raise ValueError(
                f"window_every must be a positive number of seconds, got {window_every}"
            )
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self.checkpoint_path = checkpoint.path
        self.sha256 = checkpoint.sha256
        self.config = checkpoint.config
        self.transform = VideoTransform.from_config(checkpoint.config)
        self.class_names = list(checkpoint.class_names)
        self.num_clips = num_clips
        self.top_k = min(top_k, len(self.class_names))
        self.window_every = float(window_every)
        self.max_windows = max_windows
        self.chunk = chunk
        self.max_frames = max_frames
        self.shot_detector = shot_detector
        self._shot_store = ShotExportStore(Path(checkpoint.path))
        if not isinstance(device, torch.device):
            device = resolve_device(device, slot)
        # The engine holds the weights now; the Checkpoint (and its copy) is not kept.
        self.engine = make_inference_engine(engine, checkpoint, device)
        log.info(
            "loaded %s (sha256 %s…, %d classes, %d experts) on %s, engine %s",
            checkpoint.path,
            checkpoint.sha256[:12],
            len(self.class_names),
            self.config.num_experts,
            device,
            self.engine.name,
        )

    def predict(self, path: str | os.PathLike[str]) -> VideoPrediction:
        """Tag one video: every window, streamed through the engine ``chunk`` at a time
        while the next ones decode. Raises decoding.video.VideoError for a file that cannot
        be read."""
        return self.score(self.plan(path))

    def plan(self, path: str | os.PathLike[str]) -> VideoPlan:
        """Probe ``path`` and place its windows (timeline.windows): every ``window_every``
        seconds, at most ``max_windows``, at least ``num_clips`` (then the evaluation's
        uniform clips). A stream of more than ``max_frames`` frames is refused while it is
        indexed (VideoError): the index's memory follows the frame count."""
        info = probe(path, max_frames=self.max_frames)
        index = frame_index(info.path)
        try:
            # The index's own timestamps, and its end: a one-frame video lasts one frame.
            times = FrameTimes.of_index(index)
        except ValueError as why:
            raise VideoError(info.path, str(why)) from None
        windows = place_windows(
            times,
            clip_len=self.transform.clip_len,
            frame_stride=self.transform.frame_stride,
            every_s=self.window_every,
            max_windows=self.max_windows,
            min_windows=self.num_clips,
        )
        return VideoPlan(info, times, windows, choose_decode(windows, index).sequential)

    def score(self, plan: VideoPlan, *, chunk: int | None = None) -> VideoPrediction:
        """All of ``plan``'s windows through the engine, ``chunk`` at a time (memory stays
        bounded whatever the video's length), then the video's result and timeline."""
        outputs: list[EngineOutput] = []
        thumbnails: list[bytes] = []
        decode_ms = inference_ms = 0.0
        feed = self._shot_feed(plan)
        started = time.perf_counter()
        for _, clips in self._stream(plan, chunk or self.chunk, feed):
            thumbnails += _middle_frames(clips)
            batch = self.transform.to_tensor(clips)
            ready = time.perf_counter()
            decode_ms += (ready - started) * 1000.0
            outputs.append(_on_cpu(self.engine(batch)))
            started = time.perf_counter()
            inference_ms += (started - ready) * 1000.0
        cuts_started = time.perf_counter()
        cuts = self._cuts(plan, feed)
        decode_ms += _ms_since(cuts_started)
        out = EngineOutput(
            *(torch.cat(parts) for parts in zip(*map(_fields, outputs), strict=True))
        )
        return self._summarize(plan, out, thumbnails, cuts, decode_ms, inference_ms)

    def decode(self, path: str | os.PathLike[str] | VideoPlan) -> DecodedVideo:
        """All the video's windows at once, centre-cropped and normalised (for a short
        video batched with others; ``score`` streams a long one)."""
        started = time.perf_counter()
        plan = path if isinstance(path, VideoPlan) else self.plan(path)
        feed = self._shot_feed(plan)
        clips = np.concatenate([c for _, c in self._stream(plan, self.chunk, feed)])
        thumbnails = _middle_frames(clips)
        batch = self.transform.to_tensor(clips)
        cuts = self._cuts(plan, feed)
        return DecodedVideo(
            plan.info.path, batch, plan.info, _ms_since(started), thumbnails, plan, cuts
        )

    def infer(self, video: DecodedVideo) -> VideoPrediction:
        """All of ``video``'s windows through the engine in one batch, then averaged."""
        started = time.perf_counter()
        out = self.engine(video.clips)
        return self.summarize(video, out, _ms_since(started))

    def infer_many(self, videos: Sequence[DecodedVideo]) -> list[VideoPrediction]:
        """The windows of several videos through the engine in ONE batch (cross-video
        batching); each video's share of the forward time is in proportion to its windows."""
        if len(videos) == 1:
            return [self.infer(videos[0])]
        counts = [int(v.clips.shape[0]) for v in videos]
        started = time.perf_counter()
        out = self.engine(torch.cat([v.clips for v in videos]))
        elapsed = _ms_since(started)
        parts = zip(
            out.probs.split(counts), out.gates.split(counts), out.indices.split(counts), strict=True
        )
        return [
            self.summarize(video, EngineOutput(*part), elapsed * n / sum(counts))
            for video, n, part in zip(videos, counts, parts, strict=True)
        ]

    def summarize(
        self, video: DecodedVideo, out: EngineOutput, inference_ms: float
    ) -> VideoPrediction:
        """One video's result from its windows' engine output (DESIGN.md's model contract)."""
        return self._summarize(
            video.plan, _on_cpu(out), video.thumbnails, video.cuts, video.decode_ms, inference_ms
        )

    def _summarize(
        self,
        plan: VideoPlan,
        out: EngineOutput,
        thumbnails: list[bytes],
        cuts: tuple[Cut, ...],
        decode_ms: float,
        inference_ms: float,
    ) -> VideoPrediction:
        scores = aggregate_video(out.probs, out.gates, out.indices)
        confidences, labels = scores.probs.topk(self.top_k)
        top = [
            (self.class_names[label], _unit(confidence))
            for confidence, label in zip(confidences.tolist(), labels.tolist(), strict=True)
        ]
        usage = [
            (_unit(mean), int(n))
            for mean, n in zip(scores.gates.tolist(), scores.chosen.tolist(), strict=True)
        ]
        timeline = build_timeline(
            plan.windows,
            out.probs.float().numpy(),
            thumbnails,
            cuts,
            self.class_names,
            top_k=self.top_k,
        )
        return VideoPrediction(
            top=top,
            expert_usage=usage,
            info=plan.info,
            num_clips=int(out.probs.shape[0]),
            decode_ms=decode_ms,
            inference_ms=inference_ms,
            thumbnails=[thumbnails[i] for i in strip_picks(len(thumbnails), self.num_clips)],
            timeline=timeline,
        )

    def _stream(
        self, plan: VideoPlan, chunk: int, feed: ShotFeed | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        return stream_clips(
            plan.info,
            plan.windows.starts,
            clip_len=self.transform.clip_len,
            stride=self.transform.frame_stride,
            short_side=self.transform.short_side,
            chunk=chunk,
            watch=feed,
        )

    def _shot_feed(self, plan: VideoPlan) -> ShotFeed | None:
        """A shot detector fed the windows' own decode, when that decode runs front to
        back (timeline.shots: far cheaper than a pass of its own)."""
        if not plan.sequential:
            return None
        fps = plan.info.fps if plan.info.fps > 0 else 25.0
        return ShotFeed(plan.times, fps, self.shot_detector, store=self._shot_store)

    def _cuts(self, plan: VideoPlan, feed: ShotFeed | None) -> tuple[Cut, ...]:
        """The shot cuts: from the frames fed, when the decode showed the feed every
        frame up to the last a window reads; else from a pass of its own over the file.
        A file PyAV cannot read for that pass gets no cuts (logged): they only place
        segment boundaries more precisely."""
        last = int((plan.windows.frames() % plan.info.frames).max())
        if feed is not None and feed.saw_up_to(last):
            return feed.finish()
        try:
            return detect_boundaries_in_file(
                plan.info.path,
                short_side=self.transform.short_side,
                detector=self.shot_detector,
                store=self._shot_store,
            )
        except (VideoError, av.FFmpegError, OSError) as why:
            log.warning("%r: no shot cuts, a pass over the file failed: %s", plan.info.path, why)
            return ()


@dataclass(frozen=True)
class ShotExportStore:
    """The learned shot detector's export kept in the engine cache of the checkpoint
    (worker.engines.cache; timeline.transnet.ModelStore)."""

    checkpoint_path: Path

    def __call__(
        self, name: str, sha256: str, key: dict[str, Any], build: Callable[[Path], dict[str, Any]]
    ) -> Path | None:
        built = CacheEntry(self.checkpoint_path, sha256, name, key).get_or_build(build)
        return None if built is None else built[0] / built[1]["file"]


def _middle_frames(clips: np.ndarray) -> list[bytes]:
    """One thumbnail per clip: its middle frame."""
    return encode_thumbnails(clips[:, clips.shape[1] // 2])


def _fields(out: EngineOutput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return out.probs, out.gates, out.indices


def _on_cpu(out: EngineOutput) -> EngineOutput:
    return EngineOutput(out.probs.cpu(), out.gates.cpu(), out.indices.cpu())


def _unit(value: float) -> float:
    # Means of float32 probabilities can land a rounding step outside [0, 1].
    return min(1.0, max(0.0, float(value)))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
