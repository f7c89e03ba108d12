"""A minimal RAR 5.0 writer for tests: store method (no compression) only.

It follows RARLAB's "RAR 5.0 archive format" technote; vint is the format's variable
length integer (7 bits a byte, low bits first, high bit set on all bytes but the last).

    signature  52 61 72 21 1A 07 01 00                 "Rar!\\x1a\\x07\\x01\\x00"
    block      CRC32 u32 | HEADER_SIZE vint | HEADER_TYPE vint | HEADER_FLAGS vint |
               [EXTRA_SIZE vint if flag 0x1] | [DATA_SIZE vint if flag 0x2] |
               fields... | extra area, then DATA_SIZE bytes of data.
               CRC32 covers HEADER_SIZE to the end of the extra area; HEADER_SIZE
               counts from HEADER_TYPE to the end of the extra area.
    main       type 1, fields ARCHIVE_FLAGS vint (0: one volume, not solid)
    file       type 2, fields FILE_FLAGS vint (0x1 directory, 0x4 CRC32 present),
               UNPACKED_SIZE vint, ATTRIBUTES vint, [DATA_CRC32 u32], COMPRESSION vint
               (0: version 0, store), HOST_OS vint (1 Unix), NAME_LENGTH vint, NAME
               (UTF-8, "/" between folders); extra record "file version" (type 4):
               SIZE vint | TYPE vint | FLAGS vint (0) | VERSION vint.
    end        type 5, fields END_FLAGS vint (0: last volume)

Only what the tests need is here: no compression, volumes, encryption, times.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"Rar!\x1a\x07\x01\x00"
HEAD_MAIN, HEAD_FILE, HEAD_END = 1, 2, 5
HFL_EXTRA, HFL_DATA = 0x1, 0x2
FILE_DIRECTORY, FILE_CRC32 = 0x1, 0x4
HOST_UNIX = 1
EXTRA_FILE_VERSION = 4


@dataclass(frozen=True)
class Entry:
    """One archive member; version N marks an older version of the file `name` (`;N`)."""

    name: str
    data: bytes = b""
    is_dir: bool = False
    version: int | None = None


def vint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _block(head_type: int, fields: bytes, extra: bytes = b"", data: bytes | None = None) -> bytes:
    flags = (HFL_EXTRA if extra else 0) | (HFL_DATA if data is not None else 0)
    header = vint(head_type) + vint(flags)
    if extra:
        header += vint(len(extra))
    if data is not None:
        header += vint(len(data))
    header += fields + extra
    sized = vint(len(header)) + header
    return struct.pack("<I", zlib.crc32(sized)) + sized + (data or b"")


def _file_block(entry: Entry) -> bytes:
    data = b"" if entry.is_dir else entry.data
    name = entry.name.encode("utf-8")
    if entry.is_dir:
        fields = vint(FILE_DIRECTORY) + vint(0) + vint(0o40755)
    else:
        fields = vint(FILE_CRC32) + vint(len(data)) + vint(0o100644)
        fields += struct.pack("<I", zlib.crc32(data))
    fields += vint(0) + vint(HOST_UNIX) + vint(len(name)) + name
    extra = b""
    if entry.version is not None:
        record = vint(EXTRA_FILE_VERSION) + vint(0) + vint(entry.version)
        extra = vint(len(record)) + record
    return _block(HEAD_FILE, fields, extra, data)


def write_rar5(path: Path, entries: Iterable[Entry]) -> Path:
    """Write a store-method RAR 5 archive holding entries, in order."""
    with open(path, "wb") as out:
        out.write(SIGNATURE)
        out.write(_block(HEAD_MAIN, vint(0)))
        for entry in entries:
            out.write(_file_block(entry))
        out.write(_block(HEAD_END, vint(0)))
    return path
