//! Our own decoder-only transformer for the Llama 3.x, Qwen2/Qwen2.5 and
//! Qwen3 families, run on the CPU with many sequences at once.
//!
//! One implementation covers the three families: RMSNorm, rotary position
//! embeddings (theta from the config, Llama 3 frequency scaling, linear
//! scaling), grouped-query attention, a SwiGLU MLP, Qwen2's q/k/v biases,
//! Qwen3's per-head q/k RMSNorm, and tied embeddings when the file has no
//! output matrix. Weights come from a GGUF file ([`Transformer::from_gguf`])
//! or a Hugging Face directory of safetensors ([`Transformer::from_hf_dir`]).
//!
//! Every linear layer is a [`Matrix`] (see [`super::linear`]): F32, F16 and
//! BF16 matrices (GGUF or safetensors) stay in the file's type and run
//! through our own kernels, which convert in registers; GGUF's quantised
//! types (Q8_0, Q4_K, Q6_K, …) stay quantised and run through candle's
//! quantised kernels.
//!
//! Batching ([`BatchModel`]): one [`forward`](BatchModel::forward) call puts
//! the new tokens of every sequence in the call (one row each for a decode
//! step, many for a prefill) into one `[tokens, hidden]` matrix, so each
//! projection and MLP matrix is read once for the whole batch: on a CPU,
//! where a decode step is bound by reading the weights from memory, that is
//! what makes throughput grow with concurrency. Attention is the only
//! per-sequence part: each row attends to its own sequence's KV cache up to
//! its own position (causal within a prefill).
//!
//! Rotary embeddings come in two layouts: llama.cpp's converter permutes the
//! rows of a Llama model's Q and K matrices so that rotated pairs are
//! adjacent ([`RopeStyle::Interleaved`], GGUF `llama`), while Qwen2/Qwen3
//! GGUF files and every Hugging Face checkpoint rotate the two halves of each
//! head ([`RopeStyle::Neox`]). The two give the same attention scores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::Device;
use candle_core::quantized::gguf_file::TensorInfo;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::safetensors::MmapedSafetensors;
use rayon::prelude::*;
use serde_json::Value as Json;

use super::BatchModel;
use super::gguf::EngineError;
use super::linear::{Dense, DenseType, Matrix};

/// The Hugging Face `architectures` values [`Transformer::from_hf_dir`] runs.
pub const SUPPORTED_HF_ARCHITECTURES: &[&str] =
    &["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"];

/// How many sequences one [`BatchModel::forward`] call takes unless
/// [`Transformer::set_max_batch`] says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// KV caches grow by this many positions at a time (not one step at a time,
/// which would copy the whole cache on every step).
const KV_CHUNK: usize = 256;

/// The model family: which optional parts a layer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 2/3.x (optionally with attention biases).
    Llama,
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
    /// Qwen3: RMSNorm over each q and k head before the rotation.
    Qwen3,
}

/// Which coordinates of a head the rotary embedding rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs `(2i, 2i+1)`: GGUF llama files (their Q/K rows are permuted).
    Interleaved,
    /// Pairs `(i, i + head_dim/2)`: Hugging Face, and GGUF qwen2/qwen3.
    Neox,
}

/// The shape of a model, read from GGUF metadata or `config.json`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The family.
    pub family: Family,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Rows of the embedding (and output) matrix.
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// RoPE pair layout.
    pub rope_style: RopeStyle,
    /// The longest sequence accepted: the context length the model was
    /// trained for (`<arch>.context_length`, `max_position_embeddings`).
    pub max_positions: usize,
}

/// What a run record says about the loaded weights.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The GGUF file, or the Hugging Face directory.
    pub source: PathBuf,
    /// The tensor types in the file(s) with how many tensors of each, e.g.
    /// `F32 x13, Q8_0 x12` or `BF16 x290`.
    pub weight_types: String,
    /// Number of weights (elements of every tensor in the file(s)).
    pub parameters: u64,
    /// The longest sequence accepted (see [`Config::max_positions`]).
    pub max_positions: usize,
}

/// A weight as loaded: quantised (GGUF) or dense in the file's type.
enum Weight {
    Q(QTensor),
    /// The matrix, and the dimensions as the file gives them (a vector is
    /// held as one row).
    D(Dense, Vec<usize>),
}

impl Weight {
    fn dims(&self) -> Vec<usize> {
        match self {
            Weight::Q(q) => q.shape().dims().to_vec(),
            Weight::D(_, dims) => dims.clone(),
        }
    }

    fn into_matmul(self) -> candle_core::Result<Matrix> {
        match self {
            Weight::Q(q) => QMatMul::from_qtensor(q).map(Matrix::Quant),
            Weight::D(d, _) => Ok(Matrix::Dense(d)),
        }
    }

    fn into_vec(self) -> candle_core::Result<Vec<f32>> {
        match self {
            Weight::Q(q) => q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>(),
            Weight::D(d, _) => Ok(d.to_f32()),
        }
    }
}

/// A dense tensor of `dims` (one or two of them) from its little-endian bytes.
fn dense(bytes: &[u8], ty: DenseType, dims: &[usize]) -> Result<Weight, String> {
    let (n, k) = match *dims {
        [k] => (1, k),
        [n, k] => (n, k),
        _ => return Err(format!("{} dimensions, expected 1 or 2", dims.len())),
    };
    let d = Dense::from_le_bytes(bytes, ty, n, k)
        .ok_or_else(|| format!("{} bytes do not hold {dims:?} {ty:?} elements", bytes.len()))?;
    Ok(Weight::D(d, dims.to_vec()))
}

/// Where weights come from; both formats answer by tensor name.
trait Source {
    /// The file a tensor is in (for error messages).
    fn file_of(&self, name: &str) -> PathBuf;
    /// Whether the tensor exists.
    fn has(&self, name: &str) -> bool;
    /// Loads the tensor (it exists).
    fn load(&mut self, name: &str) -> Result<Weight, String>;

