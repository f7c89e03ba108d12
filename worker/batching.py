"""Cross-video batching with decoding overlapped, keeping the one-message-one-job guarantees.

Why: one video is ``num_clips`` clips (10 by default). A GPU runs 32-64 clips per forward
for little more than it runs 10, so a worker whose queue holds several videos should put
their clips through together, and decode the next videos while the current batch runs.

How a task uses it (``tag_batch``), when ``ACTIONTAG_BATCH_VIDEOS`` > 1:

1. Celery still delivers one message per job (prefetch 1, ``acks_late``). The task claims
   its own job as always (``storage.jobs.claim_job``), then claims up to
   ``ACTIONTAG_BATCH_VIDEOS - 1`` more jobs that are ``queued`` in the database for the
   same model, with the same atomic claim under the same worker name.
2. :func:`predict_stream` decodes the claimed videos in a thread pool
   (``ACTIONTAG_DECODE_THREADS``) that runs at most a bounded number of videos ahead;
   decoded videos that are ready are packed, whole, into one forward pass of at most
   ``ACTIONTAG_BATCH_CLIPS`` clips (a video never waits for others to arrive: a lone
   video goes through alone), while the threads decode the next ones.
3. Each job's results are committed in its own transaction (``complete_job``) as soon as
   its batch is done; a video that cannot be read fails alone. The task returns after
   every commit, so its message is acknowledged after them.

Exactly once: a job is only ever worked on under a claim, and done once (``complete_job``
of a claimed job). The other jobs' messages are still in the broker; when delivered
they find their job done (or running in this process) and do nothing. If the process
dies, its claimed jobs stay ``running`` under its name: its successor queues them again
(``requeue_orphaned``), as does the watcher's reconciler after the timeout; the attempts
cap still holds. On a transient error the unfinished extra jobs are released (``queued``,
attempt given back) before the task retries.

CPU: bench/inference.py --pipeline measures both halves (12 HMDB51-like videos, 10 clips
each, OpenVINO bf16, 2 cores), against tagging the videos one by one:

    run   1 video per forward, decoded ahead   up to 4 videos per forward
    1     x1.070                               x1.069
    2     x0.984                               x0.997

Packing several videos per forward buys nothing on the CPU (the CPU engine's cost per
clip is flat from batch 1), and decoding ahead is within the noise of two runs: decode is
~5% of a video's time and the decode thread takes its cycles from the same two cores
the forward pass uses. It is not worth what it costs: every job a task claims spends an
attempt if its process dies, so a video that kills workers takes other videos' attempts
with it. So the CPU default is 1 video per task (``ACTIONTAG_BATCH_VIDEOS=2`` decodes
one ahead); on CUDA, where batching is the throughput, 8 videos / 64 clips / 4 decode
threads.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch

from actiontag.settings import Settings
from worker.predictor import DecodedVideo, Predictor, VideoPrediction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from worker.tasks import WorkerProcess
    from worker.video_file import OpenedVideo

__all__ = [
    "BatchSettings",
    "predict_stream",
    "tag_batch",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class BatchSettings:
    """How many videos a task takes at once, clips per forward, and decode threads."""

    max_videos: int
    max_clips: int
    decode_threads: int

    @classmethod
    def for_device(cls, device: torch.device, settings: Settings) -> BatchSettings:
        """The values ``settings`` gives, else the defaults for ``device`` (module docstring)."""
        gpu = device.type == "cuda"
        return cls(
            max_videos=settings.batch_videos or (8 if gpu else 1),
            max_clips=settings.batch_clips or (64 if gpu else 16),
            decode_threads=settings.decode_threads or (4 if gpu else 1),
        )


def predict_stream(
    predictor: Predictor,
    items: Iterable[T],
    path_of: Callable[[T], str | os.PathLike[str]],
    settings: BatchSettings,
) -> Iterator[tuple[T, VideoPrediction | Exception]]:
    """Each item with its prediction (or the exception its decode raised), in order.

    Decoding runs ``settings.decode_threads`` videos at a time, at most
    ``decode_threads + 1`` ahead of inference; ready videos share forward passes of at
    most ``settings.max_clips`` clips (a video with more clips runs alone).
    """
    window = settings.decode_threads + 1
    pending: deque[tuple[T, Future[DecodedVideo]]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:

        def refill() -> None:
            while len(pending) < window:
                item = next(source, _END)
                if item is _END:
                    return
                pending.append((item, pool.submit(predictor.decode, path_of(item))))

        refill()
        while pending:
            item, future = pending.popleft()
            try:
                video = future.result()
            except Exception as exc:
                refill()
                yield item, exc
                continue
            group = [(item, video)]
            clips = int(video.clips.shape[0])
            # Add the videos already decoded, in order, while they fit; never wait.
            while pending and pending[0][1].done() and pending[0][1].exception() is None:
                more = int(pending[0][1].result().clips.shape[0])
                if clips + more > settings.max_clips:
                    break
                next_item, next_future = pending.popleft()
                group.append((next_item, next_future.result()))
                clips += more
            refill()  # the threads decode the next videos during this forward pass
            results = predictor.infer_many([v for _, v in group])
            yield from ((it, result) for (it, _), result in zip(group, results, strict=True))


_END = object()


def tag_batch(session: Session, process: WorkerProcess, job_id: int) -> str:
    """Tag claimed job ``job_id`` together with other queued jobs of the same model
    (module docstring); returns ``job_id``'s outcome ("done" or "failed")."""
    from worker import tasks  # the task module imports this one

    settings = BatchSettings.for_device(process.predictor.engine.device, process.settings)
    job_ids = [job_id, *_claim_more(session, process, settings.max_videos - 1)]
    outcomes: dict[int, str] = {}
    runnable: list[tuple[int, OpenedVideo]] = []
    try:
        for jid in job_ids:
            video = tasks.checked_video(session, process, jid)
            if video is None:
                outcomes[jid] = "failed"
            else:
                runnable.append((jid, video))
        started = time.perf_counter()
        # Each video is decoded through its open descriptor (worker.video_file); closing
        # the stream first waits for the decode threads, so no descriptor is closed (and
        # its number reused by another file) while a decoder may still open it.
        with closing(
            predict_stream(process.predictor, runnable, lambda pair: pair[1].decode_path, settings)
        ) as stream:
            for (jid, video), result in stream:
                outcomes[jid] = tasks.record_result(session, process, jid, video, result)
    except BaseException:
        for jid in job_ids[1:]:
            if jid not in outcomes:
                tasks.release_quietly(session, process.name, jid)
        raise
    finally:
        for _, video in runnable:
            video.close()
    if len(job_ids) > 1:
        log.info(
            "%d jobs %s tagged together in %.0f ms [%s]",
            len(job_ids),
            job_ids,
            (time.perf_counter() - started) * 1000,
            process.name,
        )
    return outcomes[job_id]


def _claim_more(session: Session, process: WorkerProcess, limit: int) -> list[int]:
    """Claim up to ``limit`` queued jobs of this process's model; their ids."""
    from storage.jobs import claim_job, job_inputs, queued_jobs

    claimed: list[int] = []
    if limit < 1:
        return claimed
    for candidate in queued_jobs(session):
        if len(claimed) >= limit:
            break
        if job_inputs(session, candidate).model_sha256 != process.predictor.sha256:
            continue
        claim = claim_job(session, candidate, process.name, process.settings.max_attempts)
        if claim.claimed:
            claimed.append(candidate)
    return claimed
