"""Fixtures for the report tests: a results database made through storage.ingest, the
report command run through its entry point, and headless Chromium to see what the page
shows.

Helper modules sit beside this file; pytest's importlib import mode does not put this
folder on sys.path, so they are loaded by path here and handed to tests as fixtures.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

import storage.__main__ as storage_entry_point
from actiontag.settings import env_name
from actiontag.thumbnails import encode_thumbnails
from storage import ingest, transitions
from storage.db import make_sessionmaker, open_database
from storage.results import JobResult, complete_job
from tests.browser import FLAGS, Browser, chromium_executable
from tests.cli import CliResult, run_in_process
from tests.support.modules import load_helper
from timeline.values import Segment, Timeline, Window

HERE = Path(__file__).parent
CHROMIUM_TIMEOUT_S = 60


def _load_helper(name: str) -> ModuleType:
    return load_helper(HERE, "_report_test_helpers", name)


dom = _load_helper("dom")


@pytest.fixture(scope="session")
def html() -> ModuleType:
    """The HTML tree helper: html.parse(markup) -> Element (find, find_all, text, attrs)."""
    return dom


# -- Chromium ---------------------------------------------------------------------------


class Chromium:
    """Debian's Chromium, headless, a fresh profile per run (tests/browser.py)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def _run(self, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            result = subprocess.run(
                [
                    self.executable,
                    *FLAGS,
                    f"--user-data-dir={profile}",
                    *args,
                    page.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=CHROMIUM_TIMEOUT_S,
                env={**os.environ, "HOME": profile},  # nothing written to the real home
            )
        assert result.returncode == 0, f"chromium failed: {result.stderr[-2000:]}"
        return result

    def dump_dom(self, page: Path) -> str:
        """The page's DOM after it loaded and its scripts ran."""
        return self._run(page, "--dump-dom").stdout

    def screenshot(self, page: Path, out: Path, width: int = 1280, height: int = 2000) -> Path:
        self._run(page, f"--window-size={width},{height}", f"--screenshot={out}")
        assert out.is_file(), f"chromium wrote no screenshot at {out}"
        return out

    def evaluate(self, page: Path, expression: str, width: int = 1280, height: int = 2000) -> Any:
        """The JSON value of a JavaScript ``expression`` run in ``page`` once it loaded:
        through the DevTools protocol, so a test can ask the layout
        (getBoundingClientRect) what --dump-dom cannot tell."""
        with Browser(width, height) as browser:
            browser.open(page.resolve().as_uri())
            return browser.evaluate(expression)


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    try:
        return Chromium(chromium_executable())
    except AssertionError as missing:
        pytest.fail(str(missing), pytrace=False)


# -- a results database -------------------------------------------------------------------

EXPERTS = 4


@dataclass(frozen=True)
class VideoCase:
    """One video put into the database, and what its card must show."""

    name: str  # the file name (last path component) of its most recent path
    paths: tuple[str, ...]  # every path it was seen under, most recent first
    state: str
    top3: tuple[tuple[str, str], ...] = ()  # (label, percentage text)
    experts: tuple[tuple[float, int], ...] = ()
    thumbnails: int = 0  # in the strip of frames
    error: str | None = None
    timeline: Timeline | None = None
    segment_thumbnails: int = 0  # in the list of segments under the timeline


