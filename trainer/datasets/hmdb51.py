"""HMDB51 on disk: fetch its two archives, unpack them, read its splits.

Layout under root (the trainer's --data-dir, `data/hmdb51` by default):

    archives/hmdb51_org.rar, archives/test_train_splits.rar   downloads
    videos/<class>/<clip>.avi                                  one folder per class
    splits/<class>_test_split<k>.txt                           153 official files
    .staging/                                                  work in progress only

`hmdb51_org.rar` is an archive of 51 archives, `<class>.rar`, each holding
`<class>/<clip>.avi`. Each class is unpacked into a temporary folder under .staging,
verified, given a `.complete` marker and only then renamed to videos/<class>, so a
class folder that exists is complete, whatever interrupted an earlier run; a rerun
skips complete classes, and a finished dataset is marked by `.complete.json` so that
preparing it again touches nothing (its archives may even have been deleted).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import rarfile
from tqdm import tqdm

from actiontag.settings import Settings, env_name
from trainer import rar
from trainer.datasets.base import Dataset, Split
from trainer.datasets.split_files import Layout, load_split, name_list, split_sha256
from trainer.download import ChecksumError, DownloadError, download, verify_file
from trainer.errors import DatasetError

__all__ = [
    "ARCHIVES",
    "HMDB51",
    "HMDB51_CLASSES",
    "HMDB51_LAYOUT",
    "HMDB51_URL",
    "MIRROR_ENV",
    "SPLITS_URL",
    "DatasetError",
    "Layout",
    "Split",
    "extract_hmdb51",
    "fetch_archives",
    "load_split",
    "prepare_hmdb51",
]

log = logging.getLogger(__name__)

# The Serre lab's own addresses, as torchvision.datasets.HMDB51 uses them.
HMDB51_URL = "https://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/hmdb51_org.rar"
SPLITS_URL = "https://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/test_train_splits.rar"
VIDEOS_ARCHIVE = "hmdb51_org.rar"
SPLITS_ARCHIVE = "test_train_splits.rar"
DEFAULT_URLS = {VIDEOS_ARCHIVE: HMDB51_URL, SPLITS_ARCHIVE: SPLITS_URL}
# file name -> (size in bytes or None, md5 or None). The splits' md5 is torchvision's;
# no published checksum exists for the videos, whose size the server announces.
ARCHIVES: dict[str, tuple[int | None, str | None]] = {
    SPLITS_ARCHIVE: (None, "15e67781e70dcfbdce2d7dbb9b3344b5"),
    VIDEOS_ARCHIVE: (None, None),
}
MIRROR_ENV = env_name("hmdb51_mirror")
# The 51 classes (per-class archives `<class>.rar`, split files `<class>_test_split<k>.txt`).
HMDB51_CLASSES = (
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive",
    "draw_sword", "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf",
    "handstand", "hit", "hug", "jump", "kick", "kick_ball", "kiss", "laugh", "pick", "pour",
    "pullup", "punch", "push", "pushup", "ride_bike", "ride_horse", "run", "shake_hands",
    "shoot_ball", "shoot_bow", "shoot_gun", "sit", "situp", "smile", "smoke", "somersault",
    "stand", "swing_baseball", "sword", "sword_exercise", "talk", "throw", "turn", "walk",
    "wave",
)  # fmt: skip
# Every official split tags 70 clips of each class for training and 30 for testing
# (3,570 and 1,530 in all): the "7030" of testTrainMulti_7030_splits.
HMDB51_LAYOUT = Layout("HMDB51", HMDB51_CLASSES, train_per_class=70, test_per_class=30)
COMPLETE = ".complete"
DATASET_COMPLETE = ".complete.json"
STAGING = ".staging"
SOURCE = ".source.json"  # which archive a staged folder was unpacked from


class HMDB51(Dataset):
    """HMDB51 in ``root``: fetched from its server or a mirror, or taken from a folder
    of its archives; its three official splits, checked against what HMDB51 holds."""

    name = "hmdb51"

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
    def from_options(cls, root: Path, args: argparse.Namespace, settings: Settings) -> HMDB51:
        """As ``python -m trainer`` asks for it: --archives, the mirror and RAR settings."""
        return cls(
            root,
            mirror=settings.hmdb51_mirror,
            archives_dir=args.archives,
            rar_backend=settings.rar_backend,
        )

    def prepare(self, *, progress: bool = True) -> None:
        prepare_hmdb51(
            self.root,
            mirror=self.mirror,
            archives_dir=self.archives_dir,
            progress=progress,
            rar_backend=self.rar_backend,
        )

    def split(self, k: int) -> Split:
        # HMDB51 must be whole: 51 classes, 70 training and 30 test clips each.
        return load_split(self.root, k, HMDB51_LAYOUT)

    def split_sha256(self, k: int) -> str:
        """Of split k's 51 files (trainer.datasets.split_files.split_sha256)."""
        return split_sha256(self.root, k)


