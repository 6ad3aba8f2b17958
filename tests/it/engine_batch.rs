//! The batched transformer (`bench::engine::model`): decoding sequences
//! together gives what each gives alone, and the Hugging Face safetensors
//! loader runs the same model as the GGUF loader.
//!
//! The models are small random ones written here (llama, qwen2 with q/k/v
//! biases, qwen3 with per-head q/k norms), so these tests need nothing from
//! outside. That the GGUF path itself computes what llama.cpp computes is
//! checked in `tests/it/engine.rs`; the safetensors path is tied to it here
//! by converting a GGUF file into a Hugging Face directory (Q/K rows of a
//! llama file un-permuted back to Hugging Face's layout) and requiring the
//! same greedy tokens, also on the file `make_tiny_gguf.py` writes (the one
//! llama-server is compared on) when the realserver venv is there.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use bench::engine::BatchModel;
use bench::engine::gguf::EngineError;
use bench::engine::model::Transformer;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::json;

/// The shape of a random test model.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub arch: &'static str,
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ff: usize,
    pub ctx: usize,
    /// Type of the 2-D matrices (norms and biases stay F32).
    pub dtype: GgmlDType,
    /// No `output.weight`: the embedding matrix is reused.
    pub tied: bool,
}

impl Spec {
    pub fn small(arch: &'static str) -> Self {
        Self {
            arch,
            vocab: 512,
            hidden: 256,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            // Qwen3 heads need not be hidden / heads wide.
            head_dim: if arch == "qwen3" { 32 } else { 64 },
            ff: 512,
            ctx: 512,
            dtype: GgmlDType::F32,
            tied: arch == "qwen3",
        }
    }
}

/// A deterministic normal-ish random source (xorshift + Box-Muller), so the
/// same spec always gives the same file.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
    fn tensor(&mut self, dims: &[usize], scale: f32, mean: f32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| mean + scale * self.normal()).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }
}

