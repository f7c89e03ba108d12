"""Every setting of every actiontag process, read once: flags > environment > env file > defaults.

:data:`SPEC` holds one entry per setting (its ``ACTIONTAG_*`` variable, its flag, its
parser, its help); :class:`Settings` holds the values, typed, each field's default the
one that works on one machine. A command adds the flags of the settings it takes with
:func:`add_flags` and turns its parsed arguments into a :class:`Settings` with
:func:`from_args`; that object is then passed to whatever needs it (``make_app``, the
worker's pool processes, the watcher service, the database). This module is the only
one that reads an ``ACTIONTAG_*`` variable, so a flag, its variable and its help cannot
drift apart, and nothing reads the environment behind its caller's back.

One syntax for durations everywhere (:func:`parse_duration`): a number of seconds
(``30``, ``0.5``) or a number and a unit, ``ms``, ``s``, ``m`` or ``min``, ``h``, ``d``,
``w`` (``500ms``, ``30s``, ``1.5min``, ``2h``, ``7d``, ``1w``), case-insensitive. One
for sizes (:func:`parse_size`): bytes, or ``K``, ``M``, ``G``, ``T`` (powers of 1024,
an optional ``B`` or ``iB`` after them): ``4096``, ``512K``, ``256M``, ``1.5GiB``.

Standard library only (python-dotenv is imported only to read an env file).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_VIDEO_EXTENSIONS",
    "ENV_PREFIX",
    "MAX_DURATION",
    "MAX_INTEGER",
    "MAX_SIZE",
    "SPEC",
    "OutOfRange",
    "Setting",
    "SettingError",
    "Settings",
    "add_flags",
    "env_name",
    "environment_with",
    "format_duration",
    "format_size",
    "from_args",
    "load_settings",
    "parse_bool",
    "parse_duration",
    "parse_extensions",
    "parse_size",
    "read_env_file",
]

ENV_PREFIX = "ACTIONTAG_"
# Where add_flags puts a setting's flag in the argparse namespace: apart from the
# command's own options (the trainer's --top-k is the MoE's, not the worker's).
_DEST = "setting:"


class SettingError(ValueError):
    """A setting has a value no process can use; the message names where it came from."""


class OutOfRange(ValueError):
    """A value written correctly but past the largest the grammar allows (``MAX_*``)."""


# -- the grammar of values ------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"\s*{_NUMBER}\s*(ms|s|m|min|h|d|w)?\s*", re.IGNORECASE)
_SECONDS_PER_UNIT = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_SIZE = re.compile(rf"\s*{_NUMBER}\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_BYTES_PER_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# The longest duration a value may give: past any timeout or age anyone means, and short
# enough that a moment that long ago is still a date (datetime starts at year 1).
MAX_DURATION = timedelta(weeks=5200)
# The largest size a value may give (an exbibyte): every size still fits a database integer.
MAX_SIZE = 1 << 60
# The largest integer a database column holds (SQLite's INTEGER, PostgreSQL's BIGINT):
# an id or a limit beyond it can name nothing.
MAX_INTEGER = (1 << 63) - 1


def parse_duration(text: str) -> timedelta:
    """``"30"``, ``"500ms"``, ``"30s"``, ``"1.5min"``, ``"2h"``, ``"7d"``, ``"1w"``: seconds
    unless a unit is given; never negative."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write seconds or a number and a unit "
            "(ms, s, m, h, d, w), e.g. 30, 500ms, 5m, 2h or 7d"
        )
    unit = match.group(2).lower() if match.group(2) else None
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise OutOfRange(
            f"{text!r} is too long a duration: at most {format_duration(MAX_DURATION)} "
            "(about a century)"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``timedelta(minutes=5)`` -> ``"5m"``: the largest unit that divides it exactly."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        scale = _SECONDS_PER_UNIT[unit]
        if seconds >= scale and seconds % scale == 0:
            return f"{int(seconds // scale)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def parse_size(text: str) -> int:
    """``"4096"``, ``"512K"``, ``"256M"``, ``"1.5GiB"``, ``"20G"``: bytes (powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write e.g. 4096, 512K, 256M or 20G")
    size = float(match.group(1)) * _BYTES_PER_UNIT[match.group(2).lower()]
    if size > MAX_SIZE:
        raise OutOfRange(f"{text!r} is too large a size: at most {_size_setting(MAX_SIZE)}")
    return int(size)


def format_size(size: int) -> str:
    """``268435456`` -> ``"256 MiB"``, for messages."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def _size_setting(size: int) -> str:
    """``268435456`` -> ``"256M"``: a size as the setting is written."""
    for unit in ("T", "G", "M", "K"):
        scale = _BYTES_PER_UNIT[unit.lower()]
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a yes/no value; write 1 or 0")


def parse_extensions(text: str) -> frozenset[str]:
    """Extensions from a comma- or space-separated list (``"mp4, .MKV webm"``)."""
    extensions = frozenset(
        item.lower().lstrip(".") for item in re.split(r"[\s,;]+", text) if item.strip(".")
    )
    if not extensions:
        raise ValueError(f"no video extensions in {text!r}; give a list such as 'mp4,mkv,avi'")
    return extensions


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise ValueError(f"{value} must be at least {minimum}")
        if value > MAX_INTEGER:
            raise OutOfRange(f"{value} must be at most {MAX_INTEGER}")
        return value

    return parse


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def _positive_seconds(text: str) -> float:
    return _positive_duration(text).total_seconds()


def _positive_duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError("must be more than 0")
    return value


def _positive_size(text: str) -> int:
    value = parse_size(text)
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


def _size_limit(text: str) -> int | None:
    return parse_size(text) or None  # 0: no limit


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _queues(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError("name at least one queue")
    return names


def _lower(text: str) -> str:
    return text.strip().lower()


def _host(text: str) -> str:
    host = text.strip()
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"{text!r} is not an address; give e.g. 127.0.0.1 or 0.0.0.0")
    return host


def _port(text: str) -> int:
    value = _at_least(1)(text)
    if value > 65535:
        raise ValueError(f"{value} is not a TCP port (1 to 65535)")
    return value


def _host_patterns(text: str) -> tuple[str, ...]:
    """Names the web app answers to, as Starlette's TrustedHostMiddleware matches them:
    a name or address (no port), ``*.example.com`` for a domain's names, ``*`` for any."""
    patterns = []
    for item in re.split(r"[\s,]+", text.strip().lower()):
        if not item:
            continue
        if ":" in item:
            item = _bracketed_ipv6(item)
        wildcard_ok = item == "*" or (item.startswith("*.") and "*" not in item[1:])
        if "*" in item and not wildcard_ok:
            raise ValueError(
                f"{item!r}: a wildcard is only '*' or a leading '*.', as in *.example.com"
            )
        if any(c in item for c in "/@?#"):
            raise ValueError(f"{item!r} is not a host name; give names without a scheme or path")
        patterns.append(item)
    return tuple(patterns)


def _bracketed_ipv6(item: str) -> str:
    """``::1`` or ``[::1]`` -> ``[::1]``, as a Host header writes an IPv6 address."""
    try:
        return f"[{ipaddress.IPv6Address(item.removeprefix('[').removesuffix(']'))}]"
    except ValueError:
        raise ValueError(f"{item!r} is not a host name; give names without a port") from None


def _ip_list(text: str) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``), checked as uvicorn's proxy headers take them."""
    items = tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return items


