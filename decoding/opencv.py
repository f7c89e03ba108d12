"""OpenCV, the first decoder: reading forward from the first frame.

OpenCV is used only front to back: ``grab()`` decodes a frame without converting it,
``retrieve()`` converts the ones wanted. Its seeking turns a frame number into a time
through the nominal frame rate, which picks wrong frames in variable-frame-rate
files and in files whose index has holes, so seeking is left to PyAV
(decoding.pyav), which seeks to timestamps taken from the frame index.
OpenCV turns frames upright by itself (CAP_PROP_ORIENTATION_AUTO is on by default).
"""

from __future__ import annotations

import cv2

from decoding.frames import ClipSink, bgr_to_rgb


def _open(path: str) -> cv2.VideoCapture | None:
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        return None
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def first_frame(path: str) -> tuple[int, int, int] | None:
    """(width, height, clockwise rotation) of the first frame as OpenCV shows it, or
    None when OpenCV cannot open the file or decode a frame of it (AV1, for one)."""
    capture = _open(path)
    if capture is None:
        return None
    try:
        ok, bgr = capture.read()
        if not ok or bgr is None:
            return None
        rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
        return bgr.shape[1], bgr.shape[0], rotation
    finally:
        capture.release()


def read_forward(path: str, last: int, sink: ClipSink) -> int:
    """Decode frames 0..``last``, handing the wanted ones to ``sink``.

    Returns how many frames were decoded: ``last + 1``, or fewer when the stream
    ends early (the index promised frames that do not decode).
    """
    capture = _open(path)
    if capture is None:
        return 0
    try:
        for rank in range(last + 1):
            if not capture.grab():
                return rank
            if sink.wants(rank):
                ok, bgr = capture.retrieve()
                if not ok:
                    return rank
                sink.put(rank, bgr_to_rgb(bgr, sink.size))
        return last + 1
    finally:
        capture.release()