/// Writes a random model of `spec` as a GGUF file (weights only, no
/// tokenizer: [`Transformer::from_gguf`] does not need one).
pub fn write_random_gguf(path: &Path, spec: Spec, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let s = spec;
    let (q_dim, kv_dim) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let mut t: Vec<(String, Tensor, bool)> = Vec::new();
    let mat = |rng: &mut Rng, rows: usize, cols: usize| {
        rng.tensor(&[rows, cols], 1.0 / (cols as f32).sqrt(), 0.0)
    };
    t.push((
        "token_embd.weight".into(),
        rng.tensor(&[s.vocab, s.hidden], 1.0, 0.0),
        true,
    ));
    for i in 0..s.layers {
        let p = |n: &str| format!("blk.{i}.{n}");
        t.push((
            p("attn_norm.weight"),
            rng.tensor(&[s.hidden], 0.1, 1.0),
            false,
        ));
        t.push((p("attn_q.weight"), mat(&mut rng, q_dim, s.hidden), true));
        t.push((p("attn_k.weight"), mat(&mut rng, kv_dim, s.hidden), true));
        t.push((p("attn_v.weight"), mat(&mut rng, kv_dim, s.hidden), true));
        if s.arch == "qwen2" {
            t.push((p("attn_q.bias"), rng.tensor(&[q_dim], 0.5, 0.0), false));
            t.push((p("attn_k.bias"), rng.tensor(&[kv_dim], 0.5, 0.0), false));
            t.push((p("attn_v.bias"), rng.tensor(&[kv_dim], 0.5, 0.0), false));
        }
        if s.arch == "qwen3" {
            t.push((
                p("attn_q_norm.weight"),
                rng.tensor(&[s.head_dim], 0.2, 1.0),
                false,
            ));
            t.push((
                p("attn_k_norm.weight"),
                rng.tensor(&[s.head_dim], 0.2, 1.0),
                false,
            ));
        }
        t.push((
            p("attn_output.weight"),
            mat(&mut rng, s.hidden, q_dim),
            true,
        ));
        t.push((
            p("ffn_norm.weight"),
            rng.tensor(&[s.hidden], 0.1, 1.0),
            false,
        ));
        t.push((p("ffn_gate.weight"), mat(&mut rng, s.ff, s.hidden), true));
        t.push((p("ffn_up.weight"), mat(&mut rng, s.ff, s.hidden), true));
        t.push((p("ffn_down.weight"), mat(&mut rng, s.hidden, s.ff), true));
    }
    t.push((
        "output_norm.weight".into(),
        rng.tensor(&[s.hidden], 0.1, 1.0),
        false,
    ));
    if !s.tied {
        // Peaky enough that greedy choices are rarely near-ties.
        t.push((
            "output.weight".into(),
            rng.tensor(&[s.vocab, s.hidden], 3.0 / (s.hidden as f32).sqrt(), 0.0),
            true,
        ));
    }
    let tensors: Vec<(String, QTensor)> = t
        .into_iter()
        .map(|(n, t, is_mat)| {
            let dt = if is_mat { s.dtype } else { GgmlDType::F32 };
            // A BF16 model has BF16 norms and biases too (as a Hugging Face
            // checkpoint does): their values are rounded, stored as F32.
            let t = if s.dtype == GgmlDType::BF16 {
                t.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            } else {
                t
            };
            (n, QTensor::quantize(&t, dt).unwrap())
        })
        .collect();
    let a = s.arch;
    let md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(a.into())),
        (format!("{a}.context_length"), Value::U32(s.ctx as u32)),
        (format!("{a}.embedding_length"), Value::U32(s.hidden as u32)),
        (format!("{a}.block_count"), Value::U32(s.layers as u32)),
        (format!("{a}.feed_forward_length"), Value::U32(s.ff as u32)),
        (
            format!("{a}.attention.head_count"),
            Value::U32(s.heads as u32),
        ),
        (
            format!("{a}.attention.head_count_kv"),
            Value::U32(s.kv_heads as u32),
        ),
        (
            format!("{a}.attention.key_length"),
            Value::U32(s.head_dim as u32),
        ),
        (
            format!("{a}.attention.value_length"),
            Value::U32(s.head_dim as u32),
        ),
        (format!("{a}.rope.freq_base"), Value::F32(1_000_000.0)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-6),
        ),
    ];
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut w = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut w, &md_refs, &t_refs).unwrap();
}

fn md_u(md: &HashMap<String, Value>, key: &str) -> Option<usize> {
    md.get(key).map(|v| v.to_u32().unwrap() as usize)
}

fn md_f(md: &HashMap<String, Value>, key: &str) -> Option<f64> {
    md.get(key).map(|v| f64::from(v.to_f32().unwrap()))
}

