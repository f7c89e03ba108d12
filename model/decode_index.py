"""The frame index of a video stream, built by one demux pass that decodes nothing.

Container headers cannot be trusted for the number of frames: an AVI index may list
empty chunks (tree.avi: 444 entries, 68 frames), an MP4 may carry a sample its edit
list discards (box.mp4: 456 samples, 455 frames), a WebM may have no duration at all,
and a truncated file still claims what it used to hold. Reading every packet header
of the chosen stream is exact about all of these and still cheap: it costs about 3 µs
a packet (0.3 s for an hour at 30 fps, about 2% of decoding that hour at 320x240 and
far less at higher resolutions), because no frame is decoded.

The same pass gives what seeking needs: the presentation timestamp of every frame,
sorted, so that frame ``i`` is the frame with the ``i``-th smallest timestamp, and
the ranks of the keyframes a seek can land on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.stream
import av.video.stream
import numpy as np

from model.decode_errors import VideoError

log = logging.getLogger(__name__)

# FFmpeg demuxers that read single still images; a picture is not a video.
_STILL_IMAGE_FORMATS = ("image2",)
_NOT_VIDEO = av.stream.Disposition.attached_pic | av.stream.Disposition.still_image


@dataclass
class FrameIndex:
    """What one demux pass learned about a video stream."""

    stream_index: int  # index of the video stream among all the container's streams
    first_video_stream: bool  # OpenCV reads the first video stream; is it this one?
    codec: str
    frames: int  # packets that carry a frame: not empty, not discarded by an edit list
    time_base: Fraction
    pts: np.ndarray | None  # sorted presentation timestamps, one per frame
    key_ranks: np.ndarray  # ranks (positions in ``pts``) of the keyframes, ascending
    nominal_rate: Fraction | None  # the container's frame rate, for files without timestamps
    # Cleared when decoding shows timestamps that are missing, repeated or out of
    # display order; then frames are only identified by counting from the start.
    seekable: bool = True

    def rank_of(self, pts: int | None) -> int | None:
        """The frame number of the frame with this timestamp, or None if no frame has it."""
        if pts is None or self.pts is None:
            return None
        rank = int(np.searchsorted(self.pts, pts))
        if rank < self.frames and self.pts[rank] == pts:
            return rank
        return None

    def keyframe_at_or_before(self, rank: int) -> int:
        """Rank of the last keyframe at or before ``rank`` (0 when there is none)."""
        pos = int(np.searchsorted(self.key_ranks, rank, side="right")) - 1
        return int(self.key_ranks[pos]) if pos >= 0 else 0

    def keyframe_before(self, key_rank: int) -> int | None:
        """Rank of the keyframe before the keyframe ``key_rank``, or None if it is the first."""
        pos = int(np.searchsorted(self.key_ranks, key_rank, side="left")) - 1
        return int(self.key_ranks[pos]) if pos >= 0 else None

    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        if self.pts is not None and self.frames > 1:
            span = float((int(self.pts[-1]) - int(self.pts[0])) * self.time_base)
            # The last frame lasts as long as the average frame before it.
            return span * self.frames / (self.frames - 1)
        if self.nominal_rate:
            return self.frames / float(self.nominal_rate)
        return 0.0

    def fps(self) -> float:
        """Average frames per second over the frames that are really there."""
        seconds = self.duration()
        if seconds > 0:
            return self.frames / seconds
        return float(self.nominal_rate) if self.nominal_rate else 0.0


def open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` with PyAV, turning FFmpeg's refusal into a VideoError."""
    try:
        return av.open(path, metadata_errors="ignore")
    except av.FFmpegError as error:
        reason = (
            f"FFmpeg cannot open it ({error.strerror}): it is damaged, truncated or not a video"
        )
        raise VideoError(path, reason) from error