def fetch_archives(
    dest: Path,
    *,
    mirror: str | None = None,
    archives_dir: Path | None = None,
    retries: int = 5,
    progress: bool = True,
    expected: Mapping[str, tuple[int | None, str | None]] = ARCHIVES,
) -> dict[str, Path]:
    """Make both HMDB51 archives available and verified; return {file name: path}.

    With archives_dir (--archives) nothing is downloaded: both files must be there and
    are used where they are. Otherwise they are downloaded into dest from mirror (a
    base URL: the hmdb51_mirror setting, $ACTIONTAG_HMDB51_MIRROR or --mirror), else
    the original addresses. expected
    maps each file name to its (size, md5), None where unknown. Raises DatasetError
    saying what to do when offline, a file is missing or a file is wrong.
    """
    if archives_dir is not None:
        return _given_archives(Path(archives_dir), expected)
    paths: dict[str, Path] = {}
    for name, (size, md5) in expected.items():
        url = f"{mirror.rstrip('/')}/{name}" if mirror else DEFAULT_URLS[name]
        try:
            paths[name] = download(
                url, Path(dest) / name, size=size, md5=md5, retries=retries, progress=progress
            )
        except DownloadError as error:
            raise DatasetError(_offline_advice(error, Path(dest), expected)) from error
    for path in paths.values():
        if not rarfile.is_rarfile(path):
            raise DatasetError(
                f"{path} is not a RAR archive (an error page saved by a server?). "
                "Delete it and download it again, or use another mirror."
            )
    return paths


def _given_archives(
    folder: Path, expected: Mapping[str, tuple[int | None, str | None]]
) -> dict[str, Path]:
    """The archives in folder (--archives: offline), each checked; never a download."""
    if not folder.is_dir():
        raise DatasetError(f"The archives folder {folder} (--archives) does not exist.")
    paths: dict[str, Path] = {}
    for name, (size, md5) in expected.items():
        given = folder / name
        if not given.is_file():
            raise DatasetError(
                f"{given} does not exist: --archives DIR means offline, so nothing is "
                f"downloaded and both {' and '.join(expected)} must be in {folder}. Copy "
                f"{name} there, or run without --archives to download it."
            )
        try:
            verify_file(given, size=size, md5=md5)
        except ChecksumError as error:
            raise ChecksumError(f"{error} Replace it with a good copy.") from None
        rar.check_signature(given)
        log.info("Using %s", given)
        paths[name] = given
    return paths


def prepare_hmdb51(
    root: Path,
    *,
    mirror: str | None = None,
    archives_dir: Path | None = None,
    retries: int = 5,
    progress: bool = True,
    expected: Mapping[str, tuple[int | None, str | None]] = ARCHIVES,
    layout: Layout = HMDB51_LAYOUT,
    rar_backend: str = "auto",
) -> Path:
    """Download (if needed) and unpack HMDB51 into root; return root.

    Archives are downloaded into root/archives; the keywords are fetch_archives's,
    and layout and rar_backend extract_hmdb51's. A dataset prepared before is left as it is, whether
    or not its archives remain.
    """
    root = Path(root)
    if _dataset_complete(root):
        log.info("HMDB51 is ready in %s", root)
        return root
    paths = fetch_archives(
        root / "archives",
        mirror=mirror,
        archives_dir=archives_dir,
        retries=retries,
        progress=progress,
        expected=expected,
    )
    return extract_hmdb51(
        root,
        paths[VIDEOS_ARCHIVE],
        paths[SPLITS_ARCHIVE],
        progress=progress,
        layout=layout,
        rar_backend=rar_backend,
    )