/// Converts a GGUF file into a Hugging Face model directory: `config.json`
/// and the weights in `dtype`, in one `model.safetensors` or in `shards`
/// files with `model.safetensors.index.json`. A llama file's Q and K rows
/// are un-permuted (llama.cpp's converter permutes them for its interleaved
/// rotation); qwen2/qwen3 files are stored as Hugging Face has them.
pub fn gguf_to_hf(src: &Path, dir: &Path, dtype: DType, shards: usize) {
    let dev = Device::Cpu;
    let mut r = std::fs::File::open(src).unwrap();
    let ct = gguf_file::Content::read(&mut r).unwrap();
    let md = &ct.metadata;
    let arch = md["general.architecture"].to_string().unwrap().clone();
    let a = arch.as_str();
    let heads = md_u(md, &format!("{a}.attention.head_count")).unwrap();
    let kv_heads = md_u(md, &format!("{a}.attention.head_count_kv")).unwrap_or(heads);
    let hidden = md_u(md, &format!("{a}.embedding_length")).unwrap();
    let head_dim = md_u(md, &format!("{a}.attention.key_length")).unwrap_or(hidden / heads);
    let vocab = ct.tensor_infos["token_embd.weight"].shape.dims()[0];
    let tied = !ct.tensor_infos.contains_key("output.weight");
    let (architecture, dtype_name) = (
        match a {
            "llama" => "LlamaForCausalLM",
            "qwen2" => "Qwen2ForCausalLM",
            "qwen3" => "Qwen3ForCausalLM",
            other => panic!("no HF architecture for {other}"),
        },
        match dtype {
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            _ => "float32",
        },
    );
    let config = json!({
        "architectures": [architecture],
        "model_type": a,
        "hidden_size": hidden,
        "intermediate_size": md_u(md, &format!("{a}.feed_forward_length")).unwrap(),
        "num_hidden_layers": md_u(md, &format!("{a}.block_count")).unwrap(),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "rms_norm_eps": md_f(md, &format!("{a}.attention.layer_norm_rms_epsilon")).unwrap(),
        "rope_theta": md_f(md, &format!("{a}.rope.freq_base")).unwrap_or(10000.0),
        "max_position_embeddings": md_u(md, &format!("{a}.context_length")).unwrap(),
        "tie_word_embeddings": tied,
        "torch_dtype": dtype_name,
    });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let unpermute = |t: Tensor, n_head: usize| -> Tensor {
        let dims = t.dims().to_vec();
        let rest: usize = dims[1..].iter().product();
        t.reshape((n_head, head_dim / 2, 2, rest))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape(dims)
            .unwrap()
    };
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut out: Vec<(String, Tensor)> = Vec::new();
    for name in names {
        let t = ct
            .tensor(&mut r, name, &dev)
            .unwrap()
            .dequantize(&dev)
            .unwrap();
        let hf = match name.as_str() {
            "token_embd.weight" => "model.embed_tokens.weight".to_string(),
            "output.weight" => "lm_head.weight".to_string(),
            "output_norm.weight" => "model.norm.weight".to_string(),
            "rope_freqs.weight" => continue,
            n => {
                let rest = n.strip_prefix("blk.").unwrap();
                let (layer, part) = rest.split_once('.').unwrap();
                let (stem, suffix) = part.rsplit_once('.').unwrap();
                let hf = match stem {
                    "attn_norm" => "input_layernorm",
                    "attn_q" => "self_attn.q_proj",
                    "attn_k" => "self_attn.k_proj",
                    "attn_v" => "self_attn.v_proj",
                    "attn_output" => "self_attn.o_proj",
                    "attn_q_norm" => "self_attn.q_norm",
                    "attn_k_norm" => "self_attn.k_norm",
                    "ffn_norm" => "post_attention_layernorm",
                    "ffn_gate" => "mlp.gate_proj",
                    "ffn_up" => "mlp.up_proj",
                    "ffn_down" => "mlp.down_proj",
                    other => panic!("unexpected tensor {other}"),
                };
                format!("model.layers.{layer}.{hf}.{suffix}")
            }
        };
        let t = match (
            a,
            name.ends_with("attn_q.weight"),
            name.ends_with("attn_k.weight"),
        ) {
            ("llama", true, _) => unpermute(t, heads),
            ("llama", _, true) => unpermute(t, kv_heads),
            _ => t,
        };
        out.push((hf, t.to_dtype(dtype).unwrap()));
    }
    if shards <= 1 {
        let map: HashMap<String, Tensor> = out.into_iter().collect();
        candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
        return;
    }
    let per = out.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in out.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{shards:05}.safetensors", i + 1);
        let map: HashMap<String, Tensor> = chunk.iter().cloned().collect();
        for n in map.keys() {
            weight_map.insert(n.clone(), json!(file));
        }
        candle_core::safetensors::save(&map, dir.join(&file)).unwrap();
    }
    let index = json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

