"""Regenerate the shipped sample corpus ``python/cotsieve/data/sample_traces.jsonl.gz``.

Usage, from anywhere::

    python benchmarks/make_sample.py [OUTPUT]

The output is byte-identical on every run (fixed seed, gzip header without
timestamp), so a changed file in review means the generator changed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "python" / "cotsieve"
DEFAULT_OUTPUT = PACKAGE_DIR / "data" / "sample_traces.jsonl.gz"


def load_synth():
    """Load ``cotsieve/testing.py`` on its own, so that no native build is needed."""
    spec = importlib.util.spec_from_file_location("cotsieve_testing", PACKAGE_DIR / "testing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    output = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    load_synth().write_sample(output)
    print(f"wrote {output} ({output.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
