"""Results storage for actiontag: SQLAlchemy schema, migrations, job states, queries.

- ``storage.db``: ``open_database()`` (engine + migrations), sessions, ``DatabaseUnavailable``,
  and the units of work callers open (``write_transaction``, ``read_transaction``): storage
  functions execute in the caller's transaction and never commit
- ``storage.schema``: the ORM models
- ``storage.jobs``: every job state change (record, claim, complete, fail, requeue)
- ``storage.query``: the read side (results, one video's detail, statistics)
- ``storage.report``: the static HTML report (``python -m storage report --html DIR``)
- ``python -m storage``: the command line (``storage.options`` parses, ``storage.cli`` runs)

It imports none of the other actiontag packages but ``actiontag``, and never Celery; only
its entry point (``python -m storage``, ``storage/__main__.py``) hands ``requeue`` the
worker's sender.
"""
