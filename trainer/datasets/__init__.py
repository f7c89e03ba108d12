"""The datasets ``python -m trainer`` can train on, by name: ``--dataset NAME``.

Each dataset is a module of this package with a :class:`Dataset` (prepare it, its
classes, split k as labelled videos) and one entry in ``DATASETS``: its line in
``--help`` and the function that makes it from the trainer's options. Adding a dataset
is that module and that entry.

The entries import their modules when called, not here: trainer.options takes the
names from this module, and ``--help`` answers without importing OpenCV or rarfile.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actiontag.settings import Settings
from trainer.datasets.base import Dataset, Item, Split, Stretch

__all__ = ["DATASETS", "Dataset", "DatasetEntry", "Item", "Split", "Stretch", "open_dataset"]


@dataclass(frozen=True)
class DatasetEntry:
    summary: str  # what it is, for --help
    # (root, the parsed options, the settings) -> the dataset; ValueError for a bad option
    make: Callable[[Path, argparse.Namespace, Settings], Dataset]


def _hmdb51(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.hmdb51 import HMDB51

    return HMDB51.from_options(root, args, settings)


def _ucf101(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.ucf101 import UCF101

    return UCF101.from_options(root, args, settings)


def _synthetic(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.synthetic import Synthetic

    return Synthetic.from_options(root, args, settings)


def _folders(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.folders import Folders

    return Folders.from_options(root, args, settings)


def _list(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.list_files import ListFiles

    return ListFiles.from_options(root, args, settings)


def _segments(root: Path, args: argparse.Namespace, settings: Settings) -> Dataset:
    from trainer.datasets.segments import Segments

    return Segments.from_options(root, args, settings)


DATASETS: dict[str, DatasetEntry] = {
    "hmdb51": DatasetEntry("HMDB51's 51 actions, downloaded or from --archives", _hmdb51),
    "ucf101": DatasetEntry("UCF101's 101 actions, downloaded or from --archives", _ucf101),
    "synthetic": DatasetEntry("generated videos whose classes differ only in motion", _synthetic),
    "folders": DatasetEntry("your videos in --data-dir/<class>/ folders", _folders),
    "list": DatasetEntry("your videos named by --train-list and --test-list files", _list),
    "segments": DatasetEntry(
        "labelled time segments of your videos, from an --annotations CSV", _segments
    ),
}


def open_dataset(args: argparse.Namespace, settings: Settings) -> Dataset:
    """The dataset ``--dataset`` names, in ``--data-dir`` (default: data/<name>)."""
    if args.dataset not in DATASETS:
        raise ValueError(
            f"unknown dataset {args.dataset!r}; the known ones are {', '.join(DATASETS)}"
        )
    root = args.data_dir or Path("data", args.dataset)
    return DATASETS[args.dataset].make(root, args, settings)
