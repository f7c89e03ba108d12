"""What the model page says about how the served model was trained: the trainer's record
in its checkpoint (``train_args``, kept in the store when a worker or ``retag
--checkpoint`` loaded it).

A checkpoint is outside input: any key may be missing, of another type or hold any
text; what is not of the expected type is left out, never guessed. Templates escape
what is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

# Digits of a sha256 shown: enough to tell checkpoints apart, as `python -m storage` does.
SHA256_SHOWN = 12
CLASSIFIER_STATES = ("kept", "new")


@dataclass(frozen=True)
class InitFrom:
    """The checkpoint a run started from (``--init-from``)."""

    path: str | None
    sha256: str | None  # its first SHA256_SHOWN digits
    classifier: str | None  # "kept": the same class list; "new": re-initialised


@dataclass(frozen=True)
class ClassVideos:
    """The videos of one class in each part of the split."""

    name: str
    train: int | None
    test: int | None


@dataclass(frozen=True)
class TrainedOn:
    """The data a run was trained on, as the trainer recorded it."""

    dataset: str | None
    classes: tuple[str, ...]
    videos: tuple[ClassVideos, ...]
    split_sha256: str | None  # first SHA256_SHOWN digits of the split file's hash

    @property
    def train_videos(self) -> int:
        return sum(row.train or 0 for row in self.videos)

    @property
    def test_videos(self) -> int:
        return sum(row.test or 0 for row in self.videos)


@dataclass(frozen=True)
class Training:
    dataset: str | None
    split: int | None
    data_dir: str | None  # the folder's name only: the server's layout stays off the page
    epochs: int | None
    init_from: InitFrom | None
    freeze_backbone: bool | None
    trained_on: TrainedOn | None
    command: tuple[str, ...]  # the trainer's arguments (argv)


def training_of(train_args: Mapping[str, Any] | None) -> Training | None:
    """The page's view of ``train_args``; None when the checkpoint records nothing."""
    if not isinstance(train_args, Mapping) or not train_args:
        return None
    data_dir = _text(train_args.get("data_dir"))
    return Training(
        dataset=_text(train_args.get("dataset")),
        split=_whole(train_args.get("split")),
        data_dir=PurePath(data_dir).name or data_dir if data_dir else None,
        epochs=_whole(train_args.get("epochs")),
        init_from=_init_from(train_args.get("init_from")),
        freeze_backbone=_flag(train_args.get("freeze_backbone")),
        trained_on=_trained_on(train_args.get("trained_on")),
        command=_texts(train_args.get("argv")),
    )


def _init_from(value: object) -> InitFrom | None:
    if isinstance(value, str):  # a bare path
        return InitFrom(value, None, None)
    if not isinstance(value, Mapping):
        return None
    classifier = value.get("classifier")
    return InitFrom(
        path=_text(value.get("path")),
        sha256=_digest(value.get("sha256")),
        classifier=classifier if classifier in CLASSIFIER_STATES else None,
    )


def _trained_on(value: object) -> TrainedOn | None:
    if not isinstance(value, Mapping):
        return None
    videos = value.get("videos")
    rows = []
    if isinstance(videos, Mapping):
        for name, counts in videos.items():
            if isinstance(name, str) and isinstance(counts, Mapping):
                rows.append(
                    ClassVideos(name, _whole(counts.get("train")), _whole(counts.get("test")))
                )
    return TrainedOn(
        dataset=_text(value.get("dataset")),
        classes=_texts(value.get("classes")),
        videos=tuple(rows),
        split_sha256=_digest(value.get("split_sha256")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _digest(value: object) -> str | None:
    return value[:SHA256_SHOWN] if isinstance(value, str) and value else None
