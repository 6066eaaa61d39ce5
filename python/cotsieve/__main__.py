"""``python -m cotsieve``: the same command line as ``cotsieve``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
