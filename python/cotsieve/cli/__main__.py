"""``python -m cotsieve.cli``: the ``cotsieve`` command."""

import sys

from . import main

sys.exit(main())
