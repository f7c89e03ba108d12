"""File identity: the inbox, device, inode, mtime and ctime of each recorded path.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

The watcher stores, with each path, the inbox root it was recorded under and the
identity (fstat) of the file it hashed, so the worker can tell at decode time whether
the file at that path is still the one recorded. Nullable columns
only: every existing row is kept, without an identity; the worker re-hashes such files
before decoding them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("inbox", "device", "inode", "mtime_ns", "ctime_ns")


def upgrade() -> None:
    # Nullable columns: a plain ALTER TABLE ADD COLUMN on both backends, no table copy.
    op.add_column("video_paths", sa.Column("inbox", sa.Text(), nullable=True))
    op.add_column("video_paths", sa.Column("device", sa.BigInteger(), nullable=True))
    op.add_column("video_paths", sa.Column("inode", sa.BigInteger(), nullable=True))
    op.add_column("video_paths", sa.Column("mtime_ns", sa.BigInteger(), nullable=True))
    op.add_column("video_paths", sa.Column("ctime_ns", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column (the table is rebuilt).
    with op.batch_alter_table("video_paths") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
