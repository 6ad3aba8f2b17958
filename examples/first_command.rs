//! Times the README's first command (`bench eval --model
//! Qwen/Qwen2.5-0.5B-Instruct --datasets gsm8k arc --limit 5`, no server) on
//! this machine with a random-weight model of the real size, served by the
//! fake hub since the real hub is out of reach here. Not a test: the figures
//! go in README and the issue note.
//!
//! ```text
//! cargo build --release && cargo run --release --example first_command [-- MAX_TOKENS]
//! ```
//!
//! The model repo it serves as `Qwen/Qwen2.5-0.5B-Instruct`:
//! - `config.json`: Qwen2.5-0.5B-Instruct's shape (24 layers, 896 wide, 14
//!   query and 2 key/value heads, 4864 feed-forward, 151,936 vocabulary, tied
//!   embeddings, bf16);
//! - `model.safetensors`: every tensor of that model at its real shape, bf16,
//!   random (normal, std 0.02; norms 1), about 988 MB like the real file;
//! - `tokenizer.json`: the fixture BPE tokenizer padded to 151,643 ordinary
//!   tokens with the three chat specials at Qwen's ids (151643-151645), so
//!   every id the model can emit decodes; `tokenizer_config.json` with
//!   Qwen2.5-Instruct's chat template; `generation_config.json` with its EOS
//!   ids.
//!
//! The datasets are the real GSM8K and ARC files (`../shared/datasets/hub`,
//! or `BENCH_DATASETS_HUB`). A random model never says its end token, so
//! every answer runs to the token limit: MAX_TOKENS (default 256, about
//! what an instruct model of this size writes for a GSM8K answer) is passed
//! as `--generation-config`, and `0` runs with bench's default limit (2048,
//! the worst case). It runs the command twice: cold (empty cache: download
//! and run) and warm (`--offline`, from the cache), and prints wall times.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bench::fake::hub::{FakeHub, FakeHubOptions};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

const REPO: &str = "Qwen/Qwen2.5-0.5B-Instruct";
const HIDDEN: usize = 896;
const FF: usize = 4864;
const LAYERS: usize = 24;
const HEADS: usize = 14;
const KV_HEADS: usize = 2;
const VOCAB: usize = 151_936;
/// Qwen's first special-token id: ordinary tokens are 0..151643.
const FIRST_SPECIAL: usize = 151_643;

fn config() -> Value {
    json!({
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": FF,
        "max_position_embeddings": 32768,
        "max_window_layers": 21,
        "model_type": "qwen2",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "use_cache": true,
        "use_sliding_window": false,
        "vocab_size": VOCAB
    })
}

/// Every tensor of the model: name and shape.
fn tensors() -> Vec<(String, Vec<usize>)> {
    let kv = HIDDEN / HEADS * KV_HEADS;
    let mut t = vec![("model.embed_tokens.weight".to_string(), vec![VOCAB, HIDDEN])];
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("self_attn.q_proj.weight", vec![HIDDEN, HIDDEN]),
            ("self_attn.q_proj.bias", vec![HIDDEN]),
            ("self_attn.k_proj.weight", vec![kv, HIDDEN]),
            ("self_attn.k_proj.bias", vec![kv]),
            ("self_attn.v_proj.weight", vec![kv, HIDDEN]),
            ("self_attn.v_proj.bias", vec![kv]),
            ("self_attn.o_proj.weight", vec![HIDDEN, HIDDEN]),
            ("mlp.gate_proj.weight", vec![FF, HIDDEN]),
            ("mlp.up_proj.weight", vec![FF, HIDDEN]),
            ("mlp.down_proj.weight", vec![HIDDEN, FF]),
            ("input_layernorm.weight", vec![HIDDEN]),
            ("post_attention_layernorm.weight", vec![HIDDEN]),
        ] {
            t.push((format!("{p}.{name}"), shape));
        }
    }
    t.push(("model.norm.weight".to_string(), vec![HIDDEN]));
    t
}

/// Writes `model.safetensors` (bf16, random) into `dir`.
fn write_weights(dir: &Path) -> anyhow::Result<()> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(20_261_203);
    let normal = Normal::new(0.0f32, 0.02)?;
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape) in tensors() {
        let n: usize = shape.iter().product();
        let norm = name.ends_with("layernorm.weight") || name == "model.norm.weight";
        let mut bytes = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let x = if norm { 1.0 } else { normal.sample(&mut rng) };
            bytes.extend_from_slice(&half::bf16::from_f32(x).to_le_bytes());
        }
        data.push((name, shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::BF16,
                shape.clone(),
                bytes,
            )
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            Ok((name.clone(), view))
        })
        .collect::<anyhow::Result<_>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &dir.join("model.safetensors"))?;
    Ok(())
}

