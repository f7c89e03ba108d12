"""Shot transitions: a shot cut's end, so a dissolve, a fade or a wipe keeps its span.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10

One new nullable column, ``shot_cuts.end_s``: the new shot's first clean frame after a
gradual transition that starts at ``time_s``. NULL (every row written before) is a hard
cut, as is ``end_s == time_s``; the check keeps an end from coming before its start.
Downgrading drops the column: the transitions become hard cuts at their start.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_shot_cuts_end_not_before_start"


def upgrade() -> None:
    with op.batch_alter_table("shot_cuts") as batch:
        batch.add_column(sa.Column("end_s", sa.Float(), nullable=True))
        batch.create_check_constraint(op.f(CONSTRAINT), "end_s IS NULL OR end_s >= time_s")


def downgrade() -> None:
    with op.batch_alter_table("shot_cuts") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.drop_column("end_s")
