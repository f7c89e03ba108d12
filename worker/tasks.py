"""``tag_video(job_id)``: one video through the model, its results into the database.

Flow (job states in DESIGN.md; every state change is a call of storage.transitions,
storage.results or storage.ingest):

1. claim the job for this pool process (``queued -> running``, attempts + 1). A job
   already done, failed, or running in another process is left alone: a redelivered or
   duplicate message does nothing. A job whose attempts are used up is marked failed by
   the claim: a video that kills its process (segfault, OOM) every time stops there.
2. check that the job names the checkpoint this process serves, and open the first of
   the video's paths that holds exactly the recorded video, inside its inbox
   (worker.video_file: no link leading out, no FIFO, the recorded file or, where its
   identity changed, the recorded sha256); the decoder reads that open file, and a
   file written to while it was decoded fails the job.
3. score the video's windows (worker.predictor: every ``ACTIONTAG_WINDOW_EVERY``
   seconds, streamed through the engine while the next ones decode), then write the
   top-k predictions (the mean over the windows), the expert usage, the video's
   metadata, the timings, the strip's thumbnails and the timeline (windows, segments,
   shot cuts) in one transaction (``complete_job`` replaces rows an interrupted attempt
   left).
   Then, the result committed, the video's preview (worker.previews: a small H.264
   MP4 of a video a browser cannot play as it is; a failure is recorded, never the
   job's).
   With ``ACTIONTAG_BATCH_VIDEOS`` > 1 (the CUDA default) the task also claims other
   queued jobs of its model, in one statement, and runs their clips together
   (``tag_batch``; worker.batching schedules the decoding and the forward passes).

A video that cannot be read, a missing or replaced file, a link leading out of the
inbox or a model mismatch ends ``failed`` with a readable reason and the worker goes on; so does any unexpected error while a job is in
hand, and a pool process that cannot load its model fails the jobs it is given saying
why (never a consumed message with its job left ``queued``). A job id the database does
not hold is never acknowledged as done: the message is rejected and the error names the
database (the watcher's reconciler sends the job again from the database that has it). Database and broker errors are transient: the
job is released (the attempt is given back) and the task retried with exponential
backoff and jitter.

The worker name recorded on a claim is ``<Celery node name>#<pool process index>``:
unique among running processes, and the same for the process that replaces a dead one,
so a redelivered job is re-taken by the successor and a restarted worker finds the jobs
its predecessor left running (``requeue_orphaned``).
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any, NoReturn

from billiard.process import current_process
from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery.signals import worker_process_init
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError as SQLOperationalError
from sqlalchemy.orm import Session, sessionmaker

from actiontag.queueing import Send, send_jobs
from actiontag.settings import Settings, env_name
from decoding.video import VideoError
from storage.db import (
    DatabaseUnavailable,
    describe_url,
    make_engine,
    make_sessionmaker,
    read_transaction,
    write_transaction,
)
from storage.inputs import job_inputs
from storage.results import JobResult, complete_job
from storage.schema import Job
from storage.transitions import (
    ClaimStatus,
    claim_job,
    claim_queued,
    fail_job,
    mark_enqueued,
    release_job,
    requeue_orphaned,
)
from worker.app import TAG_VIDEO_TASK, sender
from worker.batching import BatchSettings, predict_stream
from worker.engines import cache as engine_cache
from worker.predictor import Predictor, VideoPrediction, configure_cpu_threads, resolve_device
from worker.previews import make_preview
from worker.video_file import FileRefused, OpenedVideo, open_video

__all__ = [
    "TRANSIENT_ERRORS",
    "WorkerProcess",
    "checked_video",
    "fail_unstarted",
    "record_result",
    "register",
    "reject_missing_job",
    "release_quietly",
    "tag_batch",
    "worker_name",
]

log = logging.getLogger(__name__)

DATABASE_URL_SETTING = env_name("database_url")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    SQLOperationalError,
    InterfaceError,
    BrokerError,
    ConnectionError,
)


def worker_name(nodename: str, slot: int) -> str:
    """The name a pool process claims jobs under (see the module docstring)."""
    return f"{nodename}#{slot}"


def pool_slot() -> int:
    """This pool process's index (0 in a worker without a process pool)."""
    return int(getattr(current_process(), "index", 0) or 0)