    /// Loads `name`, checking that it exists and has shape `dims`.
    fn get(&mut self, name: &str, dims: &[usize]) -> Result<Weight, EngineError> {
        let path = self.file_of(name);
        let werr = |m: String| EngineError::Weights {
            path: path.clone(),
            message: m,
        };
        if !self.has(name) {
            return Err(werr(format!("missing tensor {name}")));
        }
        let w = self
            .load(name)
            .map_err(|m| werr(format!("tensor {name}: {m}")))?;
        let found = w.dims();
        if found != dims {
            return Err(werr(format!(
                "tensor {name} has shape {found:?}, expected {dims:?}"
            )));
        }
        Ok(w)
    }

    fn opt(&mut self, name: &str, dims: &[usize]) -> Result<Option<Weight>, EngineError> {
        if self.has(name) {
            self.get(name, dims).map(Some)
        } else {
            Ok(None)
        }
    }
}

struct GgufSource<'a, R> {
    path: &'a Path,
    ct: &'a Content,
    reader: &'a mut R,
}

impl<R: Read + Seek> Source for GgufSource<'_, R> {
    fn file_of(&self, _: &str) -> PathBuf {
        self.path.to_path_buf()
    }
    fn has(&self, name: &str) -> bool {
        self.ct.tensor_infos.contains_key(name)
    }
    fn load(&mut self, name: &str) -> Result<Weight, String> {
        let info = &self.ct.tensor_infos[name];
        let ty = match info.ggml_dtype {
            GgmlDType::F32 => DenseType::F32,
            GgmlDType::F16 => DenseType::F16,
            GgmlDType::BF16 => DenseType::Bf16,
            _ => {
                return self
                    .ct
                    .tensor(self.reader, name, &Device::Cpu)
                    .map(Weight::Q)
                    .map_err(|e| one_line(&e.to_string()));
            }
        };
        let bytes = read_tensor_bytes(self.reader, self.ct.tensor_data_offset, info, ty)?;
        // candle's reader already turned GGUF's innermost-first dimensions
        // into outermost-first ones, the order used here.
        dense(&bytes, ty, info.shape.dims())
    }
}

/// The raw bytes of a dense GGUF tensor (read straight into memory, not
/// through candle, which would copy them once more).
fn read_tensor_bytes<R: Read + Seek>(
    reader: &mut R,
    data_offset: u64,
    info: &TensorInfo,
    ty: DenseType,
) -> Result<Vec<u8>, String> {
    let width = if ty == DenseType::F32 { 4 } else { 2 };
    let len = info
        .shape
        .elem_count()
        .checked_mul(width)
        .ok_or("tensor too large")?;
    let start = data_offset + info.offset;
    let end = start + len as u64;
    let file_len = reader
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| format!("finding the file size: {e}"))?;
    if end > file_len {
        return Err(format!(
            "needs bytes {start}..{end} but the file has {file_len} (truncated file?)"
        ));
    }
    let mut bytes = vec![0u8; len];
    reader
        .seek(std::io::SeekFrom::Start(start))
        .and_then(|_| reader.read_exact(&mut bytes))
        .map_err(|e| format!("reading {len} bytes at {start}: {e}"))?;
    Ok(bytes)
}

struct SafetensorsSource {
    /// The files, each memory-mapped.
    files: Vec<(PathBuf, MmapedSafetensors)>,
    /// Tensor name → index in `files`.
    routing: HashMap<String, usize>,
    /// Where "missing tensor" errors point (the index or the single file).
    index: PathBuf,
}

impl Source for SafetensorsSource {
    fn file_of(&self, name: &str) -> PathBuf {
        match self.routing.get(name) {
            Some(&i) => self.files[i].0.clone(),
            None => self.index.clone(),
        }
    }
    fn has(&self, name: &str) -> bool {
        self.routing.contains_key(name)
    }
    fn load(&mut self, name: &str) -> Result<Weight, String> {
        let i = self.routing[name];
        let view = self.files[i]
            .1
            .get(name)
            .map_err(|e| one_line(&e.to_string()))?;
        let ty = match view.dtype() {
            safetensors::Dtype::F32 => DenseType::F32,
            safetensors::Dtype::F16 => DenseType::F16,
            safetensors::Dtype::BF16 => DenseType::Bf16,
            other => return Err(format!("type {other:?}; supported: F32, F16, BF16")),
        };
        dense(view.data(), ty, view.shape())
    }
}

/// candle's errors can carry a backtrace on later lines; keep the first.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// A linear layer: `x @ w.T (+ b)`.
struct Linear {
    w: Matrix,
    b: Option<Vec<f32>>,
}

