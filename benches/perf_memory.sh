#!/usr/bin/env bash
# Peak memory of `bench perf` against the number of requests: 10k, 100k and
# 1M requests at c=64 on `bench mock-server` (16 streamed tokens each, so
# the 1M run takes a minute, not an hour), at each --record level. Memory
# must stay flat: records are folded into bounded histograms and written as
# they finish. Prints peak RSS, the peak number of live records, the size
# of requests.jsonl and the run's rate. Not a test: run by hand.
#
#   benches/perf_memory.sh
#   COUNTS="10000 100000" LEVELS="requests" TOKENS=128 benches/perf_memory.sh
#   OLD_BENCH=/path/to/older/bench benches/perf_memory.sh   # adds rows for a
#       build from before --record (it kept every record until the end)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet
BENCH="$ROOT/target/release/bench"
COUNTS="${COUNTS:-10000 100000 1000000}"
LEVELS="${LEVELS:-events requests none}"
TOKENS="${TOKENS:-16}"
CONC="${CONC:-64}"
TMP="$(mktemp -d)"
MOCK_PID=""
cleanup() { [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
taskset -c 0 "$BENCH" mock-server --port "$PORT" --output-tokens "$TOKENS" >"$TMP/mock.log" 2>&1 &
MOCK_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/v1/chat/completions"
for i in $(seq 1 64); do echo "Write a short note about item $i."; done >"$TMP/prompts.txt"
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1]))" "$2"; }

printf "%-9s %9s %12s %12s %16s %10s\n" record requests "peak RSS" "live peak" "requests.jsonl" "req/s"
if [ -n "${OLD_BENCH:-}" ]; then
    for n in $COUNTS; do
        out="$TMP/old-$n"
        /usr/bin/time -f "%M" -o "$TMP/rss" taskset -c 1 "$OLD_BENCH" perf --url "$URL" --model mock \
            --dataset line_by_line --dataset-path "$TMP/prompts.txt" --max-tokens "$TOKENS" \
            --parallel "$CONC" --number "$n" --no-progress --output "$out" \
            >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
        printf "%-9s %9s %9s KB %12s %16s %10.0f\n" "old" "$n" "$(cat "$TMP/rss")" "all" \
            "$(du -h "$out/requests.jsonl" | cut -f1)" \
            "$(field "$out/summary.json" 'd["levels"][0]["stats"]["request_throughput"]')"
        rm -rf "$out"
    done
fi
for level in $LEVELS; do
    for n in $COUNTS; do
        out="$TMP/$level-$n"
        /usr/bin/time -f "%M" -o "$TMP/rss" taskset -c 1 "$BENCH" perf --url "$URL" --model mock \
            --dataset line_by_line --dataset-path "$TMP/prompts.txt" --max-tokens "$TOKENS" \
            --parallel "$CONC" --number "$n" --record "$level" --no-progress --output "$out" \
            >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
        s="$out/summary.json"
        size=$([ -f "$out/requests.jsonl" ] && du -h "$out/requests.jsonl" | cut -f1 || echo "-")
        printf "%-9s %9s %9s KB %12s %16s %10.0f\n" "$level" "$n" "$(cat "$TMP/rss")" \
            "$(field "$s" 'd["levels"][0]["client"]["peak_live_records"]')" "$size" \
            "$(field "$s" 'd["levels"][0]["stats"]["request_throughput"]')"
        rm -rf "$out"
    done
done
