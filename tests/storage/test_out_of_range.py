"""``python -m storage`` given numbers past the largest it can use, or a file it cannot
write: one line saying so and an exit status, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli import run_cli

LARGEST = (1 << 63) - 1


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    (line,) = [line for line in stderr.splitlines() if "error:" in line]
    return line


@pytest.mark.parametrize(
    "args",
    [
        ("moments", "--label", "run", "--min-duration", "99999999999999999999d"),
        ("list", "--since", "99999999999w"),
        ("list", "--since", "1000000w"),
        ("requeue", "--stale", "99999999w"),
    ],
    ids=["min-duration", "since-overflow", "since-before-year-1", "stale"],
)
def test_a_duration_past_a_century_is_a_usage_error(
    store_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_cli(*args, url=store_url, cwd=tmp_path)

    assert result.returncode == 2
    assert "too long a duration: at most 5200w" in _one_error_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [("list", "--limit", str(LARGEST + 1)), ("requeue", "--failed", "--job", "9" * 20)],
    ids=["limit", "job"],
)
def test_a_number_past_a_database_integer_is_a_usage_error(
    store_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_cli(*args, url=store_url, cwd=tmp_path)

    assert result.returncode == 2
    assert f"must be at most {LARGEST}" in _one_error_line(result.stderr)


@pytest.mark.parametrize("ref", [str(LARGEST + 1), "9" * 5000], ids=["2**63", "5000-digits"])
def test_an_id_past_a_database_integer_names_no_video(
    store_url: str, tmp_path: Path, ref: str
) -> None:
    result = run_cli("show", ref, url=store_url, cwd=tmp_path)

    assert result.returncode == 1
    assert "no video has the path, id or sha256 prefix" in _one_error_line(result.stderr)


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_an_export_to_a_path_that_cannot_be_written_says_why(
    store_url: str, tmp_path: Path, where: str
) -> None:
    (tmp_path / "notes.txt").write_text("a file\n")
    output = tmp_path if where == "a folder" else tmp_path / "notes.txt" / "results.csv"

    result = run_cli("export", "-o", str(output), url=store_url, cwd=tmp_path)

    assert result.returncode == 2
    assert f"error: cannot write {output}: " in _one_error_line(result.stderr)
    assert (tmp_path / "notes.txt").read_text() == "a file\n"
