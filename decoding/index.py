"""The frame index of a video stream, built by one demux pass that decodes nothing.

Container headers cannot be trusted for the number of frames: an AVI index may list
empty chunks (tree.avi: 444 entries, 68 frames), an MP4 may carry a sample its edit
list discards (box.mp4: 456 samples, 455 frames), a WebM may have no duration at all,
and a truncated file still claims what it used to hold. Reading every packet header
of the chosen stream is exact about all of these and still cheap, a small share of
decoding the same stream and smaller the higher its resolution, because no frame is
decoded (docs/benchmarks.md).

The same pass gives what seeking needs: the presentation timestamp of every frame,
sorted, so that frame ``i`` is the frame with the ``i``-th smallest timestamp, and
the ranks of the keyframes a seek can land on.

Memory follows the frame count at 8 bytes a frame (the int64 timestamps), 16 while the
pass packs them: timestamps are gathered in a short Python list, packed into int64
chunks, joined and sorted in place; only the keyframes' timestamps are kept apart.
``probe`` refuses a stream of more than ``max_frames`` frames while it reads it, so
no file costs more than that cap (decoding.video, ACTIONTAG_MAX_FRAMES).

Gaps: where two consecutive frames lie more than ``GAP_S`` apart, the file holds no
picture between them (a recorder paused, streams spliced with a timestamp jump). The
index records them; the video's duration counts them (they are on its clock) but its
frame rate and the length of its last frame do not, and the windows and segments of
a timeline never span one (timeline.windows, timeline.segments).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction

import av
import av.container
import av.stream
import av.video.stream
import numpy as np

from decoding.errors import VideoError

log = logging.getLogger(__name__)

# FFmpeg demuxers that read single still images; a picture is not a video.
_STILL_IMAGE_FORMATS = ("image2",)
_NOT_VIDEO = av.stream.Disposition.attached_pic | av.stream.Disposition.still_image

# Frames further apart than this have nothing between them: far longer than a window
# (a clip of 16 frames, about half a second), the segments' smoothing (3 s) and their
# shortest run (2 s), so a picture held that long tells a timeline nothing, while any
# timestamp jump of a paused or spliced recording is longer.
GAP_S = 10.0
# The most frames a worker indexes (ACTIONTAG_MAX_FRAMES): 46 hours at 60 fps, 111 at 25.
# The index peaks at 16 bytes a frame (its timestamps, twice while they are joined) and
# 8 more for a stream of keyframes only, so a file of any size costs at most about
# 240 MB to probe, and its demux pass is bounded alike.
DEFAULT_MAX_FRAMES = 10_000_000
# Timestamps a Python list gathers before they are packed into an int64 chunk, and
# frames compared at a time when scanning them: either way a few MB of temporaries.
_PACK = 1 << 12
_SCAN = 1 << 20


class TooManyFrames(VideoError):
    """The stream holds more frames than the index may keep."""


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
    # Ranks of the frames followed by a gap (more than GAP_S to the next), ascending.
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

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
        """Seconds from the first frame's start to the last frame's end (gaps included)."""
        if self.pts is None:
            return self.frames / float(self.nominal_rate) if self.nominal_rate else 0.0
        return float((int(self.pts[-1]) - int(self.pts[0])) * self.time_base) + self.frame_s()

    def gap_s(self) -> float:
        """Seconds of the gaps: the time on the video's clock with no frame shown."""
        if self.pts is None or self.gaps.size == 0:
            return 0.0
        after = self.pts[self.gaps + 1] - self.pts[self.gaps]
        return float(int(after.sum()) * self.time_base)

    def frame_s(self) -> float:
        """How long a frame lasts: the mean interval between frames outside the gaps (the
        last frame lasts as long as the average one before it), else the nominal rate's."""
        intervals = self.frames - 1 - self.gaps.size
        if self.pts is not None and intervals > 0:
            span = float((int(self.pts[-1]) - int(self.pts[0])) * self.time_base)
            return (span - self.gap_s()) / intervals
        return 1.0 / float(self.nominal_rate) if self.nominal_rate else 0.0

    def fps(self) -> float:
        """Average frames per second over the time that frames are shown: each part
        between gaps from its first frame to its last frame's end."""
        seconds = self.duration() - self.gap_s() + self.gaps.size * self.frame_s()
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
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: str,
    max_frames: int | None = None,
) -> FrameIndex:
    """Read every packet header of ``stream`` once and index its frames; TooManyFrames
    as soon as it holds more than ``max_frames`` (None: no cap)."""
    packets = _Packets(max_frames, path)
    try:
        for packet in container.demux(stream):
            # Empty AVI chunks and samples an MP4 edit list trims are not frames.
            if packet.size == 0 or packet.is_discard:
                continue
            packets.add(packet.pts, packet.is_keyframe, packet.is_corrupt)
    except av.FFmpegError as error:
        # A damaged tail: the frames before it are still there to read.
        log.warning("%s: demuxing stopped after %d frames: %s", path, packets.frames, error)
    # The file ends inside its last packet (a truncated download): not a frame.
    packets.drop_corrupt_tail()
    frames = packets.frames
    if frames == 0:
        raise VideoError(path, "its video stream holds no frames")

    time_base = stream.time_base or Fraction(1, 1)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    first_video = stream.index == container.streams.video[0].index
    pts = packets.sorted_pts()
    if pts is None or _has_repeats(pts):
        # Raw elementary streams and some broken muxers give no usable timestamps:
        # frames can then only be found by counting, so nothing seeks.
        pts, key_ranks, gaps = None, np.zeros(1, np.int64), np.zeros(0, np.int64)
    else:
        # Timestamps are distinct: a keyframe's rank is where its timestamp sorts.
        key_pts = packets.key_pts()
        key_pts.sort()
        key_ranks = np.searchsorted(pts, key_pts)
        del key_pts
        gaps = find_gaps(pts, GAP_S / float(time_base))
    return FrameIndex(
        stream_index=stream.index,
        first_video_stream=first_video,
        codec=stream.codec_context.name,
        frames=frames,
        time_base=time_base,
        pts=pts,
        key_ranks=key_ranks,
        nominal_rate=rate,
        seekable=pts is not None,
        gaps=gaps,
    )


