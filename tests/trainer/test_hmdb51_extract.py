"""trainer.datasets.hmdb51.extract_hmdb51 on HMDB51-shaped nested archives of real videos."""

from __future__ import annotations

import cv2
import pytest

from trainer.datasets.hmdb51 import Layout, extract_hmdb51, load_split
from trainer.errors import DatasetError

# Four clips a class: each split then tags training and test clips in every class.
CLASSES = {
    "brush_hair": [
        "Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_0.avi", "b_1.avi", "b_2.avi", "b_3.avi"
    ],
    "kick": ["-kick_0.avi", "#kick_1.avi", "(Rad)_kick;_2.avi", "kick_3.avi"],
    "kick_ball": ["Amazing_Soccer_#2_kb_0.avi", "kb_1 & 2.avi", "kb_~@+.avi", "kb_3.avi"],
}  # fmt: skip
# These tests' archives hold three classes, not HMDB51's 51.
LAYOUT = Layout("the test set", tuple(CLASSES))


@pytest.fixture
def archives(hmdb51_like, tmp_path):
    return hmdb51_like.build(tmp_path / "archives", CLASSES)


def snapshot(root):
    """Every path under root with its mtime, to prove a rerun changed nothing."""
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_each_class_archive_becomes_a_folder_of_its_videos(archives, tmp_path):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)

    for name, clips in CLASSES.items():
        assert sorted(p.name for p in (root / "videos" / name).glob("*.avi")) == sorted(clips)


def test_unpacked_videos_decode(archives, tmp_path):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)

    capture = cv2.VideoCapture(str(root / "videos" / "kick" / "-kick_0.avi"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 8


def test_split_files_are_flattened_into_the_splits_folder(archives, tmp_path):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)

    assert sorted(p.name for p in (root / "splits").glob("*.txt")) == sorted(
        f"{name}_test_split{k}.txt" for name in CLASSES for k in (1, 2, 3)
    )


def test_unpacked_dataset_loads_as_a_split(archives, hmdb51_like, tmp_path):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)

    split = load_split(root, 2)

    assert split.classes == ["brush_hair", "kick", "kick_ball"]
    assert split.missing == []
    expected_train = [
        (f"{name}/{clip}", label)
        for label, (name, clips) in enumerate(CLASSES.items())
        for i, clip in enumerate(clips)
        if hmdb51_like.tag(i, 2) == 1
    ]
    assert split.train == expected_train


def test_only_the_dataset_is_left_behind(archives, tmp_path):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)

    assert sorted(p.name for p in root.iterdir()) == [".complete.json", "splits", "videos"]


def test_rerun_changes_nothing_and_runs_no_tool(archives, tmp_path, monkeypatch):
    root = extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)
    before = snapshot(root)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))

    extract_hmdb51(root, *archives, progress=False, layout=LAYOUT)

    assert snapshot(root) == before


def test_damaged_class_leaves_no_complete_looking_folder(hmdb51_like, tmp_path):
    videos, splits = hmdb51_like.build(tmp_path / "bad", CLASSES, corrupt=("kick", 2))
    root = tmp_path / "hmdb51"

    # bsdtar unpacks the damaged clip and the CRC check after it fails; unar fails itself.
    with pytest.raises(DatasetError, match=r"\(Rad\)_kick;_2\.avi"):
        extract_hmdb51(root, videos, splits, progress=False, layout=LAYOUT)

    assert (root / "videos" / "brush_hair" / ".complete").is_file()
    assert not (root / "videos" / "kick").exists()
    assert not (root / "videos" / "kick_ball").exists()
    assert not (root / ".complete.json").exists()
    assert not list((root / ".staging").glob(".kick.*"))


