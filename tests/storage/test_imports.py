"""Storage is imported by watcher and worker: it must not drag in the model or the others."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import storage.cli, storage.db, storage.ingest, storage.inputs, storage.queries.jobs
import storage.queries.moments, storage.queries.models, storage.queries.stats
import storage.queries.thumbnails, storage.queries.timelines, storage.queries.videos
import storage.results, storage.schema, storage.transitions
import storage.report
print(" ".join(sorted(
    name for name in sys.modules
    if name.split(".")[0] in {"torch", "torchvision", "model", "trainer", "worker", "watcher"}
)))
"""


def test_storage_imports_no_model_trainer_worker_watcher_or_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""
