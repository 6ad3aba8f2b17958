//! Prompt sources for `bench perf`: what each request sends, and how many
//! tokens it is.
//!
//! Owns: loading a `tokenizer.json` (a path, a directory holding one, or a
//! hub model id fetched through [`crate::hub`]), generating random prompts of
//! an exact token length, and reading prompt files (`line_by_line`,
//! `openqa`/custom JSONL, ShareGPT). Does not own: sending requests, chat
//! templates, or choosing which prompt goes to which request (the runner
//! cycles through a [`PromptSet`]). [`workload`] turns `bench perf`'s prompt
//! options ([`WorkloadOptions`]) into prompts.
//!
//! # Random prompts: exact length
//!
//! For request `i`, a body length `L` is drawn uniformly from
//! `[min_len, max_len]`. Tokens come from the usable vocabulary: no
//! added/special tokens, no `<0xNN>` byte-fallback tokens, no token that
//! decodes to nothing, to U+FFFD (a partial UTF-8 sequence in byte-level
//! vocabularies) or to control characters. Decoding random ids and
//! re-encoding the text rarely gives the same count back (tokens merge or
//! split at their seams), so, as vLLM and EvalScope do, text is re-encoded
//! and adjusted until it encodes to exactly the target. Three differences
//! make it exact and fast:
//!
//! - Padding uses "word-start" tokens (a space plus ASCII letters,
//!   `Ġword`/`▁word`, that encode back to themselves): after a word, one adds
//!   exactly one token under GPT-2-, Llama-3-/Qwen- and SentencePiece-style
//!   pre-tokenizers. Truncation cuts at the last word start at or before the
//!   target, never inside a word or a character (cutting a multi-byte
//!   character is how vLLM's loop can get stuck). So the loop converges
//!   instead of leaving a residual error after a fixed number of retries.
//! - Random tokens are drawn, decoded and re-encoded once per run in chunks
//!   of 16 (the first a word start), at most 1024 chunks; each prompt is a
//!   random sequence of whole chunks that fit, between word-start pads (four
//!   opening the body, so prompts share no cacheable prefix beyond the
//!   intended one, and as many as needed at the end). Chunks join at word
//!   boundaries, so the sum of their counts is the prompt's count, and one
//!   encode per prompt checks it (falling back to the loop above when a
//!   tokenizer disagrees). vLLM's way costs two or more encodes per prompt;
//!   this is what makes 1000 prompts of 1024 tokens take about half a
//!   second on one core.
//! - The achieved length of every prompt is measured by that final encode
//!   and reported ([`InputLengthError`]); it is zero unless a tokenizer
//!   defeats the loop for 32 rounds, when the closest attempt is kept and
//!   counted as mismatched.
//!
//! Counts are without special tokens (`add_special_tokens = false`) and
//! without any chat template: what the server adds on top is its business,
//! and its `usage` reports it.
//!
//! The shared prefix follows vLLM's `--random-prefix-len`: `prefix_len`
//! tokens generated once and prepended to every prompt **in addition to**
//! `L`, so each prompt is `prefix_len + L` tokens. (EvalScope's
//! `--prefix-length` means the same.) The prefix text is identical across
//! prompts, and the body starts at a word boundary, so the prefix's tokens
//! stay identical too (what a server's prefix cache sees).
//!
//! Determinism: lengths come from one xoshiro256++ stream seeded with
//! `seed`; the prefix, the chunk pool and each prompt's choices from their
//! own streams derived from `(seed, index)`. So the same seed and tokenizer
//! give the same prompts on every machine, whatever the thread count, and
//! prompt `i` does not depend on how many prompts were asked for.
//! Generation runs on all cores.
//!
//! # Prompt files (`--dataset-path`)
//!
//! - `line_by_line`: one prompt per line, trimmed (as EvalScope's `strip()`);
//!   blank lines skipped.
//! - `openqa` / custom JSONL: one JSON object per line with `messages` (an
//!   OpenAI message list; `content` a string or a list of `{"type": "text"}`
//!   parts), `prompt` (a string) or `question` (a string: EvalScope's
//!   `openqa` plugin reads exactly `item['question'].strip()` from each line
//!   of HC3-Chinese's `open_qa.jsonl`), looked up in that order. `custom`
//!   is an alias here (EvalScope's `custom` reads plain lines: use
//!   `line_by_line` for that).
//! - ShareGPT: a JSON array (or JSONL) of `{"conversations": [{"from":
//!   "human"|"gpt", "value": ...}]}`. The first human turn (`human`/`user`)
//!   is the prompt; the first assistant turn after it (`gpt`/`chatgpt`/
//!   `bard`/`assistant`/`model`), tokenized, is the expected output length,
//!   as vLLM's `sharegpt` dataset does (vLLM simply takes turns 0 and 1).
//!   Entries without a human turn are skipped and counted. vLLM's hard-coded
//!   length filters (prompt < 4, output < 4, prompt > 1024, sum > 2048
//!   tokens) are not applied.
//!
//! Files are read in order; `limit` stops after that many prompts. Errors
//! name `--dataset-path`, the file and the 1-based line.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ApiKind, Message, Prompt};
use crate::hub::{Hub, HubConfig, HubError, HubFile};
use crate::perf::driver::{TokenCounter, WorkItem};

pub use tokenizers::Tokenizer;

/// The file a hub model repo must have for `--tokenizer-path owner/name`.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Encode-and-adjust rounds before giving up on an exact length. Assembled
/// prompts need one, fresh random text two; this bound only guards against
/// pathological tokenizers.
const MAX_ROUNDS: usize = 32;

/// Word-start tokens kept for padding. The lowest ids (the most frequent
/// merges in BPE vocabularies) are plenty, and checking each one costs an
/// encode, so large vocabularies stop here.
const MAX_PAD_POOL: usize = 4096;

/// Random words each prompt body opens with, so that no two prompts share
/// a prefix beyond the intended one.
const UNIQUE_HEAD: usize = 4;

/// The word a pad candidate is checked after.
const PAD_ANCHOR: &str = "a";

/// Random ids per chunk of the chunk pool.
const CHUNK_TOKENS: usize = 16;

/// Most chunks in a pool (16K tokens: encoding them costs about as much as
/// 16 prompts of 1024 tokens). A small pool also keeps the BPE model's
/// word cache warm, which makes the one encode per prompt cheaper.
const MAX_CHUNKS: usize = 1024;

/// Below this many items per thread, threads cost more than they save.
const MIN_ITEMS_PER_THREAD: usize = 16;

/// Where prompts come from (`--dataset` and its options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromptSpec {
    /// Random prompts of an exact token length (`--dataset random`).
    Random(RandomSpec),
    /// One prompt per line of a text file (`--dataset line_by_line`).
    LineByLine {
        /// `--dataset-path`.
        path: PathBuf,
    },
    /// JSONL with `messages`, `prompt` or `question` per line
    /// (`--dataset openqa` / `custom`).
    Jsonl {
        /// `--dataset-path`.
        path: PathBuf,
    },
    /// ShareGPT-format JSON (`--dataset sharegpt`).
    ShareGpt {
        /// `--dataset-path`.
        path: PathBuf,
    },
}

impl PromptSpec {
    /// The dataset name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            PromptSpec::Random(_) => "random",
            PromptSpec::LineByLine { .. } => "line_by_line",
            PromptSpec::Jsonl { .. } => "openqa",
            PromptSpec::ShareGpt { .. } => "sharegpt",
        }
    }
}

/// Settings for random prompts (EvalScope's `--min-prompt-length`,
/// `--max-prompt-length`, `--prefix-length`, `--seed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomSpec {
    /// Smallest body length in tokens (at least 1).
    pub min_len: u32,
    /// Largest body length in tokens (inclusive).
    pub max_len: u32,
    /// Shared prefix tokens, added on top of the body length (vLLM's
    /// `--random-prefix-len` semantics).
    pub prefix_len: u32,
    /// Seed for lengths, prefix and tokens.
    pub seed: u64,
}

/// One prompt ready for a perf request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerfPrompt {
    /// Text (random, line-by-line, `prompt`/`question`, ShareGPT) or chat
    /// messages (JSONL `messages`).
    pub prompt: Prompt,
    /// Prompt tokens without special tokens or chat template: exact for
    /// random prompts; for files, counted with the tokenizer when one was
    /// given (for messages, the sum over their contents).
    pub prompt_tokens: Option<u64>,
    /// Expected output tokens (ShareGPT's first assistant turn, tokenized),
    /// for runs that take the output length from the dataset.
    pub output_tokens: Option<u32>,
}

