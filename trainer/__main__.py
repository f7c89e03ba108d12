"""``python -m trainer`` (and the ``actiontag-trainer`` script): see trainer.cli."""

import sys

from trainer.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
