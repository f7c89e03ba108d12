"""The source's comments and docstrings say why, in the present tense: no issue numbers a
reader cannot look up and no dates of when something was measured or changed. Figures
live in docs/benchmarks.md and history in git."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.packages import PACKAGES

REPO = Path(__file__).resolve().parents[2]
# The product packages, and the scripts beside them.
SOURCE_FOLDERS = (*PACKAGES, "tools", "bench")
# Files whose comments are the lines' text from a '#' on (make, TOML, YAML; tools/*.sh too).
HASH_COMMENTED = (
    "Makefile",
    "Dockerfile",
    "pyproject.toml",
    "docker-compose.yml",
    "docker-compose.cpu.yml",
)
FORBIDDEN = (
    ("an issue number", re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)),
    ("a date", re.compile(r"\b20\d\d-\d\d-\d\d\b")),
)
# Alembic writes each revision's creation date into its module docstring: a field of
# the migration format, not a diary.
ALEMBIC_HEADER = re.compile(r"^Create Date: ")
_HASH_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def python_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment (tokenize) and docstring line (ast) in ``path``;
    other strings are data and are not read."""
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source, str(path))):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not node.body:
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str):
            continue
        for offset, line in enumerate(first.value.value.splitlines()):
            if "migrations" in path.parts and ALEMBIC_HEADER.match(line.strip()):
                continue
            yield first.lineno + offset, line


def hash_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every '#' comment in a make, shell, TOML or YAML file."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = _HASH_COMMENT.search(line)
        if found:
            yield number, found.group(1)


def violations(path: Path, root: Path = REPO) -> list[str]:
    """``file:line: what`` for each forbidden mention in ``path``'s comments and docstrings."""
    texts = python_texts(path) if path.suffix == ".py" else hash_texts(path)
    found = []
    for number, text in texts:
        for what, pattern in FORBIDDEN:
            match = pattern.search(text)
            if match:
                found.append(f"{path.relative_to(root)}:{number}: {what} ({match.group(0)!r})")
    return found


def product_files(root: Path = REPO) -> list[Path]:
    files = [path for package in SOURCE_FOLDERS for path in sorted((root / package).rglob("*.py"))]
    files += sorted((root / "tools").glob("*.sh"))
    return files + [root / name for name in HASH_COMMENTED if (root / name).exists()]


def test_the_walk_reads_every_package() -> None:
    files = product_files()
    for package in SOURCE_FOLDERS:
        assert any(path.is_relative_to(REPO / package) for path in files), package
    assert REPO / "Makefile" in files and REPO / "pyproject.toml" in files
    assert any(path.suffix == ".sh" for path in files)


def test_no_issue_number_or_date_in_comments_or_docstrings() -> None:
    found = [line for path in product_files() for line in violations(path)]
    assert not found, "history belongs in git, figures in docs/benchmarks.md:\n" + "\n".join(found)


PLANTED = '''"""A module (see issue 7)."""

LABEL = "issue 9 on 2026-01-02"  # data, not a comment


def run() -> None:
    """Runs.

    Measured 2026-03-04."""
    # ISSUE 12 asked for this
    return None
'''


def test_a_planted_issue_and_date_are_named_by_file_and_line(tmp_path: Path) -> None:
    planted = tmp_path / "model" / "planted.py"
    planted.parent.mkdir()
    planted.write_text(PLANTED, encoding="utf-8")
    assert set(violations(planted, tmp_path)) == {
        "model/planted.py:1: an issue number ('issue 7')",
        "model/planted.py:9: a date ('2026-03-04')",
        "model/planted.py:10: an issue number ('ISSUE 12')",
    }


def test_string_data_is_not_read_as_a_comment(tmp_path: Path) -> None:
    planted = tmp_path / "data.py"
    planted.write_text(
        'EXAMPLE = "2024-05-01, issue 3"\nx = f"{EXAMPLE} # issue 4"\n', encoding="utf-8"
    )
    assert violations(planted, tmp_path) == []


@pytest.mark.parametrize("name", ["Makefile", "pyproject.toml"])
def test_a_planted_hash_comment_is_named(tmp_path: Path, name: str) -> None:
    planted = tmp_path / name
    planted.write_text('value = "a#b"\n\n# slower since 2026-12-01 (issue 5)\n', encoding="utf-8")
    assert violations(planted, tmp_path) == [
        f"{name}:3: an issue number ('issue 5')",
        f"{name}:3: a date ('2026-12-01')",
    ]


def test_alembic_revision_dates_are_a_field_of_the_format(tmp_path: Path) -> None:
    migration = tmp_path / "migrations" / "0001_x.py"
    migration.parent.mkdir()
    migration.write_text(
        '"""Things.\n\nCreate Date: 2026-11-25\n\nSince 2026-11-24."""\n', encoding="utf-8"
    )
    assert violations(migration, tmp_path) == ["migrations/0001_x.py:5: a date ('2026-11-24')"]
