"""Annotation files of labelled time segments: CSV lines `path,start,end,label`.

    path,start,end,label
    kitchen/cam1.mp4,12.500,31.000,forklift loading
    kitchen/cam1.mp4,00:01:02.250,00:01:09.000,hand-off

Exactly those four columns, in that order; the header line is optional (the first
line, when it names them). Times are seconds (``12.5``) or ``MM:SS.mmm`` or
``HH:MM:SS.mmm`` (the fraction optional), from the video's first frame. Fields are
read by the csv module, so a path or label holding a comma is quoted
(``"a, b.mp4"``); blanks around a field are dropped. UTF-8 with or without a
byte-order mark, LF or CRLF line ends; blank lines are skipped. ``python -m storage
export --annotations`` writes this shape (a header, seconds with three decimals).

A segment ends after it starts. Segments of one video with different labels must not
overlap (one stretch of a video takes one label); overlapping segments with the same
label are merged into one, and the merge is logged. Every bad line is kept with its
file and line number (trainer.datasets.line_files.Problems): one error lists them all.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from actiontag.csv_cells import plain_cell
from actiontag.text import has_control
from trainer.datasets.line_files import Line, Problems, read_text

__all__ = ["COLUMNS", "Annotation", "Segment", "merge_overlaps", "parse_time", "read_annotations"]

COLUMNS = ("path", "start", "end", "label")
_TIME = re.compile(
    r"^(?:(?:(?P<hours>\d+):(?P<minutes>[0-5]\d)|(?P<only_minutes>\d+))"
    r":(?P<clock_seconds>[0-5]\d(?:\.\d+)?)|(?P<seconds>\d+(?:\.\d+)?))$"
)


@dataclass(frozen=True)
class Annotation:
    """One good line of an annotation file."""

    line: Line
    path: str  # as written, blanks around it dropped
    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of one video: one line, or overlapping lines of one label."""

    start_s: float
    end_s: float
    label: str
    lines: tuple[Line, ...]  # the lines it comes from, in file order


def parse_time(text: str) -> float | None:
    """Seconds from ``12.5``, ``MM:SS.mmm`` or ``HH:MM:SS.mmm`` (two digits of minutes
    and seconds after a colon, the fraction optional); None for anything else: a sign,
    a unit, an exponent, ``inf``, ``1:5``."""
    match = _TIME.match(text)
    if match is None:
        return None
    if match["seconds"] is not None:
        return float(match["seconds"])
    seconds = float(match["clock_seconds"])
    if match["hours"] is not None:
        return int(match["hours"]) * 3600 + int(match["minutes"]) * 60 + seconds
    return int(match["only_minutes"]) * 60 + seconds


def read_annotations(path: Path, problems: Problems) -> list[Annotation]:
    """The good lines of ``path``, in file order; each bad one goes to ``problems``.
    DatasetError when the file cannot be read or is not UTF-8."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    found: list[Annotation] = []
    first = True
    number = 1  # the line the next record starts on
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.add(Line(Path(path), number, ""), f"not CSV: {error}")
            break
        line = Line(Path(path), number, ",".join(row))
        number = reader.line_num + 1
        # A cell an export neutralised for spreadsheets ('=x) stands for its text (=x).
        fields = [plain_cell(field.strip()).strip() for field in row]
        if not any(fields):
            continue  # a blank line
        if first:
            first = False
            if [field.lower() for field in fields] == list(COLUMNS):
                continue  # the header line
            if len(fields) == len(COLUMNS) and _all_words(fields[1:3]):
                problems.add(line, f"a header line names the columns `{','.join(COLUMNS)}`")
                continue
        annotation = _annotation(line, fields, problems)
        if annotation is not None:
            found.append(annotation)
    return found


def _all_words(fields: list[str]) -> bool:
    """Whether no field is a time: the first line is then a header, or meant as one."""
    return all(parse_time(field) is None for field in fields)


def _annotation(line: Line, fields: list[str], problems: Problems) -> Annotation | None:
    if len(fields) != len(COLUMNS):
        problems.add(
            line,
            f"expected the {len(COLUMNS)} columns `{','.join(COLUMNS)}`, found {len(fields)}"
            " (quote a field that holds a comma)",
        )
        return None
    path, start, end, label = fields
    wrong = []
    start_s, end_s = parse_time(start), parse_time(end)
    for name, text, seconds in (("start", start, start_s), ("end", end, end_s)):
        if seconds is None:
            wrong.append(
                f"{name} {text!r} is not a time: write seconds (12.5) or HH:MM:SS.mmm / MM:SS.mmm"
            )
    if start_s is not None and end_s is not None and end_s <= start_s:
        what = "ends where it starts" if end_s == start_s else "ends before it starts"
        wrong.append(f"the segment {what} ({start} to {end}): the end must come after the start")
    if not path:
        wrong.append("the path is empty")
    if not label:
        wrong.append("the label is empty")
    elif has_control(label):
        wrong.append(f"the label {label!r} holds control characters")
    if wrong:
        problems.add(line, "; ".join(wrong))
        return None
    assert start_s is not None and end_s is not None
    return Annotation(line, path, start_s, end_s, label)


def merge_overlaps(annotations: list[Annotation], problems: Problems) -> list[Segment]:
    """The segments of one video's lines, sorted by start: overlapping lines of one label
    merged (a segment of several lines), a line that overlaps a segment of another label
    sent to ``problems``. Segments that only touch (one ends where the next starts)
    stay apart."""
    segments: list[Segment] = []
    for one in sorted(annotations, key=lambda a: (a.start_s, a.end_s, a.line.number)):
        last = segments[-1] if segments else None
        if last is None or one.start_s >= last.end_s:
            segments.append(Segment(one.start_s, one.end_s, one.label, (one.line,)))
        elif one.label == last.label:
            lines = tuple(sorted((*last.lines, one.line), key=lambda line: line.number))
            segments[-1] = Segment(last.start_s, max(last.end_s, one.end_s), last.label, lines)
        else:
            numbers = [str(line.number) for line in last.lines]
            where = f"line{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"
            problems.add(
                one.line,
                f"overlaps {where} ({last.label!r}, {last.start_s:.3f} to "
                f"{last.end_s:.3f} s) with another label ({one.label!r}): one stretch of a "
                "video takes one label",
            )
    return segments
