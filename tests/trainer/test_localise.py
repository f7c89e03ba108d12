"""trainer.localise: a truth video tagged by the worker's own predictor, its segments
scored against the truth, the figures merged into metrics.json and the checkpoint.

The video is the first four parts of trainer.motion_videos.DEMO_TRUTH_PARTS (18 s, all
four of the demonstration model's motions); the model is the demonstration checkpoint,
copied so that storing the figures in it leaves the session's own alone.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from model.checkpoint import file_sha256, load_checkpoint
from trainer.localisation_metrics import detection_map, frame_agreement
from trainer.localise import SEGMENTS_CSV, evaluate_localisation, format_temporal
from trainer.motion_videos import DEMO_TRUTH_PARTS, write_sequence
from worker.predictor import Predictor

TRUTH_VIDEO = "videos/truth.avi"
BROKEN_VIDEO = "videos/broken.avi"


@pytest.fixture(scope="module")
def evaluated(demo_training, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("localise")
    root, run = base / "data", base / "run"
    (root / "videos").mkdir(parents=True)
    run.mkdir()
    checkpoint = shutil.copy(demo_training.checkpoint, run / "model.pt")
    sequence = write_sequence(root / TRUTH_VIDEO, DEMO_TRUTH_PARTS[:4], fps=25.0, seed=11)
    (root / BROKEN_VIDEO).write_bytes(b"not a video")
    names = load_checkpoint(checkpoint).class_names
    truth = [
        (start, end, names.index(label))
        for start, end, label in zip(
            sequence.starts_s, sequence.ends_s, sequence.labels, strict=True
        )
    ]
    # The clip evaluation's figures, already in the run folder (trainer.evaluate).
    (run / "metrics.json").write_text(json.dumps({"multi_clip": {"top1": 0.9}}))
    result = evaluate_localisation(
        checkpoint,
        [(TRUTH_VIDEO, truth), (BROKEN_VIDEO, [(0.0, 1.0, 0)])],
        root,
        run,
        device="cpu",
        progress=False,
        store_in_checkpoint=True,
    )
    return SimpleNamespace(
        result=result,
        metrics=json.loads((run / "metrics.json").read_text()),
        rows=list(csv.DictReader((run / SEGMENTS_CSV).open())),
        checkpoint=Path(checkpoint),
        source=demo_training.checkpoint,
        root=root,
        names=names,
        truth=truth,
        sequence=sequence,
    )


def test_the_figures_join_the_clip_figures_in_metrics_json(evaluated) -> None:
    temporal = evaluated.result["temporal"]
    assert evaluated.metrics["multi_clip"] == {"top1": 0.9}
    assert evaluated.metrics["temporal"] == temporal
    assert list(temporal["map"]) == ["0.3", "0.5", "0.7"]
    assert temporal["mean_map"] == pytest.approx(np.mean(list(temporal["map"].values())))
    assert set(temporal["per_class_ap"]) == set(evaluated.names)  # all four have truth
    assert temporal["videos"] == 1 and temporal["true_segments"] == 4


def test_the_demonstration_model_localises_the_truth_video(evaluated) -> None:
    temporal = evaluated.result["temporal"]
    # The worker's truth test's bar: nine tenths of the video labelled right.
    assert temporal["frame_accuracy"] >= 0.9, temporal
    assert temporal["map"]["0.5"] >= 0.75, temporal


def test_the_segments_scored_are_those_the_worker_finds(evaluated) -> None:
    predictor = Predictor(evaluated.source, device="cpu", engine="eager")
    segments = predictor.predict(evaluated.root / TRUTH_VIDEO).timeline.segments
    rows = [(r["path"], float(r["start_s"]), r["label"]) for r in evaluated.rows]
    assert rows == [(TRUTH_VIDEO, pytest.approx(s.start_s, abs=1e-3), s.label) for s in segments]


def test_the_figures_are_those_of_the_segments_written(evaluated) -> None:
    found = [
        (float(r["start_s"]), float(r["end_s"]), evaluated.names.index(r["label"]), float(r["confidence"]))
        for r in evaluated.rows
    ]  # fmt: skip
    scores = detection_map({TRUTH_VIDEO: evaluated.truth}, {TRUTH_VIDEO: found})
    assert list(evaluated.result["temporal"]["map"].values()) == pytest.approx(scores.map)
    frames = np.arange(evaluated.sequence.frames) / evaluated.sequence.fps
    right, total = frame_agreement(found, evaluated.truth, frames)
    assert evaluated.result["temporal"]["frames"] == total
    assert evaluated.result["temporal"]["frame_accuracy"] == pytest.approx(right / total, abs=0.01)


def test_a_video_that_cannot_be_decoded_is_skipped_and_listed(evaluated) -> None:
    assert evaluated.result["temporal"]["skipped"] == [BROKEN_VIDEO]
    assert "could not be decoded" in format_temporal(evaluated.result["temporal"])


def test_the_checkpoint_carries_the_figures_and_metrics_json_names_it(evaluated) -> None:
    stored = load_checkpoint(evaluated.checkpoint)
    temporal = stored.metrics["test"]["temporal"]
    assert temporal["map"] == evaluated.result["temporal"]["map"]
    assert temporal["frame_accuracy"] == evaluated.result["temporal"]["frame_accuracy"]
    assert evaluated.metrics["checkpoint"]["sha256"] == file_sha256(evaluated.checkpoint)
    assert file_sha256(evaluated.checkpoint) != file_sha256(evaluated.source)


def test_every_bad_video_is_named_before_any_is_tagged(demo_training, tmp_path: Path) -> None:
    videos = [
        ("../outside.avi", [(0.0, 1.0, 0)]),
        ("a.avi", [(2.0, 1.0, 0)]),
        ("b.avi", [(0.0, 2.0, 0), (1.0, 3.0, 1)]),
        ("c.avi", [(0.0, 1.0, 9)]),
    ]
    with pytest.raises(ValueError) as raised:
        evaluate_localisation(demo_training.checkpoint, videos, tmp_path, tmp_path / "run")
    message = str(raised.value)
    for expected in ("../outside.avi: leaves", "a.avi: a segment must end", "b.avi: true "
                     "segments overlap", "c.avi: label 9 is no class"):  # fmt: skip
        assert expected in message
    assert not (tmp_path / "run").exists()
