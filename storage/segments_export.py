"""The people's segments as the trainer's segments file: ``path,start,end,label``.

``python -m storage export --annotations FILE`` writes what people stand behind (the
segments they confirmed, relabelled, adjusted or marked; deleted ones never), and with
``--include-unreviewed`` also the segments of each video's reference job nobody reviewed
(:mod:`storage.queries.annotations`). One line per segment after the header: the
video's path relative to the root (the newest recorded path that lies in it, links
resolved; a video with none there is left out and reported), start and end in seconds
with three decimals, the label. CSV as RFC 4180 has it (CRLF, a cell quoted where it
holds a comma, a quote or a line end), each cell through :func:`actiontag.csv_cells.csv_cell`:
a path or label a spreadsheet would run as a formula is written with a leading ``'``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from actiontag.containment import is_under
from actiontag.csv_cells import csv_cell
from storage.paths import NEWEST_FIRST
from storage.queries.annotations import TIME_TOLERANCE_S, ViewSegment, library_view
from storage.queries.filters import chunks
from storage.schema import VideoPath

HEADER = ("path", "start", "end", "label")


@dataclass(frozen=True)
class SegmentLine:
    """One line of the file: a labelled stretch of one video."""

    video_id: int
    path: str  # relative to the root
    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class Overlap:
    """Two of a video's segments that share time (the trainer may refuse them)."""

    path: str
    first: SegmentLine
    second: SegmentLine


@dataclass
class SegmentsFile:
    """What the file holds, and what was left out or looks wrong."""

    lines: list[SegmentLine] = field(default_factory=list)
    # Videos with segments but no recorded path inside the root: (video id, newest path).
    outside: list[tuple[int, str | None]] = field(default_factory=list)
    # Videos whose file now holds another video's content (the file was replaced): the
    # segments of the content recorded there last are kept. (video id, relative path).
    replaced: list[tuple[int, str]] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def videos(self) -> int:
        return len({line.video_id for line in self.lines})


def people_segments(
    session: Session, root: Path, *, include_unreviewed: bool = False
) -> SegmentsFile:
    """The lines of the segments file under ``root``, by path and then time."""
    views = library_view(session, include_unreviewed=include_unreviewed)
    kept = {
        video_id: [item for item in view if _kept(item, include_unreviewed)]
        for video_id, view in views.items()
    }
    kept = {video_id: items for video_id, items in kept.items() if items}
    paths = _paths(session, list(kept))
    root_real = os.path.realpath(root)
    found = SegmentsFile()
    chosen: dict[str, tuple[datetime, int]] = {}  # relative path: (recorded, video id)
    for video_id in kept:
        inside = _inside(paths.get(video_id, []), root_real)
        if inside is None:
            newest = paths[video_id][0][0] if paths.get(video_id) else None
            found.outside.append((video_id, newest))
            continue
        relative, recorded = inside
        if relative in chosen:
            other = chosen[relative]
            loser = min(other, (recorded, video_id))
            found.replaced.append((loser[1], relative))
            if loser == other:
                chosen[relative] = (recorded, video_id)
        else:
            chosen[relative] = (recorded, video_id)
    for relative, (_, video_id) in chosen.items():
        found.lines += [
            SegmentLine(video_id, relative, item.start_s, item.end_s, item.label or "")
            for item in kept[video_id]
        ]
    found.lines.sort(key=lambda line: (line.path, line.start_s, line.end_s, line.label))
    found.overlaps = _overlaps(found.lines)
    return found


def _kept(item: ViewSegment, include_unreviewed: bool) -> bool:
    return item.reviewed or (include_unreviewed and item.review == "unreviewed")


def _paths(session: Session, video_ids: Sequence[int]) -> dict[int, list[tuple[str, datetime]]]:
    """Each video's recorded paths with when they were first seen, newest first."""
    found: dict[int, list[tuple[str, datetime]]] = {}
    for chunk in chunks(video_ids):
        for video_id, path, first_seen in session.execute(
            select(VideoPath.video_id, VideoPath.path, VideoPath.first_seen)
            .where(VideoPath.video_id.in_(chunk))
            .order_by(*NEWEST_FIRST)
        ):
            found.setdefault(video_id, []).append((path, first_seen))
    return found


def _inside(paths: Sequence[tuple[str, datetime]], root_real: str) -> tuple[str, datetime] | None:
    """The first of ``paths`` that lies in the root (every link resolved, so none leads
    out), relative to it, with when it was recorded; None for none."""
    for path, first_seen in paths:
        real = os.path.realpath(path)
        if real != root_real and is_under(real, root_real):
            return os.path.relpath(real, root_real), first_seen
    return None


def _overlaps(lines: Sequence[SegmentLine]) -> list[Overlap]:
    """Lines of one path (``lines`` in path and time order) that share more than the
    time tolerance with an earlier one: each with the earlier line reaching furthest."""
    found = []
    reaching: SegmentLine | None = None
    for line in lines:
        if reaching is None or reaching.path != line.path:
            reaching = line
            continue
        if line.start_s < reaching.end_s - TIME_TOLERANCE_S:
            found.append(Overlap(line.path, reaching, line))
        if line.end_s > reaching.end_s:
            reaching = line
    return found


def write_segments_file(lines: Sequence[SegmentLine], out: TextIO) -> None:
    """The header and one line per segment (the format in the module's docstring)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow(
            [
                csv_cell(line.path),
                f"{line.start_s:.3f}",
                f"{line.end_s:.3f}",
                csv_cell(line.label),
            ]
        )
