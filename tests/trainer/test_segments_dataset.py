"""--dataset segments: labelled time segments of untrimmed videos from a CSV, every bad
line reported at once, the split by video, clips drawn inside their segment, and
background clips from the time no segment covers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from actiontag.csv_cells import csv_cell
from actiontag.settings import Settings
from model.checkpoint import load_checkpoint
from model.transform import VideoTransform
from tests.support.model import tiny_run
from tests.support.videos import write_counting_video, write_video
from trainer.cli import main
from trainer.data import ClipCache, VideoClips
from trainer.datasets import Stretch, open_dataset
from trainer.datasets.line_files import Problems
from trainer.datasets.segment_files import parse_time, read_annotations
from trainer.datasets.segments import BACKGROUND, Segments, TruthSegment, VideoTruth
from trainer.errors import DatasetError
from trainer.motion_videos import Part, write_sequence
from trainer.options import build_parser
from trainer.runner import holdout

HEADER = "path,start,end,label"
VIDEOS = ("a.avi", "b.avi", "c.avi", "d.avi", "e.avi", "f.avi")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six videos of 48 frames at 12 fps: 4 s each."""
    folder = tmp_path_factory.mktemp("segments")
    for seed, name in enumerate(VIDEOS):
        write_video(folder / name, seed=seed, frames=48, size=(64, 48))
    return folder


def _csv(path: Path, rows: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((("\ufeff" if bom else "") + newline.join(rows) + newline).encode())
    return path


def _two_labels(videos: tuple[str, ...] = VIDEOS) -> list[str]:
    """jump from 0.5 to 1.5 s and wave from 2 to 3.25 s of every video."""
    return [HEADER] + [row for v in videos for row in (f"{v},0.5,1.5,jump", f"{v},2,3.25,wave")]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("12.5", 12.5), ("0", 0.0), ("01:02.5", 62.5), ("00:01:02.250", 62.25), ("2:03:04", 7384.0)],
)
def test_times_are_seconds_or_clock_times(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["-1", "1e3", "inf", "12s", "1:5", "1:60", "01:60:00", ""])
def test_anything_else_is_not_a_time(text: str) -> None:
    assert parse_time(text) is None


def test_segments_are_stretches_of_their_frames_and_the_labels_are_the_classes(
    root: Path, tmp_path: Path
) -> None:
    rows = [HEADER, "a.avi,0.5,1.5,jump", "a.avi,00:00:02.000,3.25,wave", "b.avi,00:01.000,2,wave",
            "b.avi,2.5,4,jump"]  # fmt: skip
    split_file = _csv(tmp_path / "split.txt", ["a.avi train", "b.avi test"])
    dataset = Segments(root, _csv(tmp_path / "a.csv", rows), split_file=split_file, clip_frames=4)
    split = dataset.split(1)
    assert split.classes == ["jump", "wave"]
    # 12 fps: a segment's frames run from the first frame shown at its start to the
    # first shown at its end.
    assert split.train == [Stretch("a.avi", 0, (6, 18)), Stretch("a.avi", 1, (24, 39))]
    assert split.test == [Stretch("b.avi", 0, (30, 48)), Stretch("b.avi", 1, (12, 24))]
    assert dataset.truth() == [
        VideoTruth("b.avi", 4.0, (TruthSegment(1.0, 2.0, 1), TruthSegment(2.5, 4.0, 0)))
    ]


