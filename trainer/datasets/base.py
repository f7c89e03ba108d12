"""What every dataset the trainer can train on offers: prepare it, name its classes,
and give split k as labelled videos.

A dataset lives in a folder (``root``) with its videos under ``root/videos``; a split's
paths are relative to that folder. Labels are positions in the sorted class names, and
checkpoints store the class list, so a label order is never guessed.

An item of a split is a whole video, ``(path, label)``, or a :class:`Stretch` of one:
its path, its label and the frames its clips come from (the segments dataset's labelled
time segments). Code that reads items takes ``item[0]`` and ``item[1]``, which both have.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeAlias

from actiontag.text import escape_control
from trainer.errors import DatasetError

__all__ = ["Dataset", "Item", "Split", "Stretch", "check_split", "note_missing", "video_counts"]

log = logging.getLogger(__name__)


class Stretch(NamedTuple):
    """A labelled stretch of a video: ``frames`` is ``(first, end)``, the frame numbers
    (as ``decoding.video.read_clips`` counts them) from ``first`` up to, not including,
    ``end``; its clips are drawn inside them (trainer.data)."""

    path: str
    label: int
    frames: tuple[int, int]


# A whole video (path, label), or a stretch of one.
Item: TypeAlias = tuple[str, int] | Stretch


@dataclass(frozen=True)
class Split:
    """One split: class names in label order and lists of items ((path, label), or
    stretches of videos).

    Paths are relative to the dataset's videos folder (`<class>/<clip>`). Videos the
    split names but the disk lacks are left out of train/test and listed in missing.
    """

    classes: list[str]
    train: list[Item]
    test: list[Item]
    missing: list[str]


class Dataset(ABC):
    """A labelled video dataset in the folder ``root``."""

    # Its --dataset name (its key in trainer.datasets.DATASETS), as checkpoints record it.
    name: ClassVar[str]
    # The split numbers it has.
    splits: ClassVar[tuple[int, ...]] = (1, 2, 3)
    # Whether a run starts from the backbone's pretrained weights unless told otherwise.
    pretrained_by_default: ClassVar[bool] = True
    # Whether its runs go to runs/, the folder workers serve from; the others' go to
    # runs/<name>/, so that no practice run replaces a served model.
    served: ClassVar[bool] = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def videos(self) -> Path:
        """The folder a split's paths are relative to."""
        return self.root / "videos"

    @abstractmethod
    def prepare(self, *, progress: bool = True) -> None:
        """Download, unpack or generate the dataset under root; a prepared one is left
        as it is. Raises DatasetError saying what to do when it cannot."""

    @abstractmethod
    def split(self, k: int) -> Split:
        """Split ``k``: its classes and its training and test videos on disk. Raises
        DatasetError naming what is missing."""

    def record(self, run_dir: Path) -> None:
        """Write into ``run_dir`` (a new run's folder, made if missing) what tells which
        videos the run used, beyond the split number; nothing by default."""
        return None

    def timed_truth(self, k: int) -> list[tuple[str, list[tuple[float, float, int]]]] | None:
        """For a dataset of untrimmed videos with labelled time segments: each test video
        of split ``k`` (its path relative to ``videos``) with its true segments
        ``(start_s, end_s, label)``, which the trainer scores as temporal localisation
        (trainer.localise) besides the clips. None (the default): it has no timed truth."""
        return None

    def classes(self) -> list[str]:
        """The class names in label order (the same in every split)."""
        return self.split(self.splits[0]).classes

    def describe(self, k: int) -> dict[str, Any]:
        """What a model trained on split ``k`` was trained on, as its checkpoint records
        it (``train_args["trained_on"]``): the dataset's name, its classes in label
        order, their videos in each part of the split and :meth:`split_sha256`."""
        split = self.split(k)
        return {
            "dataset": self.name,
            "classes": list(split.classes),
            "videos": video_counts(split),
            "split_sha256": self.split_sha256(k),
        }

    def split_sha256(self, k: int) -> str | None:
        """sha256 of the file that records which videos of split ``k`` train and which
        test, so that a model's split can be told from another; None (the default) for
        a dataset whose split is no file."""
        return None

    def split_options(self) -> dict[str, Any]:
        """The options that chose its videos beyond the split number (plain values, for
        the checkpoint's train_args); none by default."""
        return {}


def video_counts(split: Split) -> dict[str, dict[str, int]]:
    """{class: {"train": n, "test": n}}: the videos that hold each class, in label order
    (a video with several stretches of a class counts once)."""
    found = {name: {"train": 0, "test": 0} for name in split.classes}
    for part, items in (("train", split.train), ("test", split.test)):
        for _, label in {(item[0], item[1]) for item in items}:
            found[split.classes[label]][part] += 1
    return found


def note_missing(missing: list[str], k: int, videos: Path) -> None:
    """Log the videos split ``k`` names that ``videos`` lacks (they are left out)."""
    if missing:
        log.warning(
            "%d clips of split %d are listed but not in %s and are left out (e.g. %s)",
            len(missing),
            k,
            videos,
            ", ".join(missing[:3]),
        )


def check_split(
    split: Split, k: int, videos: Path, advice: str = "Prepare the dataset again."
) -> Split:
    """``split``, unless some class lacks training or test videos on disk: a label
    without them could be neither learnt nor measured. ``advice`` says what to do."""
    if not split.train or not split.test:
        raise DatasetError(
            f"Split {k} has {len(split.train)} training and {len(split.test)} test videos on "
            f"disk in {videos} ({len(split.missing)} listed ones are missing): the videos are "
            "not there. Prepare the dataset again (`python -m trainer` does it)."
        )
    for label, name in enumerate(split.classes):
        for kind, items in (("training", split.train), ("test", split.test)):
            if not any(item[1] == label for item in items):
                raise DatasetError(
                    f"Class {escape_control(name)!r} has no {kind} video of split {k} in "
                    f"{escape_control(videos / name)}: it could not be learnt or measured. "
                    f"{advice}"
                )
    return split
