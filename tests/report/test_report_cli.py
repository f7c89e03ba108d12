"""``python -m storage report``: options, filters, the run folder, reruns and errors.

These read the written index.html directly; test_report_browser.py checks it in Chromium.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import Library, run_report


def _report(library: Library, out: Path, *args: str, cwd: Path | None = None) -> str:
    result = run_report("--html", str(out), *args, url=library.url, cwd=cwd or out.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _names(html: ModuleType, out: Path) -> list[str]:
    page = html.parse((out / "index.html").read_text(encoding="utf-8"))
    return [card.find("h2", "name").text for card in page.find_all("article", "video")]


@pytest.fixture
def moved_model(sqlite_library: Library, tmp_path: Path) -> Library:
    """A copy of the library whose checkpoint lies away from any trainer run folder."""
    path = tmp_path / "moved.db"
    shutil.copyfile(sqlite_library.url.removeprefix("sqlite:///"), path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE models SET path = '/srv/models/actiontag.pt'")
    return Library(f"sqlite:///{path}", sqlite_library.run_dir, sqlite_library.videos, ())


def test_help_describes_the_report_and_its_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "storage", "report", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for option in ("--html OUT_DIR", "--run-dir DIR", "--label", "--state", "--since"):
        assert option in result.stdout
    assert "most recent first (default 200)" in " ".join(result.stdout.split())
    top = subprocess.run(
        [sys.executable, "-m", "storage", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "report" in top.stdout and "static HTML page" in top.stdout


def test_state_filter_shows_only_those_videos(
    sqlite_library: Library, html: ModuleType, tmp_path: Path
) -> None:
    _report(sqlite_library, tmp_path / "out", "--state", "failed")
    assert sorted(_names(html, tmp_path / "out")) == ["broken.mp4", "crashy.mp4"]


def test_label_filter_shows_videos_with_that_label_in_their_top_k(
    sqlite_library: Library, html: ModuleType, tmp_path: Path
) -> None:
    _report(sqlite_library, tmp_path / "any", "--label", "wave")
    assert sorted(_names(html, tmp_path / "any")) == ['<b>&"odd".mp4', "plié #1 & more.mp4"]
    _report(sqlite_library, tmp_path / "sure", "--label", "wave", "--min-confidence", "0.5")
    assert _names(html, tmp_path / "sure") == ["plié #1 & more.mp4"]


def test_limit_counts_videos_most_recent_first(
    sqlite_library: Library, html: ModuleType, tmp_path: Path
) -> None:
    _report(sqlite_library, tmp_path / "all")
    _report(sqlite_library, tmp_path / "two", "--limit", "2")
    assert _names(html, tmp_path / "two") == _names(html, tmp_path / "all")[:2]


def test_since_in_the_future_gives_an_empty_page_that_says_so(
    sqlite_library: Library, html: ModuleType, tmp_path: Path
) -> None:
    stdout = _report(sqlite_library, tmp_path / "out", "--since", "2999-01-01")
    assert "0 video(s)" in stdout
    page = html.parse((tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    assert page.find("p", "empty").text == "No videos match these filters."


def test_a_limit_below_one_is_refused(sqlite_library: Library, tmp_path: Path) -> None:
    result = run_report(
        "--html", str(tmp_path / "out"), "--limit", "0", url=sqlite_library.url, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "the limit must be at least 1" in result.stderr


def test_the_run_folder_is_found_next_to_the_checkpoint(
    sqlite_library: Library, tmp_path: Path
) -> None:
    stdout = _report(sqlite_library, tmp_path / "out")
    assert "3 trainer image(s)" in stdout
    assert sorted(p.name for p in (tmp_path / "out" / "figures").iterdir()) == sorted(
        sqlite_library.figures
    )


def test_the_run_folder_is_found_under_runs_split_k(
    moved_model: Library, sqlite_library: Library, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(sqlite_library.run_dir, work / "runs" / "split1")
    stdout = _report(moved_model, tmp_path / "out", cwd=work)
    assert "3 trainer image(s)" in stdout


def test_without_a_run_folder_the_page_has_no_training_section(
    moved_model: Library, html: ModuleType, tmp_path: Path
) -> None:
    stdout = _report(moved_model, tmp_path / "out")
    assert "0 trainer image(s)" in stdout
    page = html.parse((tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    assert page.find_all("section", "run") == []


def test_a_missing_run_folder_is_a_readable_error(sqlite_library: Library, tmp_path: Path) -> None:
    result = run_report(
        "--html",
        str(tmp_path / "out"),
        "--run-dir",
        str(tmp_path / "no-such-run"),
        url=sqlite_library.url,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: the run folder {tmp_path / 'no-such-run'} does not")
    assert "Traceback" not in result.stderr


def test_an_output_that_is_a_file_is_a_readable_error(
    sqlite_library: Library, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_text("not a folder")
    result = run_report("--html", str(tmp_path / "taken"), url=sqlite_library.url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot write the report into {tmp_path / 'taken'}")
    assert "Traceback" not in result.stderr


def test_a_rerun_drops_thumbnails_and_figures_the_new_page_does_not_show(
    sqlite_library: Library, moved_model: Library, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _report(sqlite_library, out)
    (out / "thumbs" / "notes.txt").write_text("not ours")
    assert len(list((out / "thumbs").glob("*.jpg"))) == 11  # 9 frames, 2 segments
    _report(moved_model, out, "--state", "failed")
    assert list((out / "thumbs").glob("*.jpg")) == []
    assert list((out / "figures").glob("*.png")) == []
    assert (out / "thumbs" / "notes.txt").read_text() == "not ours"
