"""UCF101's official split files, read and checked: ``classInd.txt`` and
``trainlist0k.txt`` / ``testlist0k.txt`` for the splits k = 1, 2, 3.

    classInd.txt      `1 ApplyEyeMakeup` ... `101 YoYo`: class numbers from 1
    trainlist01.txt   `ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1`: path, class number
    testlist01.txt    `ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`: the path only

The official files end their lines with CRLF; blank lines and a byte-order mark are
tolerated too (trainer.datasets.line_files). A trainlist's class number is only a
check: it must name the class of the path's folder. Labels are not these numbers but
positions in the sorted class names (trainer.datasets.base), the same rule as for every
dataset; checkpoints store the class list. A path's folder may be spelt with other case
than classInd.txt spells its class; it is matched regardless of case, and said so.

Every bad line is reported with its file and line number, all at once. Then the whole
is checked: every class has training and test clips in every split, and, for the
official files (a classInd.txt of UCF101's 101 classes), the official counts of
:data:`UCF101_COUNTS`; when they differ the message names the clips that the other
splits list and this one lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from trainer.datasets.line_files import Line, Problems
from trainer.datasets.split_files import name_list
from trainer.errors import DatasetError

__all__ = [
    "CLASS_INDEX",
    "SPLITS",
    "SPLIT_FILES",
    "UCF101_COUNTS",
    "Counts",
    "Entry",
    "SplitLists",
    "parse_split_lists",
    "test_list",
    "train_list",
]

log = logging.getLogger(__name__)

CLASS_INDEX = "classInd.txt"
SPLITS = (1, 2, 3)
# The official trainlist01.txt is under half a MiB: anything far bigger is not one.
MAX_FILE_BYTES = 8 << 20


def train_list(k: int) -> str:
    return f"trainlist{k:02d}.txt"


def test_list(k: int) -> str:
    return f"testlist{k:02d}.txt"


SPLIT_FILES = (CLASS_INDEX, *(name for k in SPLITS for name in (train_list(k), test_list(k))))


@dataclass(frozen=True)
class Counts:
    """What a dataset's official split files hold; checked when classInd.txt names
    ``classes`` classes. per_split: k -> (training clips, test clips); clips: all
    clips the three splits list (each split lists every clip once)."""

    name: str
    classes: int
    clips: int
    per_split: Mapping[int, tuple[int, int]]


# As the split zip's files list them (and as published with the dataset).
UCF101_COUNTS = Counts(
    "UCF101",
    classes=101,
    clips=13320,
    per_split={1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)},
)


@dataclass(frozen=True)
class Entry:
    """One clip a list names: its class as classInd.txt spells it, its path as written."""

    class_name: str
    path: str  # `<class folder>/<clip>`
    line: Line


@dataclass(frozen=True)
class SplitLists:
    """The split files, checked: classInd's classes in its order, and each split's
    (training, test) entries in file order."""

    classes: tuple[str, ...]
    splits: Mapping[int, tuple[list[Entry], list[Entry]]]


def parse_split_lists(
    files: Mapping[str, list[Line]], counts: Counts = UCF101_COUNTS
) -> SplitLists:
    """The split files of ``files`` ({file name of SPLIT_FILES: its lines}) read and
    checked; DatasetError listing every bad line, else naming what the whole lacks."""
    problems = Problems()
    classes = _class_index(files[CLASS_INDEX], problems)
    by_lower = {name.lower(): name for name in classes.values()}
    respelt: dict[str, str] = {}
    splits: dict[int, tuple[list[Entry], list[Entry]]] = {}
    for k in SPLITS:
        train = _entries(files[train_list(k)], classes, by_lower, respelt, problems, True)
        test = _entries(files[test_list(k)], classes, by_lower, respelt, problems, False)
        training = {entry.path.lower() for entry in train}
        for entry in test:
            if entry.path.lower() in training:
                problems.add(entry.line, f"{entry.path} is also in {train_list(k)}")
        splits[k] = (train, test)
    problems.raise_if_any(
        "These are not UCF101's official split files: get "
        "UCF101TrainTestSplits-RecognitionTask.zip again (or correct the lines named)."
    )
    for spelt, name in sorted(respelt.items()):
        log.info(
            "The split lists spell the class %r as %r: matched regardless of case", name, spelt
        )
    lists = SplitLists(tuple(classes[n] for n in sorted(classes)), splits)
    _check_classes_in_every_split(lists)
    _check_counts(lists, counts)
    return lists


def _class_index(lines: list[Line], problems: Problems) -> dict[int, str]:
    """{number: class name} of classInd.txt, numbered from 1 without gaps."""
    classes: dict[int, str] = {}
    where: dict[int, Line] = {}
    seen: dict[str, str] = {}
    for line in lines:
        fields = line.text.split()
        if len(fields) != 2 or not fields[0].isdigit():
            problems.add(line, f"expected `<number> <class>`, got {line.text!r}")
            continue
        number, name = int(fields[0]), fields[1]
        if not _is_folder_name(name):
            problems.add(line, f"{name!r} is not a folder name")
        elif number in classes:
            problems.add(line, f"class number {number} is given twice")
        elif name.lower() in seen:
            problems.add(line, f"class {name!r} is given twice (as {seen[name.lower()]!r})")
        else:
            classes[number], where[number], seen[name.lower()] = name, line, name
    if not classes and not len(problems):
        raise DatasetError(f"{CLASS_INDEX} names no class: get the split files again.")
    for number in sorted(classes):
        if not 1 <= number <= len(classes):
            problems.add(
                where[number],
                f"class number {number}: the {len(classes)} classes are numbered 1 to "
                f"{len(classes)}, from 1 without gaps",
            )
    return classes


def _entries(
    lines: list[Line],
    classes: Mapping[int, str],
    by_lower: Mapping[str, str],
    respelt: dict[str, str],
    problems: Problems,
    labelled: bool,
) -> list[Entry]:
    entries: list[Entry] = []
    seen: set[str] = set()
    for line in lines:
        fields = line.text.rsplit(None, 1)
        label: str | None = None
        if len(fields) == 2 and (labelled or fields[1].isdigit()):
            path, label = fields
        elif labelled:
            problems.add(line, f"expected `<class>/<clip> <class number>`, got {line.text!r}")
            continue
        else:
            path = line.text
        parts = path.split("/")
        if len(parts) != 2 or not all(_is_folder_name(p) for p in parts):
            problems.add(line, f"expected a path `<class>/<clip>`, got {path!r}")
            continue
        folder = parts[0]
        name = by_lower.get(folder.lower())
        if name is None:
            problems.add(line, f"{path} lies in {folder!r}, which is no class of {CLASS_INDEX}")
            continue
        if name != folder:
            respelt[folder] = name
        if label is not None:
            if not label.isdigit() or int(label) not in classes:
                problems.add(line, f"class number {label!r} is not in {CLASS_INDEX}")
                continue
            if classes[int(label)] != name:
                problems.add(
                    line,
                    f"class number {label} is {classes[int(label)]!r} in {CLASS_INDEX}, but "
                    f"{path} lies in the folder of {name!r}",
                )
                continue
        if path.lower() in seen:
            problems.add(line, f"{path} is listed twice")
            continue
        seen.add(path.lower())
        entries.append(Entry(name, path, line))
    return entries


def _is_folder_name(text: str) -> bool:
    return bool(text) and text not in {".", ".."} and not any(c in text for c in "\\/\0")


def _check_classes_in_every_split(lists: SplitLists) -> None:
    """A class without training or test clips in some split could not be learnt or
    measured on it: name each such gap."""
    gaps = []
    for k, (train, test) in lists.splits.items():
        for kind, entries, file in (
            ("training", train, train_list(k)),
            ("test", test, test_list(k)),
        ):
            present = {entry.class_name for entry in entries}
            if lacking := [name for name in lists.classes if name not in present]:
                gaps.append(f"{file} lists no {kind} clip of {name_list(lacking)}")
    if gaps:
        raise DatasetError(
            f"Every class needs training and test clips in every split, but {'; '.join(gaps)}. "
            "Get UCF101TrainTestSplits-RecognitionTask.zip again."
        )


def _check_counts(lists: SplitLists, counts: Counts) -> None:
    """The official numbers, for the official files (classInd.txt of counts.classes
    classes); a classInd.txt of other classes is some other dataset, said so."""
    if len(lists.classes) != counts.classes:
        log.warning(
            "%s names %d classes, not %s's %d: these are not %s's official split files, so "
            "their clip counts are not checked, and results on them do not compare with "
            "published %s figures",
            CLASS_INDEX,
            len(lists.classes),
            counts.name,
            counts.classes,
            counts.name,
            counts.name,
        )
        return
    listed = {
        k: {e.path.lower(): e.path for e in train + test}
        for k, (train, test) in lists.splits.items()
    }
    every = {key: path for paths in listed.values() for key, path in paths.items()}
    problems = []
    for k, (train, test) in lists.splits.items():
        wanted = counts.per_split[k]
        if (len(train), len(test)) != wanted:
            lacking = sorted(every[key] for key in every.keys() - listed[k].keys())
            problem = (
                f"split {k} lists {len(train)} training and {len(test)} test clips, the "
                f"official {wanted[0]} and {wanted[1]}"
            )
            if lacking:
                problem += f" (it lacks {len(lacking)} the other splits list: {name_list(lacking)})"
            problems.append(problem)
    if len(every) != counts.clips:
        problems.append(
            f"the splits list {len(every)} clips in all, {counts.name} has {counts.clips}"
        )
    if problems:
        raise DatasetError(
            f"These are not {counts.name}'s official split files: {'; '.join(problems)}. "
            "Get UCF101TrainTestSplits-RecognitionTask.zip again."
        )
