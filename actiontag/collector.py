"""Python's cyclic garbage collector in the processes that import torch.

``import torchvision`` leaves hundreds of thousands of objects tracked by the collector.
CPython walks them on every full collection while the imports go on, and at exit it
tears them down one by one. Pausing the collector during the import and freezing the
objects after it takes about a third off that process's CPU (docs/benchmarks.md). A
worker pays the import at every start and stop; so does each run of the trainer.

So these processes follow the ``gc`` module's advice for a process that forks without
exec (the worker's prefork pool, the trainer's DataLoader workers): pause the collector
while the long-lived objects are made, collect once, then freeze what is left
(:func:`gc.freeze`). Later collections, here and in every forked child, skip the frozen
objects, so they cost little, and the children's copy-on-write pages stay shared.
Frozen objects are never collected: only what lives until the process exits (modules,
the model's code) belongs in :func:`setting_up`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["setting_up"]


@contextmanager
def setting_up() -> Iterator[None]:
    """Pause the collector while the block runs; then collect once and freeze the rest."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # One full collection first: garbage made while the collector was paused (an
        # exception's traceback holding tensors, say) must not be frozen for good.
        gc.collect()
        gc.freeze()
        if enabled:
            gc.enable()
