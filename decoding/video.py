"""The video -> clips contract: one code path for the trainer and the worker.

    info = probe(path)                                    # frames counted, not trusted
    starts = clip_starts(info.frames, 16, num_clips=10)   # uniform (eval, serving)
    clips = read_clips(path, starts, 16, info=info)       # uint8 N x T x H x W x 3, RGB

The numbers (clip length, stride, short side) are a model's: take them from its
checkpoint through model.transform.VideoTransform, which calls these three with its
config's values and turns the clips into the network's tensor. Decoding stays free of
torch, so what only reads videos does not load it.

How a file is read
------------------
``probe`` indexes the video stream with one demux pass (decoding.index): the
number of frames is the number of packets that carry a frame, never a header's
claim, and every frame's timestamp is kept for seeking. It then asks OpenCV for
the first frame; if OpenCV cannot give one (AV1, for one), PyAV is the backend.

``read_clips`` decodes only what the clips need. Frame ``i`` is the ``i``-th frame a
front-to-back decode yields. When the wanted frames are sparse in a long video,
PyAV seeks to the keyframe before each group of them and decodes forward to them
(decoding.plan, decoding.pyav); otherwise the backend decodes from the start,
OpenCV with ``grab()`` so that unwanted frames are never converted. Each frame is
converted to RGB and shrunk to ``short_side`` as soon as it is decoded. When decoded
timestamps turn out not to follow display order (box.mp4 labels B-frames with their
decode times), the file is read front to back from then on. When a file yields fewer
frames than indexed (a damaged tail), frame numbers wrap at the number that decodes.

Rotation: ``VideoInfo.rotation`` is the clockwise turn the file's display matrix
asks for (OpenCV's CAP_PROP_ORIENTATION_META). OpenCV applies it itself; PyAV's
frames are turned by decoding.frames, so both backends return the same picture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from decoding import opencv, pyav
from decoding.errors import VideoError
from decoding.frames import ClipSink, output_size
from decoding.index import INDEXES, FrameIndex, index_file
from decoding.plan import plan, seeking_pays

__all__ = [
    "VideoError",
    "VideoInfo",
    "clip_starts",
    "decode_into",
    "frame_index",
    "probe",
    "read_clips",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` found. ``frames`` were counted, not read from a header;
    ``width`` and ``height`` are as displayed (after ``rotation``); ``fps`` is the
    average rate of the frames that are there; ``backend`` is "opencv" or "pyav"."""

    path: str
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    rotation: int
    backend: str


def probe(path: str | os.PathLike[str], *, max_frames: int | None = None) -> VideoInfo:
    """Index ``path``'s video stream and choose the decoder that reads it.

    Raises VideoError for a file that is missing, empty, not a video, audio only
    (cover art included), without frames, with more than ``max_frames`` frames (None:
    no cap; the index keeps 8 bytes a frame), or whose frames neither decoder can decode.
    """
    path = _readable_file(path)
    index = index_file(path, max_frames)
    backend, width, height, rotation = _choose_backend(path, index)
    INDEXES.put(path, index)
    info = VideoInfo(
        path=path,
        frames=index.frames,
        fps=index.fps(),
        width=width,
        height=height,
        duration=index.duration(),
        rotation=rotation,
        backend=backend,
    )
    log.debug("probed %s: %s", path, info)
    return info


def _readable_file(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError(path, "the file does not exist")
    if os.path.isdir(path):
        raise VideoError(path, "it is a directory, not a file")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "the file is empty (0 bytes)")
    return path


def _choose_backend(path: str, index: FrameIndex) -> tuple[str, int, int, int]:
    """("opencv" | "pyav", displayed width, displayed height, clockwise rotation)."""
    # OpenCV reads the container's first video stream; when that one is cover art
    # or a still, only PyAV can be pointed at the real video.
    if index.first_video_stream:
        opened = opencv.first_frame(path)
        if opened is not None:
            return ("opencv", *opened)
    decoded = pyav.first_frame(path, index.stream_index)
    if decoded is None:
        raise VideoError(path, f"neither OpenCV nor PyAV can decode its {index.codec} video")
    width, height, rotation, _ = decoded
    if rotation in (90, 270):
        width, height = height, width
    return "pyav", width, height, rotation


