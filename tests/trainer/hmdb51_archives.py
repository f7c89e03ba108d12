"""Builders of HMDB51-shaped archives for tests.

HMDB51 comes as `hmdb51_org.rar`, an archive of 51 archives `<class>.rar`, each holding
`<class>/<clip>.avi`; and `test_train_splits.rar`, holding
`testTrainMulti_7030_splits/<class>_test_split<k>.txt` with lines `<clip> <tag> `
(tag 1 train, 2 test, 0 unused; note the trailing space). These builders make the same
shapes, small: real AVI videos encoded by OpenCV, packed with the test RAR 4 writer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from trainer.datasets.hmdb51 import HMDB51_CLASSES

# conftest.py loads the RAR writer (by path) before this module.
rar4 = sys.modules["_trainer_test_helpers.rar4_writer"]

SPLITS_FOLDER = "testTrainMulti_7030_splits"
# Tag of clip i in split k: TAGS[(i + k) % 4], so every split differs and has all three.
TAGS = (1, 2, 1, 0)


def encode_video(seed: int, frames: int = 8, width: int = 32, height: int = 24) -> bytes:
    """An XVID AVI (HMDB51's codec family) of a square moving across a grey background."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp, "clip.avi"))
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"XVID"), 25, (width, height))
        assert writer.isOpened(), "OpenCV cannot write XVID AVI files here"
        for t in range(frames):
            frame = np.full((height, width, 3), 60 + 10 * (seed % 10), np.uint8)
            x = (seed + 3 * t) % (width - 8)
            frame[8:16, x : x + 8] = 255
            writer.write(frame)
        writer.release()
        return Path(path).read_bytes()


SPLITS = (1, 2, 3)


def split_text(clips: list[str], tags: list[int]) -> str:
    return "".join(f"{clip} {tag} \n" for clip, tag in zip(clips, tags, strict=True))


def tag(clip_index: int, split: int) -> int:
    return TAGS[(clip_index + split) % len(TAGS)]


def class_archive(
    path: Path, name: str, clips: list[str], *, corrupt_member: int | None = None
) -> Path:
    """`<name>.rar` holding `<name>/<clip>` videos; corrupt_member gets a wrong CRC."""
    entries = [rar4.Entry(f"{name}/", is_dir=True)]
    for i, clip in enumerate(clips):
        crc = 0x0BADC0DE if i == corrupt_member else None
        entries.append(rar4.Entry(f"{name}/{clip}", encode_video(seed=i), crc=crc))
    return rar4.write_rar4(path, entries)


def split_file_text(clips: list[str], split: int) -> str:
    return "".join(f"{clip} {tag(i, split)} \n" for i, clip in enumerate(clips))


def official_shape(split: int) -> tuple[dict[str, list[str]], dict[str, dict[int, str]]]:
    """HMDB51's shape, small: (classes, split_texts) for build().

    Each of the 51 classes has split files listing 100 clips, 70 tagged for training
    and 30 for testing in every split, as the official files do; only one training
    and one test clip of `split` exist as videos (the others are "missing on disk").
    """
    classes: dict[str, list[str]] = {}
    texts: dict[str, dict[int, str]] = {}
    for name in HMDB51_CLASSES:
        clips = [f"{name}_{i:03d}.avi" for i in range(100)]
        # Split k tags clips 30(k-1) .. 30(k-1)+69 (wrapping round) 1, the others 2.
        tags = {k: [1 if (i - 30 * (k - 1)) % 100 < 70 else 2 for i in range(100)] for k in SPLITS}
        texts[name] = {k: split_text(clips, tags[k]) for k in SPLITS}
        on_disk = [tags[split].index(1), tags[split].index(2)]
        classes[name] = [clips[i] for i in on_disk]
    return classes, texts


def build(
    folder: Path,
    classes: dict[str, list[str]],
    *,
    corrupt: tuple[str, int] | None = None,
    split_texts: dict[str, dict[int, str]] | None = None,
) -> tuple[Path, Path]:
    """Write hmdb51_org.rar and test_train_splits.rar for classes {name: [clip, ...]}.

    corrupt=(class, i) damages clip i of that class (its CRC is wrong), as a
    download cut short or a bad disk would. split_texts {class: {k: text}} replaces
    the split files' text (default: every clip, tagged by tag()). Returns (videos
    archive, splits archive).
    """
    folder.mkdir(parents=True, exist_ok=True)
    inner_entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, clips in classes.items():
            bad = corrupt[1] if corrupt and corrupt[0] == name else None
            inner = class_archive(Path(tmp, f"{name}.rar"), name, clips, corrupt_member=bad)
            inner_entries.append(rar4.Entry(f"{name}.rar", inner.read_bytes()))
    videos = rar4.write_rar4(folder / "hmdb51_org.rar", inner_entries)
    split_entries = [rar4.Entry(f"{SPLITS_FOLDER}/", is_dir=True)]
    for name, clips in classes.items():
        for split in (1, 2, 3):
            text = (
                split_texts[name][split] if split_texts else split_file_text(clips, split)
            ).encode()
            split_entries.append(rar4.Entry(f"{SPLITS_FOLDER}/{name}_test_split{split}.txt", text))
    splits = rar4.write_rar4(folder / "test_train_splits.rar", split_entries)
    return videos, splits