def extract_hmdb51(
    root: Path,
    videos_archive: Path,
    splits_archive: Path,
    *,
    backends: list[rar.Backend] | None = None,
    progress: bool = True,
    layout: Layout = HMDB51_LAYOUT,
    rar_backend: str = "auto",
) -> Path:
    """Unpack the nested videos archive into root/videos and the splits into root/splits
    with ``backends``, else those ``rar_backend`` names (the setting: auto, bsdtar, unar).

    Both archives must hold layout's classes (HMDB51's 51: a class archive each and
    its three split files); what is missing is named before anything is unpacked.
    """
    root = Path(root)
    if _dataset_complete(root):
        return root
    tools = backends or rar.available_backends(rar_backend)
    outer_listing = rar.list_members(Path(videos_archive))
    classes = _class_archives(outer_listing)
    _check_layout(outer_listing, set(classes), rar.list_members(Path(splits_archive)), layout)
    staging = root / STAGING
    _remove_leftovers(staging)
    staging.mkdir(parents=True, exist_ok=True)
    _unpack_splits(Path(splits_archive), root / "splits", staging, tools)
    todo = [name for name in classes if not _complete(root / "videos" / name)]
    if todo:
        outer = _unpack_outer(outer_listing, staging, tools, [classes[n] for n in todo])
        for name in tqdm(todo, desc="classes", unit="class", disable=not progress):
            _unpack_class(outer / classes[name], name, root / "videos", staging, tools)
    shutil.rmtree(staging)
    _write_json(root / DATASET_COMPLETE, {"classes": sorted(classes)})
    log.info("HMDB51 is ready in %s: %d classes", root, len(classes))
    return root


def _class_archives(outer: rar.Listing) -> dict[str, str]:
    """{class name: member name} of the per-class archives inside the outer one."""
    classes: dict[str, str] = {}
    for member in outer.files:
        path = PurePosixPath(member.name)
        if path.suffix.lower() != ".rar":
            continue
        if path.stem.startswith(".") or path.stem in classes:
            raise DatasetError(f"{outer.path}: {member.name!r} is no usable class archive name.")
        classes[path.stem] = member.name
    if not classes:
        raise DatasetError(
            f"{outer.path} holds no per-class .rar archives: it is not hmdb51_org.rar."
        )
    return classes


def _check_layout(
    outer: rar.Listing, classes: set[str], splits: rar.Listing, layout: Layout
) -> None:
    """Raise DatasetError naming the classes / split files the archives lack (or add)."""
    if layout.classes is None:
        return
    wanted = set(layout.classes)
    problems = []
    if missing := sorted(wanted - classes):
        problems.append(
            f"{outer.path.name} lacks the archives of {len(missing)} of {layout.name}'s "
            f"{len(wanted)} classes: {name_list(missing)}"
        )
    if unknown := sorted(classes - wanted):
        problems.append(
            f"{outer.path.name} holds classes {layout.name} does not have: {name_list(unknown)}"
        )
    present = {PurePosixPath(m.name).name for m in splits.files}
    needed = [f"{name}_test_split{k}.txt" for name in sorted(wanted) for k in (1, 2, 3)]
    if lacking := [name for name in needed if name not in present]:
        problems.append(
            f"{splits.path.name} lacks {len(lacking)} split files: {name_list(lacking)}"
        )
    if problems:
        raise DatasetError(
            f"These are not {layout.name}'s complete archives: {'; '.join(problems)}. Nothing "
            "was unpacked; get the original hmdb51_org.rar and test_train_splits.rar again."
        )


def _unpack_outer(
    outer: rar.Listing, staging: Path, tools: list[rar.Backend], wanted: list[str]
) -> Path:
    """The folder holding the wanted per-class archives: staging/outer, unpacked if need be.

    An earlier interrupted run may have left it there, unpacked from the same file;
    classes finished since then have had their archives deleted, the others remain.
    """
    folder = staging / "outer"
    status = outer.path.stat()
    source = {"archive": str(outer.path.resolve()), "size": status.st_size}
    source["mtime_ns"] = status.st_mtime_ns
    if _read_json(folder / SOURCE) == source and all((folder / n).is_file() for n in wanted):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    sizes = {m.name: m.size for m in outer.files}
    # Each class's videos replace its archive once done, so the peak is about the
    # unpacked archives plus the biggest class's videos (AVI barely compresses).
    needed = outer.unpacked_size + max(sizes[name] for name in wanted)
    rar.check_free_space(staging, needed, what=f"{outer.path.name} and its classes")
    with _atomic_folder(folder) as work:
        rar.extract(outer.path, work / "unpacked", backends=tools)
        _write_json(work / "unpacked" / SOURCE, source)
        (work / "unpacked").rename(work / "done")
    return folder


