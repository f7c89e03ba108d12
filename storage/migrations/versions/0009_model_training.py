"""Models remember how they were trained: the checkpoint's ``train_args``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

``models.train_args`` holds what the trainer recorded in the checkpoint about its run
(the dataset and its split, the data folder, the epochs, the checkpoint it was
initialised from, whether the backbone was frozen, the classes and videos it was trained
on), filled where the split, class names and metrics are: when a worker loads the
checkpoint, or ``python -m storage retag --checkpoint`` verifies it. The web app's model
page shows it; models registered before this revision have none until then.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("train_args", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("train_args")
