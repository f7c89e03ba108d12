"""The Dockerfile, its build context (.dockerignore) and what `pip install .` ships.

No Docker engine runs here, so the Dockerfile is parsed the way the builder splits it
(continuation lines joined, comments dropped, one instruction per logical line) and
checked for what the services rely on. The wheel test builds the project the way the
image installs it (a regular, not editable, install) and looks inside.
"""

from __future__ import annotations

import json
import re
import shlex
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
PACKAGES = ("model", "trainer", "worker", "watcher", "storage")
BASE_IMAGE = "python:3.11-slim-bookworm"
# Files a package needs at run time besides its modules: Alembic's ini and script template.
SHIPPED_SUFFIXES = {".py", ".ini", ".mako"}

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


# --- A small Dockerfile reader -------------------------------------------------------------


class DockerfileError(ValueError):
    """The Dockerfile does not split into instructions the way the builder expects."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical lines: a trailing backslash continues, comment lines are dropped."""
    instructions: list[Instruction] = []
    pieces: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Also inside a continuation, where the builder drops them too.
        if "<<" in stripped and re.search(r"<<-?[\"']?[A-Za-z_]+", stripped):
            raise DockerfileError(f"line {number}: heredocs are not handled by this reader")
        start = start or number
        continued = stripped.endswith("\\")
        pieces.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, args = " ".join(pieces).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pieces, start = [], 0
    if pieces:
        raise DockerfileError(f"line {start}: a continuation runs past the end of the file")
    return instructions


def stages(instructions: list[Instruction]) -> list[Stage]:
    found: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [word for word in words if not word.startswith("--platform=")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name, []))
        elif found:
            found[-1].instructions.append(instruction)
    return found


def exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def env_settings(stage: Stage) -> dict[str, str]:
    settings: dict[str, str] = {}
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                key, sep, value = word.partition("=")
                if not sep:
                    raise DockerfileError(f"line {instruction.line}: use ENV key=value")
                settings[key] = value
    return settings


