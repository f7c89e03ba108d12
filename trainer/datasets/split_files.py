"""Split files in HMDB51's format: a dataset's train/test splits, one file per class.

Each class has one file per split, `<class>_test_split<k>.txt`, with lines
`<clip> <tag>`: tag 1 = train, 2 = test, 0 = unused. The official files end every
line with a space; CRLF line ends and blank lines are tolerated too. Clip names are
taken literally (they hold `( ) ! # [ ] & + ; ~ @` and may start with `-` or `#`) and
are only ever joined to paths, never given to a shell or a glob.

Labels follow Python's `sorted` of the class names, so `kick` (label 2 of the four
test fixtures) comes before `kick_ball`; sorting the *file names* instead would put
`kick_ball_test_split1.txt` first, which is why classes are never taken from a file
listing's order. Checkpoints store the class list, so label order is never guessed.

Because labels are positions in that sorted list, a class without a file for the
requested split would shift every later label: every class named by any split file
must have one for each split, and every class needs training and test clips. A
`Layout` adds what one dataset is known to hold (HMDB51: its 51 classes, 70 training
and 30 test clips per class in every split; see trainer.datasets.hmdb51.HMDB51_LAYOUT).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from trainer.datasets.base import Split, note_missing
from trainer.errors import DatasetError

TRAIN, TEST, UNUSED = 1, 2, 0
SPLITS = (1, 2, 3)
_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")


@dataclass(frozen=True)
class Layout:
    """What a complete dataset's split files hold; None checks nothing beyond the rules.

    classes: the class names, every one required and no other; train_per_class and
    test_per_class: how many clips each class's split file tags 1 and 2.
    """

    name: str
    classes: tuple[str, ...] | None = None
    train_per_class: int | None = None
    test_per_class: int | None = None


def load_split(root: Path, split: int, layout: Layout | None = None) -> Split:
    """Read split k of the dataset in root (root/splits/*.txt, videos in root/videos).

    Raises DatasetError naming what is missing: a class's file for this split, a class
    without training or test clips, or (given a layout) a class or clip count it lacks.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    root = Path(root)
    split_files = _split_files(root / "splits", split)
    _check_classes(root / "splits", split, set(split_files), layout)
    videos = root / "videos"
    if not videos.is_dir():
        raise DatasetError(
            f"{videos} does not exist: the videos have not been unpacked. Run "
            "`python -m trainer` to download and unpack HMDB51, or point --data-dir at it."
        )
    classes = sorted(split_files)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    missing: list[str] = []
    for label, name in enumerate(classes):
        entries = parse_split_file(split_files[name])
        _check_counts(split_files[name], entries, layout)
        for clip, tag in entries:
            if tag == UNUSED:
                continue
            relative = f"{name}/{clip}"
            if not (videos / name / clip).is_file():
                missing.append(relative)
                continue
            (train if tag == TRAIN else test).append((relative, label))
    note_missing(missing, split, videos)
    if not train or not test:
        raise DatasetError(
            f"Split {split} has {len(train)} training and {len(test)} test clips on disk "
            f"in {videos} ({len(missing)} listed clips are missing): the videos are not "
            "there. Unpack HMDB51 again (`python -m trainer` does it)."
        )
    for label, name in enumerate(classes):
        for kind, items in (("training", train), ("test", test)):
            if not any(y == label for _, y in items):
                raise DatasetError(
                    f"Class {name!r} has no {kind} clip of split {split} in {videos / name} "
                    f"(listed in {split_files[name].name}, missing on disk): it could not be "
                    "learnt or measured. Unpack the dataset again."
                )
    return Split(classes=classes, train=train, test=test, missing=missing)


def split_sha256(root: Path, split: int) -> str:
    """sha256 of split k's files (root/splits/*_test_split<k>.txt) one after the other,
    in the byte order of their names: ``LC_ALL=C cat splits/*_test_split1.txt |
    sha256sum`` gives the same."""
    digest = hashlib.sha256()
    for path in sorted(_split_files(Path(root) / "splits", split).values(), key=_name_bytes):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _name_bytes(path: Path) -> bytes:
    return os.fsencode(path.name)


def _check_classes(folder: Path, split: int, classes: set[str], layout: Layout | None) -> None:
    """Every class has a file for this split (and, given a layout, exactly its classes)."""
    others = {name for k in SPLITS if k != split for name in _split_files(folder, k, quiet=True)}
    lacking = sorted(others - classes)
    if lacking:
        raise DatasetError(
            f"{folder} has no `<class>_test_split{split}.txt` for {name_list(lacking)}, which "
            "have files for other splits: the labels of the other classes would shift. "
            "Restore the missing files (unpack the split files again)."
        )
    if layout is None or layout.classes is None:
        return
    missing = sorted(set(layout.classes) - classes)
    unknown = sorted(classes - set(layout.classes))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"no `<class>_test_split{split}.txt` for {name_list(missing)}")
        if unknown:
            problems.append(f"files for classes {layout.name} does not have: {name_list(unknown)}")
        raise DatasetError(
            f"{folder} is not {layout.name}'s {len(layout.classes)} classes: "
            f"{'; '.join(problems)}. Unpack {layout.name}'s split files again."
        )


def _check_counts(path: Path, entries: list[tuple[str, int]], layout: Layout | None) -> None:
    """A class's split file tags training and test clips (as many as the layout says)."""
    train = sum(1 for _, tag in entries if tag == TRAIN)
    test = sum(1 for _, tag in entries if tag == TEST)
    if not train or not test:
        raise DatasetError(
            f"{path} tags {train} training (1) and {test} test (2) clips: every class "
            "needs both. Restore the original split file."
        )
    wanted = (layout.train_per_class, layout.test_per_class) if layout else (None, None)
    if any(n is not None and n != got for n, got in zip(wanted, (train, test), strict=True)):
        raise DatasetError(
            f"{path} tags {train} training and {test} test clips; {layout.name}'s official "
            f"split files tag {wanted[0]} and {wanted[1]}. Restore the original split file."
        )


def name_list(names: list[str], shown: int = 10) -> str:
    """Names for a message, repr-quoted (they come from files or archives), at most shown."""
    text = ", ".join(repr(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def parse_split_file(path: Path) -> list[tuple[str, int]]:
    """The (clip name, tag) lines of one split file, in file order."""
    entries: list[tuple[str, int]] = []
    seen: set[str] = set()
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.rstrip().rsplit(maxsplit=1)
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) != 2 or fields[1] not in {"0", "1", "2"}:
            raise DatasetError(f"{where}: expected `<clip> <0|1|2>`, got {line!r}.")
        clip, tag = fields[0], int(fields[1])
        if "/" in clip or "\\" in clip or "\0" in clip or clip in {".", ".."}:
            raise DatasetError(f"{where}: {clip!r} is not a file name.")
        if clip in seen:
            raise DatasetError(f"{where}: {clip!r} is listed twice.")
        seen.add(clip)
        entries.append((clip, tag))
    return entries


def _split_files(folder: Path, split: int, *, quiet: bool = False) -> dict[str, Path]:
    files = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _SPLIT_FILE.match(path.name)
            if match and int(match["k"]) == split:
                files[match["cls"]] = path
    if not files and not quiet:
        raise DatasetError(
            f"No split files `<class>_test_split{split}.txt` in {folder}. Run "
            "`python -m trainer` to download HMDB51 and its splits, or point --data-dir "
            "at a folder holding videos/ and splits/."
        )
    return files