def clip_starts(
    num_frames: int,
    clip_len: int,
    num_clips: int,
    *,
    stride: int = 1,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """First frame of each clip, ascending.

    With ``rng`` (training) the starts are drawn uniformly at random; without it
    (evaluation, serving) they are the centres of ``num_clips`` equal segments of the
    possible starts, so one clip is the middle of the video and several cover it
    evenly. A video shorter than a clip gives start 0: ``read_clips`` loops it.
    """
    for name, value in (("num_frames", num_frames), ("clip_len", clip_len)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    span = (clip_len - 1) * stride + 1
    last_start = num_frames - span
    if last_start <= 0:
        return [0] * num_clips
    if rng is not None:
        return sorted(rng.integers(0, last_start + 1, size=num_clips).tolist())
    return [(last_start * (2 * i + 1)) // (2 * num_clips) for i in range(num_clips)]


def read_clips(
    path: str | os.PathLike[str],
    starts: Sequence[int],
    clip_len: int,
    *,
    stride: int = 1,
    short_side: int = 128,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """Decode the clips that start at ``starts``: uint8, N x T x H x W x 3, RGB,
    shorter side ``short_side``. Clip ``n`` holds frames ``starts[n] + t * stride``
    for t < ``clip_len``, wrapping at the number of frames (a short video loops).

    Pass the ``info`` from ``probe`` to skip probing again. Raises VideoError for a
    file that cannot be read.
    """
    if len(starts) == 0:
        raise ValueError("starts is empty: ask for at least one clip")
    if clip_len < 1 or stride < 1 or short_side < 1:
        raise ValueError(
            f"clip_len, stride and short_side must be positive, got {clip_len}, {stride}, {short_side}"
        )
    path = _readable_file(path)
    if info is None:
        info = probe(path)
    index = frame_index(path)
    size = output_size(info.width, info.height, short_side)
    offsets = np.arange(clip_len, dtype=np.int64) * stride
    frames = info.frames
    # A second round only when the file decodes fewer frames than were indexed.
    for _ in range(2):
        ranks = (np.asarray(starts, dtype=np.int64)[:, None] + offsets) % frames
        sink = ClipSink(ranks, size)
        decoded = decode_into(path, info, index, sink)
        if decoded is None:
            return sink.out.reshape(len(starts), clip_len, size[1], size[0], 3)
        if decoded == 0:
            raise VideoError(path, "no frame of its video decodes")
        log.warning(
            "%s: %d frames indexed but only %d decode; frame numbers wrap at %d",
            path,
            frames,
            decoded,
            decoded,
        )
        frames = decoded
    raise VideoError(path, "decoding stops at a different frame on every pass")


def frame_index(path: str) -> FrameIndex:
    """``path``'s frame index, from the cache ``probe`` filled or made again."""
    index = INDEXES.get(path)
    if index is None:
        # Probed in another process (a DataLoader worker, say): index it here.
        index = index_file(path)
        INDEXES.put(path, index)
    return index


def decode_into(path: str, info: VideoInfo, index: FrameIndex, sink: ClipSink) -> int | None:
    """Fill ``sink`` with the frames it wants from ``path``: seeking where that pays,
    else front to back. Returns None when done, else how many frames the file really has.
    (decoding.stream fills a sink of its own that hands clips on as they complete.)"""
    last = int(sink.wanted[-1])
    if index.seekable:
        stretches = plan(sink.wanted, index)
        if info.backend == "pyav" or seeking_pays(stretches, last):
            try:
                decoded, seeks = pyav.read_stretches(path, index, stretches, sink, info.rotation)
            except pyav.TimestampsUnreliable as why:
                index.seekable = False
                log.info("%s: %s; reading it front to back from now on", path, why)
            else:
                log.debug(
                    "%s: %d frames wanted, %d decoded with %d seeks (pyav)",
                    path,
                    sink.wanted.size,
                    decoded,
                    seeks,
                )
                if not sink.missing():
                    return None
                log.info("%s: frames %s did not decode after seeking", path, sink.missing()[:8])
            sink.clear()
    if info.backend == "opencv":
        decoded = opencv.read_forward(path, last, sink)
    else:
        decoded = pyav.read_forward(path, index.stream_index, last, sink, info.rotation)
    log.debug(
        "%s: %d frames wanted, %d decoded front to back (%s)",
        path,
        sink.wanted.size,
        decoded,
        info.backend,
    )
    return None if decoded > last else decoded
