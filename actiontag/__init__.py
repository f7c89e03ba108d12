"""Helpers shared by every actiontag process: safe text for logs and terminals, logging set-up.

Imports nothing but the standard library, so the watcher, the worker, the trainer and the
storage CLI can all use it without pulling each other in.
"""
