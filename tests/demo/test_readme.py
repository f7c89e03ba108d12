"""The README and the guides under docs/ keep telling the truth: their SQL examples run
against the real schema, their moments output is what the command prints, the command
reference names every flag the code has, the README stays short and every relative link
leads to a file that exists."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage.cli import main as storage_main
from storage.db import make_sessionmaker, open_database
from storage.ingest import record_path, register_model
from storage.results import JobResult, complete_job
from storage.transitions import claim_job, fail_job
from tests.demo.helpers import REPO
from tests.support.packages import PACKAGES
from timeline.values import Segment, Timeline, Window

README_PATH = REPO / "README.md"
DOCS = REPO / "docs"
README = README_PATH.read_text(encoding="utf-8")
QUERYING = (DOCS / "querying.md").read_text(encoding="utf-8")
COMMANDS = (DOCS / "commands.md").read_text(encoding="utf-8")
README_MAX_LINES = 250
LINK = re.compile(r"\]\(([^)\s]+)\)")
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.DOTALL)
SETTING = re.compile(r"\bACTIONTAG_[A-Z0-9_]+\b")
BIKE = "/inbox/rides/bike.mp4"
STREET = "/inbox/street.mp4"


def ride(start: float, end: float, mean: float, peak: float) -> Segment:
    return Segment(start, end, "ride_bike", mean, peak, (("ride_bike", mean), ("walk", 0.05)))


# Riding from 0 to 5.5 s at 80% (a cut there), then walking: one moment of the README's.
BIKE_TIMELINE = Timeline(
    windows=tuple(
        Window(t, t + 1.0, "ride_bike" if t < 5 else "walk", 0.8) for t in (0.0, 2.0, 4.0, 6.0)
    ),
    segments=(ride(0.0, 5.5, 0.8, 0.9), Segment(6.0, 7.5, "walk", 0.8, 0.8, (("walk", 0.8),))),
    cuts=(5.5,),
)
# Riding too briefly (1.5 s) or not surely enough (60%): none is a moment of the README's.
STREET_TIMELINE = Timeline(
    windows=(Window(1.0, 2.0, "ride_bike", 0.9), Window(3.0, 4.0, "ride_bike", 0.6)),
    segments=(ride(1.0, 2.5, 0.9, 0.95), ride(3.0, 9.0, 0.6, 0.7)),
    cuts=(),
)


def sql_examples() -> list[str]:
    """Every SQL block of the README and of docs/querying.md, each once."""
    found = [block.strip() for text in (README, QUERYING) for block in SQL_BLOCK.findall(text)]
    return list(dict.fromkeys(found))


def seed(engine: Engine) -> None:
    """A small results database, written as the services write it (storage.ingest,
    storage.transitions, storage.results)."""
    meta = {"duration": 3.0, "fps": 30.0, "frames": 90, "width": 320, "height": 240}
    with make_sessionmaker(engine)() as session:
        model = register_model(
            session,
            "ab" * 32,
            "/models/actiontag.pt",
            split=3,
            class_names=["ride_bike", "walk", "wave"],
            metrics={"top1": 0.5},
        )
        tagged = [
            (BIKE, "1", [("ride_bike", 0.82), ("walk", 0.1)], BIKE_TIMELINE),
            (STREET, "2", [("walk", 0.6), ("ride_bike", 0.3)], STREET_TIMELINE),
        ]
        for path, digit, predictions, timeline in tagged:
            job = record_path(session, path, digit * 64, 1000, model.id).job
            claim_job(session, job.id, "w@host#0", max_attempts=3)
            complete_job(
                session,
                job.id,
                JobResult(
                    predictions=predictions,
                    expert_usage=[(0.7, 8), (0.3, 2)],
                    video_meta=meta,
                    decode_ms=12.0,
                    inference_ms=80.0,
                    timeline=timeline,
                ),
            )
        broken = record_path(session, "/inbox/broken.mp4", "3" * 64, 0, model.id).job
        fail_job(session, broken.id, "cannot read '/inbox/broken.mp4' as a video: empty")
        record_path(session, "/inbox/new.mp4", "4" * 64, 500, model.id)
        session.commit()


@pytest.fixture
def results(database_url: str) -> Engine:
    engine = open_database(database_url)
    seed(engine)
    yield engine
    engine.dispose()


def test_the_readme_and_the_querying_guide_have_sql_examples() -> None:
    assert SQL_BLOCK.findall(README)
    assert len(SQL_BLOCK.findall(QUERYING)) >= 5


@pytest.mark.parametrize("number", range(len(sql_examples())))
def test_each_sql_example_runs_and_finds_rows(results: Engine, number: int) -> None:
    with results.connect() as conn:
        rows = conn.execute(text(sql_examples()[number])).all()
    assert rows, sql_examples()[number]


def test_the_label_example_finds_the_videos_with_that_label_above_the_confidence(
    results: Engine,
) -> None:
    (query,) = [sql for sql in sql_examples() if "p.label = 'ride_bike'" in sql]
    with results.connect() as conn:
        rows = conn.execute(text(query)).all()
    # street.mp4 has ride_bike too, but at 0.3.
    assert [(row.path, row.rank, row.confidence) for row in rows] == [(BIKE, 1, 0.82)]


def test_the_bike_moments_example_finds_each_long_sure_ride(results: Engine) -> None:
    (query,) = [sql for sql in sql_examples() if "FROM segments s" in sql]
    assert "every moment someone rides a bike, at least 70% sure, longer than 2 s" in (
        query.lower()
    )
    with results.connect() as conn:
        rows = conn.execute(text(query)).all()
    # street.mp4 rides too, but for 1.5 s, or at 60%.
    assert [tuple(row) for row in rows] == [(BIKE, 0.0, 5.5, 5.5, 0.8)]


@pytest.mark.parametrize(
    ("text", "heading"),
    [
        (README, "## Asking for results"),
        (QUERYING, "## Moments: where in a video an action happens"),
    ],
    ids=["README", "querying"],
)
def test_the_moments_command_prints_what_the_page_shows(
    results: Engine, database_url: str, text: str, heading: str
) -> None:
    shown = section(heading, text)
    command, printed = re.search(
        r"```bash\n\$ (python -m storage moments .*?)\n(.*?)```", shown, re.DOTALL
    ).groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = storage_main(["--database-url", database_url, *command.split()[3:]])
    assert code == 0
    assert out.getvalue() == printed


def settings_in_the_code() -> set[str]:
    used = set()
    for package in PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            used |= set(SETTING.findall(source.read_text(encoding="utf-8")))
    return used


def test_every_actiontag_setting_in_the_code_is_in_the_configuration_reference() -> None:
    reference = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = sorted(name for name in settings_in_the_code() if f"`{name}`" not in reference)
    assert not missing, f"settings docs/configuration.md lacks: {missing}"


def test_every_flag_of_each_command_is_in_its_reference() -> None:
    """A flag is in the command's table of docs/commands.md, or it is the flag of a setting
    of a component the command takes, whose row is in docs/configuration.md."""
    from actiontag.settings import SPEC
    from launcher.__main__ import build_parser as launcher_parser
    from storage.options import build_parser as storage_parser
    from trainer.options import build_parser as trainer_parser
    from watcher.options import build_parser as watcher_parser
    from web.options import build_parser as web_parser
    from worker.options import build_parser as worker_parser

    commands = {
        "watcher": ("## `python -m watcher`", watcher_parser()),
        "worker": ("## `python -m worker`", worker_parser()),
        "trainer": ("## `python -m trainer`", trainer_parser()),
        "storage": ("## `python -m storage`", storage_parser()),
        "web": ("## `python -m web`", web_parser()),
        "launcher": ("## `make demo` and `make up` (`python -m launcher`)", launcher_parser()),
    }
    reference = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = {}
    for command, (heading, parser) in commands.items():
        table = section(heading, COMMANDS)
        settings = {
            declared.flag
            for declared in SPEC
            if declared.flag is not None
            and command in declared.component.commands
            and f"`{declared.env}`" in reference
        }
        for flag in sorted(flags(parser)):
            negated = flag.replace("--no-", "--", 1)
            if flag in settings or (flag.startswith("--no-") and negated in settings):
                continue
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", table):
                missing.setdefault(command, []).append(flag)
    assert not missing, f"flags neither docs/commands.md nor docs/configuration.md has: {missing}"


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option and subcommand of ``parser`` and its subcommands, but --help."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(name)
                found |= flags(sub)
        else:
            found |= {o for o in action.option_strings if o.startswith("--") and o != "--help"}
    return found


def section(heading: str, text: str) -> str:
    """``text`` from ``heading`` to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n")
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_the_readme_is_short() -> None:
    lines = README.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail to docs/"