@dataclass(frozen=True)
class Library:
    url: str
    run_dir: Path
    videos: tuple[VideoCase, ...]
    figures: tuple[str, ...]  # image names in the run folder, in the page's order

    def case(self, name: str) -> VideoCase:
        (found,) = [video for video in self.videos if video.name == name]
        return found


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _frames(count: int, seed: int) -> list[np.ndarray]:
    """Synthetic RGB frames (a coloured square over a gradient), as a worker would have."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[..., 0] = np.linspace(0, 255, 320, dtype=np.uint8)[None, :]
        frame[..., 2] = np.linspace(255, 0, 240, dtype=np.uint8)[:, None]
        x, y = rng.integers(0, 240), rng.integers(0, 160)
        frame[y : y + 80, x : x + 80] = rng.integers(0, 256, 3, dtype=np.uint8)
        frames.append(frame)
    return frames


def _write_run_dir(folder: Path) -> tuple[str, ...]:
    """A trainer run folder: metrics.json, its two images and one more PNG."""
    folder.mkdir(parents=True)
    metrics = {"checkpoint": {"sha256": _digest("checkpoint")}, "multi_clip": {"top1": 0.625}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    names = ("confusion_matrix.png", "expert_usage.png", "loss curve.png")
    for index, name in enumerate(names):
        image = np.full((120, 160, 3), 60 * index, np.uint8)
        cv2.rectangle(image, (20, 20), (140, 100), (40, 180, 90), -1)
        assert cv2.imwrite(str(folder / name), image)
    return names


# A label as hostile as a checkpoint could hold: markup, quotes and a newline.
HOSTILE_LABEL = "<script>alert(\"x\")</script>\n'q'"


def _timeline(seed: int) -> Timeline:
    """3.2 s: run 0-1.2 s, a cut at 1.2 s, the hostile label 1.2-2.0 s, untagged
    2.0-2.4 s, wave 2.4-3.2 s; the first two segments with a thumbnail."""
    red, blue = encode_thumbnails(_frames(2, seed + 10))
    return Timeline(
        windows=tuple(
            Window(start, start + 0.8, label, 0.7)
            for start, label in ((0.0, "run"), (0.8, "run"), (1.6, HOSTILE_LABEL), (2.4, "wave"))
        ),
        segments=(
            Segment(0.0, 1.2, "run", 0.75, 0.9, (("run", 0.75), ("walk", 0.1)), red),
            Segment(1.2, 2.0, HOSTILE_LABEL, 0.6, 0.7, ((HOSTILE_LABEL, 0.6),), blue),
            Segment(2.4, 3.2, "wave", 0.8, 0.85, (("wave", 0.8),)),
        ),
        cuts=(1.2,),
    )


def build_library(url: str, run_dir: Path) -> Library:
    """Done, failed and queued jobs, made the way watcher and worker make them."""
    figures = _write_run_dir(run_dir)
    engine = open_database(url)
    session = make_sessionmaker(engine)()
    model = ingest.register_model(
        session,
        _digest("checkpoint"),
        str(run_dir / "model.pt"),
        split=1,
        class_names=["run", "walk", "jump", "wave", "sit"],
        metrics={"multi_clip": {"top1": 0.625}, "epochs": 3},
    )
    cases = []
    tagged = [
        (
            '/srv/inbox/<b>&"odd".mp4',
            [("run", 0.7), ("walk", 0.2), ("jump", 0.05), ("wave", 0.03), ("sit", 0.02)],
            [(0.55, 5), (0.25, 3), (0.2, 2), (0.0, 0)],
            4,
        ),
        (
            "/srv/inbox/sub dir/plié #1 & more.mp4",
            [("wave", 0.875), ("sit", 0.125)],
            [(0.1, 0), (0.2, 1), (0.3, 1), (0.4, 2)],
            3,
        ),
        (
            "/srv/inbox/stroll.mp4",
            [("walk", 0.334), ("run", 0.333), ("sit", 0.333)],
            [(0.25, 1), (0.25, 1), (0.25, 1), (0.25, 1)],
            2,
        ),
    ]
    for seed, (path, predictions, experts, clips) in enumerate(tagged):
        # The first video has a timeline; the others were tagged before migration 0007.
        timeline = _timeline(seed) if seed == 0 else None
        job = ingest.record_path(session, path, _digest(path), 1_500_000 + seed, model).job
        transitions.claim_job(session, job.id, "celery@test-1", max_attempts=3)
        assert complete_job(
            session,
            job.id,
            JobResult(
                predictions=predictions,
                expert_usage=experts,
                video_meta={
                    "duration": 3.2,
                    "fps": 25.0,
                    "frames": 80,
                    "width": 320,
                    "height": 240,
                },
                decode_ms=40.0 + seed,
                inference_ms=300.0 + seed,
                thumbnails=encode_thumbnails(_frames(clips, seed)),
                timeline=timeline,
            ),
        )
        cases.append(
            VideoCase(
                name=os.path.basename(path),
                paths=(path,),
                state="done",
                top3=tuple((label, f"{conf:.1%}") for label, conf in predictions[:3]),
                experts=tuple(experts),
                thumbnails=clips,
                timeline=timeline,
                segment_thumbnails=2 if timeline is not None else 0,
            )
        )
    # The same content under a second name: one video, both names on its card.
    copy = "/srv/inbox/copy of stroll.mp4"
    ingest.record_path(session, copy, _digest("/srv/inbox/stroll.mp4"), 1_500_002, model)
    cases[2] = replace(cases[2], name="copy of stroll.mp4", paths=(copy, *cases[2].paths))

    broken = ingest.record_path(session, "/srv/inbox/broken.mp4", _digest("broken"), 512, model).job
    transitions.claim_job(session, broken.id, "celery@test-1", max_attempts=3)
    error = (
        "cannot decode /srv/inbox/broken.mp4: moov atom not found </pre><script>alert(1)</script>"
    )
    assert transitions.fail_job(session, broken.id, error)
    cases.append(VideoCase("broken.mp4", ("/srv/inbox/broken.mp4",), state="failed", error=error))

    # A video that killed its worker: the attempts cap marks it failed.
    crashy = ingest.record_path(
        session, "/srv/inbox/crashy.mp4", _digest("crashy"), 2048, model
    ).job
    transitions.claim_job(session, crashy.id, "celery@test-1", max_attempts=1)
    exhausted = transitions.claim_job(session, crashy.id, "celery@test-1", max_attempts=1)
    cases.append(
        VideoCase("crashy.mp4", ("/srv/inbox/crashy.mp4",), "failed", error=exhausted.reason)
    )

    ingest.record_path(session, "/srv/inbox/waiting.mp4", _digest("waiting"), 4096, model)
    cases.append(VideoCase("waiting.mp4", ("/srv/inbox/waiting.mp4",), state="queued"))
    session.commit()  # the library is one unit of work, as a caller commits its own
    session.close()
    engine.dispose()
    return Library(url=url, run_dir=run_dir, videos=tuple(cases), figures=figures)


def run_report(*args: str, url: str, cwd: Path) -> CliResult:
    """``python -m storage --database-url URL report ARGS`` as a person runs it, through its
    entry point in this process (``--help`` runs in a real one: test_report_cli.py)."""
    env = {key: value for key, value in os.environ.items() if key != env_name("database_url")}
    argv = ["--database-url", url, "report", *args]
    return run_in_process(storage_entry_point.main, argv, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def sqlite_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    folder = tmp_path_factory.mktemp("library")
    return build_library(f"sqlite:///{folder / 'actiontag.db'}", folder / "runs" / "split1")


@pytest.fixture
def report_runner():
    """run_report(*args, url=..., cwd=...) -> CliResult."""
    return run_report


@pytest.fixture
def library_builder():
    """build_library(url, run_dir) -> Library."""
    return build_library
