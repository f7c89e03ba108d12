"""``python -m storage``: see storage.cli."""

import sys

from storage.cli import main

if __name__ == "__main__":
    sys.exit(main())
