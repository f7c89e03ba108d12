"""`make demo` in a fresh clone of the committed HEAD, as a newcomer runs it.

It must end with the results table listing every sample with its state, write the
report, stop watcher and worker cleanly, and leave no process and no default database
behind. The module's tests share one run that serves the session's demonstration
checkpoint (tests/conftest.py's ``demo_training``, configured by ACTIONTAG_CHECKPOINT),
so the segments and shot cuts it shows for the longer sample are the trained model's.
The slow test takes the whole first-time path: no checkpoint configured, so the demo
trains its model, and a second `make demo` reuses it.

Why this is a fresh-clone test although the clone borrows the development venv's
third-party packages: every line of the project that runs comes from the clone (checked
below), so a file that is not committed, or a step the Makefile lacks to run the demo,
fails here; see ``helpers.fresh_clone``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DemoTraining
from tests.demo.helpers import CLASSES, Clone, clean_env, fresh_clone, processes_using

# Each sample and how its job must end: the real videos are tagged, the files that are
# not videos (zero bytes; text named .mp4) fail with the reason.
EXPECTED = {
    "motion-pan_up.avi": "done",
    "motion-pan_down.avi": "done",
    "motion-pan_sideways.avi": "done",
    "motion-still.avi": "done",
    "motions-in-a-row.avi": "done",
    "box.mp4": "done",
    "av1_video.mkv": "done",
    "fire2.mp4": "done",
    "result.webm": "failed",
    "not-a-video.mp4": "failed",
}
# A row of `python -m storage list`: JOB STATE TOP-1 CONF UPDATED VIDEO PATH[: ERROR].
ROW = re.compile(
    r"^\s*(?P<job>\d+)\s+(?P<state>queued|running|done|failed)\s+(?P<label>\S+)\s+"
    r"(?P<confidence>\S+)\s.*/var/demo/inbox/(?P<name>[^:\s]+)(?P<error>:.*)?$"
)
pytestmark = pytest.mark.e2e  # real watcher and worker processes
MAKE_DEMO_S = 400
# Training the demonstration model: ~1 min on a quiet 2-core machine, ~10 min loaded.
MAKE_DEMO_TRAINING_S = 1500


@dataclass(frozen=True)
class DemoRun:
    clone: Clone
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"make demo exited {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def table(self) -> dict[str, re.Match[str]]:
        """The results table's rows by file name."""
        _, found, rest = self.stdout.partition("results, from the database:")
        assert found, self.explain()
        rows = {}
        for line in rest.splitlines():
            match = ROW.match(line)
            if match:
                rows[match["name"]] = match
            if re.fullmatch(r"\d+ result\(s\)", line.strip()):
                break
        return rows


