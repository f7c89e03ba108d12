"""What a dataset of the user's own videos found: its classes, their videos in each
part of the split, and the files left out and why. It is logged as a small table when
the split is read and written to ``dataset.json`` beside the run's checkpoint.

When the items are stretches of videos (the segments dataset), a video holds several,
and the table and the file count both: the videos that hold each class, and its
stretches (``segments``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actiontag.text import escape_control
from trainer.datasets.base import Item, Split, Stretch, video_counts

__all__ = ["DESCRIPTION", "Inventory"]

log = logging.getLogger(__name__)

DESCRIPTION = "dataset.json"
_EXAMPLES = 3  # ignored names shown per reason in the log (dataset.json has them all)


@dataclass(frozen=True)
class Inventory:
    """A split as found on disk, with the files left out by reason."""

    dataset: str
    root: Path
    split: Split
    ignored: dict[str, list[str]] = field(default_factory=dict)  # reason -> relative paths

    def counts(self) -> dict[str, dict[str, int]]:
        """{class: {"train": n, "test": n}}: the videos that hold each class, in label order."""
        return video_counts(self.split)

    def segment_counts(self) -> dict[str, dict[str, int]] | None:
        """{class: {"train": n, "test": n}}: each class's stretches of videos, in label
        order; None when the items are whole videos."""
        if not any(isinstance(item, Stretch) for item in self.split.train + self.split.test):
            return None
        return self._per_class(len)

    def _per_class(self, count: Callable[[list[Item]], int]) -> dict[str, dict[str, int]]:
        classes = self.split.classes
        found: dict[str, dict[str, int]] = {name: {} for name in classes}
        for part, items in (("train", self.split.train), ("test", self.split.test)):
            by_label: list[list[Item]] = [[] for _ in classes]
            for item in items:
                by_label[item[1]].append(item)
            for name, members in zip(classes, by_label, strict=True):
                found[name][part] = count(members)
        return found

    def to_dict(self) -> dict[str, Any]:
        segments = self.segment_counts()
        return {
            "dataset": self.dataset,
            "root": str(self.root),
            "classes": list(self.split.classes),
            "videos": self.counts(),
            **({"segments": segments} if segments is not None else {}),
            "ignored": {
                reason: sorted(_shown(p) for p in paths) for reason, paths in self.ignored.items()
            },
        }

    def log(self) -> None:
        """The table, through the logger; every name escaped (it comes from the disk)."""
        counts = self.counts()
        segments = self.segment_counts()
        width = max([5, *(len(_shown(name)) for name in counts)])
        rows = [f"  {'class':<{width}}  train   test"]
        if segments is not None:
            rows = [f"  {'':<{width}}  videos        segments", rows[0] + "  train   test"]
        for name, n in counts.items():
            row = f"  {_shown(name):<{width}}  {n['train']:>5}  {n['test']:>5}"
            if segments is not None:
                row += f"  {segments[name]['train']:>5}  {segments[name]['test']:>5}"
            rows.append(row)
        for reason, paths in sorted(self.ignored.items()):
            shown = ", ".join(_shown(p) for p in sorted(paths)[:_EXAMPLES])
            more = ", ..." if len(paths) > _EXAMPLES else ""
            rows.append(f"  ignored, {reason}: {len(paths)} ({shown}{more})")
        log.info(
            "%s dataset in %s: %d classes, %d training and %d test videos\n%s",
            self.dataset,
            _shown(self.root),
            len(counts),
            len({item[0] for item in self.split.train}),
            len({item[0] for item in self.split.test}),
            "\n".join(rows),
        )

    def write(self, run_dir: Path) -> Path:
        """``run_dir/dataset.json``; the folder is made when missing."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / DESCRIPTION
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def _shown(name: object) -> str:
    """``name`` on one line and in UTF-8: a byte that is not UTF-8 (a file name's,
    held as a surrogate) is written as its escape, and so is a control character."""
    text = os.fsencode(str(name)).decode("utf-8", "backslashreplace")
    return escape_control(text)
