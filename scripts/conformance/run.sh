#!/usr/bin/env bash
# Conformance of bench's compatibility modes with the real tools.
#
# Installs EvalScope 1.14.1 and lm-evaluation-harness 0.4.13 (with its API
# extra) in a venv, builds bench, serves the real datasets from bench's fake
# hub, and runs EvalScope, lm-eval and bench on the first LIMIT items of GSM8K
# and ARC-Challenge against one fake model whose replies vary in style (see
# fake_model.py). It then diffs the decoded requests and the per-item
# verdicts (conformance.py). Exit 0: everything agrees; 1: a difference
# (listed in OUT/summary.txt); 2: a tool failed (see OUT/*.log).
#
# Usage: scripts/conformance/run.sh [LIMIT]      (default 200)
# Environment:
#   CONFORMANCE_HUB   datasets in the hub layout (root holding datasets/openai/gsm8k
#                     and datasets/allenai/ai2_arc); default /work/shared/datasets/hub
#   CONFORMANCE_VENV  venv to create or reuse; default ~/.cache/bench-conformance/venv
#   CONFORMANCE_OUT   output directory; default target/conformance
#   PYTHON            python >= 3.10 to create the venv with; default python3
# Needs: the package index reachable the first time (pip), cargo, nothing else;
# the tools themselves run offline (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1).
set -euo pipefail

LIMIT=${1:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HUB=${CONFORMANCE_HUB:-/work/shared/datasets/hub}
VENV=${CONFORMANCE_VENV:-$HOME/.cache/bench-conformance/venv}
OUT=${CONFORMANCE_OUT:-$ROOT/target/conformance}
PYTHON=${PYTHON:-python3}

for repo in openai/gsm8k allenai/ai2_arc; do
    if [ ! -d "$HUB/datasets/$repo" ]; then
        echo "run.sh: $HUB/datasets/$repo not found; set CONFORMANCE_HUB to a folder in the hub layout" >&2
        exit 2
    fi
done

started=$(date +%s)
if [ ! -x "$VENV/bin/lm_eval" ] || ! "$VENV/bin/python" -c "import evalscope" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "evalscope==1.14.1" "lm-eval[api]==0.4.13"
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
want = {"evalscope": "1.14.1", "lm_eval": "0.4.13", "math-verify": "0.9.0"}
for name, version in want.items():
    have = m.version(name)
    if have != version:
        raise SystemExit(f"run.sh: {name} {have} installed, {version} expected")
PY

(cd "$ROOT" && cargo build --quiet --bin bench --example fake_servers)
mkdir -p "$OUT"

# bench reads its pinned datasets through the hub protocol: serve $HUB.
"$ROOT/target/debug/examples/fake_servers" "$HUB" > "$OUT/fake_servers.log" 2>&1 &
SERVERS=$!
trap 'kill $SERVERS 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    HUB_URL=$(sed -n 's/^export HF_ENDPOINT=\(http[^ ]*\)$/\1/p' "$OUT/fake_servers.log")
    [ -n "$HUB_URL" ] && break
    sleep 0.1
done
if [ -z "${HUB_URL:-}" ]; then
    echo "run.sh: the fake hub did not start (see $OUT/fake_servers.log)" >&2
    exit 2
fi

status=0
"$VENV/bin/python" "$ROOT/scripts/conformance/conformance.py" --venv "$VENV" \
    --bench "$ROOT/target/debug/bench" --hub "$HUB" --hub-url "$HUB_URL" \
    --limit "$LIMIT" --out "$OUT" || status=$?
echo "run.sh: finished in $(( $(date +%s) - started ))s with status $status (details: $OUT/summary.txt)" >&2
exit $status
