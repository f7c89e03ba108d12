"""Previews: whether a browser plays a video as it is, else the preview made of it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10

One new table; no existing row changes. A row per video, written by the worker once a
job of the video is done: ``playable`` (the browser plays the file as it is), ``made``
(a preview named by the video's sha256 lies in the previews folder) or ``failed`` (why
in ``detail``). Videos tagged before this revision have none: the page offers their
file as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# storage.schema.PreviewState's values, written out: a migration keeps the schema of its
# day whatever the code becomes.
STATES = ("playable", "made", "failed")


def upgrade() -> None:
    op.create_table(
        "previews",
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                *STATES,
                name="preview_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_previews_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", name=op.f("pk_previews")),
    )


def downgrade() -> None:
    op.drop_table("previews")
