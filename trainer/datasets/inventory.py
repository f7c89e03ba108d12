"""What a dataset of the user's own videos found: its classes, their videos in each
part of the split, and the files left out and why. It is logged as a small table when
the split is read and written to ``dataset.json`` beside the run's checkpoint."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actiontag.text import escape_control
from trainer.datasets.base import Split, video_counts

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
        """{class: {"train": n, "test": n}} in label order."""
        return video_counts(self.split)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "root": str(self.root),
            "classes": list(self.split.classes),
            "videos": self.counts(),
            "ignored": {
                reason: sorted(_shown(p) for p in paths) for reason, paths in self.ignored.items()
            },
        }

    def log(self) -> None:
        """The table, through the logger; every name escaped (it comes from the disk)."""
        counts = self.counts()
        width = max([5, *(len(_shown(name)) for name in counts)])
        rows = [f"  {'class':<{width}}  train   test"]
        rows += [
            f"  {_shown(name):<{width}}  {n['train']:>5}  {n['test']:>5}"
            for name, n in counts.items()
        ]
        for reason, paths in sorted(self.ignored.items()):
            shown = ", ".join(_shown(p) for p in sorted(paths)[:_EXAMPLES])
            more = ", ..." if len(paths) > _EXAMPLES else ""
            rows.append(f"  ignored, {reason}: {len(paths)} ({shown}{more})")
        log.info(
            "%s dataset in %s: %d classes, %d training and %d test videos\n%s",
            self.dataset,
            _shown(self.root),
            len(counts),
            len(self.split.train),
            len(self.split.test),
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
