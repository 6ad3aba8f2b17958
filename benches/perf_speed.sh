#!/usr/bin/env bash
# Speed and fidelity of `bench perf` against `bench mock-server` on this
# machine: the mock pinned to CPU 0, the client to CPU 1 (as the issue's
# peer figures were measured). Prints the figures quoted in the notes.
# Not a test: run by hand on a quiet machine, compare side by side.
#
#   benches/perf_speed.sh            # all scenarios
#   SCENARIOS="throughput" benches/perf_speed.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet
BENCH="$ROOT/target/release/bench"
TMP="$(mktemp -d)"
MOCK_PID=""
cleanup() { [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
for i in $(seq 1 64); do echo "Write a short note about item $i."; done > "$TMP/prompts.txt"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_mock() { # args: mock-server flags
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
    PORT="$(port)"
    taskset -c 0 "$BENCH" mock-server --port "$PORT" "$@" >"$TMP/mock.log" 2>&1 &
    MOCK_PID=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 0.1; done
    URL="http://127.0.0.1:$PORT/v1/chat/completions"
}
perf() { # args: output dir, then perf flags; prints peak RSS KB on fd 3
    local out="$1"; shift
    /usr/bin/time -f "%M" -o "$TMP/rss" taskset -c 1 "$BENCH" perf --url "$URL" --model mock \
        --dataset line_by_line --dataset-path "$TMP/prompts.txt" --no-progress --output "$out" "$@" >/dev/null 2>"$TMP/perf.err" \
        || { cat "$TMP/perf.err" >&2; return 1; }
}
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1]))" "$2"; }

SCENARIOS="${SCENARIOS:-throughput fidelity rate startup}"

if [[ " $SCENARIOS " == *" throughput "* ]]; then
    echo "== zero-delay mock, 128 streamed tokens per request"
    start_mock --output-tokens 128
    printf "%-6s %10s %12s %10s %10s\n" conc "req/s" "tokens/s" "client CPU" "peak RSS"
    for c in 1 64 256 1024; do
        n=$(( c * 40 )); [ $n -lt 8000 ] && n=8000; [ $n -gt 40000 ] && n=40000
        perf "$TMP/t$c" --parallel "$c" --number "$n" --max-tokens 128
        s="$TMP/t$c/summary.json"
        printf "%-6s %10.0f %12.0f %9.2f %8s KB\n" "$c" "$(field "$s" 'd["levels"][0]["stats"]["request_throughput"]')" \
            "$(field "$s" 'd["levels"][0]["stats"]["output_throughput"]')" \
            "$(field "$s" 'd["levels"][0]["client"]["cpu_cores_used"]')" "$(cat "$TMP/rss")"
    done
    # Memory per in-flight stream: the same 2048 requests at c=1 and c=1024.
    perf "$TMP/m1" --parallel 1 --number 2048 --max-tokens 128; r1=$(cat "$TMP/rss")
    perf "$TMP/m1024" --parallel 1024 --number 2048 --max-tokens 128; r2=$(cat "$TMP/rss")
    echo "peak RSS c=1: $r1 KB, c=1024: $r2 KB => $(( (r2 - r1) * 1024 / 1023 )) bytes per in-flight stream"
fi

if [[ " $SCENARIOS " == *" fidelity "* ]]; then
    echo "== fidelity: mock TTFT 50 ms, 10 ms between tokens, 64 tokens, 512 streams"
    start_mock --ttft-ms 50 --itl-ms 10 --output-tokens 64
    curl -sf -X POST "http://127.0.0.1:$PORT/stats/reset" >/dev/null
    perf "$TMP/f" --parallel 512 --number 2048 --max-tokens 64
    curl -sf "http://127.0.0.1:$PORT/stats" >"$TMP/stats.json"
    s="$TMP/f/summary.json"; m="$TMP/stats.json"
    python3 - "$s" "$m" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["levels"][0]["stats"]; m = json.load(open(sys.argv[2]))
print(f"client mean TTFT {s['ttft']['mean']:.3f} ms vs mock {m['mean_ttft_ms']:.3f} ms: {s['ttft']['mean']-m['mean_ttft_ms']:+.3f} ms")
print(f"client p99 TTFT  {s['ttft']['p99']:.3f} ms vs mock {m['p99_ttft_ms']:.3f} ms: {s['ttft']['p99']-m['p99_ttft_ms']:+.3f} ms")
print(f"client mean ITL  {s['itl']['mean']:.4f} ms vs mock {m['mean_itl_ms']:.4f} ms: {s['itl']['mean']-m['mean_itl_ms']:+.4f} ms")
print(f"client mean TPOT {s['tpot']['mean']:.4f} ms vs mock {m['mean_itl_ms']:.4f} ms: {s['tpot']['mean']-m['mean_itl_ms']:+.4f} ms")
print(f"requests {s['succeeded']}/{s['total']}, mock completed {m['completed']}")
PY
fi

if [[ " $SCENARIOS " == *" rate "* ]]; then
    echo "== open loop: --rate 500 Poisson for 20 s"
    start_mock --output-tokens 16
    perf "$TMP/r" --rate 500 --duration 20s --max-tokens 16
    s="$TMP/r/summary.json"
    echo "achieved $(field "$s" 'round(d["levels"][0]["client"]["achieved_rate"],2)') req/s (target 500), dispatch lag p99 $(field "$s" 'round(d["levels"][0]["client"]["dispatch_lag_p99_ms"],4)') ms, max $(field "$s" 'round(d["levels"][0]["client"]["dispatch_lag_max_ms"],4)') ms, requests $(field "$s" 'd["levels"][0]["stats"]["total"]')"
fi

if [[ " $SCENARIOS " == *" startup "* ]]; then
    echo "== one-request run, start to exit (10 runs)"
    start_mock --output-tokens 16
    for i in $(seq 10); do
        t0=$(date +%s%N)
        taskset -c 1 "$BENCH" perf --url "$URL" --model mock --dataset line_by_line --dataset-path "$TMP/prompts.txt" \
            --parallel 1 --number 1 --max-tokens 16 --no-progress --output "$TMP/s$i" >/dev/null 2>&1
        echo $(( ($(date +%s%N) - t0) / 1000 ))
    done | sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms (min %.1f, max %.1f)\n", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
fi
