"""What the demo expected of each sample file and what it got.

Every sample's job must end in its expected state (tagged, or failed for the files that
are not videos). A synthetic clip must also be tagged with the motion it shows, but only
when the demonstration model serves: that is the model trained to tell those motions
apart. Any other checkpoint (``--checkpoint``) is shown what it said, unjudged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.samples import Sample
from storage.queries.jobs import ResultRow


@dataclass(frozen=True)
class Outcome:
    """One sample: what was expected, what it got, and why they differ (None: as expected)."""

    name: str
    expected: str
    got: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def judge(
    samples: Sequence[Sample],
    jobs: Mapping[str, ResultRow],
    inbox: Path,
    *,
    check_motions: bool,
) -> list[Outcome]:
    """Each sample's outcome; ``jobs`` maps the path a sample landed at to its job."""
    return [_judge(sample, jobs.get(str(inbox / sample.name)), check_motions) for sample in samples]


def _judge(sample: Sample, row: ResultRow | None, check_motions: bool) -> Outcome:
    motion = sample.motion if check_motions else None
    expected = sample.expect.value + (f": {motion}" if motion else "")
    if row is None:
        return Outcome(sample.name, expected, "no job", f"no job, expected {expected}")
    label = row.top.label if row.top is not None else None
    got = row.state.value
    if row.top is not None:
        got += f": {row.top.label} ({row.top.confidence:.3f})"
    problem = None
    if row.state is not sample.expect:
        error = f" ({row.error})" if row.error else ""
        problem = f"{row.state.value}{error}, expected {sample.expect.value}"
    elif motion is not None and label != motion:
        problem = f"tagged {label}, expected {motion}"
    return Outcome(sample.name, expected, got, problem)


def format_outcomes(outcomes: Sequence[Outcome]) -> list[str]:
    """A table: file, expected, got, and ``ok`` or ``NOT AS EXPECTED``."""
    rows = [("FILE", "EXPECTED", "GOT", "")]
    rows += [(o.name, o.expected, o.got, "ok" if o.ok else "NOT AS EXPECTED") for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0], strict=True)).rstrip()
        for row in rows
    ]