/// Prompts (token ids) of different lengths for a `vocab`-token model.
fn prompts(vocab: usize) -> Vec<Vec<u32>> {
    [1usize, 2, 7, 19, 33, 64]
        .iter()
        .enumerate()
        .map(|(p, &n)| {
            (0..n)
                .map(|i| ((p * 131 + i * 17 + 3) % vocab) as u32)
                .collect()
        })
        .collect()
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy generation of `n` tokens in slot 0, with the logits of each step.
fn greedy(m: &mut impl BatchModel, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    m.free(0);
    let mut logits = m.forward(&[(0, prompt)]).unwrap().remove(0);
    let (mut toks, mut all) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = argmax(&logits);
        toks.push(t);
        all.push(logits);
        logits = m.forward(&[(0, &[t])]).unwrap().remove(0);
    }
    m.free(0);
    (toks, all)
}

/// Largest |a - b| over the largest |a|: the relative difference of two
/// logit vectors.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The two models generate the same greedy tokens on every prompt, with
/// logits within `tol` (relative).
fn assert_same_generation(a: &mut Transformer, b: &mut Transformer, n: usize, tol: f32) {
    let vocab = a.config().vocab_size;
    let mut worst = 0f32;
    for (pi, p) in prompts(vocab).iter().enumerate() {
        let (ta, la) = greedy(a, p, n);
        let (tb, lb) = greedy(b, p, n);
        assert_eq!(ta, tb, "prompt {pi}: greedy tokens differ");
        for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
            let d = rel_diff(x, y);
            assert!(
                d <= tol,
                "prompt {pi} step {i}: logits differ by {d} (relative)"
            );
            worst = worst.max(d);
        }
    }
    eprintln!("same greedy tokens; largest relative logit difference {worst:.2e}");
}

/// Decodes the prompts together, sequences joining and leaving at different
/// steps (and a freed slot reused), and compares every logit vector with the
/// same sequence decoded alone.
fn check_batch_equivalence(spec: Spec, seed: u64, tol: f32) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    write_random_gguf(&file, spec, seed);
    let mut m = Transformer::from_gguf(&file).unwrap();
    let prompts = prompts(spec.vocab);
    // Forced continuation tokens (not greedy: a near-tie must not make the
    // two runs feed different tokens).
    let steps = [12usize, 5, 9, 1, 7, 10];
    let forced = |p: usize, i: usize| ((p * 29 + i * 11 + 5) % spec.vocab) as u32;
    let mut alone: Vec<Vec<Vec<f32>>> = Vec::new();
    for (p, prompt) in prompts.iter().enumerate() {
        m.free(3);
        let mut out = vec![m.forward(&[(3, prompt)]).unwrap().remove(0)];
        for i in 0..steps[p] {
            out.push(m.forward(&[(3, &[forced(p, i)])]).unwrap().remove(0));
        }
        assert_eq!(m.seq_len(3), prompt.len() + steps[p]);
        alone.push(out);
    }
    m.free(3);
    // Sequence p joins at step join[p]; slot p % 4 so that later sequences
    // reuse the slots of earlier ones once those have left.
    let join = [0usize, 0, 1, 3, 14, 15];
    let slot = |p: usize| p % 4 + 10;
    let mut got: Vec<Vec<Vec<f32>>> = vec![Vec::new(); prompts.len()];
    let mut max_width = 0;
    let mut mixed = false;
    for step in 0.. {
        let mut batch: Vec<(usize, Vec<u32>, usize)> = Vec::new();
        for p in 0..prompts.len() {
            if step < join[p] || got[p].len() > steps[p] {
                continue;
            }
            let done = got[p].len();
            let toks = if done == 0 {
                assert_eq!(m.seq_len(slot(p)), 0, "slot of {p} is free on joining");
                prompts[p].clone()
            } else {
                vec![forced(p, done - 1)]
            };
            batch.push((slot(p), toks, p));
        }
        if batch.is_empty() {
            if (0..prompts.len()).all(|p| got[p].len() > steps[p]) {
                break;
            }
            continue;
        }
        max_width = max_width.max(batch.len());
        mixed |= batch.iter().any(|b| b.1.len() > 1) && batch.iter().any(|b| b.1.len() == 1);
        let input: Vec<(usize, &[u32])> =
            batch.iter().map(|(s, t, _)| (*s, t.as_slice())).collect();
        let out = m.forward(&input).unwrap();
        assert_eq!(out.len(), batch.len());
        for ((s, _, p), logits) in batch.iter().zip(out) {
            got[*p].push(logits);
            if got[*p].len() > steps[*p] {
                m.free(*s);
            }
        }
    }
    assert!(max_width >= 3 && mixed, "the schedule batches little");
    let mut worst = 0f32;
    for p in 0..prompts.len() {
        assert_eq!(got[p].len(), alone[p].len());
        for (i, (a, b)) in alone[p].iter().zip(&got[p]).enumerate() {
            let d = rel_diff(a, b);
            assert!(
                d <= tol,
                "{} {:?}: prompt {p} step {i}: batched logits differ by {d} (relative)",
                spec.arch,
                spec.dtype
            );
            worst = worst.max(d);
        }
    }
    eprintln!(
        "{} {:?}: batched = alone within {worst:.2e} (up to {max_width} sequences per call)",
        spec.arch, spec.dtype
    );
}