impl PerfPrompt {
    /// The prompt in the shape `api` sends: text becomes one user message
    /// for chat; messages cannot be sent to the completions endpoint.
    pub fn for_api(&self, api: ApiKind) -> Result<Prompt, PromptError> {
        match (&self.prompt, api) {
            (Prompt::Text(text), ApiKind::Chat) => Ok(Prompt::Messages(vec![Message {
                role: "user".to_string(),
                content: text.clone(),
            }])),
            (Prompt::Messages(_), ApiKind::Completions) => Err(PromptError::MessagesNeedChat),
            (prompt, _) => Ok(prompt.clone()),
        }
    }
}

/// The prompts of a run and what loading them found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSet {
    /// In order; the runner cycles when it needs more.
    pub prompts: Vec<PerfPrompt>,
    /// File entries that held no prompt (ShareGPT without a human turn,
    /// JSONL lines whose prompt is blank). Blank lines are not counted.
    pub skipped: usize,
    /// For random prompts: how far the achieved lengths are from the
    /// requested ones (all zero when every prompt converged).
    pub length_error: Option<InputLengthError>,
}

/// Achieved versus requested input lengths over a set of random prompts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct InputLengthError {
    /// Prompts compared.
    pub prompts: usize,
    /// Prompts whose achieved length differs from the requested one (the
    /// exact-length loop fell back to its closest attempt).
    pub mismatched: usize,
    /// Mean of |achieved − requested| tokens.
    pub mean_abs: f64,
    /// Largest |achieved − requested| tokens.
    pub max_abs: u64,
    /// Σ (achieved − requested): positive means more tokens than asked.
    pub net: i64,
}

impl fmt::Display for InputLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "input length error over {} prompts: mean |Δ| {:.3} tokens, max |Δ| {}, \
             {} mismatched, net {:+}",
            self.prompts, self.mean_abs, self.max_abs, self.mismatched, self.net
        )
    }
}

/// Compares achieved with requested lengths, pairwise (extra entries in the
/// longer slice are ignored).
pub fn input_length_error(requested: &[u64], achieved: &[u64]) -> InputLengthError {
    let mut out = InputLengthError::default();
    let mut sum_abs = 0u64;
    for (&want, &got) in requested.iter().zip(achieved) {
        let abs = want.abs_diff(got);
        out.prompts += 1;
        out.mismatched += usize::from(abs != 0);
        out.max_abs = out.max_abs.max(abs);
        sum_abs += abs;
        out.net += got as i64 - want as i64;
    }
    if out.prompts > 0 {
        out.mean_abs = sum_abs as f64 / out.prompts as f64;
    }
    out
}

/// Why prompts or a tokenizer could not be had. Messages name the flag
/// (`--tokenizer-path`, `--dataset-path`) and the file, and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The tokenizer spec is neither an existing path nor a hub model id.
    #[error("--tokenizer-path {spec}: {reason}")]
    TokenizerNotFound {
        /// What the user passed.
        spec: String,
        /// What was looked for.
        reason: String,
    },
    /// The file exists but is not a loadable `tokenizer.json`.
    #[error(
        "--tokenizer-path {spec}: cannot load {}: {message} (expected a Hugging Face \
         tokenizer.json, the \"fast tokenizer\" format)",
        path.display()
    )]
    TokenizerLoad {
        /// What the user passed.
        spec: String,
        /// The file tried.
        path: PathBuf,
        /// The tokenizers crate's message.
        message: String,
    },
    /// Fetching `tokenizer.json` from the hub failed (the hub error says
    /// which repo, file and revision, and whether the cache was tried).
    #[error("--tokenizer-path {spec}: {source}")]
    TokenizerHub {
        /// What the user passed.
        spec: String,
        /// The hub's error.
        source: HubError,
    },
    /// Random prompts were asked for without a tokenizer.
    #[error(
        "--dataset random needs a tokenizer: pass --tokenizer-path (a tokenizer.json, a \
         directory holding one, or a hub model id such as Qwen/Qwen2.5-0.5B-Instruct)"
    )]
    TokenizerRequired,
    /// Encoding or decoding failed inside the tokenizer.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// No token of the vocabulary can be used in a random prompt.
    #[error(
        "the tokenizer has no usable tokens for random prompts (every token is special, \
         byte-fallback or unprintable)"
    )]
    EmptyVocabulary,
    /// Flags that do not go together (`--dataset` and its options).
    #[error("{0}")]
    Flags(String),
    /// Bad random prompt lengths.
    #[error("random prompts: {0}")]
    InvalidLengths(String),
    /// The dataset file could not be read.
    #[error("--dataset-path {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// One line of a line-based file is wrong.
    #[error("--dataset-path {} line {line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A whole-file format error (ShareGPT JSON; serde's message carries the
    /// line and column).
    #[error("--dataset-path {}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file held no prompt at all.
    #[error(
        "--dataset-path {}: no prompts found (the file is empty, blank, or every entry \
         lacks a prompt)",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A `messages` prompt cannot go to `/v1/completions`.
    #[error(
        "this dataset has chat `messages`, which only the chat endpoint takes: use --api chat \
         (or give plain `prompt` strings)"
    )]
    MessagesNeedChat,
}

// ---------------------------------------------------------------------------
// Tokenizer loading

/// Loads a tokenizer from `spec`, as `--tokenizer-path` takes it:
///
/// 1. an existing path: a `tokenizer.json` file, or a directory holding one
///    (a local model snapshot) — a local path wins over a hub id of the same
///    spelling, as in `transformers`;
/// 2. otherwise a hub model id `owner/name` or `owner/name@revision`, whose
///    `tokenizer.json` is fetched with [`Hub::fetch`] (cache first; offline
///    mode works from the cache alone).
pub async fn load_tokenizer(spec: &str, hub: &Hub) -> Result<Tokenizer, PromptError> {
    let path = Path::new(spec);
    if path.exists() {
        return load_tokenizer_path(spec, path);
    }
    let Some((repo, revision)) = parse_hub_id(spec) else {
        return Err(PromptError::TokenizerNotFound {
            spec: spec.to_string(),
            reason: "no such file or directory, and not a hub model id (owner/name or \
                     owner/name@revision)"
                .to_string(),
        });
    };
    let file = HubFile::model(repo, revision, TOKENIZER_FILE);
    let fetched = hub
        .fetch(&file)
        .await
        .map_err(|source| PromptError::TokenizerHub {
            spec: spec.to_string(),
            source,
        })?;
    load_tokenizer_file(spec, &fetched.local_path)
}

/// Loads a local `tokenizer.json`, or the one inside directory `path`.
fn load_tokenizer_path(spec: &str, path: &Path) -> Result<Tokenizer, PromptError> {
    if path.is_dir() {
        let file = path.join(TOKENIZER_FILE);
        if !file.is_file() {
            return Err(PromptError::TokenizerNotFound {
                spec: spec.to_string(),
                reason: format!(
                    "the directory has no {TOKENIZER_FILE} (looked for {}); \
                     tokenizer.model / vocab.txt alone are not supported",
                    file.display()
                ),
            });
        }
        return load_tokenizer_file(spec, &file);
    }
    load_tokenizer_file(spec, path)
}

fn load_tokenizer_file(spec: &str, file: &Path) -> Result<Tokenizer, PromptError> {
    Tokenizer::from_file(file).map_err(|e| PromptError::TokenizerLoad {
        spec: spec.to_string(),
        path: file.to_path_buf(),
        message: e.to_string(),
    })
}

/// `owner/name[@revision]` parsing lives with the hub client, which
/// `--model` shares.
pub use crate::hub::parse_hub_id;

// ---------------------------------------------------------------------------
// Dispatch

