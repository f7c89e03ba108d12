"""Jobs remember their path: the file a job was taken from, among its video's names.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

A video that arrived under several names has one job per model; ``jobs.path`` says which
name that job read (set when the job is created, replaced by the path the worker read).
Jobs made before this revision get their video's most recently seen path, the one
``python -m storage list`` showed until then.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("path", sa.Text(), nullable=True))
    op.execute(
        "UPDATE jobs SET path = ("
        "SELECT vp.path FROM video_paths vp WHERE vp.video_id = jobs.video_id "
        "ORDER BY vp.first_seen DESC, vp.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("path")
