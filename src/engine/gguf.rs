//! Loading a GGUF file: its metadata, its own tokenizer and its weights.
//!
//! The weights are read with candle (`candle_core::quantized::gguf_file`) into
//! our own [`Transformer`], so every tensor type
//! candle knows (F32, F16, BF16, Q4_0 … Q8_0, the K-quants) loads without
//! dequantizing to f32 first. The tokenizer is rebuilt from the file's
//! `tokenizer.ggml.*` keys as a [`tokenizers::Tokenizer`] that splits text the
//! way llama.cpp does for the file's `tokenizer.ggml.pre`, so a prompt gets
//! the same token ids here as in `llama-server` on the same file (checked
//! against its `/tokenize` endpoint by the tests in `tests/it/engine.rs`).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::BatchModel;
use super::model::Transformer;

/// The `general.architecture` values this engine runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3"];

/// The longest sequence accepted when a file does not give its context
/// length (`<arch>.context_length`).
const DEFAULT_MAX_POSITIONS: usize = 4096;

/// Token texts llama.cpp treats as end of generation whatever the ids in the
/// metadata say (the list in llama.cpp's `llama_vocab::impl::load`): a chat
/// model stops at `<|im_end|>` even when `eos_token_id` is `<|endoftext|>`.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Everything that can go wrong loading or running a GGUF model; each
/// message is one line naming the file and the item.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The file could not be opened or read.
    #[error("{path}: {message}")]
    Io {
        /// The GGUF file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The file is not a GGUF file, or it is corrupt or truncated.
    #[error("{path}: not a readable GGUF file: {message}")]
    Format {
        /// The GGUF file.
        path: PathBuf,
        /// candle's reason.
        message: String,
    },
    /// A safetensors file is corrupt or truncated.
    #[error("{path}: not a readable safetensors file: {message}")]
    Safetensors {
        /// The safetensors file.
        path: PathBuf,
        /// candle's reason.
        message: String,
    },
    /// `general.architecture` names a model family the engine cannot run.
    #[error(
        "{path}: unsupported architecture '{found}' (general.architecture); supported: {}",
        SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture {
        /// The GGUF file.
        path: PathBuf,
        /// What the file says.
        found: String,
    },
    /// A metadata key the engine needs is missing or has the wrong type.
    #[error("{path}: metadata key {key}: {message}")]
    Metadata {
        /// The GGUF file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer described by the metadata cannot be built.
    #[error("{path}: tokenizer: {message}")]
    Tokenizer {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights could not be loaded (missing tensor, bad shape, truncated data).
    #[error("{path}: loading the weights: {message}")]
    Weights {
        /// The GGUF file.
        path: PathBuf,
        /// candle's reason.
        message: String,
    },
    /// A request the model cannot serve (bad token id, too long, empty prompt).
    #[error("{0}")]
    Request(String),
    /// A forward pass failed.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The metadata of a GGUF model that the engine and its callers use.
#[derive(Debug, Clone)]
pub struct GgufMeta {
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// `<arch>.context_length`: the training context.
    pub context_length: Option<usize>,
    /// The longest sequence this engine accepts: the training context
    /// (4096 when the file does not say).
    pub max_positions: usize,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; when absent, llama.cpp's default (true
    /// for the Llama 3 pre-tokenizers, false for other BPE vocabularies).
    pub add_bos_token: bool,
    /// Ids that end generation: `eos_token_id`, `eot_token_id`,
    /// `eom_token_id` and the control tokens llama.cpp treats as end of
    /// generation by their text (`<|im_end|>`, `<|eot_id|>`, …), sorted.
    pub eos_token_ids: Vec<u32>,
    /// `tokenizer.chat_template`, when the file has one.
    pub chat_template: Option<String>,
    /// `tokenizer.ggml.model` (only `gpt2`, byte-level BPE, is supported).
    pub tokenizer_model: String,
    /// `tokenizer.ggml.pre`: which pre-tokenizer split llama.cpp applies.
    pub tokenizer_pre: String,
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// The tensor types in the file with how many tensors of each, e.g.
    /// `F32 x13, F16 x12`; the quantisation a record should name.
    pub tensor_types: String,
}

/// The slot of [`GgufModel`]'s one-sequence API ([`GgufModel::forward`]).
const SLOT: usize = 0;

/// A GGUF model loaded for inference on the CPU: metadata, tokenizer and
/// the [`Transformer`] (which can run many sequences at once through
/// [`BatchModel`]; [`GgufModel::forward`] uses its slot 0).
pub struct GgufModel {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Its metadata.
    pub meta: GgufMeta,
    /// The tokenizer rebuilt from the metadata.
    pub tokenizer: Tokenizer,
    /// The weights and the KV caches.
    pub model: Transformer,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Reads typed values out of the metadata, with errors naming file and key.
struct Md<'a> {
    path: &'a Path,
    md: &'a HashMap<String, Value>,
}

impl Md<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> EngineError {
        EngineError::Metadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Result<&Value, EngineError> {
        self.md.get(key).ok_or_else(|| self.err(key, "missing"))
    }

    fn string(&self, key: &str) -> Result<Option<String>, EngineError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => v
                .to_string()
                .map(|s| Some(s.clone()))
                .map_err(|_| self.err(key, "not a string")),
        }
    }

    /// An unsigned integer of any width (writers differ: u32, u64, i32).
    fn uint(&self, key: &str) -> Result<Option<u64>, EngineError> {
        let Some(v) = self.md.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::U8(n) => Some(u64::from(*n)),
            Value::U16(n) => Some(u64::from(*n)),
            Value::U32(n) => Some(u64::from(*n)),
            Value::U64(n) => Some(*n),
            Value::I8(n) => u64::try_from(*n).ok(),
            Value::I16(n) => u64::try_from(*n).ok(),
            Value::I32(n) => u64::try_from(*n).ok(),
            Value::I64(n) => u64::try_from(*n).ok(),
            _ => None,
        };
        n.map(Some)
            .ok_or_else(|| self.err(key, "not a non-negative integer"))
    }

    fn token_id(&self, key: &str, vocab: usize) -> Result<Option<u32>, EngineError> {
        match self.uint(key)? {
            None => Ok(None),
            Some(id) if (id as usize) < vocab => Ok(Some(id as u32)),
            Some(id) => Err(self.err(
                key,
                format!("token id {id} outside the {vocab}-token vocabulary"),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, EngineError> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => v
                .to_bool()
                .map(Some)
                .map_err(|_| self.err(key, "not a boolean")),
        }
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>, EngineError> {
        self.get(key)?
            .to_vec()
            .map_err(|_| self.err(key, "not an array"))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, EngineError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_string()
                    .cloned()
                    .map_err(|_| self.err(key, format!("item {i} is not a string")))
            })
            .collect()
    }

    fn ints(&self, key: &str) -> Result<Vec<i32>, EngineError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_i32()
                    .map_err(|_| self.err(key, format!("item {i} is not an i32")))
            })
            .collect()
    }
}

