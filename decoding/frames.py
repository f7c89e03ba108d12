"""From one decoded frame to a small RGB image, and where the images of a read go.

Every frame is shrunk the moment it is decoded, so a read never holds more than one
full-resolution frame whatever the number of clips.
"""

from __future__ import annotations

import av.video.frame
import cv2
import numpy as np

# cv2.rotate codes for a clockwise rotation, in degrees.
_ROTATE = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}
_AVCOL_RANGE_JPEG = 2  # full-range ("JPEG") YUV, which OpenCV's I420 conversion does not handle


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side at ``short_side``, as torchvision's Resize(int)."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def clockwise(display_rotation: float) -> int:
    """FFmpeg's display rotation (counter-clockwise degrees) as the clockwise turn, 0-270."""
    return round(-display_rotation / 90.0) % 4 * 90


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = image.shape[:2]
    if (width, height) == size:
        return image
    factor = min(width // size[0], height // size[1])
    if factor >= 2:
        # Averaging whole factor x factor blocks is OpenCV's fast INTER_AREA path, several
        # times faster than INTER_AREA at a fractional ratio; the few edge pixels (fewer
        # than ``factor``) that do not fill a block are dropped.
        height, width = height - height % factor, width - width % factor
        image = cv2.resize(
            image[:height, :width],
            (width // factor, height // factor),
            interpolation=cv2.INTER_AREA,
        )
    # What is left shrinks by less than 2x (or enlarges), where bilinear weights reach
    # every source pixel and need no prefilter against aliasing.
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def bgr_to_rgb(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An OpenCV frame (BGR, already upright) at ``size``, in RGB."""
    return cv2.cvtColor(_fit(bgr, size), cv2.COLOR_BGR2RGB)


def pyav_to_rgb(
    frame: av.video.frame.VideoFrame, size: tuple[int, int], rotation: int
) -> np.ndarray:
    """A PyAV frame at display ``size`` (width, height), turned ``rotation`` degrees clockwise."""
    if rotation in (90, 270):
        size = (size[1], size[0])  # shrink before turning: the turn is then cheap
    if (
        frame.format.name == "yuv420p"
        and frame.color_range != _AVCOL_RANGE_JPEG
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    ):
        # The common case (H.264, HEVC, VP9, AV1, MPEG-4 at 8 bits): OpenCV's SIMD
        # conversion of the planar data is several times faster than PyAV's rgb24
        # path, and uses the BT.601 video-range matrix OpenCV's own decoder uses.
        rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    else:
        # 10-bit, full-range (MJPEG), 4:2:2/4:4:4, alpha, palettes: let swscale do it.
        rgb = frame.to_ndarray(format="rgb24")
    rgb = _fit(rgb, size)
    if rotation:
        rgb = cv2.rotate(rgb, _ROTATE[rotation])
    return rgb


class ClipSink:
    """The output array of a read and which of its frame slots each frame number fills."""

    def __init__(self, ranks: np.ndarray, size: tuple[int, int]) -> None:
        self.size = size
        self.out = np.empty((ranks.size, size[1], size[0], 3), dtype=np.uint8)
        self._slots: dict[int, list[int]] = {}
        for slot, rank in enumerate(ranks.ravel().tolist()):
            self._slots.setdefault(rank, []).append(slot)
        self.wanted = np.array(sorted(self._slots), dtype=np.int64)
        self._filled: set[int] = set()

    def wants(self, rank: int) -> bool:
        return rank in self._slots and rank not in self._filled

    def put(self, rank: int, rgb: np.ndarray) -> None:
        for slot in self._slots[rank]:
            self.out[slot] = rgb
        self._filled.add(rank)

    def missing(self) -> list[int]:
        return [rank for rank in self.wanted.tolist() if rank not in self._filled]

    def clear(self) -> None:
        self._filled.clear()
