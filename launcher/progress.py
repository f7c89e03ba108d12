"""Wait until the jobs of the files dropped into the inbox have ended, showing progress.

The database is the record: a file has a job once the watcher has taken it (after its
stability window), and the job ends ``done`` or ``failed`` in the worker (or
``superseded``, when its file changed before it finished). Progress is
a tqdm bar on a terminal and a line per change otherwise (logs, CI).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from tqdm import tqdm

from storage.db import make_engine, make_sessionmaker
from storage.queries.jobs import ResultRow, results
from storage.schema import FINISHED_STATES, JobState

FINAL = FINISHED_STATES
POLL_S = 0.5


class TaggingTimeout(Exception):
    """Not every file's job ended in time; the message says where each one stands."""


def wait_for_jobs(
    database_url: str,
    paths: Sequence[str],
    *,
    timeout_s: float,
    check: Callable[[], None],
    out: TextIO,
) -> dict[str, ResultRow]:
    """The job of each path in ``paths`` (as the watcher records it), once all have ended.

    ``check`` runs at every poll and raises when a service has died. Raises
    :class:`TaggingTimeout` after ``timeout_s``.
    """
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    bar = tqdm(total=len(paths), desc="tagging", unit="file", file=out, disable=not out.isatty())
    deadline = time.monotonic() + timeout_s
    last_line = ""
    try:
        while True:
            check()
            with sessions() as session:
                # Every name of each video: a sample whose content arrived under another
                # name first is found under its own too.
                rows = {path: row for row in results(session) for path in row.paths}
            jobs = {path: rows[path] for path in paths if path in rows}
            summary = _summary(jobs, len(paths))
            finished = sum(1 for row in jobs.values() if row.state in FINAL)
            bar.n = finished
            bar.set_postfix_str(summary, refresh=True)
            if bar.disable and summary != last_line:
                print(f"  {summary}", file=out, flush=True)
                last_line = summary
            if finished == len(paths):
                return jobs
            if time.monotonic() > deadline:
                raise TaggingTimeout(_where_they_stand(paths, jobs, timeout_s))
            time.sleep(POLL_S)
    finally:
        bar.close()
        engine.dispose()


def _summary(jobs: dict[str, ResultRow], total: int) -> str:
    counts = Counter(row.state for row in jobs.values())
    parts = [f"{counts[state]} {state.value}" for state in JobState if counts[state]]
    waiting = total - len(jobs)
    if waiting:
        parts.append(f"{waiting} not recorded yet")
    finished = sum(counts[state] for state in FINAL)
    return f"{finished}/{total} finished: " + ", ".join(parts)


def _where_they_stand(paths: Sequence[str], jobs: dict[str, ResultRow], timeout_s: float) -> str:
    lines = [f"not every file was tagged within {timeout_s:.0f} s:"]
    for path in paths:
        row = jobs.get(path)
        if row is None:
            lines.append(f"    {path}: not recorded by the watcher")
        elif row.state not in FINAL:
            lines.append(f"    {path}: job {row.job_id} is {row.state.value}")
    return "\n".join(lines)