/// Loads the prompts of `spec`: `count` random prompts, or at most `count`
/// prompts from a file (the runner cycles when the file has fewer). The
/// tokenizer is required for random prompts and optional for files (it adds
/// token counts).
pub fn load_prompts(
    spec: &PromptSpec,
    count: usize,
    tokenizer: Option<&Tokenizer>,
) -> Result<PromptSet, PromptError> {
    match spec {
        PromptSpec::Random(random) => {
            let tokenizer = tokenizer.ok_or(PromptError::TokenizerRequired)?;
            random_prompts(tokenizer, random, count)
        }
        PromptSpec::LineByLine { path } => read_line_by_line(path, Some(count), tokenizer),
        PromptSpec::Jsonl { path } => read_jsonl(path, Some(count), tokenizer),
        PromptSpec::ShareGpt { path } => read_sharegpt(path, Some(count), tokenizer),
    }
}

// ---------------------------------------------------------------------------
// Random prompts

/// The parts of a vocabulary random prompts are built from.
#[derive(Debug, Clone)]
pub struct RandomVocab {
    /// Ids a random prompt may contain.
    allowed: Vec<u32>,
    /// Ids used for padding: word-start tokens that, after a word, encode
    /// back to themselves (or `allowed` when the vocabulary has none).
    pad: Vec<u32>,
    /// The text each `pad` id adds after a word (`" word"`), same order.
    pad_text: Vec<String>,
}

impl RandomVocab {
    /// Scans the vocabulary once (one decode per id, one encode per
    /// word-start candidate, at most 4096).
    pub fn new(tokenizer: &Tokenizer) -> Result<RandomVocab, PromptError> {
        let added: HashSet<u32> = tokenizer
            .get_added_tokens_decoder()
            .keys()
            .copied()
            .collect();
        let size = u32::try_from(tokenizer.get_vocab_size(true)).unwrap_or(u32::MAX);
        let mut allowed = Vec::new();
        let mut pad = Vec::new();
        let mut pad_text = Vec::new();
        let mut decoded = Vec::new();
        let anchor = encode_ids(tokenizer, PAD_ANCHOR)?;
        for id in 0..size {
            if added.contains(&id) {
                continue;
            }
            let Some(raw) = tokenizer.id_to_token(id) else {
                continue;
            };
            if is_byte_fallback(&raw) {
                continue;
            }
            let Ok(text) = tokenizer.decode(&[id], false) else {
                continue;
            };
            if text.is_empty() || text.contains('\u{FFFD}') || text.chars().any(char::is_control) {
                continue;
            }
            allowed.push(id);
            if pad.len() < MAX_PAD_POOL && is_word_start(&raw, &text) {
                // SentencePiece decoders drop the first token's space, so
                // put it back: in a prompt the token always follows a word.
                let spaced = format!(" {}", text.trim_start_matches(' '));
                // Checked after a word, where pads go: at the very start,
                // normalizers that prepend `▁` (Llama 2) would add a token.
                let mut after = encode_ids(tokenizer, &format!("{PAD_ANCHOR}{spaced}"))?;
                if after.pop() == Some(id) && after == anchor {
                    pad.push(id);
                    pad_text.push(spaced);
                }
            }
            decoded.push(text);
        }
        if allowed.is_empty() {
            return Err(PromptError::EmptyVocabulary);
        }
        if pad.is_empty() {
            // No word starts (e.g. a WordPiece or character vocabulary):
            // pad with anything; the loop still converges, only slower.
            pad = allowed.clone();
            pad_text = decoded;
        }
        Ok(RandomVocab {
            allowed,
            pad,
            pad_text,
        })
    }

    /// Ids random prompts draw from.
    pub fn allowed(&self) -> &[u32] {
        &self.allowed
    }

    /// Ids used to pad short attempts.
    pub fn pad(&self) -> &[u32] {
        &self.pad
    }
}

/// `<0x0A>`-style byte-fallback tokens (SentencePiece/Llama vocabularies):
/// alone they decode to a raw byte, often half a character (EvalScope
/// excludes them to avoid mojibake that inflates the token count).
fn is_byte_fallback(raw: &str) -> bool {
    raw.len() == 6
        && raw.starts_with("<0x")
        && raw.ends_with('>')
        && raw[3..5].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A token that starts a new word: `Ġ` (byte-level space) or `▁`
/// (SentencePiece space) followed by at least two ASCII letters. Appending
/// one to any text adds exactly one token under the usual pre-tokenizers.
fn is_word_start(raw: &str, decoded: &str) -> bool {
    let word = decoded.trim_start_matches(' ');
    (raw.starts_with('Ġ') || raw.starts_with('▁'))
        && word.len() >= 2
        && word.bytes().all(|b| b.is_ascii_alphabetic())
}

fn encode_ids(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, PromptError> {
    tokenizer
        .encode_fast(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| PromptError::Tokenizer(format!("encoding failed: {e}")))
}

fn decode_ids(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String, PromptError> {
    tokenizer
        .decode(ids, false)
        .map_err(|e| PromptError::Tokenizer(format!("decoding failed: {e}")))
}

/// A piece of text and its exact token count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exact {
    text: String,
    ids: Vec<u32>,
}

/// Generates `count` random prompts of exact length per [`RandomSpec`] (see
/// the module doc for the method and guarantees).
pub fn random_prompts(
    tokenizer: &Tokenizer,
    spec: &RandomSpec,
    count: usize,
) -> Result<PromptSet, PromptError> {
    let vocab = RandomVocab::new(tokenizer)?;
    random_prompts_with(tokenizer, &vocab, spec, count)
}

/// [`random_prompts`] with a vocabulary scanned beforehand (reuse it across
/// sweeps: the scan decodes every token once).
pub fn random_prompts_with(
    tokenizer: &Tokenizer,
    vocab: &RandomVocab,
    spec: &RandomSpec,
    count: usize,
) -> Result<PromptSet, PromptError> {
    check_lengths(spec, None)?;
    let empty = Exact {
        text: String::new(),
        ids: Vec::new(),
    };
    let prefix = if spec.prefix_len > 0 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(spec.seed, PREFIX_STREAM));
        let target = spec.prefix_len as usize;
        let text = random_text(tokenizer, vocab, &mut rng, &[], target)?;
        fix_length(tokenizer, vocab, &mut rng, &empty, target, text)?
    } else {
        empty
    };
    let pool = chunk_pool(tokenizer, vocab, spec)?;
    // Lengths come from one sequential stream and tokens from one stream per
    // prompt, so prompt i depends neither on `count` nor on the threads.
    let mut lengths_rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let lengths: Vec<usize> = (0..count)
        .map(|_| lengths_rng.random_range(spec.min_len..=spec.max_len) as usize)
        .collect();

    let made = par_map(&lengths, |i, &len| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(spec.seed, i as u64));
        let text = assemble(&mut rng, vocab, &pool, &prefix.text, len);
        fix_length(
            tokenizer,
            vocab,
            &mut rng,
            &prefix,
            prefix.ids.len() + len,
            text,
        )
    })?;

    let requested: Vec<u64> = lengths
        .iter()
        .map(|&l| (l + prefix.ids.len()) as u64)
        .collect();
    let achieved: Vec<u64> = made.iter().map(|e| e.ids.len() as u64).collect();
    let prompts = made
        .into_iter()
        .map(|mut e| {
            // `assemble` reserves 8 bytes a token; keep only what is used,
            // since every prompt stays in memory for the whole run.
            e.text.shrink_to_fit();
            PerfPrompt {
                prompt_tokens: Some(e.ids.len() as u64),
                prompt: Prompt::Text(e.text),
                output_tokens: None,
            }
        })
        .collect();
    Ok(PromptSet {
        prompts,
        skipped: 0,
        length_error: Some(input_length_error(&requested, &achieved)),
    })
}

/// Stream indices above any prompt index, for the shared parts.
const PREFIX_STREAM: u64 = u64::MAX;
const POOL_STREAM: u64 = u64::MAX - 1;

/// A per-stream seed from the run seed and a stream index (SplitMix64's
/// finalizer: nearby indices give unrelated streams).
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick(rng: &mut Xoshiro256PlusPlus, pool: &[u32]) -> u32 {
    pool[rng.random_range(0..pool.len())]
}

/// `prefix` followed by `len` random ids (a word start first, so the seam
/// is a word boundary), decoded.
fn random_text(
    tokenizer: &Tokenizer,
    vocab: &RandomVocab,
    rng: &mut Xoshiro256PlusPlus,
    prefix: &[u32],
    len: usize,
) -> Result<String, PromptError> {
    let mut ids = Vec::with_capacity(prefix.len() + len);
    ids.extend_from_slice(prefix);
    if len > 0 {
        ids.push(pick(rng, &vocab.pad));
        ids.extend((1..len).map(|_| pick(rng, &vocab.allowed)));
    }
    decode_ids(tokenizer, &ids)
}

