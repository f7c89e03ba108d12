"""What the worker records of the checkpoint it serves before it takes jobs: its
classes, metrics and the trainer's record of its run, for the web app's model page."""

from __future__ import annotations

from pathlib import Path

import torch
from sqlalchemy import select

from actiontag.settings import Settings
from model.checkpoint import save_checkpoint
from model.network import ActionMoEDynamicModel
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.schema import Model
from tests.support.model import CLASSES, CONFIG
from worker.__main__ import prepare

TRAIN_ARGS = {"dataset": "folders", "epochs": 2, "freeze_backbone": False}


def test_the_worker_registers_its_checkpoint_with_the_record_of_its_training(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_checkpoint(
        path, ActionMoEDynamicModel(config=CONFIG), class_names=CLASSES, split=2,
        train_args=TRAIN_ARGS, metrics={"top1": 0.5},
    )  # fmt: skip
    url = f"sqlite:///{tmp_path / 'actiontag.db'}"
    upgrade(url)  # a worker creates no SQLite file but the default

    prepare(Settings(checkpoint=path, database_url=url, broker_url="redis://127.0.0.1:1/0"))

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        model = session.scalars(select(Model)).one()
        assert (model.path, model.split, model.class_names) == (str(path), 2, CLASSES)
        assert (model.metrics, model.train_args) == ({"top1": 0.5}, TRAIN_ARGS)
    engine.dispose()
