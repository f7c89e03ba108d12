"""The user's own videos as a dataset: one folder per class, ``ROOT/<class>/<video>``.

Class names are the folder names, sorted. Only a class folder's own video files count
(trainer.datasets.video_paths); hidden files and folders, other files, folders inside a
class folder and links that lead out of ROOT are left out, and counted by reason. Its
one split comes from ``--split-file`` or is drawn per class (``--test-fraction``,
``--split-seed``); a new run writes the split it used to ``split.txt`` in the
``--split-file`` format, so that the run can be repeated, and what it found to
``dataset.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
from collections.abc import Collection, Set
from pathlib import Path, PurePosixPath
from typing import Any

from actiontag.containment import is_inside
from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS, Settings
from actiontag.text import escape_control, has_control
from trainer.datasets.base import Split, check_split
from trainer.datasets.inventory import Inventory
from trainer.datasets.line_files import Problems, read_lines, split_entry
from trainer.datasets.own_videos import OwnVideos
from trainer.datasets.video_paths import is_video
from trainer.errors import DatasetError

__all__ = [
    "SPLIT_RECORD",
    "TAGS",
    "Folders",
    "draw_split",
    "read_split_file",
    "scan_folders",
    "split_text",
]

SPLIT_RECORD = "split.txt"
# A split file's tags: its own words, or HMDB51's numbers.
TAGS = {"train": "train", "1": "train", "test": "test", "2": "test", "0": "unused"}
UNUSED = "unused by the split file"


class Folders(OwnVideos):
    """The videos in ``root/<class>/``, split by ``split_file`` or drawn by seed."""

    name = "folders"
    root_holds = "that holds one folder of videos per class"

    def __init__(
        self,
        root: Path,
        *,
        extensions: Set[str] = DEFAULT_VIDEO_EXTENSIONS,
        split_file: Path | None = None,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        super().__init__(root)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be between 0 and 1, not {test_fraction}")
        self.extensions = frozenset(extensions)
        self.split_file, self.test_fraction, self.seed = split_file, test_fraction, seed

    @classmethod
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> Folders:
        """As ``python -m trainer`` asks for it; ValueError for a bad option."""
        if args.data_dir is None:
            raise ValueError(
                "--dataset folders needs --data-dir ROOT, the folder that holds one folder "
                "of videos per class"
            )
        if args.split not in cls.splits:
            raise ValueError("--dataset folders has one split: drop --split (or give 1)")
        return cls(
            root,
            extensions=settings.video_extensions,
            split_file=args.split_file,
            test_fraction=args.test_fraction,
            seed=args.split_seed,
        )

    def record(self, run_dir: Path) -> None:
        found = self.inventory()
        found.write(run_dir)
        (run_dir / SPLIT_RECORD).write_bytes(split_text(found.split).encode("utf-8"))

    def split_sha256(self, k: int) -> str:
        """That of the ``split.txt`` :meth:`record` writes (the same bytes, hashed)."""
        text = split_text(self.split(k))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def split_options(self) -> dict[str, Any]:
        return {
            "test_fraction": self.test_fraction,
            "split_seed": self.seed,
            "split_file": None if self.split_file is None else str(self.split_file),
        }

    def _take_inventory(self) -> Inventory:
        videos, ignored = scan_folders(self.root, self.extensions)
        for name, paths in videos.items():
            if len(paths) < 2:
                raise DatasetError(
                    f"Class '{escape_control(name)}' has {len(paths)} videos in "
                    f"{escape_control(self.root / name)}: a class needs two at least, one to "
                    "train on and one to test. Add videos there, or move the folder out."
                )
        if self.split_file is not None:
            tags = read_split_file(self.split_file, {p for ps in videos.values() for p in ps})
            unused = [p for paths in videos.values() for p in paths if tags.get(p) is None]
            if unused:
                ignored[UNUSED] = unused
        else:
            tags = draw_split(videos, self.test_fraction, self.seed)
        classes = sorted(videos)
        train, test = [], []
        for label, name in enumerate(classes):
            for path in videos[name]:
                part = tags.get(path)
                if part is not None:
                    (train if part == "train" else test).append((path, label))
        advice = (
            "Tag one of its videos train and one test in the split file."
            if self.split_file is not None
            else "Add videos to its folder."
        )
        split = check_split(Split(classes, train, test, []), 1, self.root, advice)
        return Inventory("folders", self.root, split, ignored)


def scan_folders(
    root: Path, extensions: Set[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({class: its videos, relative to root, sorted}, {reason: paths left out})``."""
    root_real = os.path.realpath(root)
    videos: dict[str, list[str]] = {}
    ignored: dict[str, list[str]] = {}
    for entry in _entries(root):
        reason = _refused(entry, root_real)
        if reason is None and not entry.is_dir():
            reason = "a file outside the class folders"
        if reason is not None:
            ignored.setdefault(reason, []).append(entry.name)
            continue
        found = videos[entry.name] = []
        for inner in _entries(Path(entry.path)):
            path = f"{entry.name}/{inner.name}"
            reason = _refused(inner, root_real)
            if reason is None and inner.is_dir():
                reason = "a folder inside a class folder"
            elif reason is None and not inner.is_file():
                reason = "not a regular file"
            elif reason is None and not is_video(inner.name, extensions):
                reason = "not a video (by its extension)"
            if reason is None:
                found.append(path)
            else:
                ignored.setdefault(reason, []).append(path)
    if not videos:
        raise DatasetError(
            f"{escape_control(root)} holds no class folder: put each class's videos in a "
            "folder named for the class, ROOT/<class>/<video>."
        )
    return videos, ignored


