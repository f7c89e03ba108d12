"""The synthetic motion dataset (trainer.motion_videos's videos) as a trainer dataset.

Its splits are not files: the generator's settings, kept in the dataset's manifest,
decide which video of a class is a training and which a test video in each split
(trainer.motion_videos.split_assignment), so split k is computed, and checked against the
videos on disk.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from actiontag.settings import Settings
from trainer.datasets.base import Dataset, Split, check_split, note_missing
from trainer.errors import DatasetError
from trainer.motion_videos import (
    MANIFEST,
    TEST_TAG,
    SyntheticConfig,
    SyntheticDatasetError,
    split_assignment,
    video_path,
    write_synthetic_dataset,
)

__all__ = ["Synthetic"]


class Synthetic(Dataset):
    """Generated videos whose classes differ only in motion, in ``root``.

    ``config`` says what to generate; without one, the dataset is read as the manifest
    in ``root`` describes it (a folder that trainer.motion_videos wrote).
    """

    name = "synthetic"
    pretrained_by_default = False  # Kinetics-400 weights are no help on random textures
    served = False

    def __init__(self, root: Path, config: SyntheticConfig | None = None) -> None:
        super().__init__(root)
        self._config = config

    @classmethod
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> Synthetic:
        """As ``python -m trainer`` asks for it (--synthetic-*); ValueError when an
        option is out of range."""
        try:
            width, height = (int(v) for v in args.synthetic_size.lower().split("x"))
        except ValueError:
            raise ValueError(
                f"--synthetic-size must look like 64x48, got {args.synthetic_size!r}"
            ) from None
        try:
            config = SyntheticConfig(
                num_classes=args.synthetic_classes,
                videos_per_class=args.synthetic_videos,
                frames=args.synthetic_frames,
                width=width,
                height=height,
            )
        except ValueError as error:
            raise ValueError(f"synthetic dataset: {error}") from None
        return cls(root, config)

    @property
    def config(self) -> SyntheticConfig:
        """What the videos were (or are to be) generated with."""
        if self._config is None:
            self._config = _read_manifest(self.root)
        return self._config

    def prepare(self, *, progress: bool = True) -> None:
        try:
            write_synthetic_dataset(self.root, self.config, progress=progress)
        except SyntheticDatasetError as error:
            raise DatasetError(str(error)) from error

    def split(self, k: int) -> Split:
        if k not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, not {k!r}")
        config = self.config
        classes = sorted(config.classes)  # labels: positions in the sorted names
        tags = split_assignment(config, k)
        train: list[tuple[str, int]] = []
        test: list[tuple[str, int]] = []
        missing: list[str] = []
        for label, name in enumerate(classes):
            index = config.classes.index(name)
            for n, tag in enumerate(tags[index]):
                path = video_path(self.root, config, index, n)
                relative = path.relative_to(self.videos).as_posix()
                if not path.is_file():
                    missing.append(relative)
                    continue
                (test if tag == TEST_TAG else train).append((relative, label))
        note_missing(missing, k, self.videos)
        return check_split(Split(classes, train, test, missing), k, self.videos)


def _read_manifest(root: Path) -> SyntheticConfig:
    path = root / MANIFEST
    try:
        found = json.loads(path.read_text())
        found.pop("generator")
        return SyntheticConfig(**found)
    except FileNotFoundError:
        raise DatasetError(
            f"{root} holds no synthetic dataset ({MANIFEST} is missing): run "
            "`python -m trainer --dataset synthetic` to generate it, or point --data-dir at it."
        ) from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise DatasetError(
            f"{path} cannot be read ({error}); delete {root} and run again."
        ) from None