#[test]
fn engine_batch_decode_matches_each_alone_llama() {
    check_batch_equivalence(Spec::small("llama"), 1, 1e-4);
}

#[test]
fn engine_batch_decode_matches_each_alone_qwen2() {
    check_batch_equivalence(Spec::small("qwen2"), 2, 1e-4);
}

#[test]
fn engine_batch_decode_matches_each_alone_qwen3() {
    check_batch_equivalence(Spec::small("qwen3"), 3, 1e-4);
}

#[test]
fn engine_batch_decode_matches_each_alone_quantized() {
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K] {
        let spec = Spec {
            dtype,
            ..Spec::small("qwen2")
        };
        check_batch_equivalence(spec, 4, 1e-4);
    }
}

#[test]
fn engine_prefill_matches_token_by_token_decode() {
    // Causal mask: a prompt in one call gives what it gives one token at a time.
    let dir = tempfile::tempdir().unwrap();
    for arch in ["llama", "qwen2", "qwen3"] {
        let file = dir.path().join(format!("{arch}.gguf"));
        write_random_gguf(&file, Spec::small(arch), 5);
        let mut m = Transformer::from_gguf(&file).unwrap();
        let prompt = &prompts(512)[4];
        let whole = m.forward(&[(0, prompt)]).unwrap().remove(0);
        m.free(0);
        let mut last = Vec::new();
        for &t in prompt {
            last = m.forward(&[(0, &[t])]).unwrap().remove(0);
        }
        let d = rel_diff(&whole, &last);
        assert!(d <= 1e-4, "{arch}: {d}");
        // Rewinding drops the tail: the same last step again gives the same.
        m.truncate(0, prompt.len() - 1);
        let again = m
            .forward(&[(0, &prompt[prompt.len() - 1..])])
            .unwrap()
            .remove(0);
        assert!(rel_diff(&again, &last) <= 1e-6, "{arch}: rewind");
    }
}

