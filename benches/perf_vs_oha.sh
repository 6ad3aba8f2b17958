#!/usr/bin/env bash
# `bench perf` side by side with oha in EvalScope's perf workload, on one
# `bench mock-server` (pinned to CPU 0; each client in turn pinned to CPU 1):
# random 32-token prompts from a tokenizer, max_tokens = min_tokens = 128,
# streamed chat with the usage chunk, c=64, --duration 10s. oha sends one
# fixed body of the same shape (it cannot vary prompts) and reads each
# response whole without looking at the events; bench parses and times
# every event. Then TTFT fidelity at 512 streams against the mock's own
# clock. Not a test: run by hand on a quiet machine.
#
#   benches/perf_vs_oha.sh                    # needs `oha` on PATH (cargo install oha)
#   DURATION=10 CONC=64 ROUNDS=3 RECORD=requests benches/perf_vs_oha.sh
#   OLD_BENCH=/path/to/older/bench benches/perf_vs_oha.sh   # adds a before column
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet
BENCH="$ROOT/target/release/bench"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"
[ -x "$OHA" ] || { echo "oha not found: cargo install oha" >&2; exit 1; }
DURATION="${DURATION:-10}"
CONC="${CONC:-64}"
ROUNDS="${ROUNDS:-3}"
RECORD="${RECORD:-requests}"
TOKENIZER="$ROOT/fixtures/tokenizer/tokenizer.json"
TMP="$(mktemp -d)"
MOCK_PID=""
cleanup() { [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_mock() {
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
    PORT="$(port)"
    taskset -c 0 "$BENCH" mock-server --port "$PORT" "$@" >"$TMP/mock.log" 2>&1 &
    MOCK_PID=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 0.1; done
    URL="http://127.0.0.1:$PORT/v1/chat/completions"
}
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1]))" "$2"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_mock --output-tokens 128
# oha's body: the shape bench sends, with a prompt of about 32 tokens.
PROMPT="$(python3 -c "
import json,random
v=[w for w in open('$ROOT/fixtures/tokenizer/README.md').read().split() if w.isalpha()]
random.seed(1); print(' '.join(random.choice(v) for _ in range(24)))")"
BODY="$(python3 -c "import json,sys; print(json.dumps({'model':'mock','messages':[{'role':'user','content':sys.argv[1]}],'max_tokens':128,'min_tokens':128,'stream':True,'stream_options':{'include_usage':True}}))" "$PROMPT")"

echo "== EvalScope workload: c=$CONC, ${DURATION}s, 128 streamed tokens + usage chunk, $ROUNDS rounds (median)"
for r in $(seq "$ROUNDS"); do
    taskset -c 1 "$OHA" -z "${DURATION}s" -c "$CONC" --no-tui --output-format json -m POST \
        -H 'content-type: application/json' -H 'accept: text/event-stream' -d "$BODY" "$URL" >"$TMP/oha$r.json"
    field "$TMP/oha$r.json" 'd["summary"]["requestsPerSec"]' >>"$TMP/oha.rps"
    /usr/bin/time -f "%M" -o "$TMP/rss$r" taskset -c 1 "$BENCH" perf --url "$URL" --model mock --dataset random \
        --tokenizer-path "$TOKENIZER" --min-prompt-length 32 --max-prompt-length 32 \
        --max-tokens 128 --min-tokens 128 --parallel "$CONC" --duration "${DURATION}s" \
        --record "$RECORD" --no-progress --output "$TMP/b$r" >/dev/null 2>"$TMP/perf.err" \
        || { cat "$TMP/perf.err" >&2; exit 1; }
    s="$TMP/b$r/summary.json"
    field "$s" 'd["levels"][0]["stats"]["request_throughput"]' >>"$TMP/bench.rps"
    field "$s" 'd["levels"][0]["client"]["cpu_cores_used"]' >>"$TMP/bench.cpu"
    old=""
    if [ -n "${OLD_BENCH:-}" ]; then
        # A build from before --record existed, for a before/after figure.
        taskset -c 1 "$OLD_BENCH" perf --url "$URL" --model mock --dataset random \
            --tokenizer-path "$TOKENIZER" --min-prompt-length 32 --max-prompt-length 32 \
            --max-tokens 128 --min-tokens 128 --parallel "$CONC" --duration "${DURATION}s" \
            --no-progress --output "$TMP/old$r" >/dev/null 2>"$TMP/perf.err" \
            || { cat "$TMP/perf.err" >&2; exit 1; }
        field "$TMP/old$r/summary.json" 'd["levels"][0]["stats"]["request_throughput"]' >>"$TMP/old.rps"
        old="$(printf "   old build %8.0f req/s" "$(tail -1 "$TMP/old.rps")")"
    fi
    printf "round %d: oha %8.0f req/s   bench %8.0f req/s (record %s, peak RSS %s KB)%s\n" "$r" \
        "$(tail -1 "$TMP/oha.rps")" "$(tail -1 "$TMP/bench.rps")" "$RECORD" "$(cat "$TMP/rss$r")" "$old"
