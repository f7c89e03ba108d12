"""The configuration reference (docs/configuration.md), written from the declarations.

``python -m actiontag.settings --markdown > docs/configuration.md`` (``make docs``)
writes it; tests/settings/test_reference.py fails when the committed page and this
output differ, so the page cannot fall behind the code.
"""

from __future__ import annotations

from actiontag.settings.spec import COMMANDS, COMPONENTS, DURATION, SPEC, Component, Setting

COMMAND = "python -m actiontag.settings --markdown > docs/configuration.md"

INTRODUCTION = f"""\
# Configuration

<!-- Written by `make docs` ({COMMAND})
from the declarations in actiontag/settings/spec.py: edit those, not this page. -->

Every actiontag process reads its settings once, in this order: a flag, else its
`ACTIONTAG_*` environment variable, else that variable's line in the env file (`make up`
reads `.env`), else the default. An empty variable counts as unset. A value no process
can use stops the command with a usage error (exit status 2) naming the flag or the
variable it came from; the value of a secret is never repeated.

- A {DURATION} is a number of seconds (`30`, `0.5`) or a number and a unit: `ms`, `s`,
  `m` or `min`, `h`, `d`, `w` (`500ms`, `30s`, `1.5min`, `2h`, `7d`, `1w`),
  case-insensitive.
- A SIZE is a number of bytes or a number and `K`, `M`, `G`, `T` (powers of 1024, an
  optional `B` or `iB` after them): `4096`, `512K`, `256M`, `1.5GiB`, `20G`.
- A yes/no value is `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`; as a flag,
  `--NAME` or `--no-NAME`.

The settings are grouped by the component they configure. Each command takes the flags
of the components it uses, and every setting, flag or not, from its variable; `make
demo` takes `--checkpoint`, `--device` and `--engine`. A command's own options (the
watcher's `--once`, the worker's `--hostname`...) are in its `--help`.
"""


def _cell(text: str) -> str:
    """``text`` as one table cell: no line break, and no character markdown would read
    as a column, emphasis or a tag (``*.example.com``, ``.upload-*.part``)."""
    for character in "\\|*<>":
        text = text.replace(character, "\\" + character)
    return text.replace("\n", " ")


def _flag(declared: Setting) -> str:
    if declared.flag is None:
        return "(variable only)"
    if declared.parse.__name__ == "parse_bool":
        return f"`{declared.flag}`, `--no-{declared.flag.removeprefix('--')}`"
    return f"`{declared.flag} {declared.metavar}`" if declared.metavar else f"`{declared.flag}`"


def _default(declared: Setting) -> str:
    if declared.default_text is not None:
        return _cell(declared.default_text)
    # In a code span only a column's bar needs its backslash (GFM tables).
    value = declared.describe_default().replace("|", "\\|")
    return f"`{value}`"


def _component(component: Component) -> list[str]:
    settings = [declared for declared in SPEC if declared.component is component]
    takers = ", ".join(f"`{COMMANDS[name]}`" for name in component.commands)
    lines = [
        f"## {component.name}",
        "",
        f"{component.summary} Its flags are taken by {takers}.",
        "",
        "| Variable | Flag | Default | What it sets |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{declared.env}` | {_flag(declared)} | {_default(declared)} | {_cell(declared.help)} |"
        for declared in settings
    ]
    return lines


def _commands() -> list[str]:
    lines = ["| Command | Takes the flags of |", "| --- | --- |"]
    for command, program in COMMANDS.items():
        names = ", ".join(f"[{c.name}](#{c.name})" for c in COMPONENTS if command in c.commands)
        lines.append(f"| `{program}` | {names} |")
    return lines


def markdown() -> str:
    """docs/configuration.md: the introduction, which command takes which components'
    flags, then one table per component."""
    lines = [INTRODUCTION.rstrip("\n"), "", *_commands()]
    for component in COMPONENTS:
        lines += ["", *_component(component)]
    return "\n".join(lines) + "\n"
