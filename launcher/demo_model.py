"""The demonstration checkpoint: trained once on the synthetic motion dataset, then reused.

``trainer.synthetic.make_demo_checkpoint`` trains it (minutes on a CPU) and writes
``split1/model.pt`` after every epoch that improves validation accuracy, so after an
interrupted run a ``model.pt`` is there that is only an early epoch's. The demo
therefore reuses a checkpoint only when a marker written after training finished names
that file's sha256 and the recipe it was trained with; anything else in the run folder
is thrown away and the model trained again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

MARKER = "demo-model.json"
RUN = "split1"


def cached_demo_checkpoint(folder: Path) -> Path | None:
    """The finished demonstration checkpoint in ``folder``, or None."""
    from trainer.synthetic import DEMO_ARGS

    checkpoint = folder / RUN / "model.pt"
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not checkpoint.is_file() or not isinstance(marker, dict):
        return None
    if marker.get("recipe") != list(DEMO_ARGS) or marker.get("sha256") != file_sha256(checkpoint):
        return None
    return checkpoint


def train_demo_checkpoint(folder: Path, *, progress: bool) -> Path:
    """Train the demonstration checkpoint into ``folder`` (minutes); its path."""
    from trainer.synthetic import DEMO_ARGS, make_demo_checkpoint

    (folder / MARKER).unlink(missing_ok=True)
    # make_demo_checkpoint returns any model.pt it finds, even an interrupted run's.
    shutil.rmtree(folder / RUN, ignore_errors=True)
    checkpoint = make_demo_checkpoint(folder, progress=progress)
    marker = {"recipe": list(DEMO_ARGS), "sha256": file_sha256(checkpoint)}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return checkpoint


def file_sha256(path: Path) -> str:
    # model.checkpoint.file_sha256 computes the same, but importing model imports torch,
    # which the launcher itself never needs.
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
