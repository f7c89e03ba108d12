"""``python -m trainer``: get the data, then train or load, then evaluate and report.

    python -m trainer --split 3                      HMDB51 split 3: download, train, evaluate
    python -m trainer --split 3                      again: loads runs/split3/model.pt, evaluates
    python -m trainer --dataset synthetic --epochs 3 offline: a generated motion dataset
    torchrun --nproc-per-node 4 -m trainer --split 1 DDP on 4 GPUs

The checkpoint workers serve is ``<out>/split<k>/model.pt`` (best validation epoch);
``last.pt`` beside it lets ``--resume`` continue an interrupted run exactly.

The options are parsed first (trainer.options: no torch), so ``--help`` and a usage
error answer at once; torch and the rest come with trainer.runner, which does the work.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from actiontag import collector
from actiontag.logs import configure_logging
from actiontag.settings import from_args
from trainer.options import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_args(parser, args)  # the HMDB51 mirror and the RAR backend
    # torch, torchvision, OpenCV: only past parsing, and before the logging is set (what
    # they log while imported stays unprinted, as it was when they came first); frozen
    # once imported, before any DataLoader worker is forked (actiontag.collector). Only
    # on the first import: a caller in this process (the launcher's demo, a test) keeps
    # objects of its own, which are not this function's to freeze at a later call.
    first = "trainer.runner" not in sys.modules
    with collector.setting_up() if first else contextlib.nullcontext():
        from trainer.runner import run_command

    # Archive member names and class folders are outside input: one line per record.
    configure_logging(args.log_level.upper())
    return run_command(args, settings)
