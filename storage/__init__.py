"""Results storage for actiontag: SQLAlchemy schema, migrations, job states, queries.

- ``storage.db``: ``open_database()`` (engine + migrations), sessions, ``DatabaseUnavailable``,
  and the units of work callers open (``write_transaction``, ``read_transaction``): storage
  functions execute in the caller's transaction and never commit
- ``storage.schema``: the ORM models
- ``storage.ingest``: what comes in (checkpoints, files recorded, superseded content, retag's jobs)
- ``storage.transitions``: the job state machine (claim, fail, release, requeue)
- ``storage.results``: ``JobResult`` and ``complete_job`` (``running -> done`` with the results)
- ``storage.inputs``: what a worker reads to run a job (its video's recorded files)
- ``storage.paths``: which of a video's paths comes first
- ``storage.queries``: the read side, a module per read model (jobs, videos, timelines,
  moments, thumbnails, models, statistics) and the filters they share
- ``storage.report``: the static HTML report (``python -m storage report --html DIR``)
- ``python -m storage``: the command line (``storage.options`` parses, ``storage.cli`` runs)

It imports none of the other actiontag packages but ``actiontag``, and never Celery; only
its entry point (``python -m storage``, ``storage/__main__.py``) hands ``requeue`` the
worker's sender.
"""
