"""``python -m storage moments``, ``export --segments``, ``show``'s timeline and ``retag``,
run as people run them, on a real database (and a real Redis for retag): through
``run_cli``, the entry point in this process, retag in a real subprocess."""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage import ingest
from storage.cli import format_clock, main, timeline_strip
from storage.db import make_sessionmaker
from storage.schema import Job, JobState, Model
from timeline.values import Cut, Segment, Timeline, Window

from .conftest import digest, hand_over
from .test_cli import REDIS_URL, run_cli
from .test_timelines import segment, tag

sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
# A name with a space, an accent, a newline and a terminal escape: printed escaped.
ODD_NAME = "/inbox/sub dir/plié\n\x1b[31mred.mp4"


@pytest.fixture
def tagged(session: Session, model: Model) -> dict[str, int]:
    """Two videos with timelines (one under an awkward name), one tagged without one."""
    return {
        "ride": tag(session, model, "ride"),
        "odd": tag(session, model, "odd", path=ODD_NAME),
        "old": tag(session, model, "old", timeline=None),
    }


def test_format_clock_writes_hours_minutes_seconds_and_milliseconds() -> None:
    assert [format_clock(t) for t in (0.0, 5.5, 61.25, 3661.5, 59.9996, 396000.0)] == [
        "00:00:00.000",
        "00:00:05.500",
        "00:01:01.250",
        "01:01:01.500",
        "00:01:00.000",  # rounding carries into the minute
        "110:00:00.000",
    ]


# -- moments ---------------------------------------------------------------------------


def test_moments_prints_one_row_per_segment_with_its_span_duration_and_confidence(
    store_url: str, tagged: dict[str, int], model: Model, tmp_path: Path
) -> None:
    result = run_cli(
        "moments",
        "--label",
        "ride_bike",
        "--min-confidence",
        "0.7",
        "--min-duration",
        "2",
        url=store_url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PATH", "START-END", "SECONDS", "CONF", "PEAK", "MODEL", "JOB"]
    rows = lines[2:-1]
    assert rows[0].split() == [
        "/inbox/ride.mp4",
        "00:00:00.000-00:00:05.500",
        "5.500",
        "0.800",
        "0.900",
        model.sha256[:12],
        str(tagged["ride"]),
    ]
    # The awkward name stays on its one line, its newline and escape written visibly.
    assert rows[1].startswith("/inbox/sub dir/plié\\n\\x1b[31mred.mp4  00:00:00.000-00:00:05.500")
    assert "\x1b" not in result.stdout
    assert lines[-1] == "2 moment(s)"


def test_moments_of_two_models_sharing_a_label_name_each_rows_model(
    store_url: str, session: Session, model: Model, tmp_path: Path
) -> None:
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    first = tag(session, model, "ride")
    second = tag(session, other, "ride")

    result = run_cli("moments", "--label", "walk", url=store_url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:-1]]
    assert sorted((row[-2], row[-1]) for row in rows) == sorted(
        [(model.sha256[:12], str(first)), (other.sha256[:12], str(second))]
    )