class _PackedInts:
    """int64 values appended one at a time and kept 8 bytes each: a short Python list
    takes them, packed into a chunk whenever it fills; the last one stays loose, so that
    ``pop`` can take it back."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._loose: list[int] = []

    def append(self, value: int) -> None:
        if len(self._loose) > _PACK:
            self._chunks.append(np.array(self._loose[:-1], dtype=np.int64))
            del self._loose[:-1]
        self._loose.append(value)

    def pop(self) -> None:
        self._loose.pop()

    def take(self) -> np.ndarray:
        """All the values as one array; this holder is empty afterwards."""
        self._chunks.append(np.array(self._loose, dtype=np.int64))
        self._loose = []
        values = np.concatenate(self._chunks)
        self._chunks = []
        return values


class _Packets:
    """The frames of a demux pass: every frame's timestamp and the keyframes', packed."""

    def __init__(self, max_frames: int | None, path: str) -> None:
        self.frames = 0
        self._max_frames = max_frames
        self._path = path
        self._pts: _PackedInts | None = _PackedInts()  # None once a frame has no timestamp
        self._keys = _PackedInts()
        self._last_corrupt = False
        self._last_key = False

    def add(self, pts: int | None, key: bool, corrupt: bool) -> None:
        self.frames += 1
        if self._max_frames is not None and self.frames > self._max_frames:
            raise TooManyFrames(
                self._path,
                f"its video stream holds more than {self._max_frames} frames, the most a "
                "worker indexes (ACTIONTAG_MAX_FRAMES)",
            )
        self._last_corrupt, self._last_key = corrupt, False
        if self._pts is None:
            return
        if pts is None:
            self._pts = None
            return
        self._pts.append(pts)
        if key:
            self._keys.append(pts)
            self._last_key = True

    def drop_corrupt_tail(self) -> None:
        if not self._last_corrupt:
            return
        self.frames -= 1
        if self._pts is not None:
            self._pts.pop()
            if self._last_key:
                self._keys.pop()

    def sorted_pts(self) -> np.ndarray | None:
        """Every frame's timestamp, ascending (None when some frame has none)."""
        if self._pts is None:
            return None
        pts = self._pts.take()
        pts.sort()
        return pts

    def key_pts(self) -> np.ndarray:
        return self._keys.take()


def _has_repeats(sorted_values: np.ndarray) -> bool:
    for first in range(0, sorted_values.size - 1, _SCAN):
        chunk = sorted_values[first : first + _SCAN + 1]
        if np.any(chunk[1:] == chunk[:-1]):
            return True
    return False


def find_gaps(sorted_values: np.ndarray, threshold: float) -> np.ndarray:
    """Ranks ``i`` of ascending ``sorted_values`` where the next value is more than
    ``threshold`` further on, ascending."""
    found = [np.zeros(0, np.int64)]
    for first in range(0, sorted_values.size - 1, _SCAN):
        step = np.diff(sorted_values[first : first + _SCAN + 1])
        found.append(np.flatnonzero(step > threshold) + first)
    return np.concatenate(found).astype(np.int64)


def index_file(path: str, max_frames: int | None = None) -> FrameIndex:
    """Open ``path``, choose its video stream and index it (at most ``max_frames``)."""
    with open_container(path) as container:
        stream = select_video_stream(container, path)
        return build_index(container, stream, path, max_frames)


class IndexCache:
    """The last few indexes, so that a read right after a probe does not demux again.

    Keyed by the file's identity and modification and change times: a replaced or
    rewritten file gets a new index. Shared by threads (a worker may decode the next
    batch while the model runs), hence the lock. At most ``capacity`` indexes and, but
    for the newest, ``max_frames`` frames between them: an index costs 8 bytes a frame,
    so a worker that met several huge files keeps one of them, not sixteen.
    """

    def __init__(self, capacity: int = 16, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self._capacity = capacity
        self._max_frames = max_frames
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
            while len(self._items) > self._capacity or (
                len(self._items) > 1
                and sum(kept.frames for kept in self._items.values()) > self._max_frames
            ):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


INDEXES = IndexCache()
