"""An offline motion dataset: real encoded videos, generated.

HMDB51 and Kinetics weights cannot be fetched everywhere, yet the trainer must be
exercised end to end on real encoded videos. This module writes a small dataset::

    root/videos/<class>/<class>_<n>.avi           encoded with cv2.VideoWriter
    root/synthetic.json                           the settings it was made with

whose train/test splits follow from those settings (``split_assignment``, read by
trainer.datasets.synthetic), and whose classes differ *only in motion*. Every video
shows a window onto a random, seamlessly tiling texture; the window then moves (pans,
zooms, spins, shakes) or stays still. Position, orientation and zoom of any single frame follow the same distribution
in every class, so a model that looks at one frame at a time cannot tell the classes
apart; only the change between frames can.

Training flips clips horizontally (HMDB51's actions are mirror-symmetric), so every
class here is mirror-invariant too: "pan up" stays "pan up" in a mirror, and the
classes whose motion has a left/right sense ("pan sideways", "spin") draw that sense at
random per video. A left/right pair of classes would be unlearnable under that
augmentation.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)

MANIFEST = "synthetic.json"
SPLITS = (1, 2, 3)
TRAIN_TAG, TEST_TAG = 1, 2


@dataclass(frozen=True)
class Motion:
    """How the window onto the texture moves, in units of the frame's shorter side."""

    name: str
    pan: tuple[float, float] = (0.0, 0.0)  # (x, y) per frame
    mirror_pan: bool = False  # draw the horizontal sense at random per video
    zoom: float = 0.0  # change of log-scale per frame
    spin: float = 0.0  # radians per frame, sense drawn at random per video
    shake: float = 0.0  # amplitude of a horizontal oscillation


# Ordered from the easiest to learn: the first four differ in the direction of a
# uniform translation, which a pooled feature map keeps; zooming and spinning show
# opposite motions in different parts of the frame, which pooling must not average away.
_PAN = 0.12
_ZOOM_RATE = 0.08
MOTIONS: tuple[Motion, ...] = (
    Motion("pan_up", pan=(0.0, -_PAN)),
    Motion("pan_down", pan=(0.0, _PAN)),
    Motion("pan_sideways", pan=(_PAN, 0.0), mirror_pan=True),
    Motion("still"),
    Motion("zoom_in", zoom=_ZOOM_RATE),
    Motion("zoom_out", zoom=-_ZOOM_RATE),
    Motion("spin", spin=0.15),
    Motion("shake", shake=0.15),
)

# Half-width of the per-video log-scale range; zooming classes sweep through it.
_LOG_SCALE_RANGE = math.log(1.4)
_SHAKE_PERIOD = 6.0  # frames