def copy_sources(stage: Stage) -> list[str]:
    """Sources of COPY/ADD that come from the build context (not from another stage)."""
    sources: list[str] = []
    for instruction in stage.instructions:
        if instruction.keyword in ("COPY", "ADD"):
            words = shlex.split(instruction.args)
            if any(word.startswith("--from=") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            sources.extend(paths[:-1])
    return sources


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(instructions: list[Instruction]) -> Stage:
    return stages(instructions)[-1]


def runs_of(stage: Stage) -> list[str]:
    return [i.args for i in stage.instructions if i.keyword == "RUN"]


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


# --- The reader itself ---------------------------------------------------------------------


def test_reader_joins_continuations_and_drops_comments() -> None:
    text = "FROM a AS b\n# note\nRUN one \\\n  # inside\n  two\nUSER 1\n"
    assert [(i.keyword, i.args, i.line) for i in parse_dockerfile(text)] == [
        ("FROM", "a AS b", 1),
        ("RUN", "one two", 3),
        ("USER", "1", 6),
    ]


def test_reader_rejects_a_dangling_continuation() -> None:
    with pytest.raises(DockerfileError):
        parse_dockerfile("FROM a\nRUN one \\\n")


def test_dockerignore_matcher_follows_parent_folders_and_exceptions() -> None:
    patterns = ["data", "**/__pycache__", "*.md", "!README.md"]
    assert excluded("data/hmdb51/a.avi", patterns)
    assert excluded("model/__pycache__/x.pyc", patterns)
    assert excluded("NOTES.md", patterns)
    assert not excluded("README.md", patterns)
    assert not excluded("model/data.py", patterns)


# --- The Dockerfile ------------------------------------------------------------------------


def test_dockerfile_uses_only_known_instructions(instructions: list[Instruction]) -> None:
    assert [i.keyword for i in instructions if i.keyword not in INSTRUCTIONS] == []
    first_from = next(n for n, i in enumerate(instructions) if i.keyword == "FROM")
    assert {i.keyword for i in instructions[:first_from]} <= {"ARG"}


def test_dockerfile_builds_in_stages_on_python_3_11_slim_bookworm(
    instructions: list[Instruction],
) -> None:
    found = stages(instructions)
    assert len(found) >= 2
    assert {stage.base for stage in found} == {BASE_IMAGE}


def test_runtime_stage_copies_only_from_earlier_named_stages(
    instructions: list[Instruction],
) -> None:
    found = stages(instructions)
    earlier = {stage.name for stage in found[:-1]}
    copied_from = {
        word.removeprefix("--from=")
        for i in found[-1].instructions
        if i.keyword == "COPY"
        for word in shlex.split(i.args)
        if word.startswith("--from=")
    }
    assert copied_from and copied_from <= earlier


def test_runtime_stage_installs_libarchive_tools_and_cleans_apt_lists(runtime: Stage) -> None:
    apt = [run for run in runs_of(runtime) if "apt-get install" in run]
    assert len(apt) == 1
    assert "libarchive-tools" in apt[0].split()
    assert "--no-install-recommends" in apt[0]
    assert "apt-get update" in apt[0] and "rm -rf /var/lib/apt/lists/*" in apt[0]


def test_runtime_stage_switches_to_a_non_root_user_after_its_installs(runtime: Stage) -> None:
    keywords = [i.keyword for i in runtime.instructions]
    users = [i for i in runtime.instructions if i.keyword == "USER"]
    assert len(users) == 1
    assert keywords.index("USER") > max(n for n, k in enumerate(keywords) if k in ("RUN", "COPY"))
    user = users[0].args.split(":")[0]
    assert user not in ("root", "0")


def test_torch_and_torchvision_pins_match_the_makefile(instructions: list[Instruction]) -> None:
    pins = re.search(r"^TORCH_PINS\s*:?=\s*(.+)$", MAKEFILE.read_text(), re.M)
    assert pins is not None, "the Makefile no longer defines TORCH_PINS"
    installs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    for pin in pins.group(1).split():
        assert re.search(rf"(?<![\w.=-]){re.escape(pin)}(?![\w.])", installs), pin
    assert {pin.split("==")[0] for pin in pins.group(1).split()} == {"torch", "torchvision"}


def test_torch_comes_from_pypi_cuda_wheels_unless_an_index_is_given(
    instructions: list[Instruction],
) -> None:
    builder = stages(instructions)[0]
    args = {
        i.args.partition("=")[0]: i.args.partition("=")[2]
        for i in builder.instructions
        if i.keyword == "ARG"
    }
    assert args["TORCH_INDEX_URL"] in ('""', "")
    torch_install = next(run for run in runs_of(builder) if "torch==" in run)
    assert "${TORCH_INDEX_URL:+" in torch_install
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-common"]["build"]["args"]["TORCH_INDEX_URL"] == "${TORCH_INDEX_URL:-}"


def test_default_command_runs_the_worker_in_exec_form(runtime: Stage) -> None:
    commands = [i for i in runtime.instructions if i.keyword == "CMD"]
    assert len(commands) == 1
    assert exec_form(commands[0].args) == ["python", "-m", "worker"]
    assert (ROOT / "worker" / "__init__.py").is_file()


def test_runtime_environment_is_unbuffered_and_caches_torch_on_the_cache_volume(
    runtime: Stage,
) -> None:
    env = env_settings(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    cache = compose["x-cache-mount"]["target"]
    assert env["TORCH_HOME"].startswith(cache + "/")
    assert (
        compose["x-common"]["environment"]["TORCH_HOME"] == f"${{TORCH_HOME:-{env['TORCH_HOME']}}}"
    )


# --- The build context ---------------------------------------------------------------------


def test_build_context_holds_everything_the_dockerfile_copies(
    instructions: list[Instruction],
) -> None:
    patterns = read_dockerignore()
    sources = [src for stage in stages(instructions) for src in copy_sources(stage)]
    assert sources
    missing = [src for src in sources if not (ROOT / src).exists()]
    ignored = [src for src in sources if excluded(src, patterns)]
    assert (missing, ignored) == ([], [])


def test_build_context_copies_every_package(instructions: list[Instruction]) -> None:
    sources = {src.strip("/") for stage in stages(instructions) for src in copy_sources(stage)}
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
