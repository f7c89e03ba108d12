"""Truth videos for bench/shot_detectors.py, built from the repository's real fixtures.

Every video is a list of frames (H x W x 3 uint8 RGB at :data:`SIZE`) at :data:`FPS`
with the transitions it holds: shots cut from tests/fixtures/videos (each a stretch of
one file, some zoomed, shifted or mirrored so that two shots of one file still differ),
joined by hard cuts, cross-fades of 0.5-2 s, fades through black and wipes; and
single-shot clips (a shaky hand-held crop, whip pans, a zoom) over one file's frames,
which hold no transition at all.

A transition's ``start`` is its first frame that is not the old shot's alone and
``end`` the new shot's first clean frame (a hard cut: start == end); frame numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "videos"
SOURCES = (
    "box.mp4",
    "Megamind_bugy.avi",
    "carphone_distorted.mp4",
    "tree.avi",
    "av1_video.mkv",
    "transparent.webm",
    "h265_10bits.mp4",
    "fire2.mp4",
)
FPS = 25.0
SIZE = (192, 108)  # width, height: the worker's frames, about, at a 16:9 short side of 108
# Sources are read a bit larger, so that a crop moving over them keeps its detail.
SOURCE_SIZE = (384, 216)
# Megamind_bugy.avi is a trailer: its own shots (first frame, last frame + 1), found by
# TransNetV2 and checked by eye; frame 0 is a lone frame of another shot.
OWN_SHOTS = {"Megamind_bugy.avi": ((1, 98), (98, 154), (154, 200), (200, 270))}


@dataclass(frozen=True)
class Transition:
    start: int
    end: int

    @property
    def gradual(self) -> bool:
        return self.end > self.start


@dataclass
class TruthVideo:
    name: str
    frames: list[np.ndarray] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.frames) / FPS


def read_source(name: str) -> np.ndarray:
    """Every frame of one fixture, RGB at SOURCE_SIZE (PyAV: it reads AV1 too)."""
    frames = []
    with av.open(str(FIXTURES / name)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(_fill(rgb, SOURCE_SIZE))
    return np.stack(frames)


def read_sources() -> dict[str, np.ndarray]:
    """Every source shot: each fixture, a trailer's own shots apart."""
    sources = {}
    for name in SOURCES:
        frames = read_source(name)
        for number, (first, end) in enumerate(OWN_SHOTS.get(name, ((0, len(frames)),))):
            sources[f"{name}#{number}"] = frames[first:end]
    return sources


