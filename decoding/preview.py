"""A small preview a browser plays: H.264 in MP4 (the index at the front: faststart),
its short side at most 480 pixels, the source's frame times kept, upright.

One pass, a frame at a time: memory stays that of the decoder and the encoder's
look-ahead whatever the length, and a deadline stops a pass that takes too long. The
picture only: the preview is for seeing what happens, the original keeps its sound.
"""

from __future__ import annotations

import heapq
import os
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from decoding.frames import clockwise

SHORT_SIDE = 480
# 90 kHz: MP4's usual video clock, fine enough for any source's frame times.
TIME_BASE = Fraction(1, 90_000)
ENCODER_OPTIONS = {"preset": "veryfast", "crf": "28"}
# Frames held back to put a decoder's out-of-order output in time order.
REORDER_FRAMES = 8


class PreviewError(Exception):
    """The preview could not be made; ``str`` says why."""


@dataclass(frozen=True)
class PreviewInfo:
    width: int
    height: int
    frames: int
    duration: float  # seconds, first frame to the end of the last


def preview_size(width: int, height: int, rotation: int = 0) -> tuple[int, int]:
    """The preview's (width, height) for a source frame of ``width`` x ``height`` turned
    ``rotation`` degrees clockwise: the short side at most :data:`SHORT_SIDE`, both even (H.264's 4:2:0 halves them)."""
    if rotation in (90, 270):
        width, height = height, width
    scale = min(1.0, SHORT_SIDE / min(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def write_preview(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, time_limit: float
) -> PreviewInfo:
    """Write the preview of the video at ``source`` to ``target`` (an .mp4); raises
    :class:`PreviewError` for a file that gives no frame, a failed encode, or a pass
    longer than ``time_limit`` seconds (``target`` is then incomplete: the caller
    removes it)."""
    deadline = time.monotonic() + time_limit
    try:
        with av.open(os.fspath(source)) as container:
            if not container.streams.video:
                raise PreviewError("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            with av.open(
                os.fspath(target), "w", format="mp4", options={"movflags": "+faststart"}
            ) as out:
                return _transcode(container, stream, out, deadline, time_limit)
    except av.FFmpegError as exc:
        raise PreviewError(f"FFmpeg: {exc}") from None
    except OSError as exc:
        raise PreviewError(str(exc)) from None


def _transcode(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    out: av.container.OutputContainer,
    deadline: float,
    time_limit: float,
) -> PreviewInfo:
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    encoder: av.video.stream.VideoStream | None = None
    size = (0, 0)
    # Frames in time order: some files' decoders give them out of order (B-frames the
    # muxer did not declare); a few held back, already small, are put right.
    waiting: list[tuple[float, int, av.VideoFrame]] = []
    last_pts, frames, first, end = -1, 0, None, 0.0

    def encode(seconds: float, picture: av.VideoFrame) -> None:
        nonlocal last_pts, frames, first, end
        if first is None:
            first = seconds
        pts = round((seconds - first) / TIME_BASE)
        if pts <= last_pts:  # a repeated time: the player keeps the earlier frame
            return
        picture.pts, picture.time_base = pts, TIME_BASE
        out.mux(encoder.encode(picture))
        last_pts, frames = pts, frames + 1
        end = seconds - first + float(1 / rate)

    for index, frame in enumerate(_decoded(container, stream)):
        if time.monotonic() > deadline:
            raise PreviewError(f"making it took longer than {time_limit:g} s")
        rotation = clockwise(frame.rotation)
        if encoder is None:
            size = preview_size(frame.width, frame.height, rotation)
            encoder = _encoder(out, size, rate)
        heapq.heappush(
            waiting, (_seconds(frame, index, rate), index, _upright(frame, rotation, size))
        )
        if len(waiting) > REORDER_FRAMES:
            seconds, _, picture = heapq.heappop(waiting)
            encode(seconds, picture)
    if encoder is None:
        raise PreviewError("no frame decodes")
    while waiting:
        seconds, _, picture = heapq.heappop(waiting)
        encode(seconds, picture)
    out.mux(encoder.encode(None))
    return PreviewInfo(size[0], size[1], frames, end)


def _decoded(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.container.InputContainer:
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue  # a damaged packet: the frames around it still make a preview


def _seconds(frame: av.VideoFrame, index: int, rate: Fraction) -> float:
    if frame.pts is None or frame.time_base is None:
        return float(index / rate)
    return float(frame.pts * frame.time_base)


def _encoder(
    out: av.container.OutputContainer, size: tuple[int, int], rate: Fraction
) -> av.video.stream.VideoStream:
    encoder = out.add_stream("libx264", rate=rate, options=dict(ENCODER_OPTIONS))
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.codec_context.time_base = TIME_BASE
    return encoder


def _upright(frame: av.VideoFrame, rotation: int, size: tuple[int, int]) -> av.VideoFrame:
    """``frame`` scaled to ``size`` (display orientation) in the encoder's format."""
    if not rotation:
        return frame.reformat(size[0], size[1], format="yuv420p")
    # Turned through RGB: rare (phone clips with a display rotation), and exact.
    width, height = size if rotation == 180 else (size[1], size[0])
    rgb = frame.to_ndarray(width=width, height=height, format="rgb24")
    turned = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))
    return av.VideoFrame.from_ndarray(turned, format="rgb24").reformat(format="yuv420p")
