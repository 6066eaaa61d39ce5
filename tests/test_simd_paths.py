"""Every instruction-set path of the byte-classifying pass gives the same
steps, words and answers, and every prefilter kernel the same matches. The
suite runs on the CPU's best path; here the tests that pin those paths down
(the reference comparisons, the examples, the block-edge pieces and the fuzz
regressions) run again in a child process for each lower path, with
COTSIEVE_SIMD capping it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cotsieve

TESTS = Path(__file__).resolve().parent
LEVELS = ["avx512", "avx2", "none"]
PINNING_TESTS = ["test_analysis_reference.py", "test_analysis_examples.py", "test_fuzz_regressions.py"]
# Under the AVX2 cap the prefilter runs its AVX2 kernel, which these compare
# with the DFA and the pure-Python reference (the prefilter needs a vector path).
PREFILTER_TESTS = ["test_scanner_engines.py", "test_scanner_reference.py"]


def level_under(cap: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cotsieve; print(cotsieve.simd_level())"],
                          env={**os.environ, "COTSIEVE_SIMD": cap}, capture_output=True, text=True)


def skip_unless_the_cpu_has(cap: str) -> None:
    if LEVELS.index(cotsieve.simd_level()) > LEVELS.index(cap):
        pytest.skip(f"this CPU lacks {cap}")


def test_the_cap_lowers_the_level_and_never_raises_it():
    best = cotsieve.simd_level()
    for cap in LEVELS:
        got = level_under(cap).stdout.strip()
        assert got == LEVELS[max(LEVELS.index(best), LEVELS.index(cap))]


def test_an_unknown_cap_fails_the_import_with_the_allowed_values():
    result = level_under("sse9")
    assert result.returncode != 0
    assert "COTSIEVE_SIMD must be avx512, avx2 or none, not 'sse9'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("cap", ["avx2", "none"])
def test_lower_paths_pass_the_tests_that_pin_the_pass_down(cap):
    skip_unless_the_cpu_has(cap)
    tests = PINNING_TESTS + (PREFILTER_TESTS if cap == "avx2" and cotsieve.simd_level() == "avx512" else [])
    env = {**os.environ, "COTSIEVE_SIMD": cap}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                             *[str(TESTS / name) for name in tests]],
                            env=env, capture_output=True, text=True, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


ENGINE_UNDER_CAP = """
import cotsieve
small = cotsieve.PatternSet([("wait", "backtrack")])
try:
    cotsieve.PatternSet([("wait", "backtrack")], engine="prefilter")
    forced = "built"
except ValueError as err:
    forced = str(err)
print(small.engine, "|", forced)
"""


@pytest.mark.parametrize("cap", ["avx2", "none"])
def test_the_prefilter_needs_a_vector_path_and_says_so(cap):
    skip_unless_the_cpu_has(cap)
    result = subprocess.run([sys.executable, "-c", ENGINE_UNDER_CAP], env={**os.environ, "COTSIEVE_SIMD": cap},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    engine, forced = (part.strip() for part in result.stdout.split("|"))
    if cap == "avx2":
        assert (engine, forced) == ("prefilter", "built")
    else:
        assert engine == "dfa"
        assert "needs a CPU with AVX2 or AVX-512 VBMI" in forced and "COTSIEVE_SIMD" in forced