def make_demo(clone: Clone, timeout: float, **env: str) -> DemoRun:
    done = subprocess.run(
        ["make", "demo", f"VENV={clone.venv}"],
        cwd=clone.path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return DemoRun(clone, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, demo_training: DemoTraining) -> DemoRun:
    clone = fresh_clone(tmp_path_factory.mktemp("fresh-clone"))
    ran_from = subprocess.run(
        [
            str(clone.venv / "bin" / "python"),
            "-c",
            "import launcher, worker; print(worker.__file__)",
        ],
        cwd="/",
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(ran_from).is_relative_to(clone.path), ran_from
    return make_demo(clone, MAKE_DEMO_S, ACTIONTAG_CHECKPOINT=str(demo_training.checkpoint))


def test_results_table_lists_every_sample_with_the_state_it_should_end_in(
    demo_run: DemoRun,
) -> None:
    assert demo_run.returncode == 0, demo_run.explain()
    rows = demo_run.table()
    assert {name: row["state"] for name, row in rows.items()} == EXPECTED, demo_run.explain()


def test_tagged_samples_show_a_label_of_the_model_and_its_confidence(demo_run: DemoRun) -> None:
    rows = demo_run.table()
    for name, state in EXPECTED.items():
        if state == "done":
            assert rows[name]["label"] in CLASSES, rows[name].group(0)
            assert 0 < float(rows[name]["confidence"]) <= 1, rows[name].group(0)
    for motion in CLASSES:  # the demonstration model knows the synthetic motions
        assert rows[f"motion-{motion}.avi"]["label"] == motion, demo_run.explain()


def test_failed_samples_show_why(demo_run: DemoRun) -> None:
    rows = demo_run.table()
    for name, state in EXPECTED.items():
        if state == "failed":
            assert rows[name]["label"] == "-", rows[name].group(0)
            assert "cannot read" in (rows[name]["error"] or ""), rows[name].group(0)


def test_both_services_stop_cleanly_and_no_process_survives(demo_run: DemoRun) -> None:
    assert "watcher stopped (exit code 0); worker stopped (exit code 0)" in demo_run.stdout, (
        demo_run.explain()
    )
    assert processes_using(demo_run.clone.path) == []


def test_the_html_report_is_written_under_var_demo_with_every_sample(demo_run: DemoRun) -> None:
    page = demo_run.clone.path / "var" / "demo" / "report" / "index.html"
    assert f"wrote var/demo/report/index.html: {len(EXPECTED)} video(s)" in demo_run.stdout, (
        demo_run.explain()
    )
    html = page.read_text(encoding="utf-8")
    for name in EXPECTED:
        assert name in html


def test_the_longer_sample_is_shown_with_a_window_a_second_and_its_segments(
    demo_run: DemoRun,
) -> None:
    _, found, shown = demo_run.stdout.partition("what happens when in motions-in-a-row.avi")
    assert found, demo_run.explain()
    windows = re.search(r"timeline: (\d+) window\(s\), (\d+) segment\(s\)", shown)
    assert windows is not None, shown
    assert int(windows[1]) == 67  # 67 s, a window a second (the last one's clip fits)
    # 14 motions of 3-8 s (trainer.motion_videos.DEMO_TRUTH_PARTS), 5 of them after a hard cut.
    assert int(windows[2]) >= 10, shown
    strip = re.search(r"^\s+([A-Z.]{60})  segments$", shown, re.MULTILINE)
    assert strip is not None, shown
    assert len(set(strip[1]) - {"."}) == 4, strip[1]  # every motion of the demo model
    listed = re.findall(
        r"^\s+\d+\. \d\d:\d\d:\d\d\.\d{3}-\d\d:\d\d:\d\d\.\d{3} ", shown, re.MULTILINE
    )
    assert len(listed) == int(windows[2]), shown
    cuts = re.search(r"^\s+shot cuts: (.*)$", shown, re.MULTILINE)
    assert cuts is not None and len(cuts[1].split()) == 5, shown


def test_the_report_draws_the_longer_samples_timeline(demo_run: DemoRun) -> None:
    html = (demo_run.clone.path / "var" / "demo" / "report" / "index.html").read_text("utf-8")
    cards = re.findall(r'<article class="video.*?</article>', html, re.DOTALL)
    (card,) = [card for card in cards if "motions-in-a-row.avi" in card]
    assert '<section class="timeline"' in card
    assert card.count('class="cut"') == 5
    assert card.count('<span class="segment"') >= 10


def test_the_demo_leaves_the_default_database_broker_and_inbox_alone(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, demo_run.explain()
    clone = demo_run.clone.path
    for default in ("var/actiontag.db", "var/broker.sqlite", "inbox"):
        assert not (clone / default).exists(), default
    assert (clone / "var" / "demo" / "actiontag.db").is_file()


@pytest.mark.slow
@pytest.mark.timeout(2 * MAKE_DEMO_TRAINING_S + MAKE_DEMO_S)
def test_first_make_demo_trains_the_demonstration_model_and_the_next_reuses_it(
    tmp_path: Path,
) -> None:
    clone = fresh_clone(tmp_path)
    first = make_demo(clone, MAKE_DEMO_TRAINING_S)
    assert first.returncode == 0, first.explain()
    assert "training the demonstration model on synthetic motion clips" in first.stdout
    assert {name: row["state"] for name, row in first.table().items()} == EXPECTED
    right = re.search(r"against the truth .*: (\d+)% of its time labelled right", first.stdout)
    assert right is not None and int(right[1]) >= 90, first.explain()
    checkpoint = clone.path / "var" / "demo" / "model" / "split1" / "model.pt"
    made = checkpoint.stat().st_mtime_ns

    second = make_demo(clone, MAKE_DEMO_S)
    assert second.returncode == 0, second.explain()
    assert "(the demonstration model, made by an earlier run)" in second.stdout
    assert "training" not in second.stdout
    assert checkpoint.stat().st_mtime_ns == made
    assert {name: row["state"] for name, row in second.table().items()} == EXPECTED
    assert processes_using(clone.path) == []
