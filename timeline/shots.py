"""Shot boundaries, from detectors fed frames that were decoded anyway.

Two detectors (``SHOT_DETECTORS``, the ``shot_detector`` setting), made by
``make_boundary_detector`` with the same ``push``/``finish`` and boundaries as
timeline.values.Cut: ``transnetv2`` (timeline.learned_shots: the learned network run
where a cheap signal sees a candidate; hard cuts, dissolves and fades with their start
and end) and ``histogram`` (:class:`ShotDetector` below: hard cuts only, far cheaper).
The rest of this docstring is the histogram detector's.

    detector = ShotDetector(fps=info.fps)
    for rgb, time_s in every_frame_in_order:      # e.g. from the windows' sequential decode
        detector.push(rgb, time_s)
    cuts_s = detector.finish()                    # the first frame of each new shot

PySceneDetect (``scenedetect``) reads a file itself when asked to, but its detectors
take one frame at a time (``process_frame``), so a decode that sees every frame anyway
(the worker's front-to-back pass over dense windows) can feed them at no second decode:
its frames are already shrunk to the model's short side, which is plenty to tell one
shot from the next. ``detect_cuts_in_file`` is the second pass, for when the windows
were reached by seeking (every frame, PyAV, shrunk the same way as the worker's).

Feeding is the cheaper way: converting every frame the windows' decode already produced
and feeding the detector costs a fraction of a pass of its own (``detect_cuts_in_file``)
or of PySceneDetect's own ``detect()`` over the file, and finds the same cuts
(docs/benchmarks.md).

Which detector (``ShotParams.detector``), chosen on the truth videos at several frame
rates and short sides (docs/benchmarks.md, which holds the comparison of every
candidate): ``histogram_adaptive``, PySceneDetect's AdaptiveDetector scoring each
frame by HistogramDetector's measure, 1 - the correlation of its 32-bin luma histogram
with the previous frame's. A pan or a zoom over one scene keeps its histogram, a cut to
another scene changes it; and because the measure still moves in fast motion (a pan
brings in up to an eighth of a frame per frame in the truth videos), a cut must also
stand out from the frames around it: ``ratio`` times the mean of the two before and the
two after. The ratio keeps a wide margin on either side between cuts and motion, where
a fixed threshold on the measure alone keeps almost none. The detectors that compare
pixels fail on motion: a fast pan changes a frame's HSV about as much as a cut does.

Times: each frame's time is the caller's (the container's timestamps), so cuts are right
in variable-frame-rate files too. Frames must come in display order, every one: a cut
cannot be found across frames that were never seen.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector
from scenedetect.scene_detector import SceneDetector

from decoding.frame_times import FrameTimes
from decoding.frames import output_size, pyav_to_rgb
from decoding.index import open_container, select_video_stream
from timeline.values import Cut

if TYPE_CHECKING:
    from timeline.transnet import ModelStore

__all__ = [
    "SHOT_DETECTORS",
    "BoundaryDetector",
    "ShotDetector",
    "ShotFeed",
    "ShotParams",
    "detect_boundaries_in_file",
    "detect_cuts",
    "detect_cuts_in_file",
    "make_boundary_detector",
]

SHOT_DETECTORS = ("transnetv2", "histogram")


class _HistogramAdaptiveDetector(AdaptiveDetector):
    """AdaptiveDetector (its rolling ratio, minimum scene length and buffering) with
    HistogramDetector's per-frame measure in place of the HSV pixel difference.

    ``_calculate_frame_score`` is the hook ContentDetector.process_frame calls for each
    frame's score in the 0.6 line that pyproject pins; tests/timeline/test_shots.py
    fails if a release moves it (no cut would be found).
    """

    def __init__(self, *, bins: int, ratio: float, min_change: float, min_len: int) -> None:
        super().__init__(
            adaptive_threshold=ratio, min_content_val=min_change, min_scene_len=min_len
        )
        self._bins = bins
        self._previous: np.ndarray | None = None

    def _calculate_frame_score(self, frame_num: int, frame_img: np.ndarray) -> float:
        histogram = HistogramDetector.calculate_histogram(frame_img, bins=self._bins)
        previous, self._previous = self._previous, histogram
        if previous is None:
            return 0.0
        return 1.0 - cv2.compareHist(previous, histogram, cv2.HISTCMP_CORREL)


_DETECTORS = ("histogram_adaptive", "histogram", "adaptive", "content")


@dataclass(frozen=True)
class ShotParams:
    """The detector and its numbers.

    - ``detector``: ``histogram_adaptive`` (the default, see the module docstring);
      ``histogram``, ``adaptive``, ``content``: PySceneDetect's HistogramDetector (a cut
      where the measure reaches ``min_change``), AdaptiveDetector and ContentDetector
      (their own defaults), kept for comparison.
    - ``bins`` (32): luma histogram bins. PySceneDetect's 256 are meant for frames of
      256 pixels wide; on the worker's small frames they make the measure noisy.
    - ``ratio`` (6.0): how far a cut's measure must stand out from its neighbours'; the
      middle of the range that finds every cut with no false one.
    - ``min_change`` (0.12): the smallest measure that can be a cut, well under any cut's
      measure on the truth videos: in a still scene the neighbours' measure is near zero
      and any flicker would stand out by the ratio.
    - ``min_shot_s`` (0.5 s): no cut closer than this to the previous one (the
      detectors' ``min_scene_len``, 15 frames at 30 fps, here in seconds so it means the
      same at every frame rate); a flash or a stutter is not two shots.
    - ``max_side`` (256): larger frames are shrunk first (PySceneDetect's own
      downscaling aims at 256 pixels wide): cost, not accuracy, grows with size.
    """

    detector: str = "histogram_adaptive"
    bins: int = 32
    ratio: float = 6.0
    min_change: float = 0.12
    min_shot_s: float = 0.5
    max_side: int = 256

    def __post_init__(self) -> None:
        if self.detector not in _DETECTORS:
            raise ValueError(f"detector must be one of {_DETECTORS}, got {self.detector!r}")
        if not 2 <= self.bins <= 256 or self.ratio <= 1 or not 0 < self.min_change <= 1:
            raise ValueError("need bins in 2..256, ratio > 1 and min_change in (0, 1]")
        if self.min_shot_s < 0 or self.max_side < 16:
            raise ValueError("min_shot_s must be >= 0 and max_side at least 16")


class ShotDetector:
    """Shot cuts of one video, fed its frames one by one, in display order."""

    def __init__(self, fps: float, params: ShotParams | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.params = params or ShotParams()
        p = self.params
        min_len = max(1, round(p.min_shot_s * fps))
        self._detector: SceneDetector
        if p.detector == "histogram_adaptive":
            self._detector = _HistogramAdaptiveDetector(
                bins=p.bins, ratio=p.ratio, min_change=p.min_change, min_len=min_len
            )
        elif p.detector == "histogram":
            self._detector = HistogramDetector(
                threshold=p.min_change, bins=p.bins, min_scene_len=min_len
            )
        elif p.detector == "adaptive":
            self._detector = AdaptiveDetector(min_scene_len=min_len)
        else:
            self._detector = ContentDetector(min_scene_len=min_len)
        # A detector may name a cut a few frames after it saw it (AdaptiveDetector compares
        # a frame with the ones after it; ContentDetector's flash filter waits up to
        # min_scene_len): keep the times of that many recent frames.
        self._times: deque[tuple[int, float]] = deque(maxlen=max(min_len, 8) + 2)
        self._frames = 0
        self._cuts: list[float] = []
        self._finished = False

    def push(self, rgb: np.ndarray, time_s: float) -> None:
        """The next frame (H x W x 3 uint8 RGB, any size) and its time in seconds."""
        if self._finished:
            raise RuntimeError("finish() was called: this detector takes no more frames")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        if self._times and time_s < self._times[-1][1]:
            raise ValueError(f"frame at {time_s} s comes after one at {self._times[-1][1]} s")
        height, width = rgb.shape[:2]
        if max(height, width) > self.params.max_side:
            scale = self.params.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # PySceneDetect takes OpenCV's order
        number = self._frames
        self._frames += 1
        self._times.append((number, float(time_s)))
        for cut in self._detector.process_frame(number, bgr):
            self._record(cut)

    def _record(self, frame_number: int) -> None:
        if frame_number <= 0:
            return  # the first frame starts the video, it is no cut
        for number, time_s in self._times:
            if number == frame_number:
                self._cuts.append(time_s)
                return
        raise RuntimeError(f"the detector named frame {frame_number}, no longer remembered")

    def finish(self) -> tuple[float, ...]:
        """The cut times: each new shot's first frame, ascending."""
        if not self._finished:
            self._finished = True
            for cut in self._detector.post_process(self._frames):
                self._record(cut)
        return tuple(sorted(set(self._cuts)))

    @property
    def frames(self) -> int:
        """Frames pushed so far."""
        return self._frames


