"""The user's own videos named by MMAction2-style list files: ``--train-list`` and
``--test-list``, lines `PATH LABEL`.

PATH is relative to ROOT (``--data-dir``, by default the training list's folder).
LABEL is a class name, or with ``--classes FILE`` the index (from 0) of a line of that
file, whose order is then the label order; without it the classes are the names the
lists use, sorted. Every name is hostile until checked: a path that is absolute, climbs
out with ``..`` or leads out through a link, a missing file, a non-video, an unknown
label, a malformed line or a video listed twice is a bad line, and one error lists
them all with their file and line number.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from collections.abc import Set
from pathlib import Path
from typing import Any

from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS, Settings
from actiontag.text import escape_control
from trainer.datasets.base import Split, check_split
from trainer.datasets.inventory import Inventory
from trainer.datasets.line_files import Line, Problems, read_lines, split_entry
from trainer.datasets.own_videos import OwnVideos
from trainer.datasets.video_paths import path_problem
from trainer.errors import DatasetError

__all__ = ["ListFiles", "read_classes"]


class ListFiles(OwnVideos):
    """The videos ``train_list`` and ``test_list`` name, under ``root``."""

    name = "list"
    root_holds = "the lists' paths are relative to"

    def __init__(
        self,
        root: Path,
        train_list: Path,
        test_list: Path,
        *,
        classes_file: Path | None = None,
        extensions: Set[str] = DEFAULT_VIDEO_EXTENSIONS,
    ) -> None:
        super().__init__(root)
        self.train_list, self.test_list, self.classes_file = train_list, test_list, classes_file
        self.extensions = frozenset(extensions)

    @classmethod
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> ListFiles:
        """As ``python -m trainer`` asks for it; ValueError for a bad option."""
        if args.train_list is None or args.test_list is None:
            raise ValueError("--dataset list needs --train-list FILE and --test-list FILE")
        if args.split not in cls.splits:
            raise ValueError("--dataset list has one split: drop --split (or give 1)")
        return cls(
            args.data_dir or args.train_list.parent,
            args.train_list,
            args.test_list,
            classes_file=args.classes,
            extensions=settings.video_extensions,
        )

    def record(self, run_dir: Path) -> None:
        self.inventory().write(run_dir)

    def split_sha256(self, k: int) -> str:
        """The lists are the split: sha256 of the training list's bytes, then the test
        list's (``cat TRAIN TEST | sha256sum``)."""
        self.split(k)  # the lists read and checked, and k their one split
        digest = hashlib.sha256()
        for path in (self.train_list, self.test_list):
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def split_options(self) -> dict[str, Any]:
        return {
            "train_list": str(self.train_list),
            "test_list": str(self.test_list),
            "classes_file": None if self.classes_file is None else str(self.classes_file),
        }

    def _take_inventory(self) -> Inventory:
        return Inventory("list", self.root, self._read())

    def _read(self) -> Split:
        names = read_classes(self.classes_file) if self.classes_file is not None else None
        problems = Problems()
        seen: dict[str, Line] = {}
        parts: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        for part, path in (("train", self.train_list), ("test", self.test_list)):
            for line in read_lines(path):
                entry = self._entry(line, names, seen, problems)
                if entry is not None:
                    parts[part].append(entry)
        problems.raise_if_any(
            f"Fix those lines (PATH relative to {escape_control(self.root)}, LABEL "
            + ("a line index of --classes" if names is not None else "a class name")
            + ") and run again."
        )
        classes = names or sorted({label for items in parts.values() for _, label in items})
        index = {name: i for i, name in enumerate(classes)}
        split = Split(
            classes,
            [(path, index[label]) for path, label in parts["train"]],
            [(path, index[label]) for path, label in parts["test"]],
            [],
        )
        return check_split(split, 1, self.root, "List videos of it in both lists.")

    def _entry(
        self,
        line: Line,
        names: list[str] | None,
        seen: dict[str, Line],
        problems: Problems,
    ) -> tuple[str, str] | None:
        """``(path, class name)`` of a good line; a bad one goes to ``problems``."""
        entry = split_entry(line)
        if entry is None:
            problems.add(line, "expected `PATH LABEL`")
            return None
        text, label = entry
        problem, path = path_problem(text, self.root, self.extensions)
        wrong = [] if problem is None else [problem]
        if problem is None and path in seen:
            earlier = seen[path]
            wrong.append(f"{text} is listed already ({earlier.path.name}:{earlier.number})")
        if names is not None:
            number = int(label) if label.isascii() and label.isdigit() else None
            if number is None or number >= len(names):
                wrong.append(f"label {label!r} is not a line of --classes (0 to {len(names) - 1})")
            else:
                label = names[number]
        if wrong:
            problems.add(line, "; ".join(wrong))
            return None
        seen[path] = line
        return path, label


def read_classes(path: Path) -> list[str]:
    """The class names of a --classes file, one a line, in its order."""
    names = [line.text for line in read_lines(path)]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if not names or repeated:
        what = "names no class" if not names else f"repeats {', '.join(repeated)}"
        raise DatasetError(
            f"{escape_control(path)} {escape_control(what)}: give each class name once, one a line."
        )
    return names