def relative_links(page: Path) -> list[str]:
    """The targets of ``page``'s markdown links that are not URLs or in-page anchors."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    targets = (target.split("#", 1)[0] for target in LINK.findall(text))
    return [target for target in targets if target and "://" not in target]


def test_every_relative_link_of_the_readme_and_the_guides_leads_to_a_file() -> None:
    pages = [README_PATH, *sorted(DOCS.glob("*.md"))]
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in pages
        for target in relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert not broken, f"links to files that do not exist: {broken}"


def test_a_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md#top) [web](https://example.com) [gone](gone.md)\n")

    assert relative_links(page) == ["page.md", "gone.md"]


def test_the_readme_shows_a_screenshot_that_is_a_png() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README)
    assert images, "the README shows no screenshot"
    for image in images:
        assert (REPO / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_the_development_guide_names_every_test_folder() -> None:
    guide = (DOCS / "development.md").read_text(encoding="utf-8")
    folders = sorted(
        path.name
        for path in (REPO / "tests").iterdir()
        if path.is_dir() and path.name[0] not in "._"
    )
    missing = [name for name in folders if f"| `tests/{name}` |" not in guide]
    assert not missing, f"test folders docs/development.md's table lacks: {missing}"


def _own_videos_commands() -> list[str]:
    """The command lines of the README's "Train on your own videos", continuations
    joined, comments and prompts dropped."""
    section = README.split("## Train on your own videos", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the README's own-videos section has no command block"
    joined = block.group(1).replace("\\\n", " ")
    lines = (line.split("#", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def test_the_own_videos_commands_of_the_readme_are_accepted_by_their_commands() -> None:
    from actiontag.settings import Settings, env_name
    from storage.options import parse_args as storage_args
    from trainer.options import build_parser as trainer_parser

    known = {env_name(name) for name in Settings.__dataclass_fields__}
    seen = set()
    for line in _own_videos_commands():
        words = line.split()
        assignments = [w for w in words if re.fullmatch(r"[A-Z][A-Z0-9_]*=\S+", w)]
        words = words[len(assignments) :]
        assert all(a.split("=", 1)[0] in known for a in assignments), line
        if words[:3] == ["python", "-m", "trainer"]:
            trainer_parser().parse_args(words[3:])  # an unknown flag exits: the test fails
        elif words[:3] == ["python", "-m", "storage"]:
            storage_args(words[3:])
        else:
            assert words == ["make", "up"], f"a README command this test does not know: {line}"
        seen.add(" ".join(words[:4]))
    assert {
        "python -m trainer --dataset",
        "python -m storage retag",
        "python -m storage export",
        "make up",
    } <= seen
