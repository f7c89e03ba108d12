"""The repository's run commands: ``make demo`` and ``make up`` (``python -m launcher``).

``demo`` shows the whole service on a fresh checkout: a demonstration model, a watcher
and a worker on their own database and broker under ``var/demo/``, sample videos, the
results table and the HTML report. ``up`` runs a watcher and a worker for real use until
Ctrl-C. Both start the services as separate processes, exactly as an operator would,
and stop them cleanly.

This package lives in the repository only (it is not part of the installed
distribution): it drives the services from a checkout and imports the trainer for the
demonstration model, which the services themselves never do.
"""
