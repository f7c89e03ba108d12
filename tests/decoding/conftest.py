"""Real encoded videos for the video tests, and a way to tell which frame is which.

Every generated frame shows its own frame number as a 4 x 4 grid of black and white
cells (bit k of the number in cell k, row by row). Lossy codecs blur the edges of
the cells but never turn a cell's middle from black to white, so ``frame_number``
reads the number back exactly after encoding, decoding and resizing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest

from decoding.frames import bgr_to_rgb, clockwise, pyav_to_rgb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "videos"
GRID = 4
WIDTH, HEIGHT = 160, 120


def code_image(number: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """An RGB frame that shows ``number`` (0 .. 65535) as 16 black or white cells."""
    bits = (number >> np.arange(GRID * GRID)) & 1
    cells = (bits.reshape(GRID, GRID) * 255).astype(np.uint8)
    gray = cv2.resize(cells, (width, height), interpolation=cv2.INTER_NEAREST)
    return np.repeat(gray[:, :, None], 3, axis=2)


def read_number(rgb: np.ndarray) -> int:
    """The number ``code_image`` drew, read from the middle half of each cell."""
    gray = rgb.mean(axis=2)
    height, width = gray.shape
    number = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        y0, y1 = int((row + 0.25) * height / GRID), int((row + 0.75) * height / GRID)
        x0, x1 = int((col + 0.25) * width / GRID), int((col + 0.75) * width / GRID)
        if gray[y0:y1, x0:x1].mean() > 128:
            number |= 1 << bit
    return number


def numbers(clips: np.ndarray) -> np.ndarray:
    """N x T frame numbers read from N x T x H x W x 3 clips."""
    return np.array([[read_number(frame) for frame in clip] for clip in clips])


def write_opencv(path: Path, frames: int, fourcc: str, fps: float = 25.0) -> Path:
    """Write ``frames`` numbered frames with cv2.VideoWriter."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} into {path.suffix}"
    for i in range(frames):
        writer.write(cv2.cvtColor(code_image(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_pyav(
    path: Path,
    frames: int,
    codec: str,
    *,
    rate: int = 25,
    pts: Sequence[int] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    gop: int | None = None,
) -> Path:
    """Write numbered frames with PyAV. ``pts`` (in 1/rate units) makes the frame
    rate variable; ``rotation`` stores a display matrix (counter-clockwise degrees)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(code_image(i), format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def inter_codec() -> tuple[str, dict[str, str]]:
    """An encoder with keyframe spacing and B-frames: H.264 where PyAV has it."""
    if "libx264" in av.codecs_available:
        return "libx264", {"preset": "veryfast", "bf": "2"}
    return "mpeg4", {"bf": "2"}


def sequential_frames(path: Path, size: tuple[int, int], backend: str = "opencv") -> list:
    """Every frame a front-to-back decode yields, RGB at ``size``: the reference.

    OpenCV frames come upright; PyAV frames are turned by the file's display matrix.
    """
    if backend == "pyav":
        with av.open(str(path)) as container:
            return [
                pyav_to_rgb(frame, size, clockwise(frame.rotation))
                for frame in container.decode(video=0)
            ]
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr_to_rgb(bgr, size))
    capture.release()
    return frames


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture
def fixture_video(tmp_path: Path) -> Callable[[str], Path]:
    """A copy of a real file from tests/fixtures/videos."""

    def copy(name: str) -> Path:
        return Path(shutil.copy(FIXTURES / name, tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def mjpg_avi(videos: Path) -> Path:
    return write_opencv(videos / "mjpg.avi", 60, "MJPG")


@pytest.fixture(scope="session")
def mp4v_mp4(videos: Path) -> Path:
    return write_opencv(videos / "mp4v.mp4", 60, "mp4v")


@pytest.fixture(scope="session")
def xvid_avi(videos: Path) -> Path:
    return write_opencv(videos / "xvid.avi", 60, "XVID")


@pytest.fixture(scope="session")
def vp9_webm(videos: Path) -> Path:
    return write_opencv(videos / "vp9.webm", 60, "VP90")


@pytest.fixture(scope="session")
def h264_long(videos: Path) -> Path:
    """600 frames, a keyframe every 50, B-frames: long enough that seeking pays."""
    codec, options = inter_codec()
    return write_pyav(videos / "h264_long.mp4", 600, codec, options=options, gop=50)


@pytest.fixture(scope="session")
def vfr_mkv(videos: Path) -> Path:
    """Variable frame rate: gaps of 1, 2 or 3 ticks between frames, keyframe every 30."""
    codec, options = inter_codec()
    gaps = np.random.default_rng(7).integers(1, 4, size=400)
    pts = np.concatenate([[0], np.cumsum(gaps[:-1])]).tolist()
    return write_pyav(videos / "vfr.mkv", 400, codec, rate=50, pts=pts, options=options, gop=30)


@pytest.fixture(scope="session")
def rotated_mp4(videos: Path) -> Path:
    """A 160x120 picture stored with a display matrix asking for a 90 degree turn
    counter-clockwise; frame 0 is blank but for a white top-left quarter."""
    path = videos / "rotated.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.set_display_rotation(90)
        for i in range(10):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            image[: HEIGHT // 2, : WIDTH // 2] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """This file's helpers, for test modules (importlib mode cannot import conftest)."""
    return SimpleNamespace(
        code_image=code_image,
        read_number=read_number,
        numbers=numbers,
        write_opencv=write_opencv,
        write_pyav=write_pyav,
        inter_codec=inter_codec,
        sequential_frames=sequential_frames,
        FIXTURES=FIXTURES,
    )
