"""Alembic environment: runs our migrations against storage.schema's metadata.

storage.db.upgrade() passes an open connection in ``config.attributes["connection"]``
(inside the transaction that holds the migration lock); otherwise an engine is made
from the configuration's URL, e.g. for ``command.revision(..., autogenerate=True)``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from storage.db import database_url, make_engine, migration_transaction
from storage.schema import Base, Unsigned64, UtcDateTime

config = context.config


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    # New revisions must not import our Python types: they outlive them.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, Unsigned64):
        return "sa.BigInteger()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():  # `alembic upgrade --sql`: write the SQL instead
        context.configure(
            url=config.get_main_option("sqlalchemy.url") or database_url(),
            target_metadata=Base.metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        # Foreign keys off on SQLite while a table is rebuilt (storage.db says why).
        with migration_transaction(engine) as conn:
            run(conn)
    finally:
        engine.dispose()


main()
