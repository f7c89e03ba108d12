"""A folder of the user's own videos as the trainer's folders and list datasets read
it: ``root/<class>/<class>_<n>.avi``, small real encoded videos (tests.support.videos)."""

from __future__ import annotations

from pathlib import Path

from tests.support.videos import write_video


def write_class_folders(root: Path, videos: dict[str, int], frames: int = 12) -> list[str]:
    """``videos[name]`` MJPG AVIs in ``root/<name>/`` for each class; their paths
    relative to root, sorted."""
    paths = []
    for index, (name, count) in enumerate(sorted(videos.items())):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(count):
            write_video(folder / f"{name}_{n}.avi", seed=100 * index + n, frames=frames,
                        size=(32, 24))  # fmt: skip
            paths.append(f"{name}/{name}_{n}.avi")
    return sorted(paths)
