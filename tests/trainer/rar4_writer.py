"""A minimal RAR 4.x writer for tests: store method (no compression) only.

Debian ships no `rar` program, so tests build the archives they need (HMDB51's nested
archives, archives with hostile members) with this writer. It follows RARLAB's
technote for RAR 2.9-4.x ("RAR 1.5+" block format):

    marker   52 61 72 21 1A 07 00                      "Rar!\\x1a\\x07\\x00"
    block    HEAD_CRC u16 | HEAD_TYPE u8 | HEAD_FLAGS u16 | HEAD_SIZE u16 | fields...
             HEAD_CRC is the low 16 bits of CRC-32 over HEAD_TYPE..end of the header.
    main     type 0x73, fields RESERVED1 u16, RESERVED2 u32            (13 bytes)
    file     type 0x74, flags 0x8000 (data follows the header) and
             PACK_SIZE u32, UNP_SIZE u32, HOST_OS u8, FILE_CRC u32, FTIME u32 (DOS),
             UNP_VER u8, METHOD u8 (0x30 = store), NAME_SIZE u16, ATTR u32,
             [HIGH_PACK_SIZE u32, HIGH_UNP_SIZE u32 if flag 0x100], FILE_NAME,
             then PACK_SIZE bytes of data.
             FILE_NAME separates folders with a backslash, as RAR 2.9-4.x does on
             every host (unar takes "/" in a Windows-made name for part of the name).
             Flag 0x200: the name is Unicode; with no NUL byte in it, it is UTF-8.
             Flags 0xE0 (dictionary bits all set): the entry is a directory.
             Flag 0x800: an older file version (RAR's -ver), its name ending in `;N`.
    end      type 0x7B, no fields                                       (7 bytes)

Only what the tests need is here: no compression, volumes, encryption or RAR 5.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MARKER = b"Rar!\x1a\x07\x00"
HOST_WIN32 = 2
HOST_UNIX = 3
METHOD_STORE = 0x30
UNP_VER = 29  # "RAR 2.9": the version every RAR 3.x/4.x archive declares

FLAG_HAS_DATA = 0x8000
FLAG_LARGE = 0x100
FLAG_UNICODE = 0x200
FLAG_DIRECTORY = 0xE0
FLAG_OLD_VERSION = 0x800

WIN_ATTR_DIRECTORY = 0x10
WIN_ATTR_ARCHIVE = 0x20

DOS_TIME_2010_06_15_12_00 = ((2010 - 1980) << 25) | (6 << 21) | (15 << 16) | (12 << 11)


@dataclass(frozen=True)
class Entry:
    """One archive member.

    unix_mode None writes a Windows-made entry (as HMDB51's archives are); otherwise a
    Unix-made one with that st_mode, so 0o120777 and data=b"target" is a symlink.
    crc and declared_size override what is written, to build corrupt or lying members.
    flags are added to the header's flags (FLAG_OLD_VERSION marks an older file version).
    """

    name: str
    data: bytes = b""
    is_dir: bool = False
    unix_mode: int | None = None
    crc: int | None = None
    declared_size: int | None = None
    flags: int = 0


def _block(head_type: int, flags: int, fields: bytes) -> bytes:
    size = 7 + len(fields)
    body = struct.pack("<BHH", head_type, flags, size) + fields
    return struct.pack("<H", zlib.crc32(body) & 0xFFFF) + body


def _file_block(entry: Entry) -> bytes:
    data = b"" if entry.is_dir else entry.data
    unp_size = len(data) if entry.declared_size is None else entry.declared_size
    crc = zlib.crc32(data) if entry.crc is None else entry.crc
    flags = FLAG_HAS_DATA | (FLAG_DIRECTORY if entry.is_dir else 0) | entry.flags
    name = entry.name.replace("/", "\\").encode("utf-8")
    if not entry.name.isascii():
        flags |= FLAG_UNICODE
    if entry.unix_mode is None:
        host = HOST_WIN32
        attr = WIN_ATTR_DIRECTORY if entry.is_dir else WIN_ATTR_ARCHIVE
    else:
        host, attr = HOST_UNIX, entry.unix_mode
    large = len(data) > 0xFFFFFFFF or unp_size > 0xFFFFFFFF
    if large:
        flags |= FLAG_LARGE
    fields = struct.pack(
        "<IIBIIBBHI",
        len(data) & 0xFFFFFFFF,
        unp_size & 0xFFFFFFFF,
        host,
        crc,
        DOS_TIME_2010_06_15_12_00,
        UNP_VER,
        METHOD_STORE,
        len(name),
        attr,
    )
    if large:
        fields += struct.pack("<II", len(data) >> 32, unp_size >> 32)
    return _block(0x74, flags, fields + name) + data


def write_rar4(path: Path, entries: Iterable[Entry]) -> Path:
    """Write a store-method RAR 4.x archive holding entries, in order."""
    with open(path, "wb") as out:
        out.write(MARKER)
        out.write(_block(0x73, 0, struct.pack("<HI", 0, 0)))
        for entry in entries:
            out.write(_file_block(entry))
        out.write(_block(0x7B, 0, b""))
    return path