class SyntheticDatasetError(RuntimeError):
    """The target folder holds something other than the synthetic dataset asked for."""


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. The defaults train on a CPU in minutes."""

    num_classes: int = 8
    videos_per_class: int = 20
    frames: int = 24
    width: int = 64
    height: int = 48
    fps: float = 25.0
    test_fraction: float = 0.3
    seed: int = 0
    fourcc: str = "MJPG"  # intra-frame: exact seeks, no motion smeared by inter coding
    classes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(MOTIONS):
            raise ValueError(f"num_classes must be between 2 and {len(MOTIONS)}")
        if self.videos_per_class < 2:
            raise ValueError("videos_per_class must be at least 2 (one train, one test)")
        if self.frames < 2 or min(self.width, self.height) < 16:
            raise ValueError("videos need at least 2 frames of at least 16x16 pixels")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must be strictly between 0 and 1")
        if len(self.fourcc) != 4:
            raise ValueError(f"fourcc must have 4 characters, got {self.fourcc!r}")
        object.__setattr__(self, "classes", tuple(m.name for m in MOTIONS[: self.num_classes]))

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("classes")
        return data


def write_synthetic_dataset(
    root: str | os.PathLike,
    config: SyntheticConfig | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Write the dataset under ``root`` (skipped when an identical one is there).

    Returns ``root``. Raises :class:`SyntheticDatasetError` when ``root`` already holds
    a different dataset, rather than mixing the two or deleting anything.
    """
    config = config or SyntheticConfig()
    root = Path(root)
    manifest_path = root / MANIFEST
    expected = {"generator": "actiontag.synthetic/2", **config.to_dict()}
    if manifest_path.exists():
        found = json.loads(manifest_path.read_text())
        if found != expected:
            raise SyntheticDatasetError(
                f"{root} holds a synthetic dataset made with other settings ({found}); "
                "choose another --data-dir or delete that folder"
            )
        if _is_complete(root, config):
            log.info("synthetic dataset in %s is complete; nothing to write", root)
            return root
    elif (root / "videos").exists() or (root / "splits").exists():  # another dataset's
        raise SyntheticDatasetError(
            f"{root} already holds videos/ or splits/ that this generator did not write; "
            "choose another --data-dir for --dataset synthetic"
        )

    root.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(expected, indent=2) + "\n")
    jobs = [
        (label, n) for label in range(config.num_classes) for n in range(config.videos_per_class)
    ]
    for label, n in tqdm(jobs, desc="synthetic videos", unit="video", disable=not progress):
        path = video_path(root, config, label, n)
        if not path.exists():
            _write_video(path, render_video(config, label, n), config)
    log.info(
        "wrote synthetic dataset: %d classes x %d videos of %d frames %dx%d in %s",
        config.num_classes,
        config.videos_per_class,
        config.frames,
        config.width,
        config.height,
        root,
    )
    return root


def video_path(root: Path, config: SyntheticConfig, label: int, index: int) -> Path:
    name = config.classes[label]
    return root / "videos" / name / f"{name}_{index:03d}.avi"


def render_video(config: SyntheticConfig, label: int, index: int) -> np.ndarray:
    """Frames of one video, ``frames x height x width x 3`` uint8 BGR (cv2's order)."""
    rng = _video_rng(config, label, index)
    motion = MOTIONS[label]
    size = min(config.width, config.height)
    texture = _tiling_texture(rng, config.height * 2, config.width * 2)
    path = _window_path(rng, motion, config.frames, size)
    return np.stack([_view(texture, pose, config.width, config.height) for pose in path])


def _is_complete(root: Path, config: SyntheticConfig) -> bool:
    return all(
        video_path(root, config, label, n).exists()
        for label in range(config.num_classes)
        for n in range(config.videos_per_class)
    )


def _video_rng(config: SyntheticConfig, label: int, index: int) -> np.random.Generator:
    # Keyed by (seed, class, index) so a larger dataset contains the smaller one.
    return np.random.default_rng([config.seed, label, index])


