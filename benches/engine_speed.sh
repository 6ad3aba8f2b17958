#!/usr/bin/env bash
# Decode tokens/s at batch 1 of the in-process engine and of llama.cpp's
# llama-server on the same GGUF file, side by side on this machine (both with
# every core). Not a test: run by hand on a quiet machine.
#
#   benches/engine_speed.sh [FILE.gguf] [N]
#   default FILE: $REALSERVER_VENV/tiny.gguf (REALSERVER_VENV defaults to
#   ~/.cache/bench/realserver, made by shared/realserver/setup.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${REALSERVER_VENV:-$HOME/.cache/bench/realserver}"
FILE="${1:-$VENV/tiny.gguf}"
N="${2:-128}"
THREADS="$(nproc)"
cargo build --release --quiet --example engine_speed
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$(mktemp)"
"$VENV/bin/llama-server" -m "$FILE" --host 127.0.0.1 --port "$PORT" -c 4096 -np 1 \
    -t "$THREADS" --no-webui >"$LOG" 2>&1 </dev/null &
PID=$!
trap 'kill "$PID" 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
"$ROOT/target/release/examples/engine_speed" "$FILE" "http://127.0.0.1:$PORT" "$N"
