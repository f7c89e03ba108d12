"""Indexes for the web app's first pages: the videos by latest activity, and
moments by confidence.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

``ix_jobs_activity`` orders jobs by when they last did something (finished, else
started, else queued: ``storage.queries.filters.activity_time``) and then by video, so
the most recently active videos are read from the front of an index instead of grouping
and sorting every job. ``ix_segments_mean_confidence`` serves moments searched without a
label, most confident first (with a label, ``(label, mean_confidence)`` of 0007 does).
``bench/web.py`` measures both on 100,000 videos and 1,000,000 segments. Indexes only:
no row changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVITY = "coalesce(finished_at, started_at, enqueued_at)"


def upgrade() -> None:
    op.create_index("ix_jobs_activity", "jobs", [sa.text(ACTIVITY), "video_id"])
    op.create_index("ix_segments_mean_confidence", "segments", ["mean_confidence"])


def downgrade() -> None:
    op.drop_index("ix_segments_mean_confidence", table_name="segments")
    op.drop_index("ix_jobs_activity", table_name="jobs")
