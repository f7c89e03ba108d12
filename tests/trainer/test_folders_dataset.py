"""--dataset folders: the user's videos in ROOT/<class>/, their classes from the folder
names, a split drawn per class by seed or read from a split file, and what is left out
counted by reason."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

import pytest

from actiontag.settings import Settings
from model.checkpoint import load_checkpoint
from tests.support.class_folders import write_class_folders
from tests.support.model import tiny_run
from trainer.cli import main
from trainer.datasets import open_dataset
from trainer.datasets.folders import Folders
from trainer.errors import DatasetError
from trainer.options import build_parser

TINY = tiny_run("folders")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 10, 5 and 3 videos."""
    root = tmp_path_factory.mktemp("folders") / "videos"
    write_class_folders(root, {"jump": 10, "run": 5, "wave": 3})
    return root


def _parts(dataset: Folders) -> tuple[Counter, Counter]:
    split = dataset.split(1)
    return Counter(y for _, y in split.train), Counter(y for _, y in split.test)


def test_classes_are_the_sorted_folder_names(videos: Path) -> None:
    assert Folders(videos).classes() == ["jump", "run", "wave"]


def test_the_drawn_split_is_stratified_and_leaves_every_class_a_video_to_train_on(
    videos: Path,
) -> None:
    train, test = _parts(Folders(videos, test_fraction=0.2))
    assert test == {0: 2, 1: 1, 2: 1}  # 20 % of 10 and 5, rounded; one at least
    assert train == {0: 8, 1: 4, 2: 2}
    train, test = _parts(Folders(videos, test_fraction=0.9))
    assert train == {0: 1, 1: 1, 2: 1}  # one is always left to train on


def test_the_same_seed_draws_the_same_split_and_another_seed_another(videos: Path) -> None:
    first = Folders(videos, seed=3).split(1)
    assert Folders(videos, seed=3).split(1) == first
    others = [Folders(videos, seed=seed).split(1).test for seed in range(4, 9)]
    assert any(test != first.test for test in others)


def test_a_split_file_is_honoured_in_both_tag_styles(videos: Path, tmp_path: Path) -> None:
    lines = ["\ufeff# my split", "jump/jump_0.avi test", "jump/jump_1.avi 2", "run/run_0.avi test",
             "wave/wave_0.avi TEST", "jump/jump_2.avi 0", "jump/jump_3.avi train",
             "run/run_1.avi 1", "wave/wave_1.avi train", ""]  # fmt: skip
    split_file = tmp_path / "split.txt"
    split_file.write_text("\r\n".join(lines), encoding="utf-8")
    dataset = Folders(videos, split_file=split_file)
    split = dataset.split(1)
    assert sorted(p for p, _ in split.test) == [
        "jump/jump_0.avi", "jump/jump_1.avi", "run/run_0.avi", "wave/wave_0.avi"
    ]  # fmt: skip
    assert sorted(p for p, _ in split.train) == [
        "jump/jump_3.avi", "run/run_1.avi", "wave/wave_1.avi"
    ]  # fmt: skip


def test_the_run_folder_gets_the_split_in_the_split_file_format_and_what_was_found(
    videos: Path, tmp_path: Path
) -> None:
    drawn = Folders(videos, seed=5)
    drawn.record(tmp_path / "run")
    again = Folders(videos, split_file=tmp_path / "run" / "split.txt").split(1)
    assert (sorted(again.train), sorted(again.test)) == (
        sorted(drawn.split(1).train), sorted(drawn.split(1).test)
    )  # fmt: skip
    found = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert found["classes"] == ["jump", "run", "wave"]
    assert found["videos"]["jump"] == {"train": 8, "test": 2}


def test_bad_split_file_lines_are_all_reported_with_their_numbers(
    videos: Path, tmp_path: Path
) -> None:
    split_file = tmp_path / "split.txt"
    split_file.write_text("jump/jump_0.avi test\njump/nope.avi test\nrun/run_0.avi maybe\n"
                          "lonely\n../jump/jump_1.avi train\n")  # fmt: skip
    with pytest.raises(DatasetError) as caught:
        Folders(videos, split_file=split_file).split(1)
    message = str(caught.value)
    assert "4 bad lines" in message
    for number in (2, 3, 4, 5):
        assert f"split.txt:{number}:" in message
    assert "split.txt:1:" not in message


def test_a_class_with_one_video_is_an_error_naming_it_and_its_folder(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"jump": 3, "lonely": 1})
    with pytest.raises(DatasetError, match=r"Class 'lonely' has 1 videos in .*lonely: a class"):
        Folders(tmp_path).split(1)