/// Random text with a known token count, starting at a word boundary.
#[derive(Debug, Clone)]
struct Chunk {
    text: String,
    tokens: usize,
}

/// Builds the chunk pool of a run: [`CHUNK_TOKENS`] uniform random ids (the
/// first a word start) per chunk, decoded and re-encoded once. Prompts are
/// random sequences of chunks, so each prompt needs one encode (the final
/// check) instead of one per convergence round; the pool (at most
/// [`MAX_CHUNKS`] chunks, sized from `max_len` only, so it does not depend
/// on the number of prompts) costs about 64 prompts' worth of encoding.
fn chunk_pool(
    tokenizer: &Tokenizer,
    vocab: &RandomVocab,
    spec: &RandomSpec,
) -> Result<Vec<Chunk>, PromptError> {
    let n = (spec.max_len as usize * 64 / CHUNK_TOKENS).clamp(64, MAX_CHUNKS);
    let seeds: Vec<u64> = (0..n as u64)
        .map(|j| mix(mix(spec.seed, POOL_STREAM), j))
        .collect();
    par_map(&seeds, |_, &seed| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut text = random_text(tokenizer, vocab, &mut rng, &[], CHUNK_TOKENS)?;
        // SentencePiece decoders drop the first token's space; the chunk
        // always follows other text, where that space is there.
        if !text.starts_with(' ') {
            text.insert(0, ' ');
        }
        let tokens = count_tokens(tokenizer, &text)? as usize;
        Ok(Chunk { text, tokens })
    })
}

/// `prefix_text`, then random chunks while they fit in `body_len`, then
/// word-start pads for the rest: the text's token count is `body_len` plus
/// the prefix's whenever the tokenizer splits words at spaces (checked
/// after, by [`fix_length`]).
fn assemble(
    rng: &mut Xoshiro256PlusPlus,
    vocab: &RandomVocab,
    pool: &[Chunk],
    prefix_text: &str,
    body_len: usize,
) -> String {
    let mut text = String::with_capacity(prefix_text.len() + body_len * 8);
    text.push_str(prefix_text);
    let pad = |rng: &mut Xoshiro256PlusPlus, text: &mut String| {
        text.push_str(&vocab.pad_text[rng.random_range(0..vocab.pad_text.len())]);
    };
    // Open with a few random words: chunks recur across prompts, and two
    // prompts opening with the same chunk would share a cacheable prefix.
    let head = body_len.min(UNIQUE_HEAD);
    for _ in 0..head {
        pad(rng, &mut text);
    }
    let mut have = head;
    while let Some(chunk) = pool.get(rng.random_range(0..pool.len().max(1)))
        && have + chunk.tokens <= body_len
    {
        text.push_str(&chunk.text);
        have += chunk.tokens;
    }
    for _ in have..body_len {
        pad(rng, &mut text);
    }
    text
}

/// Makes `text` (which starts with `prefix.text`) encode to exactly `target`
/// tokens; the closest attempt if [`MAX_ROUNDS`] rounds do not get there.
///
/// Each round encodes; if long, cuts at the last word start at or before
/// the target (cutting inside a word, let alone inside a character, makes
/// the rest re-tokenize unpredictably); then appends word-start pads for
/// whatever is missing. Text from [`assemble`] is usually exact at the
/// first encode, and text from [`random_text`] at the second.
fn fix_length(
    tokenizer: &Tokenizer,
    vocab: &RandomVocab,
    rng: &mut Xoshiro256PlusPlus,
    prefix: &Exact,
    target: usize,
    mut text: String,
) -> Result<Exact, PromptError> {
    let p = prefix.ids.len();
    let mut best: Option<Exact> = None;
    for _ in 0..MAX_ROUNDS {
        if !text.starts_with(&prefix.text) {
            // A decoder rewrote the seam (not seen with byte-level or
            // SentencePiece decoders); start the body over.
            text = random_text(tokenizer, vocab, rng, &prefix.ids, target - p)?;
            continue;
        }
        let encode = |with_offsets: bool| {
            let enc = if with_offsets {
                tokenizer.encode(text.as_str(), false)
            } else {
                tokenizer.encode_fast(text.as_str(), false)
            };
            enc.map_err(|e| PromptError::Tokenizer(format!("encoding failed: {e}")))
        };
        // Without offsets first: that is the common, exact case.
        let fast = encode(false)?;
        let n = fast.len();
        if n == target {
            return Ok(Exact {
                text,
                ids: fast.get_ids().to_vec(),
            });
        }
        // Cutting needs word ids, which only the full encode computes.
        let enc = if n > target { encode(true)? } else { fast };
        if best
            .as_ref()
            .is_none_or(|b| n.abs_diff(target) < b.ids.len().abs_diff(target))
        {
            best = Some(Exact {
                text: text.clone(),
                ids: enc.get_ids().to_vec(),
            });
        }
        let kept = if n > target {
            // Word ids number the pre-tokenizer's pieces; a change marks a
            // word start. Never cut into the prefix.
            let words = enc.get_word_ids();
            let k = (p.max(1)..=target)
                .rev()
                .find(|&j| words[j] != words[j - 1])
                .unwrap_or(target);
            // Decoding the kept ids gives the text up to that token without
            // relying on offsets, which byte-level post-processors trim.
            text = decode_ids(tokenizer, &enc.get_ids()[..k])?;
            k
        } else {
            n
        };
        for _ in kept..target {
            text.push_str(&vocab.pad_text[rng.random_range(0..vocab.pad_text.len())]);
        }
    }
    match best {
        Some(best) => Ok(best),
        None => Err(PromptError::Tokenizer(
            "the decoder never reproduced the shared prefix; use --prefix-length 0".to_string(),
        )),
    }
}

/// Maps `f` over `items` on all cores, keeping order; the first error wins.
fn par_map<T, R, F>(items: &[T], f: F) -> Result<Vec<R>, PromptError>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &T) -> Result<R, PromptError> + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, t)| f(c * chunk + j, t))
                        .collect::<Result<Vec<R>, PromptError>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part?),
                // A panic inside the tokenizer: surface it rather than hide.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    })
}

// ---------------------------------------------------------------------------
// Files

/// A prompt read from a file, before token counting.
struct Entry {
    prompt: Prompt,
    /// ShareGPT's first assistant turn.
    completion: Option<String>,
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, PromptError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|source| PromptError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Calls `each(line_number, text)` for every non-blank line until it
/// returns `Ok(false)`.
fn for_each_line(
    path: &Path,
    mut each: impl FnMut(usize, &str) -> Result<bool, PromptError>,
) -> Result<(), PromptError> {
    let reader = open(path)?;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| PromptError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message: if e.kind() == std::io::ErrorKind::InvalidData {
                "not valid UTF-8".to_string()
            } else {
                e.to_string()
            },
        })?;
        // A UTF-8 byte-order mark on the first line is an editor artefact.
        let text = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            &line
        };
        if text.trim().is_empty() {
            continue;
        }
        if !each(i + 1, text)? {
            break;
        }
    }
    Ok(())
}

fn full(limit: Option<usize>, have: usize) -> bool {
    limit.is_some_and(|l| have >= l)
}

/// Reads one prompt per line (trimmed; blank lines skipped), at most
/// `limit`; token counts when `tokenizer` is given.
pub fn read_line_by_line(
    path: &Path,
    limit: Option<usize>,
    tokenizer: Option<&Tokenizer>,
) -> Result<PromptSet, PromptError> {
    let mut entries = Vec::new();
    if !full(limit, 0) {
        for_each_line(path, |_, line| {
            entries.push(Entry {
                prompt: Prompt::Text(line.trim().to_string()),
                completion: None,
            });
            Ok(!full(limit, entries.len()))
        })?;
    }
    finish(path, entries, 0, tokenizer)
}

