"""Untrimmed videos with labelled time segments: ``--dataset segments --annotations
FILE.csv``, lines `path,start,end,label` (trainer.datasets.segment_files).

Paths are relative to ROOT (``--data-dir``, by default the CSV's folder) and checked as
the list dataset checks them (trainer.datasets.video_paths). Each video is probed once
(decoding.video: one demux pass) for its frame times, which turn a segment's seconds
into frames as the worker's windows count them (decoding.frame_times: the first frame
shown at or after a time); a segment that ends past the video's end (by more than half
a frame, what rounding to milliseconds may add) is a bad line. The classes are the
labels, sorted; every bad line is reported at once with its file and line number.

An item of the split is a segment (trainer.datasets.base.Stretch): training draws its
clip inside the segment, evaluation takes uniform clips inside it, and a segment
shorter than a clip takes a clip centred on it (model.transform.VideoTransform).

``background`` (any case) names unlabelled time. It is refused as a label unless
``--background-clips F`` is given: then class ``background`` is added, its items are
the stretches of each video that no segment covers and that hold a whole clip (split
into pieces a clip long at least), about ``F`` of each part's items (beside the
segments labelled ``background``), the longest stretches first.

The split is by video, never by segment: whole videos go to the test, drawn per main
label (the label with the most labelled time in a video) by ``--test-fraction`` and
``--split-seed`` (trainer.datasets.folders.draw_split), or as ``--split-file`` says
(lines `PATH TAG`, the folders dataset's format). A new run writes the split it used to
``split.txt`` and what it found to ``dataset.json``; ``truth`` gives the test videos'
segments to score a temporal evaluation against.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import logging
from collections.abc import Set
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS, Settings
from actiontag.text import escape_control
from decoding.frame_times import FrameTimes
from decoding.video import VideoError, frame_index, probe
from model.config import ModelConfig
from trainer.datasets.base import Split, Stretch
from trainer.datasets.folders import SPLIT_RECORD, UNUSED, draw_split, read_split_file, split_text
from trainer.datasets.inventory import Inventory
from trainer.datasets.line_files import Problems
from trainer.datasets.own_videos import OwnVideos
from trainer.datasets.segment_files import Annotation, Segment, merge_overlaps, read_annotations
from trainer.datasets.video_paths import path_problem
from trainer.errors import DatasetError

__all__ = ["BACKGROUND", "Segments", "TruthSegment", "VideoTruth"]

log = logging.getLogger(__name__)

BACKGROUND = "background"
PARTS = ("train", "test")


class TruthSegment(NamedTuple):
    """A labelled segment of a test video, in seconds from its first frame."""

    start_s: float
    end_s: float
    label: int  # a position in the split's classes


@dataclass(frozen=True)
class VideoTruth:
    """A test video and its segments, sorted by start (none overlap)."""

    path: str  # relative to the dataset's root (Dataset.videos)
    duration_s: float
    segments: tuple[TruthSegment, ...]


@dataclass(frozen=True)
class _Video:
    """An annotated video: its segments, their frames, its unlabelled stretches."""

    path: str
    duration_s: float
    segments: tuple[Segment, ...]  # sorted by start
    frames: tuple[tuple[int, int], ...]  # each segment's (first, end) frames
    gaps: tuple[tuple[int, int], ...]  # unlabelled stretches a clip long at least

    def main_label(self) -> str:
        """The label with the most time (background only when it is the only one)."""
        time: dict[str, float] = {}
        for segment in self.segments:
            time[segment.label] = time.get(segment.label, 0.0) + segment.end_s - segment.start_s
        named = {label: s for label, s in time.items() if label != BACKGROUND} or time
        return min(named, key=lambda label: (-named[label], label))


class Segments(OwnVideos):
    """The segments ``annotations`` lists, of videos under ``root``."""

    name = "segments"
    root_holds = "the annotations' paths are relative to"

    def __init__(
        self,
        root: Path,
        annotations: Path,
        *,
        extensions: Set[str] = DEFAULT_VIDEO_EXTENSIONS,
        split_file: Path | None = None,
        test_fraction: float = 0.2,
        seed: int = 0,
        background: float = 0.0,
        clip_frames: int = ModelConfig.clip_len,
    ) -> None:
        super().__init__(root)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be between 0 and 1, not {test_fraction}")
        if not 0.0 <= background < 1.0:
            raise ValueError(f"--background-clips must be in [0, 1), not {background}")
        if clip_frames < 1:
            raise ValueError(f"clip_frames must be at least 1, not {clip_frames}")
        self.annotations, self.split_file = Path(annotations), split_file
        self.extensions = frozenset(extensions)
        self.test_fraction, self.seed = test_fraction, seed
        # background: the share of each part's items drawn from unlabelled time;
        # clip_frames: the frames one clip spans, the shortest such stretch.
        self.background, self.clip_frames = background, clip_frames
        self._videos: dict[str, _Video] = {}

    @classmethod
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> Segments:
        """As ``python -m trainer`` asks for it; ValueError for a bad option."""
        if args.annotations is None:
            raise ValueError(
                "--dataset segments needs --annotations FILE.csv, lines `path,start,end,label`"
            )
        if args.split not in cls.splits:
            raise ValueError("--dataset segments has one split: drop --split (or give 1)")
        clip_len = args.clip_len or ModelConfig.clip_len
        stride = args.frame_stride or ModelConfig.frame_stride
        return cls(
            args.data_dir or args.annotations.parent,
            args.annotations,
            extensions=settings.video_extensions,
            split_file=args.split_file,
            test_fraction=args.test_fraction,
            seed=args.split_seed,
            background=args.background_clips,
            clip_frames=(clip_len - 1) * stride + 1,
        )

    def record(self, run_dir: Path) -> None:
        found = self.inventory()
        found.write(run_dir)
        (run_dir / SPLIT_RECORD).write_bytes(self._split_record(found.split))

    def split_sha256(self, k: int) -> str:
        """That of the ``split.txt`` :meth:`record` writes (the same bytes, hashed)."""
        return hashlib.sha256(self._split_record(self.split(k))).hexdigest()

    def split_options(self) -> dict[str, Any]:
        return {
            "annotations": str(self.annotations),
            "annotations_sha256": hashlib.sha256(self.annotations.read_bytes()).hexdigest(),
            "test_fraction": self.test_fraction,
            "split_seed": self.seed,
            "split_file": None if self.split_file is None else str(self.split_file),
            "background_clips": self.background,
        }

    @staticmethod
    def _split_record(split: Split) -> bytes:
        return split_text(split, "segments --annotations FILE.csv").encode("utf-8")

    def truth(self, k: int = 1) -> list[VideoTruth]:
        """The test videos of split ``k``, sorted by path, each with its segments (their
        labels positions in the split's classes; a segment labelled ``background`` is
        one of them, class ``background``; the sampled unlabelled time is not)."""
        split = self.split(k)
        index = {name: label for label, name in enumerate(split.classes)}
        truth = []
        for path in sorted({item[0] for item in split.test}):
            video = self._videos[path]
            segments = tuple(
                TruthSegment(s.start_s, min(s.end_s, video.duration_s), index[s.label])
                for s in video.segments
            )
            truth.append(VideoTruth(path, video.duration_s, segments))
        return truth

    def timed_truth(self, k: int) -> list[tuple[str, list[tuple[float, float, int]]]]:
        return [
            (video.path, [(s.start_s, s.end_s, s.label) for s in video.segments])
            for video in self.truth(k)
        ]

    def _take_inventory(self) -> Inventory:
        self._videos = videos = self._read()
        if len(videos) < 2:
            raise DatasetError(
                f"{escape_control(self.annotations)} labels segments of {len(videos)} video: "
                "the split is by video, so it needs two at least, one to train on and one "
                "to test."
            )
        tags, ignored = self._tags(videos)
        labels = {segment.label for video in videos.values() for segment in video.segments}
        classes = sorted(labels | ({BACKGROUND} if self.background else set()))
        index = {name: label for label, name in enumerate(classes)}
        parts: dict[str, list[Stretch]] = {}
        for part in PARTS:
            chosen = [videos[path] for path in sorted(videos) if tags.get(path) == part]
            parts[part] = self._items(chosen, index)
        split = Split(classes, parts["train"], parts["test"], [])
        self._check(split)
        return Inventory("segments", self.root, split, ignored)

    def _read(self) -> dict[str, _Video]:
        """The annotated videos by path; DatasetError listing every bad line."""
        problems = Problems()
        checked: dict[str, tuple[str | None, str]] = {}
        lines: dict[str, list[Annotation]] = {}
        for annotation in read_annotations(self.annotations, problems):
            if annotation.path not in checked:
                checked[annotation.path] = path_problem(annotation.path, self.root, self.extensions)
            problem, path = checked[annotation.path]
            if annotation.label.lower() == BACKGROUND:
                if not self.background:
                    problem = "; ".join(filter(None, (problem, _BACKGROUND_REFUSED)))
                annotation = replace(annotation, label=BACKGROUND)
            if problem is not None:
                problems.add(annotation.line, problem)
            else:
                lines.setdefault(path, []).append(annotation)
        videos = {}
        for path in sorted(lines):
            video = self._video(path, lines[path], problems)
            if video is not None:
                videos[path] = video
        problems.raise_if_any(
            f"Fix those lines (`path,start,end,label`, paths relative to "
            f"{escape_control(self.root)}, times in seconds or HH:MM:SS.mmm) and run again."
        )
        return videos

    def _video(self, path: str, lines: list[Annotation], problems: Problems) -> _Video | None:
        """One video's segments checked against its frames; None when a line is bad."""
        try:
            info = probe(self.root / path)
            times = FrameTimes.of_index(frame_index(info.path))
        except (VideoError, ValueError) as error:
            reason = error.reason if isinstance(error, VideoError) else str(error)
            others = f" (named on {len(lines)} lines)" if len(lines) > 1 else ""
            problems.add(lines[0].line, f"{path} cannot be read as a video: {reason}{others}")
            return None
        duration = times.end_s
        slack = max(times.frame_s / 2, 0.001)
        late = [a for a in lines if a.end_s > duration + slack]
        for annotation in late:
            problems.add(
                annotation.line,
                f"the segment ends at {annotation.end_s:.3f} s, past the end of {path} "
                f"({duration:.3f} s)",
            )
        before = len(problems)
        segments = tuple(merge_overlaps(lines, problems))
        if late or len(problems) > before:
            return None
        merged = len(lines) - len(segments)
        if merged:
            log.info(
                "%s: %d lines overlap a segment of the same label and are merged into it",
                escape_control(path),
                merged,
            )
        frames = tuple(_frames(times, s.start_s, min(s.end_s, duration)) for s in segments)
        gaps = _gaps(frames, times.frames, self.clip_frames)
        return _Video(path, duration, segments, frames, gaps)

    def _tags(self, videos: dict[str, _Video]) -> tuple[dict[str, str | None], dict[str, list]]:
        """{video: "train", "test" or None (unused)}, and the videos left out by reason."""
        if self.split_file is None:
            by_label: dict[str, list[str]] = {}
            for path, video in videos.items():
                by_label.setdefault(video.main_label(), []).append(path)
            return dict(draw_split(by_label, self.test_fraction, self.seed)), {}
        tags = read_split_file(
            self.split_file, set(videos), form="PATH", known_as="a video of --annotations"
        )
        unused = sorted(path for path in videos if tags.get(path) is None)
        return tags, ({UNUSED: unused} if unused else {})

    def _items(self, videos: list[_Video], index: dict[str, int]) -> list[Stretch]:
        """One part's items: its videos' segments, and its background stretches."""
        items = [
            Stretch(video.path, index[segment.label], frames)
            for video in videos
            for segment, frames in zip(video.segments, video.frames, strict=True)
        ]
        if self.background:
            labelled = sum(1 for item in items if item.label != index[BACKGROUND])
            wanted = max(1, round(self.background / (1 - self.background) * labelled))
            items += [
                Stretch(path, index[BACKGROUND], frames)
                for path, frames in _pieces(videos, wanted, self.clip_frames)
            ]
        return sorted(items)

    def _check(self, split: Split) -> None:
        """Every class has an item in a training and in a test video."""
        advice = (
            "Tag a video that holds it train, and one test, in the split file."
            if self.split_file is not None
            else "Label it in more videos: whole videos are drawn for the test, per main "
            "label (--test-fraction, --split-seed), or give --split-file."
        )
        for label, name in enumerate(split.classes):
            for kind, items in (("training", split.train), ("test", split.test)):
                if any(item[1] == label for item in items):
                    continue
                if name == BACKGROUND:
                    raise DatasetError(
                        f"No {kind} video has unlabelled time a clip long "
                        f"({self.clip_frames} frames) for --background-clips: leave time "
                        "between the segments, label segments `background`, or drop "
                        "--background-clips."
                    )
                raise DatasetError(
                    f"Label {escape_control(name)!r} has no segment in a {kind} video of "
                    f"{escape_control(self.annotations)}: it could not be "
                    f"{'learnt' if kind == 'training' else 'measured'}. {advice}"
                )