@dataclass
class WorkerProcess:
    """What one pool process holds: its name, settings, database sessions, the loaded
    model and how it sends jobs back to the broker."""

    name: str
    settings: Settings
    sessions: sessionmaker[Session]
    predictor: Predictor
    send: Send
    # Videos one task may tag in one go (worker.batching); 1: each message alone.
    batch_videos: int = 1

    @classmethod
    def start(cls, nodename: str, settings: Settings, send: Send) -> WorkerProcess:
        """Load the model and connect to the database, in the process that will use them."""
        slot = pool_slot()
        engine_cache.configure(settings.engine_cache)
        device = resolve_device(settings.device, slot)
        if device.type == "cpu":
            threads = configure_cpu_threads(settings.concurrency or 1)
            log.info("pool process %d runs the model on the CPU with %d threads", slot, threads)
        batch = BatchSettings.for_device(device, settings)
        predictor = Predictor(
            settings.checkpoint,
            device=device,
            num_clips=settings.num_clips,
            top_k=settings.top_k,
            engine=settings.engine,
            window_every=settings.window_every,
            max_windows=settings.max_windows,
            chunk=batch.max_clips,
            max_frames=settings.max_frames,
            shot_detector=settings.shot_detector,
        )
        sessions = make_sessionmaker(
            make_engine(settings.database_url, password_file=settings.database_password_file)
        )
        return cls(
            worker_name(nodename, slot), settings, sessions, predictor, send, batch.max_videos
        )

    def requeue_orphans(self) -> list[int]:
        """Queue again the jobs a dead predecessor left running under this name.

        Nothing can be running under this name yet, so such jobs lost their process
        (killed, or the whole worker stopped hard). Their attempts stay counted.
        """
        try:
            with self.sessions() as session:
                with write_transaction(session):
                    ids = requeue_orphaned(session, self.name)
                if ids:
                    result = send_jobs(ids, self.send)
                    with write_transaction(session):
                        mark_enqueued(session, result.sent)
                    log.warning(
                        "%s: job(s) %s were left running by a dead predecessor; queued again "
                        "(%d sent to the broker)",
                        self.name,
                        ids,
                        len(result.sent),
                    )
                return ids
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "%s: cannot look for jobs left running by a predecessor (%s); "
                "the watcher's reconciler will queue them again",
                self.name,
                exc,
            )
            return []


_PROCESS: WorkerProcess | None = None