/// Reads `openqa`/custom JSONL: per line an object with `messages`, `prompt`
/// or `question` (in that order of preference), at most `limit`.
pub fn read_jsonl(
    path: &Path,
    limit: Option<usize>,
    tokenizer: Option<&Tokenizer>,
) -> Result<PromptSet, PromptError> {
    let mut entries = Vec::new();
    let mut skipped = 0;
    if !full(limit, 0) {
        for_each_line(path, |line_no, line| {
            let line_err = |message: String| PromptError::Line {
                path: path.to_path_buf(),
                line: line_no,
                message,
            };
            let value: Value = serde_json::from_str(line)
                .map_err(|e| line_err(format!("invalid JSON: {}", in_line(&e))))?;
            match jsonl_prompt(&value).map_err(line_err)? {
                Some(prompt) => entries.push(Entry {
                    prompt,
                    completion: None,
                }),
                None => skipped += 1,
            }
            Ok(!full(limit, entries.len()))
        })?;
    }
    finish(path, entries, skipped, tokenizer)
}

/// The prompt of one JSONL object; `None` when it is blank.
fn jsonl_prompt(value: &Value) -> Result<Option<Prompt>, String> {
    let Some(obj) = value.as_object() else {
        return Err(format!(
            "expected a JSON object, found {}",
            json_kind(value)
        ));
    };
    if let Some(messages) = obj.get("messages") {
        let Some(list) = messages.as_array() else {
            return Err(format!(
                "`messages` must be a list of {{\"role\", \"content\"}} objects, found {}",
                json_kind(messages)
            ));
        };
        let messages = list
            .iter()
            .enumerate()
            .map(|(i, m)| chat_message(m).map_err(|e| format!("messages[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((!messages.is_empty()).then_some(Prompt::Messages(messages)));
    }
    for key in ["prompt", "question"] {
        if let Some(v) = obj.get(key) {
            let Some(text) = v.as_str() else {
                return Err(format!("`{key}` must be a string, found {}", json_kind(v)));
            };
            let text = text.trim();
            return Ok((!text.is_empty()).then(|| Prompt::Text(text.to_string())));
        }
    }
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    Err(format!(
        "no prompt: expected `messages` (a list), `prompt` or `question` (a string); the \
         object has {}",
        if keys.is_empty() {
            "no keys".to_string()
        } else {
            format!("keys {}", keys.join(", "))
        }
    ))
}

/// One OpenAI chat message; `content` may be a string or a list of text
/// parts (joined).
fn chat_message(value: &Value) -> Result<Message, String> {
    let role = value
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or("needs a string `role`")?;
    let content = match value.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(format!(
                            "only text content parts are supported, found type {}",
                            kind.unwrap_or("(none)")
                        ));
                    }
                }
            }
            text
        }
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(format!(
                "`content` must be a string or a list of text parts, found {}",
                json_kind(other)
            ));
        }
    };
    Ok(Message {
        role: role.to_string(),
        content,
    })
}

/// A serde error inside one line: the column only, since the caller names
/// the file's line (serde would say "line 1").
fn in_line(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let place = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&place) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => text,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One ShareGPT entry; unknown fields are ignored.
#[derive(Deserialize)]
struct ShareGptEntry {
    #[serde(default)]
    conversations: Vec<ShareGptTurn>,
}

#[derive(Deserialize)]
struct ShareGptTurn {
    #[serde(default)]
    from: String,
    #[serde(default)]
    value: String,
}

impl ShareGptEntry {
    /// First human turn and the first assistant turn after it.
    fn into_entry(self) -> Option<Entry> {
        let mut turns = self.conversations.into_iter();
        let human = turns.find(|t| matches!(t.from.as_str(), "human" | "user"))?;
        let prompt = human.value.trim().to_string();
        if prompt.is_empty() {
            return None;
        }
        let completion = turns
            .find(|t| {
                matches!(
                    t.from.as_str(),
                    "gpt" | "chatgpt" | "bard" | "assistant" | "model"
                )
            })
            .map(|t| t.value);
        Some(Entry {
            prompt: Prompt::Text(prompt),
            completion,
        })
    }
}

/// Reads ShareGPT JSON (an array of entries, or one entry per line), at
/// most `limit` prompts; output lengths need `tokenizer`.
pub fn read_sharegpt(
    path: &Path,
    limit: Option<usize>,
    tokenizer: Option<&Tokenizer>,
) -> Result<PromptSet, PromptError> {
    let mut reader = open(path)?;
    let io_err = |source| PromptError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Peek at the first non-blank byte: `[` is the usual JSON array,
    // anything else is taken as JSONL. Whole buffers of blanks are consumed,
    // so count their newlines to keep serde's line numbers true.
    let mut blank_lines = 0;
    let first = loop {
        let buf = reader.fill_buf().map_err(io_err)?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => break Some(buf[i]),
            None if buf.is_empty() => break None,
            None => {
                blank_lines += buf.iter().filter(|&&b| b == b'\n').count();
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    let (entries, skipped) = match first {
        None => (Vec::new(), 0),
        Some(b'[') => {
            let mut de = serde_json::Deserializer::from_reader(reader);
            serde::Deserializer::deserialize_seq(&mut de, ShareGptVisitor { limit })
                .and_then(|c| de.end().map(|()| c))
                .map_err(|e| {
                    let text = e.to_string();
                    let place = format!(" at line {} column {}", e.line(), e.column());
                    PromptError::Format {
                        path: path.to_path_buf(),
                        message: format!(
                            "invalid ShareGPT JSON at line {} column {}: {}",
                            e.line() + blank_lines,
                            e.column(),
                            text.strip_suffix(&place).unwrap_or(&text)
                        ),
                    }
                })?
        }
        Some(_) => {
            let mut entries = Vec::new();
            let mut skipped = 0;
            if !full(limit, 0) {
                for_each_line(path, |line_no, line| {
                    let entry: ShareGptEntry =
                        serde_json::from_str(line).map_err(|e| PromptError::Line {
                            path: path.to_path_buf(),
                            line: line_no,
                            message: format!("invalid ShareGPT entry: {}", in_line(&e)),
                        })?;
                    match entry.into_entry() {
                        Some(e) => entries.push(e),
                        None => skipped += 1,
                    }
                    Ok(!full(limit, entries.len()))
                })?;
            }
            (entries, skipped)
        }
    };
    finish(path, entries, skipped, tokenizer)
}

/// Streams a ShareGPT array: converts entries as they are parsed and skips
/// the rest once `limit` is reached, so a 600 MB file with a small limit
/// never holds all its conversations in memory.
struct ShareGptVisitor {
    limit: Option<usize>,
}

impl<'de> serde::de::Visitor<'de> for ShareGptVisitor {
    type Value = (Vec<Entry>, usize);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of {\"conversations\": [...]} objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut skipped = 0;
        while !full(self.limit, entries.len()) {
            match seq.next_element::<ShareGptEntry>()? {
                Some(entry) => match entry.into_entry() {
                    Some(e) => entries.push(e),
                    None => skipped += 1,
                },
                None => return Ok((entries, skipped)),
            }
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok((entries, skipped))
    }
}

/// Token counts (when a tokenizer is given) and the empty-file check.
fn finish(
    path: &Path,
    entries: Vec<Entry>,
    skipped: usize,
    tokenizer: Option<&Tokenizer>,
) -> Result<PromptSet, PromptError> {
    if entries.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    let counts: Vec<(Option<u64>, Option<u32>)> = match tokenizer {
        None => entries.iter().map(|_| (None, None)).collect(),
        Some(tok) => par_map(&entries, |_, e| {
            let prompt = match &e.prompt {
                Prompt::Text(t) => count_tokens(tok, t)?,
                Prompt::Messages(ms) => {
                    let mut n = 0;
                    for m in ms {
                        n += count_tokens(tok, &m.content)?;
                    }
                    n
                }
            };
            let output = match &e.completion {
                Some(c) => Some(u32::try_from(count_tokens(tok, c)?).unwrap_or(u32::MAX)),
                None => None,
            };
            Ok((Some(prompt), output))
        })?,
    };
    let prompts = entries
        .into_iter()
        .zip(counts)
        .map(|(e, (prompt_tokens, output_tokens))| PerfPrompt {
            prompt: e.prompt,
            prompt_tokens,
            output_tokens,
        })
        .collect();
    Ok(PromptSet {
        prompts,
        skipped,
        length_error: None,
    })
}

/// Tokens in `text`, without special tokens.
pub fn count_tokens(tokenizer: &Tokenizer, text: &str) -> Result<u64, PromptError> {
    tokenizer
        .encode_fast(text, false)
        .map(|e| e.len() as u64)
        .map_err(|e| PromptError::Tokenizer(format!("encoding failed: {e}")))
}

// ---------------------------------------------------------------------------
// `bench perf` flags -> workload

/// The prompts of a `bench perf` run, as its configuration takes them.
pub struct Workload {
    /// Prompts in order (the runner cycles).
    pub items: Vec<WorkItem>,
    /// How they were made, for the run record (dataset, lengths, seed,
    /// tokenizer, achieved input-length error).
    pub label: String,
    /// Token counter from `--tokenizer-path`, for servers without `usage`.
    pub counter: Option<TokenCounter>,
    /// Random prompts: achieved versus requested lengths.
    pub length_error: Option<InputLengthError>,
    /// Set when fewer distinct prompts were made than requests asked for
    /// (the memory budget), saying so; also in `label`.
    pub note: Option<String>,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("items", &self.items.len())
            .field("label", &self.label)
            .field("counter", &self.counter.is_some())
            .field("length_error", &self.length_error)
            .field("note", &self.note)
            .finish()
    }
}

/// A `--dataset` of `bench perf`: where prompts come from. Every spelling
/// EvalScope and vLLM use is its own value, so the run's label says the
/// dataset as it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PerfDataset {
    /// `random`: exact-length random prompts from a tokenizer.
    Random,
    /// `line_by_line`: one prompt per line of a text file.
    LineByLine,
    /// `openqa`: JSONL (`messages`, `prompt` or `question`).
    OpenQa,
    /// `custom`: JSONL, as `openqa`.
    Custom,
    /// `jsonl`: JSONL, as `openqa` (not listed in the help).
    Jsonl,
    /// `sharegpt`: ShareGPT-format JSON.
    ShareGpt,
    /// `share_gpt`: as `sharegpt` (not listed).
    ShareGptSnake,
    /// `share_gpt_en`: as `sharegpt` (not listed).
    ShareGptEn,
    /// `share_gpt_zh`: as `sharegpt` (not listed).
    ShareGptZh,
}

impl PerfDataset {
    /// Every value, the listed ones first.
    pub const ALL: &[PerfDataset] = &[
        PerfDataset::Random,
        PerfDataset::LineByLine,
        PerfDataset::OpenQa,
        PerfDataset::Custom,
        PerfDataset::ShareGpt,
        PerfDataset::Jsonl,
        PerfDataset::ShareGptSnake,
        PerfDataset::ShareGptEn,
        PerfDataset::ShareGptZh,
    ];

    /// The name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PerfDataset::Random => "random",
            PerfDataset::LineByLine => "line_by_line",
            PerfDataset::OpenQa => "openqa",
            PerfDataset::Custom => "custom",
            PerfDataset::Jsonl => "jsonl",
            PerfDataset::ShareGpt => "sharegpt",
            PerfDataset::ShareGptSnake => "share_gpt",
            PerfDataset::ShareGptEn => "share_gpt_en",
            PerfDataset::ShareGptZh => "share_gpt_zh",
        }
    }

    /// Whether help lists it (the others are alternative spellings).
    pub fn listed(self) -> bool {
        matches!(
            self,
            PerfDataset::Random
                | PerfDataset::LineByLine
                | PerfDataset::OpenQa
                | PerfDataset::Custom
                | PerfDataset::ShareGpt
        )
    }

    /// The value named `name`.
    pub fn from_name(name: &str) -> Option<PerfDataset> {
        PerfDataset::ALL.iter().copied().find(|d| d.name() == name)
    }
}

