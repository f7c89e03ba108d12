"""What the demo says of each sample: expected against got, from the jobs as the
services record them (storage.ingest, storage.transitions and storage.results on a real
SQLite database, read back with storage.queries as the demo reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.outcomes import format_outcomes, judge
from launcher.samples import Sample
from storage.db import make_sessionmaker, open_database
from storage.ingest import record_path, register_model
from storage.queries.jobs import results
from storage.results import JobResult, complete_job
from storage.schema import JobState
from storage.transitions import claim_job, fail_job

INBOX = Path("/demo/inbox")
META = {"duration": 1.0, "fps": 25.0, "frames": 24, "width": 64, "height": 48}
SAMPLES = [
    Sample("motion-pan_up.avi", Path("a"), JobState.DONE, "pan up", motion="pan_up"),
    Sample("motion-still.avi", Path("b"), JobState.DONE, "still", motion="still"),
    Sample("box.mp4", Path("c"), JobState.DONE, "real video"),
    Sample("result.webm", Path("d"), JobState.FAILED, "not a video"),
]


def _rows(database_url: str, tagged: dict[str, str], failed: dict[str, str]) -> dict:
    """Jobs for the given files: ``tagged`` name -> top label, ``failed`` name -> error."""
    engine = open_database(database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            model = register_model(
                session, "ab" * 32, "/m.pt", split=1, class_names=None, metrics=None
            )
            for n, name in enumerate([*tagged, *failed]):
                job = record_path(session, str(INBOX / name), f"{n:064x}", 10, model.id).job
                claim_job(session, job.id, "w@host#0", max_attempts=3)
                if name in tagged:
                    complete_job(
                        session,
                        job.id,
                        JobResult(
                            predictions=[(tagged[name], 0.9), ("other", 0.1)],
                            expert_usage=[(1.0, 1)],
                            video_meta=META,
                            decode_ms=1.0,
                            inference_ms=1.0,
                        ),
                    )
                else:
                    fail_job(session, job.id, failed[name])
        with make_sessionmaker(engine)() as session:  # as the demo reads: a new session
            return {row.path: row for row in results(session)}
    finally:
        engine.dispose()


@pytest.fixture
def as_expected(sqlite_url: str) -> dict:
    tagged = {"motion-pan_up.avi": "pan_up", "motion-still.avi": "still", "box.mp4": "still"}
    return _rows(sqlite_url, tagged, {"result.webm": "cannot read it: the file is empty"})


def test_every_sample_as_expected_has_no_problem(as_expected: dict) -> None:
    outcomes = judge(SAMPLES, as_expected, INBOX, check_motions=True)
    assert [o.problem for o in outcomes] == [None] * len(SAMPLES)


def test_the_table_shows_expected_and_got_for_each_file(as_expected: dict) -> None:
    lines = format_outcomes(judge(SAMPLES, as_expected, INBOX, check_motions=True))
    assert lines[0].split() == ["FILE", "EXPECTED", "GOT"]
    assert lines[1].split() == [
        "motion-pan_up.avi",
        "done:",
        "pan_up",
        "done:",
        "pan_up",
        "(0.900)",
        "ok",
    ]
    assert lines[3].split() == ["box.mp4", "done", "done:", "still", "(0.900)", "ok"]
    assert lines[4].split() == ["result.webm", "failed", "failed", "ok"]


def test_a_motion_clip_tagged_with_another_motion_is_a_problem(sqlite_url: str) -> None:
    rows = _rows(
        sqlite_url,
        {"motion-pan_up.avi": "pan_down", "motion-still.avi": "still", "box.mp4": "still"},
        {"result.webm": "empty"},
    )
    outcomes = judge(SAMPLES, rows, INBOX, check_motions=True)
    assert outcomes[0].problem == "tagged pan_down, expected pan_up"
    assert "NOT AS EXPECTED" in format_outcomes(outcomes)[1]
    assert [o.ok for o in outcomes[1:]] == [True, True, True]


def test_another_model_is_not_held_to_the_motions(sqlite_url: str) -> None:
    # A configured checkpoint (e.g. HMDB51's) was never trained on these motions.
    rows = _rows(
        sqlite_url,
        {"motion-pan_up.avi": "ride_bike", "motion-still.avi": "walk", "box.mp4": "walk"},
        {"result.webm": "empty"},
    )
    outcomes = judge(SAMPLES, rows, INBOX, check_motions=False)
    assert all(o.ok for o in outcomes)
    assert outcomes[0].expected == "done"


def test_a_file_in_the_wrong_state_is_a_problem_with_the_reason(sqlite_url: str) -> None:
    rows = _rows(
        sqlite_url,
        {"motion-pan_up.avi": "pan_up", "motion-still.avi": "still"},
        {"box.mp4": "cannot read it: broken", "result.webm": "empty"},
    )
    outcomes = judge(SAMPLES, rows, INBOX, check_motions=True)
    assert outcomes[2].problem == "failed (cannot read it: broken), expected done"


def test_a_file_without_a_job_is_a_problem(sqlite_url: str) -> None:
    rows = _rows(sqlite_url, {"motion-pan_up.avi": "pan_up"}, {})
    outcomes = judge(SAMPLES, rows, INBOX, check_motions=True)
    assert outcomes[1].problem == "no job, expected done: still"
