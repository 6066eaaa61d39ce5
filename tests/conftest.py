"""Shared test setup.

Tests import the installed package, never the source tree, so they check what
users get. Triton kernels run in the interpreter unless a GPU run is asked for.
"""

import os
import sys
from pathlib import Path

import pytest

# `python -m pytest` puts the current folder first on sys.path. From the
# checkout's root that would let the source folder kernels/ (installed as
# cotsieve.kernels) shadow the `kernels` distribution, which transformers
# imports when it is installed; the tests must see what users get.
_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != _CHECKOUT]

# The command line keeps pyarrow from importing pandas when nothing has
# imported it yet (cotsieve._pandas_probe), and pyarrow then stops spotting
# pandas objects. Tests call the command line in this process and later hand
# pandas objects to pyarrow, so pandas comes in first, as in a user's session;
# tests/test_cli.py checks the real command line in a child process.
try:
    import pandas  # noqa: F401
except ImportError:
    pass

if os.environ.get("COTSIEVE_GPU_TESTS") != "1":
    os.environ.setdefault("TRITON_INTERPRET", "1")


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository, or ``$COTSIEVE_SHARED_DATA``."""
    override = os.environ.get("COTSIEVE_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real traces not available at {path}")
    return path