impl fmt::Display for PerfDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The prompt options of `bench perf` (`--dataset` and the flags that go
/// with it), as the command line parsed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// `--dataset`.
    pub dataset: PerfDataset,
    /// `--dataset-path`.
    pub dataset_path: Option<PathBuf>,
    /// `--tokenizer-path`: a tokenizer.json, a directory holding one, or a
    /// hub model id.
    pub tokenizer_path: Option<String>,
    /// `--min-prompt-length`.
    pub min_prompt_length: usize,
    /// `--max-prompt-length`.
    pub max_prompt_length: usize,
    /// `--prefix-length`.
    pub prefix_length: usize,
    /// `--seed`.
    pub seed: u64,
}

/// `--dataset` → [`PromptSpec`], checking the flags that go with it.
pub fn spec_from_options(a: &WorkloadOptions) -> Result<PromptSpec, PromptError> {
    let flag_err = PromptError::Flags;
    let path = || {
        a.dataset_path.clone().ok_or_else(|| {
            flag_err(format!(
                "--dataset {} reads a file: pass it with --dataset-path FILE",
                a.dataset
            ))
        })
    };
    let tokens = |flag: &str, v: usize| {
        u32::try_from(v).map_err(|_| flag_err(format!("--{flag} {v} is too large")))
    };
    Ok(match a.dataset {
        PerfDataset::Random => {
            if let Some(p) = &a.dataset_path {
                return Err(flag_err(format!(
                    "--dataset-path {} is not used by --dataset random (did you mean \
                     --dataset line_by_line, openqa or sharegpt?)",
                    p.display()
                )));
            }
            let spec = RandomSpec {
                min_len: tokens("min-prompt-length", a.min_prompt_length)?,
                max_len: tokens("max-prompt-length", a.max_prompt_length)?,
                prefix_len: tokens("prefix-length", a.prefix_length)?,
                seed: a.seed,
            };
            check_lengths(&spec, None)?;
            PromptSpec::Random(spec)
        }
        PerfDataset::LineByLine => PromptSpec::LineByLine { path: path()? },
        PerfDataset::OpenQa | PerfDataset::Custom | PerfDataset::Jsonl => {
            PromptSpec::Jsonl { path: path()? }
        }
        PerfDataset::ShareGpt
        | PerfDataset::ShareGptSnake
        | PerfDataset::ShareGptEn
        | PerfDataset::ShareGptZh => PromptSpec::ShareGpt { path: path()? },
    })
}

/// Builds the prompts of a `bench perf` run from its options: `count` random
/// prompts (or at most `count` from `--dataset-path`), the tokenizer from
/// `--tokenizer-path` (fetched from the hub when it is a model id; works
/// inside or outside an async runtime), and a label for the record.
pub fn workload(
    a: &WorkloadOptions,
    hub: &HubConfig,
    count: usize,
) -> Result<Workload, PromptError> {
    workload_within(a, hub, count, PROMPT_TOKEN_BUDGET)
}

/// [`workload`] with the memory budget for random prompts given, in tokens
/// (see [`distinct_prompts`]).
pub fn workload_within(
    a: &WorkloadOptions,
    hub: &HubConfig,
    count: usize,
    budget: u64,
) -> Result<Workload, PromptError> {
    let spec = spec_from_options(a)?;
    let tokenizer = match &a.tokenizer_path {
        Some(t) => Some(Arc::new(load_tokenizer_blocking(t, hub)?)),
        None => None,
    };
    let mut count = count.max(1);
    let mut note = None;
    if let (PromptSpec::Random(r), Some(tok)) = (&spec, &tokenizer) {
        let limit = context_limit(a.tokenizer_path.as_deref().unwrap_or_default(), tok, hub);
        check_lengths(r, limit.as_ref())?;
        let distinct = distinct_prompts(r, count, budget);
        if distinct < count {
            note = Some(format!(
                "{distinct} distinct random prompts of up to {} tokens, reused in order for \
                 {count} requests (prompt memory is capped at {budget} tokens)",
                r.longest(),
            ));
            count = distinct;
        }
    }
    let set = load_prompts(&spec, count, tokenizer.as_deref())?;
    let mut label = match &spec {
        PromptSpec::Random(r) => format!(
            "random: {}-{} tokens + {} shared prefix, seed {}",
            r.min_len, r.max_len, r.prefix_len, r.seed
        ),
        PromptSpec::LineByLine { path }
        | PromptSpec::Jsonl { path }
        | PromptSpec::ShareGpt { path } => {
            let skipped = match set.skipped {
                0 => String::new(),
                n => format!(", {n} entries without a prompt skipped"),
            };
            format!(
                "{}: {} ({} prompts{skipped})",
                a.dataset,
                path.display(),
                set.prompts.len()
            )
        }
    };
    if let Some(t) = &a.tokenizer_path {
        label.push_str(&format!("; tokenizer {t}"));
    }
    if let Some(e) = &set.length_error {
        label.push_str(&format!("; {e}"));
    }
    if let Some(n) = &note {
        label.push_str(&format!("; {n}"));
    }
    let items = set
        .prompts
        .into_iter()
        .map(|p| WorkItem {
            prompt: p.prompt,
            prompt_tokens: p.prompt_tokens,
            output_tokens: p.output_tokens,
        })
        .collect();
    let counter = tokenizer
        .map(|tok| Arc::new(move |text: &str| count_tokens(&tok, text).ok()) as TokenCounter);
    Ok(Workload {
        items,
        label,
        counter,
        length_error: set.length_error,
        note,
    })
}