def _unpack_class(
    archive: Path, name: str, videos: Path, staging: Path, tools: list[rar.Backend]
) -> None:
    """Unpack one class archive and move it into videos/<name> only once it is whole."""
    with _atomic_folder(videos / name, staging=staging) as work:
        listing = rar.extract(archive, work / "unpacked", backends=tools)
        content = _strip_common_folder(work / "unpacked", listing)
        _write_json(
            content / COMPLETE,
            {"archive": archive.name, "files": len(listing.files), "bytes": listing.unpacked_size},
        )
        content.rename(work / "done")
    archive.unlink()  # its videos are in place; the archive is no longer needed


def _unpack_splits(archive: Path, splits: Path, staging: Path, tools: list[rar.Backend]) -> None:
    """Unpack the split files, flattened, into root/splits."""
    if _complete(splits):
        return
    with _atomic_folder(splits, staging=staging) as work:
        rar.extract(archive, work / "unpacked", backends=tools)
        found = sorted((work / "unpacked").rglob("*_test_split*.txt"))
        if not found:
            raise DatasetError(f"{archive} holds no `<class>_test_split<k>.txt` files.")
        (work / "done").mkdir()
        for path in found:
            target = work / "done" / path.name
            if target.exists():
                raise DatasetError(f"{archive} holds {path.name} twice.")
            path.rename(target)
        _write_json(work / "done" / COMPLETE, {"archive": archive.name, "files": len(found)})


class _atomic_folder:
    """Build a folder under a temporary name; rename it into place only on success.

    The body builds `work / "done"` in the temporary folder `work` (made in staging,
    else beside final); on any error `work` is removed, so final never exists half-made.
    """

    def __init__(self, final: Path, *, staging: Path | None = None) -> None:
        self.final = final
        self.staging = staging or final.parent

    def __enter__(self) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.staging))
        return self.work

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self.final.parent.mkdir(parents=True, exist_ok=True)
                (self.work / "done").rename(self.final)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def _strip_common_folder(folder: Path, listing: rar.Listing) -> Path:
    """The folder holding the class's clips: `<class>.rar` nests them in `<class>/`."""
    tops = {PurePosixPath(m.name).parts[0] for m in listing.members}
    nested = all(len(PurePosixPath(m.name).parts) > 1 for m in listing.files)
    if len(tops) == 1 and nested:
        return folder / tops.pop()
    return folder


def _complete(folder: Path) -> bool:
    if (folder / COMPLETE).is_file():
        return True
    if folder.exists():
        raise DatasetError(
            f"{folder} exists but was not completed by actiontag (no {COMPLETE} marker): "
            "move it away or delete it, then run again."
        )
    return False


def _dataset_complete(root: Path) -> bool:
    recorded = _read_json(root / DATASET_COMPLETE)
    classes = recorded.get("classes") if isinstance(recorded, dict) else None
    if not isinstance(classes, list):
        return False
    folders = [root / "splits"] + [root / "videos" / name for name in classes]
    return all((folder / COMPLETE).is_file() for folder in folders)


def _remove_leftovers(staging: Path) -> None:
    """Remove what an interrupted run left in staging, except unpacked class archives."""
    if not staging.exists():
        return
    for path in staging.iterdir():
        if path.name != "outer":
            log.info("Removing %s, left by an interrupted run", path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _offline_advice(
    error: DownloadError, dest: Path, expected: Mapping[str, tuple[int | None, str | None]]
) -> str:
    names = " and ".join(expected)
    return (
        f"{error}\nHMDB51's server is often down, or this machine may be offline. Either\n"
        f"  - put {names} in a folder and pass --archives DIR (or copy them into {dest}), or\n"
        f"  - set {MIRROR_ENV}=<base URL> (or pass --mirror URL) to a server that has them."
    )


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=1) + "\n")
