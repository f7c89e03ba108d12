"""The database schema: SQLAlchemy 2.0 typed models, identical on SQLite and PostgreSQL.

Migrations in ``storage/migrations`` build exactly this metadata (a test checks it).
Job states change only in :mod:`storage.ingest` (a job made, superseded),
:mod:`storage.transitions` (the state machine) and :mod:`storage.results` (done); the
database itself records each change in ``job_events`` (triggers, migration 0013).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamp with time zone``; SQLite has no time zones, so it
    stores naive UTC text, which still sorts and compares correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Unsigned64(TypeDecorator[int]):
    """An unsigned 64-bit integer (``st_dev``, ``st_ino``) in a signed BIGINT column.

    Inode numbers use all 64 bits on some filesystems (overlayfs with xino sets the high
    bits), beyond BIGINT's range on both backends: values from 2**63 up are stored as
    their two's-complement negative and turned back on reading.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < 2**64:
            raise ValueError(f"{value} is not an unsigned 64-bit integer")
        return value - 2**64 if value >= 2**63 else value

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return value + 2**64 if value < 0 else value


class JobState(str, enum.Enum):
    """``queued -> running -> done | failed | superseded``; see DESIGN.md "Job states".

    ``superseded``: the file changed at its path before the job finished (a writer that
    paused, then went on); the new content has a job of its own.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class AnnotationAction(str, enum.Enum):
    """What a person did to a segment (:class:`Annotation`): agreed with the model's
    segment, named it otherwise, moved its start or end, removed it, or marked one the
    model did not find."""

    CONFIRM = "confirm"
    RELABEL = "relabel"
    ADJUST = "adjust"
    DELETE = "delete"
    NEW = "new"


class PreviewState(str, enum.Enum):
    """What a video's :class:`Preview` row says: the browser plays the file as it is, a
    preview was made, or making one failed (the reason in ``detail``)."""

    PLAYABLE = "playable"
    MADE = "made"
    FAILED = "failed"


# The states a job ends in: nothing more happens to it unless a person (or, for a
# superseded job, the same content coming back) asks for it.
FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.SUPERSEDED})


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}  # noqa: RUF012 (SQLAlchemy's API)


class Video(Base):
    """One distinct video content, identified by the sha256 of its bytes."""

    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Filled by the worker once it has probed the video.
    duration: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    frames: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # The name people know it by (migration 0014): the name an upload gave it, else the
    # last component of the first path it was seen under. Display text only, never a
    # path; the library's search and sort by name read it.
    name: Mapped[str | None] = mapped_column(Text)

    paths: Mapped[list[VideoPath]] = relationship(
        back_populates="video",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="VideoPath.first_seen",
    )
    jobs: Mapped[list[Job]] = relationship(
        back_populates="video", cascade="all, delete-orphan", passive_deletes=True
    )


class VideoPath(Base):
    """A file name under which a video's content was seen.

    Unique per (video, path) rather than per path: a file replaced by new content under
    the same name is a new video, and the old one keeps its history.
    """

    __tablename__ = "video_paths"
    __table_args__ = (UniqueConstraint("video_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text, index=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # The file's identity when the watcher hashed it (fstat of the descriptor it read),
    # and the inbox root it was recorded under: the worker opens the path only inside
    # that inbox, and re-hashes before decoding when the file it opened is not this one
    # in this state. NULL in rows recorded before migration 0003 (always re-hashed).
    inbox: Mapped[str | None] = mapped_column(Text)
    device: Mapped[int | None] = mapped_column(Unsigned64)
    inode: Mapped[int | None] = mapped_column(Unsigned64)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    # ctime too: mtime can be set back (touch -r, os.utime), ctime cannot.
    ctime_ns: Mapped[int | None] = mapped_column(BigInteger)

    video: Mapped[Video] = relationship(back_populates="paths")


class Model(Base):
    """A model checkpoint; its sha256 is the model's identity.

    The watcher registers a model by sha256 and path only; the worker fills the split,
    class names, metrics and how it was trained (the checkpoint's ``train_args``) when it
    loads the checkpoint, as ``retag --checkpoint`` does when it verifies one.
    """

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    split: Mapped[int | None] = mapped_column(Integer)
    class_names: Mapped[list[str] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    train_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # migration 0009
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)

    jobs: Mapped[list[Job]] = relationship(
        back_populates="model", cascade="all, delete-orphan", passive_deletes=True
    )


def _part_of_job(order_by: str) -> Any:
    """A job's rows in one of the tables of its results: gone with the job (the
    database's ON DELETE CASCADE deletes them, so none is loaded to be deleted), read in
    ``order_by`` order."""
    return relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by=order_by,
    )


class Job(Base):
    """Tagging one video with one model; at most one job per (video, model)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("video_id", "model_id"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The reconciler's question: which jobs have sat queued (or running) too long?
        Index(None, "state", "enqueued_at"),
        # The most recently active videos first (queries.videos.recent_videos; migration 0008).
        Index(
            "ix_jobs_activity", text("coalesce(finished_at, started_at, enqueued_at)"), "video_id"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    state: Mapped[JobState] = mapped_column(
        Enum(
            JobState,
            name="job_state",
            native_enum=False,  # a CHECKed string: the same DDL on both backends
            create_constraint=True,
            length=16,
            values_callable=lambda states: [s.value for s in states],
        ),
        default=JobState.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # The path this job's file was taken from: the name it arrived under when the job was
    # created, replaced by the path a worker then read (a video seen under several names
    # is read from whichever still holds it). Which name goes with a result or an error.
    path: Mapped[str | None] = mapped_column(Text)
    # When the job last became queued or was last sent to the broker.
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(255))
    decode_ms: Mapped[float | None] = mapped_column(Float)
    inference_ms: Mapped[float | None] = mapped_column(Float)

    video: Mapped[Video] = relationship(back_populates="jobs")
    model: Mapped[Model] = relationship(back_populates="jobs")
    predictions: Mapped[list[Prediction]] = _part_of_job("Prediction.rank")
    expert_usage: Mapped[list[ExpertUsage]] = _part_of_job("ExpertUsage.expert")
    thumbnails: Mapped[list[Thumbnail]] = _part_of_job("Thumbnail.position")
    segments: Mapped[list[SegmentRecord]] = _part_of_job("SegmentRecord.position")
    shot_cuts: Mapped[list[ShotCut]] = _part_of_job("ShotCut.position")
    windows: Mapped[list[WindowRecord]] = _part_of_job("WindowRecord.position")


class Prediction(Base):
    """One of a job's top-k labels; rank 1 is the most confident."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("job_id", "rank"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        # "Videos tagged X above confidence c."
        Index(None, "label", "confidence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float] = mapped_column(Float)

    job: Mapped[Job] = relationship(back_populates="predictions")


class ExpertUsage(Base):
    """How much one expert of the mixture was used on a job's video."""

    __tablename__ = "expert_usage"
    __table_args__ = (
        UniqueConstraint("job_id", "expert"),
        CheckConstraint("expert >= 0", name="expert_not_negative"),
        CheckConstraint("times_chosen >= 0", name="times_chosen_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    expert: Mapped[int] = mapped_column(Integer)
    # Mean over the video's clips of the dense gate weight given to this expert.
    mean_gate_weight: Mapped[float] = mapped_column(Float)
    # In how many clips this expert was among the top-k chosen.
    times_chosen: Mapped[int] = mapped_column(Integer)

    job: Mapped[Job] = relationship(back_populates="expert_usage")


class Thumbnail(Base):
    """A small JPEG of one moment of a job's video, for the report's thumbnail strip.

    The worker stores them while it has the frames decoded, so the report never needs
    the video (it may run where the inbox is not). ``position`` orders the strip.
    """

    __tablename__ = "thumbnails"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
        CheckConstraint("width > 0 AND height > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)

    job: Mapped[Job] = relationship(back_populates="thumbnails")


class SegmentRecord(Base):
    """One segment of a job's timeline (timeline.values.Segment): a stretch of the
    video with one action, from ``start_s`` to ``end_s`` seconds.

    ``position`` orders a job's segments by time. ``top_k``: a JSON list of
    ``{"label": ..., "confidence": ...}`` objects, most likely first, ``label`` first.
    ``thumbnail``: a JPEG of the segment for the report's list of segments, or NULL.
    Segments of one job may overlap by less than a window (a window's end is past the
    next window's start).
    """

    __tablename__ = "segments"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
        CheckConstraint("start_s >= 0 AND end_s > start_s", name="times_ordered"),
        CheckConstraint(
            "mean_confidence >= 0 AND mean_confidence <= 1", name="mean_confidence_range"
        ),
        CheckConstraint(
            "peak_confidence >= 0 AND peak_confidence <= 1", name="peak_confidence_range"
        ),
        # "Every moment of label X at confidence c or more" (python -m storage moments).
        Index(None, "label", "mean_confidence"),
        # The most confident moments of any label first (the web app; migration 0008).
        Index("ix_segments_mean_confidence", "mean_confidence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(255))
    mean_confidence: Mapped[float] = mapped_column(Float)
    peak_confidence: Mapped[float] = mapped_column(Float)
    top_k: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # A small JPEG for the report (NULL: none made). Deferred: only queries.timelines
    # reads it, so moments and exports never load kilobytes per segment.
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)

    job: Mapped[Job] = relationship(back_populates="segments")


class ShotCut(Base):
    """A shot boundary in a job's video (timeline.values.Cut): a hard cut at ``time_s``,
    the first frame of the new shot (``end_s`` NULL, as every row before transitions
    were kept, or equal), or a gradual transition from ``time_s`` to ``end_s``, the new
    shot's first clean frame."""

    __tablename__ = "shot_cuts"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
        CheckConstraint("time_s >= 0", name="time_not_negative"),
        CheckConstraint("end_s IS NULL OR end_s >= time_s", name="end_not_before_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float, nullable=True)

    job: Mapped[Job] = relationship(back_populates="shot_cuts")


class WindowRecord(Base):
    """One scored window of a job's video (timeline.values.Window): its top-1 label
    and confidence, the compact per-window timeline that plots and ``show`` draw."""

    __tablename__ = "windows"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
        CheckConstraint("start_s >= 0 AND end_s > start_s", name="times_ordered"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float] = mapped_column(Float)

    job: Mapped[Job] = relationship(back_populates="windows")


class RefusedFile(Base):
    """A file in the inbox the watcher will not take, and why (e.g. larger than the
    maximum video size). One row per path: the latest refusal; recording the path later
    (the limit raised, the file replaced) removes it."""

    __tablename__ = "refused_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    # When the watcher last refused it (each start-up scan looks at it again).
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Annotation(Base):
    """A person's correction of a video's segments: one row per act (confirm, relabel,
    adjust, delete, new), never changed afterwards; the model's rows stay as they were.

    Each row holds the whole segment as the person left it (``start_s``, ``end_s``,
    ``label``; ``label`` NULL for a deletion), so the newest row of a segment is its
    people's view without replaying the older ones (:mod:`storage.queries.annotations`).
    ``corrects_segment_id``: the model's segment it corrects (NULL for a new one, and if
    that job's results are ever removed: the person's rows are kept). ``revises_id``:
    the first row of the same segment's history (a new segment's own row, or the first
    correction of a model's segment); NULL on that first row. ``model_id``: the model
    whose segment it corrects (for a new segment, the model whose timeline was shown).
    ``author``: the token holder's name, or ``local`` where the web app asks no token.
    """

    __tablename__ = "annotations"
    __table_args__ = (
        CheckConstraint("start_s >= 0 AND end_s > start_s", name="times_ordered"),
        CheckConstraint("label IS NOT NULL OR action = 'delete'", name="label_unless_deleted"),
        # "Corrections since the served model was registered" (the model page).
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[AnnotationAction] = mapped_column(
        Enum(
            AnnotationAction,
            name="annotation_action",
            native_enum=False,  # a CHECKed string, as the job states
            create_constraint=True,
            length=16,
            values_callable=lambda actions: [a.value for a in actions],
        )
    )
    corrects_segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL"), index=True
    )
    # Undoing a segment's first row undoes the rows that revised it.
    revises_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), index=True
    )
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Preview(Base):
    """Whether a browser plays a video as it is, else the preview the worker made of it
    (a file named by the video's sha256 in the previews folder) or why none was made.

    One row per video, written by the worker after a job of it is done; ``detail`` says
    why the file plays or not, or why the preview failed. Size and duration are the
    preview's, for a made one.
    """

    __tablename__ = "previews"

    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[PreviewState] = mapped_column(
        Enum(
            PreviewState,
            name="preview_state",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda states: [s.value for s in states],
        )
    )
    detail: Mapped[str] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(BigInteger)
    made_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobEvent(Base):
    """A job made or its state changed: the outbox of the event stream and the webhook.

    Written by triggers on ``jobs`` (migration 0013), never by this code, in the
    transaction that changed the state; ``id`` only grows. ``state`` is the state the job
    entered, ``at`` when (the database's clock).
    """

    __tablename__ = "job_events"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy's API)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class EventCursor(Base):
    """How far a deliverer of job events (``name``: ``webhook``) got, and which process
    holds it until when: one deliverer at a time, whatever the number of watchers."""

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]


class UploadName(Base):
    """The name a person gave an uploaded file (its last component, control characters
    escaped: web.filenames), kept by the content's sha256 from the moment the web app
    places it in the inbox, so that the video the watcher then records takes this name
    rather than the server's ``upload-…`` one (:func:`storage.ingest.record_path`). The
    first upload of a content keeps its name (migration 0014)."""

    __tablename__ = "upload_names"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