done
o=$(median <"$TMP/oha.rps"); b=$(median <"$TMP/bench.rps")
printf "median: oha %.0f req/s, bench %.0f req/s: bench/oha = %.2f\n" "$o" "$b" "$(python3 -c "print($b/$o)")"
if [ -n "${OLD_BENCH:-}" ]; then
    ob=$(median <"$TMP/old.rps")
    printf "median: old build %.0f req/s: old/oha = %.2f\n" "$ob" "$(python3 -c "print($ob/$o)")"
fi

# The same without streaming: one JSON body per response, where oha's
# reading costs least (an earlier note's oha figure, 83k req/s, was of this
# kind of run).
echo "== the same, not streamed (one JSON body per response)"
NS_BODY="$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); d.pop('stream'); d.pop('stream_options'); print(json.dumps(d))" "$BODY")"
: >"$TMP/oha_ns.rps"; : >"$TMP/bench_ns.rps"
for r in $(seq "$ROUNDS"); do
    taskset -c 1 "$OHA" -z "${DURATION}s" -c "$CONC" --no-tui --output-format json -m POST \
        -H 'content-type: application/json' -d "$NS_BODY" "$URL" >"$TMP/ohans$r.json"
    field "$TMP/ohans$r.json" 'd["summary"]["requestsPerSec"]' >>"$TMP/oha_ns.rps"
    taskset -c 1 "$BENCH" perf --url "$URL" --model mock --dataset random --no-stream \
        --tokenizer-path "$TOKENIZER" --min-prompt-length 32 --max-prompt-length 32 \
        --max-tokens 128 --min-tokens 128 --parallel "$CONC" --duration "${DURATION}s" \
        --record "$RECORD" --no-progress --output "$TMP/ns$r" >/dev/null 2>"$TMP/perf.err" \
        || { cat "$TMP/perf.err" >&2; exit 1; }
    field "$TMP/ns$r/summary.json" 'd["levels"][0]["stats"]["request_throughput"]' >>"$TMP/bench_ns.rps"
    printf "round %d: oha %8.0f req/s   bench %8.0f req/s\n" "$r" "$(tail -1 "$TMP/oha_ns.rps")" "$(tail -1 "$TMP/bench_ns.rps")"
done
o=$(median <"$TMP/oha_ns.rps"); b=$(median <"$TMP/bench_ns.rps")
printf "median: oha %.0f req/s, bench %.0f req/s: bench/oha = %.2f\n" "$o" "$b" "$(python3 -c "print($b/$o)")"

echo "== TTFT fidelity: mock TTFT 50 ms, 10 ms between tokens, 64 tokens, 512 streams"
start_mock --ttft-ms 50 --itl-ms 10 --output-tokens 64
for r in $(seq "$ROUNDS"); do
    curl -sf -X POST "http://127.0.0.1:$PORT/stats/reset" >/dev/null
    taskset -c 1 "$BENCH" perf --url "$URL" --model mock --dataset random --tokenizer-path "$TOKENIZER" \
        --min-prompt-length 32 --max-prompt-length 32 --max-tokens 64 --parallel 512 --number 2048 \
        --record "$RECORD" --no-progress --output "$TMP/f$r" >/dev/null 2>"$TMP/perf.err" \
        || { cat "$TMP/perf.err" >&2; exit 1; }
    curl -sf "http://127.0.0.1:$PORT/stats" >"$TMP/stats$r.json"
    python3 - "$TMP/f$r/summary.json" "$TMP/stats$r.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["levels"][0]["stats"]; m = json.load(open(sys.argv[2]))
print(f"TTFT error: mean {s['ttft']['mean']-m['mean_ttft_ms']:+.3f} ms, p99 {s['ttft']['p99']-m['p99_ttft_ms']:+.3f} ms "
      f"(client {s['ttft']['mean']:.3f}/{s['ttft']['p99']:.3f}, mock {m['mean_ttft_ms']:.3f}/{m['p99_ttft_ms']:.3f}); "
      f"requests {s['succeeded']}/{s['total']}")
PY
done

echo "== one-request run, start to exit (median of 10)"
start_mock --output-tokens 16
for i in $(seq 10); do
    t0=$(date +%s%N)
    taskset -c 1 "$BENCH" perf --url "$URL" --model mock --dataset random --tokenizer-path "$TOKENIZER" \
        --min-prompt-length 32 --max-prompt-length 32 --parallel 1 --number 1 --max-tokens 16 \
        --no-progress --output "$TMP/s$i" >/dev/null 2>&1
    echo $(( ($(date +%s%N) - t0) / 1000 ))
done | sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms (min %.1f, max %.1f)\n", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