// ---------------------------------------------------------------------------
// Length and memory bounds

/// Most prompt tokens a run keeps in memory (2^24): the text, the JSON body
/// and the raw HTTP request of each prompt take 15 to 25 bytes a token, so
/// a few hundred MB at most. Requests beyond reuse the prompts in order.
pub const PROMPT_TOKEN_BUDGET: u64 = 1 << 24;

/// What one prompt costs beyond its tokens (request head, JSON, `String`
/// and record headers), in tokens, so that many tiny prompts are bounded too.
const PER_PROMPT_OVERHEAD: u64 = 64;

/// `model_max_length` values at or above this are "no limit" sentinels
/// (transformers writes `int(1e30)` when a model sets none).
const NO_LIMIT_SENTINEL: u64 = 1 << 40;

impl RandomSpec {
    /// The longest prompt this spec makes: shared prefix plus the longest body.
    pub fn longest(&self) -> u64 {
        u64::from(self.prefix_len) + u64::from(self.max_len)
    }
}

/// The longest input a tokenizer's model takes, and where that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextLimit {
    /// Tokens.
    pub tokens: u64,
    /// Where it came from, for the error (`model_max_length in
    /// .../tokenizer_config.json`).
    pub source: String,
}

/// The model's context as its tokenizer files state it, where they do:
/// the `truncation.max_length` of `tokenizer.json` (the tokenizer itself
/// would cut longer prompts), or `model_max_length` of the
/// `tokenizer_config.json` beside it (a local file, a local directory, or
/// the hub cache's snapshot of the model id; no download is made for it).
/// The smaller wins; the "no limit" sentinel counts as unknown.
pub fn context_limit(spec: &str, tokenizer: &Tokenizer, hub: &HubConfig) -> Option<ContextLimit> {
    let mut found: Vec<ContextLimit> = Vec::new();
    if let Some(t) = tokenizer.get_truncation() {
        found.push(ContextLimit {
            tokens: t.max_length as u64,
            source: "truncation.max_length in tokenizer.json".to_string(),
        });
    }
    let path = Path::new(spec);
    let config = if path.is_dir() {
        Some(path.join("tokenizer_config.json"))
    } else if path.is_file() {
        path.parent().map(|d| d.join("tokenizer_config.json"))
    } else {
        parse_hub_id(spec).and_then(|(repo, revision)| {
            let hub = Hub::new(hub.clone()).ok()?;
            hub.cached_path(&HubFile::model(repo, revision, "tokenizer_config.json"))
        })
    };
    if let Some(config) = config.filter(|c| c.is_file())
        && let Some(n) = std::fs::read(&config)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("model_max_length").and_then(Value::as_f64))
        && n >= 1.0
        && n < NO_LIMIT_SENTINEL as f64
    {
        found.push(ContextLimit {
            tokens: n as u64,
            source: format!("model_max_length in {}", config.display()),
        });
    }
    found.into_iter().min_by_key(|l| l.tokens)
}

/// Checks random prompt lengths: at least 1 token, min ≤ max, and prefix
/// plus the longest body within [`crate::range::limits::MAX_PROMPT_TOKENS`]
/// and within `limit`, the model's context, when known.
pub fn check_lengths(spec: &RandomSpec, limit: Option<&ContextLimit>) -> Result<(), PromptError> {
    let bad = |m: String| Err(PromptError::InvalidLengths(m));
    if spec.min_len == 0 {
        return bad("--min-prompt-length must be at least 1".to_string());
    }
    if spec.min_len > spec.max_len {
        return bad(format!(
            "--min-prompt-length {} is greater than --max-prompt-length {}",
            spec.min_len, spec.max_len
        ));
    }
    let cap = crate::range::limits::MAX_PROMPT_TOKENS;
    let longest = spec.longest();
    let what = if spec.prefix_len > 0 {
        format!(
            "--prefix-length {} + --max-prompt-length {}",
            spec.prefix_len, spec.max_len
        )
    } else {
        format!("--max-prompt-length {}", spec.max_len)
    };
    if longest > cap {
        return bad(format!(
            "{what} = {longest} tokens is more than the {cap} a random prompt may have"
        ));
    }
    if let Some(l) = limit
        && longest > l.tokens
    {
        return bad(format!(
            "{what} = {longest} tokens is longer than the model takes ({} tokens: {})",
            l.tokens, l.source
        ));
    }
    Ok(())
}

/// How many distinct random prompts to make for `requests` requests: all of
/// them, unless that would hold more than `budget` tokens (each prompt
/// counted at its longest plus a fixed overhead), and at least one.
pub fn distinct_prompts(spec: &RandomSpec, requests: usize, budget: u64) -> usize {
    let per_prompt = spec.longest() + PER_PROMPT_OVERHEAD;
    let fit = usize::try_from(budget / per_prompt).unwrap_or(usize::MAX);
    requests.min(fit).max(1)
}

