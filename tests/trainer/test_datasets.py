"""The trainer's datasets by name: --dataset offers the registry's, and each name makes
a dataset with the interface the runner uses (prepare, classes, split k)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from actiontag.settings import Settings
from trainer.datasets import DATASETS, Dataset, open_dataset
from trainer.datasets.folders import Folders
from trainer.datasets.hmdb51 import HMDB51
from trainer.datasets.list_files import ListFiles
from trainer.datasets.segments import Segments
from trainer.datasets.synthetic import Synthetic
from trainer.datasets.ucf101 import UCF101
from trainer.options import build_parser


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_the_trainer_offers_every_registered_dataset() -> None:
    dataset = next(a for a in build_parser()._actions if a.dest == "dataset")
    assert tuple(dataset.choices) == tuple(DATASETS)
    assert tuple(DATASETS) == ("hmdb51", "ucf101", "synthetic", "folders", "list", "segments")


@pytest.mark.parametrize(
    ("name", "kind"), [("hmdb51", HMDB51), ("ucf101", UCF101), ("synthetic", Synthetic)]
)
def test_each_name_makes_its_dataset_in_data_name_by_default(name: str, kind: type) -> None:
    dataset = open_dataset(_args("--dataset", name), Settings())
    assert isinstance(dataset, kind) and isinstance(dataset, Dataset)
    assert dataset.root == Path("data", name)
    assert dataset.videos == Path("data", name, "videos")


def test_only_hmdb51_is_served_and_the_real_videos_start_from_pretrained_weights() -> None:
    assert (HMDB51.served, HMDB51.pretrained_by_default) == (True, True)
    assert (UCF101.served, UCF101.pretrained_by_default) == (False, True)
    assert (Synthetic.served, Synthetic.pretrained_by_default) == (False, False)
    assert (Folders.served, Folders.pretrained_by_default) == (False, True)
    assert (ListFiles.served, ListFiles.pretrained_by_default) == (False, True)
    assert (Segments.served, Segments.pretrained_by_default) == (False, True)


def test_the_options_reach_the_dataset(tmp_path: Path) -> None:
    args = _args("--dataset", "synthetic", "--data-dir", str(tmp_path), "--synthetic-classes",
                 "3", "--synthetic-size", "40x32")  # fmt: skip
    dataset = open_dataset(args, Settings())
    assert dataset.root == tmp_path
    assert isinstance(dataset, Synthetic)
    assert (dataset.config.num_classes, dataset.config.width, dataset.config.height) == (3, 40, 32)
    archives = open_dataset(_args("--archives", str(tmp_path)), Settings())
    assert isinstance(archives, HMDB51) and archives.archives_dir == tmp_path


def test_an_unknown_dataset_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'kinetics'; the known ones are hmdb51"):
        open_dataset(argparse.Namespace(dataset="kinetics", data_dir=None), Settings())