class BoundaryDetector(Protocol):
    def push(self, rgb: np.ndarray, time_s: float) -> None: ...
    def finish(self) -> tuple[Cut, ...]: ...


class _HardCuts:
    """The histogram ShotDetector, its cut times as hard cuts."""

    def __init__(self, fps: float, params: ShotParams | None = None) -> None:
        self.detector = ShotDetector(fps, params)

    def push(self, rgb: np.ndarray, time_s: float) -> None:
        self.detector.push(rgb, time_s)

    def finish(self) -> tuple[Cut, ...]:
        return tuple(Cut.at(t) for t in self.detector.finish())


def make_boundary_detector(
    name: str, fps: float, *, store: ModelStore | None = None
) -> BoundaryDetector:
    """A detector of ``SHOT_DETECTORS``; ``store``: where the learned network's export is
    kept between processes (timeline.transnet.ModelStore)."""
    if name == "histogram":
        return _HardCuts(fps)
    if name == "transnetv2":
        from timeline.learned_shots import LearnedShotDetector

        return LearnedShotDetector(fps, store=store)
    raise ValueError(f"shot detector must be one of {SHOT_DETECTORS}, got {name!r}")


class ShotFeed:
    """A boundary detector fed by a decode that hands frames over by number (a
    decoding.stream.FrameWatch): frame ``next_rank`` and its time from ``times_s``.

    The decode feeds it frames 0, 1, 2, ... while it sees them all; ``saw_up_to(last)``
    says whether it got every frame through ``last`` (a decode that sought past some did
    not: then the boundaries need ``detect_boundaries_in_file``).
    """

    def __init__(
        self,
        times_s: FrameTimes | np.ndarray,
        fps: float,
        detector: str = "histogram",
        *,
        store: ModelStore | None = None,
    ) -> None:
        self.detector = make_boundary_detector(detector, fps, store=store)
        self._times = times_s
        self.next_rank = 0

    def __call__(self, rank: int, rgb: np.ndarray) -> None:
        if rank != self.next_rank:
            raise ValueError(f"frame {rank} fed where frame {self.next_rank} was due")
        self.detector.push(rgb, float(self._times[rank]))
        self.next_rank += 1

    def saw_up_to(self, last: int) -> bool:
        """Every frame from 0 through ``last`` was fed."""
        return self.next_rank > last

    def finish(self) -> tuple[Cut, ...]:
        """The boundaries among the frames fed."""
        return self.detector.finish()


