"""docs/configuration.md is the declarations' own page: written from them, never by hand."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from actiontag.settings import COMMANDS, COMPONENTS, SPEC
from actiontag.settings.reference import markdown

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "configuration.md"


def test_the_committed_page_is_what_the_declarations_write() -> None:
    assert PAGE.read_text(encoding="utf-8") == markdown(), (
        "docs/configuration.md is stale: run `make docs` and commit it"
    )


def test_the_command_prints_the_page() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actiontag.settings", "--markdown"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    assert done.stdout == markdown()


def test_each_setting_has_one_row_under_its_component_with_flag_and_default() -> None:
    page = markdown()
    for component in COMPONENTS:
        start = page.index(f"\n## {component.name}\n")
        end = page.find("\n## ", start + 1)
        section = page[start : end if end >= 0 else len(page)]
        for command in component.commands:
            assert f"`{COMMANDS[command]}`" in section
        for declared in SPEC:
            rows = [line for line in page.splitlines() if line.startswith(f"| `{declared.env}` |")]
            if declared.component is not component:
                continue
            assert len(rows) == 1 and rows[0] in section, declared.name
            if declared.flag is not None:
                assert re.search(rf"`{re.escape(declared.flag)}[ `]", rows[0]), declared.name
            assert declared.describe_default().replace("*", "\\*") in rows[0], declared.name


def test_a_help_text_cannot_break_its_table() -> None:
    row = next(line for line in markdown().splitlines() if "ACTIONTAG_WEB_ALLOWED_HOSTS" in line)

    assert "\\*.example.com" in row  # not the start of an emphasis
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four columns