impl Linear {
    /// `x` is `[rows, in]`; returns `[rows, out]` row-major.
    fn forward(&self, x: &[f32], rows: usize) -> candle_core::Result<Vec<f32>> {
        let mut y = self.w.matmul(x, rows)?;
        if let Some(b) = &self.b {
            for row in y.chunks_exact_mut(b.len()) {
                for (v, b) in row.iter_mut().zip(b) {
                    *v += b;
                }
            }
        }
        Ok(y)
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    o: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// One sequence's KV cache: per layer, keys and values laid out
/// `[position][kv_head][head_dim]`, so a step appends one contiguous row.
struct Seq {
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Seq {
    fn new(layers: usize) -> Self {
        Self {
            len: 0,
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
        }
    }

    fn truncate(&mut self, len: usize, kv_dim: usize) {
        self.len = len;
        for c in self.k.iter_mut().chain(self.v.iter_mut()) {
            c.truncate(len * kv_dim);
        }
    }
}

/// Appends `rows` to a cache, growing it by whole chunks of positions.
fn append_rows(cache: &mut Vec<f32>, rows: &[f32], kv_dim: usize) {
    let need = cache.len() + rows.len();
    if need > cache.capacity() {
        let positions = (need / kv_dim).div_ceil(KV_CHUNK) * KV_CHUNK;
        cache.reserve_exact(positions * kv_dim - cache.len());
    }
    cache.extend_from_slice(rows);
}

/// A loaded decoder with per-slot KV caches (see the module docs).
pub struct Transformer {
    cfg: Config,
    info: ModelInfo,
    embed: Arc<Matrix>,
    layers: Vec<Layer>,
    final_norm: Vec<f32>,
    lm_head: Arc<Matrix>,
    /// RoPE inverse frequencies (scaling applied), `head_dim / 2` of them.
    inv_freq: Vec<f32>,
    /// cos and sin of `position * inv_freq`, `[position][head_dim / 2]`,
    /// extended as longer sequences arrive.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    slots: HashMap<usize, Seq>,
    max_batch: usize,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("cfg", &self.cfg)
            .field("info", &self.info)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Llama 3's rotary frequency scaling (`rope_scaling.rope_type == "llama3"`),
/// as in transformers' `_compute_llama3_parameters`.
#[derive(Debug, Clone, Copy)]
struct Llama3Scaling {
    factor: f64,
    low_freq_factor: f64,
    high_freq_factor: f64,
    original_max_position_embeddings: f64,
}

/// How the rotary frequencies are scaled.
#[derive(Debug, Clone)]
enum RopeScaling {
    None,
    /// Every frequency divided by this factor.
    Linear(f64),
    Llama3(Llama3Scaling),
    /// Per-frequency divisors (GGUF `rope_freqs.weight`).
    Factors(Vec<f32>),
}

fn inv_freqs(head_dim: usize, theta: f64, scaling: &RopeScaling) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let f = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
            let f = match scaling {
                RopeScaling::None => f,
                RopeScaling::Linear(s) => f / s,
                RopeScaling::Factors(d) => f / f64::from(d[i]),
                RopeScaling::Llama3(s) => {
                    let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
                    let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / s.factor
                    } else {
                        let smooth = (s.original_max_position_embeddings / wavelen
                            - s.low_freq_factor)
                            / (s.high_freq_factor - s.low_freq_factor);
                        (1.0 - smooth) * f / s.factor + smooth * f
                    }
                }
            };
            f as f32
        })
        .collect()
}

/// Tensor names in the two formats.
#[derive(Clone, Copy)]
enum Naming {
    Gguf,
    Hf,
}

impl Naming {
    fn embed(self) -> &'static str {
        match self {
            Naming::Gguf => "token_embd.weight",
            Naming::Hf => "model.embed_tokens.weight",
        }
    }
    fn output(self) -> &'static str {
        match self {
            Naming::Gguf => "output.weight",
            Naming::Hf => "lm_head.weight",
        }
    }
    fn final_norm(self) -> &'static str {
        match self {
            Naming::Gguf => "output_norm.weight",
            Naming::Hf => "model.norm.weight",
        }
    }
    /// `part` is the GGUF name; the HF one is derived.
    fn layer(self, i: usize, part: &str) -> String {
        match self {
            Naming::Gguf => format!("blk.{i}.{part}"),
            Naming::Hf => {
                let (stem, suffix) = part.rsplit_once('.').unwrap_or((part, "weight"));
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
                    other => other,
                };
                format!("model.layers.{i}.{hf}.{suffix}")
            }
        }
    }
}

