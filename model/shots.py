"""Shot cuts, from PySceneDetect's detectors fed frames that were decoded anyway.

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

Feeding is the cheaper way (bench/shot_detectors.py, a 60 s 320x240 H.264 video, windows
of 16 frames every second, short side 128): the windows' decode alone took 300 ms; the
same decode converting every frame and feeding the detector 434 ms, so 135 ms more,
against 524 ms for a pass of its own (``detect_cuts_in_file``) and 617 ms for
PySceneDetect's own ``detect()``: feeding costs 0.26x a second pass. All found the 4 cuts.

Which detector (``ShotParams.detector``): ``histogram`` (HistogramDetector), by test. It
compares the luma histograms of consecutive frames, and a pan or a zoom over one scene
keeps its histogram while a cut to another scene changes it. The two detectors that
compare frames pixel by pixel fail on motion: on tests/segments/test_shots.py's truth
video (64x48 at 10 fps, fed at a short side of 40) a pan changes a frame's HSV by up to
47.9 (mean absolute difference, 0-255) and a cut by 51.3-58.4, so ContentDetector
(threshold 27) found 4 of 6 cuts and 10 false ones, and AdaptiveDetector (a cut must
stand out 3x from the frames around it) 1 of 6 when pans surround the cut. With 32 bins,
1 - correlation between consecutive histograms was at least 0.24 at every cut and at
most 0.094 anywhere else (bench/shot_detectors.py: 6 seeds at each of short sides 28,
40, 48 and 128 at 10 fps and 40 at 8 fps); the threshold
0.15 sits between them with a margin of 1.6x either way. 256 bins (PySceneDetect's
default, meant for full frames) make small frames' histograms noisy: up to 0.33 without
a cut.

Times: each frame's time is the caller's (the container's timestamps), so cuts are right
in variable-frame-rate files too. Frames must come in display order, every one: a cut
cannot be found across frames that were never seen.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector

from model.decode_frames import output_size, pyav_to_rgb
from model.decode_index import open_container, select_video_stream

__all__ = ["ShotDetector", "ShotParams", "detect_cuts", "detect_cuts_in_file"]


@dataclass(frozen=True)
class ShotParams:
    """The detector and its numbers.

    - ``detector``: ``histogram`` (the default, see the module docstring), ``adaptive``
      or ``content``.
    - ``histogram_threshold`` (0.15) and ``histogram_bins`` (32): a cut where 1 - the
      correlation of consecutive frames' luma histograms reaches the threshold.
    - ``adaptive_threshold`` (3.0) and ``min_content_val`` (15.0): AdaptiveDetector's own
      defaults; ``content_threshold`` (27.0): ContentDetector's.
    - ``min_shot_s`` (0.5 s): no cut closer than this to the previous one (the
      detectors' ``min_scene_len``, 15 frames at 30 fps, here in seconds so it means the
      same at every frame rate); a flash or a stutter is not two shots.
    - ``max_side`` (256): larger frames are shrunk first (PySceneDetect's own
      downscaling aims at 256 pixels wide): cost, not accuracy, grows with size.
    """

    detector: str = "histogram"
    histogram_threshold: float = 0.15
    histogram_bins: int = 32
    adaptive_threshold: float = 3.0
    min_content_val: float = 15.0
    content_threshold: float = 27.0
    min_shot_s: float = 0.5
    max_side: int = 256

    def __post_init__(self) -> None:
        if self.detector not in ("histogram", "adaptive", "content"):
            raise ValueError(
                f"detector must be 'histogram', 'adaptive' or 'content', got {self.detector!r}"
            )
        if not 0 < self.histogram_threshold <= 1 or not 2 <= self.histogram_bins <= 256:
            raise ValueError("histogram_threshold must be in (0, 1] and histogram_bins in 2..256")
        if self.min_shot_s < 0 or self.max_side < 16:
            raise ValueError("min_shot_s must be >= 0 and max_side at least 16")


class ShotDetector:
    """Shot cuts of one video, fed its frames one by one, in display order."""

    def __init__(self, fps: float, params: ShotParams | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.params = params or ShotParams()
        min_len = max(1, round(self.params.min_shot_s * fps))
        if self.params.detector == "histogram":
            self._detector = HistogramDetector(
                threshold=self.params.histogram_threshold,
                bins=self.params.histogram_bins,
                min_scene_len=min_len,
            )
        elif self.params.detector == "adaptive":
            self._detector = AdaptiveDetector(
                adaptive_threshold=self.params.adaptive_threshold,
                min_content_val=self.params.min_content_val,
                min_scene_len=min_len,
            )
        else:
            self._detector = ContentDetector(
                threshold=self.params.content_threshold, min_scene_len=min_len
            )
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
    """A pass of its own over the file's video stream (PyAV, every frame, shrunk to
    ``short_side`` as the worker's frames are): for when the windows were decoded by
    seeking. Times are the frames' timestamps from the first frame.

    Raises model.video.VideoError for a file that cannot be opened.
    """
    path = os.fspath(path)
    with open_container(path) as container:
        stream = select_video_stream(container, path)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        detector = ShotDetector(float(rate) if rate else 25.0, params)
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
