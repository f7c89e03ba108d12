"""Job state ``superseded``: a job whose file changed at its path before it finished.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

The state column is a CHECKed string (the same DDL on both backends), so the CHECK is
replaced. PostgreSQL alters it in place. SQLite cannot alter a CHECK: the ``jobs`` table
is rebuilt (copied, dropped, renamed), which storage.db runs with foreign keys off, so
dropping the old table does not cascade into predictions, expert usage and thumbnails;
``PRAGMA foreign_key_check`` runs before the migration commits.

Downgrade: superseded jobs become ``failed``, keeping the reason they were superseded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = ("queued", "running", "done", "failed")
NEW_STATES = (*OLD_STATES, "superseded")
CONSTRAINT = "ck_jobs_job_state"


def _check(states: Sequence[str]) -> str:
    return "state IN ({})".format(", ".join(f"'{state}'" for state in states))


def _replace_check(states: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("jobs", recreate="always") as batch:
            batch.drop_constraint(op.f(CONSTRAINT), type_="check")
            batch.create_check_constraint(op.f(CONSTRAINT), _check(states))
    else:
        op.drop_constraint(op.f(CONSTRAINT), "jobs", type_="check")
        op.create_check_constraint(op.f(CONSTRAINT), "jobs", _check(states))


def upgrade() -> None:
    _replace_check(NEW_STATES)


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE jobs SET state = 'failed', "
            "error = COALESCE(error, 'superseded: the file changed before the job finished') "
            "WHERE state = 'superseded'"
        )
    )
    _replace_check(OLD_STATES)
