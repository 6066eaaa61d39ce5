"""Shared test setup.

Tests import the installed package, never the source tree, so they check what
users get. Triton kernels run in the interpreter unless a GPU run is asked for.
"""

import atexit
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import hermetic

# Before any test module imports a library that reads them (Hugging Face
# libraries read their offline flags at import): every process the suite
# starts runs with a fresh home and the settings that keep it on loopback.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="cotsieve-tests-"))
atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
hermetic.apply(hermetic.make_home(_SESSION_ROOT))

# `python -m pytest` puts the current folder first on sys.path. From the
# checkout's root that would let the source folder kernels/ (installed as
# cotsieve.kernels) shadow the `kernels` distribution, which transformers
# imports when it is installed; the tests must see what users get.
_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != _CHECKOUT]

# The command line keeps pyarrow from importing pandas when nothing has
# imported it yet (cotsieve.cli.process), and pyarrow then stops spotting
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


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")


@pytest.fixture
def browser(tmp_path):
    """Run headless Chromium on a page with the suite's flags, each call with a fresh profile.

    ``browser(page, "--dump-dom")`` returns the ``CompletedProcess``.
    """
    binary = chromium_binary()
    launches = itertools.count()

    def run(page: Path, *args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"chromium-profile-{next(launches)}"
        command = hermetic.chromium_command(binary, profile, "--enable-logging=stderr", "--v=0", *args, page.as_uri())
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    return run


@contextlib.contextmanager
def environ_restored():
    """Give the environment back as it was: ``ray.init`` sets variables
    (``RAY_AUTH_MODE=token`` among them) that outlive ``ray.shutdown``, and a
    Ray node a later test starts would take them up."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_instance():
    """A one-node Ray instance on a loopback address for the module's tests; shut down after them."""
    ray = pytest.importorskip("ray")
    with environ_restored():
        ray.init(**hermetic.ray_init_kwargs())
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture
def loopback_ray_init(monkeypatch):
    """Make a plain ``ray.init(...)``, as the docs write it, start its node on a loopback address."""
    ray = pytest.importorskip("ray")
    user_init = ray.init

    def init(*args, **kwargs):
        return user_init(*args, **{**kwargs, "_node_ip_address": hermetic.RAY_NODE_ADDRESSES[0]})

    monkeypatch.setattr(ray, "init", init)
    with environ_restored():
        yield ray


# Tests that load the language model or start Ray take tens of seconds each;
# they run in .ci/run's second tier (pytest -m slow), not in the README's
# quick command.
SLOW_FIXTURES = {"smollm2", "ray_instance", "loopback_ray_init", "cluster"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
