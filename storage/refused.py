"""Files the watcher refuses to take (larger than the maximum video size), with why.

One row per path, the latest refusal: the watcher looks at a refused file again at each
start, and recording the path later (the limit raised, the file replaced by a smaller
one) removes its row (:func:`storage.ingest.record_path`). ``python -m storage refused``
lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.schema import RefusedFile, utcnow


@dataclass(frozen=True)
class Refusal:
    path: str
    size: int
    reason: str
    seen_at: datetime


def record_refusal(session: Session, path: str, size: int, reason: str) -> None:
    """Note that the file at ``path`` (``size`` bytes) is refused for ``reason``.

    An upsert by path, atomic on SQLite and PostgreSQL (two watchers may refuse one file).
    """
    if not reason.strip():
        raise ValueError("say why the file is refused: the reason is what people read")
    values = {"path": path, "size": size, "reason": reason, "seen_at": utcnow()}
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(RefusedFile).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[RefusedFile.path],
        set_={key: statement.excluded[key] for key in ("size", "reason", "seen_at")},
    )
    begin_writing(session)
    session.execute(statement)


def refusals(session: Session, limit: int | None = None) -> list[Refusal]:
    """The refused files, most recently refused first."""
    rows = session.execute(
        select(RefusedFile.path, RefusedFile.size, RefusedFile.reason, RefusedFile.seen_at)
        .order_by(RefusedFile.seen_at.desc(), RefusedFile.id.desc())
        .limit(limit)
    ).all()
    return [Refusal(*row) for row in rows]
