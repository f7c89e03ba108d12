"""A small store for the web app's tests: real video files in a real inbox, recorded as
the watcher records them (with their fstat identity), jobs done, failed and queued."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from actiontag.thumbnails import encode_thumbnails
from storage import ingest, transitions
from storage.db import make_sessionmaker, open_database, write_transaction
from storage.results import JobResult, complete_job
from tests.support.videos import write_video
from timeline.values import Cut, Segment, Timeline, Window

HOSTILE_LABEL = '<script>alert("x")</script>&\nfake line'
META = {"duration": 2.0, "fps": 12.0, "frames": 24, "width": 64, "height": 48}


def write_webm(path: Path, seed: int, frames: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """A small VP8 WebM of moving noise (one a browser plays), different for each seed."""
    return write_video(path, seed, frames, size, fourcc="VP80")


def timeline(label: str = "wave", cuts: tuple[float | Cut, ...] = (1.0,)) -> Timeline:
    jpeg = encode_thumbnails([np.full((24, 32, 3), 120, dtype=np.uint8)])[0]
    return Timeline(
        windows=(Window(0.0, 1.0, label, 0.8), Window(1.0, 2.0, "run", 0.7)),
        segments=(
            Segment(0.0, 1.0, label, 0.8, 0.9, ((label, 0.8), ("run", 0.1)), thumbnail=jpeg),
            Segment(1.0, 2.0, "run", 0.7, 0.75, (("run", 0.7), (label, 0.2))),
        ),
        cuts=cuts,
    )


@dataclass
class Store:
    url: str
    engine: Engine
    inbox: Path
    model: int
    done_video: int = 0
    done_job: int = 0
    failed_video: int = 0
    failed_job: int = 0
    queued_job: int = 0
    queued_video: int = 0
    done_path: Path | None = None

    def record(self, path: Path) -> tuple[int, int]:
        """Record ``path`` as the watcher does; (video id, job id)."""
        data = path.read_bytes()
        with make_sessionmaker(self.engine)() as session, write_transaction(session):
            job = ingest.record_path(
                session,
                str(path),
                hashlib.sha256(data).hexdigest(),
                len(data),
                self.model,
                inbox=str(self.inbox),
                stat=os.stat(path),
            ).job
            return job.video_id, job.id

    def complete(
        self, job_id: int, label: str = "wave", cuts: tuple[float | Cut, ...] = (1.0,)
    ) -> None:
        with make_sessionmaker(self.engine)() as session, write_transaction(session):
            transitions.claim_job(session, job_id, "test-worker", max_attempts=3)
            jpeg = encode_thumbnails([np.full((24, 32, 3), 90, dtype=np.uint8)])
            complete_job(
                session,
                job_id,
                JobResult(
                    predictions=[(label, 0.8), ("run", 0.15)],
                    expert_usage=[(0.6, 3), (0.4, 2)],
                    video_meta=META,
                    decode_ms=12.0,
                    inference_ms=30.0,
                    thumbnails=jpeg,
                    timeline=timeline(label, cuts),
                ),
            )

    def fail(self, job_id: int, reason: str) -> None:
        with make_sessionmaker(self.engine)() as session, write_transaction(session):
            transitions.fail_job(session, job_id, reason)


# The model the store's jobs are of, by default: a checkpoint nobody loads.
PAPER_MODEL = ("ab" * 32, "/models/model.pt")

# A checkpoint's record of its test, as the trainer's evaluation writes it.
TEST_FIGURES = {
    "test": {
        "videos": 40,
        "num_clips": 10,
        "single_clip": {"top1": 0.55, "top5": 0.9},
        "multi_clip": {"top1": 0.625, "top5": 0.95},
        "macro_f1": 0.6,
        "per_class_f1": {"run": 0.7, "wave": 0.5},
    }
}


def give_figures(store: Store, path: str = PAPER_MODEL[1]) -> None:
    """The store's model as a worker registers it once loaded (its checkpoint at
    ``path``): its classes, its test figures."""
    classes = ("run", "wave", HOSTILE_LABEL)
    with make_sessionmaker(store.engine)() as session, write_transaction(session):
        ingest.register_model(
            session, PAPER_MODEL[0], path, split=1, class_names=classes, metrics=TEST_FIGURES
        )


def build_store(url: str, inbox: Path, model: tuple[str, str] = PAPER_MODEL) -> Store:
    """The store, its jobs of ``model`` (a checkpoint's sha256 and path)."""
    engine = open_database(url)
    with make_sessionmaker(engine)() as session, write_transaction(session):
        model_id = ingest.ensure_model(session, *model).id
    store = Store(url, engine, inbox, model_id)
    store.done_path = write_webm(inbox / "done.webm", seed=1)
    store.done_video, store.done_job = store.record(store.done_path)
    store.complete(store.done_job, HOSTILE_LABEL)
    store.failed_video, store.failed_job = store.record(write_webm(inbox / "broken.webm", seed=2))
    store.fail(store.failed_job, "the file could not be decoded: <bad>\nnext line")
    store.queued_video, store.queued_job = store.record(write_webm(inbox / "waiting.webm", seed=3))
    return store
