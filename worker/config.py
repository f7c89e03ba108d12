"""The worker's settings from the environment, each with a default that works on one machine.

Read by ``worker.app`` (broker, queue, time limits) and ``python -m worker`` (the rest;
its flags override the variables). Importing this module imports neither torch nor model.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

BROKER_URL_ENV = "ACTIONTAG_BROKER_URL"
QUEUE_ENV = "ACTIONTAG_QUEUE"
TIME_LIMIT_ENV = "ACTIONTAG_TASK_TIME_LIMIT"
CHECKPOINT_ENV = "ACTIONTAG_CHECKPOINT"
DEVICE_ENV = "ACTIONTAG_DEVICE"
NUM_CLIPS_ENV = "ACTIONTAG_NUM_CLIPS"
TOP_K_ENV = "ACTIONTAG_TOP_K"
MAX_ATTEMPTS_ENV = "ACTIONTAG_MAX_ATTEMPTS"
ENGINE_ENV = "ACTIONTAG_ENGINE"
LOCK_DIR_ENV = "ACTIONTAG_LOCK_DIR"

DEFAULT_BROKER_URL = "sqlite:///var/broker.sqlite"
DEFAULT_QUEUE = "actiontag"
# The watcher uses the same default (watcher.config): both must name one model.
DEFAULT_CHECKPOINT = "models/actiontag.pt"
DEFAULT_DEVICE = "auto"
DEFAULT_NUM_CLIPS = 10
DEFAULT_TOP_K = 5
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_ENGINE = "auto"  # the fastest engine that is exact enough (worker.predictor)
# A video gets this long (decode + inference) before its task is stopped. Ten clips of
# a 60-minute video take well under a minute even on two CPU cores.
DEFAULT_TIME_LIMIT_S = 1800


class ConfigError(ValueError):
    """A setting has a value the worker cannot use; the message names the variable."""


def env_str(name: str, default: str) -> str:
    """``$name`` (an empty value counts as unset), else ``default``."""
    return os.environ.get(name, "").strip() or default


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    """``$name`` as an integer of at least ``minimum``, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def broker_url(url: str | None = None) -> str:
    """The broker URL: ``url``, else ``$ACTIONTAG_BROKER_URL``, else the embedded broker.

    For the embedded broker (a SQLite file) the file's folder is created, so the default
    works in a fresh checkout.
    """
    chosen = url or env_str(BROKER_URL_ENV, DEFAULT_BROKER_URL)
    scheme, _, rest = chosen.partition("://")
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        Path(rest[1:]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return chosen


def lock_dir() -> Path:
    """Where workers keep their node-name locks (``$ACTIONTAG_LOCK_DIR``, default the
    system's temporary folder): only workers sharing this folder see each other's names."""
    raw = os.environ.get(LOCK_DIR_ENV, "").strip()
    return Path(raw).expanduser() if raw else Path(tempfile.gettempdir())


def check_broker_url(url: str | None = None) -> None:
    """Raise :class:`ConfigError` when the broker URL names no transport Celery can use
    (``amqqp://``), or one whose client library is not installed."""
    import kombu.transport
    from kombu.utils.url import maybe_sanitize_url

    from worker import broker

    broker.register()  # the embedded broker's scheme
    chosen = url or env_str(BROKER_URL_ENV, DEFAULT_BROKER_URL)
    shown = maybe_sanitize_url(chosen)
    scheme, separator, _ = chosen.partition("://")
    where = f"{BROKER_URL_ENV} (or --broker-url) is {shown!r}"
    example = f"redis://host:6379/0, or {DEFAULT_BROKER_URL} for the embedded broker"
    if not separator or not scheme:
        raise ConfigError(f"{where}, which is not a broker URL. Next: use {example}.")
    try:
        kombu.transport.resolve_transport(scheme.split("+")[0])
    except KeyError as exc:
        # kombu's message suggests the nearest scheme ("Did you mean amqp?").
        raise ConfigError(
            f"{where}: {' '.join(str(exc).strip(chr(39)).split()).rstrip('.')}. "
            f"Next: fix the scheme, e.g. {example}."
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"{where}: its transport needs {exc.name or exc}, which is not installed here. "
            f"Next: install it, or use {example}."
        ) from None


def queue_name() -> str:
    """The queue tag_video messages go to (``$ACTIONTAG_QUEUE``, default ``actiontag``)."""
    return env_str(QUEUE_ENV, DEFAULT_QUEUE)


def time_limit_s() -> int:
    """Hard time limit of one task in seconds (``$ACTIONTAG_TASK_TIME_LIMIT``)."""
    return env_int(TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT_S, minimum=60)


DATABASE_URL_ENV = "ACTIONTAG_DATABASE_URL"  # read by storage.db; named here for --help
CONCURRENCY_ENV = "ACTIONTAG_CONCURRENCY"


@dataclass(frozen=True)
class WorkerSettings:
    """What each pool process needs to tag videos; ``python -m worker`` exports its flags
    to the environment before Celery forks, so every process reads the same values."""

    checkpoint: Path
    device: str
    num_clips: int
    top_k: int
    max_attempts: int
    engine: str
    concurrency: int
    database_url: str | None  # None: storage.db's default

    @classmethod
    def from_env(cls) -> WorkerSettings:
        return cls(
            checkpoint=Path(env_str(CHECKPOINT_ENV, DEFAULT_CHECKPOINT)),
            device=env_str(DEVICE_ENV, DEFAULT_DEVICE),
            num_clips=env_int(NUM_CLIPS_ENV, DEFAULT_NUM_CLIPS),
            top_k=env_int(TOP_K_ENV, DEFAULT_TOP_K),
            max_attempts=env_int(MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS),
            engine=env_str(ENGINE_ENV, DEFAULT_ENGINE),
            concurrency=env_int(CONCURRENCY_ENV, 1),
            database_url=os.environ.get(DATABASE_URL_ENV, "").strip() or None,
        )
