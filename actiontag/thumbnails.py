"""Thumbnails: small JPEGs of a video's frames, made by the worker, shown by the report.

The worker already holds decoded frames, so it encodes a few here (one middle frame per
clip) and passes the bytes to :func:`storage.results.complete_job`. The report then never
decodes a video: it may run on a machine that has the database but not the inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# OpenCV and NumPy are imported where a thumbnail is made or checked (the worker), not
# with the module: storage.results imports it, and so does every process that only reads
# or records jobs (the watcher, the CLI, the web app), for which cv2 would be a large
# share of each start's CPU (docs/benchmarks.md).

DEFAULT_HEIGHT = 96
JPEG_QUALITY = 80
# Far above any thumbnail (a 96-pixel-high JPEG is a few kB); catches whole frames
# or files passed by mistake before they bloat the database.
MAX_THUMBNAIL_BYTES = 512 * 1024


class InvalidThumbnail(ValueError):
    """Bytes that are not a decodable JPEG image of a sensible size."""


def encode_thumbnails(frames: Sequence[np.ndarray], height: int = DEFAULT_HEIGHT) -> list[bytes]:
    """JPEG bytes of each RGB ``uint8`` frame (``H x W x 3``), scaled to ``height`` pixels.

    The aspect ratio is kept; frames no taller than ``height`` keep their size (enlarging
    adds bytes, not detail). Order is kept: it becomes the strip's order in the report.
    """
    if height < 1:
        raise ValueError(f"thumbnail height must be at least 1 pixel, got {height}")
    return [_encode(frame, height, index) for index, frame in enumerate(frames)]


def _encode(frame: np.ndarray, height: int, index: int) -> bytes:
    import cv2
    import numpy as np

    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = frame.dtype if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {index}: expected a uint8 numpy array, got {kind}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame {index}: expected an RGB image H x W x 3, got shape {frame.shape}")
    rows, cols = frame.shape[:2]
    if rows > height:
        width = max(1, round(cols * height / rows))
        # INTER_AREA averages the pixels a thumbnail pixel covers: no aliasing shimmer.
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"frame {index}: OpenCV could not encode it as JPEG")
    return encoded.tobytes()


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG image; :class:`InvalidThumbnail` if it is not one.

    Decodes the whole image (OpenCV refuses truncated and corrupt ones), so a damaged
    thumbnail is refused here rather than shown as a broken image in the report.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidThumbnail(f"thumbnail must be JPEG bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_THUMBNAIL_BYTES:
        raise InvalidThumbnail(
            f"thumbnail of {len(data)} bytes is larger than {MAX_THUMBNAIL_BYTES}: "
            "make it with actiontag.thumbnails.encode_thumbnails (a small JPEG)"
        )
    if not data.startswith(b"\xff\xd8\xff"):
        raise InvalidThumbnail(
            "thumbnail is not a JPEG (no JPEG start marker): "
            "make it with actiontag.thumbnails.encode_thumbnails"
        )
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InvalidThumbnail("thumbnail is a damaged or truncated JPEG: it cannot be decoded")
    rows, cols = image.shape[:2]
    return cols, rows
