"""Run `uv pip ...` with the package sources and network settings pip is configured with.

`make install` installs with uv: it unpacks and byte-compiles the ~110 wheels (torch's
CUDA libraries are 5 GB of them) on every core, where pip does one file at a time, in
about half pip's time (docs/benchmarks.md, bench/install.py). uv
reads none of pip's configuration, though, and a machine may take its wheels from where
only pip.conf or PIP_* variables say (a local index, a mirror, a constraints file): this
reads them with `pip config list` and passes them on as uv's own options. pip looks in
every index for the best version of each package; `--index-strategy unsafe-best-match`
is that.

    python tools/uv_pip.py install --python .venv/bin/python -e '.[dev]'
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# pip's sections in the order pip lets them override each other: environment variables
# beat the [install] section, which beats [global].
SECTIONS = (":env:", "install", "global")
# Settings that are lists in pip (whitespace-separated) and the uv option for each item.
LIST_OPTIONS = {
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "trusted-host": "--allow-insecure-host",
}
SINGLE_OPTIONS = {"index-url": "--index-url"}
FLAGS = {"no-index": ("--no-index",), "pre": ("--prerelease", "allow")}
# pip settings uv takes from the environment (uv's documented variables). pip's proxy
# serves every scheme: both of the variables uv reads for one.
ENVIRONMENT = {
    "cert": ("SSL_CERT_FILE",),
    "client-cert": ("SSL_CLIENT_CERT",),
    "timeout": ("UV_HTTP_TIMEOUT",),
    "default-timeout": ("UV_HTTP_TIMEOUT",),
    "proxy": ("HTTP_PROXY", "HTTPS_PROXY"),
}
# pip settings that change nothing uv does here (pip's own output, cache and checks).
IGNORED = {
    "disable-pip-version-check",
    "no-cache-dir",
    "cache-dir",
    "progress-bar",
    "no-color",
    "quiet",
    "verbose",
    "no-input",
    "root-user-action",
    "no-warn-script-location",
    "break-system-packages",
    "retries",
}
TRUE = {"1", "true", "yes", "on"}


def pip_settings() -> dict[str, str]:
    """pip's effective settings (name -> value) as `pip config list` shows them."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return effective(parse_config_list(listed))


def parse_config_list(listed: str) -> dict[str, str]:
    """`pip config list`'s lines, ``section.name='value'``, as a dict."""
    found = {}
    for line in listed.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            found[key.strip()] = str(ast.literal_eval(value.strip()))
    return found


def effective(listed: Mapping[str, str]) -> dict[str, str]:
    """Each setting's value from the section pip lets win."""
    settings: dict[str, str] = {}
    for section in reversed(SECTIONS):  # lowest first, so the higher ones overwrite
        prefix = f"{section}."
        for key, value in listed.items():
            if key.startswith(prefix):
                settings[key.removeprefix(prefix)] = value
    return settings


def uv_arguments(settings: Mapping[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """uv's options and environment variables for pip's settings, and the settings uv
    has no equivalent for."""
    options = ["--index-strategy", "unsafe-best-match"]
    environment: dict[str, str] = {}
    unknown = []
    for name, value in sorted(settings.items()):
        if name in LIST_OPTIONS:
            for item in value.split():
                options += [LIST_OPTIONS[name], item]
        elif name in SINGLE_OPTIONS:
            options += [SINGLE_OPTIONS[name], value]
        elif name in FLAGS:
            if value.strip().lower() in TRUE:
                options += FLAGS[name]
        elif name in ENVIRONMENT:
            environment.update(dict.fromkeys(ENVIRONMENT[name], value))
        elif name not in IGNORED:
            unknown.append(name)
    return options, environment, unknown


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        print("uv not found: install it first (python -m pip install uv)", file=sys.stderr)
        return 2
    options, environment, unknown = uv_arguments(pip_settings())
    for name in unknown:
        print(f"uv_pip: pip's setting {name!r} has no uv equivalent here: ignored", file=sys.stderr)
    command, rest = arguments[0], arguments[1:]
    return subprocess.run(
        [uv, "pip", command, *options, *rest], env={**os.environ, **environment}
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