impl Transformer {
    fn build(
        cfg: Config,
        src: &mut dyn Source,
        naming: Naming,
        scaling: RopeScaling,
        info: ModelInfo,
    ) -> Result<Self, EngineError> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (q_dim, kv_dim) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
        let ff = cfg.intermediate_size;
        let werr = |name: &str, src: &dyn Source, e: candle_core::Error| EngineError::Weights {
            path: src.file_of(name),
            message: format!("tensor {name}: {}", one_line(&e.to_string())),
        };
        let linear = |src: &mut dyn Source,
                      i: usize,
                      part: &str,
                      dims: [usize; 2],
                      bias: Option<bool>|
         -> Result<Linear, EngineError> {
            let name = naming.layer(i, &format!("{part}.weight"));
            let w = src
                .get(&name, &dims)?
                .into_matmul()
                .map_err(|e| werr(&name, src, e))?;
            let bname = naming.layer(i, &format!("{part}.bias"));
            let b = match bias {
                Some(true) => Some(src.get(&bname, &[dims[0]])?),
                Some(false) => None,
                None => src.opt(&bname, &[dims[0]])?,
            };
            let b = b
                .map(|b| b.into_vec().map_err(|e| werr(&bname, src, e)))
                .transpose()?;
            Ok(Linear { w, b })
        };
        let vec = |src: &mut dyn Source, name: &str, n: usize| -> Result<Vec<f32>, EngineError> {
            src.get(name, &[n])?
                .into_vec()
                .map_err(|e| werr(name, src, e))
        };
        let embed_name = naming.embed();
        let embed = Arc::new(
            src.get(embed_name, &[cfg.vocab_size, h])?
                .into_matmul()
                .map_err(|e| werr(embed_name, src, e))?,
        );
        let qkv_bias = match cfg.family {
            Family::Qwen2 => Some(true),
            _ => None,
        };
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let qk_norm = cfg.family == Family::Qwen3;
            let norm = |src: &mut dyn Source, part: &str, n| {
                vec(src, &naming.layer(i, &format!("{part}.weight")), n)
            };
            layers.push(Layer {
                attn_norm: norm(src, "attn_norm", h)?,
                q: linear(src, i, "attn_q", [q_dim, h], qkv_bias)?,
                k: linear(src, i, "attn_k", [kv_dim, h], qkv_bias)?,
                v: linear(src, i, "attn_v", [kv_dim, h], qkv_bias)?,
                q_norm: qk_norm.then(|| norm(src, "attn_q_norm", hd)).transpose()?,
                k_norm: qk_norm.then(|| norm(src, "attn_k_norm", hd)).transpose()?,
                o: linear(src, i, "attn_output", [h, q_dim], Some(false))?,
                ffn_norm: norm(src, "ffn_norm", h)?,
                gate: linear(src, i, "ffn_gate", [ff, h], Some(false))?,
                up: linear(src, i, "ffn_up", [ff, h], Some(false))?,
                down: linear(src, i, "ffn_down", [h, ff], Some(false))?,
            });
        }
        let final_norm = vec(src, naming.final_norm(), h)?;
        let out_name = naming.output();
        // Tied embeddings: no output matrix, the embedding matrix serves.
        let lm_head = match src.opt(out_name, &[cfg.vocab_size, h])? {
            Some(w) => Arc::new(w.into_matmul().map_err(|e| werr(out_name, src, e))?),
            None => Arc::clone(&embed),
        };
        let inv_freq = inv_freqs(hd, cfg.rope_theta, &scaling);
        Ok(Self {
            cfg,
            info,
            embed,
            layers,
            final_norm,
            lm_head,
            inv_freq,
            rope_cos: Vec::new(),
            rope_sin: Vec::new(),
            slots: HashMap::new(),
            max_batch: DEFAULT_MAX_BATCH,
        })
    }

    /// Loads a GGUF file (`general.architecture` llama, qwen2 or qwen3).
    pub fn from_gguf(path: &Path) -> Result<Self, EngineError> {
        let (mut reader, ct) = super::gguf::open(path)?;
        Self::from_gguf_content(path, &ct, &mut reader)
    }

    /// Loads the weights of an already opened GGUF file.
    pub fn from_gguf_content<R: Read + Seek>(
        path: &Path,
        ct: &Content,
        reader: &mut R,
    ) -> Result<Self, EngineError> {
        let md = |key: &str| ct.metadata.get(key);
        let merr = |key: &str, message: &str| EngineError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.to_string(),
        };
        let arch_key = "general.architecture";
        let arch = md(arch_key)
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| merr(arch_key, "missing"))?
            .clone();
        let family = match arch.as_str() {
            "llama" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "qwen3" => Family::Qwen3,
            _ => {
                return Err(EngineError::UnsupportedArchitecture {
                    path: path.to_path_buf(),
                    found: arch,
                });
            }
        };
        let uint = |key: &str| -> Result<Option<usize>, EngineError> {
            let key = format!("{arch}.{key}");
            match md(&key) {
                None => Ok(None),
                Some(v) => gguf_uint(v)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| merr(&key, "not a non-negative integer")),
            }
        };
        let req = |key: &str| -> Result<usize, EngineError> {
            uint(key)?.ok_or_else(|| merr(&format!("{arch}.{key}"), "missing"))
        };
        let float = |key: &str| -> Result<Option<f64>, EngineError> {
            let key = format!("{arch}.{key}");
            match md(&key) {
                None => Ok(None),
                Some(Value::F32(x)) => Ok(Some(f64::from(*x))),
                Some(Value::F64(x)) => Ok(Some(*x)),
                Some(_) => Err(merr(&key, "not a float")),
            }
        };
        let hidden_size = req("embedding_length")?;
        let num_heads = req("attention.head_count")?;
        if num_heads == 0 {
            return Err(merr(&format!("{arch}.attention.head_count"), "is 0"));
        }
        let num_kv_heads = uint("attention.head_count_kv")?.unwrap_or(num_heads);
        let head_dim = uint("attention.key_length")?.unwrap_or(hidden_size / num_heads);
        let embd =
            ct.tensor_infos
                .get("token_embd.weight")
                .ok_or_else(|| EngineError::Weights {
                    path: path.to_path_buf(),
                    message: "missing tensor token_embd.weight".into(),
                })?;
        let vocab_size = embd.shape.dims().first().copied().unwrap_or(0);
        let cfg = Config {
            family,
            hidden_size,
            intermediate_size: req("feed_forward_length")?,
            num_layers: req("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            rms_norm_eps: float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            rope_theta: float("rope.freq_base")?.unwrap_or(10_000.0),
            rope_style: match family {
                Family::Llama => RopeStyle::Interleaved,
                _ => RopeStyle::Neox,
            },
            max_positions: uint("context_length")?.unwrap_or(DEFAULT_CONTEXT),
        };
        check_config(&cfg).map_err(|(k, m)| merr(&format!("{arch}.{k}"), &m))?;
        if let Some(rot) = uint("rope.dimension_count")?
            && rot != head_dim
        {
            return Err(merr(
                &format!("{arch}.rope.dimension_count"),
                &format!(
                    "{rot}: only rotary embeddings over the whole {head_dim}-wide head are supported"
                ),
            ));
        }
        let scaling_key = format!("{arch}.rope.scaling.type");
        let mut scaling = match md(&scaling_key)
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
        {
            None | Some("none") => RopeScaling::None,
            Some("linear") => match float("rope.scaling.factor")? {
                Some(f) if f > 0.0 => RopeScaling::Linear(f),
                _ => RopeScaling::None,
            },
            Some(other) => {
                return Err(merr(
                    &scaling_key,
                    &format!(
                        "'{other}' is not supported; supported: none, linear (and llama3 via rope_freqs.weight)"
                    ),
                ));
            }
        };
        let mut src = GgufSource { path, ct, reader };
        if src.has("rope_freqs.weight") {
            let f = src
                .get("rope_freqs.weight", &[head_dim / 2])?
                .into_vec()
                .map_err(|e| EngineError::Weights {
                    path: path.to_path_buf(),
                    message: format!("tensor rope_freqs.weight: {}", one_line(&e.to_string())),
                })?;
            scaling = RopeScaling::Factors(f);
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut parameters = 0u64;
        for info in ct.tensor_infos.values() {
            *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
            parameters += info.shape.elem_count() as u64;
        }
        let info = ModelInfo {
            source: path.to_path_buf(),
            weight_types: join_counts(&counts),
            parameters,
            max_positions: cfg.max_positions,
        };
        Self::build(cfg, &mut src, Naming::Gguf, scaling, info)
    }

    /// Loads a Hugging Face model directory: `config.json` and
    /// `model.safetensors` or the shards listed in
    /// `model.safetensors.index.json` (memory-mapped; BF16/F16 become f32).
    pub fn from_hf_dir(dir: &Path) -> Result<Self, EngineError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| EngineError::Io {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let json: Json = serde_json::from_str(&text).map_err(|e| EngineError::Format {
            path: config_path.clone(),
            message: format!("not JSON: {e}"),
        })?;
        let (cfg, scaling) = hf_config(&config_path, &json)?;
        let mut src = open_safetensors(dir)?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut parameters = 0u64;
        for (_, st) in &src.files {
            for (_, view) in st.tensors() {
                *counts
                    .entry(format!("{:?}", view.dtype()).to_uppercase())
                    .or_default() += 1;
                parameters += view.shape().iter().product::<usize>() as u64;
            }
        }
        let info = ModelInfo {
            source: dir.to_path_buf(),
            weight_types: join_counts(&counts),
            parameters,
            max_positions: cfg.max_positions,
        };
        Self::build(cfg, &mut src, Naming::Hf, scaling, info)
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// What a run record says about the weights.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Sets the longest sequence accepted (the context length by default).
    pub fn set_max_positions(&mut self, n: usize) {
        self.cfg.max_positions = n;
        self.info.max_positions = n;
    }

    /// Sets how many sequences one [`BatchModel::forward`] call takes.
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }

    /// Threads candle's CPU kernels use (`candle_core::utils::get_num_threads`).
    pub fn threads(&self) -> usize {
        candle_core::utils::get_num_threads()
    }

    /// Shortens the sequence in `slot` to its first `len` tokens (a no-op
    /// when it is not longer), so that a caller can rewind and continue
    /// from an earlier position.
    pub fn truncate(&mut self, slot: usize, len: usize) {
        let kv_dim = self.cfg.num_kv_heads * self.cfg.head_dim;
        if let Some(s) = self.slots.get_mut(&slot)
            && len < s.len
        {
            s.truncate(len, kv_dim);
        }
    }

    /// Makes sure cos/sin are tabulated for positions `< n`.
    fn extend_rope(&mut self, n: usize) {
        let half = self.inv_freq.len();
        let have = self.rope_cos.len() / half.max(1);
        if n <= have || half == 0 {
            return;
        }
        // Grow by chunks too, so a long decode does not extend step by step.
        let n = n.div_ceil(KV_CHUNK) * KV_CHUNK;
        for p in have..n {
            for &f in &self.inv_freq {
                let a = f64::from(p as f32 * f);
                self.rope_cos.push(a.cos() as f32);
                self.rope_sin.push(a.sin() as f32);
            }
        }
    }

    fn check_batch(&self, batch: &[(usize, &[u32])]) -> Result<(), EngineError> {
        if batch.len() > self.max_batch {
            return Err(EngineError::Request(format!(
                "{} sequences in one batch; at most {}",
                batch.len(),
                self.max_batch
            )));
        }
        let mut seen = HashSet::with_capacity(batch.len());
        for &(slot, tokens) in batch {
            if !seen.insert(slot) {
                return Err(EngineError::Request(format!(
                    "slot {slot} appears twice in one batch"
                )));
            }
            if tokens.is_empty() {
                return Err(EngineError::Request(format!("slot {slot}: no tokens")));
            }
            let vocab = self.cfg.vocab_size;
            if let Some((i, id)) = tokens
                .iter()
                .enumerate()
                .find(|(_, id)| **id as usize >= vocab)
            {
                return Err(EngineError::Request(format!(
                    "slot {slot}: token {i} is id {id}, outside the {vocab}-token vocabulary"
                )));
            }
            let have = self.seq_len(slot);
            let limit = self.cfg.max_positions;
            if have + tokens.len() > limit {
                return Err(EngineError::Request(format!(
                    "slot {slot}: {have} tokens plus {} new exceed the model's {limit}-token context",
                    tokens.len()
                )));
            }
        }
        Ok(())
    }

    /// The forward pass proper (inputs checked, sequences taken out of
    /// `slots` into `seqs` in batch order).
    fn run(
        &self,
        batch: &[(usize, &[u32])],
        seqs: &mut [Seq],
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let cfg = &self.cfg;
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let (q_dim, kv_dim) = (nh * hd, nkv * hd);
        let eps = cfg.rms_norm_eps as f32;
        // One row per new token: which sequence, at which position.
        let mut ids = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        for (e, (&(_, tokens), seq)) in batch.iter().zip(seqs.iter()).enumerate() {
            for (j, &id) in tokens.iter().enumerate() {
                ids.push(id);
                rows.push(Row {
                    entry: e,
                    pos: seq.len + j,
                });
            }
        }
        let t = rows.len();
        let mut x = self.embed.rows(&ids)?;
        let mut attn = vec![0f32; t * q_dim];
        for (li, layer) in self.layers.iter().enumerate() {
            let hn = rms_norm_rows(&x, &layer.attn_norm, eps);
            let mut q = layer.q.forward(&hn, t)?;
            let mut k = layer.k.forward(&hn, t)?;
            let v = layer.v.forward(&hn, t)?;
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                rms_norm_in_place(&mut q, qn, eps);
                rms_norm_in_place(&mut k, kn, eps);
            }
            self.rope(&mut q, &rows, nh);
            self.rope(&mut k, &rows, nkv);
            // Append this step's keys and values, then attend.
            let mut r0 = 0;
            for (e, &(_, tokens)) in batch.iter().enumerate() {
                let n = tokens.len();
                let span = r0 * kv_dim..(r0 + n) * kv_dim;
                append_rows(&mut seqs[e].k[li], &k[span.clone()], kv_dim);
                append_rows(&mut seqs[e].v[li], &v[span], kv_dim);
                r0 += n;
            }
            let caches: Vec<(&[f32], &[f32])> = seqs
                .iter()
                .map(|s| (s.k[li].as_slice(), s.v[li].as_slice()))
                .collect();
            attention(&q, &rows, &caches, nh, nkv, hd, &mut attn);
            let o = layer.o.forward(&attn, t)?;
            add_in_place(&mut x, &o);
            let hn = rms_norm_rows(&x, &layer.ffn_norm, eps);
            let mut g = layer.gate.forward(&hn, t)?;
            let u = layer.up.forward(&hn, t)?;
            silu_mul(&mut g, &u);
            let d = layer.down.forward(&g, t)?;
            add_in_place(&mut x, &d);
        }
        // Only each sequence's last row needs logits.
        let mut last = Vec::with_capacity(batch.len() * h);
        let mut r0 = 0;
        for &(_, tokens) in batch {
            r0 += tokens.len();
            last.extend_from_slice(&x[(r0 - 1) * h..r0 * h]);
        }
        let last = rms_norm_rows(&last, &self.final_norm, eps);
        let logits = self.lm_head.matmul(&last, batch.len())?;
        Ok(logits
            .chunks_exact(cfg.vocab_size)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Rotates each head of `x` (`[rows, heads * head_dim]`) by its row's position.
    fn rope(&self, x: &mut [f32], rows: &[Row], heads: usize) {
        let hd = self.cfg.head_dim;
        let half = hd / 2;
        let style = self.cfg.rope_style;
        x.par_chunks_mut(heads * hd)
            .zip(rows.par_iter())
            .with_min_len(16)
            .for_each(|(row, r)| {
                let cos = &self.rope_cos[r.pos * half..(r.pos + 1) * half];
                let sin = &self.rope_sin[r.pos * half..(r.pos + 1) * half];
                for head in row.chunks_exact_mut(hd) {
                    for i in 0..half {
                        let (a, b) = match style {
                            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                            RopeStyle::Neox => (i, i + half),
                        };
                        let (x0, x1) = (head[a], head[b]);
                        head[a] = x0 * cos[i] - x1 * sin[i];
                        head[b] = x0 * sin[i] + x1 * cos[i];
                    }
                }
            });
    }
}

/// Used when a GGUF file does not give its context length.
const DEFAULT_CONTEXT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Row {
    entry: usize,
    pos: usize,
}

fn gguf_uint(v: &Value) -> Option<u64> {
    match v {
        Value::U8(n) => Some(u64::from(*n)),
        Value::U16(n) => Some(u64::from(*n)),
        Value::U32(n) => Some(u64::from(*n)),
        Value::U64(n) => Some(*n),
        Value::I8(n) => u64::try_from(*n).ok(),
        Value::I16(n) => u64::try_from(*n).ok(),
        Value::I32(n) => u64::try_from(*n).ok(),
        Value::I64(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

fn join_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Consistency of a config; `Err((key, message))` names the offending key
/// (GGUF suffix).
fn check_config(cfg: &Config) -> Result<(), (&'static str, String)> {
    if cfg.num_kv_heads == 0 || !cfg.num_heads.is_multiple_of(cfg.num_kv_heads) {
        return Err((
            "attention.head_count_kv",
            format!(
                "{} key/value heads do not divide {} query heads",
                cfg.num_kv_heads, cfg.num_heads
            ),
        ));
    }
    if cfg.head_dim == 0 || !cfg.head_dim.is_multiple_of(2) {
        return Err((
            "attention.key_length",
            format!("head width {} is not a positive even number", cfg.head_dim),
        ));
    }
    if cfg.vocab_size == 0 || cfg.hidden_size == 0 || cfg.num_layers == 0 {
        return Err((
            "embedding_length",
            "the model has no width, layers or vocabulary".into(),
        ));
    }
    Ok(())
}

/// Reads a Hugging Face `config.json`.
fn hf_config(path: &Path, j: &Json) -> Result<(Config, RopeScaling), EngineError> {
    let merr = |key: &str, message: String| EngineError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let arch = j["architectures"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Json::as_str)
        .map(str::to_string);
    let model_type = j["model_type"].as_str().map(str::to_string);
    let family = match (arch.as_deref(), model_type.as_deref()) {
        (Some("LlamaForCausalLM"), _) | (None, Some("llama")) => Family::Llama,
        (Some("Qwen2ForCausalLM"), _) | (None, Some("qwen2")) => Family::Qwen2,
        (Some("Qwen3ForCausalLM"), _) | (None, Some("qwen3")) => Family::Qwen3,
        (a, m) => {
            let found = match (a, m) {
                (Some(a), _) => format!("architectures ['{a}']"),
                (None, Some(m)) => format!("model_type '{m}'"),
                (None, None) => "neither architectures nor model_type".into(),
            };
            return Err(EngineError::Request(format!(
                "{}: unsupported model: config.json says {found}; supported: {}",
                path.display(),
                SUPPORTED_HF_ARCHITECTURES.join(", ")
            )));
        }
    };
    let uint = |key: &str| -> Result<Option<usize>, EngineError> {
        match &j[key] {
            Json::Null => Ok(None),
            v => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| merr(key, format!("{v} is not a non-negative integer"))),
        }
    };
    let req = |key: &str| uint(key)?.ok_or_else(|| merr(key, "missing".into()));
    let float = |key: &str| -> Result<Option<f64>, EngineError> {
        match &j[key] {
            Json::Null => Ok(None),
            v => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| merr(key, format!("{v} is not a number"))),
        }
    };
    let hidden_size = req("hidden_size")?;
    let num_heads = req("num_attention_heads")?;
    if num_heads == 0 {
        return Err(merr("num_attention_heads", "is 0".into()));
    }
    let cfg = Config {
        family,
        hidden_size,
        intermediate_size: req("intermediate_size")?,
        num_layers: req("num_hidden_layers")?,
        num_heads,
        num_kv_heads: uint("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim: uint("head_dim")?.unwrap_or(hidden_size / num_heads),
        vocab_size: req("vocab_size")?,
        rms_norm_eps: float("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta: float("rope_theta")?.unwrap_or(10_000.0),
        rope_style: RopeStyle::Neox,
        max_positions: req("max_position_embeddings")?,
    };
    check_config(&cfg).map_err(|(k, m)| {
        let key = match k {
            "attention.head_count_kv" => "num_key_value_heads",
            "attention.key_length" => "head_dim",
            _ => "hidden_size",
        };
        merr(key, m)
    })?;
    let rs = &j["rope_scaling"];
    let scaling = if rs.is_null() {
        RopeScaling::None
    } else {
        let kind = rs["rope_type"]
            .as_str()
            .or_else(|| rs["type"].as_str())
            .unwrap_or("default");
        let num = |k: &str| {
            rs[k].as_f64().ok_or_else(|| {
                merr(
                    &format!("rope_scaling.{k}"),
                    "missing or not a number".into(),
                )
            })
        };
        match kind {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear(num("factor")?),
            "llama3" => RopeScaling::Llama3(Llama3Scaling {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            }),
            other => {
                return Err(merr(
                    "rope_scaling.rope_type",
                    format!("'{other}' is not supported; supported: default, linear, llama3"),
                ));
            }
        }
    };
    Ok((cfg, scaling))
}

/// Opens `model.safetensors`, or every shard named in
/// `model.safetensors.index.json`.
fn open_safetensors(dir: &Path) -> Result<SafetensorsSource, EngineError> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let (files, index_path): (Vec<PathBuf>, PathBuf) = if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| EngineError::Io {
            path: index.clone(),
            message: e.to_string(),
        })?;
        let j: Json = serde_json::from_str(&text).map_err(|e| EngineError::Format {
            path: index.clone(),
            message: format!("not JSON: {e}"),
        })?;
        let map = j["weight_map"]
            .as_object()
            .ok_or_else(|| EngineError::Metadata {
                path: index.clone(),
                key: "weight_map".into(),
                message: "missing or not an object".into(),
            })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for (name, f) in map {
            let f = f.as_str().ok_or_else(|| EngineError::Metadata {
                path: index.clone(),
                key: format!("weight_map.{name}"),
                message: "not a file name".into(),
            })?;
            // A shard name is a plain file name inside the directory.
            if f.contains('/') || f.contains('\\') || f == ".." {
                return Err(EngineError::Metadata {
                    path: index.clone(),
                    key: format!("weight_map.{name}"),
                    message: format!("'{f}' is not a file name in the directory"),
                });
            }
            let p = dir.join(f);
            if !files.contains(&p) {
                files.push(p);
            }
        }
        files.sort();
        (files, index)
    } else if single.is_file() {
        (vec![single.clone()], single)
    } else {
        return Err(EngineError::Io {
            path: dir.to_path_buf(),
            message: "neither model.safetensors nor model.safetensors.index.json found".into(),
        });
    };
    let mut opened = Vec::with_capacity(files.len());
    let mut routing = HashMap::new();
    for (i, f) in files.into_iter().enumerate() {
        if !f.is_file() {
            return Err(EngineError::Io {
                path: f,
                message: format!("missing (listed in {})", index_path.display()),
            });
        }
        // SAFETY: the file is mapped read-only; like every reader of a
        // memory-mapped model we rely on nobody truncating it meanwhile.
        let st = unsafe { MmapedSafetensors::new(&f) }.map_err(|e| EngineError::Safetensors {
            path: f.clone(),
            message: one_line(&e.to_string()),
        })?;
        for (name, _) in st.tensors() {
            routing.insert(name, i);
        }
        opened.push((f, st));
    }
    Ok(SafetensorsSource {
        files: opened,
        routing,
        index: index_path,
    })
}

fn rms_norm_row(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (ss + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * w;
    }
}

/// RMSNorm of each `w.len()`-wide row of `x`.
fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(w.len())
        .zip(x.par_chunks(w.len()))
        .with_min_len(8)
        .for_each(|(o, x)| rms_norm_row(x, w, eps, o));
    out
}

