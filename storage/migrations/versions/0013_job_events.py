"""Job events: every change of a job's state, written by the database in its transaction.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

Two new tables and triggers on ``jobs``; no existing row changes. ``job_events`` is the
outbox the web app's event stream and the webhook read: a row for each job made (its
first state) and each change of ``jobs.state``, inserted by a trigger, so every writer
of a state (watcher, worker, reconciler, the storage commands, anything later) is seen
once, in the same transaction, without a line of their code. Ids only grow (SQLite
AUTOINCREMENT: a removed last row's id is never handed out again). ``event_cursors``
holds how far a deliverer got and which process holds it.

A later migration that rebuilds ``jobs`` on SQLite (``batch_alter_table``) drops its
triggers with the old table and must create them again (``create_triggers``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER job_events_on_insert AFTER INSERT ON jobs
    BEGIN
        INSERT INTO job_events (job_id, state, at) VALUES (NEW.id, NEW.state, {SQLITE_NOW});
    END""",
    f"""CREATE TRIGGER job_events_on_update AFTER UPDATE OF state ON jobs
    WHEN NEW.state IS NOT OLD.state
    BEGIN
        INSERT INTO job_events (job_id, state, at) VALUES (NEW.id, NEW.state, {SQLITE_NOW});
    END""",
)
POSTGRES_TRIGGERS = (
    """CREATE FUNCTION record_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
            INSERT INTO job_events (job_id, state, at)
            VALUES (NEW.id, NEW.state, clock_timestamp());
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER job_events_on_change AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION record_job_event()""",
)


def create_triggers() -> None:
    """The triggers that write ``job_events`` (for a migration that rebuilds ``jobs``)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"])
    op.create_table(
        "event_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_cursors")),
    )
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER job_events_on_change ON jobs")
        op.execute("DROP FUNCTION record_job_event()")
    else:
        op.execute("DROP TRIGGER job_events_on_insert")
        op.execute("DROP TRIGGER job_events_on_update")
    op.drop_table("event_cursors")
    op.drop_index(op.f("ix_job_events_job_id"), table_name="job_events")
    op.drop_table("job_events")
