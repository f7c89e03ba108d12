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

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from actiontag.settings import env_name
from trainer import rar
from trainer.datasets.base import Split
from trainer.datasets.fetching import Archive, ArchiveSet, fetch
from trainer.datasets.published import Published
from trainer.datasets.split_files import Layout, load_split, name_list, split_sha256
from trainer.datasets.unpacking import (
    COMPLETE,
    DATASET_COMPLETE,
    STAGING,
    AtomicFolder,
    dataset_complete,
    is_complete,
    remove_leftovers,
    unpack_once,
    write_json,
)
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
OUTER = "outer"  # in .staging: hmdb51_org.rar unpacked, its class archives taken out one by one


class HMDB51(Published):
    """HMDB51 in ``root``: fetched from its server or a mirror, or taken from a folder
    of its archives; its three official splits, checked against what HMDB51 holds."""

    name = "hmdb51"
    mirror_setting = "hmdb51_mirror"

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
    wanted = ArchiveSet(
        "HMDB51",
        tuple(
            Archive(name, DEFAULT_URLS[name], rar.check_signature, size=size, md5=md5)
            for name, (size, md5) in expected.items()
        ),
        mirror_setting="hmdb51_mirror",
        server_note="HMDB51's server is often down, or this machine may be offline.",
    )
    return fetch(
        wanted,
        dest,
        mirror=mirror,
        archives_dir=archives_dir,
        retries=retries,
        progress=progress,
    )


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
    if dataset_complete(root):
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
    if dataset_complete(root):
        return root
    tools = backends or rar.available_backends(rar_backend)
    outer_listing = rar.list_members(Path(videos_archive))
    classes = _class_archives(outer_listing)
    _check_layout(outer_listing, set(classes), rar.list_members(Path(splits_archive)), layout)
    staging = root / STAGING
    remove_leftovers(staging, keep=[OUTER])
    staging.mkdir(parents=True, exist_ok=True)
    _unpack_splits(Path(splits_archive), root / "splits", staging, tools)
    todo = [name for name in classes if not is_complete(root / "videos" / name)]
    if todo:
        outer = _unpack_outer(outer_listing, staging, tools, [classes[n] for n in todo])
        for name in tqdm(todo, desc="classes", unit="class", disable=not progress):
            _unpack_class(outer / classes[name], name, root / "videos", staging, tools)
    shutil.rmtree(staging)
    write_json(root / DATASET_COMPLETE, {"classes": sorted(classes)})
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
    """The folder holding the wanted per-class archives: staging/outer, unpacked if need be."""
    sizes = {m.name: m.size for m in outer.files}
    # Each class's videos replace its archive once done, so the peak is about the
    # unpacked archives plus the biggest class's videos (AVI barely compresses).
    return unpack_once(
        outer,
        staging / OUTER,
        tools,
        wanted,
        extra_bytes=max(sizes[name] for name in wanted),
        what=f"{outer.path.name} and its classes",
    )


def _unpack_class(
    archive: Path, name: str, videos: Path, staging: Path, tools: list[rar.Backend]
) -> None:
    """Unpack one class archive and move it into videos/<name> only once it is whole."""
    with AtomicFolder(videos / name, staging=staging) as work:
        listing = rar.extract(archive, work / "unpacked", backends=tools)
        content = _strip_common_folder(work / "unpacked", listing)
        write_json(
            content / COMPLETE,
            {"archive": archive.name, "files": len(listing.files), "bytes": listing.unpacked_size},
        )
        content.rename(work / "done")
    archive.unlink()  # its videos are in place; the archive is no longer needed


def _unpack_splits(archive: Path, splits: Path, staging: Path, tools: list[rar.Backend]) -> None:
    """Unpack the split files, flattened, into root/splits."""
    if is_complete(splits):
        return
    with AtomicFolder(splits, staging=staging) as work:
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
        write_json(work / "done" / COMPLETE, {"archive": archive.name, "files": len(found)})


def _strip_common_folder(folder: Path, listing: rar.Listing) -> Path:
    """The folder holding the class's clips: `<class>.rar` nests them in `<class>/`."""
    tops = {PurePosixPath(m.name).parts[0] for m in listing.members}
    nested = all(len(PurePosixPath(m.name).parts) > 1 for m in listing.files)
    if len(tops) == 1 and nested:
        return folder / tops.pop()
    return folder
