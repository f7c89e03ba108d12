# syntax=docker/dockerfile:1
#
# One image for every actiontag process: `python -m worker` (the default), `python -m
# watcher`, `python -m trainer --split N` and `python -m storage ...`.
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
# No HEALTHCHECK: the image runs five different commands, and a probe that fits the
# worker would mark the trainer and the CLI unhealthy. docker-compose.yml checks Redis and
# PostgreSQL, the services everything else waits for.

# ---- build: a virtual environment with torch and the project ----
FROM python:3.11-slim-bookworm AS builder

# Empty: PyPI (CUDA wheels). https://download.pytorch.org/whl/cpu: CPU-only wheels.
ARG TORCH_INDEX_URL=""
# Optional dependency groups of pyproject.toml, comma-separated; `fast` brings the CPU
# inference engine. Empty: none.
ARG EXTRAS="fast"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

# torch first, in its own layer: it is 5 GB with its CUDA libraries and changes far less
# often than our code. The pins match the Makefile's TORCH_PINS. A public pin such as
# torch==2.14.1 also matches the CPU index's 2.14.1+cpu.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ${TORCH_INDEX_URL:+--index-url=$TORCH_INDEX_URL} \
        torch==2.14.1 torchvision==0.29.1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY actiontag ./actiontag
COPY model ./model
COPY trainer ./trainer
COPY worker ./worker
COPY watcher ./watcher
COPY storage ./storage
COPY web ./web
# A regular (not editable) install: the image carries no source tree.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install ".${EXTRAS:+[$EXTRAS]}"

# ---- runtime ----
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="actiontag" \
      org.opencontainers.image.description="Batch video tagging: drop videos in a folder, get human actions out of a database."

# bsdtar and unar are the RAR backends for the trainer's HMDB51 archives (unar reads the
# solid RAR3 archives that libarchive 3.6 cannot). OpenCV (headless) and
# PyAV bring their own FFmpeg; the few system libraries their wheels link (glibc,
# libstdc++, libgcc_s, zlib) are already in the slim base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive-tools unar \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid so volume ownership is predictable on every host. The folders are
# created here, owned by that user, so a fresh named volume mounted on them inherits it.
RUN groupadd --system --gid 10001 actiontag \
    && useradd --system --uid 10001 --gid actiontag --no-create-home \
        --home-dir /var/lib/actiontag --shell /usr/sbin/nologin actiontag \
    && mkdir -p /var/lib/actiontag/data /var/lib/actiontag/runs \
        /var/lib/actiontag/cache/torch /data/inbox /models \
    && chown -R actiontag:actiontag /var/lib/actiontag

# Owned by root, run by actiontag: the running service cannot change its own code.
COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
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
