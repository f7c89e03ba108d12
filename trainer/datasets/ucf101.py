"""UCF101 on disk: fetch its two archives, unpack them, read its three splits.

Layout under root (the trainer's --data-dir, `data/ucf101` by default):

    archives/UCF101.rar                                   downloads
    archives/UCF101TrainTestSplits-RecognitionTask.zip
    videos/<Class>/v_<Class>_g<XX>_c<YY>.avi              one folder per class
    splits/classInd.txt, trainlist0k.txt, testlist0k.txt  the zip's seven split files
    .staging/                                             work in progress only
    .complete.json                                        the classes; each archive's
                                                          size and sha256 as seen

`UCF101.rar` holds `UCF-101/<Class>/<clip>.avi`, one archive; the zip holds the split
files (trainer.datasets.ucf101_splits) in `ucfTrainTestlist/`. Before anything is
unpacked both are checked: the split files line by line and as a whole, and the
archive's class folders against classInd.txt's classes (regardless of case, and said
so where the spelling differs). Only the seven split files are read from the zip, into
memory (trainer.zips); they are written under their own names, never under a path the
zip gives. The RAR is unpacked in one pass into .staging (trainer.rar: every member
checked first, every file verified after) and each class folder is moved into videos/
once it carries its `.complete` marker, so a rerun after an interruption moves the rest
and a finished dataset is left as it is (trainer.datasets.unpacking).

Class names are the archive's folder names and labels their positions in sorted order,
as for every dataset; classInd.txt's numbers only check the trainlists. A clip a split
lists but the disk lacks is left out with a warning; a class missing altogether is an
error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from actiontag.settings import env_name
from trainer import rar, zips
from trainer.datasets.base import Split, check_split, note_missing
from trainer.datasets.fetching import Archive, ArchiveSet, fetch
from trainer.datasets.inventory import Inventory
from trainer.datasets.line_files import decode_lines, read_lines
from trainer.datasets.published import Published
from trainer.datasets.split_files import name_list
from trainer.datasets.ucf101_splits import (
    CLASS_INDEX,
    MAX_FILE_BYTES,
    SPLIT_FILES,
    SPLITS,
    UCF101_COUNTS,
    Counts,
    SplitLists,
    parse_split_lists,
    test_list,
    train_list,
)
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
from trainer.download import sha256sum
from trainer.errors import DatasetError

__all__ = [
    "ARCHIVES",
    "MIRROR_ENV",
    "SPLITS_URL",
    "UCF101",
    "UCF101_COUNTS",
    "UCF101_URL",
    "Counts",
    "extract_ucf101",
    "fetch_archives",
    "load_split",
    "prepare_ucf101",
]

log = logging.getLogger(__name__)

# The University of Central Florida's own addresses, as the dataset's page gives them.
UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar"
SPLITS_URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip"
VIDEOS_ARCHIVE = "UCF101.rar"
SPLITS_ARCHIVE = "UCF101TrainTestSplits-RecognitionTask.zip"
DEFAULT_URLS = {VIDEOS_ARCHIVE: UCF101_URL, SPLITS_ARCHIVE: SPLITS_URL}
# file name -> (size in bytes or None, sha256 or None). The zip's are those TensorFlow
# Datasets registers for this address (tensorflow_datasets/url_checksums/ucf101.txt).
# No checksum is published for the RAR: its format and every member's CRC are checked,
# and the sha256 seen is logged and kept in .complete.json.
ARCHIVES: dict[str, tuple[int | None, str | None]] = {
    SPLITS_ARCHIVE: (113943, "5c0d1a53b8ed364a2ac830a73f405e51bece7d98ce1254fd19ed4a36b224bd27"),
    VIDEOS_ARCHIVE: (None, None),
}
MIRROR_ENV = env_name("ucf101_mirror")
UNPACKED = "unpacked"  # in .staging: UCF101.rar unpacked, its class folders moved out one by one
ADVICE = f"get the original {VIDEOS_ARCHIVE} and {SPLITS_ARCHIVE} again"


class UCF101(Published):
    """UCF101 in ``root``: fetched from its server or a mirror, or taken from a folder of
    its archives; its three official splits, checked against what UCF101 holds."""

    name = "ucf101"
    mirror_setting = "ucf101_mirror"
    served = False  # a UCF101 run never replaces the served HMDB51 model in runs/

    def __init__(
        self,
        root: Path,
        *,
        mirror: str | None = None,
        archives_dir: Path | None = None,
        rar_backend: str = "auto",
        counts: Counts = UCF101_COUNTS,
    ) -> None:
        super().__init__(root, mirror=mirror, archives_dir=archives_dir, rar_backend=rar_backend)
        self.counts = counts
        self._found: dict[int, Inventory] = {}
        self._last: Inventory | None = None

    def prepare(self, *, progress: bool = True) -> None:
        prepare_ucf101(
            self.root,
            mirror=self.mirror,
            archives_dir=self.archives_dir,
            progress=progress,
            counts=self.counts,
            rar_backend=self.rar_backend,
        )

    def split(self, k: int) -> Split:
        if k not in self._found:
            split = load_split(self.root, k, self.counts)
            found = Inventory("UCF101", self.root, split, {"listed, not on disk": split.missing})
            found.log()
            self._found[k] = found
        self._last = self._found[k]
        return self._last.split

    def split_sha256(self, k: int) -> str:
        """Of split k's two lists, the training one first (``cat trainlist0k.txt
        testlist0k.txt | sha256sum``)."""
        digest = hashlib.sha256()
        for name in (train_list(k), test_list(k)):
            digest.update((self.root / "splits" / name).read_bytes())
        return digest.hexdigest()

    def record(self, run_dir: Path) -> None:
        # What the split read last (the run's: the runner reads one) found, as JSON.
        if self._last is not None:
            self._last.write(run_dir)


def fetch_archives(
    dest: Path,
    *,
    mirror: str | None = None,
    archives_dir: Path | None = None,
    retries: int = 5,
    progress: bool = True,
    expected: Mapping[str, tuple[int | None, str | None]] = ARCHIVES,
) -> dict[str, Path]:
    """Make both UCF101 archives available and verified; return {file name: path}.

    As trainer.datasets.fetching.fetch: from archives_dir (--archives) and nothing
    downloaded, else into dest from mirror (a base URL: the ucf101_mirror setting,
    $ACTIONTAG_UCF101_MIRROR or --ucf101-mirror) or the original addresses. expected
    maps each file name to its (size, sha256), None where unknown.
    """
    checks = {VIDEOS_ARCHIVE: rar.check_signature, SPLITS_ARCHIVE: zips.check_signature}
    wanted = ArchiveSet(
        "UCF101",
        tuple(
            Archive(name, DEFAULT_URLS[name], checks[name], size=size, sha256=sha256)
            for name, (size, sha256) in expected.items()
        ),
        mirror_setting="ucf101_mirror",
        server_note="UCF101's server may be down or slow, or this machine may be offline.",
    )
    return fetch(
        wanted, dest, mirror=mirror, archives_dir=archives_dir, retries=retries, progress=progress
    )


def prepare_ucf101(
    root: Path,
    *,
    mirror: str | None = None,
    archives_dir: Path | None = None,
    retries: int = 5,
    progress: bool = True,
    expected: Mapping[str, tuple[int | None, str | None]] = ARCHIVES,
    counts: Counts = UCF101_COUNTS,
    rar_backend: str = "auto",
) -> Path:
    """Download (if needed) and unpack UCF101 into root; return root.

    Archives are downloaded into root/archives; the keywords are fetch_archives's, and
    counts and rar_backend extract_ucf101's. A dataset prepared before is left as it
    is, whether or not its archives remain.
    """
    root = Path(root)
    if dataset_complete(root):
        log.info("UCF101 is ready in %s", root)
        return root
    paths = fetch_archives(
        root / "archives",
        mirror=mirror,
        archives_dir=archives_dir,
        retries=retries,
        progress=progress,
        expected=expected,
    )
    return extract_ucf101(
        root,
        paths[VIDEOS_ARCHIVE],
        paths[SPLITS_ARCHIVE],
        counts=counts,
        rar_backend=rar_backend,
    )


def extract_ucf101(
    root: Path,
    videos_archive: Path,
    splits_archive: Path,
    *,
    backends: list[rar.Backend] | None = None,
    counts: Counts = UCF101_COUNTS,
    rar_backend: str = "auto",
) -> Path:
    """Unpack UCF101.rar into root/videos and the split zip's files into root/splits
    with ``backends``, else those ``rar_backend`` names (auto, bsdtar, unar).

    Both archives are checked first (counts: the official numbers, checked for a
    classInd.txt of as many classes); what is wrong is named before anything is
    unpacked.
    """
    root = Path(root)
    if dataset_complete(root):
        return root
    videos_archive, splits_archive = Path(videos_archive), Path(splits_archive)
    tools = backends or rar.available_backends(rar_backend)
    listing = rar.list_members(videos_archive)
    top, clips = _class_folders(listing)
    members = zips.read_files(splits_archive, SPLIT_FILES, max_bytes=MAX_FILE_BYTES)
    lists = parse_split_lists(
        {name: decode_lines(splits_archive / m.name, m.data) for name, m in members.items()},
        counts,
    )
    folders = _archive_classes(lists, clips, videos_archive.name)
    _note_unlisted(lists, folders, clips)
    seen = _fingerprints([splits_archive, videos_archive])
    staging = root / STAGING
    remove_leftovers(staging, keep=[UNPACKED])
    staging.mkdir(parents=True, exist_ok=True)
    _write_splits(root / "splits", members, splits_archive.name, staging)
    todo = [name for name in sorted(clips) if not is_complete(root / "videos" / name)]
    if todo:
        unpacked = unpack_once(listing, staging / UNPACKED, tools, [f"{top}/{n}" for n in todo])
        for name in todo:
            _move_class(unpacked / top / name, root / "videos" / name, len(clips[name]))
    shutil.rmtree(staging)
    write_json(root / DATASET_COMPLETE, {"classes": sorted(clips), "archives": seen})
    log.info("UCF101 is ready in %s: %d classes", root, len(clips))
    return root


def load_split(root: Path, k: int, counts: Counts = UCF101_COUNTS) -> Split:
    """Split k of the UCF101 in root: the split files in root/splits, checked, and the
    clips they list that root/videos holds (the others left out, with a warning).

    Raises DatasetError for bad split files, a class without its folder in videos/, or
    a class without training or test clips on disk.
    """
    if k not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {k!r}")
    root = Path(root)
    splits, videos = root / "splits", root / "videos"
    if not (splits / COMPLETE).is_file() or not videos.is_dir():
        raise DatasetError(
            f"{root} holds no unpacked UCF101 (no {splits} or {videos}): run "
            "`python -m trainer --dataset ucf101` to download and unpack it, or point "
            "--data-dir at the folder that holds them."
        )
    lists = parse_split_lists({name: read_lines(splits / name) for name in SPLIT_FILES}, counts)
    with os.scandir(videos) as entries:
        on_disk = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    on_disk = [name for name in on_disk if not name.startswith(".")]
    folders, unknown = _match(lists.classes, on_disk, f"{videos}")
    if missing := [name for name in lists.classes if name not in folders]:
        raise DatasetError(
            f"{videos} has no folder for {len(missing)} of the {len(lists.classes)} classes "
            f"of {CLASS_INDEX}: {name_list(missing)}. Unpack UCF101 again: delete {videos} "
            f"and {root / DATASET_COMPLETE}, then run `python -m trainer --dataset ucf101`."
        )
    if unknown:
        log.warning(
            "%s holds folders %s does not name; they are left out: %s",
            videos,
            CLASS_INDEX,
            name_list(unknown),
        )
    classes = sorted(folders.values())
    labels = {folder: label for label, folder in enumerate(classes)}
    files = {folder: _files_by_lower_name(videos / folder) for folder in classes}
    train, test = lists.splits[k]
    found: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    missing_clips: list[str] = []
    respelt: list[tuple[str, str]] = []
    for part, entries in (("train", train), ("test", test)):
        for entry in entries:
            folder = folders[entry.class_name]
            clip = _on_disk(PurePosixPath(entry.path).name, files[folder])
            if clip is None:
                missing_clips.append(entry.path)
                continue
            if f"{folder}/{clip}" != entry.path:
                respelt.append((entry.path, f"{folder}/{clip}"))
            found[part].append((f"{folder}/{clip}", labels[folder]))
    if respelt:
        log.info(
            "%d clips of split %d are spelt with other case than on disk (e.g. %r is %r): "
            "matched regardless of case",
            len(respelt),
            k,
            *respelt[0],
        )
    note_missing(missing_clips, k, videos)
    split = Split(classes, found["train"], found["test"], missing_clips)
    return check_split(
        split,
        k,
        videos,
        advice=f"Unpack UCF101 again: delete {videos} and {root / DATASET_COMPLETE}, then run "
        "`python -m trainer --dataset ucf101`.",
    )


def _class_folders(listing: rar.Listing) -> tuple[str, dict[str, list[str]]]:
    """(the top folder, {class folder: its clip names}) of UCF101.rar's
    `UCF-101/<class>/<clip>` members; other files are not used (and said so), and
    anything but one top folder of class folders is an error."""
    clips: dict[str, list[str]] = {}
    tops: set[str] = set()
    stray: list[str] = []
    for member in listing.files:
        parts = PurePosixPath(member.name).parts
        if len(parts) != 3 or any(part.startswith(".") for part in parts[1:]):
            stray.append(member.name)
            continue
        tops.add(parts[0])
        clips.setdefault(parts[1], []).append(parts[2])
    if len(tops) != 1:
        raise DatasetError(
            f"{listing.path} holds {'no' if not tops else 'several'} `<top>/<class>/<clip>` "
            f"folders ({name_list(sorted(tops))}), not one `UCF-101/` folder of class "
            f"folders: it is not {VIDEOS_ARCHIVE}; {ADVICE}."
        )
    if stray:
        log.warning(
            "%d files of %s are not `%s/<class>/<clip>` and are not used: %s",
            len(stray),
            listing.path.name,
            next(iter(tops)),
            name_list(stray),
        )
    return tops.pop(), clips


def _archive_classes(
    lists: SplitLists, clips: Mapping[str, list[str]], archive: str
) -> dict[str, str]:
    """{classInd name: the archive's folder}; DatasetError when either has a class the
    other lacks, before anything is unpacked."""
    folders, unknown = _match(lists.classes, list(clips), archive)
    problems = []
    if missing := [name for name in lists.classes if name not in folders]:
        problems.append(
            f"{archive} lacks the folders of {len(missing)} of the {len(lists.classes)} classes "
            f"of {CLASS_INDEX}: {name_list(missing)}"
        )
    if unknown:
        problems.append(
            f"{archive} holds classes {CLASS_INDEX} does not name: {name_list(unknown)}"
        )
    if problems:
        raise DatasetError(
            f"These archives do not go together: {'; '.join(problems)}. Nothing was unpacked; "
            f"{ADVICE}."
        )
    return folders


def _match(
    names: Iterable[str], folders: list[str], where: str
) -> tuple[dict[str, str], list[str]]:
    """({name: its folder}, the folders no name matched): by the exact name, else by the
    one folder equal regardless of case (logged)."""
    exact = set(folders)
    by_lower: dict[str, list[str]] = {}
    for folder in folders:
        by_lower.setdefault(folder.lower(), []).append(folder)
    matched: dict[str, str] = {}
    for name in names:
        if name in exact:
            matched[name] = name
        elif len(candidates := by_lower.get(name.lower(), [])) == 1:
            matched[name] = candidates[0]
            log.info(
                "%s spells the class %r where %s has the folder %r: matched regardless of "
                "case, and the class is named as the folder",
                CLASS_INDEX,
                name,
                where,
                candidates[0],
            )
    taken = set(matched.values())
    return matched, sorted(folder for folder in folders if folder not in taken)


def _note_unlisted(
    lists: SplitLists, folders: Mapping[str, str], clips: Mapping[str, list[str]]
) -> None:
    """Warn of the clips the split files list and the archive lacks (they will be left
    out); say how many of the archive's clips no split lists."""
    in_archive = {(folder, clip.lower()) for folder, names in clips.items() for clip in names}
    listed: dict[tuple[str, str], str] = {}
    for train, test in lists.splits.values():
        for entry in [*train, *test]:
            key = (folders[entry.class_name], PurePosixPath(entry.path).name.lower())
            listed[key] = entry.path
    if absent := sorted(path for key, path in listed.items() if key not in in_archive):
        log.warning(
            "%d clips the split files list are not in %s and will be left out: %s",
            len(absent),
            VIDEOS_ARCHIVE,
            name_list(absent),
        )
    if unlisted := len(in_archive - listed.keys()):
        log.info("%d clips of %s are in no split and are not used", unlisted, VIDEOS_ARCHIVE)


def _fingerprints(archives: list[Path]) -> dict[str, dict[str, object]]:
    """{file name: its size and sha256}, logged: what was unpacked, for the record."""
    seen: dict[str, dict[str, object]] = {}
    for path in archives:
        size = path.stat().st_size
        log.info("Computing the sha256 of %s (%s)", path.name, rar.human_bytes(size))
        digest = sha256sum(path)
        log.info("%s: %d bytes, sha256 %s", path.name, size, digest)
        seen[path.name] = {"bytes": size, "sha256": digest}
    return seen


def _write_splits(
    splits: Path, members: Mapping[str, zips.Member], archive: str, staging: Path
) -> None:
    """The split files into root/splits, under their own names, as the zip holds them."""
    if is_complete(splits):
        return
    with AtomicFolder(splits, staging=staging) as work:
        (work / "done").mkdir()
        for name in SPLIT_FILES:
            (work / "done" / name).write_bytes(members[name].data)
        write_json(work / "done" / COMPLETE, {"archive": archive, "files": len(SPLIT_FILES)})


def _move_class(unpacked: Path, final: Path, clips: int) -> None:
    """One class folder, whole (unpacked and verified), into videos/ under its marker."""
    write_json(unpacked / COMPLETE, {"archive": VIDEOS_ARCHIVE, "files": clips})
    final.parent.mkdir(parents=True, exist_ok=True)
    unpacked.rename(final)


def _files_by_lower_name(folder: Path) -> dict[str, list[str]]:
    """{lower-case name: the names} of folder's files (no link is followed)."""
    found: dict[str, list[str]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                found.setdefault(entry.name.lower(), []).append(entry.name)
    return found


def _on_disk(clip: str, files: Mapping[str, list[str]]) -> str | None:
    """The file named clip in a class folder: exactly, else the one equal regardless of
    case; None when there is none (or more than one)."""
    candidates = files.get(clip.lower(), [])
    if clip in candidates:
        return clip
    return candidates[0] if len(candidates) == 1 else None
