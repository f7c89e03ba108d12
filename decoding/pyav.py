"""PyAV, the second decoder: for files OpenCV cannot decode, and for seeking.

A seek goes to the presentation timestamp of a keyframe taken from the frame index;
every frame decoded after it is then known by its own timestamp, so the frames
returned are the frames asked for even in variable-frame-rate files. PyAV does not
turn frames upright; decoding.frames applies the display rotation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import av
import av.container
import av.video.frame
import av.video.stream

from decoding.frames import ClipSink, clockwise, pyav_to_rgb
from decoding.index import FrameIndex, open_container
from decoding.plan import Stretch

# How many packets may fail to give a frame before a file is called undecodable.
_PROBE_PACKETS = 256


class TimestampsUnreliable(Exception):
    """Decoded timestamps do not follow display order, so seeking cannot find frames."""


class _Ended(enum.Enum):
    DONE = enum.auto()
    LANDED_LATE = enum.auto()  # the seek went past the first wanted frame


def _frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.video.frame.VideoFrame]:
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue  # a damaged packet loses its frame; the next keyframe recovers
            yield from frames
    except av.FFmpegError:
        return  # a damaged container ends the stream where the damage starts


def _open_stream(
    path: str, stream_index: int
) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    container = open_container(path)
    stream = container.streams[stream_index]
    stream.thread_type = "AUTO"
    return container, stream


def first_frame(path: str, stream_index: int) -> tuple[int, int, int, int] | None:
    """(width, height, clockwise rotation, packets read) of the first frame PyAV
    decodes, before rotation; None when the first packets give no frame."""
    container, stream = _open_stream(path, stream_index)
    with container:
        packets = 0
        try:
            for packet in container.demux(stream):
                packets += 1
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    frames = []
                if frames:
                    frame = frames[0]
                    return frame.width, frame.height, clockwise(frame.rotation), packets
                if packets >= _PROBE_PACKETS:
                    return None
        except av.FFmpegError:
            return None
    return None


def read_forward(path: str, stream_index: int, last: int, sink: ClipSink, rotation: int) -> int:
    """Decode frames 0..``last`` in output order, counting them as OpenCV does.

    Returns how many frames were decoded: ``last + 1``, or fewer when the stream ends.
    """
    container, stream = _open_stream(path, stream_index)
    with container:
        rank = -1
        for rank, frame in enumerate(_frames(container, stream)):
            if sink.wants(rank):
                sink.put(rank, pyav_to_rgb(frame, sink.size, rotation))
            if rank == last:
                break
        return rank + 1


def read_stretches(
    path: str, index: FrameIndex, stretches: list[Stretch], sink: ClipSink, rotation: int
) -> tuple[int, int]:
    """Seek to each stretch's keyframe and decode to its last wanted frame.

    Returns (frames decoded, seeks made). Raises TimestampsUnreliable when the decoded
    timestamps cannot be matched to the index.
    """
    container, stream = _open_stream(path, index.stream_index)
    decoded = seeks = 0
    with container:
        at_start = True
        for stretch in stretches:
            key: int | None = stretch.key_rank
            while key is not None:
                if not (at_start and key == 0):
                    container.seek(int(index.pts[key]), stream=stream, backward=True)
                    seeks += 1
                at_start = False
                ended, count = _decode_stretch(container, stream, index, stretch, sink, rotation)
                decoded += count
                if ended is _Ended.DONE:
                    break
                # Some demuxers land on a later keyframe than the one asked for.
                key = index.keyframe_before(key)
            if key is None:
                raise TimestampsUnreliable(f"no seek lands before frame {stretch.first}")
    return decoded, seeks


def _decode_stretch(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: FrameIndex,
    stretch: Stretch,
    sink: ClipSink,
    rotation: int,
) -> tuple[_Ended, int]:
    previous = -1
    count = 0
    for frame in _frames(container, stream):
        count += 1
        rank = index.rank_of(frame.pts)
        if rank is None or rank <= previous:
            raise TimestampsUnreliable(
                f"decoded timestamp {frame.pts} is not the next frame after {previous}"
            )
        if previous < 0 and rank > stretch.first:
            return _Ended.LANDED_LATE, count
        previous = rank
        if sink.wants(rank):
            sink.put(rank, pyav_to_rgb(frame, sink.size, rotation))
        if rank >= stretch.last:
            break
    return _Ended.DONE, count