/// [`load_tokenizer`] from sync code: local paths directly, hub ids on a
/// short-lived thread with its own runtime (so it works whether or not the
/// caller is inside a tokio runtime).
pub fn load_tokenizer_blocking(spec: &str, hub: &HubConfig) -> Result<Tokenizer, PromptError> {
    let path = Path::new(spec);
    if path.exists() {
        return load_tokenizer_path(spec, path);
    }
    let hub_err = |source| PromptError::TokenizerHub {
        spec: spec.to_string(),
        source,
    };
    let hub = Hub::new(hub.clone()).map_err(hub_err)?;
    std::thread::scope(|scope| {
        let fetch = scope.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    PromptError::Tokenizer(format!("cannot start a runtime to fetch {spec}: {e}"))
                })?;
            rt.block_on(load_tokenizer(spec, &hub))
        });
        match fetch.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Tokenizer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizer/tokenizer.json");
        Tokenizer::from_file(&path).expect("fixture tokenizer")
    }

    #[test]
    fn hub_ids() {
        assert_eq!(
            parse_hub_id("Qwen/Qwen2.5-0.5B-Instruct"),
            Some(("Qwen/Qwen2.5-0.5B-Instruct", "main"))
        );
        assert_eq!(parse_hub_id("a/b@v1.0"), Some(("a/b", "v1.0")));
        assert_eq!(parse_hub_id("./tok"), None);
        assert_eq!(parse_hub_id("/abs/path"), None);
        assert_eq!(parse_hub_id("~/tok"), None);
        assert_eq!(parse_hub_id("a/b/c"), None);
        assert_eq!(parse_hub_id("name"), None);
        assert_eq!(parse_hub_id("a/b@"), None);
        assert_eq!(parse_hub_id("../x"), None);
    }

    #[test]
    fn byte_fallback_and_word_starts() {
        assert!(is_byte_fallback("<0x0A>"));
        assert!(is_byte_fallback("<0xff>"));
        assert!(!is_byte_fallback("<0xZZ>"));
        assert!(!is_byte_fallback("<0x0A"));
        assert!(is_word_start("Ġthe", " the"));
        assert!(is_word_start("▁the", "the"));
        assert!(!is_word_start("the", "the"));
        assert!(!is_word_start("Ġ1", " 1"));
        assert!(!is_word_start("Ġa", " a"));
    }

    #[test]
    fn length_error_stats() {
        let e = input_length_error(&[10, 10, 10, 10], &[10, 12, 9, 10]);
        assert_eq!(e.prompts, 4);
        assert_eq!(e.mismatched, 2);
        assert_eq!(e.max_abs, 2);
        assert_eq!(e.net, 1);
        assert!((e.mean_abs - 0.75).abs() < 1e-12);
        assert_eq!(input_length_error(&[], &[]), InputLengthError::default());
        assert!(e.to_string().contains("2 mismatched"));
    }

    #[test]
    fn seeds_mix() {
        assert_ne!(mix(1, 0), mix(1, 1));
        assert_ne!(mix(1, 0), mix(2, 0));
        assert_eq!(mix(7, 3), mix(7, 3));
    }

    #[test]
    fn vocab_excludes_specials_and_partial_utf8() {
        let tok = fixture();
        let vocab = RandomVocab::new(&tok).expect("vocab");
        let added: Vec<u32> = tok.get_added_tokens_decoder().keys().copied().collect();
        assert!(!added.is_empty());
        for id in &added {
            assert!(!vocab.allowed().contains(id));
        }
        for &id in vocab.allowed() {
            let text = tok.decode(&[id], false).expect("decode");
            assert!(!text.contains('\u{FFFD}'), "{id} decodes to {text:?}");
        }
        // The fixture has multi-byte characters, so some byte tokens are
        // half a character and must be excluded.
        assert!(vocab.allowed().len() + added.len() < tok.get_vocab_size(true));
        assert!(vocab.pad().len() > 100);
        for &id in vocab.pad() {
            let text = tok.decode(&[id], false).expect("decode");
            assert_eq!(encode_ids(&tok, &text).expect("encode"), [id]);
        }
    }

    #[test]
    fn converges_to_exact_lengths() {
        let tok = fixture();
        let vocab = RandomVocab::new(&tok).expect("vocab");
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let empty = Exact {
            text: String::new(),
            ids: Vec::new(),
        };
        for len in [1, 2, 3, 5, 17, 64, 300] {
            let text = random_text(&tok, &vocab, &mut rng, &[], len).expect("random");
            let e = fix_length(&tok, &vocab, &mut rng, &empty, len, text).expect("fix");
            assert_eq!(e.ids.len(), len);
            assert_eq!(count_tokens(&tok, &e.text).expect("count"), len as u64);
        }
    }

    #[test]
    fn invalid_lengths() {
        let tok = fixture();
        let spec = |min_len, max_len| RandomSpec {
            min_len,
            max_len,
            prefix_len: 0,
            seed: 0,
        };
        let err = random_prompts(&tok, &spec(0, 4), 1).expect_err("min 0");
        assert!(err.to_string().contains("--min-prompt-length"), "{err}");
        let err = random_prompts(&tok, &spec(5, 4), 1).expect_err("min > max");
        assert!(err.to_string().contains("greater than"), "{err}");
    }

    #[test]
    fn prompt_memory_is_bounded_by_the_token_budget() {
        let spec = |max_len, prefix_len| RandomSpec {
            min_len: 1,
            max_len,
            prefix_len,
            seed: 0,
        };
        // Ordinary runs get one prompt per request.
        assert_eq!(
            distinct_prompts(&spec(1024, 0), 1000, PROMPT_TOKEN_BUDGET),
            1000
        );
        // Long prompts: as many as fit in the budget, at least one.
        let n = distinct_prompts(&spec(1 << 20, 0), 1000, PROMPT_TOKEN_BUDGET);
        assert_eq!(n, 15);
        assert!(n as u64 * ((1 << 20) + PER_PROMPT_OVERHEAD) <= PROMPT_TOKEN_BUDGET);
        assert_eq!(
            distinct_prompts(&spec(1 << 20, 1 << 20), 1000, PROMPT_TOKEN_BUDGET),
            7
        );
        // Many tiny prompts are bounded by their overhead.
        assert_eq!(
            distinct_prompts(&spec(1, 0), 10_000_000, PROMPT_TOKEN_BUDGET) as u64,
            PROMPT_TOKEN_BUDGET / (1 + PER_PROMPT_OVERHEAD)
        );
        assert_eq!(distinct_prompts(&spec(1024, 0), 0, PROMPT_TOKEN_BUDGET), 1);
    }

    #[test]
    fn lengths_are_checked_against_the_cap_and_the_model() {
        let spec = |max_len, prefix_len| RandomSpec {
            min_len: 1,
            max_len,
            prefix_len,
            seed: 0,
        };
        assert!(check_lengths(&spec(1 << 20, 0), None).is_ok());
        let e = check_lengths(&spec(1 << 20, 1), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--prefix-length 1 + --max-prompt-length 1048576 = 1048577 tokens"),
            "{e}"
        );
        let model = ContextLimit {
            tokens: 2048,
            source: "model_max_length in x/tokenizer_config.json".into(),
        };
        assert!(check_lengths(&spec(2048, 0), Some(&model)).is_ok());
        let e = check_lengths(&spec(2049, 0), Some(&model))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--max-prompt-length 2049 = 2049 tokens is longer than the model takes (2048 tokens: model_max_length in x/tokenizer_config.json)"),
            "{e}"
        );
    }

    #[test]
    fn context_limit_reads_tokenizer_config_and_ignores_the_no_limit_sentinel() {
        let tok = fixture();
        let hub = HubConfig {
            endpoint: "http://127.0.0.1:9".into(),
            token: None,
            cache_dir: std::env::temp_dir().join("bench-context-limit-no-cache"),
            offline: true,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = dir.path().to_str().expect("utf8");
        // No config: nothing known (the fixture sets no truncation).
        assert_eq!(context_limit(spec, &tok, &hub), None);
        let config = dir.path().join("tokenizer_config.json");
        std::fs::write(&config, r#"{"model_max_length": 1e30}"#).expect("write");
        assert_eq!(context_limit(spec, &tok, &hub), None);
        std::fs::write(&config, r#"{"model_max_length": 32768}"#).expect("write");
        let l = context_limit(spec, &tok, &hub).expect("limit");
        assert_eq!(l.tokens, 32768);
        assert!(l.source.contains("tokenizer_config.json"), "{}", l.source);
        // A tokenizer.json path looks beside the file.
        let file = dir.path().join("tokenizer.json");
        std::fs::write(&file, "{}").expect("write");
        let l = context_limit(file.to_str().expect("utf8"), &tok, &hub).expect("limit");
        assert_eq!(l.tokens, 32768);
        // A tokenizer that truncates: the smaller limit wins.
        let mut truncating = fixture();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: 4096,
                ..Default::default()
            }))
            .expect("truncation");
        let l = context_limit(spec, &truncating, &hub).expect("limit");
        assert_eq!(l.tokens, 4096);
        assert!(l.source.contains("truncation.max_length"), "{}", l.source);
    }

    #[test]
    fn for_api_shapes() {
        let text = PerfPrompt {
            prompt: Prompt::Text("hi".into()),
            prompt_tokens: None,
            output_tokens: None,
        };
        assert_eq!(
            text.for_api(ApiKind::Chat).expect("chat"),
            Prompt::Messages(vec![Message {
                role: "user".into(),
                content: "hi".into()
            }])
        );
        assert_eq!(
            text.for_api(ApiKind::Completions).expect("completions"),
            Prompt::Text("hi".into())
        );
        let chat = PerfPrompt {
            prompt: Prompt::Messages(vec![]),
            ..text
        };
        assert!(matches!(
            chat.for_api(ApiKind::Completions),
            Err(PromptError::MessagesNeedChat)
        ));
    }

    #[test]
    fn jsonl_shapes() {
        let p = |s: &str| jsonl_prompt(&serde_json::from_str(s).expect("json"));
        assert_eq!(
            p(r#"{"prompt": " hi "}"#),
            Ok(Some(Prompt::Text("hi".into())))
        );
        assert_eq!(
            p(r#"{"question": "q?"}"#),
            Ok(Some(Prompt::Text("q?".into())))
        );
        assert_eq!(p(r#"{"prompt": "  "}"#), Ok(None));
        assert_eq!(
            p(
                r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}"#
            ),
            Ok(Some(Prompt::Messages(vec![Message {
                role: "user".into(),
                content: "ab".into()
            }])))
        );
        assert!(
            p(r#"{"prompt": 3}"#)
                .expect_err("number")
                .contains("string")
        );
        assert!(p(r#"[1]"#).expect_err("list").contains("object"));
        assert!(
            p(r#"{"text": "x"}"#)
                .expect_err("no key")
                .contains("keys text")
        );
        assert!(
            p(r#"{"messages": [{"content": "x"}]}"#)
                .expect_err("role")
                .contains("messages[0]")
        );
        assert!(
            p(r#"{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#)
                .expect_err("image")
                .contains("image_url")
        );
    }
}
