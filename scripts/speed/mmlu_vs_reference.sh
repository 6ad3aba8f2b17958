#!/usr/bin/env bash
# All of MMLU test (14,042 items, 57 subjects, 5-shot from dev) against one
# instant fake model, run by bench, EvalScope 1.14.1 and lm-eval 0.4.13 in
# turn (issue 13's speed figure). Not a test: it prints wall times.
#
# Each tool reads the real data locally: bench through the hub protocol from
# the fake hub (its cache warm after the first round), EvalScope and lm-eval
# from the hub-layout folder with `datasets` (its arrow cache warm after the
# first round). All three ask the same fake OpenAI server (chat completions)
# at concurrency 64 and take its answer as is.
#
# Usage: scripts/speed/mmlu_vs_reference.sh [ROUNDS]     (default 2)
# Environment:
#   SPEED_HUB   hub-layout folder with datasets/cais/mmlu; default ../shared/datasets/hub
#   SPEED_VENV  venv with evalscope==1.14.1 and lm-eval[api]==0.4.13 (the
#               conformance venv); default ~/.cache/bench-conformance/venv
#   SPEED_OUT   output folder; default target/speed-mmlu
#   TOOLS       which to run; default "bench evalscope lm-eval"
set -euo pipefail

ROUNDS=${1:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HUB=${SPEED_HUB:-$ROOT/../shared/datasets/hub}
VENV=${SPEED_VENV:-$HOME/.cache/bench-conformance/venv}
OUT=${SPEED_OUT:-$ROOT/target/speed-mmlu}
TOOLS=${TOOLS:-bench evalscope lm-eval}
MMLU="$HUB/datasets/cais/mmlu"
[ -d "$MMLU" ] || { echo "mmlu_vs_reference.sh: $MMLU not found; set SPEED_HUB" >&2; exit 2; }
[ -x "$VENV/bin/lm_eval" ] || { echo "mmlu_vs_reference.sh: no lm_eval in $VENV (scripts/conformance/run.sh makes it)" >&2; exit 2; }

(cd "$ROOT" && cargo build --quiet --release --bin bench --example fake_servers)
rm -rf "$OUT"; mkdir -p "$OUT"
"$ROOT/target/release/examples/fake_servers" "$HUB" > "$OUT/fake_servers.log" 2>&1 &
SERVERS=$!
trap 'kill $SERVERS 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^export BENCH_API_URL=' "$OUT/fake_servers.log" 2>/dev/null && break
    sleep 0.1
done
eval "$(grep '^export ' "$OUT/fake_servers.log")"
API="$BENCH_API_URL"
unset BENCH_API_URL

# lm-eval: its own generative MMLU task files, included unchanged; only the
# data source is local.
SITE=$("$VENV/bin/python" -c "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))")
TASKS="$OUT/lm_eval_tasks"; mkdir -p "$TASKS"
names=()
for y in "$SITE"/tasks/mmlu/generative/mmlu_*.yaml; do
    s=$(basename "$y" .yaml); s=${s#mmlu_}
    printf 'include: %s\ntask: mmlu_%s_local\ndataset_path: %s\n' "$y" "$s" "$MMLU" > "$TASKS/mmlu_${s}_local.yaml"
    names+=("mmlu_${s}_local")
done
LM_TASKS=$(IFS=,; echo "${names[*]}")

py_env=(env HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME="$OUT/hf-home" OPENAI_API_KEY=none TOKENIZERS_PARALLELISM=false)

timed() { # name round cmd...
    local name=$1 round=$2; shift 2
    local t0 t1
    t0=$(date +%s.%N)
    if "$@" > "$OUT/$name-$round.log" 2>&1; then
        t1=$(date +%s.%N)
        printf '%-10s round %s: %7.1f s\n' "$name" "$round" "$(echo "$t1 - $t0" | bc)" | tee -a "$OUT/summary.txt"
    else
        echo "$name round $round failed (exit $?; see $OUT/$name-$round.log)" | tee -a "$OUT/summary.txt"
    fi
}

for round in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        case $tool in
        bench)
            timed bench "$round" "$ROOT/target/release/bench" eval --model fake-model --api-url "$API" \
                --datasets mmlu --concurrency 64 --output "$OUT/bench-run-$round" ;;
        evalscope)
            timed evalscope "$round" "${py_env[@]}" "$VENV/bin/python" -c "
from evalscope import TaskConfig, run_task
run_task(TaskConfig(model='fake-model', api_url='$API', api_key='none', eval_type='openai_api',
    datasets=['mmlu'], dataset_args={'mmlu': {'dataset_id': '$MMLU'}},
    eval_batch_size=64, work_dir='$OUT/evalscope-$round', no_timestamp=True))" ;;
        lm-eval)
            timed lm-eval "$round" "${py_env[@]}" "$VENV/bin/lm_eval" --model local-chat-completions \
                --model_args "model=fake-model,base_url=$API/chat/completions,num_concurrent=64,max_retries=1" \
                --tasks "$LM_TASKS" --include_path "$TASKS" --apply_chat_template --fewshot_as_multiturn \
                --output_path "$OUT/lm-eval-$round" ;;
        *) echo "unknown tool $tool" >&2; exit 2 ;;
        esac
    done
done
echo "summary: $OUT/summary.txt"