/// The fixture tokenizer padded to Qwen's vocabulary, specials at Qwen's ids.
fn write_tokenizer(dir: &Path) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tok: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("fixtures/tokenizer/tokenizer.json"),
    )?)?;
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let vocab = tok["model"]["vocab"]
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("fixture tokenizer has no vocab"))?;
    let fixture_len = vocab.len();
    // The specials held ids 0-2 in the fixture: move them, fill their old
    // ids and everything up to Qwen's first special id with plain tokens.
    for (i, s) in specials.iter().enumerate() {
        vocab.insert(s.to_string(), json!(FIRST_SPECIAL + i));
        vocab.insert(format!("tok{i}"), json!(i));
    }
    for i in fixture_len..FIRST_SPECIAL {
        vocab.insert(format!("tok{i}"), json!(i));
    }
    for added in tok["added_tokens"].as_array_mut().into_iter().flatten() {
        if let Some(i) = specials.iter().position(|s| added["content"] == *s) {
            added["id"] = json!(FIRST_SPECIAL + i);
        }
    }
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tok)?)?;
    let template =
        std::fs::read_to_string(root.join("fixtures/chat_templates/Qwen2.5-Instruct.jinja"))?;
    let config = json!({
        "bos_token": null,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 131072,
        "tokenizer_class": "Qwen2Tokenizer",
        "chat_template": template,
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    let generation = json!({
        "bos_token_id": 151643,
        "do_sample": true,
        "eos_token_id": [151645, 151643],
        "pad_token_id": 151643,
        "repetition_penalty": 1.1,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8
    });
    std::fs::write(
        dir.join("generation_config.json"),
        serde_json::to_vec_pretty(&generation)?,
    )?;
    Ok(())
}

/// Runs the README's first command with `extra` flags; returns wall seconds.
fn run(bin: &Path, hub: &str, hf_home: &Path, out: &Path, extra: &[&str]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let status = Command::new(bin)
        .args([
            "eval",
            "--model",
            REPO,
            "--datasets",
            "gsm8k",
            "arc",
            "--limit",
            "5",
            "--no-progress",
            "--output",
        ])
        .arg(out)
        .args(extra)
        .env("HF_ENDPOINT", hub)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("BENCH_API_URL")
        .status()?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "bench eval failed: {status}");
    Ok(secs)
}

fn main() -> anyhow::Result<()> {
    let max_tokens: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(256);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = manifest.join("target/release/bench");
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: run `cargo build --release` first",
        bin.display()
    );
    let datasets = std::env::var("BENCH_DATASETS_HUB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../shared/datasets/hub"))
        .join("datasets");
    anyhow::ensure!(datasets.is_dir(), "no datasets at {}", datasets.display());

    let work = tempfile::tempdir()?;
    let root = work.path().join("hub");
    let model_dir = root.join("models").join(REPO);
    std::fs::create_dir_all(&model_dir)?;
    std::os::unix::fs::symlink(&datasets, root.join("datasets"))?;
    let t = Instant::now();
    std::fs::write(
        model_dir.join("config.json"),
        serde_json::to_vec_pretty(&config())?,
    )?;
    write_weights(&model_dir)?;
    write_tokenizer(&model_dir)?;
    let size = std::fs::metadata(model_dir.join("model.safetensors"))?.len();
    println!(
        "wrote a random {REPO}-shaped model ({:.0} MB of bf16 weights) in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new()?;
    let hub = rt.block_on(FakeHub::start(FakeHubOptions::new(&root)));
    let hf_home = work.path().join("hf");
    let limit = format!(r#"{{"max_tokens": {max_tokens}}}"#);
    let mut extra: Vec<&str> = Vec::new();
    if max_tokens > 0 {
        extra.extend(["--generation-config", &limit]);
    }
    let tokens = if max_tokens > 0 {
        format!("max_tokens {max_tokens}")
    } else {
        "bench's default token limit".to_string()
    };
    let cold = run(
        &bin,
        &hub.url(),
        &hf_home,
        &work.path().join("cold"),
        &extra,
    )?;
    println!("cold (download ~1 GB from 127.0.0.1, then run; {tokens}): {cold:.1} s");
    extra.push("--offline");
    let warm = run(
        &bin,
        &hub.url(),
        &hf_home,
        &work.path().join("warm"),
        &extra,
    )?;
    println!("warm (--offline, from the cache; {tokens}): {warm:.1} s");
    drop(hub);
    Ok(())
}
