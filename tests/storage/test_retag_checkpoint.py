"""``python -m storage retag --checkpoint PATH``: a new checkpoint checked as a worker
checks it, registered, and a job of it queued for every known video; one no worker would
serve refused with status 2. On a real database, with a real checkpoint of the small
network; in this process and without a broker (the jobs are left queued: sending them is
retag's, tested with a real Redis in test_timeline_cli.py)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import storage.__main__ as entry_point
from model.checkpoint import file_sha256, save_checkpoint
from model.network import ActionMoEDynamicModel
from storage import cli, transitions
from storage.db import make_sessionmaker
from storage.options import parse_args
from storage.queries.jobs import results
from storage.queries.videos import recent_videos
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model
from tests.cli import CliResult, run_in_process
from tests.support.model import tiny_config

from .conftest import hand_over
from .test_timelines import META, tag

CLASSES = ["forklift loading", "hand-off"]
TRAIN_ARGS = {
    "dataset": "segments",
    "data_dir": "/data/warehouse",
    "split": 1,
    "epochs": 3,
    "argv": ["--dataset", "segments", "--annotations", "fixes.csv"],
    "init_from": {"path": "/models/old.pt", "sha256": "ab" * 32, "classifier": "new"},
    "freeze_backbone": True,
    "trained_on": {
        "dataset": "segments",
        "classes": CLASSES,
        "videos": {
            "forklift loading": {"train": 4, "test": 1},
            "hand-off": {"train": 3, "test": 1},
        },
        "split_sha256": "cd" * 32,
    },
}


def _save(path: Path, model: ActionMoEDynamicModel) -> Path:
    save_checkpoint(
        path, model, class_names=CLASSES, split=1, train_args=TRAIN_ARGS, metrics={"top1": 0.75}
    )
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A servable checkpoint of the small network, and files no worker would serve."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    network = ActionMoEDynamicModel(config=tiny_config(len(CLASSES))).eval()
    good = _save(folder / "new.pt", network)
    truncated = folder / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # Its config describes a wider head than its weights: it loads, but does not fit.
    network.config = dataclasses.replace(network.config, hidden_dim=64)
    unfit = _save(folder / "unfit.pt", network)
    pickled = folder / "pickled.pt"
    torch.save({"state_dict": {}, "payload": Opens(folder / "unpickled")}, pickled)
    return {"good": good, "truncated": truncated, "unfit": unfit, "pickled": pickled}


class Opens:
    """An object whose unpickling creates a file: proof that a checkpoint was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def retag(store_url: str, cwd: Path, *args: str) -> CliResult:
    """``retag ARGS`` in this process with the entry point's checkpoint check and no
    broker (the jobs are left queued for the reconciler)."""
    hand_over()

    def main(argv: Sequence[str]) -> int:
        return cli.main(argv, read_checkpoint=entry_point.read_checkpoint)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    return run_in_process(main, ["--database-url", store_url, "retag", *args], env=env, cwd=cwd)


def jobs_of(engine: Engine, sha256: str) -> list[tuple[str | None, JobState]]:
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(Job.path, Job.state).join(Model).where(Model.sha256 == sha256).order_by(Job.path)
        ).all()
    return [(path, state) for path, state in rows]


@pytest.fixture
def library(session: Session, model: Model) -> list[int]:
    """Three videos tagged by the model in service before the new checkpoint."""
    return [tag(session, model, name) for name in ("dock", "gate", "yard")]


