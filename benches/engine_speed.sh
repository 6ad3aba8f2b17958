#!/usr/bin/env bash
# Decode tokens/s at batch 1 of the in-process engine and of llama.cpp's
# llama-server on the same GGUF file, side by side on this machine (both with
# every core), plus the engine's aggregate decode tokens/s at batch 8 and its
# prefill time for a 512-token prompt. Not a test: run by hand on a quiet
# machine.
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
#
# Batched engine (our own transformer, src/engine/model.rs), 2026-12-02, same
# box, quiet apart from one llama-server idling, same Qwen2.5-0.5B-shaped F16
# file (written to /work/notes/models/qwen05-shape-f16.gguf with --ctx 4096),
# `target/release/examples/engine_speed FILE "" 32`:
#   batch 1 decode 4.7 tok/s (prefill of the 28-token prompt 374 ms);
#   batch 8 aggregate decode 23.8 tok/s (3.0 per sequence), 5.1x batch 1;
#   prefill of a 512-token prompt 4.84 s (106 tok/s); load 2.8 s.
# This script on that file, N=32, a second run: ours 4.3 tok/s, batch 8 21.8
# tok/s (5.0x), llama-server 13.4 tok/s at batch 1 (0.32x: it reads the F16
# weights as F16, we expand them to f32, twice the bytes per step; candle's
# own F16 kernel, which would keep them F16, is far slower still), same tokens.
# The same weights as Q8_0 (matrices requantized with gguf-py's
# gguf.quants.quantize): batch 1 16.4 tok/s, batch 8 23.0 tok/s (1.4x: candle's
# quantized kernels turn compute-bound with several rows, and 896-wide rows
# miss its repacked AVX512-VNNI path, which needs multiples of 256), 512-token
# prefill 6.4 s (15.3 s before long prefills expanded the matrices to f32)
# Own F16 kernel (src/engine/linear.rs), 2026-12-03, same file, N=32, two
# runs while other builds ran: load 1.7/1.9 s, batch 1 decode 12.9/13.9 tok/s
# (0.78x/1.23x llama-server's 16.5/11.3 in the same run, same tokens), batch
# 8 45.0 tok/s (3.5x/3.2x), 512-token prefill 6.3/9.3 s (llama-server 6.3 s:
# 1.48x in the second run).
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
