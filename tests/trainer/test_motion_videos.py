"""The synthetic motion dataset: its videos and computed splits, deterministic, and
separable by motion only (a single frame says nothing about the class)."""

from __future__ import annotations

import ast
import hashlib
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import trainer.motion_videos
from decoding.video import probe, read_clips
from trainer.datasets.split_files import load_split
from trainer.datasets.synthetic import Synthetic
from trainer.errors import DatasetError
from trainer.motion_videos import (
    MOTIONS,
    SyntheticConfig,
    SyntheticDatasetError,
    split_assignment,
    video_path,
    write_synthetic_dataset,
)

SMALL = SyntheticConfig(num_classes=3, videos_per_class=5, frames=10, width=40, height=32)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_videos_in_a_folder_per_class_and_no_split_files(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    classes = [m.name for m in MOTIONS[:3]]
    for name in classes:
        assert sorted(p.name for p in (root / "videos" / name).iterdir()) == [
            f"{name}_{n:03d}.avi" for n in range(5)
        ]
    assert not (root / "splits").exists()
    split = Synthetic(root).split(2)
    assert split.classes == sorted(classes)
    assert split.missing == []
    # test_fraction 0.3 of 5 videos: round(1.5) = 2 test videos per class.
    assert len(split.train) == 3 * 3 and len(split.test) == 3 * 2
    assert all((root / "videos" / path).is_file() for path, _ in split.train + split.test)


def test_splits_differ_between_split_numbers(tmp_path: Path) -> None:
    config = SyntheticConfig(num_classes=2, videos_per_class=10)
    root = write_synthetic_dataset(tmp_path / "syn", config, progress=False)
    tests = [sorted(Synthetic(root).split(k).test) for k in (1, 2, 3)]
    assert tests[0] != tests[1] != tests[2]
    assert all(len(test) == 2 * 3 for test in tests)


def test_the_dataset_prepares_what_its_settings_say_and_names_the_classes(
    tmp_path: Path,
) -> None:
    dataset = Synthetic(tmp_path / "syn", SMALL)
    dataset.prepare(progress=False)
    assert dataset.classes() == sorted(m.name for m in MOTIONS[:3])
    # Read back from the folder alone, the split is the same.
    assert Synthetic(tmp_path / "syn").split(1) == dataset.split(1)


def test_labels_follow_the_sorted_class_names(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    split = Synthetic(root).split(1)
    for path, label in split.train + split.test:
        assert path.split("/")[0] == split.classes[label]


def test_a_lost_video_is_left_out_of_its_split(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    lost = video_path(root, SMALL, 1, 3)
    lost.unlink()
    split = Synthetic(root).split(1)
    assert split.missing == [lost.relative_to(root / "videos").as_posix()]
    assert len(split.train) + len(split.test) == 3 * 5 - 1


def test_a_folder_without_the_dataset_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="--dataset synthetic"):
        Synthetic(tmp_path).split(1)


def test_other_settings_in_the_folder_are_a_dataset_error_for_the_trainer(
    tmp_path: Path,
) -> None:
    write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    bigger = SyntheticConfig(**{**SMALL.to_dict(), "videos_per_class": 6})
    with pytest.raises(DatasetError, match="other settings"):
        Synthetic(tmp_path / "syn", bigger).prepare(progress=False)


def test_videos_decode_through_the_video_contract(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    info = probe(video_path(root, SMALL, 0, 0))
    assert (info.frames, info.width, info.height) == (10, 40, 32)
    clips = read_clips(info.path, [0, 2], 8, short_side=32, info=info)
    assert clips.shape == (2, 8, 32, 40, 3)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = write_synthetic_dataset(tmp_path / "a", SMALL, progress=False)
    second = write_synthetic_dataset(tmp_path / "b", SMALL, progress=False)
    assert _digest(first) == _digest(second)


def test_another_seed_gives_other_videos(tmp_path: Path) -> None:
    first = write_synthetic_dataset(tmp_path / "a", SMALL, progress=False)
    other = SyntheticConfig(**{**SMALL.to_dict(), "seed": 1})
    second = write_synthetic_dataset(tmp_path / "b", other, progress=False)
    a, b = _digest(first), _digest(second)
    videos = [name for name in a if name.endswith(".avi")]
    assert all(a[name] != b[name] for name in videos)


def test_rerun_rewrites_nothing(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    write_synthetic_dataset(root, SMALL, progress=False)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


def test_interrupted_generation_is_completed_on_rerun(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    lost = video_path(root, SMALL, 1, 3)
    lost.unlink()
    write_synthetic_dataset(root, SMALL, progress=False)
    assert probe(lost).frames == SMALL.frames


def test_other_settings_in_the_same_folder_are_refused(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    bigger = SyntheticConfig(**{**SMALL.to_dict(), "videos_per_class": 6})
    with pytest.raises(SyntheticDatasetError, match="other settings"):
        write_synthetic_dataset(root, bigger, progress=False)


def test_a_folder_with_foreign_videos_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hmdb" / "videos" / "kick").mkdir(parents=True)
    with pytest.raises(SyntheticDatasetError, match="did not write"):
        write_synthetic_dataset(tmp_path / "hmdb", SMALL, progress=False)
    assert not (tmp_path / "hmdb" / "splits").exists()


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=len(MOTIONS) + 1)
    with pytest.raises(ValueError, match="videos_per_class"):
        SyntheticConfig(videos_per_class=1)


# --- separable by motion only --------------------------------------------------------
# All 8 classes, 40 videos each; probes are fitted on split 1's training videos and
# scored on its test videos (frames of one video never land on both sides).
PROBE = SyntheticConfig(num_classes=8, videos_per_class=40, frames=12)


@pytest.fixture(scope="module")
def probe_videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list, list]:
    root = write_synthetic_dataset(tmp_path_factory.mktemp("probe"), PROBE, progress=False)
    split = Synthetic(root).split(1)
    videos, labels, is_train = [], [], []
    for items, train in ((split.train, True), (split.test, False)):
        for relative, label in items:
            path = root / "videos" / relative
            # Decoded the way the trainer reads them: decoding.video, RGB.
            videos.append(read_clips(path, [0], PROBE.frames, short_side=PROBE.height)[0])
            labels.append(label)
            is_train.append(train)
    return videos, labels, is_train


def _frame_statistics(frame: np.ndarray) -> np.ndarray:
    """What a single frame shows: colour, contrast, edge strength, sharpness."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    pixels = frame.reshape(-1, 3).astype(np.float32)
    return np.concatenate(
        [
            pixels.mean(0),
            pixels.std(0),
            [np.abs(gx).mean(), np.abs(gy).mean(), cv2.Laplacian(gray, cv2.CV_32F).var()],
        ]
    )


def _motion_statistics(video: np.ndarray) -> np.ndarray:
    """What frame pairs show: optical flow's mean direction, expansion, rotation, reversals."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video]
    h, w = gray[0].shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys = xs - (w - 1) / 2, ys - (h - 1) / 2
    radius = np.sqrt(xs**2 + ys**2) + 1e-6
    rows = []
    for a, b in itertools.pairwise(gray):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0)
        dx, dy = flow[..., 0], flow[..., 1]
        radial = (dx * xs + dy * ys) / radius
        tangential = (dy * xs - dx * ys) / radius
        rows.append(
            [
                dx.mean(),
                dy.mean(),
                abs(dx.mean()),
                radial.mean(),
                abs(tangential.mean()),
                np.abs(flow).mean(),
            ]
        )
    rows = np.array(rows)
    reversals = (np.diff(np.sign(rows[:, 0])) != 0).mean()
    return np.concatenate([rows.mean(0), [reversals]])


def _probe_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    probe_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe_model.fit(features[train], labels[train])
    return float(probe_model.score(features[~train], labels[~train]))


def test_single_frames_do_not_tell_the_classes_apart(probe_videos) -> None:
    videos, labels, is_train = probe_videos
    features, frame_labels, frame_train = [], [], []
    for video, label, train in zip(videos, labels, is_train, strict=True):
        for frame in video:
            features.append(_frame_statistics(frame))
            frame_labels.append(label)
            frame_train.append(train)
    accuracy = _probe_accuracy(np.array(features), np.array(frame_labels), np.array(frame_train))
    # Chance is 1/8 = 0.125; measured 0.12 with 60 videos per class.
    assert accuracy < 0.25


def test_frame_pairs_tell_the_classes_apart(probe_videos) -> None:
    videos, labels, is_train = probe_videos
    features = np.array([_motion_statistics(video) for video in videos])
    accuracy = _probe_accuracy(features, np.array(labels), np.array(is_train))
    # The same kind of probe on motion features instead: measured 0.99.
    assert accuracy > 0.85


def test_the_dataset_module_imports_nothing_of_the_trainer() -> None:
    # The demo recipe lives in launcher/demo_recipe.py: trainer.runner imports this module,
    # and this module (no import anywhere in it, lazy ones included) imports no trainer.
    source = Path(trainer.motion_videos.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] in ("trainer", "launcher")}


def test_the_computed_split_is_the_one_split_files_of_the_assignment_give(
    tmp_path: Path,
) -> None:
    # Runs trained before the splits were computed read them from HMDB51-style files
    # written from the same assignment: the same videos, labels and order come out.
    root = write_synthetic_dataset(tmp_path / "syn", SMALL, progress=False)
    (root / "splits").mkdir()
    for k in (1, 2, 3):
        for label, tags in enumerate(split_assignment(SMALL, k)):
            name = SMALL.classes[label]
            lines = [f"{video_path(root, SMALL, label, n).name} {t} \n" for n, t in enumerate(tags)]
            (root / "splits" / f"{name}_test_split{k}.txt").write_text("".join(lines))
        assert Synthetic(root).split(k) == load_split(root, k)
