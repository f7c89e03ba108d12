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
PACKAGES = ("actiontag", "decoding", "timeline", "model", "trainer", "worker", "watcher", "storage")
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


def global_args(commands: tuple[Instruction, ...]) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults: what a FROM line may name."""
    args: dict[str, str] = {}
    for command in commands:
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, _, default = command.value[0].partition("=")
            args[name] = default.strip('"')
    return args


def stages(commands: tuple[Instruction, ...]) -> list[Stage]:
    """The build stages, each base image named with the global ARGs' defaults."""
    args = global_args(commands)
    found: list[Stage] = []
    for command in commands:
        if command.cmd == "FROM":
            words = command.value
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            found.append(Stage(base, name, []))
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


def mounts_of(command: Instruction) -> list[dict[str, str]]:
    """A RUN's --mount flags, each as its key=value options."""
    return [
        dict(option.partition("=")[::2] for option in flag.removeprefix("--mount=").split(","))
        for flag in command.flags
        if flag.startswith("--mount=")
    ]


def pip_runs(stage: Stage) -> list[Instruction]:
    return [c for c in stage.commands if c.cmd == "RUN" and "pip " in " ".join(c.value)]


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


def test_every_stage_starts_from_the_python_image_build_argument(
    commands: tuple[Instruction, ...],
) -> None:
    # So tools/base_images.sh's local image can stand in where no registry is reachable.
    assert global_args(commands) == {"PYTHON_IMAGE": BASE_IMAGE}
    assert {c.value[0] for c in commands if c.cmd == "FROM"} == {"${PYTHON_IMAGE}"}


def test_dockerfile_needs_no_frontend_from_a_registry() -> None:
    # A `# syntax=` directive makes BuildKit fetch that frontend image (offline: "failed to
    # solve with frontend gateway.v0"); the engine's built-in one reads RUN --mount.
    directives = []
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        if re.match(r"#\s*\w+\s*=", line):
            directives.append(line)
    assert directives == []


def test_runtime_stage_takes_files_only_from_earlier_named_stages(
    commands: tuple[Instruction, ...],
) -> None:
    found = stages(commands)
    earlier = {stage.name for stage in found[:-1]}
    copied = {
        flag.removeprefix("--from=")
        for command in found[-1].commands
        if command.cmd == "COPY"
        for flag in command.flags
        if flag.startswith("--from=")
    }
    mounted = {
        mount["from"]
        for command in found[-1].commands
        if command.cmd == "RUN"
        for mount in mounts_of(command)
        if "from" in mount
    }
    assert mounted and copied | mounted <= earlier


def test_runtime_installs_torch_then_the_dependencies_then_the_project_in_layers_of_their_own(
    runtime: Stage,
) -> None:
    # A code change rebuilds (and a push sends) only the last, small layer; one COPY of a
    # whole virtual environment from another stage would be one layer of gigabytes.
    installs = [" ".join(c.value) for c in pip_runs(runtime)]
    assert len(installs) == 3
    torch, dependencies, project = installs
    assert "torch==" in torch and "-r" not in torch.split()
    assert "-r /tmp/requirements.txt" in dependencies
    assert "--no-deps" in project.split() and "--no-index" in project.split()
    assert not [c for c in runtime.commands if c.cmd == "COPY" and "/opt/venv" in c.value]


def test_project_layer_installs_the_wheel_built_in_its_own_stage(
    commands: tuple[Instruction, ...], runtime: Stage
) -> None:
    wheel = next(stage for stage in stages(commands) if stage.name == "wheel")
    assert any("pip wheel" in run and "--no-deps" in run for run in runs_of(wheel))
    (project,) = [c for c in pip_runs(runtime) if "--no-deps" in c.value[0]]
    assert [m.get("from") for m in mounts_of(project)] == ["wheel"]


def test_requirements_stage_lists_every_dependency_and_the_fast_extra(
    commands: tuple[Instruction, ...], tmp_path: Path
) -> None:
    import tomllib

    stage = next(stage for stage in stages(commands) if stage.name == "requirements")
    (run,) = runs_of(stage)
    extras = dict(c.value[0].partition("=")[::2] for c in stage.commands if c.cmd == "ARG")
    script = run.replace("/src/pyproject.toml", str(ROOT / "pyproject.toml"))
    script = script.replace("/requirements.txt", str(tmp_path / "requirements.txt"))
    script = script.replace("python -c", f"{sys.executable} -c", 1)
    env = {"EXTRAS": extras["EXTRAS"].strip('"'), "PATH": "/usr/bin:/bin"}
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=60)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["fast"]
    assert (tmp_path / "requirements.txt").read_text().splitlines() == expected


def test_every_pip_that_reaches_an_index_reads_the_pip_configuration_secrets(
    commands: tuple[Instruction, ...],
) -> None:
    # tools/pip_sources.py hands the host's pip configuration in as these two secrets.
    reaching = [
        command
        for stage in stages(commands)
        for command in pip_runs(stage)
        if "--no-index" not in command.value[0]
    ]
    assert len(reaching) == 3
    for command in reaching:
        secrets = {
            (m.get("id"), m.get("target")) for m in mounts_of(command) if m["type"] == "secret"
        }
        assert secrets == {("pip.conf", "/etc/pip.conf"), ("pip-ca", None)}, command.original


def test_the_app_user_is_not_a_system_account(runtime: Stage) -> None:
    # uid 10001 lies above the system range: useradd --system warns about it.
    (account,) = [run for run in runs_of(runtime) if "useradd" in run]
    assert "--uid 10001" in account and "--gid 10001" in account
    assert "--system" not in account.split()


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


def test_torch_comes_from_pypi_cuda_wheels_unless_an_index_is_given(runtime: Stage) -> None:
    args = dict(c.value[0].partition("=")[::2] for c in runtime.commands if c.cmd == "ARG")
    assert args["TORCH_INDEX_URL"] in ('""', "")
    torch_install = next(run for run in runs_of(runtime) if "torch==" in run)
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
