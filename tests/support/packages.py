"""The project's own top-level Python packages, for the tests that walk its source."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the distribution ships (pyproject.toml) and the launcher behind make demo/up.
PACKAGES = (
    "actiontag",
    "decoding",
    "timeline",
    "model",
    "trainer",
    "worker",
    "watcher",
    "storage",
    "web",
    "launcher",
)
