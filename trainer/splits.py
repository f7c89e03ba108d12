"""HMDB51's official train/test splits, read from its split files.

Each class has one file per split, `<class>_test_split<k>.txt`, with lines
`<clip> <tag>`: tag 1 = train, 2 = test, 0 = unused. The official files end every
line with a space; CRLF line ends and blank lines are tolerated too. Clip names are
taken literally (they hold `( ) ! # [ ] & + ; ~ @` and may start with `-` or `#`) and
are only ever joined to paths, never given to a shell or a glob.

Labels follow Python's `sorted` of the class names, so `kick` (label 2 of the four
test fixtures) comes before `kick_ball`; sorting the *file names* instead would put
`kick_ball_test_split1.txt` first, which is why classes are never taken from a file
listing's order. Checkpoints store the class list, so label order is never guessed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import DatasetError

log = logging.getLogger(__name__)

TRAIN, TEST, UNUSED = 1, 2, 0
SPLITS = (1, 2, 3)
_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")


@dataclass(frozen=True)
class Split:
    """One official split: class names in label order and (path, label) lists.

    Paths are relative to the videos folder (`<class>/<clip>`). Clips listed in the
    split files but absent on disk are left out of train/test and listed in missing.
    """

    classes: list[str]
    train: list[tuple[str, int]]
    test: list[tuple[str, int]]
    missing: list[str]


def load_split(root: Path, split: int) -> Split:
    """Read split k of the dataset in root (root/splits/*.txt, videos in root/videos)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    root = Path(root)
    split_files = _split_files(root / "splits", split)
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
        for clip, tag in parse_split_file(split_files[name]):
            if tag == UNUSED:
                continue
            relative = f"{name}/{clip}"
            if not (videos / name / clip).is_file():
                missing.append(relative)
                continue
            (train if tag == TRAIN else test).append((relative, label))
    if missing:
        log.warning(
            "%d clips of split %d are listed but not in %s and are left out (e.g. %s)",
            len(missing),
            split,
            videos,
            ", ".join(missing[:3]),
        )
    if not train or not test:
        raise DatasetError(
            f"Split {split} has {len(train)} training and {len(test)} test clips on disk "
            f"in {videos} ({len(missing)} listed clips are missing): the videos are not "
            "there. Unpack HMDB51 again (`python -m trainer` does it)."
        )
    return Split(classes=classes, train=train, test=test, missing=missing)


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


def _split_files(folder: Path, split: int) -> dict[str, Path]:
    files = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _SPLIT_FILE.match(path.name)
            if match and int(match["k"]) == split:
                files[match["cls"]] = path
    if not files:
        raise DatasetError(
            f"No split files `<class>_test_split{split}.txt` in {folder}. Run "
            "`python -m trainer` to download HMDB51 and its splits, or point --data-dir "
            "at a folder holding videos/ and splits/."
        )
    return files
