"""Builders of UCF101-shaped archives for tests.

UCF101 comes as `UCF101.rar`, one archive holding `UCF-101/<Class>/v_<Class>_gXX_cYY.avi`,
and `UCF101TrainTestSplits-RecognitionTask.zip`, holding `ucfTrainTestlist/classInd.txt`
(`1 ApplyEyeMakeup`: numbers from 1), `trainlist0k.txt` (`<Class>/<clip> <number>`) and
`testlist0k.txt` (`<Class>/<clip>`), with CRLF line ends. These builders make the same
shapes, small: real videos (tests/support/videos.py) packed with the test RAR 4 writer.
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

from tests.support.videos import write_video

# conftest.py loads the RAR writer (by path) before this module.
rar4 = sys.modules["_trainer_test_helpers.rar4_writer"]

SPLITS_FOLDER = "ucfTrainTestlist"
SPLITS = (1, 2, 3)


def clip_name(spelling: str, group: int, clip: int) -> str:
    return f"v_{spelling}_g{group:02d}_c{clip:02d}.avi"


def write_videos_rar(
    path: Path,
    clips: dict[str, list[str]],
    *,
    top: str = "UCF-101",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """`UCF101.rar` holding `<top>/<folder>/<clip>` for clips {folder: [clip, ...]},
    then extra {member name: bytes}."""
    entries = [rar4.Entry(f"{top}/", is_dir=True)]
    entries += [rar4.Entry(name, data) for name, data in (extra or {}).items()]
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (folder, names) in enumerate(clips.items()):
            entries.append(rar4.Entry(f"{top}/{folder}/", is_dir=True))
            for i, name in enumerate(names):
                video = write_video(Path(tmp, "clip.avi"), 10 * seed + i, frames=10, size=(32, 24))
                entries.append(rar4.Entry(f"{top}/{folder}/{name}", video.read_bytes()))
    return rar4.write_rar4(path, entries)


def is_test(clip_index: int, split: int) -> bool:
    """Clip i of each class is a test clip of split k when (i + k) % 3 == 0: with three
    clips a class, every split tests one and trains on two, and the splits differ."""
    return (clip_index + split) % 3 == 0


def split_texts(class_index: list[str], listed: dict[str, list[str]]) -> dict[str, str]:
    """{file name: text} of the seven split files, CRLF: class_index in classInd order
    (numbers from 1), listed {class as the lists spell it: [clip, ...]} split by is_test."""
    crlf = "\r\n"
    number = {name.lower(): n for n, name in enumerate(class_index, start=1)}
    texts = {"classInd.txt": "".join(f"{n} {name}{crlf}" for n, name in enumerate(class_index, 1))}
    for k in SPLITS:
        train, test = [], []
        for spelling, clips in listed.items():
            for i, clip in enumerate(clips):
                if is_test(i, k):
                    test.append(f"{spelling}/{clip}{crlf}")
                else:
                    train.append(f"{spelling}/{clip} {number[spelling.lower()]}{crlf}")
        texts[f"trainlist{k:02d}.txt"] = "".join(train)
        texts[f"testlist{k:02d}.txt"] = "".join(test)
    return texts


def write_splits_zip(
    path: Path, texts: dict[str, str], *, extra: dict[str, bytes] | None = None
) -> Path:
    """The split zip: texts {file name: text} in `ucfTrainTestlist/`, then extra
    {member name: bytes} as given (hostile names included)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(f"{SPLITS_FOLDER}/", b"")
        for name, text in texts.items():
            out.writestr(f"{SPLITS_FOLDER}/{name}", text.encode())
        for name, data in (extra or {}).items():
            out.writestr(zipfile.ZipInfo(name), data)
    return path