def detect_cuts(
    frames: Iterable[np.ndarray],
    times_s: Iterable[float],
    fps: float,
    params: ShotParams | None = None,
) -> tuple[float, ...]:
    """Cut times of a video given all its frames (RGB) and their times, in order."""
    detector = ShotDetector(fps, params)
    for rgb, time_s in zip(frames, times_s, strict=True):
        detector.push(rgb, time_s)
    return detector.finish()


def detect_cuts_in_file(
    path: str | os.PathLike[str],
    *,
    short_side: int = 128,
    params: ShotParams | None = None,
) -> tuple[float, ...]:
    """The histogram detector's cut times over a pass of its own over the file
    (``detect_boundaries_in_file``)."""
    found = _pass_over(path, short_side, lambda fps: _HardCuts(fps, params))
    return tuple(cut.start_s for cut in found)


def detect_boundaries_in_file(
    path: str | os.PathLike[str],
    *,
    short_side: int = 128,
    detector: str = "histogram",
    store: ModelStore | None = None,
) -> tuple[Cut, ...]:
    """A pass of its own over the file's video stream (PyAV, every frame, shrunk to
    ``short_side`` as the worker's frames are): for when the windows were decoded by
    seeking. Times are the frames' timestamps from the first frame.

    Raises decoding.video.VideoError for a file that cannot be opened.
    """
    return _pass_over(
        path, short_side, lambda fps: make_boundary_detector(detector, fps, store=store)
    )


def _pass_over(
    path: str | os.PathLike[str], short_side: int, make: Callable[[float], BoundaryDetector]
) -> tuple[Cut, ...]:
    path = os.fspath(path)
    with open_container(path) as container:
        stream = select_video_stream(container, path)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        detector = make(float(rate) if rate else 25.0)
        first: float | None = None
        last = 0.0
        size: tuple[int, int] | None = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if size is None:
                size = output_size(frame.width, frame.height, short_side)
            first = frame.time if first is None else first
            # A decoder may hand out a damaged frame's time out of order: never go back.
            last = max(frame.time - first, last)
            detector.push(pyav_to_rgb(frame, size, 0), last)
    return detector.finish()
