"""One video -> its top-k actions and expert usage, with the model loaded once per process.

    predictor = Predictor("models/actiontag.pt", device="auto", top_k=5)
    result = predictor.predict("inbox/clip.mp4")   # VideoPrediction

Two stages, so that each can be replaced on its own:

- ``decode(path)``: probe, sample ``num_clips`` uniform clips, decode, centre-crop and
  normalise them with the checkpoint's own model.transform.VideoTransform (its clip
  length, frame stride, resize, crop, mean and std), so serving sees exactly what
  evaluation saw.
- ``infer(decoded)``: all clips of the video through an :class:`Engine` in ONE batch.
  A video's prediction is the mean of its clips' softmax; its expert usage is the mean
  of its clips' gate weights, with how many clips chose each expert (DESIGN.md).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from model.aggregate import aggregate_video
from model.checkpoint import Checkpoint, load_checkpoint
from model.transform import VideoTransform
from model.video import VideoInfo
from storage.thumbnails import encode_thumbnails
from worker.engines import AUTO_ORDER, FACTORIES, EagerEngine, Engine, EngineOutput
from worker.engines.auto import EngineFactory, choose
from worker.engines.base import EngineUnavailable

__all__ = [
    "AUTO_ENGINES",
    "DEFAULT_NUM_CLIPS",
    "ENGINES",
    "DecodedVideo",
    "EagerEngine",
    "Engine",
    "EngineOutput",
    "Predictor",
    "VideoPrediction",
    "configure_cpu_threads",
    "make_engine",
    "resolve_device",
]

log = logging.getLogger(__name__)

DEFAULT_NUM_CLIPS = 10


ENGINES: dict[str, EngineFactory] = dict(FACTORIES)
# What "auto" tries, per device type, fastest first (worker.engines).
AUTO_ENGINES: dict[str, tuple[str, ...]] = dict(AUTO_ORDER)


def make_engine(name: str, checkpoint: Checkpoint, device: torch.device) -> Engine:
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
class DecodedVideo:
    """A video's clips, ready for the network: float32 N x 3 x T x H x W.

    thumbnails: one JPEG per clip (its middle frame), taken from frames already decoded
    so the report never has to decode the video again.
    """

    path: str
    clips: torch.Tensor
    info: VideoInfo
    decode_ms: float
    thumbnails: list[bytes]


@dataclass(frozen=True)
class VideoPrediction:
    """One video's result.

    top: (label, confidence) pairs, most confident first.
    expert_usage: (mean gate weight, times chosen) per expert, in expert order; times
    chosen is the number of clips whose top-k experts include it.
    """

    top: list[tuple[str, float]]
    expert_usage: list[tuple[float, int]]
    info: VideoInfo
    num_clips: int
    decode_ms: float
    inference_ms: float
    thumbnails: list[bytes]


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
    ) -> None:
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(Path(checkpoint))
        num_clips = DEFAULT_NUM_CLIPS if num_clips is None else num_clips
        if num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {num_clips}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self.checkpoint_path = checkpoint.path
        self.sha256 = checkpoint.sha256
        self.config = checkpoint.config
        self.transform = VideoTransform.from_config(checkpoint.config)
        self.class_names = list(checkpoint.class_names)
        self.num_clips = num_clips
        self.top_k = min(top_k, len(self.class_names))
        if not isinstance(device, torch.device):
            device = resolve_device(device, slot)
        # The engine holds the weights now; the Checkpoint (and its copy) is not kept.
        self.engine = make_engine(engine, checkpoint, device)
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
        """Tag one video. Raises model.video.VideoError for a file that cannot be read."""
        return self.infer(self.decode(path))

    def decode(self, path: str | os.PathLike[str]) -> DecodedVideo:
        """The video's ``num_clips`` uniform clips, centre-cropped and normalised."""
        started = time.perf_counter()
        clips, info = self.transform.decode(path, num_clips=self.num_clips)
        batch = self.transform.to_tensor(clips)
        decode_ms = _ms_since(started)
        thumbnails = encode_thumbnails(clips[:, clips.shape[1] // 2])
        return DecodedVideo(info.path, batch, info, decode_ms, thumbnails)

    def infer(self, video: DecodedVideo) -> VideoPrediction:
        """All of ``video``'s clips through the engine in one batch, then averaged."""
        started = time.perf_counter()
        out = self.engine(video.clips)
        return self.summarize(video, out, _ms_since(started))

    def infer_many(self, videos: Sequence[DecodedVideo]) -> list[VideoPrediction]:
        """The clips of several videos through the engine in ONE batch (cross-video
        batching); each video's share of the forward time is in proportion to its clips."""
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
        """One video's result from its clips' engine output (DESIGN.md's model contract)."""
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
        return VideoPrediction(
            top=top,
            expert_usage=usage,
            info=video.info,
            num_clips=int(video.clips.shape[0]),
            decode_ms=video.decode_ms,
            inference_ms=inference_ms,
            thumbnails=video.thumbnails,
        )


def _unit(value: float) -> float:
    # Means of float32 probabilities can land a rounding step outside [0, 1].
    return min(1.0, max(0.0, float(value)))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