_BACKGROUND_REFUSED = (
    f"the label {BACKGROUND!r} names unlabelled time: give --background-clips F to train "
    "on it, or name the label otherwise"
)


def _frames(times: FrameTimes, start_s: float, end_s: float) -> tuple[int, int]:
    """The frames of ``start_s`` to ``end_s``: from the first shown at or after the start
    up to the first shown at or after the end; one at least."""
    first, end = (int(rank) for rank in times.first_at_or_after([start_s, end_s]))
    first = min(first, times.frames - 1)
    return first, max(end, first + 1)


def _gaps(
    frames: tuple[tuple[int, int], ...], total: int, shortest: int
) -> tuple[tuple[int, int], ...]:
    """The stretches of ``total`` frames that no range of ``frames`` covers, ``shortest``
    frames long at least."""
    gaps = []
    cursor = 0
    for first, end in sorted(frames):
        if first - cursor >= shortest:
            gaps.append((cursor, first))
        cursor = max(cursor, end)
    if total - cursor >= shortest:
        gaps.append((cursor, total))
    return tuple(gaps)


def _pieces(videos: list[_Video], wanted: int, shortest: int) -> list[tuple[str, tuple[int, int]]]:
    """Up to ``wanted`` pieces of the videos' unlabelled stretches, ``shortest`` frames
    long at least: each piece goes to the stretch whose pieces would stay the longest,
    and a stretch is cut into equal pieces."""
    stretches = [(video.path, gap) for video in videos for gap in video.gaps]
    counts = [0] * len(stretches)
    # (-length of a piece were it given one more, the stretch's position)
    heap = [(-(end - first), i) for i, (_, (first, end)) in enumerate(stretches)]
    heapq.heapify(heap)
    for _ in range(wanted):
        if not heap or -heap[0][0] < shortest:
            break
        _, i = heapq.heappop(heap)
        counts[i] += 1
        first, end = stretches[i][1]
        heapq.heappush(heap, (-((end - first) / (counts[i] + 1)), i))
    pieces = []
    for (path, (first, end)), count in zip(stretches, counts, strict=True):
        bounds = [first + (end - first) * n // count for n in range(count + 1)] if count else []
        pieces += [(path, piece) for piece in pairwise(bounds)]
    return pieces
