"""The test RAR 4 writer makes archives that rarfile and bsdtar read as intended.

Other extraction tests trust this writer to build HMDB51-shaped and hostile archives,
so it is checked here against two independent readers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib

import rarfile

ENTRIES = [
    ("clips/", None),
    ("clips/a (1)!#[x].avi", b"first video" * 100),
    ("clips/sub/üñí.avi", b"second"),
    ("clips/empty.avi", b""),
]


def write(rar4, path):
    return rar4.write_rar4(
        path,
        [
            rar4.Entry(name, is_dir=True) if data is None else rar4.Entry(name, data)
            for name, data in ENTRIES
        ],
    )


def test_rarfile_reads_names_sizes_crcs_and_data(rar4, tmp_path):
    archive = rarfile.RarFile(write(rar4, tmp_path / "a.rar"))

    infos = archive.infolist()
    assert [i.filename for i in infos] == [name for name, _ in ENTRIES]
    for info, (_, data) in zip(infos[1:], ENTRIES[1:], strict=True):
        assert (info.file_size, info.CRC, info.compress_type) == (
            len(data),
            zlib.crc32(data),
            rarfile.RAR_M0,
        )
        assert archive.read(info) == data
    assert infos[0].is_dir()


def test_archive_is_rar_2_9_format(rar4, tmp_path):
    path = write(rar4, tmp_path / "a.rar")

    assert rarfile.get_rar_version(str(path)) == rarfile.RAR_V3


def test_bsdtar_lists_the_same_members(rar4, tmp_path):
    path = write(rar4, tmp_path / "a.rar")

    listed = subprocess.run(
        [shutil.which("bsdtar") or "bsdtar", "-tf", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    ).stdout.splitlines()

    assert listed == [name for name, _ in ENTRIES]


def test_wrong_crc_is_written_as_asked(rar4, tmp_path):
    path = rar4.write_rar4(tmp_path / "bad.rar", [rar4.Entry("a.avi", b"data", crc=0xDEADBEEF)])

    info = rarfile.RarFile(path).infolist()[0]
    assert info.CRC == 0xDEADBEEF


def test_declared_size_beyond_4_gib_uses_the_large_file_fields(rar4, tmp_path):
    path = rar4.write_rar4(tmp_path / "big.rar", [rar4.Entry("a.avi", b"x", declared_size=5 << 30)])

    assert rarfile.RarFile(path).infolist()[0].file_size == 5 << 30


def test_unix_mode_makes_a_symlink_entry(rar4, tmp_path):
    path = rar4.write_rar4(
        tmp_path / "l.rar", [rar4.Entry("link", b"/etc/passwd", unix_mode=0o120777)]
    )

    assert rarfile.RarFile(path).infolist()[0].is_symlink()
