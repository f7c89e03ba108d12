"""The player's file route after the file's metadata changed (a touch, a chmod).

A recorded video of ``--size-mib`` MiB (256) in a SQLite store; 1 KiB Range requests
through the app in this process (ASGI, no network), ``--repeats`` times each (median):

- untouched: the stored identity matches, nothing is hashed;
- the first request after a touch: the content is verified again (sha256 of the file);
- the requests after it: the identity that verification stored matches again;
- ``--concurrent`` requests at once right after another touch: one verification.

It prints each time and the ratio of "after" to "untouched" (about 1.0x when the
verified identity is stored; before that every request re-hashed the whole file).

    .venv/bin/python bench/web_file.py
    .venv/bin/python bench/web_file.py --size-mib 1024 --concurrent 8
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from actiontag.settings import Settings  # noqa: E402
from storage import ingest  # noqa: E402
from storage.db import make_sessionmaker, open_database  # noqa: E402
from web.app import make_app  # noqa: E402

RANGE = {"Range": "bytes=4096-5119"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=6)
    return parser.parse_args(argv)


def write_video(path: Path, size_mib: int) -> str:
    """A file of random bytes (the route never decodes it); its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def record(url: str, inbox: Path, path: Path, sha256: str) -> int:
    engine = open_database(url)
    with make_sessionmaker(engine)() as session:
        model = ingest.ensure_model(session, "ab" * 32, "/models/model.pt")
        session.commit()
        job = ingest.record_path(
            session,
            str(path),
            sha256,
            path.stat().st_size,
            model.id,
            inbox=str(inbox),
            stat=os.stat(path),
        ).job
        video_id = job.video_id
    engine.dispose()
    return video_id


def timed(client: TestClient, url: str) -> float:
    start = time.perf_counter()
    answer = client.get(url, headers=RANGE)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 206, answer.text
    return elapsed


def touch(path: Path) -> None:
    now = time.time() + 10
    os.utime(path, (now, now))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inbox = root / "inbox"
        inbox.mkdir()
        path = inbox / "long.mp4"
        sha256 = write_video(path, args.size_mib)
        url = f"sqlite:///{root / 'actiontag.db'}"
        video_id = record(url, inbox, path, sha256)
        settings = Settings(database_url=url, broker_url=f"sqlite:///{root / 'b'}", inbox=inbox)
        route = f"/videos/{video_id}/file"
        # A loopback Host: the app's own default allows it.
        with TestClient(make_app(settings), base_url="http://127.0.0.1") as client:
            untouched = statistics.median(timed(client, route) for _ in range(args.repeats))
            touch(path)
            first = timed(client, route)
            after = statistics.median(timed(client, route) for _ in range(args.repeats))
            touch(path)
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrent) as pool:
                list(pool.map(lambda _: timed(client, route), range(args.concurrent)))
            together = time.perf_counter() - start
    print(f"file: {args.size_mib} MiB; 1 KiB Range requests, median of {args.repeats}")
    print(f"  untouched:              {untouched * 1000:8.2f} ms")
    print(f"  first after a touch:    {first * 1000:8.2f} ms  (verifies the content)")
    print(f"  after that:             {after * 1000:8.2f} ms  ({after / untouched:.2f}x untouched)")
    print(f"  {args.concurrent} at once after a touch: {together * 1000:8.2f} ms in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