def test_retag_with_a_new_checkpoint_registers_it_and_queues_a_job_per_video(
    store_url: str, engine: Engine, library: list[int], checkpoints: dict[str, Path]
) -> None:
    path = checkpoints["good"]
    sha256 = file_sha256(path)

    result = retag(store_url, path.parent, "--checkpoint", path.name)  # relative to cwd

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"registered {path} as model {sha256[:12]} (2 classes), checked as a worker checks "
        "it: new, so no worker has served it yet"
    )
    assert lines[1] == (
        f"retag with model {sha256[:12]} ({path}): 3 video(s) without a job of it, "
        "3 job(s) created, 0 sent to the workers"
    )
    assert f"set ACTIONTAG_CHECKPOINT={path} for them" in lines[2] and "restart" in lines[2]
    assert "3 job(s) stay queued in the database" in result.stderr
    assert jobs_of(engine, sha256) == [
        ("/inbox/dock.mp4", JobState.QUEUED),
        ("/inbox/gate.mp4", JobState.QUEUED),
        ("/inbox/yard.mp4", JobState.QUEUED),
    ]
    with make_sessionmaker(engine)() as check:
        stored = check.scalars(select(Model).where(Model.sha256 == sha256)).one()
        assert (stored.path, stored.split, stored.class_names) == (str(path), 1, CLASSES)
        assert (stored.metrics, stored.train_args) == ({"top1": 0.75}, TRAIN_ARGS)
    again = retag(store_url, path.parent, "--checkpoint", str(path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].startswith(f"{path} is model {sha256[:12]} (2 classes)")
    assert again.stdout.splitlines()[1].startswith("nothing to retag")


def test_once_its_job_is_done_the_new_models_results_are_the_videos_current_ones(
    store_url: str,
    engine: Engine,
    session: Session,
    library: list[int],
    checkpoints: dict[str, Path],
) -> None:
    assert retag(store_url, checkpoints["good"].parent, "--checkpoint", "new.pt").returncode == 0
    new_job = session.scalars(
        select(Job).join(Model).where(Model.sha256 == file_sha256(checkpoints["good"]))
    ).first()
    assert new_job is not None
    old_job = session.scalar(
        select(Job.id).where(Job.video_id == new_job.video_id, Job.id != new_job.id)
    )
    assert old_job in library
    transitions.claim_job(session, new_job.id, "w2", max_attempts=3)
    result = JobResult([("hand-off", 0.9)], [(1.0, 6)], META, decode_ms=1.0, inference_ms=2.0)
    assert complete_job(session, new_job.id, result)
    hand_over()

    with make_sessionmaker(engine)() as reader:
        shown = next(v for v in recent_videos(reader) if v.video_id == new_job.video_id)
        listed = results(reader)
    assert [job.job_id for job in shown.jobs] == [new_job.id, old_job]
    assert shown.jobs[0].top is not None and shown.jobs[0].top.label == "hand-off"
    assert listed[0].job_id == new_job.id


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "no such checkpoint file"),
        ("truncated", "is not a readable checkpoint"),
        ("unfit", "its weights do not fit the network its config describes"),
        ("pickled", "carries pickled Python objects"),
    ],
)
def test_retag_refuses_a_checkpoint_no_worker_would_serve_and_queues_nothing(
    store_url: str,
    engine: Engine,
    library: list[int],
    checkpoints: dict[str, Path],
    kind: str,
    reason: str,
) -> None:
    path = checkpoints.get(kind, checkpoints["good"].parent / "missing.pt")

    result = retag(store_url, path.parent, "--checkpoint", str(path))

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}") and reason in result.stderr
    assert "nothing was registered or queued" in result.stderr and "Traceback" not in result.stderr
    assert not (path.parent / "unpickled").exists()
    with make_sessionmaker(engine)() as check:
        assert check.scalar(select(func.count()).select_from(Model)) == 1
        assert check.scalar(select(func.count()).select_from(Job)) == len(library)


def test_retag_takes_a_checkpoint_or_a_model_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["retag", "--checkpoint", "new.pt", "--model", "current"])
    assert exited.value.code == 2
    assert "not allowed with argument --checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_python_m_storage_gives_retag_the_workers_check(
    store_url: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    # No video yet: nothing to send, so the entry point's broker is never reached.
    path = checkpoints["good"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    result = run_in_process(
        entry_point.main,
        ["--database-url", store_url, "retag", "--checkpoint", str(path)],
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"registered {path} as model {file_sha256(path)[:12]}")
    assert "nothing to retag" in result.stdout