def test_rerun_after_a_failure_finishes_without_redoing_complete_classes(hmdb51_like, tmp_path):
    root = tmp_path / "hmdb51"
    bad = hmdb51_like.build(tmp_path / "bad", CLASSES, corrupt=("kick", 2))
    with pytest.raises(DatasetError):
        extract_hmdb51(root, *bad, progress=False, layout=LAYOUT)
    done_before = snapshot(root / "videos" / "brush_hair")
    good = hmdb51_like.build(tmp_path / "good", CLASSES)

    extract_hmdb51(root, *good, progress=False, layout=LAYOUT)

    assert snapshot(root / "videos" / "brush_hair") == done_before
    assert len(list((root / "videos" / "kick").glob("*.avi"))) == len(CLASSES["kick"])
    assert (root / ".complete.json").is_file()


def test_leftovers_of_a_killed_run_are_cleared(archives, tmp_path):
    root = tmp_path / "hmdb51"
    half_made = root / ".staging" / ".kick.x1y2z3" / "unpacked" / "kick"
    half_made.mkdir(parents=True)
    (half_made / "-kick_0.avi").write_bytes(b"half a video")

    extract_hmdb51(root, *archives, progress=False, layout=LAYOUT)

    assert not (root / ".staging").exists()
    assert (root / "videos" / "kick" / "-kick_0.avi").stat().st_size > len(b"half a video")


def test_class_folder_not_made_by_us_is_not_trusted(archives, tmp_path):
    root = tmp_path / "hmdb51"
    (root / "videos" / "kick").mkdir(parents=True)
    (root / "videos" / "kick" / "mine.avi").write_bytes(b"user data")

    with pytest.raises(DatasetError, match="was not completed by actiontag"):
        extract_hmdb51(root, *archives, progress=False, layout=LAYOUT)

    assert (root / "videos" / "kick" / "mine.avi").read_bytes() == b"user data"


def test_escaping_member_in_a_class_archive_is_refused(rar4, hmdb51_like, tmp_path):
    evil_class = rar4.write_rar4(
        tmp_path / "evil.rar", [rar4.Entry("evil/ok.avi", b"x"), rar4.Entry("../../x.avi", b"y")]
    )
    outer = rar4.write_rar4(
        tmp_path / "hmdb51_org.rar", [rar4.Entry("evil.rar", evil_class.read_bytes())]
    )
    _, splits = hmdb51_like.build(tmp_path / "ok", {"evil": ["ok.avi"]})
    root = tmp_path / "hmdb51"

    with pytest.raises(DatasetError, match="outside the target"):
        extract_hmdb51(root, outer, splits, progress=False, layout=Layout("evil", ("evil",)))

    assert not (root / "videos" / "evil").exists()
    assert not list(tmp_path.rglob("x.avi"))


def test_archive_without_class_archives_is_not_taken_for_hmdb51(rar4, archives, tmp_path):
    other = rar4.write_rar4(tmp_path / "other.rar", [rar4.Entry("readme.txt", b"hi")])

    with pytest.raises(DatasetError, match=r"holds no per-class \.rar archives"):
        extract_hmdb51(tmp_path / "hmdb51", other, archives[1], progress=False)


def test_archives_without_all_51_classes_are_refused_naming_the_missing(archives, tmp_path):
    root = tmp_path / "hmdb51"

    with pytest.raises(DatasetError) as caught:
        extract_hmdb51(root, *archives, progress=False)

    message = str(caught.value)
    assert "hmdb51_org.rar lacks the archives of 48 of HMDB51's 51 classes: 'cartwheel'" in message
    assert "test_train_splits.rar lacks 144 split files: 'cartwheel_test_split1.txt'" in message
    assert not root.exists()


def test_archive_with_a_class_hmdb51_does_not_have_is_refused(hmdb51_like, tmp_path):
    classes = {**CLASSES, "juggle": ["j_0.avi", "j_1.avi"]}
    archives = hmdb51_like.build(tmp_path / "archives", classes)

    with pytest.raises(DatasetError, match="holds classes the test set does not have: 'juggle'"):
        extract_hmdb51(tmp_path / "hmdb51", *archives, progress=False, layout=LAYOUT)
