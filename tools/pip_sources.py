"""Runs a command (a `docker build`) with this machine's pip configuration made reachable.

pip inside an image build sees none of the host's configuration: not its pip.conf files,
not its PIP_* variables, not the local folders they name (file:// indexes, find-links
folders, constraint files), not its CA bundle. This writes OUT/pip.conf, the host's
configuration with every local folder and file replaced by an http://127.0.0.1 address
that this process serves while the command runs, and OUT/pip-ca.pem, the CA bundle the
host's pip uses. The build reads both as BuildKit secrets and runs with host networking,
so its pip installs exactly what the host's pip would:

    python tools/pip_sources.py OUT -- docker build --network=host \\
        --secret id=pip.conf,src=OUT/pip.conf --secret id=pip-ca,src=OUT/pip-ca.pem .

Exits with the command's status.
"""

from __future__ import annotations

import argparse
import configparser
import http.server
import os
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

# pip's own reading of its configuration, shared with make install (run as a script,
# this folder is on the path).
from uv_pip import pip_settings

# Options whose values are lists of index URLs, folders or files that pip reads.
SOURCES = ("index-url", "extra-index-url", "find-links", "constraint")
# Options naming paths of this machine that mean nothing inside a build.
DROPPED = ("cache-dir", "log", "target", "prefix", "root", "src", "build", "client-cert")
# Where the build mounts the pip-ca secret (BuildKit's default target for its id).
CA_IN_BUILD = "/run/secrets/pip-ca"


class Roots:
    """The local folders and files pip may read, served at their own paths.

    An index folder's project pages may link up to its parent (the usual layout is
    ROOT/simple/NAME/ linking to ../../files/), so that parent is served too; nothing
    else of the machine is.
    """

    def __init__(self) -> None:
        self.allowed: list[Path] = []
        self.base = ""

    def url(self, path: Path, *, index: bool = False) -> str:
        root = path.parent if index else path
        if root not in self.allowed:
            self.allowed.append(root)
        # A folder's address ends in "/" so that pip resolves relative links inside it.
        return self.base + quote(path.as_posix()) + ("" if path.is_file() else "/")

    def resolve(self, request_path: str) -> Path | None:
        target = Path(unquote(urlparse(request_path).path)).resolve()
        if any(target == root or root in target.parents for root in self.allowed):
            return target
        return None


def local_path(item: str) -> Path | None:
    """The local file or folder an option's item names, or None for a remote URL."""
    parsed = urlparse(item)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    if parsed.scheme in ("http", "https"):
        return None
    return Path(item).expanduser().resolve()


def build_configuration(host: dict[str, str], roots: Roots) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key, value in host.items():
        if key in DROPPED:
            continue
        if key == "cert":
            settings[key] = CA_IN_BUILD
        elif key in SOURCES:
            items = []
            for item in value.split():
                path = local_path(item)
                if path is None:
                    items.append(item)
                elif path.exists():
                    items.append(roots.url(path, index=key.endswith("index-url")))
            settings[key] = " ".join(items)
        else:
            settings[key] = value
    settings.setdefault("cert", CA_IN_BUILD)
    return settings


def ca_bundle(host: dict[str, str]) -> Path:
    """The CA bundle the host's pip verifies TLS with: its `cert`, else its certifi's."""
    if host.get("cert"):
        return Path(host["cert"])
    verify = ssl.get_default_verify_paths().cafile
    if verify and Path(verify).is_file():
        return Path(verify)
    from pip._vendor import certifi  # what pip itself falls back to

    return Path(certifi.where())


def handler(roots: Roots) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            resolved = roots.resolve(path)
            return str(resolved) if resolved is not None else "/nonexistent/"

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per wheel would bury the build's own output

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for pip.conf and pip-ca.pem")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")

    roots = Roots()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(roots))
    roots.base = f"http://127.0.0.1:{server.server_address[1]}"
    host = pip_settings()
    config = configparser.ConfigParser(interpolation=None)
    config["global"] = build_configuration(host, roots)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "pip.conf").open("w") as stream:
        config.write(stream)
    shutil.copyfile(ca_bundle(host), args.out / "pip-ca.pem")

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        return subprocess.run(command, env=os.environ.copy()).returncode
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
