"""Documentation that runs: the README's Python example and every docstring
example of the public modules."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = ["cotsieve", "cotsieve.patterns", "cotsieve.analysis", "cotsieve.errors",
           "cotsieve.io", "cotsieve.io.sources", "cotsieve.io.text", "cotsieve.io.chunks", "cotsieve.io.prefetch",
           "cotsieve.io.lanes",
           "cotsieve.io.jsonl", "cotsieve.io.arrow", "cotsieve.io.corpus", "cotsieve.io.writers",
           "cotsieve.io.locations", "cotsieve.io.select", "cotsieve.io.kept_parquet", "cotsieve.io.staged",
           "cotsieve.rules", "cotsieve.pipeline", "cotsieve.testing", "cotsieve.demo", "cotsieve.report",
           "cotsieve.cli", "cotsieve.cli.exit_codes", "cotsieve.cli.process", "cotsieve.progress",
           "cotsieve.cli.progress", "cotsieve.cli.completion"]


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    assert "branch_step_ratio" in capsys.readouterr().out


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
