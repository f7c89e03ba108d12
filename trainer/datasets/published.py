"""What the published benchmarks (HMDB51, UCF101) share: their archives are fetched from
their server or a mirror, or taken from a folder that holds them (``--archives``), and
unpacked with the configured RAR backend."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import ClassVar, Self

from actiontag.settings import Settings
from trainer.datasets.base import Dataset

__all__ = ["Published"]


class Published(Dataset):
    """A benchmark whose archives are downloaded, or found in ``archives_dir``."""

    # The Settings field that names its mirror (each benchmark has its own).
    mirror_setting: ClassVar[str]

    def __init__(
        self,
        root: Path,
        *,
        mirror: str | None = None,
        archives_dir: Path | None = None,
        rar_backend: str = "auto",
    ) -> None:
        super().__init__(root)
        self.mirror, self.archives_dir, self.rar_backend = mirror, archives_dir, rar_backend

    @classmethod
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> Self:
        """As ``python -m trainer`` asks for it: --archives, the mirror and RAR settings."""
        return cls(
            root,
            mirror=getattr(settings, cls.mirror_setting),
            archives_dir=args.archives,
            rar_backend=settings.rar_backend,
        )
