"""Video names: the name people know a video by, and the names uploads gave.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08

``videos.name``: the name an upload gave the content, else the last component of the
first path it was seen under; filled here for the videos already recorded from their
oldest path. ``upload_names``: the name a person gave each uploaded content, by sha256,
written when the web app places the file, read when the watcher records it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("name", sa.Text(), nullable=True))
    op.create_table(
        "upload_names",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_upload_names")),
    )
    _name_recorded_videos()


def _name_recorded_videos() -> None:
    """Each video's name from its oldest path (in Python: SQL has no portable basename)."""
    connection = op.get_bind()
    paths = sa.table(
        "video_paths",
        sa.column("id", sa.Integer),
        sa.column("video_id", sa.Integer),
        sa.column("path", sa.Text),
        sa.column("first_seen", sa.DateTime),
    )
    videos = sa.table("videos", sa.column("id", sa.Integer), sa.column("name", sa.Text))
    rows = connection.execute(
        sa.select(paths.c.video_id, paths.c.path).order_by(
            paths.c.video_id, paths.c.first_seen.desc(), paths.c.id.desc()
        )
    ).all()
    names = {video_id: path for video_id, path in rows}  # the oldest path is the last
    update = (
        sa.update(videos)
        .where(videos.c.id == sa.bindparam("video_id"))
        .values(name=sa.bindparam("video_name"))
    )
    items = [
        {"video_id": video_id, "video_name": path.rsplit("/", 1)[-1]}
        for video_id, path in names.items()
    ]
    for start in range(0, len(items), CHUNK):
        connection.execute(update, items[start : start + CHUNK])


def downgrade() -> None:
    op.drop_table("upload_names")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("name")
