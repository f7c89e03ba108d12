"""The watcher takes as its current model only a checkpoint a worker would serve: one that
does not fit its network would get a job for every new file, all failing."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model.checkpoint import save_checkpoint
from model.network import ActionMoEDynamicModel
from storage.db import upgrade
from storage.schema import Model
from tests.support.model import CLASSES, CONFIG

from .conftest import Checkpoint, watcher_args
from .harness import Stores, run_once, sha256_bytes, wait_for

pytestmark = pytest.mark.e2e  # real watcher processes


def write_misshapen_checkpoint(path: Path) -> Checkpoint:
    """A well-formed checkpoint whose tensors do not fit the network its config describes:
    the weights of the small network saved under a config with a wider MoE."""
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(config=CONFIG).eval()
    model.config = dataclasses.replace(CONFIG, hidden_dim=CONFIG.hidden_dim * 2)
    save_checkpoint(path, model, class_names=CLASSES, split=1)
    return Checkpoint(path, sha256_bytes(path.read_bytes()))


def _models(stores: Stores) -> int:
    with Session(stores.engine) as session:
        return session.scalar(select(func.count()).select_from(Model))


def test_a_checkpoint_whose_weights_do_not_fit_is_a_usage_error_and_is_not_registered(
    sqlite_stores: Stores, inbox: Path, tmp_path: Path
) -> None:
    upgrade(sqlite_stores.engine)
    misshapen = write_misshapen_checkpoint(tmp_path / "misshapen.pt")
    (inbox / "clip.mp4").write_bytes(os.urandom(2048))

    result = run_once(watcher_args(inbox, misshapen), sqlite_stores.env())

    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert "no worker would serve this checkpoint" in line
    assert f"{misshapen.path}: its weights do not fit the network" in line
    assert "of another shape" in line and "ACTIONTAG_CHECKPOINT" in line
    assert _models(sqlite_stores) == 0 and sqlite_stores.job_count() == 0


def test_a_retrained_checkpoint_that_does_not_fit_leaves_the_current_model_in_place(
    sqlite_stores: Stores, inbox: Path, own_checkpoint: Checkpoint, tmp_path: Path, start_watcher
) -> None:
    checkpoint = own_checkpoint
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    staged = write_misshapen_checkpoint(tmp_path / "model.pt.new")
    os.replace(staged.path, checkpoint.path)  # as the trainer writes it: atomically
    after = inbox / "after.mp4"
    after.write_bytes(os.urandom(4096))

    with watcher.explained():
        assert [job[2] for job in sqlite_stores.wait_recorded(after).jobs] == [checkpoint.sha256]
        watcher.wait_for_log("no worker would serve this checkpoint")
    assert watcher.terminate() == 0
    assert _models(sqlite_stores) == 1
    assert f"keeping model {checkpoint.sha256[:12]} for now" in watcher.log()


def test_a_checkpoint_checked_once_is_not_checked_again_at_the_next_start(
    sqlite_stores: Stores, inbox: Path, unchecked_checkpoint: Checkpoint
) -> None:
    checkpoint = unchecked_checkpoint
    checked = f"checked {checkpoint.path}: a worker serves it"

    first = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    again = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())

    assert first.returncode == again.returncode == 0, again.stderr
    assert checked in first.stderr
    assert checked not in again.stderr


def test_a_checkpoint_given_the_runs_verdict_is_not_checked_again(
    sqlite_stores: Stores, inbox: Path, own_checkpoint: Checkpoint
) -> None:
    # The suite's other watchers rely on it (tests/support/verdicts.py): the verdict the
    # harness copies beside a checkpoint is the one the watcher itself keeps.
    result = run_once(watcher_args(inbox, own_checkpoint), sqlite_stores.env())

    assert result.returncode == 0, result.stderr
    assert "a worker serves it" not in result.stderr


def _checking(checkpoint: Checkpoint) -> bool:
    """Whether a worker's servable check of ``checkpoint`` is running (the watcher's child)."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker.servable" in argv and str(checkpoint.path).encode() in argv:
            return True
    return False


def test_a_stop_while_the_checkpoint_is_checked_is_a_clean_stop(
    sqlite_stores: Stores, inbox: Path, unchecked_checkpoint: Checkpoint, start_watcher
) -> None:
    checkpoint = unchecked_checkpoint
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env())
    wait_for(lambda: _checking(checkpoint), what="the checkpoint's check to start")

    code = watcher.terminate()

    assert code == 0, watcher.log()
    assert not _checking(checkpoint)