#[test]
fn engine_batch_rejects_bad_batches_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    write_random_gguf(&file, Spec::small("llama"), 6);
    let mut m = Transformer::from_gguf(&file).unwrap();
    let msg = |r: Result<Vec<Vec<f32>>, EngineError>| r.unwrap_err().to_string();
    assert_eq!(
        msg(m.forward(&[(1, &[1]), (1, &[2])])),
        "slot 1 appears twice in one batch"
    );
    assert_eq!(msg(m.forward(&[(2, &[])])), "slot 2: no tokens");
    assert_eq!(
        msg(m.forward(&[(0, &[1]), (4, &[3, 512])])),
        "slot 4: token 1 is id 512, outside the 512-token vocabulary"
    );
    // Nothing was kept of a rejected batch.
    assert_eq!(m.seq_len(0), 0);
    let long = vec![1u32; 513];
    assert_eq!(
        msg(m.forward(&[(0, &long)])),
        "slot 0: 0 tokens plus 513 new exceed the model's 512-token context"
    );
    m.set_max_batch(2);
    assert_eq!(m.max_batch(), 2);
    assert_eq!(
        msg(m.forward(&[(0, &[1]), (1, &[1]), (2, &[1])])),
        "3 sequences in one batch; at most 2"
    );
    assert!(m.forward(&[]).unwrap().is_empty());
}

#[test]
fn engine_safetensors_generates_what_gguf_generates() {
    let dir = tempfile::tempdir().unwrap();
    for (i, arch) in ["llama", "qwen2", "qwen3"].into_iter().enumerate() {
        let file = dir.path().join(format!("{arch}.gguf"));
        write_random_gguf(&file, Spec::small(arch), 10 + i as u64);
        let hf = dir.path().join(format!("{arch}-hf"));
        gguf_to_hf(&file, &hf, DType::F32, 1);
        let mut g = Transformer::from_gguf(&file).unwrap();
        let mut h = Transformer::from_hf_dir(&hf).unwrap();
        assert_eq!(h.info().parameters, g.info().parameters);
        // The same tensors, all F32 (the GGUF file has no rope_freqs).
        assert_eq!(h.info().weight_types, g.info().weight_types);
        assert!(h.info().weight_types.starts_with("F32 x"), "{:?}", h.info());
        assert_eq!(h.info().max_positions, 512);
        eprint!("{arch}: ");
        assert_same_generation(&mut g, &mut h, 24, 1e-4);
    }
}

#[test]
fn engine_sharded_and_bf16_safetensors_load() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::small("qwen2");
    let file = dir.path().join("m.gguf");
    write_random_gguf(&file, spec, 20);
    // Two shards with an index.
    let sharded = dir.path().join("sharded");
    gguf_to_hf(&file, &sharded, DType::F32, 2);
    assert!(sharded.join("model.safetensors.index.json").is_file());
    assert!(sharded.join("model-00002-of-00002.safetensors").is_file());
    let mut g = Transformer::from_gguf(&file).unwrap();
    let mut h = Transformer::from_hf_dir(&sharded).unwrap();
    assert_same_generation(&mut g, &mut h, 16, 1e-4);
    // BF16: the same weights rounded to bf16 in a GGUF file run the same.
    let bf16_gguf = dir.path().join("bf16.gguf");
    write_random_gguf(
        &bf16_gguf,
        Spec {
            dtype: GgmlDType::BF16,
            ..spec
        },
        20,
    );
    let bf16 = dir.path().join("bf16");
    gguf_to_hf(&bf16_gguf, &bf16, DType::BF16, 1);
    let mut g = Transformer::from_gguf(&bf16_gguf).unwrap();
    let mut h = Transformer::from_hf_dir(&bf16).unwrap();
    assert!(h.info().weight_types.contains("BF16"), "{:?}", h.info());
    assert_same_generation(&mut g, &mut h, 16, 1e-5);
}