def _tiling_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random texture that tiles seamlessly, so the window may wander anywhere."""
    image = _periodic_background(rng, height, width)
    size = min(height, width)
    for _ in range(int(rng.integers(70, 100))):
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        # Log-uniform sizes: the texture looks alike at every zoom level.
        radius = size * math.exp(rng.uniform(math.log(0.03), math.log(0.18)))
        kind = int(rng.integers(0, 3))
        angle = rng.uniform(0, 180)
        aspect = rng.uniform(0.3, 1.0)
        # Draw each shape once per neighbouring tile so it wraps across the borders.
        for dx in (-width, 0, width):
            for dy in (-height, 0, height):
                center = (cx + dx, cy + dy)
                if kind == 0:
                    _circle(image, center, radius, color)
                elif kind == 1:
                    _rotated_rect(image, center, radius, aspect, angle, color)
                else:
                    _stroke(image, center, radius, angle, color)
    return image


def _periodic_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A base colour plus a few sinusoids whose whole periods fit the canvas.

    Never flat, so even a window that falls between shapes shows its motion.
    """
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.tile(rng.uniform(40, 215, size=3), (height, width, 1))
    for _ in range(4):
        fx, fy = rng.integers(-3, 4, size=2)
        phase = 2 * math.pi * (fx * xs / width + fy * ys / height) + rng.uniform(0, 2 * math.pi)
        image += np.sin(phase)[..., None] * rng.uniform(-20, 20, size=3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _circle(image: np.ndarray, center: tuple[float, float], radius: float, color) -> None:
    cv2.circle(image, _fixed(center), round(radius * 16), color, -1, cv2.LINE_AA, shift=4)


def _rotated_rect(image, center, radius, aspect, angle, color) -> None:
    box = cv2.boxPoints((center, (2 * radius, 2 * radius * aspect), angle))
    cv2.fillPoly(image, [np.round(box * 16).astype(np.int32)], color, cv2.LINE_AA, shift=4)


def _stroke(image, center, radius, angle, color) -> None:
    dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
    start, end = (center[0] - dx, center[1] - dy), (center[0] + dx, center[1] + dy)
    thickness = max(1, round(radius / 4))
    cv2.line(image, _fixed(start), _fixed(end), color, thickness, cv2.LINE_AA, shift=4)


def _fixed(point: tuple[float, float]) -> tuple[int, int]:
    return round(point[0] * 16), round(point[1] * 16)


@dataclass(frozen=True)
class _Pose:
    x: float  # window centre on the texture, pixels
    y: float
    angle: float  # radians
    log_scale: float  # > 0 magnifies


def _window_path(rng: np.random.Generator, motion: Motion, frames: int, size: int) -> list[_Pose]:
    """The window's pose in every frame.

    Motions are defined on screen (what the viewer sees), then turned into moves of
    the window on the texture through the window's current rotation and zoom.
    Every quantity that a single frame shows (position, angle, zoom) has the same
    distribution at a random frame whatever the class: positions and angles are
    uniform on the tiling texture, and the classes that do not zoom draw their
    fixed zoom from the range the zooming classes sweep through.
    """
    x, y = rng.uniform(0, 1e4), rng.uniform(0, 1e4)  # the texture tiles: any start
    angle0 = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(0.75, 1.25)
    base = rng.uniform(-_LOG_SCALE_RANGE, _LOG_SCALE_RANGE) / 2
    mid = (frames - 1) / 2
    sense = float(rng.choice([-1.0, 1.0]))
    zoom_reference = _ZOOM_RATE * speed * (rng.uniform(0, frames - 1) - mid)
    phase = rng.uniform(0, 2 * math.pi)
    pan = np.array([motion.pan[0] * (sense if motion.mirror_pan else 1.0), motion.pan[1]])
    poses = []
    for t in range(frames):
        angle = angle0 + sense * motion.spin * speed * t
        log_scale = base + (motion.zoom * speed * (t - mid) if motion.zoom else zoom_reference)
        to_texture = _screen_to_texture(angle, log_scale)
        # Content moves by m on screen when the window moves by -A m on the texture.
        shake = np.array([motion.shake * math.sin(2 * math.pi * t / _SHAKE_PERIOD + phase), 0.0])
        sx, sy = -(to_texture @ (shake * size))
        poses.append(_Pose(x=x + sx, y=y + sy, angle=angle, log_scale=log_scale))
        x, y = np.array([x, y]) - to_texture @ (pan * size * speed)
    return poses


def _screen_to_texture(angle: float, log_scale: float) -> np.ndarray:
    """A: a step of q pixels on screen is a step of A q on the texture."""
    scale = math.exp(-log_scale)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[cos, -sin], [sin, cos]])


def _view(texture: np.ndarray, pose: _Pose, width: int, height: int) -> np.ndarray:
    """Render the window: screen pixel q shows texture point c + A (q - q0)."""
    to_texture = _screen_to_texture(pose.angle, pose.log_scale)
    q0 = np.array([(width - 1) / 2, (height - 1) / 2])
    th, tw = texture.shape[:2]
    centre = np.array([pose.x % tw, pose.y % th])
    inverse = np.hstack([to_texture, (centre - to_texture @ q0)[:, None]])
    return cv2.warpAffine(
        texture,
        inverse,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_WRAP,
    )


