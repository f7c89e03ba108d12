"""Cross-video batching with decoding overlapped: the inference scheduler of a worker.

This module knows videos and the model, not jobs: the task (``worker.tasks.tag_batch``)
claims jobs, opens their files and records their results; :func:`predict_stream` only
decodes and runs them. It keeps the one-message-one-job guarantees through the task.

Why: one video is ``num_clips`` clips (10 by default). A GPU runs 32-64 clips per forward
for little more than it runs 10, so a worker whose queue holds several videos should put
their clips through together, and decode the next videos while the current batch runs.

How a task uses it (``worker.tasks.tag_batch``), when ``ACTIONTAG_BATCH_VIDEOS`` > 1:

1. Celery still delivers one message per job (prefetch 1, ``acks_late``). The task claims
   its own job as always (``storage.transitions.claim_job``), then up to
   ``ACTIONTAG_BATCH_VIDEOS - 1`` more jobs that are ``queued`` in the database for the
   same model, in one statement under the same worker name (``storage.transitions.claim_queued``).
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

CPU: ``bench/inference.py --pipeline`` measures both halves against tagging the videos
one by one (docs/benchmarks.md). Packing several videos per forward buys nothing on the
CPU (the CPU engine's cost per clip is flat from batch 1), and decoding ahead is within
the noise of two runs: decode is a small share of a video's time and the decode thread
takes its cycles from the cores the forward pass uses. It is not worth what it costs:
every job a task claims spends an attempt if its process dies, so a video that kills
workers takes other videos' attempts with it. So the CPU default is 1 video per task
(``ACTIONTAG_BATCH_VIDEOS=2`` decodes one ahead); on CUDA, where batching is the
throughput, 8 videos / 64 clips / 4 decode threads.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import torch

from actiontag.settings import Settings
from worker.predictor import DecodedVideo, Predictor, VideoPlan, VideoPrediction

__all__ = ["BatchSettings", "predict_stream"]

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
    most ``settings.max_clips`` windows; a video with more windows is streamed alone
    (``Predictor.score``), ``max_clips`` windows a pass.
    """
    window = settings.decode_threads + 1
    pending: deque[tuple[T, Future[DecodedVideo | VideoPlan]]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:

        def refill() -> None:
            while len(pending) < window:
                item = next(source, _END)
                if item is _END:
                    return
                job = pool.submit(_prepare, predictor, path_of(item), settings.max_clips)
                pending.append((item, job))

        refill()
        while pending:
            item, future = pending.popleft()
            try:
                video = future.result()
            except Exception as exc:
                refill()
                yield item, exc
                continue
            if isinstance(video, VideoPlan):
                # Too many windows for one forward pass: streamed alone, a chunk at a
                # time, while the threads decode the next videos.
                refill()
                try:
                    yield item, predictor.score(video, chunk=settings.max_clips)
                except Exception as exc:
                    yield item, exc
                continue
            group = [(item, video)]
            clips = int(video.clips.shape[0])
            # Add the videos already decoded, in order, while they fit; never wait.
            while pending and _decoded(pending[0][1]):
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


def _prepare(
    predictor: Predictor, path: str | os.PathLike[str], max_clips: int
) -> DecodedVideo | VideoPlan:
    """A video's windows decoded, or only its plan when they are more than one forward
    pass takes (``Predictor.score`` streams those)."""
    plan = predictor.plan(path)
    if len(plan.windows) > max_clips:
        return plan
    return predictor.decode(plan)


def _decoded(future: Future[DecodedVideo | VideoPlan]) -> bool:
    return (
        future.done() and future.exception() is None and isinstance(future.result(), DecodedVideo)
    )
