"""Clips of a long video in start order, a few at a time, decoded while the caller works.

``decoding.video.read_clips`` returns every clip at once: right for ten clips, not for the
thousands of windows a long video is scored on (an hour at one window a second is 3,600
clips, gigabytes of frames). ``stream_clips`` decodes the same frames by the same plan
(decoding.video's decoders, seeking where that pays) in a background thread and hands the
clips over in chunks through a bounded queue:

    for first, chunk in stream_clips(info, starts, clip_len=16, stride=2, short_side=128):
        ...  # chunk: uint8 n x T x H x W x 3, clips first .. first + n - 1

Memory holds the frames of the windows being filled plus ``ahead`` chunks; the decoder
waits while the caller is behind. A clip's frames are filled as they are decoded and the
clip is handed over once complete, so with one front-to-back pass a frame shared by two
overlapping windows is decoded once.

``watch`` sees every frame of such a pass too (the shot detector, timeline.shots.ShotFeed):
frames 0, 1, 2, ... in order while the decode hands them over without a gap. A decode
that seeks past frames leaves a gap, and from there the watcher sees nothing more; it
knows how far it got (``next_rank``), so the caller can tell whether it saw them all.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np

from decoding.errors import VideoError
from decoding.frames import output_size
from decoding.video import VideoInfo, decode_into, frame_index

__all__ = ["FrameWatch", "stream_clips"]

log = logging.getLogger(__name__)

_DONE = object()


class FrameWatch(Protocol):
    """Sees the decoded frames in order: ``next_rank`` is the frame it wants next, and
    it is called with each such frame (RGB at the clips' size) as it decodes."""

    next_rank: int

    def __call__(self, rank: int, rgb: np.ndarray) -> None: ...


class _Stopped(Exception):
    """The caller stopped reading: unwinds the decoder thread."""


class WindowSink:
    """Decoded frames -> complete clips, handed on in start order (the decoders' sink).

    Quacks like decoding.frames.ClipSink (``size``, ``wanted``, ``wants``, ``put``,
    ``missing``, ``clear``), so decoding.video's decoding plan fills it unchanged.
    """

    def __init__(
        self,
        ranks: np.ndarray,
        size: tuple[int, int],
        emit: Callable[[int, np.ndarray], None],
        watch: FrameWatch | None = None,
    ) -> None:
        self.size = size
        self._watch = watch
        self._ranks = ranks  # clips x T frame numbers
        self._emit = emit
        self._slots: dict[int, list[tuple[int, int]]] = {}
        for clip, row in enumerate(ranks.tolist()):
            for t, rank in enumerate(row):
                self._slots.setdefault(rank, []).append((clip, t))
        self.wanted = np.array(sorted(self._slots), dtype=np.int64)
        self._open: dict[int, np.ndarray] = {}
        self._left = [ranks.shape[1]] * ranks.shape[0]
        self._done = [False] * ranks.shape[0]
        self._filled: set[tuple[int, int]] = set()
        self.next_clip = 0  # clips before it have been handed on

    def wants(self, rank: int) -> bool:
        watched = self._watch is not None and rank == self._watch.next_rank
        return watched or self._clip_wants(rank)

    def put(self, rank: int, rgb: np.ndarray) -> None:
        if self._watch is not None and rank == self._watch.next_rank:
            self._watch(rank, rgb)
        for clip, t in self._slots.get(rank, ()):
            if self._done[clip] or (clip, t) in self._filled:
                continue
            frames = self._open.get(clip)
            if frames is None:
                frames = np.empty((self._ranks.shape[1], self.size[1], self.size[0], 3), np.uint8)
                self._open[clip] = frames
            frames[t] = rgb
            self._filled.add((clip, t))
            self._left[clip] -= 1
        self._hand_on()

    def _hand_on(self) -> None:
        while self.next_clip < len(self._left) and self._left[self.next_clip] == 0:
            clip = self.next_clip
            self._done[clip] = True
            self._emit(clip, self._open.pop(clip))
            self._filled.difference_update((clip, t) for t in range(self._ranks.shape[1]))
            self.next_clip += 1

    def missing(self) -> list[int]:
        return [rank for rank in self.wanted.tolist() if self._clip_wants(rank)]

    def _clip_wants(self, rank: int) -> bool:
        return any(
            not self._done[clip] and (clip, t) not in self._filled
            for clip, t in self._slots.get(rank, ())
        )

    def clear(self) -> None:
        """Forget frames of clips not yet handed on (a failed seek: decoded again)."""
        for clip in list(self._open):
            self._left[clip] = self._ranks.shape[1]
            self._filled.difference_update((clip, t) for t in range(self._ranks.shape[1]))
        self._open.clear()


def stream_clips(
    info: VideoInfo,
    starts: Sequence[int],
    *,
    clip_len: int,
    stride: int = 1,
    short_side: int = 128,
    chunk: int = 16,
    ahead: int = 2,
    watch: FrameWatch | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first, clips)``: the clips starting at ``starts`` (ascending), ``chunk``
    at a time, uint8 n x T x H x W x 3 RGB, as decoding.video.read_clips would return them.

    ``info``: the video's probe. Clip ``n`` holds frames ``starts[n] + t * stride``,
    wrapping at the number of frames (a short video loops). When the file decodes fewer
    frames than were indexed (a damaged tail), the clips that reach past the end are
    not yielded (logged); if none could be, the frame numbers wrap at what decodes, as
    read_clips does. ``watch``: sees the frames of a front-to-back pass (module
    docstring); it runs in the decoding thread. Raises VideoError for a file that cannot
    be read.
    """
    if len(starts) == 0:
        raise ValueError("starts is empty: ask for at least one clip")
    if any(b < a for a, b in itertools.pairwise(starts)):
        raise ValueError("starts must be ascending")
    if min(clip_len, stride, short_side, chunk, ahead) < 1:
        raise ValueError("clip_len, stride, short_side, chunk and ahead must be positive")
    size = output_size(info.width, info.height, short_side)
    offsets = np.arange(clip_len, dtype=np.int64) * stride
    handed = 0
    frames = info.frames
    for _ in range(2):
        ranks = (np.asarray(starts, dtype=np.int64)[:, None] + offsets) % frames
        decoded: list[int | None] = []
        for first, clips in _stream(info, ranks, size, chunk, ahead, decoded, watch):
            handed += len(clips)
            yield first, clips
        if not decoded or decoded[0] is None:
            return
        if decoded[0] == 0:
            raise VideoError(info.path, "no frame of its video decodes")
        if handed:
            log.warning(
                "%r: %d frames indexed but only %d decode; %d of %d clips reach past them",
                info.path,
                frames,
                decoded[0],
                len(starts) - handed,
                len(starts),
            )
            return
        frames = decoded[0]
    raise VideoError(info.path, "decoding stops at a different frame on every pass")


def _stream(
    info: VideoInfo,
    ranks: np.ndarray,
    size: tuple[int, int],
    chunk: int,
    ahead: int,
    decoded: list[int | None],
    watch: FrameWatch | None,
) -> Iterator[tuple[int, np.ndarray]]:
    """One decoding pass in a thread; ``decoded`` gets decode_into's answer."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    pending: list[np.ndarray] = []
    first = [0]

    def send(item: object) -> None:
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def emit(clip: int, frames: np.ndarray) -> None:
        pending.append(frames)
        if len(pending) == chunk:
            send((first[0], np.stack(pending)))
            first[0] += len(pending)
            pending.clear()

    def decode() -> None:
        try:
            sink = WindowSink(ranks, size, emit, watch)
            decoded.append(decode_into(info.path, info, frame_index(info.path), sink))
            if pending:
                send((first[0], np.stack(pending)))
            send(_DONE)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread
            with contextlib.suppress(_Stopped):
                send(exc)

    thread = threading.Thread(target=decode, name="stream-clips", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