def _fill(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the aspect of ``size``, then resize."""
    height, width = rgb.shape[:2]
    aspect = size[0] / size[1]
    if width / height > aspect:
        keep = round(height * aspect)
        rgb = rgb[:, (width - keep) // 2 : (width - keep) // 2 + keep]
    else:
        keep = round(width / aspect)
        rgb = rgb[(height - keep) // 2 : (height - keep) // 2 + keep]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class Shots:
    """Shots cut from the sources in turn, each a different look at its file."""

    def __init__(self, sources: dict[str, np.ndarray], seed: int) -> None:
        self.sources = sources
        self.rng = np.random.default_rng(seed)
        self.turn = 0

    def next(self, frames: int) -> list[np.ndarray]:
        names = list(self.sources)
        name = names[self.turn % len(names)]
        self.turn += 1
        source = self.sources[name]
        zoom = self.rng.uniform(1.0, 1.6)
        mirror = bool(self.rng.integers(2))
        width, height = round(SOURCE_SIZE[0] / zoom), round(SOURCE_SIZE[1] / zoom)
        x = int(self.rng.integers(0, SOURCE_SIZE[0] - width + 1))
        y = int(self.rng.integers(0, SOURCE_SIZE[1] - height + 1))
        first = int(self.rng.integers(0, max(1, len(source) - frames)))
        out = []
        for i in range(frames):
            # A source shorter than the shot plays forward and back.
            k = first + i
            period = max(1, 2 * (len(source) - 1))
            k %= period
            k = k if k < len(source) else period - k
            crop = source[k, y : y + height, x : x + width]
            if mirror:
                crop = crop[:, ::-1]
            out.append(cv2.resize(np.ascontiguousarray(crop), SIZE, interpolation=cv2.INTER_AREA))
        return out


def _blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return cv2.addWeighted(a, 1 - alpha, b, alpha, 0)


def _wipe(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    out = a.copy()
    edge = round(alpha * a.shape[1])
    out[:, :edge] = b[:, :edge]
    return out


def join(name: str, shots: Shots, plan: list[tuple[str, float]], shot_s: float) -> TruthVideo:
    """Shots of about ``shot_s`` joined by the transitions of ``plan``: (kind, seconds)
    with kind ``cut``, ``dissolve``, ``fade`` (through black) or ``wipe``."""
    video = TruthVideo(name)
    rng = shots.rng
    current = shots.next(round(shot_s * FPS * rng.uniform(0.8, 1.2)))
    for kind, seconds in plan:
        length = round(seconds * FPS)
        new = shots.next(round(shot_s * FPS * rng.uniform(0.8, 1.2)) + length)
        if kind == "cut":
            video.frames += current
            video.transitions.append(Transition(len(video.frames), len(video.frames)))
            current = new
            continue
        # The transition overlaps the old shot's last ``length`` frames with the new one's first.
        keep, overlap = current[:-length], current[-length:]
        video.frames += keep
        start = len(video.frames)
        for i in range(length):
            alpha = (i + 1) / (length + 1)
            a, b = overlap[i], new[i]
            if kind == "dissolve":
                frame = _blend(a, b, alpha)
            elif kind == "wipe":
                frame = _wipe(a, b, alpha)
            elif alpha < 0.5:  # fade: out to black, then in from it
                frame = _blend(a, np.zeros_like(a), alpha * 2)
            else:
                frame = _blend(np.zeros_like(b), b, alpha * 2 - 1)
            video.frames.append(frame)
        video.transitions.append(Transition(start, len(video.frames)))
        current = new[length:]
    video.frames += current
    return video


def single_shot(
    name: str, source: np.ndarray, motion: str, seconds: float, seed: int
) -> TruthVideo:
    """One shot: a crop of half the source's size moving over its frames: ``shaky``
    (hand-held: a random walk with jitter), ``whip`` (still, then a pan across the frame
    in a few frames, and back), ``zoom`` (in and out)."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * FPS)
    width, height = SOURCE_SIZE[0] // 2, SOURCE_SIZE[1] // 2
    room_x, room_y = SOURCE_SIZE[0] - width, SOURCE_SIZE[1] - height
    video = TruthVideo(name)
    x, y = room_x / 2, room_y / 2
    for i in range(frames):
        k = i % (2 * len(source) - 2) if len(source) > 1 else 0
        k = k if k < len(source) else 2 * len(source) - 2 - k
        scale = 1.0
        if motion == "shaky":
            x = float(np.clip(x + rng.normal(0, 6), 0, room_x))
            y = float(np.clip(y + rng.normal(0, 4), 0, room_y))
        elif motion == "whip":
            # Whip pans: 8 frames from one edge to the other, every 1.5 s, blurred as a
            # shutter open for half the frame blurs them.
            phase = i % round(1.5 * FPS)
            direction = (i // round(1.5 * FPS)) % 2
            y = room_y / 2 + rng.normal(0, 2)
            steps = [min(1.0, (phase + s / 8) / 8) for s in range(4)]
            xs = [room_x * (t if direction == 0 else 1 - t) for t in steps]
            top = int(np.clip(y, 0, room_y))
            views = [source[k, top : top + height, round(v) : round(v) + width] for v in xs]
            blurred = np.mean(np.stack(views), axis=0).astype(np.uint8)
            video.frames.append(cv2.resize(blurred, SIZE, interpolation=cv2.INTER_AREA))
            continue
        else:
            scale = 1.0 + 0.5 * (1 - np.cos(2 * np.pi * i / (2 * FPS))) / 2
        w, h = round(width / scale), round(height / scale)
        cx, cy = x + width / 2, y + height / 2
        left = int(np.clip(cx - w / 2, 0, SOURCE_SIZE[0] - w))
        top = int(np.clip(cy - h / 2, 0, SOURCE_SIZE[1] - h))
        crop = source[k, top : top + h, left : left + w]
        video.frames.append(cv2.resize(crop, SIZE, interpolation=cv2.INTER_AREA))
    return video


GRADUAL = [
    ("dissolve", 0.5),
    ("dissolve", 1.0),
    ("dissolve", 1.5),
    ("dissolve", 2.0),
    ("fade", 0.6),
    ("fade", 1.2),
    ("wipe", 0.8),
]


def truth_videos(seed: int = 0) -> Iterator[TruthVideo]:
    """The benchmark's videos: 3 of hard cuts (45 cuts), 2 of gradual transitions
    mixed with a few hard cuts, and 9 single-shot clips."""
    sources = read_sources()
    for number in range(3):
        shots = Shots(sources, seed * 100 + number)
        yield join(f"cuts{number}", shots, [("cut", 0)] * 15, shot_s=2.0 + number)
    for number in range(2):
        shots = Shots(sources, seed * 100 + 10 + number)
        plan = list(GRADUAL)
        if number:
            plan = [("dissolve", 0.7), ("fade", 0.8), ("wipe", 1.2), ("dissolve", 1.2), *plan[:3]]
        mixed: list[tuple[str, float]] = []
        for i, step in enumerate(plan):
            mixed.append(step)
            if i % 3 == 2:
                mixed.append(("cut", 0))
        yield join(f"gradual{number}", shots, mixed, shot_s=2.5)
    long_sources = ["box.mp4#0", "Megamind_bugy.avi#3", "carphone_distorted.mp4#0"]
    for number, (motion, name) in enumerate(
        (m, s) for m in ("shaky", "whip", "zoom") for s in long_sources
    ):
        yield single_shot(
            f"single_{motion}_{name.split('.')[0]}", sources[name], motion, 8.0, number
        )