def worker_process(nodename: str, settings: Settings, send: Send) -> WorkerProcess:
    """This process's WorkerProcess, started on first use if the pool did not start it."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = WorkerProcess.start(nodename, settings, send)
        _PROCESS.requeue_orphans()
    return _PROCESS


def register(app: Celery, settings: Settings) -> Task:
    """Register ``tag_video`` on ``app`` for a worker serving ``settings``; its pool
    processes (forked after this) start their model with these settings."""
    send = sender(app)

    @worker_process_init.connect(weak=False)
    def _start_pool_process(sender: str | None = None, **_: Any) -> None:
        # Runs in each prefork child right after the fork: the model and CUDA are set up
        # here, never in the parent (a parent that touched CUDA cannot fork usable children).
        worker_process(sender or "actiontag@unknown", settings, send)

    @app.task(
        bind=True,
        name=TAG_VIDEO_TASK,
        shared=False,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=TRANSIENT_ERRORS,
        retry_backoff=2,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=50,
    )
    def tag_video(self: Any, job_id: int) -> str:
        """Tag the video of job ``job_id``; returns what happened (a ClaimStatus or
        "done"/"failed")."""
        nodename = self.request.hostname or "actiontag@unknown"
        try:
            process = worker_process(nodename, settings, send)
        except TRANSIENT_ERRORS:
            raise  # retried with backoff; the job was not touched
        except Exception as exc:
            # Never a consumed message with its job left queued: the job says why.
            return fail_unstarted(nodename, int(job_id), exc, settings)
        return run_job(process, int(job_id))

    return tag_video


def run_job(process: WorkerProcess, job_id: int) -> str:
    """Claim, tag and record one job (the body of ``tag_video``)."""
    with process.sessions() as session:
        with write_transaction(session):
            claim = claim_job(session, job_id, process.name, process.settings.max_attempts)
        if claim.status is ClaimStatus.MISSING:
            reject_missing_job(session, job_id)
        if not claim.claimed:
            _log_refusal(job_id, claim.status, claim.reason)
            return claim.status.value
        try:
            return _tag(session, process, job_id)
        except TRANSIENT_ERRORS as exc:
            _release(session, process.name, job_id, exc)
            raise
        except SoftTimeLimitExceeded:
            limit = process.settings.task_time_limit - 30  # worker.app's soft limit
            return _fail(
                session,
                process.name,
                job_id,
                f"tagging took longer than {limit} s and was stopped. Raise "
                f"{env_name('task_time_limit')}, or score fewer windows (a larger "
                f"{env_name('window_every')} or a lower {env_name('max_windows')}), then "
                "`python -m storage requeue --failed`.",
            )
        except Exception as exc:
            log.exception("job %d: unexpected error", job_id)
            return _fail(
                session,
                process.name,
                job_id,
                f"internal error while tagging: {type(exc).__name__}: {exc}. "
                "See the worker log for the traceback.",
            )


def fail_unstarted(nodename: str, job_id: int, exc: Exception, settings: Settings) -> str:
    """End job ``job_id`` ``failed`` when this pool process cannot start tagging (its
    model or engine will not load here); the reason names the error."""
    log.error("this pool process cannot tag videos", exc_info=exc)
    engine = make_engine(settings.database_url, password_file=settings.database_password_file)
    try:
        with make_sessionmaker(engine)() as session:
            name = worker_name(nodename, pool_slot())
            with write_transaction(session):
                claim = claim_job(session, job_id, name, settings.max_attempts)
            if claim.status is ClaimStatus.MISSING:
                reject_missing_job(session, job_id)
            if not claim.claimed:
                _log_refusal(job_id, claim.status, claim.reason)
                return claim.status.value
            return _fail(
                session,
                name,
                job_id,
                f"the worker {name} cannot load its model: {type(exc).__name__}: {exc}. "
                "Fix it (see its log), restart it, then `python -m storage requeue --failed`.",
            )
    finally:
        engine.dispose()


def reject_missing_job(session: Session, job_id: int) -> NoReturn:
    """Reject the message of a job this worker's database does not hold.

    Never acknowledged as done: the database that recorded the job keeps it ``queued``,
    and that watcher's reconciler sends it again (rejected, not requeued, so a worker on
    the wrong database cannot spin on it). A database without any job is almost surely
    the wrong one, and the log says so.
    """
    where = describe_url(session.get_bind().url)
    empty = session.scalar(select(Job.id).limit(1)) is None
    session.commit()
    if empty:
        log.error(
            "job %d: the database at %s holds no jobs at all while messages arrive: this "
            "worker is probably pointed at the wrong database. Give it the watcher's %s "
            "(or --database-url) and restart it",
            job_id,
            where,
            DATABASE_URL_SETTING,
        )
    else:
        log.error(
            "job %d does not exist in the database at %s; the message is rejected, not "
            "done. Are watcher and worker on the same database (%s)?",
            job_id,
            where,
            DATABASE_URL_SETTING,
        )
    raise Reject(f"job {job_id} does not exist in the database at {where}", requeue=False)


def _tag(session: Session, process: WorkerProcess, job_id: int) -> str:
    if process.batch_videos > 1:
        return tag_batch(session, process, job_id)
    video = checked_video(session, process, job_id)
    if video is None:
        return "failed"
    with video:
        try:
            result: VideoPrediction | Exception = process.predictor.predict(video.decode_path)
        except VideoError as exc:
            result = exc
        outcome = record_result(session, process, job_id, video, result)
        if outcome == "done":
            make_preview(session, process.settings, job_id, video)
        return outcome


def tag_batch(session: Session, process: WorkerProcess, job_id: int) -> str:
    """Tag claimed job ``job_id`` together with other queued jobs of the same model
    (worker.batching says how and why); returns ``job_id``'s outcome ("done" or "failed").

    The other jobs are claimed in one statement under this process's name; whatever
    happens, each ends done or failed on its own, and those not finished when an error
    escapes are given back (``queued``, the attempt returned) before the task retries.
    """
    settings = BatchSettings.for_device(process.predictor.engine.device, process.settings)
    with write_transaction(session):
        more = claim_queued(
            session,
            process.predictor.sha256,
            process.name,
            process.settings.max_attempts,
            settings.max_videos - 1,
        )
    job_ids = [job_id, *more]
    outcomes: dict[int, str] = {}
    runnable: list[tuple[int, OpenedVideo]] = []
    started = time.perf_counter()
    try:
        for jid in job_ids:
            video = checked_video(session, process, jid)
            if video is None:
                outcomes[jid] = "failed"
            else:
                runnable.append((jid, video))
        # Each video is decoded through its open descriptor (worker.video_file); closing
        # the stream first waits for the decode threads, so no descriptor is closed (and
        # its number reused by another file) while a decoder may still open it.
        with closing(
            predict_stream(process.predictor, runnable, lambda pair: pair[1].decode_path, settings)
        ) as stream:
            for (jid, video), result in stream:
                outcomes[jid] = record_result(session, process, jid, video, result)
        # Once every result is in: a preview never holds back a result of the batch.
        for jid, video in runnable:
            if outcomes[jid] == "done":
                make_preview(session, process.settings, jid, video)
    except BaseException:
        for jid in more:
            if jid not in outcomes:
                release_quietly(session, process.name, jid)
        raise
    finally:
        for _, video in runnable:
            video.close()
    if more:
        log.info(
            "%d jobs %s tagged together in %.0f ms [%s]",
            len(job_ids),
            job_ids,
            (time.perf_counter() - started) * 1000,
            process.name,
        )
    return outcomes[job_id]


def checked_video(session: Session, process: WorkerProcess, job_id: int) -> OpenedVideo | None:
    """The claimed job's video file, open and verified (worker.video_file); None when the
    job was failed instead (another model's job, or no recorded path holds its video).
    The caller closes it once decoded."""
    with read_transaction(session):  # ended: the inference after it holds no transaction
        inputs = job_inputs(session, job_id)
    predictor = process.predictor
    if inputs.model_sha256 != predictor.sha256:
        _fail(
            session,
            process.name,
            job_id,
            f"the job asks for model {inputs.model_sha256[:12]} ({inputs.model_path}) but this "
            f"worker serves {predictor.sha256[:12]} ({predictor.checkpoint_path}). Give the "
            f"watcher and the worker the same {env_name('checkpoint')}, then "
            "`python -m storage requeue --failed`.",
        )
        return None
    try:
        return open_video(inputs)
    except FileRefused as refused:
        _fail(session, process.name, job_id, str(refused))
        return None


def record_result(
    session: Session,
    process: WorkerProcess,
    job_id: int,
    video: OpenedVideo,
    result: VideoPrediction | Exception,
) -> str:
    """Complete the job with ``result``, or fail it with the error its video raised (or
    because its file was written to while it was decoded).

    Either way the job keeps the path it opened as its path: the name its result or error
    is about.
    """
    path = video.path
    if isinstance(result, VideoError):
        # The decoder saw /proc/self/fd/N; the reason names the recorded path.
        return _fail(session, process.name, job_id, str(VideoError(path, result.reason)), path=path)
    if isinstance(result, Exception):
        log.error("job %d: unexpected error", job_id, exc_info=result)
        return _fail(
            session,
            process.name,
            job_id,
            f"internal error while tagging: {type(result).__name__}: {result}. "
            "See the worker log for the traceback.",
            path=path,
        )
    changed = video.written_since_opened()
    if changed is not None:
        return _fail(session, process.name, job_id, changed, path=path)
    with write_transaction(session):
        written = complete_job(session, job_id, _job_result(result, path), worker=process.name)
    if not written:
        # Superseded while it ran (its file changed: the result would describe content
        # that is gone), or done by a redelivered copy: nothing is written.
        with read_transaction(session):
            state = job_inputs(session, job_id).state
        log.info("job %d: result not written, the job is %s meanwhile", job_id, state.value)
        return state.value
    label, confidence = result.top[0]
    log.info(
        "job %d done: %r -> %s (%.3f); %d windows, %d segments, %d shot cuts, "
        "decode %.0f ms, inference %.0f ms [%s]",
        job_id,
        path,
        label,
        confidence,
        result.num_clips,
        len(result.timeline.segments),
        len(result.timeline.cuts),
        result.decode_ms,
        result.inference_ms,
        process.name,
    )
    return "done"


def _job_result(prediction: VideoPrediction, path: str) -> JobResult:
    """What the store keeps of a video's prediction, the file read at ``path``."""
    info = prediction.info
    return JobResult(
        predictions=prediction.top,
        expert_usage=prediction.expert_usage,
        video_meta={
            "duration": info.duration,
            "fps": info.fps,
            "frames": info.frames,
            "width": info.width,
            "height": info.height,
        },
        decode_ms=prediction.decode_ms,
        inference_ms=prediction.inference_ms,
        thumbnails=prediction.thumbnails,
        path=path,
        timeline=prediction.timeline,
    )


def _fail(session: Session, worker: str, job_id: int, reason: str, path: str | None = None) -> str:
    """Fail the job ``worker`` claimed; a job it no longer holds is left as it is."""
    with write_transaction(session):
        failed = fail_job(session, job_id, reason, path=path, worker=worker)
    if not failed:
        with read_transaction(session):
            state = job_inputs(session, job_id).state
        log.info("job %d: failure not written, the job is %s meanwhile", job_id, state.value)
        return state.value
    log.warning("job %d failed: %s", job_id, reason)
    return "failed"


def _release(session: Session, worker: str, job_id: int, exc: BaseException) -> None:
    log.warning("job %d: transient error, retrying later: %s", job_id, exc)
    release_quietly(session, worker, job_id)


def release_quietly(session: Session, worker: str, job_id: int) -> None:
    """Give the job back (``running -> queued``); if even that fails, leave it for the
    orphan/stale requeue."""
    try:
        session.rollback()  # whatever the error left open
        with write_transaction(session):
            release_job(session, job_id, worker)
    except TRANSIENT_ERRORS as again:
        # The job stays running under this name: this process re-takes it on retry, and
        # the reconciler or this worker's next start queues it again otherwise.
        log.warning("job %d: could not release it either: %s", job_id, again)


def _log_refusal(job_id: int, status: ClaimStatus, reason: str) -> None:
    if status is ClaimStatus.EXHAUSTED:
        log.error("job %d failed: %s", job_id, reason)
    else:
        log.info("job %d skipped: %s", job_id, reason)
