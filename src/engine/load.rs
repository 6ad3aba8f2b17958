//! From `--model` to a [`LoadedModel`]: where the files are (a local GGUF
//! file, a local Hugging Face model directory, or a hub id fetched into the
//! shared cache), whether they fit in memory, and the tokenizer, stop ids
//! and chat template that go with the weights.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::BatchModel;
use super::chat_template::ChatTemplate;
use super::gguf::{EngineError, GgufModel};
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
                 (owner/name, owner/name@revision or owner/name:file.gguf); \
                 to ask a server instead, give --api-url"
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
    check_memory(&weights, is_gguf)?;
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

/// Refuses a model whose weights (as loaded: safetensors in 16 bits become
/// f32 in memory) exceed the memory available now, before reading them.
fn check_memory(weights: &[PathBuf], is_gguf: bool) -> Result<(), EngineError> {
    let on_disk: u64 = weights
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // A 16-bit safetensors file doubles as f32; a GGUF stays as it is.
    let needed = if is_gguf {
        on_disk
    } else {
        on_disk.saturating_mul(2)
    };
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

/// One sequence at a time over [`GgufModel`] (the KV cache of candle's
/// model ports holds one sequence).
struct SingleSlot {
    model: GgufModel,
    slot: Option<usize>,
    len: usize,
}

impl BatchModel for SingleSlot {
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, EngineError> {
        let mut out = Vec::with_capacity(batch.len());
        for (slot, tokens) in batch {
            if self.slot != Some(*slot) {
                if self.slot.is_some() {
                    return Err(EngineError::Inference(
                        "this model runs one sequence at a time".into(),
                    ));
                }
                self.model.clear_kv_cache();
                self.slot = Some(*slot);
                self.len = 0;
            }
            out.push(self.model.forward(tokens, self.len)?);
            self.len += tokens.len();
        }
        Ok(out)
    }

    fn free(&mut self, slot: usize) {
        if self.slot == Some(slot) {
            self.slot = None;
            self.len = 0;
        }
    }

    fn seq_len(&self, slot: usize) -> usize {
        if self.slot == Some(slot) { self.len } else { 0 }
    }

    fn max_batch(&self) -> usize {
        1
    }
}

fn load_gguf(path: &Path, _opts: &LoadOptions) -> Result<LoadedModel, EngineError> {
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
    Ok(LoadedModel {
        model: Box::new(SingleSlot {
            model,
            slot: None,
            len: 0,
        }),
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

fn load_hf_dir(path: &Path, _opts: &LoadOptions) -> Result<LoadedModel, EngineError> {
    Err(EngineError::Request(format!(
        "{}: safetensors models are not loadable yet",
        path.display()
    )))
}