#[test]
fn engine_safetensors_errors_are_one_line_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    write_random_gguf(&file, Spec::small("llama"), 30);
    let hf = dir.path().join("hf");
    gguf_to_hf(&file, &hf, DType::F32, 1);
    let st = hf.join("model.safetensors");
    let config = hf.join("config.json");
    let good_config = std::fs::read_to_string(&config).unwrap();
    let one_line = |e: EngineError| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        s
    };

    // Unsupported architecture: names what config.json says and the supported ones.
    let mut j: serde_json::Value = serde_json::from_str(&good_config).unwrap();
    j["architectures"] = json!(["MistralForCausalLM"]);
    std::fs::write(&config, j.to_string()).unwrap();
    let e = one_line(Transformer::from_hf_dir(&hf).unwrap_err());
    assert_eq!(
        e,
        format!(
            "{}: unsupported model: config.json says architectures ['MistralForCausalLM']; supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM",
            config.display()
        )
    );
    // A missing key.
    let mut j: serde_json::Value = serde_json::from_str(&good_config).unwrap();
    j.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(&config, j.to_string()).unwrap();
    let e = one_line(Transformer::from_hf_dir(&hf).unwrap_err());
    assert_eq!(
        e,
        format!("{}: metadata key hidden_size: missing", config.display())
    );
    // A shape that does not fit the config.
    let mut j: serde_json::Value = serde_json::from_str(&good_config).unwrap();
    j["intermediate_size"] = json!(384);
    std::fs::write(&config, j.to_string()).unwrap();
    let e = one_line(Transformer::from_hf_dir(&hf).unwrap_err());
    assert!(
        e.starts_with(&format!("{}: ", st.display()))
            && e.contains(
                "model.layers.0.mlp.gate_proj.weight has shape [512, 256], expected [384, 256]"
            ),
        "{e}"
    );
    std::fs::write(&config, &good_config).unwrap();

    // A missing tensor.
    let dev = Device::Cpu;
    let mut tensors = candle_core::safetensors::load(&st, &dev).unwrap();
    tensors.remove("model.layers.1.self_attn.k_proj.weight");
    let cut = dir.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::write(cut.join("config.json"), &good_config).unwrap();
    candle_core::safetensors::save(&tensors, cut.join("model.safetensors")).unwrap();
    let e = one_line(Transformer::from_hf_dir(&cut).unwrap_err());
    assert_eq!(
        e,
        format!(
            "{}: loading the weights: missing tensor model.layers.1.self_attn.k_proj.weight",
            cut.join("model.safetensors").display()
        )
    );
    // A truncated file.
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(cut.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Transformer::from_hf_dir(&cut).unwrap_err();
    assert!(matches!(e, EngineError::Safetensors { .. }), "{e:?}");
    let e = one_line(e);
    assert!(
        e.starts_with(&format!(
            "{}: not a readable safetensors file",
            cut.join("model.safetensors").display()
        )),
        "{e}"
    );
    // No weights at all.
    std::fs::remove_file(cut.join("model.safetensors")).unwrap();
    let e = one_line(Transformer::from_hf_dir(&cut).unwrap_err());
    assert!(
        e.contains("neither model.safetensors nor model.safetensors.index.json"),
        "{e}"
    );
}

/// The file `make_tiny_gguf.py` writes (the one llama-server runs in
/// `tests/it/engine.rs`), converted to safetensors, generates the same.
#[test]
fn engine_safetensors_of_the_llama_server_file_generates_the_same() {
    let test = "engine_safetensors_of_the_llama_server_file_generates_the_same";
    let venv = std::env::var_os("REALSERVER_VENV")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/bench/realserver"))
        });
    let shared = std::env::var_os("BENCH_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../shared"));
    let script = shared.join("realserver/make_tiny_gguf.py");
    let python = venv.map(|v| v.join("bin/python"));
    let Some(python) = python.filter(|p| p.is_file() && script.is_file()) else {
        crate::support::skip(
            test,
            "no realserver venv python or make_tiny_gguf.py (REALSERVER_VENV, BENCH_SHARED_DIR)",
            "BENCH_REQUIRE_REALSERVER",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (shards, dtype) in [(1, DType::F32), (2, DType::F32)] {
        let hf = dir.path().join(format!("hf-{shards}"));
        gguf_to_hf(&file, &hf, dtype, shards);
        let mut g = Transformer::from_gguf(&file).unwrap();
        let mut h = Transformer::from_hf_dir(&hf).unwrap();
        assert_same_generation(&mut g, &mut h, 32, 1e-4);
    }
}
