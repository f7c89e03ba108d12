"""The declaration of every setting: one :class:`Settings` field each, grouped by component.

A field's :func:`setting` holds everything about it: its component, default, flag (or
none: the variable only), parser, help, and how its default reads. Its variable is
``ACTIONTAG_`` and the field's name in capitals unless the declaration names another.
:data:`SPEC` is read from the fields, and a command takes the flags of the components
:data:`COMPONENTS` gives it, so a new setting is one field here and nothing elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from actiontag.settings.grammar import (
    format_duration,
    parse_at_least,
    parse_bool,
    parse_duration,
    parse_extensions,
    parse_host,
    parse_host_patterns,
    parse_http_url,
    parse_ip_list,
    parse_lower,
    parse_name,
    parse_one_of,
    parse_path,
    parse_port,
    parse_positive_duration,
    parse_positive_seconds,
    parse_positive_size,
    parse_queues,
    parse_seconds,
    parse_size_limit,
    parse_token,
    size_text,
)

ENV_PREFIX = "ACTIONTAG_"
# The metavar of every duration flag: one syntax (actiontag.settings.grammar).
DURATION = "DURATION"


@dataclass(frozen=True)
class Component:
    """A group of settings: what they configure, and the commands that take their flags."""

    name: str
    summary: str
    commands: tuple[str, ...]


# Each command takes the flags of the components that name it (the launcher's demo picks
# its three by name); a setting without a flag is read from its variable only.
DATABASE = Component("database", "The results database.", ("watcher", "worker", "web", "storage"))
BROKER = Component(
    "broker",
    "The Celery broker the tagging jobs go through.",
    ("watcher", "worker", "web"),
)
QUEUE = Component("queue", "The queues of the tagging jobs.", ("worker",))
MODEL = Component("model", "The checkpoint served.", ("watcher", "worker"))
INBOX = Component(
    "inbox", "The folder videos are dropped into (or uploaded to).", ("watcher", "web")
)
WATCHER = Component("watcher", "How the watcher takes files and keeps jobs moving.", ("watcher",))
WORKER = Component("worker", "How a worker tags a video.", ("worker",))
PREVIEWS = Component(
    "previews",
    "Where the browser-playable previews of videos a browser cannot play as they are lie.",
    ("worker", "web"),
)
EVENTS = Component(
    "events",
    "Job state changes sent to a program's address (the webhook; the web app's "
    "/api/events streams them too).",
    ("watcher",),
)
WEB = Component("web", "The web app: where it listens, who may use it, uploads.", ("web",))
TRAINER = Component("trainer", "Getting the training data.", ("trainer",))
COMPONENTS: tuple[Component, ...] = (
    DATABASE,
    BROKER,
    QUEUE,
    MODEL,
    INBOX,
    WATCHER,
    WORKER,
    PREVIEWS,
    EVENTS,
    WEB,
    TRAINER,
)
# The commands whose flags come from the components, as their programs are named.
COMMANDS = {
    "watcher": "python -m watcher",
    "worker": "python -m worker",
    "web": "python -m web",
    "storage": "python -m storage",
    "trainer": "python -m trainer",
}


@dataclass(frozen=True)
class Setting:
    """How one :class:`Settings` field is set: its variable, its flag, how it is read."""

    component: Component
    flag: str | None  # None: the variable only
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None
    default_text: str | None = None  # how the default reads, where show() would not do
    show: Callable[[Any], str] = str
    secret: bool = False  # its value is never repeated in a message
    env_suffix: str | None = None  # the variable's name after the prefix, where not NAME
    name: str = ""  # the Settings field, filled in from it
    default: Any = None  # the field's default, filled in from it

    @property
    def env(self) -> str:
        return ENV_PREFIX + (self.env_suffix or self.name.upper())

    def describe_default(self) -> str:
        return self.default_text if self.default_text is not None else self.show(self.default)


def setting(
    component: Component,
    *,
    default: Any,
    flag: str | None,
    parse: Callable[[str], Any],
    help: str,
    metavar: str | None = None,
    default_text: str | None = None,
    show: Callable[[Any], str] = str,
    secret: bool = False,
    env: str | None = None,
    repr: bool = True,
) -> Any:
    """A :class:`Settings` field with its :class:`Setting` (``env``: the variable's name
    after ``ACTIONTAG_``, where it is not the field's in capitals)."""
    declared = Setting(
        component, flag, parse, help, metavar, default_text, show, secret, env_suffix=env
    )
    return field(default=default, repr=repr, metadata={"setting": declared})


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
    """Every setting, typed; ``Settings()`` is the defaults, each one that works on one machine."""

    database_url: str = setting(
        DATABASE,
        default="sqlite:///var/actiontag.db",
        flag="--database-url",
        parse=str,
        help="SQLAlchemy URL of the results database: sqlite:///FILE, or "
        "postgresql://user@host/db (psycopg 3) in production",
        metavar="URL",
    )
    database_password_file: Path | None = setting(
        DATABASE,
        default=None,
        flag=None,
        parse=parse_path,
        help="a file whose content is the database password, set on the URL (a compose secret)",
        default_text="unset",
    )
    # The embedded broker (worker.broker).
    broker_url: str = setting(
        BROKER,
        default="sqlite:///var/broker.sqlite",
        flag="--broker-url",
        parse=str,
        help="Celery broker URL, e.g. redis://127.0.0.1:6379/0; the default is the embedded "
        "broker (a SQLite file, no server, one machine)",
        metavar="URL",
    )
    queues: tuple[str, ...] = setting(
        QUEUE,
        default=("actiontag",),
        flag="--queues",
        parse=parse_queues,
        help="the queue tag_video messages go to; a worker takes jobs from each of a "
        "comma-separated list, and sends to the first",
        metavar="QUEUES",
        show=",".join,
        env="QUEUE",
    )
    # Watcher and workers must name one model: one default for both.
    checkpoint: Path = setting(
        MODEL,
        default=Path("models/actiontag.pt"),
        flag="--checkpoint",
        parse=parse_path,
        help="the checkpoint served; watcher and workers must name the same file (its sha256 "
        "is the model's identity)",
        metavar="FILE",
    )
    inbox: Path = setting(
        INBOX,
        default=Path("inbox/"),
        flag="--inbox",
        parse=parse_path,
        help="folder to watch, recursively",
        metavar="DIR",
        default_text="inbox/",
    )
    stable_seconds: float = setting(
        WATCHER,
        default=2.0,
        flag="--stable-seconds",
        parse=parse_seconds,
        help="how long a file's size and mtime must stay unchanged before it is taken",
        metavar=DURATION,
        show=lambda s: f"{s:g}",
    )
    poll: bool = setting(
        WATCHER,
        default=False,
        flag="--poll",
        parse=parse_bool,
        help="poll the inbox instead of using inotify (1/0): NFS/SMB shares and container "
        "volumes written from outside raise no inotify event",
        show=lambda on: "1" if on else "0",
    )
    poll_interval: float = setting(
        WATCHER,
        default=1.0,
        flag="--poll-interval",
        parse=parse_seconds,
        help="time between polls with --poll",
        metavar=DURATION,
        show=lambda s: format_duration(timedelta(seconds=s)),
    )
    reconcile_every: timedelta = setting(
        WATCHER,
        default=timedelta(seconds=30),
        flag="--reconcile-every",
        parse=parse_positive_duration,
        help="how often jobs the broker refused or lost are sent again and jobs running past "
        "the running timeout are requeued",
        metavar=DURATION,
        show=format_duration,
    )
    rescan_every: timedelta = setting(
        WATCHER,
        default=timedelta(minutes=5),
        flag="--rescan-every",
        parse=parse_duration,
        help="how often the whole inbox is walked for files no event announced (the kernel "
        "drops inotify events when a large copy overflows its queue); 0: never",
        metavar=DURATION,
        show=format_duration,
    )
    # None: from the Celery app (watcher.service).
    running_timeout: timedelta | None = setting(
        WATCHER,
        default=None,
        flag="--running-timeout",
        parse=parse_duration,
        help="a job running longer than this is presumed abandoned by a dead worker and is queued again",
        metavar=DURATION,
        default_text="the broker's visibility timeout, else 2 x the task time limit, else 2h",
    )
    queued_grace: timedelta = setting(
        WATCHER,
        default=timedelta(minutes=5),
        flag="--queued-grace",
        parse=parse_duration,
        help="a job queued this long and not picked up is sent again when the broker's queue is empty",
        metavar=DURATION,
        show=format_duration,
    )
    video_extensions: frozenset[str] = setting(
        INBOX,
        default=DEFAULT_VIDEO_EXTENSIONS,
        flag="--video-extensions",
        parse=parse_extensions,
        help="comma-separated extensions of the files taken, case-insensitive",
        metavar="LIST",
        show=lambda names: ",".join(sorted(names)),
    )
    large_file_size: int = setting(
        WATCHER,
        default=256 << 20,
        flag="--large-file-size",
        parse=parse_positive_size,
        help="files this large or larger are hashed on a pool of two threads, so other files "
        "keep being recorded meanwhile",
        metavar="SIZE",
        show=size_text,
    )
    max_video_size: int | None = setting(
        WATCHER,
        default=20 << 30,
        flag="--max-video-size",
        parse=parse_size_limit,
        help="larger files are refused, never read, and recorded with the reason (python -m "
        "storage refused); 0: no limit",
        metavar="SIZE",
        show=lambda size: size_text(size) if size else "0",
    )
    device: str = setting(
        WORKER,
        default="auto",
        flag="--device",
        parse=parse_lower,
        help="auto (every GPU, one pool process each, else the CPU), cpu, cuda or cuda:N",
        metavar="DEVICE",
    )
    concurrency: int | None = setting(
        WORKER,
        default=None,
        flag="--concurrency",
        parse=parse_at_least(1),
        help="pool processes (one on the CPU uses every core)",
        metavar="N",
        default_text="the number of GPUs, else 1",
    )
    # The fastest engine that is exact enough (worker.predictor).
    engine: str = setting(
        WORKER,
        default="auto",
        flag="--engine",
        parse=parse_lower,
        help="inference engine: auto (the fastest that agrees with fp32 eager here), eager, "
        "bf16, openvino, openvino-fp32",
        metavar="ENGINE",
    )
    # The learned detector finds gradual transitions too (timeline.shots says why).
    shot_detector: str = setting(
        WORKER,
        default="histogram",
        flag="--shot-detector",
        parse=parse_one_of("transnetv2", "histogram"),
        help="shot boundaries: histogram (luma histograms: hard cuts only, a small part of "
        "tagging's cost) or transnetv2 (the learned network, run where a cheap signal sees "
        "a candidate: hard cuts, most dissolves and fades, not wipes; on a CPU it costs "
        "about as much as the action model, and each worker converts it once for its "
        "engine cache)",
        metavar="DETECTOR",
    )
    engine_cache: Path | None = setting(
        WORKER,
        default=None,
        flag=None,
        parse=parse_path,
        help="where exported engines and agreement verdicts are kept, per checkpoint sha256",
        default_text="actiontag-cache/ next to the checkpoint, else $XDG_CACHE_HOME/actiontag",
    )
    # Also the fewest windows a video is scored on.
    num_clips: int = setting(
        WORKER,
        default=10,
        flag="--num-clips",
        parse=parse_at_least(1),
        help="the fewest windows a video is scored on: a video too short for that many at "
        "the window spacing gets N uniform clips instead, as the evaluation does",
        metavar="N",
    )
    # Windows one second apart, at most an hour of them (timeline.windows says why).
    window_every: float = setting(
        WORKER,
        default=1.0,
        flag="--window-every",
        parse=parse_positive_seconds,
        help="spacing of the windows (one clip each) scored over the whole video, from which "
        "its segments and its video-level top-k come",
        metavar=DURATION,
        show=lambda s: format_duration(timedelta(seconds=s)),
    )
    max_windows: int = setting(
        WORKER,
        default=3600,
        flag="--max-windows",
        parse=parse_at_least(1),
        help="most windows scored per video; a longer video gets this many, spread evenly, "
        "so its cost is bounded",
        metavar="N",
    )
    # Frames a video may have: its index costs 8 bytes each (decoding.index says why).
    max_frames: int = setting(
        WORKER,
        default=10_000_000,
        flag="--max-frames",
        parse=parse_at_least(1),
        help="most frames a video may have; one with more fails with that reason, so the "
        "frame index (8 bytes a frame) is bounded whatever the file",
        metavar="N",
    )
    top_k: int = setting(
        WORKER,
        default=5,
        flag="--top-k",
        parse=parse_at_least(1),
        help="predictions stored per video",
        metavar="K",
    )
    max_attempts: int = setting(
        WORKER,
        default=3,
        flag="--max-attempts",
        parse=parse_at_least(1),
        help="times a video may be started before it is marked failed, so one that kills its "
        "worker does not loop",
        metavar="N",
    )
    # A video gets this long (decode + inference) before its task is stopped. The worker
    # scores at most max_windows windows, one clip each, streamed through the engine, so
    # even the longest video fits well within it on the default engine and only a stuck
    # one reaches it (timeline.windows.DEFAULT_MAX_WINDOWS says what eager on a CPU needs).
    task_time_limit: int = setting(
        WORKER,
        default=1800,
        flag="--time-limit",
        parse=parse_at_least(60),
        help="seconds one video may take before it is stopped and failed; also sets the "
        "Redis visibility timeout (2x)",
        metavar="SECONDS",
    )
    lock_dir: Path | None = setting(
        WORKER,
        default=None,
        flag=None,
        parse=parse_path,
        help="where each worker keeps the lock file of its node name; workers see each other's "
        "names only within one folder",
        default_text="the system's temporary folder",
    )
    batch_videos: int | None = setting(
        WORKER,
        default=None,
        flag=None,
        parse=parse_at_least(1),
        help="videos one task may tag in one go (cross-video batching)",
        default_text="8 on CUDA, 1 on CPU",
    )
    batch_clips: int | None = setting(
        WORKER,
        default=None,
        flag=None,
        parse=parse_at_least(1),
        help="clips per forward pass when batching",
        default_text="64 on CUDA, 16 on CPU",
    )
    decode_threads: int | None = setting(
        WORKER,
        default=None,
        flag=None,
        parse=parse_at_least(1),
        help="videos decoded ahead of inference",
        default_text="4 on CUDA, 1 on CPU",
    )
    # The worker makes them after a video's job is done; the web app serves them.
    previews: bool = setting(
        WORKER,
        default=True,
        flag="--previews",
        parse=parse_bool,
        help="make a small H.264 preview (short side at most 480 pixels) of each video a "
        "browser cannot play as it is, after its job is done (1/0)",
        show=lambda on: "1" if on else "0",
    )
    preview_dir: Path = setting(
        PREVIEWS,
        default=Path("var/previews"),
        flag="--preview-dir",
        parse=parse_path,
        help="the folder of previews, one file per video named by its sha256: workers "
        "write it, the web app reads it (give both the same folder)",
        metavar="DIR",
    )
    # A pass past this is stopped and recorded as failed; the job is done either way.
    preview_time_limit: float = setting(
        WORKER,
        default=300.0,
        flag="--preview-time-limit",
        parse=parse_positive_seconds,
        help="the longest a worker spends making one preview; longer: none, and why is "
        "recorded (the job stays done)",
        metavar=DURATION,
        show=lambda s: format_duration(timedelta(seconds=s)),
    )
    hmdb51_mirror: str | None = setting(
        TRAINER,
        default=None,
        flag="--mirror",
        parse=str,
        help="base URL of a server holding both HMDB51 archives",
        metavar="URL",
        default_text="the original Brown University addresses",
    )
    ucf101_mirror: str | None = setting(
        TRAINER,
        default=None,
        flag="--ucf101-mirror",
        parse=str,
        help="base URL of a server holding both UCF101 archives (UCF101.rar and the split zip)",
        metavar="URL",
        default_text="the original UCF (crcv.ucf.edu) addresses",
    )
    rar_backend: str = setting(
        TRAINER,
        default="auto",
        flag=None,
        parse=parse_lower,
        help="which program unpacks the RAR archives: auto (bsdtar, then unar), bsdtar, unar",
    )
    # The webhook: a watcher posts every job event there (watcher.webhook); a URL often
    # carries a secret of the receiver's, so its value is never shown.
    webhook_url: str | None = setting(
        EVENTS,
        default=None,
        flag=None,  # a secret's flag would show in `ps`
        parse=parse_http_url,
        help="where every job state change is posted as JSON (queued, running, done, failed, "
        "superseded), each retried with backoff; one watcher of a database posts at a time",
        metavar="URL",
        default_text="unset (no webhook)",
        secret=True,
        repr=False,
    )
    webhook_secret: str | None = setting(
        EVENTS,
        default=None,
        flag=None,
        parse=parse_token,
        help="the key of the X-Actiontag-Signature header: HMAC-SHA256 over the timestamp, "
        "a dot and the body; at least 16 characters",
        default_text="unset (posts are not signed)",
        secret=True,
        repr=False,
    )
    webhook_attempts: int = setting(
        EVENTS,
        default=10,
        flag="--webhook-attempts",
        parse=parse_at_least(1),
        help="how many times an event is posted before it is given up (waits double from "
        "1 s up to 1 min between them)",
        metavar="N",
    )
    # The web app (python -m web): loopback unless told otherwise, and then only with a
    # token (web.security refuses to bind elsewhere without one).
    web_host: str = setting(
        WEB,
        default="127.0.0.1",
        flag="--host",
        parse=parse_host,
        help="address the web app listens on; anything but a loopback address needs ACTIONTAG_WEB_TOKEN",
        metavar="ADDRESS",
    )
    web_port: int = setting(
        WEB,
        default=8000,
        flag="--port",
        parse=parse_port,
        help="TCP port of the web app",
        metavar="PORT",
    )
    web_token: str | None = setting(
        WEB,
        default=None,
        flag=None,
        parse=parse_token,
        help="the secret a client must present (Authorization: Bearer, or the sign-in page) "
        "to use the web app's pages, uploads and API; at least 16 characters",
        default_text="unset (only a loopback address is served)",
        secret=True,
        repr=False,
    )
    # Who the web app records as the author of a correction made with the token.
    web_token_holder: str = setting(
        WEB,
        default="token holder",
        flag=None,
        parse=parse_name,
        help="the name corrections made with ACTIONTAG_WEB_TOKEN are recorded under (without "
        "a token they are recorded as 'local')",
    )
    upload_max_bytes: int = setting(
        WEB,
        default=2 << 30,
        flag="--upload-max-bytes",
        parse=parse_positive_size,
        help="the largest file the web app takes in one upload (larger: 413)",
        metavar="SIZE",
        show=size_text,
    )
    # An upload whose body stops arriving for this long is ended and its staging file
    # removed; staging files this old that no request is writing are swept (web.staging).
    upload_idle_timeout: float = setting(
        WEB,
        default=60.0,
        flag="--upload-idle-timeout",
        parse=parse_positive_seconds,
        help="an upload whose body sends nothing for this long is ended (408) and its "
        "partial file removed",
        metavar=DURATION,
        show=lambda s: format_duration(timedelta(seconds=s)),
    )
    upload_staging_max_age: timedelta = setting(
        WEB,
        default=timedelta(hours=1),
        flag="--upload-staging-max-age",
        parse=parse_positive_duration,
        help="partial upload files (.upload-*.part) unchanged this long are removed from the "
        "inbox, at start and periodically (a process killed mid-upload leaves them); "
        "keep it longer than the idle timeout",
        metavar=DURATION,
        show=format_duration,
    )
    # More names the web app answers to than loopback ones and its bind address
    # (web.hosts: the Host check against DNS rebinding).
    web_allowed_hosts: tuple[str, ...] = setting(
        WEB,
        default=(),
        flag="--allowed-hosts",
        parse=parse_host_patterns,
        help="more names the web app answers to (the Host header), comma-separated: "
        "videos.example.com, *.example.com; other names get 400 (DNS rebinding)",
        metavar="NAMES",
        default_text="loopback names and addresses, and the --host address",
        show=",".join,
    )
    # Proxies whose X-Forwarded-Proto and X-Forwarded-For are believed: none by default.
    web_forwarded_allow_ips: tuple[str, ...] = setting(
        WEB,
        default=(),
        flag="--forwarded-allow-ips",
        parse=parse_ip_list,
        help="addresses of the reverse proxies whose X-Forwarded-Proto and X-Forwarded-For "
        "the web app believes (HTTPS cookies, the client address sign-ins are counted by)",
        metavar="ADDRESSES",
        default_text="none",
        show=",".join,
    )
    web_session_max_age: timedelta = setting(
        WEB,
        default=timedelta(hours=12),
        flag=None,
        parse=parse_positive_duration,
        help="how long a sign-in lasts before the web app asks for the token again",
        metavar=DURATION,
        show=format_duration,
    )
    # Not a setting: the names of those a flag, the environment or an env file set (the
    # demo serves a configured checkpoint, else makes its own).
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def queue(self) -> str:
        """The queue ``tag_video`` messages go to (the first of :attr:`queues`)."""
        return self.queues[0]


SPEC: tuple[Setting, ...] = tuple(
    Setting(**{**vars(f.metadata["setting"]), "name": f.name, "default": f.default})
    for f in fields(Settings)
    if "setting" in f.metadata
)
BY_NAME = {declared.name: declared for declared in SPEC}


def env_name(name: str) -> str:
    """The variable of setting ``name``: ``database_url`` -> ``ACTIONTAG_DATABASE_URL``."""
    declared = BY_NAME.get(name)
    return declared.env if declared is not None else ENV_PREFIX + name.upper()


def command_settings(command: str) -> tuple[str, ...]:
    """The settings ``command`` (a key of :data:`COMMANDS`) takes as flags, in declaration
    order: those with a flag in the components that name it."""
    if command not in COMMANDS:
        raise ValueError(f"no such command: {command}")
    return tuple(
        declared.name
        for declared in SPEC
        if declared.flag is not None and command in declared.component.commands
    )
