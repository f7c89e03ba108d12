"""Fixtures for the run-command tests (``make demo``, ``make up``; launcher/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.demo.helpers import make_tiny_checkpoint
from tests.support.verdicts import Verdicts


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, verdicts: Verdicts) -> Path:
    """One small untrained checkpoint for the session. Its folder also holds the engine
    cache the workers build next to it, so only the first worker pays for the export, and
    the watcher's verdict on it (tests/watcher/test_checkpoint.py holds the check)."""
    path = make_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "model.pt")
    verdicts.give(path)
    return path
