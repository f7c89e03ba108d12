"""--dataset ucf101: UCF101-shaped archives of real videos (a RAR, and a zip of CRLF split
files with classInd's numbers from 1 and a class spelt with other case), downloaded
from a local HTTP server or given with --archives, unpacked and read as split k."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from actiontag.settings import load_settings
from model.checkpoint import load_checkpoint
from trainer.cli import main
from trainer.datasets import open_dataset
from trainer.datasets.line_files import decode_lines
from trainer.datasets.ucf101 import (
    MIRROR_ENV,
    UCF101,
    UCF101_COUNTS,
    Counts,
    extract_ucf101,
    fetch_archives,
    load_split,
    prepare_ucf101,
)
from trainer.datasets.ucf101_splits import parse_split_lists
from trainer.download import ChecksumError
from trainer.errors import DatasetError
from trainer.options import build_parser
from trainer.rar import UnsafeArchiveError

RAR = "UCF101.rar"
ZIP = "UCF101TrainTestSplits-RecognitionTask.zip"
GROUPS = range(1, 4)  # three clips a class, v_<Class>_g01_c01..03


def _clips(spelling: str) -> list[str]:
    return [f"v_{spelling}_g01_c{c:02d}.avi" for c in GROUPS]


# The archive's folders; classInd.txt lists them in another order than sorted, and
# spells one with other case, as the lists do (folder and clip names).
IN_ARCHIVE = {name: _clips(name) for name in ("ApplyEyeMakeup", "HandstandPushups", "YoYo")}
CLASS_INDEX = ["YoYo", "ApplyEyeMakeup", "HandStandPushups"]
LISTED = {name: _clips(name) for name in CLASS_INDEX}
CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]  # label order: the folders, sorted
# This test set's own numbers: three classes, nine clips, six training and three test
# clips in every split (UCF101_COUNTS holds the real dataset's).
TINY = Counts("the test set", classes=3, clips=9, per_split={k: (6, 3) for k in (1, 2, 3)})


@pytest.fixture(scope="module")
def texts(ucf101_like) -> dict[str, str]:
    return ucf101_like.split_texts(CLASS_INDEX, LISTED)


@pytest.fixture(scope="module")
def built(ucf101_like, texts, tmp_path_factory) -> tuple[Path, dict]:
    """A folder holding both archives, and their (size, sha256) as `expected`."""
    folder = tmp_path_factory.mktemp("built")
    ucf101_like.write_videos_rar(folder / RAR, IN_ARCHIVE)
    ucf101_like.write_splits_zip(folder / ZIP, texts)
    expected = {
        name: (
            (folder / name).stat().st_size,
            hashlib.sha256((folder / name).read_bytes()).hexdigest(),
        )
        for name in (ZIP, RAR)
    }
    return folder, expected


@pytest.fixture
def prepared(built, tmp_path) -> Path:
    folder, expected = built
    return prepare_ucf101(
        tmp_path / "ucf101", archives_dir=folder, expected=expected, counts=TINY, progress=False
    )


def _lines(texts: dict[str, str]) -> dict:
    return {name: decode_lines(Path("splits", name), text.encode()) for name, text in texts.items()}


def snapshot(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_download_and_prepare_give_split_k_labelled_by_sorted_folder(
    file_server, built, ucf101_like, tmp_path
):
    folder, expected = built
    file_server.files = {name: (folder / name).read_bytes() for name in (ZIP, RAR)}

    root = prepare_ucf101(
        tmp_path / "ucf101",
        mirror=file_server.base_url,
        expected=expected,
        counts=TINY,
        progress=False,
    )
    split = load_split(root, 2, TINY)

    assert [r.path for r in file_server.requests] == [ZIP, RAR]
    assert split.classes == CLASSES
    assert sorted(split.test) == [
        (f"{name}/{clip}", label)
        for label, (name, clips) in enumerate(IN_ARCHIVE.items())
        for i, clip in enumerate(clips)
        if ucf101_like.is_test(i, 2)
    ]
    assert len(split.train) == 6 and split.missing == []


def test_the_archives_folder_is_used_in_place_and_offline(built, closed_port_url, tmp_path):
    folder, expected = built

    root = prepare_ucf101(
        tmp_path / "ucf101",
        archives_dir=folder,
        mirror=closed_port_url,
        expected=expected,
        counts=TINY,
        progress=False,
    )

    assert (
        sorted(p.name for p in (root / "videos" / "HandstandPushups").glob("*.avi"))
        == (IN_ARCHIVE["HandstandPushups"])
    )
    assert sorted(p.name for p in root.iterdir()) == [".complete.json", "splits", "videos"]


def test_the_sha256_seen_of_each_archive_is_recorded(prepared, built):
    _, expected = built

    recorded = json.loads((prepared / ".complete.json").read_text())

    assert recorded["classes"] == CLASSES
    assert recorded["archives"] == {
        name: {"bytes": size, "sha256": sha256} for name, (size, sha256) in expected.items()
    }


def test_an_archive_missing_from_the_archives_folder_is_named(file_server, built, tmp_path):
    folder, _ = built
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.copy(folder / ZIP, offline)

    with pytest.raises(DatasetError, match=r"offline/UCF101\.rar does not exist: --archives DIR"):
        fetch_archives(tmp_path / "dl", archives_dir=offline, mirror=file_server.base_url)

    assert file_server.requests == []


def test_offline_advice_names_the_archives_and_ucf101s_mirror(closed_port_url, tmp_path):
    with pytest.raises(DatasetError) as caught:
        fetch_archives(tmp_path / "dl", mirror=closed_port_url, retries=1, progress=False)

    message = str(caught.value)
    assert f"put {ZIP} and {RAR} in a folder and pass --archives DIR" in message
    assert f"{MIRROR_ENV}=<base URL> (or pass --ucf101-mirror URL)" in message


def test_a_split_zip_other_than_the_official_is_refused_by_its_size(built, tmp_path):
    folder, _ = built

    with pytest.raises(ChecksumError, match=r"bytes, expected 113943\. Replace it"):
        fetch_archives(tmp_path / "dl", archives_dir=folder)


def test_the_mirror_setting_reaches_the_dataset(tmp_path):
    args = build_parser().parse_args(["--dataset", "ucf101", "--archives", str(tmp_path)])
    settings = load_settings(environ={MIRROR_ENV: "http://mirror.example/ucf"})

    dataset = open_dataset(args, settings)

    assert isinstance(dataset, UCF101) and dataset.root == Path("data", "ucf101")
    assert (dataset.mirror, dataset.archives_dir) == ("http://mirror.example/ucf", tmp_path)


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "ucfTrainTestlist\\..\\evil"])
def test_a_zip_member_that_leaves_the_folder_is_refused(
    ucf101_like, built, texts, member, tmp_path
):
    folder, _ = built
    hostile = ucf101_like.write_splits_zip(tmp_path / ZIP, texts, extra={member: b"x"})

    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        extract_ucf101(tmp_path / "ucf101", folder / RAR, hostile, counts=TINY)

    assert not (tmp_path / "ucf101").exists()


def test_a_trainlist_label_that_disagrees_with_classind_names_file_and_line(
    ucf101_like, built, texts, tmp_path
):
    folder, _ = built
    lines = texts["trainlist02.txt"].split("\r\n")
    assert lines[2].startswith("ApplyEyeMakeup/") and lines[2].endswith(" 2")
    lines[2] = lines[2][:-1] + "1"  # YoYo's number
    bad = ucf101_like.write_splits_zip(
        tmp_path / ZIP, {**texts, "trainlist02.txt": "\r\n".join(lines)}
    )

    with pytest.raises(DatasetError) as caught:
        extract_ucf101(tmp_path / "ucf101", folder / RAR, bad, counts=TINY)

    assert (
        f"{bad}/ucfTrainTestlist/trainlist02.txt:3: class number 1 is 'YoYo' in classInd.txt, "
        f"but ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi lies in the folder of 'ApplyEyeMakeup'"
    ) in str(caught.value)
    assert not (tmp_path / "ucf101").exists()


def test_counts_that_differ_from_the_expected_name_the_clip_a_split_lacks(texts):
    lines = texts["trainlist03.txt"].split("\r\n")
    dropped = lines.pop(0).rsplit(" ", 1)[0]

    with pytest.raises(DatasetError) as caught:
        parse_split_lists(_lines({**texts, "trainlist03.txt": "\r\n".join(lines)}), TINY)

    assert (
        f"split 3 lists 5 training and 3 test clips, the official 6 and 3 (it lacks 1 the "
        f"other splits list: {dropped!r})"
    ) in str(caught.value)


def test_the_official_counts_apply_to_a_classind_of_ucf101s_101_classes_only(texts, caplog):
    with caplog.at_level(logging.WARNING):
        lists = parse_split_lists(_lines(texts), UCF101_COUNTS)

    assert len(lists.classes) == 3
    assert "names 3 classes, not UCF101's 101: these are not UCF101's official" in caplog.text
    assert all(
        train + test == UCF101_COUNTS.clips for train, test in UCF101_COUNTS.per_split.values()
    )


def test_a_clip_missing_on_disk_is_left_out_with_a_warning(prepared, caplog):
    (prepared / "videos" / "YoYo" / "v_YoYo_g01_c01.avi").unlink()  # trains split 1

    with caplog.at_level(logging.WARNING):
        split = load_split(prepared, 1, TINY)

    assert split.missing == ["YoYo/v_YoYo_g01_c01.avi"]
    assert "1 clips of split 1 are listed but not in" in caplog.text
    assert len(split.train) + len(split.test) == 8


def test_a_class_missing_on_disk_is_an_error(prepared):
    shutil.rmtree(prepared / "videos" / "YoYo")

    with pytest.raises(
        DatasetError, match=r"has no folder for 1 of the 3 classes of classInd\.txt: 'YoYo'"
    ):
        load_split(prepared, 3, TINY)


def test_a_class_the_archive_lacks_is_refused_before_unpacking(ucf101_like, built, tmp_path):
    folder, _ = built
    partial = {name: clips for name, clips in IN_ARCHIVE.items() if name != "YoYo"}
    videos = ucf101_like.write_videos_rar(tmp_path / RAR, partial)

    with pytest.raises(DatasetError, match=r"UCF101\.rar lacks the folders of 1 of the 3 classes"):
        extract_ucf101(tmp_path / "ucf101", videos, folder / ZIP, counts=TINY)

    assert not (tmp_path / "ucf101").exists()


def test_files_beside_the_class_folders_are_not_used_and_said_so(
    ucf101_like, built, tmp_path, caplog
):
    folder, _ = built
    extra = {"UCF-101/readme.txt": b"hi", "UCF-101/YoYo/.DS_Store": b"x"}
    videos = ucf101_like.write_videos_rar(tmp_path / RAR, IN_ARCHIVE, extra=extra)

    with caplog.at_level(logging.WARNING):
        root = extract_ucf101(tmp_path / "ucf101", videos, folder / ZIP, counts=TINY)

    assert "2 files of UCF101.rar are not `UCF-101/<class>/<clip>` and are not used" in caplog.text
    assert sorted(p.name for p in (root / "videos").iterdir()) == CLASSES
    assert len(load_split(root, 1, TINY).train) == 6


def test_a_rerun_restores_a_removed_class_and_leaves_the_others(prepared, built):
    folder, expected = built
    kept = snapshot(prepared / "videos" / "ApplyEyeMakeup")
    shutil.rmtree(prepared / "videos" / "YoYo")
    (prepared / ".complete.json").unlink()

    prepare_ucf101(prepared, archives_dir=folder, expected=expected, counts=TINY, progress=False)

    assert snapshot(prepared / "videos" / "ApplyEyeMakeup") == kept
    assert len(list((prepared / "videos" / "YoYo").glob("*.avi"))) == 3
    assert not (prepared / ".staging").exists()


def test_a_prepared_dataset_needs_neither_archives_nor_network(prepared, closed_port_url):
    before = snapshot(prepared)

    prepare_ucf101(prepared, mirror=closed_port_url, progress=False)

    assert snapshot(prepared) == before


def test_the_trainer_trains_and_evaluates_split_2(prepared, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    code = main(
        [
            "--dataset", "ucf101", "--split", "2",
            "--data-dir", str(prepared),
            "--out", str(tmp_path / "runs"),
            "--backbone", "r2plus1d_mini", "--pretrained", "none",
            "--epochs", "1", "--batch-size", "2",
            "--clip-len", "4", "--short-side", "20", "--crop-size", "16",
            "--steps-per-epoch", "1", "--workers", "0", "--eval-clips", "1", "--no-progress",
        ]
    )  # fmt: skip

    assert code == 0, caplog.text
    run = tmp_path / "runs" / "split2"
    checkpoint = load_checkpoint(run / "model.pt")
    assert (checkpoint.class_names, checkpoint.split) == (CLASSES, 2)
    assert checkpoint.train_args["dataset"] == "ucf101"
    found = json.loads((run / "dataset.json").read_text())
    assert found["videos"] == {name: {"train": 2, "test": 1} for name in CLASSES}


def test_the_trainer_names_the_archive_missing_from_archives(file_server, built, tmp_path, caplog):
    folder, _ = built
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.copy(folder / ZIP, offline)
    caplog.set_level(logging.INFO)

    code = main(
        [
            "--dataset", "ucf101", "--data-dir", str(tmp_path / "ucf101"),
            "--archives", str(offline), "--ucf101-mirror", file_server.base_url,
            "--out", str(tmp_path / "runs"), "--no-progress",
        ]
    )  # fmt: skip

    assert code == 2
    assert "UCF101.rar does not exist: --archives DIR means offline" in caplog.text
    assert file_server.requests == [] and not (tmp_path / "runs").exists()
