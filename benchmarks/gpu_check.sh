#!/usr/bin/env bash
# The one command to run on a GPU machine that reaches no package index:
#
#   OUT=results bash benchmarks/gpu_check.sh
#
# Liger-Kernel and cut-cross-entropy come from wheels saved beforehand, on a
# machine that reaches PyPI, into ./wheelhouse (or $WHEELHOUSE); both are
# pure-Python wheels that use the machine's own torch and triton:
#
#   python -m pip download --no-deps --only-binary=:all: -d wheelhouse \
#       liger-kernel==0.8.5 cut-cross-entropy==25.1.1
#
# Without them their rows say "not installed" and everything else runs.
# Arguments are passed to benchmarks/gpu_check.py (e.g. --budget-s 300).
set -euo pipefail
cd "$(dirname "$0")/.."
wheelhouse="${WHEELHOUSE:-wheelhouse}"
out="${OUT:-gpu-check-results}"

if compgen -G "$wheelhouse/*.whl" >/dev/null; then
  peers="$(mktemp -d)"
  if python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
      --target "$peers" "$wheelhouse"/*.whl; then
    export PYTHONPATH="$peers${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_check: the wheels in $wheelhouse did not install; the peers' rows will say so"
  fi
else
  echo "gpu_check: no wheels in $wheelhouse; the Liger and cut-cross-entropy rows will say not installed"
fi
PYTHONUNBUFFERED=1 exec python3 benchmarks/gpu_check.py --out "$out" "$@"