/// The `tokenizer.ggml.pre` values llama.cpp maps to its Llama 3 pre-tokenizer,
/// for which it also ignores merges (whole words found in the vocabulary are
/// one token) and adds BOS unless `tokenizer.ggml.add_bos_token` says not to.
const LLAMA3_PRE: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
];

/// The split regex llama.cpp applies before byte-level BPE for a
/// `tokenizer.ggml.pre` value (from llama.cpp's `llm_tokenizer_bpe`), or
/// `None` for the GPT-2 split that [`ByteLevel`] itself applies.
fn pre_tokenizer_regex(pre: &str) -> Result<Option<&'static str>, String> {
    // Llama 3 (and the pre types llama.cpp maps to its regex).
    const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // Qwen2: the Llama 3 split with digits one at a time.
    const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    match pre {
        "gpt-2" | "default" | "" => Ok(None),
        p if LLAMA3_PRE.contains(&p) => Ok(Some(LLAMA3)),
        "qwen2" | "deepseek-r1-qwen" => Ok(Some(QWEN2)),
        other => Err(format!(
            "pre-tokenizer '{other}' (tokenizer.ggml.pre) is not supported; supported: gpt-2, llama-bpe, qwen2"
        )),
    }
}

/// Builds the byte-level BPE tokenizer described by the metadata.
fn build_tokenizer(
    md: &Md<'_>,
    pre: &str,
) -> Result<(Tokenizer, Vec<String>, Vec<i32>), EngineError> {
    let path = md.path;
    let terr = |message: String| EngineError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let tokens = md.strings("tokenizer.ggml.tokens")?;
    let merges = md.strings("tokenizer.ggml.merges")?;
    let types = match md.md.get("tokenizer.ggml.token_type") {
        Some(_) => md.ints("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(terr(format!(
            "{} token types for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    terr(format!(
                        "merge {i} ('{m}') is not two tokens separated by a space"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // llama.cpp looks whole pre-tokenized words up in the vocabulary before
    // merging only for the Llama 3 pre-tokenizer.
    let ignore_merges = LLAMA3_PRE.contains(&pre);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| terr(format!("byte-level BPE: {e}")))?;
    let mut tok = Tokenizer::new(bpe);
    match pre_tokenizer_regex(pre).map_err(terr)? {
        None => {
            tok.with_pre_tokenizer(Some(ByteLevel::new(false, false, true)));
        }
        Some(re) => {
            let split = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| terr(format!("pre-tokenizer regex: {e}")))?;
            tok.with_pre_tokenizer(Some(Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, false, false).into(),
            ])));
        }
    }
    tok.with_decoder(Some(ByteLevel::default()));
    // Control and user-defined tokens are matched whole in the text, as
    // llama.cpp's tokenizer does with parse_special (its server's default).
    let added = |kind: i32| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == kind)
            .map(|(s, _)| AddedToken::from(s.clone(), kind == TOKEN_TYPE_CONTROL).normalized(false))
            .collect()
    };
    tok.add_special_tokens(added(TOKEN_TYPE_CONTROL))
        .and_then(|_| tok.add_tokens(added(TOKEN_TYPE_USER_DEFINED)))
        .map_err(|e| terr(format!("special tokens: {e}")))?;
    Ok((tok, tokens, types))
}

