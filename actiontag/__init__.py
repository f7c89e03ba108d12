"""What every actiontag process shares: its settings (``actiontag.settings``), safe text
for logs and terminals, logging set-up.

Imports nothing but the standard library (python-dotenv only when an env file is read),
so the watcher, the worker, the trainer and the storage CLI can all use it without
pulling each other in.
"""