def test_hidden_files_other_files_and_links_out_are_left_out_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    write_class_folders(root, {"jump": 2, "run": 2})
    (root / "jump" / ".DS_Store").write_bytes(b"\0")
    (root / "jump" / "._jump_0.avi").write_bytes(b"\0")
    (root / ".hidden_class").mkdir()
    (root / "jump" / "notes.txt").write_text("x")
    (root / "README.md").write_text("x")
    outside = tmp_path / "outside"
    write_class_folders(outside, {"secret": 2})
    os.symlink(outside / "secret" / "secret_0.avi", root / "run" / "linked.avi")
    os.symlink(outside / "secret", root / "secret")
    os.symlink(root / "jump" / "jump_0.avi", root / "run" / "inside.avi")  # stays in ROOT
    dataset = Folders(root)
    with caplog.at_level(logging.INFO):
        split = dataset.split(1)
    assert split.classes == ["jump", "run"]
    used = sorted(p for p, _ in split.train + split.test)
    assert used == ["jump/jump_0.avi", "jump/jump_1.avi", "run/inside.avi", "run/run_0.avi",
                    "run/run_1.avi"]  # fmt: skip
    dataset.record(tmp_path / "run")
    ignored = json.loads((tmp_path / "run" / "dataset.json").read_text())["ignored"]
    assert ignored == {
        "hidden": [".hidden_class", "jump/.DS_Store", "jump/._jump_0.avi"],
        "not a video (by its extension)": ["jump/notes.txt"],
        "a file outside the class folders": ["README.md"],
        "a link that leads out of the folder": ["run/linked.avi", "secret"],
    }
    assert "ignored, hidden: 3" in caplog.text
    assert "ignored, not a video (by its extension): 1 (jump/notes.txt)" in caplog.text


def test_names_are_escaped_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_class_folders(tmp_path, {"jump": 2, "run": 2})
    (tmp_path / "jump" / "evil\x1b[2J.avi").write_bytes(b"\0")
    with caplog.at_level(logging.INFO):
        Folders(tmp_path).split(1)
    assert "evil\\x1b[2J.avi" in caplog.text and "\x1b" not in caplog.text


def test_the_options_reach_the_dataset_and_only_split_1_exists(tmp_path: Path) -> None:
    def parse(*argv: str):
        return build_parser().parse_args(["--dataset", "folders", *argv])

    dataset = open_dataset(parse("--data-dir", str(tmp_path), "--test-fraction", "0.5",
                                 "--split-seed", "7"), Settings())  # fmt: skip
    assert isinstance(dataset, Folders) and dataset.videos == tmp_path
    assert (dataset.test_fraction, dataset.seed, dataset.served) == (0.5, 7, False)
    with pytest.raises(ValueError, match="one split"):
        open_dataset(parse("--data-dir", str(tmp_path), "--split", "2"), Settings())
    with pytest.raises(ValueError, match="needs --data-dir"):
        open_dataset(parse(), Settings())


def test_a_run_trains_on_the_folders_and_its_checkpoint_names_them(tmp_path: Path) -> None:
    data = tmp_path / "mine"
    write_class_folders(data, {"clap": 4, "wave": 4})
    out = tmp_path / "runs"
    assert main([*TINY, "--data-dir", str(data), "--out", str(out)]) == 0
    checkpoint = load_checkpoint(out / "split1" / "model.pt")
    assert checkpoint.class_names == ["clap", "wave"]
    assert (out / "split1" / "split.txt").is_file()
    assert json.loads((out / "split1" / "dataset.json").read_text())["dataset"] == "folders"


def test_a_name_that_is_not_utf8_is_left_out_and_shown_escaped(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"jump": 2, "run": 2})
    with open(os.fsencode(tmp_path / "jump") + b"/caf\xe9.avi", "wb") as file:
        file.write(b"\0")
    dataset = Folders(tmp_path)
    dataset.record(tmp_path / "run")
    ignored = json.loads((tmp_path / "run" / "dataset.json").read_text())["ignored"]
    assert list(ignored.values()) == [["jump/caf\\xe9.avi"]]
    assert "caf" not in (tmp_path / "run" / "split.txt").read_text()


def test_a_split_file_that_leaves_a_class_no_test_video_says_to_tag_one(
    videos: Path, tmp_path: Path
) -> None:
    split_file = tmp_path / "split.txt"
    split_file.write_text("jump/jump_0.avi test\njump/jump_1.avi train\nrun/run_0.avi train\n"
                          "wave/wave_0.avi test\nwave/wave_1.avi train\n")  # fmt: skip
    with pytest.raises(DatasetError, match=r"'run' has no test video .* Tag one of its videos"):
        Folders(videos, split_file=split_file).split(1)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_a_test_fraction_outside_0_to_1_is_refused(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(ValueError, match="--test-fraction must be between 0 and 1"):
        Folders(tmp_path, test_fraction=fraction)