/// Reads the metadata of an opened GGUF file (no weights).
fn read_meta(path: &Path, ct: &Content) -> Result<(GgufMeta, Tokenizer), EngineError> {
    let md = Md {
        path,
        md: &ct.metadata,
    };
    let architecture = md
        .string("general.architecture")?
        .ok_or_else(|| md.err("general.architecture", "missing"))?;
    if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(EngineError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            found: architecture,
        });
    }
    let tokenizer_model = md
        .string("tokenizer.ggml.model")?
        .ok_or_else(|| md.err("tokenizer.ggml.model", "missing: the file has no tokenizer"))?;
    if tokenizer_model != "gpt2" {
        return Err(EngineError::Tokenizer {
            path: path.to_path_buf(),
            message: format!(
                "tokenizer.ggml.model is '{tokenizer_model}'; supported: gpt2 (byte-level BPE)"
            ),
        });
    }
    let tokenizer_pre = md
        .string("tokenizer.ggml.pre")?
        .unwrap_or_else(|| "default".into());
    let (tokenizer, tokens, types) = build_tokenizer(&md, &tokenizer_pre)?;
    let vocab_size = tokens.len();
    let context_length = md
        .uint(&format!("{architecture}.context_length"))?
        .map(|n| n as usize);
    let max_positions = context_length.unwrap_or(DEFAULT_MAX_POSITIONS);
    let bos_token_id = md.token_id("tokenizer.ggml.bos_token_id", vocab_size)?;
    let mut eos_token_ids = Vec::new();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        eos_token_ids.extend(md.token_id(key, vocab_size)?);
    }
    for (i, (text, ty)) in tokens.iter().zip(&types).enumerate() {
        if matches!(*ty, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED)
            && EOG_TEXTS.contains(&text.as_str())
        {
            eos_token_ids.push(i as u32);
        }
    }
    eos_token_ids.sort_unstable();
    eos_token_ids.dedup();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for info in ct.tensor_infos.values() {
        *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
    }
    let tensor_types = counts
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let meta = GgufMeta {
        name: md.string("general.name")?,
        context_length,
        max_positions,
        bos_token_id,
        add_bos_token: md
            .bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(LLAMA3_PRE.contains(&tokenizer_pre.as_str())),
        eos_token_ids,
        chat_template: md.string("tokenizer.chat_template")?,
        tokenizer_model,
        tokenizer_pre,
        vocab_size,
        tensor_types,
        architecture,
    };
    Ok((meta, tokenizer))
}

