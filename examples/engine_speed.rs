//! Decode speed of the in-process engine at batch 1, side by side with
//! llama.cpp's `llama-server` on the same GGUF file (not a test: figures go
//! in notes; `benches/engine_speed.sh` starts the server and runs this).
//!
//! For one prompt it measures, for ours and for llama-server: model load
//! time (ours), prompt processing (prefill) time, and decode tokens/s over
//! `N` greedy tokens, and checks that both produced the same tokens. For ours
//! it also measures the batched engine: aggregate decode tokens/s of 8
//! sequences decoded together (one forward call per step for all 8), and the
//! prefill time of a 512-token prompt.
//!
//! Run: `cargo run --release --example engine_speed -- FILE.gguf [LLAMA_SERVER_URL] [N]`

use std::path::PathBuf;
use std::time::Instant;

use bench::engine::BatchModel;
use bench::engine::generate::greedy_step;
use bench::engine::gguf::GgufModel;

const PROMPT: &str =
    "Once upon a time, in a land far away, there lived a model server that answered every request.";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file =
        PathBuf::from(args.next().ok_or_else(|| {
            anyhow::anyhow!("usage: engine_speed FILE.gguf [LLAMA_SERVER_URL] [N]")
        })?);
    let url = args.next().filter(|u| !u.is_empty());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);

    let t = Instant::now();
    let mut model = GgufModel::load(&file)?;
    let load = t.elapsed().as_secs_f64();
    let prompt = model.encode(PROMPT)?;
    println!(
        "file {} ({}), {} threads, prompt {} tokens, {n} new tokens",
        file.display(),
        model.meta.tensor_types,
        model.threads(),
        prompt.len()
    );

    // Prefill and decode timed apart (generate_greedy would mix them).
    let mut best_decode = f64::MAX;
    let mut best_prefill = f64::MAX;
    let mut ours = Vec::new();
    for _ in 0..3 {
        model.clear_kv_cache();
        let t = Instant::now();
        let mut logits = model.forward(&prompt, 0)?;
        best_prefill = best_prefill.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut tokens = Vec::with_capacity(n);
        for i in 0..n {
            let tok = greedy_step(&logits).expect("logits").token;
            tokens.push(tok);
            if i + 1 < n {
                logits = model.forward(&[tok], prompt.len() + i)?;
            }
        }
        best_decode = best_decode.min(t.elapsed().as_secs_f64());
        ours = tokens;
    }
    let ours_tps = (n - 1) as f64 / best_decode;
    println!(
        "ours:         load {load:.3} s, prefill {:.1} ms, decode {ours_tps:.1} tokens/s (best of 3)",
        best_prefill * 1e3
    );

    // Batch 8: eight sequences (the prompt with a different first token
    // each) prefilled, then decoded together, one forward call per step.
    const B: usize = 8;
    let mut best_batch = f64::MAX;
    for _ in 0..2 {
        let mut last = Vec::with_capacity(B);
        for s in 0..B {
            model.model.free(s);
            let mut p = prompt.clone();
            p[0] = (p[0] + s as u32) % model.meta.vocab_size as u32;
            let logits = model.model.forward(&[(s, &p)])?.remove(0);
            last.push(greedy_step(&logits).expect("logits").token);
        }
        let t = Instant::now();
        for _ in 1..n {
            let toks: Vec<[u32; 1]> = last.iter().map(|&t| [t]).collect();
            let batch: Vec<(usize, &[u32])> =
                toks.iter().enumerate().map(|(s, t)| (s, &t[..])).collect();
            let out = model.model.forward(&batch)?;
            last = out
                .iter()
                .map(|l| greedy_step(l).expect("logits").token)
                .collect();
        }
        best_batch = best_batch.min(t.elapsed().as_secs_f64());
    }
    for s in 0..B {
        model.model.free(s);
    }
    let batch_tps = (B * (n - 1)) as f64 / best_batch;
    println!(
        "ours batch {B}: aggregate decode {batch_tps:.1} tokens/s ({:.1} per sequence), {:.2}x batch 1 (best of 2)",
        batch_tps / B as f64,
        batch_tps / ours_tps
    );

    // Prefill of a 512-token prompt (the prompt text repeated).
    let mut long = Vec::new();
    while long.len() < 512 {
        long.extend_from_slice(&prompt);
    }
    long.truncate(512.min(model.meta.max_positions));
    let mut best_long = f64::MAX;
    for _ in 0..2 {
        model.clear_kv_cache();
        let t = Instant::now();
        model.forward(&long, 0)?;
        best_long = best_long.min(t.elapsed().as_secs_f64());
    }
    model.clear_kv_cache();
    println!(
        "ours prefill {} tokens: {:.1} ms ({:.1} tokens/s, best of 2)",
        long.len(),
        best_long * 1e3,
        long.len() as f64 / best_long
    );

    if let Some(url) = url {
        let base = url
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string();
        let client = reqwest::Client::new();
        let mut best: Option<(f64, f64)> = None;
        let mut theirs = Vec::new();
        for _ in 0..3 {
            let r: serde_json::Value = client
                .post(format!("{base}/completion"))
                .json(&serde_json::json!({
                    "prompt": prompt, "n_predict": n, "temperature": 0.0,
                    "return_tokens": true, "cache_prompt": false,
                }))
                .send()
                .await?
                .json()
                .await?;
            let tps = r["timings"]["predicted_per_second"].as_f64().unwrap_or(0.0);
            let pms = r["timings"]["prompt_ms"].as_f64().unwrap_or(0.0);
            if best.is_none_or(|(b, _)| tps > b) {
                best = Some((tps, pms));
            }
            theirs = r["tokens"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_u64())
                        .map(|t| t as u32)
                        .collect()
                })
                .unwrap_or_default();
        }
        // Their prefill of the same 512 tokens (one generated token, no
        // prompt cache), for the time-to-first-token comparison.
        let mut best_long_theirs = f64::MAX;
        for _ in 0..2 {
            let r: serde_json::Value = client
                .post(format!("{base}/completion"))
                .json(&serde_json::json!({
                    "prompt": long, "n_predict": 1, "temperature": 0.0, "cache_prompt": false,
                }))
                .send()
                .await?
                .json()
                .await?;
            if let Some(ms) = r["timings"]["prompt_ms"].as_f64() {
                best_long_theirs = best_long_theirs.min(ms);
            }
        }
        println!(
            "llama-server prefill {} tokens: {best_long_theirs:.1} ms (best of 2, its own timings); ours/theirs time {:.2}",
            long.len(),
            best_long * 1e3 / best_long_theirs
        );
        let (tps, pms) = best.unwrap_or_default();
        println!(
            "llama-server: prefill {pms:.1} ms, decode {tps:.1} tokens/s (best of 3, its own timings)"
        );
        println!(
            "ratio ours/llama-server decode: {:.2}; same tokens: {}",
            ours_tps / tps,
            ours == theirs
        );
    }
    Ok(())
}