def select_video_stream(
    container: av.container.InputContainer, path: str
) -> av.video.stream.VideoStream:
    """The first stream that is a moving picture: cover art and stills do not count."""
    fmt = container.format.name
    if fmt in _STILL_IMAGE_FORMATS or fmt.endswith("_pipe"):
        raise VideoError(path, f"it is a still image ({fmt}), not a video")
    videos = list(container.streams.video)
    for stream in videos:
        if not stream.disposition & _NOT_VIDEO:
            return stream
    kinds = sorted({s.type for s in container.streams if s.type != "video"})
    if videos:
        held = f"{' and '.join(kinds)} with " if kinds else ""
        raise VideoError(path, f"no video stream: it holds {held}a still picture (cover art)")
    if kinds:
        raise VideoError(path, f"no video stream: it holds {' and '.join(kinds)} only")
    raise VideoError(path, "no video stream: the container holds no streams")


def build_index(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str
) -> FrameIndex:
    """Read every packet header of ``stream`` once and index its frames."""
    pts: list[int | None] = []
    keys: list[bool] = []
    cut_short = False
    try:
        for packet in container.demux(stream):
            # Empty AVI chunks and samples an MP4 edit list trims are not frames.
            if packet.size == 0 or packet.is_discard:
                continue
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
            cut_short = packet.is_corrupt
    except av.FFmpegError as error:
        # A damaged tail: the frames before it are still there to read.
        log.warning("%s: demuxing stopped after %d frames: %s", path, len(keys), error)
    if cut_short:
        # The file ends inside its last packet (a truncated download): not a frame.
        pts.pop()
        keys.pop()
    missing_pts = None in pts
    frames = len(keys)
    if frames == 0:
        raise VideoError(path, "its video stream holds no frames")

    time_base = stream.time_base or Fraction(1, 1)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    first_video = stream.index == container.streams.video[0].index
    if missing_pts or len(set(pts)) != frames:
        # Raw elementary streams and some broken muxers give no usable timestamps:
        # frames can then only be found by counting, so nothing seeks.
        return FrameIndex(
            stream_index=stream.index,
            first_video_stream=first_video,
            codec=stream.codec_context.name,
            frames=frames,
            time_base=time_base,
            pts=None,
            key_ranks=np.zeros(1, np.int64),
            nominal_rate=rate,
            seekable=False,
        )
    pts_array = np.asarray(pts, dtype=np.int64)
    order = np.argsort(pts_array, kind="stable")
    ranks = np.empty(frames, dtype=np.int64)
    ranks[order] = np.arange(frames)
    key_ranks = np.sort(ranks[np.asarray(keys, dtype=bool)])
    return FrameIndex(
        stream_index=stream.index,
        first_video_stream=first_video,
        codec=stream.codec_context.name,
        frames=frames,
        time_base=time_base,
        pts=pts_array[order],
        key_ranks=key_ranks,
        nominal_rate=rate,
    )


def index_file(path: str) -> FrameIndex:
    """Open ``path``, choose its video stream and index it."""
    with open_container(path) as container:
        stream = select_video_stream(container, path)
        return build_index(container, stream, path)


class IndexCache:
    """The last few indexes, so that a read right after a probe does not demux again.

    Keyed by the file's identity and modification and change times: a replaced or
    rewritten file gets a new index. Shared by threads (a worker may decode the next
    batch while the model runs), hence the lock.
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = capacity
        self._items: OrderedDict[tuple, FrameIndex] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: str) -> tuple:
        st = os.stat(path)
        # ctime too: a file rewritten in place with its mtime set back is another file.
        return (
            os.path.realpath(path),
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )

    def get(self, path: str) -> FrameIndex | None:
        key = self._key(path)
        with self._lock:
            index = self._items.get(key)
            if index is not None:
                self._items.move_to_end(key)
            return index

    def put(self, path: str, index: FrameIndex) -> None:
        key = self._key(path)
        with self._lock:
            self._items[key] = index
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


INDEXES = IndexCache()
