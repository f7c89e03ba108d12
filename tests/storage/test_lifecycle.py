"""Job states: claim, complete, fail, release and the requeue paths, on both backends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, insert, select, update
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import make_sessionmaker, write_transaction
from storage.results import JobResult, complete_job
from storage.schema import ExpertUsage, Job, JobState, Model, Prediction, Video, utcnow
from storage.transitions import ClaimStatus

from .conftest import digest

PREDICTIONS = [("run", 0.7), ("walk", 0.2), ("jump", 0.1)]
EXPERTS = [(0.5, 4), (0.3, 2), (0.2, 0)]
META = {"duration": 3.2, "fps": 25.0, "frames": 80, "width": 320, "height": 240}


@pytest.fixture
def job_id(session: Session, model: Model) -> int:
    with write_transaction(session):
        job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
    return job.id


def _job(session: Session, job_id: int) -> Job:
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    session.commit()
    return job


def _complete(
    session: Session, job_id: int, predictions=PREDICTIONS, worker: str | None = None
) -> bool:
    return complete_job(
        session,
        job_id,
        JobResult(
            predictions=predictions,
            expert_usage=EXPERTS,
            video_meta=META,
            decode_ms=12.0,
            inference_ms=340.0,
        ),
        worker=worker,
    )


def _taken_over(session: Session, job_id: int) -> Job:
    """The job claimed by "first", requeued as stale while it still runs, then claimed by
    "second" (``requeue --stale`` of a job that was not dead); as "second" holds it."""
    transitions.claim_job(session, job_id, "first", max_attempts=3)
    _age(session, job_id, started_at=timedelta(hours=3))
    assert transitions.requeue_stale(session, timedelta(hours=1)) == [job_id]
    assert transitions.claim_job(session, job_id, "second", max_attempts=3).claimed
    return _job(session, job_id)


def _rows(session: Session, job_id: int) -> tuple[list[tuple], list[tuple]]:
    predictions = session.execute(
        select(Prediction.rank, Prediction.label, Prediction.confidence)
        .where(Prediction.job_id == job_id)
        .order_by(Prediction.rank)
    ).all()
    experts = session.execute(
        select(ExpertUsage.expert, ExpertUsage.mean_gate_weight, ExpertUsage.times_chosen)
        .where(ExpertUsage.job_id == job_id)
        .order_by(ExpertUsage.expert)
    ).all()
    session.commit()
    return [tuple(r) for r in predictions], [tuple(r) for r in experts]


def _age(session: Session, job_id: int, **times: timedelta) -> None:
    """Move a job's timestamps into the past, as if time had gone by."""
    session.execute(
        update(Job).where(Job.id == job_id).values({k: utcnow() - v for k, v in times.items()})
    )
    session.commit()


# -- claim ---------------------------------------------------------------------------


def test_claim_moves_a_queued_job_to_running(session: Session, job_id: int) -> None:
    result = transitions.claim_job(session, job_id, "worker-a", max_attempts=3)
    assert result.claimed and result.status is ClaimStatus.CLAIMED
    job = _job(session, job_id)
    assert (job.state, job.attempts, job.worker) == (JobState.RUNNING, 1, "worker-a")
    assert job.started_at is not None


def test_of_two_claimers_exactly_one_wins(engine: Engine, job_id: int) -> None:
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(4)

    def claim(worker: str) -> ClaimStatus:
        with factory() as session:
            barrier.wait()
            with write_transaction(session):  # the worker's unit of work
                return transitions.claim_job(session, job_id, worker, max_attempts=3).status

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(claim, ["w1", "w2", "w3", "w4"]))
    assert statuses.count(ClaimStatus.CLAIMED) == 1
    assert statuses.count(ClaimStatus.RUNNING_ELSEWHERE) == 3
    with factory() as session:
        assert _job(session, job_id).attempts == 1


def _queue(session: Session, model: Model, names: list[str]) -> list[int]:
    return [
        ingest.record_path(session, f"/inbox/{name}.mp4", digest(name), 100, model).job.id
        for name in names
    ]


