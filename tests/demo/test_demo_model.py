"""The demonstration model is reused only when a finished training run left it, and it
is described by the figures measured when it was made.

``make_demo_checkpoint`` writes ``split1/model.pt`` after each epoch that improves, so
an interrupted run leaves an early epoch's model there; only the marker written after
training says the file is the finished model of the current recipe. (Training itself
is the slow test in test_make_demo.py and the trainer's own tests.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.demo_model import MARKER, DemoModel, cached_demo_checkpoint, file_sha256
from launcher.demo_recipe import DEMO_ARGS
from model.checkpoint import file_sha256 as model_file_sha256
from tests.demo.helpers import make_tiny_checkpoint

FIGURES = {
    "test_top1": 0.9917,
    "test_videos": 120,
    "eval_clips": 3,
    "train_seconds": 41.3,
    "cpus": 2,
}


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A demo model folder as a finished training run leaves it."""
    checkpoint = make_tiny_checkpoint(_run_dir(tmp_path) / "model.pt")
    _write_marker(tmp_path, list(DEMO_ARGS), file_sha256(checkpoint))
    return tmp_path


def _run_dir(folder: Path) -> Path:
    run = folder / "split1"
    run.mkdir(parents=True, exist_ok=True)
    return run


def _write_marker(folder: Path, recipe: list[str], sha256: str, **figures: object) -> None:
    marker = {"recipe": recipe, "sha256": sha256, **FIGURES, **figures}
    (folder / MARKER).write_text(json.dumps(marker))


def test_a_finished_model_of_the_current_recipe_is_reused(finished: Path) -> None:
    model = cached_demo_checkpoint(finished)
    assert model is not None
    assert model.checkpoint == finished / "split1" / "model.pt"


def test_a_reused_model_carries_the_figures_measured_when_it_was_made(finished: Path) -> None:
    model = cached_demo_checkpoint(finished)
    assert model == DemoModel(
        finished / "split1" / "model.pt",
        top1=0.9917,
        test_videos=120,
        eval_clips=3,
        train_seconds=41.3,
        cpus=2,
    )


def test_the_description_states_top1_against_chance_and_the_training_time(
    finished: Path,
) -> None:
    model = cached_demo_checkpoint(finished)
    assert model is not None
    assert model.describe() == (
        "99.2% top-1 on its test split (120 videos, 3 clips each; chance 25%); "
        "trained in 41 s on 2 CPU(s)"
    )


def test_a_marker_without_the_figures_is_not_reused(finished: Path) -> None:
    sha256 = file_sha256(finished / "split1" / "model.pt")
    (finished / MARKER).write_text(json.dumps({"recipe": list(DEMO_ARGS), "sha256": sha256}))
    assert cached_demo_checkpoint(finished) is None


def test_a_model_without_the_marker_is_an_interrupted_run_and_not_reused(finished: Path) -> None:
    (finished / MARKER).unlink()
    assert cached_demo_checkpoint(finished) is None


def test_a_model_changed_after_training_is_not_reused(finished: Path) -> None:
    # An interrupted retraining overwrote model.pt with an early epoch's weights.
    (finished / "split1" / "model.pt").write_bytes(b"an early epoch's weights")
    assert cached_demo_checkpoint(finished) is None


def test_a_model_of_another_recipe_is_not_reused(finished: Path) -> None:
    sha256 = file_sha256(finished / "split1" / "model.pt")
    _write_marker(finished, [*DEMO_ARGS, "--epochs", "1"], sha256)
    assert cached_demo_checkpoint(finished) is None


def test_no_model_at_all_is_not_reused(tmp_path: Path) -> None:
    assert cached_demo_checkpoint(tmp_path) is None


def test_the_marker_hash_is_the_checkpoint_identity_the_services_use(finished: Path) -> None:
    checkpoint = finished / "split1" / "model.pt"
    assert file_sha256(checkpoint) == model_file_sha256(checkpoint)