def test_a_bom_crlf_blank_lines_and_a_quoted_path_with_a_comma_are_accepted(
    root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.avi", "b.avi"):
        os.link(root / name, data / name)
    os.link(root / "c.avi", data / "c, take 2.avi")
    rows = ['"c, take 2.avi",0.5,1.5,jump', "", "a.avi,0.5,1.5,jump", "a.avi,2,3,wave",
            "b.avi, 0.5 , 1.5 ,jump", "b.avi,2,3,wave"]  # fmt: skip
    annotations = _csv(data / "a.csv", rows, newline="\r\n", bom=True)
    split = Segments(data, annotations, split_file=_csv(
        tmp_path / "split.txt", ["a.avi test", "b.avi train", "c, take 2.avi train"]
    )).split(1)  # fmt: skip
    assert split.classes == ["jump", "wave"]
    assert sorted({item.path for item in split.train}) == ["b.avi", "c, take 2.avi"]


def test_every_bad_line_is_reported_at_once_with_its_number(root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.avi", "b.avi"):
        os.link(root / name, data / name)
    (tmp_path / "secret.avi").write_bytes((root / "c.avi").read_bytes())
    os.symlink(tmp_path / "secret.avi", data / "link.avi")
    (data / "notes.txt").write_text("x")
    (data / "broken.avi").write_bytes(b"not a video")
    annotations = _csv(data / "a.csv", [
        HEADER,
        "a.avi,0.5,1.5,jump",           # 2: good
        "missing.avi,0,1,jump",         # 3: no such file
        "../secret.avi,0,1,jump",       # 4: climbs out
        "/etc/passwd.avi,0,1,jump",     # 5: absolute
        "link.avi,0,1,jump",            # 6: a link out
        "notes.txt,0,1,jump",           # 7: not a video
        "a.avi,3,2,jump",               # 8: reversed
        "a.avi,2,2,jump",               # 9: empty
        "a.avi,2 s,3,jump",             # 10: unknown time format
        "a.avi,1.0,2.5,wave",           # 11: overlaps line 2 with another label
        "b.avi,3,4.5,jump",             # 12: past the end (4 s)
        "b.avi,0,1,",                   # 13: empty label
        "b.avi,0,1,jump,extra",         # 14: five columns
        "b.avi,1,2,Background",         # 15: background without --background-clips
        "b.avi,2,3,wave",               # 16: good
        "broken.avi,0,1,jump",          # 17: does not decode
    ])  # fmt: skip
    with pytest.raises(DatasetError) as caught:
        Segments(data, annotations).split(1)
    message = str(caught.value)
    assert "14 bad lines" in message
    for number in [*range(3, 16), 17]:
        assert f"a.csv:{number}:" in message
    for good in (1, 2, 16):
        assert f"a.csv:{good}:" not in message
    for what in ("is not a file", "leaves", "is absolute", "leads out", "is not a video",
                 "ends before it starts", "ends where it starts", "'2 s' is not a time",
                 "overlaps line 2 ('jump', 0.500 to 1.500 s)", "past the end of b.avi (4.000 s)",
                 "the label is empty", "expected the 4 columns", "--background-clips",
                 "broken.avi cannot be read as a video"):  # fmt: skip
        assert what in message


def test_a_missing_annotations_file_says_so(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.csv cannot be read"):
        Segments(root, tmp_path / "nope.csv").split(1)


def test_overlapping_segments_of_one_label_are_merged(root: Path, tmp_path: Path) -> None:
    rows = [*_two_labels(("b.avi",)), "a.avi,0.5,1.5,jump", "a.avi,1,2,jump", "a.avi,2,3,wave"]
    split_file = _csv(tmp_path / "split.txt", ["a.avi train", "b.avi test"])
    dataset = Segments(root, _csv(tmp_path / "a.csv", rows), split_file=split_file)
    assert dataset.split(1).train == [Stretch("a.avi", 0, (6, 24)), Stretch("a.avi", 1, (24, 36))]


@pytest.mark.parametrize("seed", range(4))
def test_the_split_is_by_video_never_by_segment(root: Path, tmp_path: Path, seed: int) -> None:
    # a, b, c: mostly wave; d, e, f: jump only. One video of each main label is drawn.
    rows = _two_labels(VIDEOS[:3]) + [f"{v},0,3.5,jump" for v in VIDEOS[3:]]
    split = Segments(root, _csv(tmp_path / "a.csv", rows), test_fraction=0.4, seed=seed).split(1)
    train, test = {item.path for item in split.train}, {item.path for item in split.test}
    assert train and test and not train & test
    assert train | test == set(VIDEOS)
    assert len(split.train) + len(split.test) == 3 * 2 + 3  # every segment, once


def test_validation_holds_out_whole_videos() -> None:
    items = [Stretch(f"v{n}.avi", label, (label * 10, label * 10 + 5)) for n in range(8)
             for label in (0, 1)]  # fmt: skip
    train, val = holdout(items, 0.3, seed=0)
    assert val and not {item.path for item in train} & {item.path for item in val}
    assert sorted(train + val) == sorted(items)


def test_a_label_without_a_test_video_is_an_error_naming_it(root: Path, tmp_path: Path) -> None:
    rows = [*_two_labels(VIDEOS[:2]), "c.avi,0,1,kick"]
    with pytest.raises(DatasetError, match=r"Label .kick. has no segment in a (test|training)"):
        Segments(root, _csv(tmp_path / "a.csv", rows)).split(1)


def test_the_run_folder_gets_the_split_to_repeat_and_what_was_found(
    root: Path, tmp_path: Path
) -> None:
    annotations = _csv(tmp_path / "a.csv", _two_labels())
    drawn = Segments(root, annotations, test_fraction=0.5, seed=3)
    drawn.record(tmp_path / "run")
    again = Segments(root, annotations, split_file=tmp_path / "run" / "split.txt").split(1)
    assert (again.train, again.test) == (drawn.split(1).train, drawn.split(1).test)
    found = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert found["dataset"] == "segments" and found["classes"] == ["jump", "wave"]
    assert found["videos"]["jump"] == {"train": 3, "test": 3}
    assert found["segments"]["wave"] == {"train": 3, "test": 3}


def _frame_numbers(clips) -> np.ndarray:
    """Each clip's frames as numbers: write_counting_video's level / 5."""
    return np.rint(clips.numpy().mean(axis=(1, 3, 4)) * 255 / 5).astype(int)


@pytest.mark.parametrize("cached", [False, True])
def test_clips_are_drawn_inside_their_segment(tmp_path: Path, cached: bool) -> None:
    write_counting_video(tmp_path / "count.avi", frames=40)
    transform = VideoTransform(4, 1, 24, 16, mean=(0, 0, 0), std=(1, 1, 1))
    items = [Stretch("count.avi", 0, (10, 30)), Stretch("count.avi", 0, (20, 22))]
    cache = ClipCache(tmp_path / "cache", 24) if cached else None
    train = VideoClips(tmp_path, items, transform, train=True, cache=cache)
    starts = set()
    for epoch in range(12):
        clips, _, _ = train[epoch, 0]
        (numbers,) = _frame_numbers(clips)
        assert numbers[0] >= 10 and numbers[-1] < 30 and list(np.diff(numbers)) == [1, 1, 1]
        starts.add(numbers[0])
        short, _, _ = train[epoch, 1]
        assert _frame_numbers(short).tolist() == [[19, 20, 21, 22]]  # centred on 20-21
    assert len(starts) > 3  # drawn, not fixed
    test = VideoClips(tmp_path, items, transform, train=False, num_clips=3, cache=cache)
    assert _frame_numbers(test[0][0])[:, 0].tolist() == [12, 18, 23]  # uniform in 10-29


def test_background_clips_come_only_from_unlabelled_time(root: Path, tmp_path: Path) -> None:
    rows = [*_two_labels(), "a.avi,3.25,4,Background"]
    dataset = Segments(root, _csv(tmp_path / "a.csv", rows), background=0.5, clip_frames=4)
    split = dataset.split(1)
    assert split.classes == [BACKGROUND, "jump", "wave"]
    background = split.classes.index(BACKGROUND)
    for items in (split.train, split.test):
        labelled = [item for item in items if item.label != background]
        marked = Stretch("a.avi", background, (39, 48))  # labelled background
        sampled = [item for item in items if item.label == background and item != marked]
        assert len(sampled) == len(labelled)  # half of the part's clips
        for item in sampled:
            first, end = item.frames
            assert end - first >= 4
            covered = [(6, 18), (24, 39)] + ([(39, 48)] if item.path == "a.avi" else [])
            assert all(end <= a or first >= b for a, b in covered)


def test_the_options_reach_the_dataset_and_root_defaults_to_the_csvs_folder(
    tmp_path: Path,
) -> None:
    def parse(*argv: str):
        return build_parser().parse_args(["--dataset", "segments", *argv])

    csv = tmp_path / "labels" / "a.csv"
    dataset = open_dataset(
        parse("--annotations", str(csv), "--background-clips", "0.2"), Settings()
    )
    assert isinstance(dataset, Segments) and dataset.videos == tmp_path / "labels"
    assert dataset.background == 0.2 and dataset.clip_frames == 16
    given = parse("--annotations", str(csv), "--data-dir", str(tmp_path), "--clip-len", "4")
    assert open_dataset(given, Settings()).videos == tmp_path
    with pytest.raises(ValueError, match=r"needs --annotations FILE\.csv"):
        open_dataset(parse(), Settings())


TINY = tiny_run("segments")


def test_a_run_trains_on_the_segments_and_scores_its_test_videos_as_localisation(
    tmp_path: Path,
) -> None:
    rows = [HEADER]
    for n in range(3):
        truth = write_sequence(tmp_path / f"seq{n}.avi", [Part("pan_up", 2), Part("still", 2)],
                               fps=10, seed=n)  # fmt: skip
        rows += [
            f"seq{n}.avi,{start:.3f},{end:.3f},{label}"
            for start, end, label in zip(truth.starts_s, truth.ends_s, truth.labels, strict=True)
        ]
    annotations = _csv(tmp_path / "labels.csv", rows)
    out = tmp_path / "runs"
    assert main([*TINY, "--annotations", str(annotations), "--out", str(out)]) == 0
    assert load_checkpoint(out / "split1" / "model.pt").class_names == ["pan_up", "still"]
    assert json.loads((out / "split1" / "dataset.json").read_text())["dataset"] == "segments"
    assert (out / "split1" / "split.txt").is_file()
    temporal = json.loads((out / "split1" / "metrics.json").read_text())["temporal"]
    assert set(temporal["map"]) == {"0.3", "0.5", "0.7"} and temporal["videos"] == 1
    assert 0.0 <= temporal["frame_accuracy"] <= 1.0
    stored = load_checkpoint(out / "split1" / "model.pt").metrics["test"]["temporal"]
    assert stored["mean_map"] == temporal["mean_map"]


def test_cells_an_export_neutralised_for_spreadsheets_are_read_as_their_text(
    tmp_path: Path,
) -> None:
    labels = ("=goal", "-fall", "@hand-off", "'quoted", "plain")
    rows = [
        HEADER,
        *(
            f"{csv_cell('-v.avi')},{n}.000,{n}.500,{csv_cell(label)}"
            for n, label in enumerate(labels)
        ),
    ]
    problems = Problems()
    found = read_annotations(_csv(tmp_path / "labels.csv", rows), problems)
    assert not problems.listed()
    assert [(a.path, a.label) for a in found] == [("-v.avi", label) for label in labels]