/// RMSNorm of each `w.len()`-wide chunk (each head) of `x`, in place.
fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    x.par_chunks_mut(w.len()).with_min_len(64).for_each(|c| {
        let ss: f32 = c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32;
        let scale = 1.0 / (ss + eps).sqrt();
        for (v, w) in c.iter_mut().zip(w) {
            *v *= scale * w;
        }
    });
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `g = silu(g) * u`, elementwise.
fn silu_mul(g: &mut [f32], u: &[f32]) {
    g.par_chunks_mut(4096)
        .zip(u.par_chunks(4096))
        .for_each(|(g, u)| {
            for (g, u) in g.iter_mut().zip(u) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
        });
}

/// Attention of every row's query heads against its own sequence's cache,
/// positions `0..=pos` (causal). `q` is `[rows, heads * head_dim]`, `out`
/// the same shape.
fn attention(
    q: &[f32],
    rows: &[Row],
    caches: &[(&[f32], &[f32])],
    nh: usize,
    nkv: usize,
    hd: usize,
    out: &mut [f32],
) {
    let group = nh / nkv;
    let kv_dim = nkv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let avx2 = has_avx2_fma();
    out.par_chunks_mut(hd)
        .enumerate()
        .for_each_init(Vec::new, |scores, (idx, o)| {
            let (r, head) = (idx / nh, idx % nh);
            let row = rows[r];
            let (k, v) = caches[row.entry];
            let qh = &q[idx * hd..(idx + 1) * hd];
            let off = (head / group) * hd;
            let task = Head {
                q: qh,
                k,
                v,
                len: row.pos + 1,
                off,
                stride: kv_dim,
                scale,
            };
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                unsafe { attend_avx2(&task, scores, o) };
                return;
            }
            let _ = avx2;
            attend(&task, scores, o);
        });
}

