"""Checks and derived values of the worker's settings (``actiontag.settings``).

Importing this module imports neither torch nor model: the watcher builds the Celery app
(``worker.app``) from the same settings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from actiontag.settings import Settings, env_name

BROKER_URL_SETTING = f"{env_name('broker_url')} (or --broker-url)"


class ConfigError(ValueError):
    """A setting has a value the worker cannot use; the message names the variable."""


def prepared_broker_url(url: str) -> str:
    """``url``; for the embedded broker (a SQLite file) the file's folder is created
    first, so the default works in a fresh checkout."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        Path(rest[1:]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def lock_dir(settings: Settings) -> Path:
    """Where workers keep their node-name locks (default: the system's temporary folder):
    only workers sharing this folder see each other's names."""
    return settings.lock_dir or Path(tempfile.gettempdir())


def check_windows(settings: Settings) -> None:
    """Raise :class:`ConfigError` when the window cap is below ``num_clips``: a video is
    never scored on fewer windows than the evaluation's clips (worker.predictor)."""
    if settings.max_windows < settings.num_clips:
        raise ConfigError(
            f"{env_name('max_windows')} (--max-windows) is {settings.max_windows}, below "
            f"{env_name('num_clips')} (--num-clips) {settings.num_clips}: a video is never "
            "scored on fewer windows than that. Next: raise --max-windows or lower --num-clips."
        )


def check_broker_url(url: str) -> None:
    """Raise :class:`ConfigError` when the broker URL names no transport Celery can use
    (``amqqp://``), or one whose client library is not installed."""
    import kombu.transport
    from kombu.utils.url import maybe_sanitize_url

    from worker import broker

    broker.register()  # the embedded broker's scheme
    shown = maybe_sanitize_url(url)
    scheme, separator, _ = url.partition("://")
    where = f"{BROKER_URL_SETTING} is {shown!r}"
    example = f"redis://host:6379/0, or {Settings().broker_url} for the embedded broker"
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
