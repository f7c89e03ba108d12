"""The Dockerfile, its build context (.dockerignore) and what `pip install .` ships.

No Docker engine runs here, so the Dockerfile is read with BuildKit's own parser (the
`dockerfile` package wraps it) and checked for what the services rely on. The parser
runs in a child process: it is Go code, and a Go runtime loaded into the test process
would stay there for the rest of the run with its own threads and signal handlers. (It
was loaded when a test process died of a kernel-raised SIGSEGV in CI; later deaths came
without it, so it was not the cause, but the test process is easier to reason about
without it.) The wheel
test builds the project the way the image installs it (a regular, not editable,
install) and looks inside.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
PACKAGES = ("actiontag", "model", "trainer", "worker", "watcher", "storage")
BASE_IMAGE = "python:3.11-slim-bookworm"
# Files a package needs at run time besides its modules: Alembic's ini and script template.
SHIPPED_SUFFIXES = {".py", ".ini", ".mako"}

# The Dockerfile reference's instructions; BuildKit's parser splits any word, known or not.
INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}


@dataclass(frozen=True)
class Instruction:
    """One instruction as BuildKit's parser reads it (``Instruction``'s fields)."""

    cmd: str
    sub_cmd: str | None
    json: bool
    original: str
    start_line: int
    end_line: int
    flags: tuple[str, ...]
    value: tuple[str, ...]


_PARSE = """
import dockerfile, json, sys
print(json.dumps([
    {field: getattr(c, field) for field in sys.argv[2].split(",")}
    for c in dockerfile.parse_file(sys.argv[1])
]))
"""


def parse_dockerfile(path: Path) -> tuple[Instruction, ...]:
    fields = ",".join(Instruction.__dataclass_fields__)
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(path), fields],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return tuple(
        Instruction(**{**raw, "flags": tuple(raw["flags"]), "value": tuple(raw["value"])})
        for raw in json.loads(result.stdout)
    )


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    commands: list[Instruction]


def stages(commands: tuple[Instruction, ...]) -> list[Stage]:
    found: list[Stage] = []
    for command in commands:
        if command.cmd == "FROM":
            words = command.value
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name, []))
        elif found:
            found[-1].commands.append(command)
    return found


def env_settings(stage: Stage) -> dict[str, str]:
    settings: dict[str, str] = {}
    for command in stage.commands:
        if command.cmd == "ENV":
            pairs = command.value
            settings.update(zip(pairs[::2], pairs[1::2], strict=True))
    return settings


def copy_sources(stage: Stage) -> list[str]:
    """Sources of COPY/ADD that come from the build context (not from another stage)."""
    return [
        source
        for command in stage.commands
        if command.cmd in ("COPY", "ADD")
        and not any(flag.startswith("--from=") for flag in command.flags)
        for source in command.value[:-1]
    ]


def runs_of(stage: Stage) -> list[str]:
    return [" ".join(command.value) for command in stage.commands if command.cmd == "RUN"]


@pytest.fixture(scope="module")
def commands() -> tuple[Instruction, ...]:
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(commands: tuple[Instruction, ...]) -> Stage:
    return stages(commands)[-1]


# --- .dockerignore, as the builder's pattern matcher reads it ------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def read_dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def excluded(path: str, patterns: list[str]) -> bool:
    """The last pattern matching the path or one of its parent folders decides; '!' keeps."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        body = pattern[1:] if keep else pattern
        regex = _glob_regex(body.removeprefix("./").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not keep
    return verdict


# --- The matcher itself -------------------------------------------------------------------


def test_dockerignore_matcher_follows_parent_folders_and_exceptions() -> None:
    patterns = ["data", "**/__pycache__", "*.md", "!README.md"]
    assert excluded("data/hmdb51/a.avi", patterns)
    assert excluded("model/__pycache__/x.pyc", patterns)
    assert excluded("NOTES.md", patterns)
    assert not excluded("README.md", patterns)
    assert not excluded("model/data.py", patterns)


# --- The Dockerfile ------------------------------------------------------------------------


def test_dockerfile_uses_only_known_instructions(
    commands: tuple[Instruction, ...],
) -> None:
    assert [c.cmd for c in commands if c.cmd not in INSTRUCTIONS] == []
    first_from = next(n for n, c in enumerate(commands) if c.cmd == "FROM")
    assert {c.cmd for c in commands[:first_from]} <= {"ARG"}


def test_dockerfile_builds_in_stages_on_python_3_11_slim_bookworm(
    commands: tuple[Instruction, ...],
) -> None:
    found = stages(commands)
    assert len(found) >= 2
    assert {stage.base for stage in found} == {BASE_IMAGE}


def test_runtime_stage_copies_only_from_earlier_named_stages(
    commands: tuple[Instruction, ...],
) -> None:
    found = stages(commands)
    earlier = {stage.name for stage in found[:-1]}
    copied_from = {
        flag.removeprefix("--from=")
        for command in found[-1].commands
        if command.cmd == "COPY"
        for flag in command.flags
        if flag.startswith("--from=")
    }
    assert copied_from and copied_from <= earlier


def test_runtime_stage_installs_libarchive_tools_and_cleans_apt_lists(runtime: Stage) -> None:
    apt = [run for run in runs_of(runtime) if "apt-get install" in run]
    assert len(apt) == 1
    assert "libarchive-tools" in apt[0].split()
    assert "--no-install-recommends" in apt[0]
    assert "apt-get update" in apt[0] and "rm -rf /var/lib/apt/lists/*" in apt[0]


def test_runtime_stage_switches_to_a_non_root_user_after_its_installs(runtime: Stage) -> None:
    keywords = [c.cmd for c in runtime.commands]
    users = [c for c in runtime.commands if c.cmd == "USER"]
    assert len(users) == 1
    assert keywords.index("USER") > max(n for n, k in enumerate(keywords) if k in ("RUN", "COPY"))
    user = users[0].value[0].split(":")[0]
    assert user not in ("root", "0")


def test_torch_and_torchvision_pins_match_the_makefile(
    commands: tuple[Instruction, ...],
) -> None:
    pins = re.search(r"^TORCH_PINS\s*:?=\s*(.+)$", MAKEFILE.read_text(), re.M)
    assert pins is not None, "the Makefile no longer defines TORCH_PINS"
    installs = " ".join(run for stage in stages(commands) for run in runs_of(stage))
    for pin in pins.group(1).split():
        assert re.search(rf"(?<![\w.=-]){re.escape(pin)}(?![\w.])", installs), pin
    assert {pin.split("==")[0] for pin in pins.group(1).split()} == {"torch", "torchvision"}


def test_torch_comes_from_pypi_cuda_wheels_unless_an_index_is_given(
    commands: tuple[Instruction, ...],
) -> None:
    builder = stages(commands)[0]
    args = dict(c.value[0].partition("=")[::2] for c in builder.commands if c.cmd == "ARG")
    assert args["TORCH_INDEX_URL"] in ('""', "")
    torch_install = next(run for run in runs_of(builder) if "torch==" in run)
    assert "${TORCH_INDEX_URL:+" in torch_install
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-common"]["build"]["args"]["TORCH_INDEX_URL"] == "${TORCH_INDEX_URL:-}"


def test_default_command_runs_the_worker_in_exec_form(runtime: Stage) -> None:
    cmds = [c for c in runtime.commands if c.cmd == "CMD"]
    assert len(cmds) == 1
    assert cmds[0].json and cmds[0].value == ("python", "-m", "worker")
    assert (ROOT / "worker" / "__init__.py").is_file()


def test_runtime_environment_is_unbuffered_and_caches_torch_on_the_cache_volume(
    runtime: Stage,
) -> None:
    env = env_settings(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    cache = compose["x-cache-mount"]["target"]
    assert env["TORCH_HOME"].startswith(cache + "/")
    in_compose = compose["x-common"]["environment"]["TORCH_HOME"]
    assert in_compose == f"${{TORCH_HOME:-{env['TORCH_HOME']}}}"


# --- The build context ---------------------------------------------------------------------


def test_build_context_holds_everything_the_dockerfile_copies(
    commands: tuple[Instruction, ...],
) -> None:
    patterns = read_dockerignore()
    sources = [src for stage in stages(commands) for src in copy_sources(stage)]
    assert sources
    missing = [src for src in sources if not (ROOT / src).exists()]
    ignored = [src for src in sources if excluded(src, patterns)]
    assert (missing, ignored) == ([], [])


def test_build_context_copies_every_package(commands: tuple[Instruction, ...]) -> None:
    sources = {src.strip("/") for stage in stages(commands) for src in copy_sources(stage)}
    assert {"pyproject.toml", "README.md", *PACKAGES} <= sources


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "var/actiontag.db",
        "data/hmdb51/videos/run/a.avi",
        "runs/split1/model.pt",
        "inbox/clip.mp4",
        "models/model.pt",
        ".env",
        "model/__pycache__/network.cpython-311.pyc",
    ],
)
def test_dockerignore_keeps_state_and_secrets_out_of_the_context(path: str) -> None:
    assert excluded(path, read_dockerignore())


# --- What `pip install .` puts in the image ------------------------------------------------


def test_installed_distribution_ships_every_module_and_migration_file(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    subprocess.run([*build, "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("actiontag-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {
        path.relative_to(source).as_posix()
        for package in PACKAGES
        for path in (source / package).rglob("*")
        if path.suffix in SHIPPED_SUFFIXES
    }
    assert expected - shipped == set()


def test_the_go_parser_stays_out_of_the_test_process(commands: tuple[Instruction, ...]) -> None:
    assert commands and "dockerfile" not in sys.modules