def test_claim_queued_takes_the_oldest_queued_jobs_of_the_model_in_one_statement(
    engine: Engine, session: Session, model: Model
) -> None:
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    mine = _queue(session, model, ["a", "b", "c", "d", "e"])
    theirs = _queue(session, other, ["x"])[0]
    transitions.claim_job(session, mine[0], "elsewhere", max_attempts=3)  # running: not queued
    session.execute(update(Job).where(Job.id == mine[1]).values(attempts=3))  # at the cap
    session.commit()
    statements: list[str] = []

    def note(conn, cursor, statement: str, *_args) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        claimed = transitions.claim_queued(session, model.sha256, "w#0", max_attempts=3, limit=2)
    finally:
        event.remove(engine, "before_cursor_execute", note)

    assert claimed == mine[2:4]
    (claim,) = [s for s in statements if not s.startswith("BEGIN")]  # one statement
    assert "UPDATE jobs SET" in claim and "LIMIT" in claim
    for job_id in claimed:
        job = _job(session, job_id)
        assert (job.state, job.attempts, job.worker) == (JobState.RUNNING, 1, "w#0")
        assert job.started_at is not None
    assert _job(session, mine[4]).state is JobState.QUEUED
    assert _job(session, theirs).state is JobState.QUEUED
    assert _job(session, mine[1]).state is JobState.QUEUED  # its own message fails it


def test_claim_queued_of_nothing_claims_nothing(session: Session, model: Model) -> None:
    _queue(session, model, ["a"])
    assert transitions.claim_queued(session, model.sha256, "w#0", max_attempts=3, limit=0) == []
    assert (
        transitions.claim_queued(session, digest("unknown"), "w#0", max_attempts=3, limit=5) == []
    )


def test_concurrent_claim_queued_never_gives_one_job_twice(
    engine: Engine, session: Session, model: Model
) -> None:
    queued = _queue(session, model, [f"v{i}" for i in range(10)])
    session.commit()
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(4)

    def claim(worker: str) -> list[int]:
        with factory() as own:
            barrier.wait()
            with write_transaction(own):
                return transitions.claim_queued(own, model.sha256, worker, max_attempts=3, limit=3)

    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(claim, ["w1", "w2", "w3", "w4"]))
    taken = [job_id for claimed in claims for job_id in claimed]
    assert len(taken) == len(set(taken)) == 10  # 4 x 3 asked, 10 there: all, each once
    assert set(taken) == set(queued)
    for worker, claimed in zip(["w1", "w2", "w3", "w4"], claims, strict=True):
        assert all(_job(session, job_id).worker == worker for job_id in claimed)


