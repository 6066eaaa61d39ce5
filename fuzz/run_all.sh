#!/usr/bin/env bash
# Runs the fuzz harnesses with the active Python, which needs atheris and an
# installed cotsieve.
#
#   fuzz/run_all.sh [SECONDS] [CORPUS_DIR]
#       Fuzzes each harness for SECONDS (default 60). The checked-in seeds
#       under fuzz/corpus/ are only read; the inputs found go to
#       CORPUS_DIR/<harness> (kept) or to a scratch folder.
#   fuzz/run_all.sh replay CORPUS_DIR
#       Runs each harness once over CORPUS_DIR/<harness> and the seeds. Meant
#       for the sanitizer build, where gcc's ASan runtime takes over the
#       coverage hooks and libFuzzer cannot grow a corpus of its own.
#
# A failing input is saved under $FUZZ_ARTIFACTS (a kept temporary folder by
# default) and named in the output. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

harnesses=(compile scan analyze jsonl)

if ! python -c "import atheris, cotsieve" 2>/dev/null; then
  echo "fuzz: needs atheris and cotsieve in the active Python (pip install atheris)" >&2
  exit 2
fi

if [[ "${1:-}" == "replay" ]]; then
  corpus="${2:?usage: fuzz/run_all.sh replay CORPUS_DIR}"
  limits=(-runs=0)
else
  seconds="${1:-60}"
  scratch=""
  if [[ -z "${2:-}" ]]; then
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
  fi
  corpus="${2:-$scratch}"
  # -max_len leaves room for sets of several patterns plus several texts;
  # -len_control=0 allows that length at once, since the harnesses decode
  # structure from the input and short inputs decode to near-empty cases.
  limits=(-max_total_time="$seconds" -max_len=4096 -len_control=0)
fi
artifacts="${FUZZ_ARTIFACTS:-$(mktemp -d)}"
mkdir -p "$artifacts"

for name in "${harnesses[@]}"; do
  mkdir -p "$corpus/$name"
  echo "fuzz: $name ${limits[*]}"
  # libFuzzer adds new inputs to the first folder only, so the seeds stay
  # as checked in; -timeout flags a single input that hangs.
  if ! python "fuzz/fuzz_$name.py" "$corpus/$name" "fuzz/corpus/$name" "${limits[@]}" \
      -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$name-"; then
    echo "fuzz: $name FAILED; reproduce with: python fuzz/fuzz_$name.py $artifacts/$name-*" >&2
    exit 1
  fi
done
echo "fuzz: all harnesses passed"
