"""docker-compose.yml and .env.example, checked without a Docker engine.

The file is parsed with PyYAML, its ${VAR} references are substituted the way Compose
does (from .env.example, or from nothing to exercise the defaults), and the result is
validated against the Compose Specification's JSON schema (tests/fixtures/compose).
Substituting first is what Compose itself does, and it is needed: the schema types
fields such as a GPU `count` as string-or-integer, and only the substituted value is
what Docker receives.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CPU_OVERRIDE = ROOT / "docker-compose.cpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json"

APP_SERVICES = ("worker", "watcher", "web", "trainer")
SERVICES_THAT_WAIT = ("worker", "watcher")
GPU_SERVICES = ("worker", "trainer")
SECRET_FILE = "/run/secrets/postgres_password"
# The one variable Compose requires (`${VAR:?message}`), and a value that satisfies it.
REQUIRED = "ACTIONTAG_WEB_TOKEN"
TOKEN = "a-token-of-sixteen-or-more-characters"
# The registry images each configurable image defaults to, and the variable naming it.
DEFAULT_IMAGES = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "REDIS_IMAGE": "redis:7.4-alpine",
    "POSTGRES_IMAGE": "postgres:17-bookworm",
}


# --- Compose's variable substitution (the subset this file may use) ------------------------

NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
BRACED = re.compile(r"(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-?])(?P<default>.*))?", re.S)


class InterpolationError(ValueError):
    """A ${...} form this implementation does not handle; Compose might read it otherwise."""


class MissingVariable(ValueError):
    """A required variable (``${VAR:?message}``) is unset or empty: Compose stops, saying
    the message."""


@dataclass(frozen=True)
class Reference:
    name: str
    op: str | None = None  # ":-", "-", ":?", "?", or None for ${VAR} and $VAR
    default: str = ""  # the message, for ":?" and "?"

    @property
    def has_default(self) -> bool:
        return self.op in (":-", "-")

    @property
    def required(self) -> bool:
        return self.op in (":?", "?")


def _scan(value: str) -> Iterator[str | Reference]:
    """Splits a string into literal text and variable references, as Compose reads them."""
    i = 0
    while i < len(value):
        if value[i] != "$":
            j = value.find("$", i)
            j = len(value) if j < 0 else j
            yield value[i:j]
            i = j
            continue
        following = value[i + 1 : i + 2]
        if following == "$":
            yield "$"
            i += 2
        elif following == "{":
            end = value.find("}", i + 2)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {value!r}")
            yield _braced(value[i + 2 : end], value)
            i = end + 1
        elif match := NAME.match(value, i + 1):
            yield Reference(match.group())
            i = match.end()
        else:
            # Compose keeps a '$' that starts no variable as it is.
            yield "$"
            i += 1


def _braced(expression: str, whole: str) -> Reference:
    match = BRACED.fullmatch(expression)
    if match is None or "$" in (match.group("default") or ""):
        raise InterpolationError(
            f"'${{{expression}}}' in {whole!r}: only ${{VAR}}, ${{VAR:-default}}, "
            "${VAR-default}, ${VAR:?message}, ${VAR?message} and $$ are implemented here"
        )
    return Reference(match.group("name"), match.group("op"), match.group("default") or "")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in _scan(value):
        if isinstance(part, str):
            out.append(part)
        elif part.op == ":-":
            out.append(env.get(part.name) or part.default)
        elif part.op == "-":
            out.append(env.get(part.name, part.default))
        elif part.required:
            if not env.get(part.name) and (part.op == ":?" or part.name not in env):
                raise MissingVariable(
                    f"required variable {part.name} is missing a value: {part.default}"
                )
            out.append(env[part.name])
        else:
            # Unset without a default: Compose warns and substitutes an empty string.
            out.append(env.get(part.name, ""))
    return "".join(out)


def references(value: str) -> list[Reference]:
    return [part for part in _scan(value) if isinstance(part, Reference)]


def _map_strings(node: Any, fn) -> Any:
    """Applies fn to every string value (not to keys, as Compose)."""
    if isinstance(node, dict):
        return {key: _map_strings(value, fn) for key, value in node.items()}
    if isinstance(node, list):
        return [_map_strings(item, fn) for item in node]
    if isinstance(node, str):
        return fn(node)
    return node


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


# --- Loading -------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, '#' comments and blank lines: the .env syntax this project uses."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not NAME.fullmatch(key):
            raise ValueError(f"{path.name}:{number}: not a KEY=VALUE line: {line!r}")
        if key in env:
            raise ValueError(f"{path.name}:{number}: {key} is set twice")
        env[key] = value.strip()
    return env


def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a YAML mapping"
    return document


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The file as Compose sees it: YAML anchors and merge keys resolved, then substituted."""
    return _map_strings(raw_compose(), lambda value: interpolate(value, env))


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's `!reset` tag, read as the marker RESET."""


