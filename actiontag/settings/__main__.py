"""``python -m actiontag.settings --markdown``: print the configuration reference."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actiontag.settings.reference import COMMAND, markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actiontag.settings",
        description=f"Print the configuration reference: {COMMAND}",
    )
    parser.add_argument(
        "--markdown", action="store_true", required=True, help="docs/configuration.md's text"
    )
    parser.parse_args(argv)
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