def test_claiming_a_done_job_does_nothing(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    _complete(session, job_id)
    result = transitions.claim_job(session, job_id, "w2", max_attempts=3)
    assert result.status is ClaimStatus.ALREADY_DONE and not result.claimed
    job = _job(session, job_id)
    assert (job.state, job.attempts, job.worker) == (JobState.DONE, 1, "w1")


def test_claiming_a_job_running_elsewhere_says_where(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    result = transitions.claim_job(session, job_id, "w2", max_attempts=3)
    assert result.status is ClaimStatus.RUNNING_ELSEWHERE
    assert "running on w1" in result.reason


def test_a_worker_reclaims_its_own_orphaned_running_job(session: Session, job_id: int) -> None:
    # A killed worker's message comes back to its successor under the same name.
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    result = transitions.claim_job(session, job_id, "w1", max_attempts=3)
    assert result.claimed
    assert _job(session, job_id).attempts == 2


def test_claiming_a_missing_job_reports_missing(session: Session) -> None:
    result = transitions.claim_job(session, 4242, "w1", max_attempts=3)
    assert result.status is ClaimStatus.MISSING and result.job is None


def test_claiming_a_failed_job_leaves_it_failed(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    transitions.fail_job(session, job_id, "cannot decode")
    result = transitions.claim_job(session, job_id, "w2", max_attempts=3)
    assert result.status is ClaimStatus.FAILED and "cannot decode" in result.reason
    assert _job(session, job_id).state is JobState.FAILED


def test_a_video_that_keeps_killing_workers_ends_failed_at_the_cap(
    session: Session, job_id: int
) -> None:
    for _ in range(2):
        assert transitions.claim_job(session, job_id, "w1", max_attempts=2).claimed
        transitions.requeue_orphaned(session, "w1")  # the worker died and came back
    result = transitions.claim_job(session, job_id, "w1", max_attempts=2)
    assert result.status is ClaimStatus.EXHAUSTED and not result.claimed
    job = _job(session, job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.startswith("worker died 2 times on this video")
    assert job.attempts == 2


def test_claim_needs_at_least_one_attempt(session: Session, job_id: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        transitions.claim_job(session, job_id, "w1", max_attempts=0)


def test_release_gives_the_job_back_without_spending_an_attempt(
    session: Session, job_id: int
) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    assert transitions.release_job(session, job_id, "w1")
    job = _job(session, job_id)
    assert (job.state, job.attempts, job.worker, job.started_at) == (JobState.QUEUED, 0, None, None)


def test_release_leaves_another_workers_job_alone(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    assert not transitions.release_job(session, job_id, "w2")
    assert _job(session, job_id).state is JobState.RUNNING


# -- complete ------------------------------------------------------------------------


def test_complete_writes_results_and_marks_done(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    assert _complete(session, job_id)
    job = _job(session, job_id)
    assert (job.state, job.decode_ms, job.inference_ms, job.error) == (
        JobState.DONE,
        12.0,
        340.0,
        None,
    )
    assert job.finished_at is not None and job.finished_at >= job.started_at
    predictions, experts = _rows(session, job_id)
    assert predictions == [(1, "run", 0.7), (2, "walk", 0.2), (3, "jump", 0.1)]
    assert experts == [(0, 0.5, 4), (1, 0.3, 2), (2, 0.2, 0)]
    video = session.get(Video, job.video_id)
    assert video is not None
    assert (video.duration, video.fps, video.frames, video.width, video.height) == (
        3.2,
        25.0,
        80,
        320,
        240,
    )


def test_completing_a_done_job_again_changes_nothing(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    _complete(session, job_id)
    finished = _job(session, job_id).finished_at
    assert not _complete(session, job_id, predictions=[("jump", 0.9)])
    predictions, experts = _rows(session, job_id)
    assert [label for _, label, _ in predictions] == ["run", "walk", "jump"]
    assert len(experts) == 3
    assert _job(session, job_id).finished_at == finished


def test_a_retry_replaces_rows_an_interrupted_attempt_left(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    session.execute(
        insert(Prediction),
        [{"job_id": job_id, "rank": 1, "label": "stale", "confidence": 0.9}],
    )
    session.execute(
        insert(ExpertUsage),
        [{"job_id": job_id, "expert": 0, "mean_gate_weight": 0.9, "times_chosen": 9}],
    )
    session.commit()
    assert _complete(session, job_id)
    predictions, experts = _rows(session, job_id)
    assert predictions == [(1, "run", 0.7), (2, "walk", 0.2), (3, "jump", 0.1)]
    assert experts == [(0, 0.5, 4), (1, 0.3, 2), (2, 0.2, 0)]


def test_concurrent_completions_write_the_results_once(engine: Engine, job_id: int) -> None:
    factory = make_sessionmaker(engine)
    with factory() as session, write_transaction(session):
        transitions.claim_job(session, job_id, "w1", max_attempts=3)
    barrier = threading.Barrier(3)

    def complete(_: int) -> bool:
        with factory() as session:
            barrier.wait()
            with write_transaction(session):
                return _complete(session, job_id)

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(complete, range(3)))
    assert sorted(outcomes) == [False, False, True]
    with factory() as session:
        predictions, experts = _rows(session, job_id)
    assert (len(predictions), len(experts)) == (3, 3)


def test_results_of_a_job_requeued_meanwhile_are_still_recorded(
    session: Session, job_id: int
) -> None:
    transitions.claim_job(session, job_id, "slow-worker", max_attempts=3)
    transitions.requeue_stale(session, timedelta(0))
    assert _complete(session, job_id)
    assert _job(session, job_id).state is JobState.DONE


def test_a_result_from_a_worker_that_lost_its_claim_is_not_written(
    session: Session, job_id: int
) -> None:
    held = _taken_over(session, job_id)

    assert not _complete(session, job_id, worker="first")

    job = _job(session, job_id)
    assert (job.state, job.worker, job.started_at) == (JobState.RUNNING, "second", held.started_at)
    assert _rows(session, job_id) == ([], [])


def test_the_result_of_the_worker_holding_the_claim_is_written_under_its_name(
    session: Session, job_id: int
) -> None:
    held = _taken_over(session, job_id)

    assert _complete(session, job_id, worker="second")

    job = _job(session, job_id)
    assert (job.state, job.worker, job.started_at) == (JobState.DONE, "second", held.started_at)
    assert _rows(session, job_id)[0] == [(1, "run", 0.7), (2, "walk", 0.2), (3, "jump", 0.1)]


def test_a_worker_that_lost_its_claim_does_not_fail_the_job(session: Session, job_id: int) -> None:
    _taken_over(session, job_id)

    assert not transitions.fail_job(session, job_id, "cannot decode", worker="first")

    job = _job(session, job_id)
    assert (job.state, job.worker, job.error) == (JobState.RUNNING, "second", None)


@pytest.mark.parametrize(
    ("predictions", "experts", "meta", "message"),
    [
        ([("run", 0.2), ("walk", 0.7)], EXPERTS, META, "most confident first"),
        ([("run", 1.5)], EXPERTS, META, r"\[0, 1\]"),
        ([("run", float("nan"))], EXPERTS, META, r"\[0, 1\]"),
        ([("", 0.5)], EXPERTS, META, "label cannot be empty"),
        (PREDICTIONS, [(1.2, 1)], META, "mean gate weight"),
        (PREDICTIONS, [(0.5, -1)], META, "chosen -1 times"),
        (PREDICTIONS, EXPERTS, {"colour": "red"}, "unknown video_meta fields"),
    ],
    ids=["unsorted", "over-one", "nan", "empty-label", "weight", "times", "meta"],
)
def test_complete_refuses_bad_results_and_changes_nothing(
    session: Session, job_id: int, predictions, experts, meta, message: str
) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    with pytest.raises(ValueError, match=message):
        complete_job(
            session,
            job_id,
            JobResult(
                predictions=predictions,
                expert_usage=experts,
                video_meta=meta,
                decode_ms=1.0,
                inference_ms=1.0,
            ),
        )
    assert _job(session, job_id).state is JobState.RUNNING
    assert _rows(session, job_id) == ([], [])


def test_completing_a_missing_job_raises_job_not_found(session: Session) -> None:
    with pytest.raises(transitions.JobNotFound):
        _complete(session, 4242)


# -- fail ------------------------------------------------------------------------------


def test_fail_marks_a_running_job_failed_with_its_reason(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    assert transitions.fail_job(session, job_id, "cannot decode: moov atom not found")
    job = _job(session, job_id)
    assert (job.state, job.error) == (JobState.FAILED, "cannot decode: moov atom not found")
    assert job.finished_at is not None


def test_fail_never_overwrites_a_done_job(session: Session, job_id: int) -> None:
    transitions.claim_job(session, job_id, "w1", max_attempts=3)
    _complete(session, job_id)
    assert not transitions.fail_job(session, job_id, "late error")
    job = _job(session, job_id)
    assert (job.state, job.error) == (JobState.DONE, None)


def test_fail_needs_a_reason(session: Session, job_id: int) -> None:
    with pytest.raises(ValueError, match="say why"):
        transitions.fail_job(session, job_id, "  ")


def test_failing_a_missing_job_raises_job_not_found(session: Session) -> None:
    with pytest.raises(transitions.JobNotFound):
        transitions.fail_job(session, 4242, "gone")


# -- requeue ---------------------------------------------------------------------------


def _three_jobs(session: Session, model: Model) -> list[int]:
    return [
        ingest.record_path(session, f"/inbox/{name}.mp4", digest(name), 1, model).job.id
        for name in ("x", "y", "z")
    ]


def test_requeue_failed_resets_failed_jobs_only(session: Session, model: Model) -> None:
    failed, done, queued = _three_jobs(session, model)
    for job_id in (failed, done):
        transitions.claim_job(session, job_id, "w1", max_attempts=3)
    transitions.fail_job(session, failed, "bad video")
    _complete(session, done)
    assert transitions.requeue_failed(session) == [failed]
    job = _job(session, failed)
    assert (job.state, job.attempts, job.error, job.worker) == (JobState.QUEUED, 0, None, None)
    assert _job(session, done).state is JobState.DONE
    assert _job(session, queued).state is JobState.QUEUED


def test_requeue_failed_can_pick_jobs(session: Session, model: Model) -> None:
    first, second, _ = _three_jobs(session, model)
    for job_id in (first, second):
        transitions.fail_job(session, job_id, "bad video")
    assert transitions.requeue_failed(session, [second]) == [second]
    assert _job(session, first).state is JobState.FAILED


def test_requeue_stale_takes_back_only_jobs_running_too_long(
    session: Session, model: Model
) -> None:
    stale, fresh, queued = _three_jobs(session, model)
    for job_id in (stale, fresh):
        transitions.claim_job(session, job_id, "w1", max_attempts=3)
    _age(session, stale, started_at=timedelta(hours=3))
    assert transitions.requeue_stale(session, timedelta(hours=1)) == [stale]
    job = _job(session, stale)
    assert (job.state, job.attempts, job.worker) == (JobState.QUEUED, 1, None)
    assert _job(session, fresh).state is JobState.RUNNING
    assert _job(session, queued).state is JobState.QUEUED


def test_requeue_orphaned_takes_back_only_the_named_workers_jobs(
    session: Session, model: Model
) -> None:
    mine, theirs, _ = _three_jobs(session, model)
    transitions.claim_job(session, mine, "w1", max_attempts=3)
    transitions.claim_job(session, theirs, "w2", max_attempts=3)
    assert transitions.requeue_orphaned(session, "w1") == [mine]
    assert _job(session, theirs).state is JobState.RUNNING


def test_queued_jobs_lists_jobs_waiting_longer_than_asked(session: Session, model: Model) -> None:
    old, new, running = _three_jobs(session, model)
    transitions.claim_job(session, running, "w1", max_attempts=3)
    _age(session, old, enqueued_at=timedelta(minutes=30))
    assert transitions.queued_jobs(session, older_than=timedelta(minutes=10)) == [old]
    assert transitions.queued_jobs(session) == [old, new]


def test_mark_enqueued_restarts_the_queued_clock(session: Session, model: Model) -> None:
    old, _, _ = _three_jobs(session, model)
    _age(session, old, enqueued_at=timedelta(minutes=30))
    transitions.mark_enqueued(session, [old])
    assert transitions.queued_jobs(session, older_than=timedelta(minutes=10)) == []


def test_a_state_change_is_seen_by_other_sessions_once_the_caller_commits(
    engine: Engine, session: Session, job_id: int
) -> None:
    with write_transaction(session):
        transitions.claim_job(session, job_id, "w1", max_attempts=3)
    with make_sessionmaker(engine)() as other:
        state = other.scalar(select(Job.state).where(Job.id == job_id))
        count = other.scalar(select(func.count()).select_from(Job))
    assert (state, count) == (JobState.RUNNING, 1)
