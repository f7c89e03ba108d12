"""``python -m storage export --annotations``, ``moments --reviewed`` and ``agreement``,
run as people run them, in this process, over people's corrections."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage.annotations import Correction, add_annotation
from storage.db import write_transaction
from storage.schema import AnnotationAction, Model

from .test_annotations import segment_ids, video_of
from .test_cli import run_cli
from .test_timelines import tag

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def correct(session: Session, video: int, action: str, **fields) -> None:
    session.commit()
    with write_transaction(session):
        add_annotation(
            session, video, Correction(AnnotationAction(action), **fields), author="local"
        )


@pytest.fixture
def corrected(session: Session, model: Model, tmp_path: Path) -> dict[str, int]:
    """Under tmp_path/inbox: a video whose walk segment people relabelled and whose bike
    segment they left unreviewed, plus a new segment; a video outside the inbox with a
    confirmed segment; one inside whose name is a link leading out, confirmed too."""
    inbox = tmp_path / "inbox"
    (inbox / "sub dir").mkdir(parents=True)
    (tmp_path / "elsewhere.mp4").write_bytes(b"")
    (inbox / "link.mp4").symlink_to(tmp_path / "elsewhere.mp4")
    jobs = {
        "ride": tag(session, model, "ride", path=str(inbox / "sub dir/ride.mp4")),
        "far": tag(session, model, "far", path="/elsewhere/far.mp4"),
        "link": tag(session, model, "link", path=str(inbox / "link.mp4")),
    }
    videos = {name: video_of(session, job) for name, job in jobs.items()}
    _, walk = segment_ids(session, jobs["ride"])
    correct(session, videos["ride"], "relabel", segment_id=walk, label="=cmd|calc")
    correct(session, videos["ride"], "new", start_s=5.25, end_s=7.0, label="fall")
    for name in ("far", "link"):
        bike, _ = segment_ids(session, jobs[name])
        correct(session, videos[name], "confirm", segment_id=bike)
    return videos


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@sqlite_only
def test_export_annotations_writes_the_reviewed_segments_relative_to_the_inbox(
    store_url: str, corrected: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "people.csv"
    result = run_cli(
        "export", "--annotations", str(out), "--root", str(tmp_path / "inbox"),
        url=store_url, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"path,start,end,label\r\n")
    assert rows_of(out) == [
        ["path", "start", "end", "label"],
        ["sub dir/ride.mp4", "5.250", "7.000", "fall"],
        ["sub dir/ride.mp4", "8.000", "11.000", "'=cmd|calc"],  # as a spreadsheet must show it
    ]
    assert f"left out video {corrected['far']} (/elsewhere/far.mp4)" in result.stderr
    assert f"left out video {corrected['link']}" in result.stderr  # its link leads out
    assert "wrote 2 reviewed segment(s) of 1 video(s)" in result.stderr


@sqlite_only
def test_export_annotations_with_the_unreviewed_ones_warns_of_overlaps(
    store_url: str, corrected: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    result = run_cli(
        "export", "--annotations", str(out), "--root", str(tmp_path / "inbox"),
        "--include-unreviewed", url=store_url, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert [row[1:] for row in rows_of(out)[1:]] == [
        ["0.000", "5.500", "ride_bike"],
        ["5.250", "7.000", "fall"],
        ["8.000", "11.000", "'=cmd|calc"],
    ]
    assert "00:00:05.250-00:00:07.000 'fall' overlaps 00:00:00.000-00:00:05.500" in result.stderr


@sqlite_only
def test_export_annotations_takes_none_of_the_job_filters(store_url: str, tmp_path: Path) -> None:
    mixed = run_cli(
        "export", "--annotations", "a.csv", "--label", "run", url=store_url, cwd=tmp_path
    )
    assert mixed.returncode == 2
    assert "takes --root and --include-unreviewed only, not --label" in mixed.stderr
    alone = run_cli("export", "--root", "inbox", url=store_url, cwd=tmp_path)
    assert alone.returncode == 2
    assert "--root and --include-unreviewed go with --annotations FILE" in alone.stderr


@sqlite_only
def test_moments_reviewed_shows_what_people_made_of_each_segment(
    store_url: str, corrected: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("moments", "--reviewed", "any", url=store_url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[-2:] == ["LABEL", "REVIEW"]
    assert sorted(tuple(line.split()[-2:]) for line in lines[2:-1]) == [
        ("ride_bike", "confirmed"),
        ("ride_bike", "confirmed"),
        ("walk", "relabelled"),
    ]
    corrected_only = run_cli(
        "moments", "--label", "walk", "--reviewed", "corrected", url=store_url, cwd=tmp_path
    )
    assert corrected_only.stdout.endswith("1 moment(s)\n")


@sqlite_only
def test_agreement_prints_per_label_how_often_people_confirmed_the_model(
    store_url: str, corrected: dict[str, int], model: Model, tmp_path: Path
) -> None:
    result = run_cli("agreement", url=store_url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"model {model.sha256[:12]} (/models/actiontag.pt)")
    table = {line.split()[0]: line.split()[1:] for line in lines[3:-1]}
    assert table == {
        "ride_bike": ["2", "2", "0", "0", "0", "1.000"],
        "walk": ["1", "0", "1", "0", "0", "0.000"],
        "(all)": ["3", "2", "-", "-", "-", "0.667"],
    }
    assert lines[-1].startswith("annotations since it was registered: 4 (confirm 2")


@sqlite_only
def test_the_trainer_reads_the_exported_annotations_as_people_left_them(
    store_url: str, corrected: dict[str, int], tmp_path: Path
) -> None:
    from trainer.datasets.line_files import Problems
    from trainer.datasets.segment_files import read_annotations

    out = tmp_path / "people.csv"
    run_cli("export", "--annotations", str(out), "--root", str(tmp_path / "inbox"),
            url=store_url, cwd=tmp_path)  # fmt: skip
    problems = Problems()
    found = read_annotations(out, problems)

    assert not problems.listed()
    assert [(a.path, a.start_s, a.end_s, a.label) for a in found] == [
        ("sub dir/ride.mp4", 5.25, 7.0, "fall"),
        ("sub dir/ride.mp4", 8.0, 11.0, "=cmd|calc"),
    ]