/// Opens a GGUF file and reads its header and metadata, errors naming the file.
pub(crate) fn open(path: &Path) -> Result<(BufReader<File>, Content), EngineError> {
    let file = File::open(path).map_err(|e| EngineError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut reader = BufReader::new(file);
    let ct = Content::read(&mut reader).map_err(|e| EngineError::Format {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    Ok((reader, ct))
}

/// candle's errors can carry a backtrace on later lines; keep the first.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Reads a GGUF file's metadata and builds its tokenizer without loading
/// the weights (fast: only the header is read).
pub fn read_metadata(path: &Path) -> Result<(GgufMeta, Tokenizer), EngineError> {
    let (_, ct) = open(path)?;
    read_meta(path, &ct)
}

impl GgufModel {
    /// Loads a GGUF file onto the CPU: metadata, tokenizer, weights.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let (mut reader, ct) = open(path)?;
        let (meta, tokenizer) = read_meta(path, &ct)?;
        let mut model = Transformer::from_gguf_content(path, &ct, &mut reader)?;
        if model.config().vocab_size != meta.vocab_size {
            return Err(EngineError::Weights {
                path: path.to_path_buf(),
                message: format!(
                    "token_embd.weight has {} rows for a {}-token vocabulary",
                    model.config().vocab_size,
                    meta.vocab_size
                ),
            });
        }
        model.set_max_positions(meta.max_positions);
        Ok(Self {
            path: path.to_path_buf(),
            meta,
            tokenizer,
            model,
        })
    }

    /// Token ids of `text` as llama.cpp tokenizes it (special tokens in the
    /// text are matched; no BOS is added here).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EngineError::Request(format!("tokenizing the prompt: {e}")))
    }

    /// The text of `ids` (special tokens included, as llama.cpp's detokenizer
    /// shows them).
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| EngineError::Request(format!("decoding tokens: {e}")))
    }

    /// Forgets the KV cache: the next [`Self::forward`] starts a new sequence.
    pub fn clear_kv_cache(&mut self) {
        self.model.free(SLOT);
    }

    /// Runs `ids` (placed at positions `pos..pos + ids.len()` of the one
    /// sequence, whose earlier positions are in the KV cache) and returns the
    /// logits of the next token after the last one. A `pos` before the end
    /// of the cached sequence rewinds it to `pos` first.
    pub fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, EngineError> {
        let have = self.model.seq_len(SLOT);
        if pos > have {
            return Err(EngineError::Request(format!(
                "position {pos} is past the {have} tokens of the sequence"
            )));
        }
        self.model.truncate(SLOT, pos);
        let mut out = self.model.forward(&[(SLOT, ids)])?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Threads candle's CPU kernels use (`candle_core::utils::get_num_threads`:
    /// `RAYON_NUM_THREADS`, else every core this process may run on).
    pub fn threads(&self) -> usize {
        candle_core::utils::get_num_threads()
    }
}