@sqlite_only
def test_moments_filters_by_confidence_and_duration(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    walk = ["moments", "--label", "walk"]
    assert run_cli(*walk, url=store_url, cwd=tmp_path).stdout.endswith("2 moment(s)\n")
    sure = run_cli(*walk, "--min-confidence", "0.63", url=store_url, cwd=tmp_path)
    assert sure.stdout.endswith("0 moment(s)\n")
    long = run_cli(*walk, "--min-duration", "3001ms", url=store_url, cwd=tmp_path)
    assert long.stdout.endswith("0 moment(s)\n")
    enough = run_cli(*walk, "--min-duration", "3s", url=store_url, cwd=tmp_path)
    assert enough.stdout.endswith("2 moment(s)\n")


@sqlite_only
def test_moments_of_an_unknown_label_says_labels_are_exact(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("moments", "--label", "Ride_Bike", url=store_url, cwd=tmp_path)
    assert result.returncode == 0
    assert "no segment has the label 'Ride_Bike' (labels are exact)" in result.stderr


def test_moments_needs_a_label(tmp_path: Path) -> None:
    result = run_cli("moments", url=None, cwd=tmp_path)
    assert result.returncode == 2 and "--label" in result.stderr


# -- export --segments -------------------------------------------------------------------


@pytest.fixture
def hostile(session: Session, model: Model) -> int:
    """A job whose segment label (it comes from the checkpoint) is a formula."""
    formula = '=HYPERLINK("http://evil.example","x")'
    timeline = Timeline(
        (Window(0.0, 1.0, formula, 0.9),),
        (segment(0.0, 2.0, formula, 0.9, top_k=((formula, 0.9), ("-1+1", 0.05))),),
        (),
    )
    return tag(session, model, "hostile", timeline)


@sqlite_only
def test_export_segments_csv_has_a_line_per_segment_crlf_and_neutralised_formulas(
    store_url: str, tagged: dict[str, int], hostile: int, tmp_path: Path
) -> None:
    target = tmp_path / "segments.csv"
    result = run_cli("export", "--segments", "-o", str(target), url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote 5 segment(s)" in result.stderr
    raw = target.read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 1 + 5 + 1  # header, 5 segments, CRLF at the end
    records = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    ride = [r for r in records if int(r["job_id"]) == tagged["ride"]]
    assert [(r["label"], r["start_s"], r["end_s"], r["duration_s"]) for r in ride] == [
        ("ride_bike", "0.0", "5.5", "5.5"),
        ("walk", "8.0", "11.0", "3.0"),
    ]
    assert json.loads(ride[0]["top_k"]) == [
        {"label": "ride_bike", "confidence": 0.8},
        {"label": "walk", "confidence": 0.05},
    ]
    (bad,) = [r for r in records if int(r["job_id"]) == hostile]
    assert bad["label"] == '\'=HYPERLINK("http://evil.example","x")'
    assert b'"\'=HYPERLINK(""http://evil.example"",""x"")"' in raw  # quoted too (OWASP)
    odd = [r for r in records if int(r["job_id"]) == tagged["odd"]]
    assert odd[0]["path"] == ODD_NAME  # a CSV cell holds any name; nothing escaped


def test_export_segments_json_takes_the_moment_filters(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli(
        "export",
        "--segments",
        "--format",
        "json",
        "--label",
        "walk",
        "--min-duration",
        "2.5",
        "--model",
        digest("checkpoint")[:8],
        url=store_url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(r["path"], r["label"], r["duration_s"], r["top_k"][0]) for r in records] == [
        ("/inbox/ride.mp4", "walk", 3.0, {"label": "walk", "confidence": 0.62}),
        (ODD_NAME, "walk", 3.0, {"label": "walk", "confidence": 0.62}),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--min-duration", "2"], "--min-duration goes with --segments"),
        (["export", "--segments", "--state", "done"], "--state does not go with --segments"),
    ],
)
def test_export_flags_that_do_not_go_together_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    result = run_cli(*argv, url=None, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr


@sqlite_only
def test_the_export_of_jobs_is_unchanged_by_timelines(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("export", "--format", "json", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 3
    assert not any(key in record for record in records for key in ("segments", "windows"))


# -- show --------------------------------------------------------------------------------


def test_the_strip_draws_segments_windows_and_cuts_to_scale() -> None:
    timeline = Timeline(
        windows=(
            Window(0.0, 2.0, "run", 0.9),
            Window(2.0, 4.0, "run", 0.4),
            Window(4.0, 6.0, "walk", 0.8),
        ),
        segments=(Segment(0.0, 4.0, "run", 0.65, 0.9, (("run", 0.65),)),),
        cuts=(4.0,),
    )
    assert timeline_strip(timeline, duration=8.0, width=8) == [
        "0 ------ 00:00:08.000",
        "AAAA....  segments",
        "AAaaBB    windows",
        "    |     shot cuts",
        "A run  B walk; . no segment, lower case: a window under 50%",
    ]


def test_show_prints_each_jobs_timeline_strip_segments_and_cuts(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("show", "/inbox/ride.mp4", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "  timeline: 6 window(s), 2 segment(s), 1 shot cut(s)\n" in out
    assert "    0 " + "-" * 58 + " 00:00:12.000\n" in out
    strip = [line.strip() for line in out.splitlines() if line.endswith("segments")]
    assert strip == ["A" * 27 + "." * 13 + "B" * 15 + "." * 5 + "  segments"]
    assert (
        "     1. 00:00:00.000-00:00:05.500    5.500 s  ride_bike  0.800  0.900  (walk 0.05)" in out
    )
    assert (
        "     2. 00:00:08.000-00:00:11.000    3.000 s  walk       0.620  0.720  (run 0.05)" in out
    )
    assert "  shot cuts: 00:00:05.500\n" in out


@sqlite_only
def test_show_prints_a_gradual_transitions_span_in_the_strip_and_the_cuts(
    store_url: str, session: Session, model: Model, tmp_path: Path
) -> None:
    windows = tuple(Window(float(t), t + 2.0, "run", 0.9) for t in range(0, 12, 2))
    timeline = Timeline(windows, (segment(0.0, 12.0, "run", 0.9),), (Cut.at(1.5), Cut(3.0, 4.5)))
    tag(session, model, "dissolve", timeline)
    result = run_cli("show", "/inbox/dissolve.mp4", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  shot cuts: 00:00:01.500 00:00:03.000-00:00:04.500\n" in result.stdout
    # 60 cells over 12 s: the hard cut in cell 7, the transition over cells 15-22.
    cells = " " * 7 + "|" + " " * 7 + "=" * 8
    assert f"    {cells:<60}  shot cuts\n" in result.stdout


@sqlite_only
def test_show_of_a_job_without_a_timeline_prints_none(
    store_url: str, tagged: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("show", "/inbox/old.mp4", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "top-2 actions" in result.stdout and "timeline" not in result.stdout


@sqlite_only
def test_show_escapes_a_hostile_label_in_the_strip_and_the_segments(
    store_url: str, session: Session, model: Model, tmp_path: Path
) -> None:
    label = "run\x1b]0;pwned\x07"
    tag(session, model, "x", Timeline((), (segment(0.0, 2.0, label, 0.9),), ()))
    result = run_cli("show", "/inbox/x.mp4", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "A run\\x1b]0;pwned\\x07;" in result.stdout


# -- retag -------------------------------------------------------------------------------


def new_model(session: Session) -> Model:
    return ingest.ensure_model(session, digest("new checkpoint"), "/models/new.pt")


def jobs_of(engine: Engine, model_sha256: str) -> list[tuple[int, str, JobState]]:
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(Job.video_id, Job.path, Job.state)
            .join(Model)
            .where(Model.sha256 == model_sha256)
            .order_by(Job.video_id)
        ).all()
    return [tuple(row) for row in rows]


def test_retag_queues_a_job_of_the_current_model_per_video_and_sends_it(
    store_url: str, engine: Engine, session: Session, tagged: dict[str, int], tmp_path: Path
) -> None:
    newer = new_model(session)
    queue = f"actiontag-test-{uuid.uuid4().hex[:12]}"
    broker = {"ACTIONTAG_BROKER_URL": REDIS_URL, "ACTIONTAG_QUEUE": queue}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        result = run_cli("retag", url=store_url, cwd=tmp_path, broker=broker)
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            f"retag with model {newer.sha256[:12]} (/models/new.pt): 3 video(s) without a job "
            "of it, 3 job(s) created, 3 sent to the workers\n"
        )
        messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
        again = run_cli("retag", url=store_url, cwd=tmp_path, broker=broker)
        assert client.llen(queue) == 3  # nothing sent the second time
    finally:
        client.delete(queue)
        client.close()
    created = jobs_of(engine, newer.sha256)
    assert [(path, state) for _, path, state in created] == [
        ("/inbox/ride.mp4", JobState.QUEUED),
        (ODD_NAME, JobState.QUEUED),
        ("/inbox/old.mp4", JobState.QUEUED),
    ]
    with make_sessionmaker(engine)() as check:
        new_ids = check.scalars(select(Job.id).where(Job.model_id == newer.id)).all()
    assert {m["headers"]["task"] for m in messages} == {"actiontag.tag_video"}
    assert sorted(json.loads(base64.b64decode(m["body"]))[0][0] for m in messages) == sorted(
        new_ids
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("nothing to retag: every chosen video has a job of model")


@sqlite_only
def test_retag_by_sha_and_label_leaves_the_other_videos_alone(
    store_url: str,
    engine: Engine,
    session: Session,
    model: Model,
    tagged: dict[str, int],
    tmp_path: Path,
) -> None:
    newer = new_model(session)
    ingest.ensure_model(session, digest("newest"), "/models/newest.pt")  # current, not chosen
    # "wave" is a segment of this video only, and in no job's top-k.
    tag(session, model, "waving", Timeline((), (segment(0.0, 3.0, "wave", 0.9),), ()))
    chosen = ["retag", "--model", newer.sha256[:10]]

    result = run_cli(*chosen, "--label", "nope", "--label", "wave", url=store_url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "1 video(s) without a job of it, 1 job(s) created" in result.stdout
    assert [path for _, path, _ in jobs_of(engine, newer.sha256)] == ["/inbox/waving.mp4"]
    again = run_cli(*chosen, "--label", "wave", url=store_url, cwd=tmp_path)
    assert again.stdout.startswith("nothing to retag")
    rest = run_cli(*chosen, "--label", "walk", url=store_url, cwd=tmp_path)  # in every top-k
    assert "3 video(s) without a job of it, 3 job(s) created" in rest.stdout
    assert jobs_of(engine, digest("newest")) == []


@sqlite_only
def test_retag_with_the_broker_down_leaves_the_jobs_queued_for_the_reconciler(
    store_url: str, engine: Engine, session: Session, tagged: dict[str, int], tmp_path: Path
) -> None:
    newer = new_model(session)
    result = run_cli("retag", url=store_url, cwd=tmp_path)  # run_cli's broker is a dead port
    assert result.returncode == 0, result.stderr
    assert "3 job(s) created, 0 sent to the workers" in result.stdout
    assert "3 job(s) stay queued in the database" in result.stderr
    assert [state for _, _, state in jobs_of(engine, newer.sha256)] == [JobState.QUEUED] * 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retag", "--model", "beef"], "no registered model's checkpoint sha256 starts with"),
        (["retag", "--model", "latest"], "neither 'current' nor a sha256 prefix"),
    ],
)
def test_retag_of_an_unknown_model_is_a_readable_error(
    store_url: str, tagged: dict[str, int], tmp_path: Path, argv: list[str], message: str
) -> None:
    result = run_cli(*argv, url=store_url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


class Terminal(io.StringIO):
    """Standard error as a terminal: tqdm draws its bar only there."""

    def isatty(self) -> bool:
        return True


@sqlite_only
def test_retag_shows_its_progress_on_a_terminal(
    store_url: str,
    session: Session,
    tagged: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new_model(session)
    hand_over()  # main() runs in this process but reads in a session of its own
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--database-url", store_url, "retag"]) == 0  # no broker given: left queued
    drawn = terminal.getvalue()
    assert "retag: 100%" in drawn and "3/3" in drawn
    assert "3 job(s) stay queued in the database" in drawn
    assert "3 job(s) created, 0 sent to the workers" in capsys.readouterr().out
