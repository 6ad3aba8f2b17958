#!/usr/bin/env bash
# Decode tokens/s at batch 1 of the in-process engine and of llama.cpp's
# llama-server on the same GGUF file, side by side on this machine (both with
# every core). Not a test: run by hand on a quiet machine.
#
#   benches/engine_speed.sh [FILE.gguf] [N]
#   default FILE: $REALSERVER_VENV/tiny.gguf (REALSERVER_VENV defaults to
#   ~/.cache/bench/realserver, made by shared/realserver/setup.sh)
#
# Measured 2026-12-02 on the 2-core dev box while other builds ran (noisy):
#   tiny.gguf (F32, 128 wide, 2 layers), 128 tokens: ours 1465 tok/s,
#     llama-server 7143 tok/s (0.21x: per-op overhead dominates a tiny model)
#   Qwen2.5-0.5B-shaped random F16 file (make_tiny_gguf.py --f16 --vocab-size
#     151936 --n-layer 24 --n-embd 896 --n-head 14 --n-head-kv 2 --n-ff 4864),
#     64 tokens: ours 4.1 tok/s, llama-server 2.2 tok/s (1.9x; candle turns
#     F16 matrices into F32 at load), load 4.9 s, same tokens in both
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
