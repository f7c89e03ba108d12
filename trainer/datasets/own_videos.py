"""What the datasets of the user's own videos share: one split, paths relative to the
folder given as ``--data-dir``, read once and logged as an :class:`Inventory`."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from actiontag.text import escape_control
from trainer.datasets.base import Dataset, Split
from trainer.datasets.inventory import Inventory
from trainer.errors import DatasetError

__all__ = ["OwnVideos"]


class OwnVideos(Dataset):
    """A dataset of videos already on disk under ``root``: nothing to download."""

    splits = (1,)
    served = False  # a practice run never replaces the served HMDB51 model in runs/
    pretrained_by_default = True  # Kinetics-400 weights help on real footage
    # What the folder --data-dir names holds, for the error when it is not a folder.
    root_holds: ClassVar[str]

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._found: Inventory | None = None

    @property
    def videos(self) -> Path:
        return self.root

    def prepare(self, *, progress: bool = True) -> None:
        if not self.root.is_dir():
            raise DatasetError(
                f"{escape_control(self.root)} is not a folder: point --data-dir at the folder "
                f"{self.root_holds}."
            )

    def split(self, k: int) -> Split:
        if k not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, not {k!r}")
        return self.inventory().split

    def inventory(self) -> Inventory:
        """What the dataset found, read (and logged) the first time it is asked for."""
        if self._found is None:
            self._found = self._take_inventory()
            self._found.log()
        return self._found

    @abstractmethod
    def _take_inventory(self) -> Inventory:
        """Read the videos and their split from disk; DatasetError for what is wrong."""
