"""trainer.datasets.hmdb51.fetch_archives / prepare_hmdb51 against a local HTTP mirror."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from actiontag.settings import load_settings
from trainer.datasets.hmdb51 import (
    ARCHIVES,
    HMDB51_URL,
    MIRROR_ENV,
    SPLITS_URL,
    Layout,
    fetch_archives,
    load_split,
    prepare_hmdb51,
)
from trainer.download import ChecksumError
from trainer.errors import DatasetError

CLASSES = {"climb": ["c0.avi", "c1.avi", "c2.avi", "c3.avi"], "jump": ["j0.avi", "j1.avi"]}
NAMES = ["test_train_splits.rar", "hmdb51_org.rar"]
LAYOUT = Layout("the test set", tuple(CLASSES))  # two classes, not HMDB51's 51


@pytest.fixture
def built(hmdb51_like, tmp_path):
    """The two generated archives and their (size, md5) as `expected`."""
    videos, splits = hmdb51_like.build(tmp_path / "built", CLASSES)
    expected = {
        p.name: (p.stat().st_size, hashlib.md5(p.read_bytes()).hexdigest())
        for p in (splits, videos)
    }
    return tmp_path / "built", expected


@pytest.fixture
def mirror(file_server, built):
    folder, _ = built
    for name in NAMES:
        file_server.files[name] = (folder / name).read_bytes()
    return file_server


def test_prepare_downloads_from_the_mirror_and_unpacks(mirror, built, hmdb51_like, tmp_path):
    _, expected = built

    root = prepare_hmdb51(
        tmp_path / "hmdb51",
        mirror=mirror.base_url,
        expected=expected,
        progress=False,
        layout=LAYOUT,
    )

    assert [r.path for r in mirror.requests] == NAMES
    split = load_split(root, 1)
    assert split.classes == ["climb", "jump"]
    assert split.test == [
        (f"{name}/{clip}", label)
        for label, (name, clips) in enumerate(CLASSES.items())
        for i, clip in enumerate(clips)
        if hmdb51_like.tag(i, 1) == 2
    ]


def test_mirror_environment_variable_is_used(mirror, built, tmp_path):
    settings = load_settings(environ={MIRROR_ENV: mirror.base_url + "/"})

    paths = fetch_archives(
        tmp_path / "dl", mirror=settings.hmdb51_mirror, expected=built[1], progress=False
    )

    assert sorted(paths) == sorted(NAMES)
    assert [r.path for r in mirror.requests] == NAMES


def test_splits_archive_must_have_the_official_md5(mirror, tmp_path):
    with pytest.raises(ChecksumError, match=ARCHIVES["test_train_splits.rar"][1]):
        fetch_archives(tmp_path / "dl", mirror=mirror.base_url, progress=False)

    assert not (tmp_path / "dl" / "test_train_splits.rar").exists()
    assert (tmp_path / "dl" / "test_train_splits.rar.bad").exists()


def test_offline_error_says_where_to_put_the_archives(closed_port_url, tmp_path):
    with pytest.raises(DatasetError) as caught:
        fetch_archives(tmp_path / "dl", mirror=closed_port_url, retries=1, progress=False)

    message = str(caught.value)
    assert "--archives DIR" in message
    assert MIRROR_ENV in message
    assert "test_train_splits.rar and hmdb51_org.rar" in message


def test_archives_the_user_has_are_used_in_place(built, closed_port_url, tmp_path):
    folder, expected = built

    paths = fetch_archives(
        tmp_path / "dl", archives_dir=folder, mirror=closed_port_url, expected=expected
    )

    assert paths == {name: folder / name for name in NAMES}
    assert not (tmp_path / "dl").exists()


def test_wrong_archive_the_user_has_is_reported(built, tmp_path):
    folder, _ = built

    with pytest.raises(ChecksumError, match="Replace it with a good copy"):
        fetch_archives(tmp_path / "dl", archives_dir=folder, progress=False)


def test_archive_missing_from_the_archives_folder_is_an_error_and_not_downloaded(
    mirror, built, tmp_path
):
    folder, expected = built
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.copy(folder / "test_train_splits.rar", offline)

    with pytest.raises(DatasetError, match=r"offline/hmdb51_org\.rar does not exist: --archives"):
        fetch_archives(
            tmp_path / "dl", archives_dir=offline, mirror=mirror.base_url, expected=expected
        )

    assert mirror.requests == []
    assert not (tmp_path / "dl").exists()


def test_archives_folder_that_does_not_exist_is_reported(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        fetch_archives(tmp_path / "dl", archives_dir=tmp_path / "nowhere")


def test_error_page_served_instead_of_an_archive_is_reported(file_server, tmp_path):
    for name in NAMES:
        file_server.files[name] = b"<html><body>Site under maintenance</body></html>"

    with pytest.raises(DatasetError, match="is not a RAR archive"):
        fetch_archives(
            tmp_path / "dl",
            mirror=file_server.base_url,
            expected=dict.fromkeys(NAMES, (None, None)),
            progress=False,
        )


def test_prepared_dataset_needs_neither_archives_nor_network(
    mirror, built, tmp_path, closed_port_url
):
    root = prepare_hmdb51(
        tmp_path / "hmdb51",
        mirror=mirror.base_url,
        expected=built[1],
        progress=False,
        layout=LAYOUT,
    )
    shutil.rmtree(root / "archives")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    prepare_hmdb51(root, mirror=closed_port_url, expected=built[1], progress=False, layout=LAYOUT)

    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_default_addresses_and_checksum_are_torchvisions():
    from torchvision.datasets import HMDB51

    assert HMDB51.data_url == HMDB51_URL
    assert HMDB51.splits["url"] == SPLITS_URL
    assert ARCHIVES["test_train_splits.rar"][1] == HMDB51.splits["md5"]