def _write_video(path: Path, frames: np.ndarray, config: SyntheticConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name: an interrupted run never leaves a short video
    # that a rerun would take for a finished one. The suffix stays .avi for the muxer.
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    writer = cv2.VideoWriter(
        str(partial),
        cv2.VideoWriter_fourcc(*config.fourcc),
        config.fps,
        (config.width, config.height),
    )
    if not writer.isOpened():
        raise SyntheticDatasetError(
            f"OpenCV cannot write {config.fourcc!r} video to {partial}; try fourcc 'MJPG'"
        )
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    os.replace(partial, path)


def split_assignment(config: SyntheticConfig, split: int) -> list[list[int]]:
    """Per class, the tag (1 train, 2 test) of each video index in ``split``."""
    rng = np.random.default_rng([config.seed, 1000 + split])
    num_test = max(1, round(config.videos_per_class * config.test_fraction))
    tags = []
    for _ in config.classes:
        order = rng.permutation(config.videos_per_class)
        class_tags = [TRAIN_TAG] * config.videos_per_class
        for n in order[:num_test]:
            class_tags[int(n)] = TEST_TAG
        tags.append(class_tags)
    return tags


def motion_names(count: int | None = None) -> Sequence[str]:
    """Names of the available motion classes (the first ``count``)."""
    return [m.name for m in MOTIONS[: count or len(MOTIONS)]]


# -- long videos with known segments (the truth tests) ---------------------------------

# The training videos' log scale stays within +-1.32 (a base of up to half of
# _LOG_SCALE_RANGE plus a zoom sweep of up to 1.25 x 0.08 x 23 / 2). A zooming part of a
# sequence that goes well beyond shows a scene the model never saw (shapes blown up or
# shrunk to dots), so it is refused rather than rendered; the margin lets a 3 s zoom at
# 10 fps through.
_SEQUENCE_LOG_SCALE_LIMIT = 1.7


@dataclass(frozen=True)
class Part:
    """One stretch of a sequence: ``seconds`` of ``motion``.

    ``cut``: the part starts a new shot (a new texture seen from a new pose: a hard cut);
    otherwise the view continues from where the previous part left it and only the
    motion changes (no visual discontinuity). The first part always starts a shot.
    """

    motion: str
    seconds: float
    cut: bool = True


# The truth video: 12 parts of 3-8 s, 51 s: 6 hard cuts, 5 changes of motion
# inside a shot. Every motion class appears; zooms are kept to 3 s (at 10 fps) so the
# scale stays in training's range. The segment and shot tests and bench/shot_detectors.py
# render it.
TRUTH_PARTS = (
    Part("pan_up", 4),
    Part("still", 3, cut=False),
    Part("pan_sideways", 5, cut=False),
    Part("spin", 4),
    Part("shake", 3, cut=False),
    Part("zoom_in", 3),
    Part("pan_down", 5),
    Part("still", 4, cut=False),
    Part("shake", 6),
    Part("pan_up", 3, cut=False),
    Part("zoom_out", 3),
    Part("pan_sideways", 8),
)


# The same kind of video in the demonstration model's 4 motions (launcher.demo_recipe):
# 14 parts of 3-8 s, 67 s, 5 hard cuts and 8 changes of motion inside a shot. The
# worker's truth test, bench/segments.py and bench/segment_defaults.py tag it with the
# demonstration model.
DEMO_TRUTH_PARTS = (
    Part("pan_up", 5),
    Part("still", 4, cut=False),
    Part("pan_sideways", 6, cut=False),
    Part("pan_down", 3),
    Part("pan_up", 4, cut=False),
    Part("still", 7),
    Part("pan_down", 5, cut=False),
    Part("pan_sideways", 3),
    Part("still", 8, cut=False),
    Part("pan_up", 6),
    Part("pan_sideways", 4, cut=False),
    Part("pan_down", 3, cut=False),
    Part("still", 4),
    Part("pan_up", 5, cut=False),
)


@dataclass(frozen=True)
class Agreement:
    """How segments found in a truth video compare with its truth.

    ``right``: the share of its frames whose segment label is the true one (untagged
    counts as wrong); ``farthest_boundary_s``: the farthest a true boundary between
    parts lies from the nearest segment boundary; ``stray_boundary_s``: the farthest an
    inner segment boundary lies from the nearest true one.
    """

    right: float
    farthest_boundary_s: float
    stray_boundary_s: float


def segment_agreement(segments: Sequence[Any], truth: SequenceTruth) -> Agreement:
    """Compare ``segments`` (anything with ``start_s``, ``end_s`` and ``label``, in
    time order) with ``truth``, frame by frame (each frame at its middle)."""
    middles = (np.arange(truth.frames) + 0.5) / truth.fps
    starts = np.array([s.start_s for s in segments])
    said = []
    for t in middles:
        i = int(np.searchsorted(starts, t, side="right")) - 1
        said.append(segments[i].label if i >= 0 and t < segments[i].end_s else None)
    right = float(np.mean([a == truth.label_at(t) for a, t in zip(said, middles, strict=True)]))
    edges = np.array(sorted({s.start_s for s in segments} | {s.end_s for s in segments}))
    inner = edges[(edges > 0.5 / truth.fps) & (edges < truth.duration_s - 0.5 / truth.fps)]
    true_edges = np.array(truth.starts_s[1:])
    if edges.size == 0:
        return Agreement(right, float("inf"), 0.0)
    farthest = max((float(np.abs(edges - b).min()) for b in true_edges), default=0.0)
    stray = max((float(np.abs(true_edges - e).min()) for e in inner), default=0.0)
    return Agreement(right, farthest, stray)


@dataclass(frozen=True)
class SequenceTruth:
    """What a rendered sequence shows: its parts' frame ranges and times."""

    fps: float
    parts: tuple[Part, ...]
    first_frames: tuple[int, ...]  # the first frame of each part, and the total last
    width: int
    height: int

    @property
    def frames(self) -> int:
        return self.first_frames[-1]

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def starts_s(self) -> tuple[float, ...]:
        return tuple(f / self.fps for f in self.first_frames[:-1])

    @property
    def ends_s(self) -> tuple[float, ...]:
        return tuple(f / self.fps for f in self.first_frames[1:])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(p.motion for p in self.parts)

    @property
    def cuts_s(self) -> tuple[float, ...]:
        """Times of the hard cuts: the first frame of every part that starts a shot
        (the video's first frame is not a cut)."""
        return tuple(s for s, p in zip(self.starts_s, self.parts, strict=True) if p.cut)[1:]

    @property
    def changes_s(self) -> tuple[float, ...]:
        """Times where only the motion changes, inside a shot."""
        return tuple(s for s, p in zip(self.starts_s, self.parts, strict=True) if not p.cut)

    def label_at(self, seconds: float) -> str:
        """The motion shown at ``seconds`` (the last part's past the end)."""
        frame = int(seconds * self.fps)
        index = int(np.searchsorted(self.first_frames, frame, side="right")) - 1
        return self.parts[min(max(index, 0), len(self.parts) - 1)].motion


def sequence_truth(
    parts: Sequence[Part], *, fps: float = 25.0, width: int = 64, height: int = 48
) -> SequenceTruth:
    """The frame ranges of ``parts`` at ``fps`` (each part rounded to whole frames,
    boundaries at the rounded running sum so errors never add up)."""
    if not parts:
        raise ValueError("a sequence needs at least one part")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    names = {m.name for m in MOTIONS}
    firsts = [0]
    total = 0.0
    for part in parts:
        if part.motion not in names:
            raise ValueError(f"unknown motion {part.motion!r}; known: {sorted(names)}")
        total += part.seconds
        end = round(total * fps)
        if end - firsts[-1] < 2:
            raise ValueError(f"part {part} is shorter than 2 frames at {fps} fps")
        firsts.append(end)
    parts = (Part(parts[0].motion, parts[0].seconds, True), *parts[1:])
    return SequenceTruth(fps, tuple(parts), tuple(firsts), width, height)


def sequence_frames(truth: SequenceTruth, *, seed: int = 0) -> Iterator[np.ndarray]:
    """The frames of ``truth``'s sequence, one at a time (``height x width x 3`` uint8
    BGR), so an hour-long sequence never sits in memory.

    Each shot draws its texture and starting pose as a training video does; a part that
    continues a shot starts from the pose the previous part reached, one step on, and
    only the motion changes. Speed, the sense of a sideways pan or spin and the shake's
    phase are drawn per part, as per training video.
    """
    size = min(truth.width, truth.height)
    by_name = {m.name: m for m in MOTIONS}
    state: list[float] = []  # x, y, angle, log_scale: the view before shaking
    texture = np.empty(0)
    for index, part in enumerate(truth.parts):
        rng = np.random.default_rng([seed, 1_000_003, index])
        motion = by_name[part.motion]
        frames = truth.first_frames[index + 1] - truth.first_frames[index]
        speed = rng.uniform(0.75, 1.25)
        sense = float(rng.choice([-1.0, 1.0]))
        phase = rng.uniform(0, 2 * math.pi)
        if part.cut:
            texture = _tiling_texture(rng, truth.height * 2, truth.width * 2)
            base = rng.uniform(-_LOG_SCALE_RANGE, _LOG_SCALE_RANGE) / 2
            # A zoom sweeps a range centred on the shot's base scale, as in training.
            start_scale = base - motion.zoom * speed * (frames - 1) / 2
            state = [rng.uniform(0, 1e4), rng.uniform(0, 1e4), rng.uniform(0, 2 * math.pi)]
            state.append(start_scale)
        end_scale = state[3] + motion.zoom * speed * (frames - 1)
        if max(abs(state[3]), abs(end_scale)) > _SEQUENCE_LOG_SCALE_LIMIT:
            raise ValueError(
                f"part {index} ({part.motion}, {frames} frames) zooms to a log scale of "
                f"{end_scale:+.2f}, beyond +-{_SEQUENCE_LOG_SCALE_LIMIT} (training shows +-1.32): "
                "make it shorter or start it with a cut"
            )
        pan = np.array([motion.pan[0] * (sense if motion.mirror_pan else 1.0), motion.pan[1]])
        for t in range(frames):
            x, y, angle, log_scale = state
            to_texture = _screen_to_texture(angle, log_scale)
            shake = np.array([motion.shake * math.sin(2 * math.pi * t / _SHAKE_PERIOD + phase), 0])
            sx, sy = -(to_texture @ (shake * size))
            yield _view(texture, _Pose(x + sx, y + sy, angle, log_scale), truth.width, truth.height)
            x, y = np.array([x, y]) - to_texture @ (pan * size * speed)
            state = [x, y, angle + sense * motion.spin * speed, log_scale + motion.zoom * speed]


def write_sequence(
    path: str | os.PathLike,
    parts: Sequence[Part],
    *,
    fps: float = 25.0,
    width: int = 64,
    height: int = 48,
    seed: int = 0,
    fourcc: str = "MJPG",
) -> SequenceTruth:
    """Render ``parts`` into one video at ``path``; return what it shows."""
    truth = sequence_truth(parts, fps=fps, width=width, height=height)
    config = SyntheticConfig(width=width, height=height, fps=fps, fourcc=fourcc)
    _write_video(Path(path), sequence_frames(truth, seed=seed), config)
    return truth
