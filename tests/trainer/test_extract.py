"""trainer.rar: real RAR files unpack through a Debian tool, hostile ones are refused.

The archives in tests/fixtures/rar were made by real RAR software; the hostile and
the HMDB51-shaped ones are written by the test RAR 4 writer (rar4_writer.py). The
backend is bsdtar (libarchive-tools), which `make install` provides.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import zipfile

import pytest

from actiontag.settings import load_settings
from trainer.errors import DatasetError
from trainer.rar import (
    ArchiveError,
    InsufficientSpaceError,
    UnsafeArchiveError,
    available_backends,
    extract,
    list_members,
)

SUBDIRS_CONTENT = {
    "sub/dir1/file1.txt": b"file1\n",
    "sub/dir2/file2.txt": b"file2\n",
    "sub/with space/long fn.txt": b"long fn\n",
    "sub/üȵĩöḋè/file.txt": b"file\n",
}
TESTFILE_CONTENT = {"testfile.txt": b"Testing 123\n"}


@pytest.fixture
def bsdtar():
    return available_backends("bsdtar")


def files_under(folder):
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("archive", "content"),
    [
        ("rar3-subdirs.rar", SUBDIRS_CONTENT),
        ("rar5-subdirs.rar", SUBDIRS_CONTENT),
        ("testfile.rar3.rar", TESTFILE_CONTENT),
        ("testfile.rar5.rar", TESTFILE_CONTENT),
        ("testfile.rar5.solid.rar", TESTFILE_CONTENT),
        ("testfile.rar3.solid.rar", TESTFILE_CONTENT),
    ],
)
def test_real_archive_unpacks_to_its_exact_files(rar_fixtures, bsdtar, tmp_path, archive, content):
    extract(rar_fixtures / archive, tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == content


def test_empty_folders_of_the_archive_are_created(rar_fixtures, bsdtar, tmp_path):
    extract(rar_fixtures / "rar3-subdirs.rar", tmp_path / "out", backends=bsdtar)

    assert (tmp_path / "out" / "sub" / "empty").is_dir()


def test_multi_volume_archive_unpacks_from_its_first_volume(rar_fixtures, bsdtar, tmp_path):
    listing = extract(rar_fixtures / "rar3-vols.part1.rar", tmp_path / "out", backends=bsdtar)

    assert [p.name for p in listing.volumes] == [f"rar3-vols.part{i}.rar" for i in (1, 2, 3)]
    digests = {k: hashlib.md5(v).hexdigest() for k, v in files_under(tmp_path / "out").items()}
    assert digests == {
        "vols/bigfile.txt": "86c08c8bf3a7ff3e2b4d60e2f115a443",
        "vols/smallfile.txt": "cd0723236ff1cc4df1371af977890923",
    }


def test_later_volume_is_refused_with_the_name_of_the_first(rar_fixtures, bsdtar, tmp_path):
    with pytest.raises(ArchiveError, match="not the first volume"):
        extract(rar_fixtures / "rar3-vols.part2.rar", tmp_path / "out", backends=bsdtar)


def test_archive_bsdtar_cannot_unpack_is_never_half_accepted(rar_fixtures, bsdtar, tmp_path):
    # A solid RAR 3 archive with two members: libarchive 3.6 unpacks only the first.
    # The only acceptable outcomes are the exact files, or an error that leads to unar,
    # which does unpack it: install it when it is missing, let it be tried when only
    # bsdtar was selected.
    try:
        extract(rar_fixtures / "unicode.rar", tmp_path / "out", backends=bsdtar)
    except ArchiveError as error:
        if shutil.which("unar"):
            assert "unset ACTIONTAG_RAR_BACKEND so that unar is tried too" in str(error)
        else:
            assert "apt-get install unar" in str(error)
    else:
        assert files_under(tmp_path / "out") == {"уииоотивл.txt": b"1\n", "𝐀𝐁𝐁𝐂.txt": b"1\n"}


def test_names_with_shell_and_glob_characters_unpack_literally(rar4, bsdtar, tmp_path):
    names = [
        "c/(Rad)Schlag_die_Bank!_#2 [x] & y + z; ~@.avi",
        "c/-starts_with_dash.avi",
        "c/#starts_with_hash.avi",
        "c/*.avi",
        "c/$(touch pwned).avi",
        "c/üñí cödé.avi",
    ]
    archive = rar4.write_rar4(tmp_path / "odd.rar", [rar4.Entry(n, n.encode() * 3) for n in names])

    extract(archive, tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == {n: n.encode() * 3 for n in names}
    assert not (tmp_path / "pwned").exists()


def test_nested_archive_member_is_unpacked_as_a_file(rar4, bsdtar, tmp_path):
    inner = rar4.write_rar4(tmp_path / "inner.rar", [rar4.Entry("a/b.avi", b"video")])
    outer = rar4.write_rar4(tmp_path / "outer.rar", [rar4.Entry("a.rar", inner.read_bytes())])

    extract(outer, tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == {"a.rar": inner.read_bytes()}


@pytest.mark.parametrize(
    "name", ["../evil.avi", "a/../../evil.avi", "/tmp/evil.avi", "C:/evil.avi", "\\\\host\\evil"]
)
def test_member_escaping_the_target_is_refused_before_anything_is_written(
    rar4, bsdtar, tmp_path, name
):
    archive = rar4.write_rar4(
        tmp_path / "evil.rar", [rar4.Entry("good.avi", b"ok"), rar4.Entry(name, b"evil")]
    )

    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        extract(archive, tmp_path / "out", backends=bsdtar)

    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.avi").exists()


def test_symlink_member_is_refused(rar4, bsdtar, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "link.rar", [rar4.Entry("passwd", b"/etc/passwd", unix_mode=0o120777)]
    )

    with pytest.raises(UnsafeArchiveError, match="is a link"):
        extract(archive, tmp_path / "out", backends=bsdtar)


def test_special_file_member_is_refused(rar4, bsdtar, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "fifo.rar", [rar4.Entry("pipe", b"", unix_mode=stat.S_IFIFO | 0o644)]
    )

    with pytest.raises(UnsafeArchiveError, match="special file"):
        extract(archive, tmp_path / "out", backends=bsdtar)


def test_member_with_a_wrong_crc_is_an_error(rar4, bsdtar, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "bad.rar",
        [rar4.Entry("a.avi", b"good"), rar4.Entry("b.avi", b"damaged", crc=0x12345678)],
    )

    with pytest.raises(ArchiveError, match=r"b\.avi"):
        extract(archive, tmp_path / "out", backends=bsdtar)


def test_archive_larger_than_the_free_space_is_refused(rar4, bsdtar, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "huge.rar", [rar4.Entry("huge.avi", b"x", declared_size=1 << 60)]
    )

    with pytest.raises(InsufficientSpaceError, match=r"needs 1048576\.0 TiB"):
        extract(archive, tmp_path / "out", backends=bsdtar)

    assert list((tmp_path / "out").iterdir()) == []


def test_duplicate_member_is_refused(rar4, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "dup.rar", [rar4.Entry("a.avi", b"one"), rar4.Entry("a.avi", b"two")]
    )

    with pytest.raises(ArchiveError, match="twice"):
        list_members(archive)


def test_file_that_is_not_a_rar_archive_is_reported(tmp_path):
    page = tmp_path / "hmdb51_org.rar"
    page.write_text("<html>Service Unavailable</html>")

    with pytest.raises(ArchiveError, match=r"hmdb51_org\.rar is not a RAR archive"):
        list_members(page)


def zip_holding(path, rar, **extra):
    """A ZIP (stored, so the RAR's signature shows) holding rar and the extra files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.write(rar, "inner.rar")
        for name, text in extra.items():
            z.writestr(name, text)
    return path


def seven_zip_holding(path, rar):
    """A 7z made by bsdtar, stored (no compression), holding rar."""
    subprocess.run(
        ["bsdtar", "--format", "7zip", "--options", "7zip:compression=store", "-cf", str(path),
         "-C", str(rar.parent), rar.name],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("make", [zip_holding, seven_zip_holding], ids=["zip", "7z"])
def test_archive_storing_a_rar_is_refused_and_nothing_is_written(
    rar_fixtures, bsdtar, tmp_path, make
):
    outer = make(tmp_path / "hmdb51_org.rar", rar_fixtures / "testfile.rar5.rar")
    (tmp_path / "out").mkdir()

    with pytest.raises(ArchiveError, match=r"hmdb51_org\.rar is not a RAR archive"):
        extract(outer, tmp_path / "out", backends=bsdtar)

    assert list((tmp_path / "out").iterdir()) == []


def test_self_extracting_archive_is_refused(rar4, bsdtar, tmp_path):
    rar = rar4.write_rar4(tmp_path / "a.rar", [rar4.Entry("a.txt", b"a")])
    sfx = tmp_path / "a.exe"
    sfx.write_bytes(b"MZ" + bytes(1022) + rar.read_bytes())  # an SFX stub, then the RAR

    with pytest.raises(ArchiveError, match=r"a\.exe is not a RAR archive"):
        extract(sfx, tmp_path / "out", backends=bsdtar)

    assert not (tmp_path / "out").exists()


def test_non_empty_target_is_refused(rar_fixtures, bsdtar, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")

    with pytest.raises(ArchiveError, match="non-empty"):
        extract(rar_fixtures / "testfile.rar5.rar", tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == {"keep.txt": b"mine"}


def test_without_any_backend_the_error_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DatasetError, match=r"apt-get install libarchive-tools"):
        available_backends()


def test_environment_variable_picks_the_backend():
    settings = load_settings(environ={"ACTIONTAG_RAR_BACKEND": "BSDtar"})

    assert [b.name for b in available_backends(settings.rar_backend)] == ["bsdtar"]


def test_unknown_backend_name_is_rejected():
    settings = load_settings(environ={"ACTIONTAG_RAR_BACKEND": "winrar"})

    with pytest.raises(DatasetError, match="choose one of: auto, bsdtar, unar"):
        available_backends(settings.rar_backend)


def test_backend_runs_with_a_utf8_locale_whatever_the_callers(
    rar_fixtures, bsdtar, tmp_path, monkeypatch
):
    # Under LC_ALL=C bsdtar skips names it cannot convert, such as "üȵĩöḋè".
    monkeypatch.setenv("LC_ALL", "C")

    extract(rar_fixtures / "rar5-subdirs.rar", tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == SUBDIRS_CONTENT
    assert os.environ["LC_ALL"] == "C"


def versioned_archive(rar4, rar5, kind, path):
    """d/clip.avi (latest, "new") with older versions 1 ("old") and 2 ("older!")."""
    if kind == "rar4":
        old = rar4.FLAG_OLD_VERSION
        return rar4.write_rar4(
            path,
            [
                rar4.Entry("d/clip.avi", b"new"),
                rar4.Entry("d/clip.avi;1", b"old", flags=old),
                rar4.Entry("d/clip.avi;2", b"older!", flags=old),
                rar4.Entry("d/other.avi", b"x"),
            ],
        )
    return rar5.write_rar5(
        path,
        [
            rar5.Entry("d", is_dir=True),
            rar5.Entry("d/clip.avi", b"new"),
            rar5.Entry("d/clip.avi", b"old", version=1),
            rar5.Entry("d/clip.avi", b"older!", version=2),
            rar5.Entry("d/other.avi", b"x"),
        ],
    )


@pytest.mark.parametrize("kind", ["rar4", "rar5"])
def test_file_versions_unpack_as_the_latest_under_the_plain_name(
    rar4, rar5, bsdtar, tmp_path, kind
):
    archive = versioned_archive(rar4, rar5, kind, tmp_path / "v.rar")

    listing = extract(archive, tmp_path / "out", backends=bsdtar)

    assert files_under(tmp_path / "out") == {"d/clip.avi": b"new", "d/other.avi": b"x"}
    assert sorted(m.name for m in listing.old_versions) == ["d/clip.avi;1", "d/clip.avi;2"]


def test_older_version_escaping_the_target_is_refused(rar4, bsdtar, tmp_path):
    archive = rar4.write_rar4(
        tmp_path / "v.rar",
        [
            rar4.Entry("clip.avi", b"new"),
            rar4.Entry("../../clip.avi;1", b"old", flags=rar4.FLAG_OLD_VERSION),
        ],
    )

    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        extract(archive, tmp_path / "a" / "b" / "out", backends=bsdtar)

    assert not (tmp_path / "a" / "b" / "out").exists()


def test_older_version_named_like_another_file_is_refused(rar5, tmp_path):
    archive = rar5.write_rar5(
        tmp_path / "v.rar",
        [
            rar5.Entry("clip.avi", b"new"),
            rar5.Entry("clip.avi", b"old", version=1),
            rar5.Entry("clip.avi;1", b"another file"),
        ],
    )

    with pytest.raises(ArchiveError, match="both as a file and as an older version"):
        list_members(archive)
