"""Whether a checkpoint is one the worker serves: read and verified (format, its content
checksum, no pickled objects) and its weights checked to load strictly into the network
its config describes.

``python -m worker.servable PATH`` answers for a process that never imports torch (the
watcher): the sha256 of the file it checked on stdout and exit 0, or one line saying why
not on stderr and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from actiontag.text import escape_control

if TYPE_CHECKING:
    from model.checkpoint import Checkpoint

EXIT_UNFIT = 2


def load_servable(path: Path) -> Checkpoint:
    """The checkpoint at ``path``, its weights checked to fit its network (on the meta
    device: nothing is allocated or initialised). Raises ``CheckpointError``."""
    from model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    checkpoint.check_fits()
    return checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m worker.servable CHECKPOINT", file=sys.stderr)
        return EXIT_UNFIT
    import torch

    from model.checkpoint import CheckpointError

    torch.set_num_threads(1)  # a check, not a workload: leave the cores to the services
    try:
        checkpoint = load_servable(Path(args[0]))
    except CheckpointError as exc:
        print(escape_control(str(exc)), file=sys.stderr)
        return EXIT_UNFIT
    except OSError as exc:
        print(escape_control(f"cannot read {args[0]}: {exc.strerror or exc}"), file=sys.stderr)
        return EXIT_UNFIT
    print(checkpoint.sha256)
    return 0


if __name__ == "__main__":
    sys.exit(main())
