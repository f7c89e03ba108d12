"""Text files of one entry a line that users write by hand (split files, list files,
class lists): UTF-8 with or without a byte-order mark, LF or CRLF line ends; blank lines
and lines that start with ``#`` are skipped.

Every problem found is kept with its file and line number, and one error lists them
all: a list of a thousand videos is fixed in one pass, not one line a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from actiontag.text import escape_control
from trainer.errors import DatasetError

__all__ = ["Line", "Problems", "decode_lines", "read_lines", "read_text", "split_entry"]


@dataclass(frozen=True)
class Line:
    """One entry of a file: its text, stripped, and where it is."""

    path: Path
    number: int  # from 1, counting every line
    text: str


def read_lines(path: Path) -> list[Line]:
    """The entries of ``path``; DatasetError when it cannot be read or is not UTF-8."""
    return decode_lines(path, _read_bytes(path))


def read_text(path: Path) -> str:
    """The text of ``path``, its byte-order mark dropped and its line ends as they are;
    DatasetError when it cannot be read or is not UTF-8."""
    return _decode(path, _read_bytes(path))


def decode_lines(path: Path, data: bytes) -> list[Line]:
    """The entries of ``data``, the content of the file ``path`` names (one on disk, or a
    member of an archive); DatasetError when it is not UTF-8."""
    lines = []
    for number, raw in enumerate(_decode(path, data).split("\n"), start=1):
        stripped = raw.strip()  # a CRLF line's \r goes with the other trailing space
        if stripped and not stripped.startswith("#"):
            lines.append(Line(Path(path), number, stripped))
    return lines


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(
            f"{escape_control(path)} cannot be read ({error.strerror or error}): check the "
            "path given."
        ) from None


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # drops a byte-order mark
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{escape_control(path)} is not UTF-8 text (byte {error.start}): save it as UTF-8 "
            "and run again."
        ) from None


def split_entry(line: Line) -> tuple[str, str] | None:
    """``(path, field)`` of a line `PATH FIELD`, split at its last run of blanks (a path
    may hold spaces); None when the line has one word only."""
    parts = line.text.rsplit(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


class Problems:
    """The bad lines found so far, each as `file:line: what is wrong`. They are listed by
    file, in the order the files were first met, and by line number within a file,
    whatever order the checks found them in."""

    def __init__(self) -> None:
        self._found: list[tuple[Path, int, str]] = []

    def __len__(self) -> int:
        return len(self._found)

    def add(self, line: Line, what: str) -> None:
        shown = f"{escape_control(line.path)}:{line.number}: {escape_control(what)}"
        self._found.append((line.path, line.number, shown))

    def listed(self) -> list[str]:
        """Every bad line, in file and line order."""
        files: dict[Path, int] = {}
        for path, _, _ in self._found:
            files.setdefault(path, len(files))
        ordered = sorted(self._found, key=lambda found: (files[found[0]], found[1]))
        return [shown for _, _, shown in ordered]

    def raise_if_any(self, advice: str) -> None:
        """DatasetError listing every bad line, then ``advice``; nothing when none."""
        if self._found:
            listed = "\n  ".join(self.listed())
            raise DatasetError(f"{len(self._found)} bad lines:\n  {listed}\n{advice}")
