"""Every instruction-set path of the byte-classifying pass gives the same
steps, words and answers. The suite runs on the CPU's best path; here the
tests that pin that pass down (the reference comparisons, the examples, the
block-edge pieces and the fuzz regressions) run again in a child process for
each lower path, with COTSIEVE_SIMD capping it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cotsieve

TESTS = Path(__file__).resolve().parent
LEVELS = ["avx512", "avx2", "none"]
PINNING_TESTS = ["test_analysis_reference.py", "test_analysis_examples.py", "test_fuzz_regressions.py"]


def level_under(cap: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cotsieve; print(cotsieve.simd_level())"],
                          env={**os.environ, "COTSIEVE_SIMD": cap}, capture_output=True, text=True)


def test_the_cap_lowers_the_level_and_never_raises_it():
    best = cotsieve.simd_level()
    for cap in LEVELS:
        got = level_under(cap).stdout.strip()
        assert got == LEVELS[max(LEVELS.index(best), LEVELS.index(cap))]


def test_an_unknown_cap_fails_the_import_with_the_allowed_values():
    result = level_under("sse9")
    assert result.returncode != 0
    assert "COTSIEVE_SIMD must be avx512, avx2 or none, not 'sse9'" in result.stderr


@pytest.mark.parametrize("cap", ["avx2", "none"])
def test_lower_paths_pass_the_tests_that_pin_the_pass_down(cap):
    if LEVELS.index(cotsieve.simd_level()) > LEVELS.index(cap):
        pytest.skip(f"this CPU lacks {cap}")
    env = {**os.environ, "COTSIEVE_SIMD": cap}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                             *[str(TESTS / name) for name in PINNING_TESTS]],
                            env=env, capture_output=True, text=True, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