/// One query head against one cache.
struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    /// Positions to attend to.
    len: usize,
    /// Offset of this head's kv head within a position's row.
    off: usize,
    /// Floats per position.
    stride: usize,
    scale: f32,
}

fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn attend_avx2(t: &Head<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend(t, scores, out)
}

#[inline(always)]
fn attend(t: &Head<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    let hd = t.q.len();
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for p in 0..t.len {
        let base = p * t.stride + t.off;
        let s = dot(t.q, &t.k[base..base + hd]) * t.scale;
        max = max.max(s);
        scores.push(s);
    }
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    let inv = 1.0 / sum;
    for (p, &s) in scores.iter().enumerate() {
        let base = p * t.stride + t.off;
        let w = s * inv;
        for (o, v) in out.iter_mut().zip(&t.v[base..base + hd]) {
            *o += w * v;
        }
    }
}

/// Dot product with 16 independent accumulators, so that it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, ar) = a.as_chunks::<16>();
    let (bc, br) = b.as_chunks::<16>();
    for (x, y) in ac.iter().zip(bc) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

impl BatchModel for Transformer {
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, EngineError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.check_batch(batch)?;
        let longest = batch
            .iter()
            .map(|&(s, t)| self.seq_len(s) + t.len())
            .max()
            .unwrap_or(0);
        self.extend_rope(longest);
        let layers = self.cfg.num_layers;
        let mut seqs: Vec<Seq> = batch
            .iter()
            .map(|&(slot, _)| self.slots.remove(&slot).unwrap_or_else(|| Seq::new(layers)))
            .collect();
        let before: Vec<usize> = seqs.iter().map(|s| s.len).collect();
        let result = self.run(batch, &mut seqs);
        let kv_dim = self.cfg.num_kv_heads * self.cfg.head_dim;
        let ok = result.is_ok();
        for ((&(slot, tokens), mut seq), len) in batch.iter().zip(seqs).zip(before) {
            if ok {
                seq.len = len + tokens.len();
            } else {
                // Undo a half-finished step: the caches hold what they held.
                seq.truncate(len, kv_dim);
            }
            if seq.len > 0 {
                self.slots.insert(slot, seq);
            }
        }
        result.map_err(|e| EngineError::Inference(one_line(&e.to_string())))
    }

    fn free(&mut self, slot: usize) {
        self.slots.remove(&slot);
    }

    fn seq_len(&self, slot: usize) -> usize {
        self.slots.get(&slot).map_or(0, |s| s.len)
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama 3.1's scaling two ways: transformers' formula on the
    /// frequencies, and the per-frequency divisors llama.cpp's converter
    /// writes into `rope_freqs.weight` (`1 / ((1 - smooth) / factor +
    /// smooth)`, `factor` for low frequencies, 1 for high ones).
    #[test]
    fn llama3_scaling_equals_gguf_rope_freqs() {
        let s = Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let (hd, theta) = (128, 500_000.0f64);
        let divisors: Vec<f32> = (0..hd / 2)
            .map(|i| {
                let f = 1.0 / theta.powf((2 * i) as f64 / hd as f64);
                let wavelen = 2.0 * std::f64::consts::PI / f;
                let low = s.original_max_position_embeddings / s.low_freq_factor;
                let high = s.original_max_position_embeddings / s.high_freq_factor;
                let d = if wavelen < high {
                    1.0
                } else if wavelen > low {
                    s.factor
                } else {
                    let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                        / (s.high_freq_factor - s.low_freq_factor);
                    1.0 / ((1.0 - smooth) / s.factor + smooth)
                };
                d as f32
            })
            .collect();
        let a = inv_freqs(hd, theta, &RopeScaling::Llama3(s));
        let b = inv_freqs(hd, theta, &RopeScaling::Factors(divisors.clone()));
        let plain = inv_freqs(hd, theta, &RopeScaling::None);
        for i in 0..hd / 2 {
            assert!(
                (a[i] - b[i]).abs() <= 1e-6 * a[i].abs(),
                "{i}: {} vs {}",
                a[i],
                b[i]
            );
        }
        // The highest frequencies are kept, the lowest divided by the factor.
        assert_eq!(a[0], plain[0]);
        assert!((a[hd / 2 - 1] * 8.0 - plain[hd / 2 - 1]).abs() <= 1e-6 * plain[hd / 2 - 1]);
        assert!(
            divisors.iter().any(|d| *d > 1.0 && *d < 8.0),
            "some are smoothed"
        );
    }

    #[test]
    fn kv_cache_grows_by_chunks() {
        let mut c = Vec::new();
        append_rows(&mut c, &[1.0; 4], 2);
        assert_eq!(c.capacity(), KV_CHUNK * 2);
        append_rows(&mut c, &vec![0.0; KV_CHUNK * 2 - 4], 2);
        assert_eq!(c.capacity(), KV_CHUNK * 2);
        append_rows(&mut c, &[2.0; 2], 2);
        assert_eq!(c.capacity(), KV_CHUNK * 4);
        assert_eq!(c.len(), KV_CHUNK * 2 + 2);
    }
}
