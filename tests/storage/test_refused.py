"""Files the watcher refuses (too large): recorded with why, listed by ``storage refused``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage import ingest
from storage.refused import record_refusal, refusals
from storage.schema import Model

from .conftest import digest
from .test_cli import run_cli, sqlite_only

HUGE = "/inbox/huge.mkv"


def test_a_refusal_is_kept_once_per_path_with_the_latest_reason(session: Session) -> None:
    record_refusal(session, HUGE, 30 << 30, "too large")
    record_refusal(session, HUGE, 31 << 30, "still too large")
    assert [(r.path, r.size, r.reason) for r in refusals(session)] == [
        (HUGE, 31 << 30, "still too large")
    ]


def test_recording_a_refused_path_removes_its_refusal(session: Session, model: Model) -> None:
    record_refusal(session, HUGE, 30 << 30, "too large")
    record_refusal(session, "/inbox/other.mkv", 40 << 30, "too large")
    ingest.record_path(session, HUGE, digest("smaller now"), 100, model)
    assert [r.path for r in refusals(session)] == ["/inbox/other.mkv"]


def test_a_refusal_needs_a_reason(session: Session) -> None:
    with pytest.raises(ValueError, match="say why"):
        record_refusal(session, HUGE, 1, "  ")


@sqlite_only
def test_storage_refused_lists_each_file_with_size_and_reason(
    store_url: str, session: Session, tmp_path: Path
) -> None:
    record_refusal(session, HUGE, 30 << 30, "30.0 GiB is more than the maximum video size")
    record_refusal(session, "/inbox/forged\nname.mkv", 5, "too large")
    result = run_cli("refused", url=store_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, _rule, *lines, total = result.stdout.splitlines()
    assert header.split() == ["REFUSED", "(UTC)", "BYTES", "PATH", "REASON"]
    assert total == "2 refused file(s)"
    assert len(lines) == 2  # the newline in a name does not make a line of its own
    assert any(
        str(30 << 30) in line and HUGE in line and "maximum video size" in line for line in lines
    )
    assert any("'/inbox/forged\\nname.mkv'" in line for line in lines)