# A shorter secret is guessable over the network.
MIN_TOKEN_LENGTH = 16


def _token(text: str) -> str:
    if len(text) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"a token of {len(text)} characters is too easy to guess; use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe())'`"
        )
    return text


# -- the settings ---------------------------------------------------------------------

# Containers FFmpeg (hence PyAV/OpenCV) reads. Matched case-insensitively.
DEFAULT_VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    [
        "3g2",
        "3gp",
        "asf",
        "avi",
        "divx",
        "dv",
        "f4v",
        "flv",
        "m2t",
        "m2ts",
        "m2v",
        "m4v",
        "mjpeg",
        "mjpg",
        "mkv",
        "mov",
        "mp4",
        "mpe",
        "mpeg",
        "mpg",
        "mts",
        "mxf",
        "nut",
        "ogm",
        "ogv",
        "qt",
        "rm",
        "rmvb",
        "ts",
        "vob",
        "webm",
        "wmv",
        "y4m",
    ]
)


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; ``Settings()`` is the defaults (see :data:`SPEC` for each)."""

    database_url: str = "sqlite:///var/actiontag.db"
    database_password_file: Path | None = None
    broker_url: str = "sqlite:///var/broker.sqlite"  # the embedded broker (worker.broker)
    queues: tuple[str, ...] = ("actiontag",)
    # Watcher and workers must name one model: one default for both.
    checkpoint: Path = Path("models/actiontag.pt")
    inbox: Path = Path("inbox/")
    stable_seconds: float = 2.0
    poll: bool = False
    poll_interval: float = 1.0
    reconcile_every: timedelta = timedelta(seconds=30)
    rescan_every: timedelta = timedelta(minutes=5)  # zero: never
    running_timeout: timedelta | None = None  # None: from the Celery app (watcher.service)
    queued_grace: timedelta = timedelta(minutes=5)
    video_extensions: frozenset[str] = DEFAULT_VIDEO_EXTENSIONS
    large_file_size: int = 256 << 20
    max_video_size: int | None = 20 << 30  # None: no limit
    device: str = "auto"
    concurrency: int | None = None  # None: one pool process per GPU, else 1
    engine: str = "auto"  # the fastest engine that is exact enough (worker.predictor)
    engine_cache: Path | None = None  # None: next to the checkpoint, else XDG's cache
    num_clips: int = 10  # also the fewest windows a video is scored on
    # Windows one second apart, at most an hour of them (model.windows says why).
    window_every: float = 1.0
    max_windows: int = 3600
    # Frames a video may have: its index costs 8 bytes each (model.decode_index says why).
    max_frames: int = 10_000_000
    top_k: int = 5
    max_attempts: int = 3
    # A video gets this long (decode + inference) before its task is stopped. Ten clips
    # of a 60-minute video take well under a minute even on two CPU cores.
    task_time_limit: int = 1800
    lock_dir: Path | None = None  # None: the system's temporary folder
    batch_videos: int | None = None  # None: 8 on CUDA, 1 on CPU (worker.batching)
    batch_clips: int | None = None  # None: 64 on CUDA, 16 on CPU
    decode_threads: int | None = None  # None: 4 on CUDA, 1 on CPU
    hmdb51_mirror: str | None = None  # None: the original Brown University addresses
    rar_backend: str = "auto"
    # The web app (python -m web): loopback unless told otherwise, and then only with a
    # token (web.security refuses to bind elsewhere without one).
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_token: str | None = field(default=None, repr=False)  # None: no token asked
    upload_max_bytes: int = 2 << 30
    # An upload whose body stops arriving for this long is ended and its staging file
    # removed; staging files this old that no request is writing are swept (web.staging).
    upload_idle_timeout: float = 60.0
    upload_staging_max_age: timedelta = timedelta(hours=1)
    # More names the web app answers to than loopback ones and its bind address
    # (web.hosts: the Host check against DNS rebinding).
    web_allowed_hosts: tuple[str, ...] = ()
    # Proxies whose X-Forwarded-Proto and X-Forwarded-For are believed: none by default.
    web_forwarded_allow_ips: tuple[str, ...] = ()
    web_session_max_age: timedelta = timedelta(hours=12)
    # Not a setting: the names of those a flag, the environment or an env file set (the
    # demo serves a configured checkpoint, else makes its own).
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def queue(self) -> str:
        """The queue ``tag_video`` messages go to (the first of :attr:`queues`)."""
        return self.queues[0]


@dataclass(frozen=True)
class Setting:
    """How one :class:`Settings` field is set: its variable, its flag, how it is read."""

    name: str  # the Settings field
    flag: str | None  # None: the variable only
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None
    default_text: str | None = None  # how the default reads, where str() would not do
    show: Callable[[Any], str] = str
    secret: bool = False  # its value is never repeated in a message
    env: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", env_name(self.name))

    @property
    def default(self) -> Any:
        return _FIELD_DEFAULTS[self.name]

    def describe_default(self) -> str:
        return self.default_text if self.default_text is not None else self.show(self.default)


def env_name(name: str) -> str:
    """The variable of setting ``name``: ``database_url`` -> ``ACTIONTAG_DATABASE_URL``."""
    return ENV_PREFIX + _ENV_SUFFIX.get(name, name.upper())


# Where a variable's name is not the field's: kept as they were documented.
_ENV_SUFFIX = {"queues": "QUEUE"}
_FIELD_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.name != "given"}
_DURATION_TEXT = "DURATION"

SPEC: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "--database-url",
        str,
        "SQLAlchemy URL of the results database: sqlite:///FILE, or "
        "postgresql://user@host/db (psycopg 3) in production",
        metavar="URL",
    ),
    Setting(
        "database_password_file",
        None,
        _path,
        "a file whose content is the database password, set on the URL (a compose secret)",
        default_text="unset",
    ),
    Setting(
        "broker_url",
        "--broker-url",
        str,
        "Celery broker URL, e.g. redis://127.0.0.1:6379/0; the default is the embedded "
        "broker (a SQLite file, no server, one machine)",
        metavar="URL",
    ),
    Setting(
        "queues",
        "--queues",
        _queues,
        "the queue tag_video messages go to; a worker takes jobs from each of a "
        "comma-separated list, and sends to the first",
        metavar="QUEUES",
        show=",".join,
    ),
    Setting(
        "checkpoint",
        "--checkpoint",
        _path,
        "the checkpoint served; watcher and workers must name the same file (its sha256 "
        "is the model's identity)",
        metavar="FILE",
    ),
    Setting(
        "inbox",
        "--inbox",
        _path,
        "folder to watch, recursively",
        metavar="DIR",
        default_text="inbox/",
    ),
    Setting(
        "stable_seconds",
        "--stable-seconds",
        _seconds,
        "how long a file's size and mtime must stay unchanged before it is taken",
        metavar=_DURATION_TEXT,
        show=lambda s: f"{s:g}",
    ),
    Setting(
        "poll",
        "--poll",
        parse_bool,
        "poll the inbox instead of using inotify (1/0): NFS/SMB shares and container "
        "volumes written from outside raise no inotify event",
        show=lambda on: "1" if on else "0",
    ),
    Setting(
        "poll_interval",
        "--poll-interval",
        _seconds,
        "time between polls with --poll",
        metavar=_DURATION_TEXT,
        show=lambda s: format_duration(timedelta(seconds=s)),
    ),
    Setting(
        "reconcile_every",
        "--reconcile-every",
        _positive_duration,
        "how often jobs the broker refused or lost are sent again and jobs running past "
        "the running timeout are requeued",
        metavar=_DURATION_TEXT,
        show=format_duration,
    ),
    Setting(
        "rescan_every",
        "--rescan-every",
        parse_duration,
        "how often the whole inbox is walked for files no event announced (the kernel "
        "drops inotify events when a large copy overflows its queue); 0: never",
        metavar=_DURATION_TEXT,
        show=format_duration,
    ),
    Setting(
        "running_timeout",
        "--running-timeout",
        parse_duration,
        "a job running longer than this is presumed abandoned by a dead worker and is queued again",
        metavar=_DURATION_TEXT,
        default_text="the broker's visibility timeout, else 2 x the task time limit, else 2h",
    ),
    Setting(
        "queued_grace",
        "--queued-grace",
        parse_duration,
        "a job queued this long and not picked up is sent again when the broker's queue is empty",
        metavar=_DURATION_TEXT,
        show=format_duration,
    ),
    Setting(
        "video_extensions",
        "--video-extensions",
        parse_extensions,
        "comma-separated extensions of the files taken, case-insensitive",
        metavar="LIST",
        show=lambda names: ",".join(sorted(names)),
    ),
    Setting(
        "large_file_size",
        "--large-file-size",
        _positive_size,
        "files this large or larger are hashed on a pool of two threads, so other files "
        "keep being recorded meanwhile",
        metavar="SIZE",
        show=_size_setting,
    ),
    Setting(
        "max_video_size",
        "--max-video-size",
        _size_limit,
        "larger files are refused, never read, and recorded with the reason (python -m "
        "storage refused); 0: no limit",
        metavar="SIZE",
        show=lambda size: _size_setting(size) if size else "0",
    ),
    Setting(
        "device",
        "--device",
        _lower,
        "auto (every GPU, one pool process each, else the CPU), cpu, cuda or cuda:N",
        metavar="DEVICE",
    ),
    Setting(
        "concurrency",
        "--concurrency",
        _at_least(1),
        "pool processes (one on the CPU uses every core)",
        metavar="N",
        default_text="the number of GPUs, else 1",
    ),
    Setting(
        "engine",
        "--engine",
        _lower,
        "inference engine: auto (the fastest that agrees with fp32 eager here), eager, "
        "bf16, openvino, openvino-fp32",
        metavar="ENGINE",
    ),
    Setting(
        "engine_cache",
        None,
        _path,
        "where exported engines and agreement verdicts are kept, per checkpoint sha256",
        default_text="actiontag-cache/ next to the checkpoint, else $XDG_CACHE_HOME/actiontag",
    ),
    Setting(
        "num_clips",
        "--num-clips",
        _at_least(1),
        "the fewest windows a video is scored on: a video too short for that many at "
        "the window spacing gets N uniform clips instead, as the evaluation does",
        metavar="N",
    ),
    Setting(
        "window_every",
        "--window-every",
        _positive_seconds,
        "spacing of the windows (one clip each) scored over the whole video, from which "
        "its segments and its video-level top-k come",
        metavar=_DURATION_TEXT,
        show=lambda s: format_duration(timedelta(seconds=s)),
    ),
    Setting(
        "max_windows",
        "--max-windows",
        _at_least(1),
        "most windows scored per video; a longer video gets this many, spread evenly, "
        "so its cost is bounded",
        metavar="N",
    ),
    Setting(
        "max_frames",
        "--max-frames",
        _at_least(1),
        "most frames a video may have; one with more fails with that reason, so the "
        "frame index (8 bytes a frame) is bounded whatever the file",
        metavar="N",
    ),
    Setting("top_k", "--top-k", _at_least(1), "predictions stored per video", metavar="K"),
    Setting(
        "max_attempts",
        "--max-attempts",
        _at_least(1),
        "times a video may be started before it is marked failed, so one that kills its "
        "worker does not loop",
        metavar="N",
    ),
    Setting(
        "task_time_limit",
        "--time-limit",
        _at_least(60),
        "seconds one video may take before it is stopped and failed; also sets the "
        "Redis visibility timeout (2x)",
        metavar="SECONDS",
    ),
    Setting(
        "lock_dir",
        None,
        _path,
        "where each worker keeps the lock file of its node name; workers see each other's "
        "names only within one folder",
        default_text="the system's temporary folder",
    ),
    Setting(
        "batch_videos",
        None,
        _at_least(1),
        "videos one task may tag in one go (cross-video batching)",
        default_text="8 on CUDA, 1 on CPU",
    ),
    Setting(
        "batch_clips",
        None,
        _at_least(1),
        "clips per forward pass when batching",
        default_text="64 on CUDA, 16 on CPU",
    ),
    Setting(
        "decode_threads",
        None,
        _at_least(1),
        "videos decoded ahead of inference",
        default_text="4 on CUDA, 1 on CPU",
    ),
    Setting(
        "hmdb51_mirror",
        "--mirror",
        str,
        "base URL of a server holding both HMDB51 archives",
        metavar="URL",
        default_text="the original Brown University addresses",
    ),
    Setting(
        "rar_backend",
        None,
        _lower,
        "which program unpacks the RAR archives: auto (bsdtar, then unar), bsdtar, unar",
    ),
    Setting(
        "web_host",
        "--host",
        _host,
        "address the web app listens on; anything but a loopback address needs ACTIONTAG_WEB_TOKEN",
        metavar="ADDRESS",
    ),
    Setting("web_port", "--port", _port, "TCP port of the web app", metavar="PORT"),
    Setting(
        "web_token",
        None,
        _token,
        "the secret a client must present (Authorization: Bearer, or the sign-in page) "
        "to use the web app's pages, uploads and API; at least 16 characters",
        default_text="unset (only a loopback address is served)",
        secret=True,
    ),
    Setting(
        "upload_max_bytes",
        "--upload-max-bytes",
        _positive_size,
        "the largest file the web app takes in one upload (larger: 413)",
        metavar="SIZE",
        show=_size_setting,
    ),
    Setting(
        "upload_idle_timeout",
        "--upload-idle-timeout",
        _positive_seconds,
        "an upload whose body sends nothing for this long is ended (408) and its "
        "partial file removed",
        metavar=_DURATION_TEXT,
        show=lambda s: format_duration(timedelta(seconds=s)),
    ),
    Setting(
        "upload_staging_max_age",
        "--upload-staging-max-age",
        _positive_duration,
        "partial upload files (.upload-*.part) unchanged this long are removed from the "
        "inbox, at start and periodically (a process killed mid-upload leaves them); "
        "keep it longer than the idle timeout",
        metavar=_DURATION_TEXT,
        show=format_duration,
    ),
    Setting(
        "web_allowed_hosts",
        "--allowed-hosts",
        _host_patterns,
        "more names the web app answers to (the Host header), comma-separated: "
        "videos.example.com, *.example.com; other names get 400 (DNS rebinding)",
        metavar="NAMES",
        default_text="loopback names and addresses, and the --host address",
        show=",".join,
    ),
    Setting(
        "web_forwarded_allow_ips",
        "--forwarded-allow-ips",
        _ip_list,
        "addresses of the reverse proxies whose X-Forwarded-Proto and X-Forwarded-For "
        "the web app believes (HTTPS cookies, the client address sign-ins are counted by)",
        metavar="ADDRESSES",
        default_text="none",
        show=",".join,
    ),
    Setting(
        "web_session_max_age",
        None,
        _positive_duration,
        "how long a sign-in lasts before the web app asks for the token again",
        metavar=_DURATION_TEXT,
        show=format_duration,
    ),
)
_BY_NAME = {setting.name: setting for setting in SPEC}


# -- reading them ---------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """The ``ACTIONTAG_*`` lines of ``path`` (docker compose's ``.env`` syntax); nothing
    when there is no such file. Its other keys (``POSTGRES_PASSWORD``…) are compose's."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only the launcher reads an env file

    return {
        key: value
        for key, value in dotenv_values(path).items()
        if key.startswith(ENV_PREFIX) and value is not None
    }


def environment_with(
    env_file: Path, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """For services a launcher starts: ``environ`` (default: this process's environment)
    with the ``ACTIONTAG_*`` lines of ``env_file`` where a variable is unset or empty, as
    :func:`load_settings` reads them; and the lines so added."""
    base = dict(os.environ if environ is None else environ)
    added = {
        key: value
        for key, value in read_env_file(env_file).items()
        if not base.get(key, "").strip()
    }
    return {**base, **added}, added


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """The settings from ``flags`` (setting name -> a flag's text or typed value; None
    counts as not given), else ``environ`` (default: this process's environment), else
    ``env_file``'s ``ACTIONTAG_*`` lines, else the defaults. An empty variable counts as
    unset. Raises :class:`SettingError` naming the flag or variable of a bad value."""
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise SettingError(f"no such setting: {', '.join(unknown)}")
    variables = os.environ if environ is None else environ
    from_file = read_env_file(env_file) if env_file is not None else {}
    values: dict[str, Any] = {}
    for setting in SPEC:
        if setting.name in given:
            raw = given[setting.name]
            source = setting.flag or setting.name
            if not isinstance(raw, str):  # already typed (a switch, or a caller's value)
                values[setting.name] = raw
                continue
        elif variables.get(setting.env, "").strip():
            raw, source = variables[setting.env].strip(), setting.env
        elif from_file.get(setting.env, "").strip():
            raw, source = from_file[setting.env].strip(), f"{setting.env} (in {env_file})"
        else:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise SettingError(f"{source}={shown}: {exc}") from None
    return Settings(**values, given=frozenset(values))


def add_flags(
    parser: Any, names: Iterable[str], *, defaults: Mapping[str, str] | None = None
) -> None:
    """Add the flags of settings ``names`` to ``parser`` (or an argument group), each
    help naming its variable and its default (``defaults``: another text for a command
    that does otherwise when a setting is not given); :func:`from_args` reads them back."""
    for name in names:
        setting = _BY_NAME[name]
        if setting.flag is None:
            raise ValueError(f"the setting {name} has no flag")
        default = (defaults or {}).get(name) or setting.describe_default()
        text = f"{setting.help} (${setting.env}; default {default})"
        options: dict[str, Any] = {
            "dest": _DEST + name,
            "default": None,
            "help": text.replace("%", "%%"),  # argparse formats help with %
        }
        if setting.parse is parse_bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["metavar"] = setting.metavar
        parser.add_argument(setting.flag, **options)


def from_args(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """The settings from ``args`` (parsed by ``parser``, flags added by :func:`add_flags`),
    the environment and ``env_file``; a bad value is a usage error (exit 2)."""
    flags = {
        key.removeprefix(_DEST): value for key, value in vars(args).items() if key.startswith(_DEST)
    }
    try:
        return load_settings(flags, environ=environ, env_file=env_file)
    except SettingError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps type checkers informed
