"""The web API's latency on a large store: p50/p95 of the first page of the video list
and of moments search, on SQLite and PostgreSQL.

It generates a store of ``--videos`` videos (100,000), one done job each with three
predictions and ``--segments`` segments each (10: 1,000,000 in all), labels drawn from
51, timestamps spread over 30 days; then times each request ``--repeats`` times through
the app in this process (ASGI, no network): first without the indexes of migration
0008 (the baseline) and with them, and prints both and their ratio.

    .venv/bin/python bench/web.py                            # SQLite and PostgreSQL
    .venv/bin/python bench/web.py --backend sqlite --videos 20000

PostgreSQL: a fresh database on ACTIONTAG_TEST_POSTGRES_ADMIN_URL's server (default
postgresql://postgres@127.0.0.1:5432/postgres), dropped at the end.
Target: p95 <= 100 ms for the first page of each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, insert, text  # noqa: E402

from actiontag.settings import Settings  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.schema import Job, Model, Prediction, SegmentRecord, Video, VideoPath  # noqa: E402
from web.app import make_app  # noqa: E402

TARGET_MS = 100.0
LABELS = [f"action_{i:02d}" for i in range(51)]
CHUNK = 20_000
# The indexes migration 0008 adds (name -> table), dropped for the baseline.
NEW_INDEXES = {
    "ix_jobs_activity": "jobs",
    "ix_segments_mean_confidence": "segments",
}
ADMIN_URL = os.environ.get(
    "ACTIONTAG_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=10, help="segments per video")
    parser.add_argument("--repeats", type=int, default=30)
    return parser.parse_args(argv)


def generate(engine: Engine, videos: int, segments: int) -> None:
    """The store: videos, their paths, one done job each, predictions and segments."""
    rng = random.Random(0)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Model),
            [{"id": 1, "sha256": "ab" * 32, "path": "/models/model.pt", "registered_at": start}],
        )
    for first in range(1, videos + 1, CHUNK):
        ids = range(first, min(first + CHUNK, videos + 1))
        rows_v, rows_p, rows_j, rows_pr, rows_s = [], [], [], [], []
        for i in ids:
            seen = start + timedelta(seconds=i * 25)
            rows_v.append(
                {"id": i, "sha256": f"{i:064x}", "size": 1_000_000, "duration": 60.0,
                 "fps": 25.0, "frames": 1500, "width": 320, "height": 240, "first_seen": seen,
                 "name": f"clip-{i:07d}.mp4"}
            )  # fmt: skip
            path = f"/data/inbox/camera{i % 40}/clip-{i:07d}.mp4"
            rows_p.append({"id": i, "video_id": i, "path": path, "first_seen": seen})
            rows_j.append(
                {"id": i, "video_id": i, "model_id": 1, "state": "done", "attempts": 1,
                 "path": path, "enqueued_at": seen, "started_at": seen + timedelta(seconds=2),
                 "finished_at": seen + timedelta(seconds=9), "worker": "w@h#0",
                 "decode_ms": 300.0, "inference_ms": 900.0}
            )  # fmt: skip
            top = rng.sample(LABELS, 3)
            rows_pr += [
                {"job_id": i, "rank": r + 1, "label": label, "confidence": c}
                for r, (label, c) in enumerate(zip(top, (0.7, 0.2, 0.1), strict=True))
            ]
            for position in range(segments):
                label = rng.choice(LABELS)
                mean = rng.uniform(0.3, 1.0)
                rows_s.append(
                    {"job_id": i, "position": position, "start_s": position * 6.0,
                     "end_s": position * 6.0 + rng.uniform(1.0, 6.0), "label": label,
                     "mean_confidence": mean, "peak_confidence": min(1.0, mean + 0.05),
                     "top_k": [{"label": label, "confidence": mean}]}
                )  # fmt: skip
        with engine.begin() as conn:
            for table, rows in (
                (Video, rows_v), (VideoPath, rows_p), (Job, rows_j),
                (Prediction, rows_pr), (SegmentRecord, rows_s),
            ):  # fmt: skip
                conn.execute(insert(table), rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("videos", "video_paths", "jobs", "predictions", "segments"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


REQUESTS = [
    ("videos, first page", "/api/videos?limit=50"),
    ("videos, state done", "/api/videos?limit=50&state=done"),
    ("videos, label + confidence", "/api/videos?limit=50&label=action_07&min_confidence=0.5"),
    ("videos, label in another case", "/api/videos?limit=50&label=ACTION_07"),
    ("videos, a part of the name", "/api/videos?limit=50&q=clip-00012"),
    ("videos, by confidence", "/api/videos?limit=50&sort=confidence"),
    ("videos, by name", "/api/videos?limit=50&sort=name"),
    ("moments, label", "/api/moments?limit=50&label=action_07"),
    (
        "moments, label + conf + duration",
        "/api/moments?limit=50&label=action_07&min_confidence=0.8&min_duration=3",
    ),
    ("moments, any label", "/api/moments?limit=50"),
]


def time_requests(client: TestClient, repeats: int) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms of each request (one warm-up each first)."""
    found = {}
    for name, url in REQUESTS:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        assert answer.json()[("videos" if "videos" in url else "moments")], f"{url}: empty"
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        found[name] = (statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)])
    return found


def drop_new_indexes(engine: Engine) -> None:
    with engine.begin() as conn:
        for name in NEW_INDEXES:
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        conn.execute(text("ANALYZE"))


@contextmanager
def store(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-web-") as folder:
            yield f"sqlite:///{folder}/actiontag.db"
        return
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"actiontag_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run(backend: str, args: argparse.Namespace) -> bool:
    with store(backend) as url:
        engine = open_database(url)
        started = time.perf_counter()
        generate(engine, args.videos, args.segments)
        print(
            f"\n{backend}: {args.videos:,} videos, {args.videos * args.segments:,} segments "
            f"generated in {time.perf_counter() - started:.0f} s"
        )
        # A loopback name: the app answers to no other host by default (web.hosts).
        app = make_app(Settings(database_url=url), engine=engine)
        client = TestClient(app, base_url="http://127.0.0.1")
        after = time_requests(client, args.repeats)
        drop_new_indexes(engine)
        before = time_requests(client, args.repeats)
        engine.dispose()
    print(f"{'request':36} {'without 0008 p50/p95':>22} {'with 0008 p50/p95':>20} {'p95 ratio':>9}")
    ok = True
    for name, _ in REQUESTS:
        (b50, b95), (a50, a95) = before[name], after[name]
        mark = "" if a95 <= TARGET_MS else "  over target"
        ok = ok and a95 <= TARGET_MS
        print(
            f"{name:36} {b50:9.1f} / {b95:7.1f} ms {a50:8.1f} / {a95:7.1f} ms {b95 / a95:8.1f}x{mark}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run(backend, args) for backend in backends]
    print(f"\ntarget p95 <= {TARGET_MS:.0f} ms: {'met' if all(results) else 'NOT met'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
