"""--dataset list: MMAction2-style list files `PATH LABEL`, labels by class name or by
a line of --classes, and every bad line reported at once with its file and number."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actiontag.settings import Settings
from tests.support.class_folders import write_class_folders
from trainer.datasets import open_dataset
from trainer.datasets.list_files import ListFiles
from trainer.errors import DatasetError
from trainer.options import build_parser


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_class_folders(folder, {"clap": 2, "wave": 2})
    return folder


def _write(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode())
    return path


def test_labels_by_name_give_the_sorted_class_names(root: Path) -> None:
    train = _write(root / "train.txt", ["wave/wave_0.avi wave", "clap/clap_0.avi clap"])
    test = _write(root / "test.txt", ["clap/clap_1.avi clap", "wave/wave_1.avi wave"])
    split = ListFiles(root, train, test).split(1)
    assert split.classes == ["clap", "wave"]
    assert sorted(split.train) == [("clap/clap_0.avi", 0), ("wave/wave_0.avi", 1)]
    assert sorted(split.test) == [("clap/clap_1.avi", 0), ("wave/wave_1.avi", 1)]


def test_a_bom_crlf_comments_and_blank_lines_are_accepted(root: Path) -> None:
    lines = ["# made by hand", "", "clap/clap_0.avi 1", "  wave/wave_0.avi   0  "]
    train = _write(root / "train.txt", lines, newline="\r\n", bom=True)
    test = _write(root / "test.txt", ["clap/clap_1.avi 1", "wave/wave_1.avi 0"], "\r\n", True)
    classes = _write(root / "classes.txt", ["wave", "clap"], newline="\r\n", bom=True)
    split = ListFiles(root, train, test, classes_file=classes).split(1)
    assert split.classes == ["wave", "clap"]  # the --classes file's order is the label order
    assert sorted(split.train) == [("clap/clap_0.avi", 1), ("wave/wave_0.avi", 0)]


def test_every_bad_line_is_reported_at_once_with_its_number(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_class_folders(outside, {"secret": 1})
    os.symlink(outside / "secret" / "secret_0.avi", root / "clap" / "link.avi")
    (root / "clap" / "notes.txt").write_text("x")
    train = _write(root / "train.txt", [
        "clap/clap_0.avi 0",          # 1: good
        "/etc/passwd.avi 0",          # 2: absolute
        "../outside/secret/secret_0.avi 0",  # 3: climbs out
        "clap/link.avi 0",            # 4: a link out
        "clap/missing.avi 0",         # 5: no such file
        "clap/notes.txt 0",           # 6: not a video
        "wave/wave_0.avi 7",          # 7: unknown label
        "wave/wave_0.avi",            # 8: malformed
        "clap/clap_0.avi 0",          # 9: listed twice
        "wave/wave_0.avi 1",          # 10: good
    ])  # fmt: skip
    test = _write(root / "test.txt", ["clap/clap_1.avi zero", "wave/wave_1.avi 1"])
    classes = _write(root / "classes.txt", ["clap", "wave"])
    with pytest.raises(DatasetError) as caught:
        ListFiles(root, train, test, classes_file=classes).split(1)
    message = str(caught.value)
    assert "9 bad lines" in message
    for number in range(2, 10):
        assert f"train.txt:{number}:" in message
    assert "test.txt:1:" in message
    assert "train.txt:1:" not in message and "train.txt:10:" not in message
    assert "is absolute" in message and "leaves" in message and "leads out" in message
    assert "is not a file" in message and "is not a video" in message


def test_hostile_names_are_escaped_in_the_error(root: Path) -> None:
    train = _write(root / "train.txt", ["clap/\x1b[2Jevil.avi clap"])
    test = _write(root / "test.txt", ["clap/clap_1.avi clap"])
    with pytest.raises(DatasetError) as caught:
        ListFiles(root, train, test).split(1)
    assert "\\x1b[2Jevil.avi" in str(caught.value) and "\x1b" not in str(caught.value)


def test_the_options_reach_the_dataset_and_root_defaults_to_the_train_lists_folder(
    root: Path,
) -> None:
    def parse(*argv: str):
        return build_parser().parse_args(["--dataset", "list", *argv])

    train, test = root / "lists" / "train.txt", root / "test.txt"
    dataset = open_dataset(parse("--train-list", str(train), "--test-list", str(test)), Settings())
    assert isinstance(dataset, ListFiles) and dataset.videos == root / "lists"
    given = parse("--train-list", str(train), "--test-list", str(test), "--data-dir", str(root))
    assert open_dataset(given, Settings()).videos == root
    with pytest.raises(ValueError, match="needs --train-list FILE and --test-list FILE"):
        open_dataset(parse("--train-list", str(train)), Settings())
