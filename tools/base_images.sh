#!/usr/bin/env bash
# Builds local stand-ins for the three registry images the compose stack starts from
# (python:3.11-slim-bookworm, redis:7.4-alpine, postgres:17-bookworm) out of Debian
# packages with mmdebstrap, for machines that cannot pull from a registry. Prints the
# variables that make docker-compose.yml and the Dockerfile use them:
#
#   tools/base_images.sh > base-images.env     # then add those lines to .env
#
# What differs from the official images: Debian's Python 3.11 (/usr/bin/python3) instead of
# a python.org build, Debian's Redis 7.0 and PostgreSQL 15 instead of 7.4 and 17, and two
# small entrypoints below that do what the official ones do for this stack (Redis without
# protected mode, PostgreSQL initialised from POSTGRES_USER, POSTGRES_DB and
# POSTGRES_PASSWORD_FILE on its first start). A PostgreSQL volume made by one major version
# is not read by another: keep one kind of image per pgdata volume.
#
# An image is built again only when this script changes (its sha256 is a label of every
# image), so a machine that ran it once keeps its images as a cache.
#
# Settings (environment): DEBIAN_SOURCES, an apt sources file or a mirror URL (default:
# this machine's apt sources, else deb.debian.org); LOCAL_IMAGE_PREFIX (default
# actiontag-local). Needs root, mmdebstrap and a Docker engine.
set -euo pipefail

suite=bookworm
prefix="${LOCAL_IMAGE_PREFIX:-actiontag-local}"
if [ -n "${DEBIAN_SOURCES:-}" ]; then
    sources="$DEBIAN_SOURCES"
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sources=/etc/apt/sources.list.d/debian.sources
elif [ -s /etc/apt/sources.list ]; then
    sources=/etc/apt/sources.list
else
    sources=http://deb.debian.org/debian
fi
recipe="$(sha256sum "$0" | cut -c1-64)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Redis as the official image starts it: `redis-server ARGS` (or bare flags) runs as the
# redis user in /data, without protected mode (its port is reachable only on the stack's
# network).
cat > "$work/redis-entrypoint" <<'SCRIPT'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
    set -- "$@" --protected-mode no
    if [ "$(id -u)" = 0 ]; then
        chown -R redis:redis /data
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
SCRIPT

# PostgreSQL as the official image starts it: on an empty PGDATA, a cluster whose
# superuser is POSTGRES_USER with the password of POSTGRES_PASSWORD_FILE (or
# POSTGRES_PASSWORD), a database POSTGRES_DB, password logins over TCP from anywhere;
# then the server, as the postgres user.
cat > "$work/postgres-entrypoint" <<'SCRIPT'
#!/bin/sh
set -eu
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ "${1:-}" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    database="${POSTGRES_DB:-$user}"
    password_file="${POSTGRES_PASSWORD_FILE:-}"
    if [ -z "$password_file" ]; then
        password_file="$(mktemp)"
        printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}" > "$password_file"
    fi
    initdb --username="$user" --pwfile="$password_file" --encoding=UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        echo "CREATE DATABASE \"$database\" OWNER \"$user\"" \
            | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "initialised a new cluster in $PGDATA"
fi
exec "$@"
SCRIPT
chmod 755 "$work"/*-entrypoint

# build NAME PACKAGES CHANGES...: a rootfs of PACKAGES imported as $prefix/NAME.
build() {
    local name="$1" packages="$2"
    shift 2
    local tag="$prefix/$name"
    local have
    have="$(docker image inspect -f '{{index .Config.Labels "actiontag.recipe"}}' "$tag" 2>/dev/null || true)"
    if [ "$have" = "$recipe" ]; then
        echo "$tag: up to date" >&2
        return
    fi
    echo "$tag: building from Debian $suite packages" >&2
    local change=(--change "LABEL actiontag.recipe=$recipe")
    for instruction in "$@"; do change+=(--change "$instruction"); done
    mmdebstrap --variant=minbase --format=tar --include="$packages" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook="copy-in $work/redis-entrypoint $work/postgres-entrypoint /usr/local/bin" \
        --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/log/*.log' \
        "$suite" - "$sources" </dev/null \
        | docker import "${change[@]}" - "$tag" >/dev/null
}

build python:3.11-bookworm python3,python3-venv,python-is-python3,ca-certificates,passwd \
    'ENV LANG=C.UTF-8' 'CMD ["python3"]'
build redis:7-bookworm redis-server \
    'WORKDIR /data' 'EXPOSE 6379' 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]' \
    'CMD ["redis-server"]'
build postgres:15-bookworm postgresql-15 \
    'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV PGDATA=/var/lib/postgresql/data' 'EXPOSE 5432' \
    'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]' 'CMD ["postgres"]'

echo "PYTHON_IMAGE=$prefix/python:3.11-bookworm"
echo "REDIS_IMAGE=$prefix/redis:7-bookworm"
echo "POSTGRES_IMAGE=$prefix/postgres:15-bookworm"
