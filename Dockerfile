# One image for every actiontag process: `python -m worker` (the default), `python -m
# watcher`, `python -m web`, `python -m trainer --split N` and `python -m storage ...`.
#
#   docker build -t actiontag .                      # CUDA torch (PyPI's wheels)
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#                -t actiontag:cpu .                  # CPU-only torch, ~5 GB smaller
#
# Why the default is a CUDA build: PyPI's Linux x86_64 torch wheels are CUDA builds.
# torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl declares, for Linux, cuda-toolkit
# 13.0.3, nvidia-cudnn-cu13, nvidia-nccl-cu13, nvidia-cusparselt-cu13, nvidia-nvshmem-cu13
# and triton in its metadata, and reports torch.version.cuda == "13.0". The same wheel runs
# on CPU when no GPU is given to the container. The NVIDIA driver (libcuda) is not in the
# image: the NVIDIA Container Toolkit mounts the host's at run time.
#
# Layers, the largest and least often changed first, so that a code change rebuilds (and a
# push sends) only the last one, a few megabytes: Debian packages and the user; torch with
# its CUDA libraries; the other dependencies of pyproject.toml; the project itself.
#
# pip reads a pip.conf and a CA bundle given as BuildKit secrets when there are any:
#   --secret id=pip.conf,src=FILE --secret id=pip-ca,src=FILE
# tools/pip_sources.py writes both from this machine's own pip configuration (serving the
# local folders it names to a build run with --network=host); without them, PyPI.
# Written for the Dockerfile frontend built into the engine (no `# syntax=` line, which
# would fetch another frontend from Docker Hub): RUN --mount needs BuildKit only.
#
# No HEALTHCHECK: the image runs five different commands, and a probe that fits the
# worker would mark the trainer and the CLI unhealthy. docker-compose.yml checks Redis,
# PostgreSQL and the web service.

# Any Debian bookworm image with Python 3.11 and python3-venv: the official one, or a
# local equivalent made by tools/base_images.sh where no registry can be reached.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- requirements: the dependencies pyproject.toml names, as a requirements file ----
# A stage of its own so that their layer below is rebuilt only when pyproject.toml changes.
FROM ${PYTHON_IMAGE} AS requirements
# Optional dependency groups of pyproject.toml, comma-separated; `fast` brings the CPU
# inference engine. Empty: none.
ARG EXTRAS="fast"
COPY pyproject.toml /src/
RUN python -c 'import sys, tomllib; \
project = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; \
extras = [name for name in sys.argv[1].split(",") if name]; \
names = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]; \
open("/requirements.txt", "w").write("\n".join(names) + "\n")' "$EXTRAS"

# ---- wheel: the project itself, built once into a wheel ----
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY actiontag ./actiontag
COPY decoding ./decoding
COPY timeline ./timeline
COPY model ./model
COPY trainer ./trainer
COPY worker ./worker
COPY watcher ./watcher
COPY storage ./storage
COPY web ./web
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca \
    python -m venv /tmp/build \
    && /tmp/build/bin/pip wheel --quiet --no-deps --wheel-dir /dist .

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="actiontag" \
      org.opencontainers.image.description="Batch video tagging: drop videos in a folder, get human actions out of a database."

# bsdtar and unar are the RAR backends for the trainer's HMDB51 archives (unar reads the
# solid RAR3 archives that libarchive 3.6 cannot). OpenCV (headless) and
# PyAV bring their own FFmpeg; the few system libraries their wheels link (glibc,
# libstdc++, libgcc_s, zlib) are already in the slim base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive-tools unar \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid so volume ownership is predictable on every host (a bind-mounted
# inbox must be writable by 10001 for uploads). Not a --system account: 10001 is above
# the system range, and useradd would warn. The folders are created here, owned by that
# user, so a fresh named volume mounted on them inherits it.
RUN groupadd --gid 10001 actiontag \
    && useradd --uid 10001 --gid actiontag --no-create-home --no-log-init \
        --home-dir /var/lib/actiontag --shell /usr/sbin/nologin actiontag \
    && mkdir -p /var/lib/actiontag/data /var/lib/actiontag/runs /var/lib/actiontag/previews \
        /var/lib/actiontag/cache/torch /data/inbox /models \
    && chown -R actiontag:actiontag /var/lib/actiontag

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# torch first, in a layer of its own: it is 5 GB with its CUDA libraries and changes far
# less often than anything else. The pins match the Makefile's TORCH_PINS. A public pin
# such as torch==2.14.1 also matches the CPU index's 2.14.1+cpu. Empty TORCH_INDEX_URL:
# PyPI (CUDA wheels); https://download.pytorch.org/whl/cpu: CPU-only wheels.
# Owned by root, run by actiontag: the running service cannot change its own code.
ARG TORCH_INDEX_URL=""
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca \
    python -m venv /opt/venv \
    && pip install ${TORCH_INDEX_URL:+--index-url=$TORCH_INDEX_URL} \
        torch==2.14.1 torchvision==0.29.1

# The other dependencies, torch held at its pins.
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca \
    --mount=type=bind,from=requirements,source=/requirements.txt,target=/tmp/requirements.txt \
    pip install torch==2.14.1 torchvision==0.29.1 -r /tmp/requirements.txt

# The project: a regular (not editable) install of its wheel, so the image carries no
# source tree; its dependencies are all above.
RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/dist \
    pip install --no-deps --no-index /tmp/dist/*.whl

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/actiontag \
    XDG_CACHE_HOME=/var/lib/actiontag/cache \
    TORCH_HOME=/var/lib/actiontag/cache/torch \
    ACTIONTAG_INBOX=/data/inbox \
    ACTIONTAG_CHECKPOINT=/models/model.pt \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The trainer's default data/ and runs/ folders resolve here (compose mounts volumes on them).
WORKDIR /var/lib/actiontag

USER 10001:10001

# Exec form: Python is the process that receives SIGTERM (Celery's warm shutdown).
CMD ["python", "-m", "worker"]
