//! From `--model` to a [`LoadedModel`]: where the files are (a local GGUF
//! file, a local Hugging Face model directory, or a hub id fetched into the
//! shared cache), whether they fit in memory, and the tokenizer, stop ids
//! and chat template that go with the weights.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use tokenizers::Tokenizer;

use super::chat_template::ChatTemplate;
use super::gguf::{EngineError, GgufModel};
use super::model::Transformer;
use super::runner::{EngineInfo, LoadedModel, ModelFileInfo};
use crate::hub::Hub;
use crate::hub::model::{ModelFetchOptions, ModelFiles, ModelSpec};

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A `.gguf` file on disk.
    GgufFile(PathBuf),
    /// A Hugging Face model directory on disk (`config.json`,
    /// `*.safetensors`, `tokenizer.json`, ...).
    HfDir(PathBuf),
    /// A hub model, fetched into the cache.
    Hub(ModelSpec),
}

impl ModelSource {
    /// Reads `--model`: an existing path is a local model (a `.gguf` file
    /// or a directory); otherwise it must be a hub id.
    pub fn parse(model: &str) -> Result<ModelSource, EngineError> {
        let path = Path::new(model);
        if path.is_file() {
            return Ok(ModelSource::GgufFile(path.to_path_buf()));
        }
        if path.is_dir() {
            return Ok(ModelSource::HfDir(path.to_path_buf()));
        }
        let looks_local = model.starts_with('.')
            || model.starts_with('/')
            || model.starts_with('~')
            || model.to_ascii_lowercase().ends_with(".gguf") && !model.contains(':');
        match ModelSpec::parse(model) {
            Some(spec) if !looks_local => Ok(ModelSource::Hub(spec)),
            _ => Err(EngineError::Request(format!(
                "--model {model:?}: no such file or directory, and not a hub model id \
                 (owner/name, owner/name@revision or owner/name:file.gguf)"
            ))),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Sequences decoded together at most.
    pub max_batch: usize,
    /// Draw download progress bars.
    pub progress: bool,
}

/// Fetches (for a hub id) and loads `model`, checking first that the
/// weights fit in the memory this machine has free.
pub async fn load_model(
    model: &str,
    hub: &Hub,
    opts: &LoadOptions,
) -> Result<LoadedModel, EngineError> {
    let source = ModelSource::parse(model)?;
    let (path, fetched) = match &source {
        ModelSource::GgufFile(p) | ModelSource::HfDir(p) => (p.clone(), None),
        ModelSource::Hub(spec) => {
            let files = hub
                .fetch_model(
                    spec,
                    &ModelFetchOptions {
                        progress: opts.progress,
                        verify_cached: false,
                    },
                )
                .await
                .map_err(|e| EngineError::Request(e.to_string()))?;
            let path = match files.gguf() {
                Some(g) => g.to_path_buf(),
                None => files.snapshot_dir.clone(),
            };
            (path, Some(files))
        }
    };
    let model = model.to_string();
    let opts = opts.clone();
    // Loading reads and converts gigabytes: off the async threads.
    tokio::task::spawn_blocking(move || load_path(&model, &path, fetched.as_ref(), &opts))
        .await
        .map_err(|e| EngineError::Inference(format!("loading the model: {e}")))?
}

/// Loads a local GGUF file or model directory. `fetched` is the hub
/// snapshot it came from, if any (its sha256s go in the record instead of
/// hashing the files again).
pub fn load_path(
    source: &str,
    path: &Path,
    fetched: Option<&ModelFiles>,
    opts: &LoadOptions,
) -> Result<LoadedModel, EngineError> {
    let is_gguf = path.is_file();
    let weights = weight_files(path, is_gguf)?;
    check_memory(&weights)?;
    // Local files are hashed while the weights load.
    let hasher = if fetched.is_none() {
        let files = weights.clone();
        Some(std::thread::spawn(move || hash_files(&files)))
    } else {
        None
    };
    let started = Instant::now();
    let mut loaded = if is_gguf {
        load_gguf(path, opts)?
    } else {
        load_hf_dir(path, opts)?
    };
    loaded.info.load_s = started.elapsed().as_secs_f64();
    loaded.info.source = source.to_string();
    loaded.info.engine = "candle".into();
    loaded.info.max_batch = opts.max_batch.max(1);
    loaded.info.threads = candle_core::utils::get_num_threads();
    match fetched {
        Some(f) => {
            loaded.info.revision = Some(f.spec.revision.clone());
            loaded.info.commit = Some(f.commit.clone());
            loaded.info.files = f
                .files
                .iter()
                .map(|x| ModelFileInfo {
                    path: x.file.path.clone(),
                    sha256: x.sha256.clone(),
                    size: x.size,
                })
                .collect();
        }
        None => {
            loaded.info.files = hasher
                .and_then(|h| h.join().ok())
                .transpose()?
                .unwrap_or_default();
        }
    }
    Ok(loaded)
}

/// The weight files of a model: the GGUF file, or the directory's
/// `*.safetensors`.
fn weight_files(path: &Path, is_gguf: bool) -> Result<Vec<PathBuf>, EngineError> {
    if is_gguf {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| EngineError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EngineError::Io {
            path: path.to_path_buf(),
            message: "no *.safetensors weights in this directory (and it is not a .gguf file)"
                .into(),
        });
    }
    Ok(files)
}

/// Refuses a model whose weights (held in memory in the files' own types)
/// exceed the memory available now, before reading them.
fn check_memory(weights: &[PathBuf]) -> Result<(), EngineError> {
    let on_disk: u64 = weights
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let needed = on_disk;
    if let Some(available) = available_memory()
        && needed > available
    {
        return Err(EngineError::Request(format!(
            "{}: the model needs about {:.1} GiB of memory (from its file sizes) but only {:.1} GiB \
             is available; pick a smaller or quantised model (a GGUF Q8_0 or Q4_K_M file)",
            weights[0].display(),
            gib(needed),
            gib(available)
        )));
    }
    Ok(())
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// `MemAvailable` from `/proc/meminfo` (Linux), in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

fn hash_files(files: &[PathBuf]) -> Result<Vec<ModelFileInfo>, EngineError> {
    files
        .iter()
        .map(|p| {
            let io = |e: std::io::Error| EngineError::Io {
                path: p.clone(),
                message: e.to_string(),
            };
            let (sha256, size) = crate::hub::hash_file(p).map_err(io)?;
            Ok(ModelFileInfo {
                path: p.display().to_string(),
                sha256,
                size,
            })
        })
        .collect()
}

fn load_gguf(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, EngineError> {
    let model = GgufModel::load(path)?;
    let meta = model.meta.clone();
    let tokenizer = model.tokenizer.clone();
    let text_of = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i));
    let eos_text = text_of(meta.eos_token_ids.first().copied());
    let template = match &meta.chat_template {
        Some(t) => Some(
            ChatTemplate::from_gguf(t, text_of(meta.bos_token_id), eos_text).map_err(|e| {
                EngineError::Metadata {
                    path: path.to_path_buf(),
                    key: "tokenizer.chat_template".into(),
                    message: e.to_string(),
                }
            })?,
        ),
        None => None,
    };
    let mut weights = model.model;
    weights.set_max_batch(opts.max_batch.max(1));
    Ok(LoadedModel {
        model: Box::new(weights),
        tokenizer,
        eos_ids: meta.eos_token_ids.clone(),
        bos_id: meta.bos_token_id,
        add_bos: meta.add_bos_token,
        template,
        max_positions: meta.max_positions,
        vocab_size: meta.vocab_size,
        info: EngineInfo {
            format: "gguf".into(),
            architecture: meta.architecture.clone(),
            dtype: meta.tensor_types.clone(),
            max_positions: meta.max_positions,
            ..EngineInfo::default()
        },
    })
}

fn load_hf_dir(path: &Path, opts: &LoadOptions) -> Result<LoadedModel, EngineError> {
    let io = |p: &Path, e: String| EngineError::Io {
        path: p.to_path_buf(),
        message: e,
    };
    let tok_path = path.join("tokenizer.json");
    if !tok_path.is_file() {
        return Err(io(
            &tok_path,
            "missing: a Hugging Face model directory needs its tokenizer.json".into(),
        ));
    }
    let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| io(&tok_path, e.to_string()))?;
    let config_path = path.join("config.json");
    let config: Value = read_json(&config_path)?.unwrap_or(Value::Null);
    let generation: Value = read_json(&path.join("generation_config.json"))?.unwrap_or(Value::Null);
    // Generation stops at every id either file names (Qwen2.5-Instruct
    // lists <|im_end|> and <|endoftext|> in generation_config.json).
    let mut eos_ids: Vec<u32> = Vec::new();
    for v in [&config["eos_token_id"], &generation["eos_token_id"]] {
        match v {
            Value::Number(n) => eos_ids.extend(n.as_u64().map(|x| x as u32)),
            Value::Array(a) => {
                eos_ids.extend(a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32))
            }
            _ => {}
        }
    }
    let template = match ChatTemplate::from_model_dir(path) {
        Ok(t) => Some(t),
        // No template at all is fine for --api completions; a broken one is not.
        Err(crate::engine::chat_template::TemplateError::Config(m))
            if m.contains("no chat template") =>
        {
            None
        }
        Err(e) => return Err(EngineError::Request(format!("{}: {e}", path.display()))),
    };
    // The template's eos_token, when it is a single token, ends turns too.
    if let Some(t) = &template
        && let Some((_, eos)) = t.special_tokens().iter().find(|(k, _)| k == "eos_token")
        && let Some(id) = tokenizer.token_to_id(eos)
    {
        eos_ids.push(id);
    }
    eos_ids.sort_unstable();
    eos_ids.dedup();
    if eos_ids.is_empty() {
        return Err(io(
            &config_path,
            "no eos_token_id in config.json or generation_config.json: generation could not stop"
                .into(),
        ));
    }
    let mut weights = Transformer::from_hf_dir(path)?;
    weights.set_max_batch(opts.max_batch.max(1));
    let info = weights.info().clone();
    let cfg = weights.config().clone();
    let bos_id = config["bos_token_id"].as_u64().map(|x| x as u32);
    Ok(LoadedModel {
        model: Box::new(weights),
        tokenizer,
        eos_ids,
        bos_id,
        // The tokenizer's post-processor adds BOS where the model wants it.
        add_bos: false,
        template,
        max_positions: info.max_positions,
        vocab_size: cfg.vocab_size,
        info: EngineInfo {
            format: "safetensors".into(),
            architecture: config["model_type"].as_str().unwrap_or("?").to_string(),
            dtype: info.weight_types.clone(),
            max_positions: info.max_positions,
            ..EngineInfo::default()
        },
    })
}

/// A JSON file of the model directory; `None` when it does not exist.
fn read_json(p: &Path) -> Result<Option<Value>, EngineError> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Io {
                path: p.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EngineError::Io {
            path: p.to_path_buf(),
            message: format!("not valid JSON: {e}"),
        })
}