def draw_split(videos: dict[str, list[str]], test_fraction: float, seed: int) -> dict[str, str]:
    """{path: "train" or "test"}: ``test_fraction`` of each class's videos for the test
    (one at least, one left to train on), drawn by ``seed`` and the class name, so that
    a class's split stays the same when other classes come or go."""
    tags = {}
    for name, paths in videos.items():
        order = sorted(paths)
        random.Random(f"{seed}/{name}").shuffle(order)  # str seeds: the same in every run
        count = min(len(order) - 1, max(1, round(test_fraction * len(order))))
        tags.update({path: "test" if i < count else "train" for i, path in enumerate(order)})
    return tags


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        raise DatasetError(
            f"{escape_control(folder)} cannot be listed ({error.strerror or error}): check "
            "that it exists and may be read."
        ) from None


def _refused(entry: os.DirEntry[str], root_real: str) -> str | None:
    """Why ``entry`` is left out whatever it is, or None."""
    if entry.name.startswith("."):
        return "hidden"
    if not _writable(entry.name) or entry.name != entry.name.strip():
        return "a name a split file cannot hold (not UTF-8, control characters, edge spaces)"
    if entry.is_symlink() and not is_inside(entry.path, root_real):
        return "a link that leads out of the folder"
    return None


def _writable(name: str) -> bool:
    """Whether ``name`` fits on one line of a UTF-8 split file."""
    try:
        name.encode("utf-8")  # a name not in UTF-8 on disk holds surrogates
    except UnicodeEncodeError:
        return False
    return not has_control(name)


def read_split_file(
    path: Path,
    known: Collection[str],
    *,
    form: str = "<class>/<video>",
    known_as: str = "one of the videos found in its class folder",
) -> dict[str, str | None]:
    """{video: "train", "test" or None (unused)} as ``path`` says, for the videos
    ``known`` (paths as ``form`` says, ``known_as`` what they are); DatasetError listing
    every bad line."""
    tags: dict[str, str | None] = {}
    lines: dict[str, int] = {}
    problems = Problems()
    for line in read_lines(path):
        entry = split_entry(line)
        if entry is None:
            problems.add(line, f"expected `{form} TAG`")
            continue
        text, tag = entry
        video = PurePosixPath(text).as_posix()
        part = TAGS.get(tag.lower())
        if part is None:
            problems.add(line, f"unknown tag {tag!r}: use train or test (or 1, 2, 0: unused)")
        elif video not in known:
            problems.add(line, f"{text} is not {known_as}")
        elif video in lines:
            problems.add(line, f"{text} is on line {lines[video]} already")
        else:
            lines[video] = line.number
            tags[video] = None if part == "unused" else part
    problems.raise_if_any(
        f"Fix those lines of the split file (paths relative to --data-dir, as `{form}`) "
        "and run again."
    )
    return tags


def split_text(split: Split, dataset: str = "folders") -> str:
    """The split's videos in the --split-file format; ``dataset``: the --dataset options
    that read it back."""
    lines = [
        f"# The split of a run: python -m trainer --dataset {dataset} --split-file <this file>",
        "# repeats it. Paths are relative to --data-dir.",
    ]
    for part, items in (("train", split.train), ("test", split.test)):
        for path in sorted({item[0] for item in items}):
            shown = f"./{path}" if path.startswith("#") else path  # not read as a comment
            lines.append(f"{shown} {part}")
    return "\n".join(lines) + "\n"
