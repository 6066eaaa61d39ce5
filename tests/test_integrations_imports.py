"""The optional extras stay optional: the core never imports them, and a
missing one is named with its pip command."""

import doctest
import importlib
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "datasets", "datatrove", "ray")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_imports_none_of_the_extras():
    done = run_python("import sys, cotsieve, cotsieve.cli, cotsieve.report, cotsieve.integrations, "
                      "cotsieve.integrations.hf\n"
                      f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module, extra", [("cotsieve.integrations.datatrove", "datatrove"),
                                           ("cotsieve.integrations.ray", "ray"), ("cotsieve.ray", "ray")])
def test_a_missing_extra_names_its_pip_command(module, extra):
    done = run_python(f"import sys; sys.modules[{extra!r}] = None\n"  # the package has the extra's name
                      f"from cotsieve.integrations import MissingExtraError\n"
                      f"try:\n    import {module}\nexcept MissingExtraError as err:\n    print(err)")
    assert done.returncode == 0, done.stderr
    assert f"pip install 'cotsieve[{extra}]'" in done.stdout


@pytest.mark.parametrize("name", ["cotsieve.integrations", "cotsieve.integrations._batch"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