RESET = object()
_ComposeLoader.add_constructor("!reset", lambda loader, node: RESET)


def raw_override(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_ComposeLoader)  # a SafeLoader
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


def gpu_reservations(service: Mapping[str, Any]) -> list[Any]:
    deploy = service.get("deploy") or {}
    devices = ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []
    return [device for device in devices if "gpu" in device.get("capabilities", [])]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    # The operator sets the token in .env; the example leaves it empty on purpose.
    return {**read_env_file(ENV_EXAMPLE), REQUIRED: TOKEN}


@pytest.fixture(scope="module")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    return load_compose(env_example)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_errors(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    target: str
    read_only: bool


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    """Both the short ('src:dst:ro') and the long syntax."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            target, _, mode = rest.partition(":")
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            found.append(Mount(kind, source, target, "ro" in mode.split(",")))
        else:
            read_only = entry.get("read_only") in (True, "true")
            found.append(Mount(entry["type"], entry.get("source", ""), entry["target"], read_only))
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def mount_holding(service: Mapping[str, Any], path: str) -> Mount | None:
    holding = [m for m in mounts(service) if path == m.target or path.startswith(m.target + "/")]
    return max(holding, key=lambda m: len(m.target), default=None)


# --- The substitution itself ---------------------------------------------------------------


def test_interpolation_substitutes_braced_and_bare_variables() -> None:
    assert interpolate("${A}/$B/${MISSING}x", {"A": "1", "B": "2"}) == "1/2/x"


def test_interpolation_colon_default_replaces_unset_and_empty_values() -> None:
    assert interpolate("${A:-d}", {}) == "d"
    assert interpolate("${A:-d}", {"A": ""}) == "d"
    assert interpolate("${A:-d}", {"A": "v"}) == "v"


def test_interpolation_plain_default_replaces_only_unset_values() -> None:
    assert interpolate("${A-d}", {}) == "d"
    assert interpolate("${A-d}", {"A": ""}) == ""


def test_interpolation_double_dollar_is_a_literal_dollar() -> None:
    assert interpolate("$${A} $$A a$b$", {"A": "no", "b": "B"}) == "${A} $A aB$"


def test_interpolation_colon_question_mark_stops_on_an_unset_or_empty_value() -> None:
    assert interpolate("${A:?say this}", {"A": "v"}) == "v"
    for env in ({}, {"A": ""}):
        with pytest.raises(MissingVariable, match="A is missing a value: say this"):
            interpolate("${A:?say this}", env)


def test_interpolation_plain_question_mark_stops_only_on_an_unset_value() -> None:
    assert interpolate("${A?say this}", {"A": ""}) == ""
    with pytest.raises(MissingVariable, match="say this"):
        interpolate("${A?say this}", {})


@pytest.mark.parametrize("form", ["${A:+alt}", "${A:-${B}}", "${A"])
def test_interpolation_rejects_forms_it_does_not_implement(form: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(form, {})


# --- Validity ------------------------------------------------------------------------------


def test_compose_validates_against_the_compose_specification(
    validator: Draft7Validator, compose: dict[str, Any]
) -> None:
    assert schema_errors(validator, compose) == []


def test_compose_validates_with_its_own_defaults_and_only_the_token(
    validator: Draft7Validator,
) -> None:
    assert schema_errors(validator, load_compose({REQUIRED: TOKEN})) == []


def test_schema_validation_rejects_an_unknown_depends_on_condition(
    validator: Draft7Validator, compose: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"
    assert any("depends_on" in error for error in schema_errors(validator, broken))


def test_every_substituted_variable_but_the_web_token_has_a_default() -> None:
    # So `docker compose up` needs nothing in .env but the password and the token.
    without = {
        ref.name: ref.op
        for value in _strings(raw_compose())
        for ref in references(value)
        if not ref.has_default
    }
    assert without == {REQUIRED: ":?"}


@pytest.mark.parametrize("token", [None, ""])
def test_compose_refuses_every_command_without_a_web_token(
    env_example: dict[str, str], token: str | None
) -> None:
    # Empty as in .env.example, or not there at all: compose stops before starting anything,
    # rather than report Started while the web service restarts for ever.
    env = {key: value for key, value in env_example.items() if key != REQUIRED}
    if token is not None:
        env[REQUIRED] = token
    with pytest.raises(MissingVariable, match=rf"{REQUIRED} .*set {REQUIRED} in \.env"):
        load_compose(env)


def test_only_the_web_service_reads_the_web_token(env_example: dict[str, str]) -> None:
    readers = {
        name
        for name, service in load_compose(env_example)["services"].items()
        if REQUIRED in environment(service)
    }
    assert readers == {"web"}


# --- Services and profiles -----------------------------------------------------------------


def test_compose_defines_the_seven_services(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "postgres", "worker", "watcher", "web", "trainer", "flower"}


def test_trainer_and_flower_start_only_with_their_profiles(services: dict[str, Any]) -> None:
    assert services["trainer"]["profiles"] == ["train"]
    assert services["flower"]["profiles"] == ["monitor"]


def test_redis_postgres_worker_watcher_and_web_start_without_a_profile(
    services: dict[str, Any],
) -> None:
    always = {name for name, service in services.items() if not service.get("profiles")}
    assert always == {"redis", "postgres", "worker", "watcher", "web"}


def test_redis_is_healthchecked_with_ping_and_publishes_no_port(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert "ports" not in redis


def test_postgres_is_healthchecked_with_pg_isready(services: dict[str, Any]) -> None:
    test = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in test
    # $$ reaches the container's shell as $, which expands the image's own variables.
    assert "${POSTGRES_USER}" in test


def test_postgres_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    data = mount_holding(services["postgres"], "/var/lib/postgresql/data")
    assert data is not None and data.type == "volume"
    assert data.source in compose["volumes"]


def test_postgres_and_the_app_read_the_password_from_one_secret(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    assert compose["secrets"]["postgres_password"] == {"environment": "POSTGRES_PASSWORD"}
    assert environment(services["postgres"])["POSTGRES_PASSWORD_FILE"] == SECRET_FILE
    for name in ("postgres", *SERVICES_THAT_WAIT):
        assert "postgres_password" in services[name]["secrets"], name
    for name in SERVICES_THAT_WAIT:
        assert environment(services[name])["ACTIONTAG_DATABASE_PASSWORD_FILE"] == SECRET_FILE


def test_the_password_never_appears_in_the_resolved_configuration(
    env_example: dict[str, str],
) -> None:
    resolved = load_compose({**env_example, "POSTGRES_PASSWORD": "s3cret-sentinel"})
    assert not [value for value in _strings(resolved) if "s3cret-sentinel" in value]


@pytest.mark.parametrize("name", SERVICES_THAT_WAIT)
def test_service_starts_only_once_redis_and_postgres_are_healthy(
    services: dict[str, Any], name: str
) -> None:
    assert services[name]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


def test_every_dependency_awaited_as_healthy_has_a_healthcheck(services: dict[str, Any]) -> None:
    awaited = {
        dependency
        for service in services.values()
        for dependency, rule in (service.get("depends_on") or {}).items()
        if rule["condition"] == "service_healthy"
    }
    assert awaited
    assert {
        name for name in awaited if "test" not in services[name].get("healthcheck", {})
    } == set()


def test_cpu_override_removes_every_gpu_reservation(services: dict[str, Any]) -> None:
    reserving = {name for name, service in services.items() if gpu_reservations(service)}
    override = raw_override(CPU_OVERRIDE)["services"]
    reset = {name for name, service in override.items() if service.get("deploy") is RESET}
    assert reserving == set(GPU_SERVICES)
    assert reset == reserving


def test_cpu_override_changes_nothing_but_the_reservations() -> None:
    override = raw_override(CPU_OVERRIDE)
    assert set(override) == {"services"}
    assert {key for service in override["services"].values() for key in service} == {"deploy"}


@pytest.mark.parametrize("name", GPU_SERVICES)
def test_service_reserves_nvidia_gpus(services: dict[str, Any], name: str) -> None:
    devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["capabilities"] == ["gpu"]
    assert devices[0]["count"] == "all" or str(devices[0]["count"]).isdigit()


def test_worker_gpu_count_follows_worker_gpus(env_example: dict[str, str]) -> None:
    worker = load_compose({**env_example, "WORKER_GPUS": "1"})["services"]["worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["count"] == "1"


def test_worker_can_be_scaled_without_collisions(services: dict[str, Any]) -> None:
    # --scale worker=N fails on a fixed name or host port, and Celery node names clash on
    # a fixed hostname.
    worker = services["worker"]
    assert {"container_name", "hostname", "ports"} & set(worker) == set()


@pytest.mark.parametrize("name", SERVICES_THAT_WAIT)
def test_service_sees_the_inbox_read_only_at_actiontag_inbox(
    services: dict[str, Any], name: str
) -> None:
    inbox = environment(services[name])["ACTIONTAG_INBOX"]
    mount = mount_holding(services[name], inbox)
    assert mount is not None and mount.target == inbox
    assert mount.read_only


def test_worker_and_watcher_see_the_inbox_at_the_same_path(services: dict[str, Any]) -> None:
    # The watcher records paths that the workers then open.
    seen = set()
    for name in SERVICES_THAT_WAIT:
        inbox = environment(services[name])["ACTIONTAG_INBOX"]
        mount = mount_holding(services[name], inbox)
        assert mount is not None, name
        seen.add((inbox, mount.source))
    assert len(seen) == 1


@pytest.mark.parametrize("name", SERVICES_THAT_WAIT)
def test_checkpoint_is_on_a_read_only_mount(services: dict[str, Any], name: str) -> None:
    checkpoint = environment(services[name])["ACTIONTAG_CHECKPOINT"]
    mount = mount_holding(services[name], checkpoint)
    assert mount is not None and mount.read_only


def test_worker_caches_exported_engines_on_a_writable_named_volume(
    services: dict[str, Any],
) -> None:
    # The checkpoint's folder is read-only, so the export cache must live elsewhere, and on a
    # volume so a restarted or scaled worker does not export the model again.
    cache = environment(services["worker"])["ACTIONTAG_ENGINE_CACHE"]
    mount = mount_holding(services["worker"], cache)
    assert mount is not None and mount.type == "volume" and not mount.read_only


def test_web_writes_uploads_into_the_inbox_the_watcher_reads(services: dict[str, Any]) -> None:
    web, watcher = services["web"], services["watcher"]
    inbox = environment(web)["ACTIONTAG_INBOX"]
    assert inbox == environment(watcher)["ACTIONTAG_INBOX"]
    mount = mount_holding(web, inbox)
    watched = mount_holding(watcher, inbox)
    assert mount is not None and watched is not None
    assert mount.target == inbox and not mount.read_only
    assert mount.source == watched.source


def test_web_is_published_on_loopback_and_asks_for_a_token(services: dict[str, Any]) -> None:
    web = services["web"]
    host_ip, published, target = web["ports"][0].rsplit(":", 2)
    assert (host_ip, published, target) == ("127.0.0.1", "8000", "8000")
    assert web["command"] == ["python", "-m", "web", "--host", "0.0.0.0", "--port", "8000"]
    assert "ACTIONTAG_WEB_TOKEN" in environment(web)
    assert web["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_watcher_polls_the_inbox_by_default(services: dict[str, Any]) -> None:
    defaults = load_compose({REQUIRED: TOKEN})["services"]["watcher"]
    assert defaults["environment"]["ACTIONTAG_POLL"] == "1"
    assert environment(services["watcher"])["ACTIONTAG_POLL"] == "1"


def test_trainer_runs_the_split_named_by_split_default_one(env_example: dict[str, str]) -> None:
    default = load_compose({REQUIRED: TOKEN})["services"]["trainer"]["command"]
    chosen = load_compose({**env_example, "SPLIT": "3"})["services"]["trainer"]["command"]
    assert default == ["--split", "1"]
    assert chosen == ["--split", "3"]


def test_trainer_takes_the_arguments_of_run_as_its_flags(services: dict[str, Any]) -> None:
    # `docker compose --profile train run --rm trainer --help` replaces only the command.
    assert services["trainer"]["entrypoint"] == ["python", "-m", "trainer"]


def test_trainer_writes_data_and_runs_to_named_volumes(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    # The image's working directory, where the trainer's data/ and runs/ defaults resolve.
    workdir = "/var/lib/actiontag"
    for folder in ("data", "runs"):
        mount = mount_holding(services["trainer"], f"{workdir}/{folder}")
        assert mount is not None and mount.type == "volume" and not mount.read_only, folder
        assert mount.source in compose["volumes"], folder


def test_flower_publishes_5555_and_watches_the_workers_broker(services: dict[str, Any]) -> None:
    flower = services["flower"]
    host_ip, published, target = flower["ports"][0].rsplit(":", 2)
    assert (published, target) == ("5555", "5555")
    assert host_ip == "127.0.0.1"
    broker = environment(services["worker"])["ACTIONTAG_BROKER_URL"]
    assert f"--broker={broker}" in flower["command"]
    assert flower["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_named_volumes_used_by_services_are_declared(compose: dict[str, Any]) -> None:
    used = {
        mount.source
        for service in compose["services"].values()
        for mount in mounts(service)
        if mount.type == "volume"
    }
    assert used == set(compose["volumes"])
    assert {"pgdata", "redis-data", "runs", "hmdb51-data", "cache"} <= used


def test_secrets_used_by_services_are_declared(compose: dict[str, Any]) -> None:
    used = {
        secret if isinstance(secret, str) else secret["source"]
        for service in compose["services"].values()
        for secret in service.get("secrets", [])
    }
    assert used == set(compose["secrets"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_a_module_of_the_project_image(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["image"] == services["worker"]["image"]
    assert service["build"]["context"] == "."
    python, flag, module = [*service.get("entrypoint", []), *service["command"]][:3]
    assert (python, flag) == ("python", "-m")
    assert (ROOT / module / "__init__.py").is_file(), module


@pytest.mark.parametrize("name", SERVICES_THAT_WAIT)
def test_service_gets_the_x_common_environment(compose: dict[str, Any], name: str) -> None:
    shared = compose["x-common"]["environment"]
    assert shared.items() <= environment(compose["services"][name]).items()


@pytest.mark.parametrize(("variable", "default"), DEFAULT_IMAGES.items())
def test_every_base_image_is_configurable_and_defaults_to_the_registry_tag(
    variable: str, default: str
) -> None:
    document = raw_compose()
    named = {
        "PYTHON_IMAGE": document["x-common"]["build"]["args"].get("PYTHON_IMAGE"),
        "REDIS_IMAGE": document["services"]["redis"]["image"],
        "POSTGRES_IMAGE": document["services"]["postgres"]["image"],
    }
    assert named[variable] == f"${{{variable}:-{default}}}"


# --- .env.example --------------------------------------------------------------------------


def test_env_example_lists_every_variable_compose_reads_and_no_other(
    env_example: dict[str, str],
) -> None:
    document = raw_compose()
    substituted = {ref.name for value in _strings(document) for ref in references(value)}
    secret_sources = {
        secret["environment"] for secret in document["secrets"].values() if "environment" in secret
    }
    assert set(env_example) == substituted | secret_sources


def test_actiontag_variables_of_the_containers_are_those_of_env_example(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    in_containers = {
        key
        for service in compose["services"].values()
        for key in environment(service)
        if key.startswith("ACTIONTAG_")
    }
    assert in_containers == {key for key in env_example if key.startswith("ACTIONTAG_")}


def test_every_actiontag_setting_in_env_example_reaches_a_container(
    env_example: dict[str, str],
) -> None:
    unreached = []
    for key in (key for key in env_example if key.startswith("ACTIONTAG_")):
        sentinel = f"sentinel-for-{key.lower()}"
        resolved = load_compose({**env_example, key: sentinel})
        if not any(environment(s).get(key) == sentinel for s in resolved["services"].values()):
            unreached.append(key)
    assert unreached == []


def test_every_env_example_setting_has_its_own_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    uncommented = [
        line.partition("=")[0]
        for previous, line in zip(["", *lines[:-1]], lines, strict=True)
        if line and not line.startswith("#") and not previous.startswith("#")
    ]
    assert uncommented == []
