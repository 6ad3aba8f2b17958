//! The perf run record: `summary.json` (our schema, plus each level's
//! numbers under `vllm bench serve`'s key names) and `requests.jsonl` (one
//! [`RequestRecord`] per line). Reports are rendered from these two files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::{RecordLevel, RequestRecord};
use super::run::{ClientHealth, Load, Stop};
use super::server_metrics::ServerDelta;
use super::stats::{LevelCdfs, LevelStats};
use crate::record::SkippedLine;
use crate::util::ToolInfo;

/// Version of `summary.json`.
pub const PERF_SCHEMA_VERSION: u32 = 1;

/// Settings of a perf run (secrets removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfSettings {
    /// Model.
    pub model: String,
    /// Endpoint URL requests went to (userinfo masked).
    pub url: String,
    /// `chat` or `completions`.
    pub api: String,
    /// Streaming.
    pub stream: bool,
    /// Prompt source description (`random 1024-1024 tokens`, a file, ...).
    pub dataset: String,
    /// `max_tokens` sent.
    pub max_tokens: Option<u32>,
    /// `min_tokens` sent.
    pub min_tokens: Option<u32>,
    /// Extra body keys (`--extra-args`).
    pub extra_args: Map<String, Value>,
    /// Warmup requests per level.
    pub warmup: u64,
    /// Seed of prompts and arrival schedules.
    pub seed: u64,
    /// SLOs for goodput, as given.
    pub slo: Option<String>,
    /// Header names sent with `--header` (values are not recorded).
    pub headers: Vec<String>,
    /// What `requests.jsonl` keeps of each request (`--record`); runs made
    /// before the flag existed recorded every event.
    #[serde(default = "events_level")]
    pub record: RecordLevel,
}

fn events_level() -> RecordLevel {
    RecordLevel::Events
}

/// One level's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    /// Position in the sweep.
    pub index: usize,
    /// Load model.
    pub load: Load,
    /// Stop rule.
    pub stop: Stop,
    /// Short label (`c=64`).
    pub label: String,
    /// All statistics.
    pub stats: LevelStats,
    /// TTFT and E2E CDFs for the charts (absent in runs made before they
    /// were kept here: the reports then read `requests.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdf: Option<LevelCdfs>,
    /// The same numbers under `vllm bench serve`'s key names.
    pub vllm: Map<String, Value>,
    /// Client self-measurements.
    pub client: ClientHealth,
    /// Server `/metrics` deltas, when the server exposes them.
    pub server: Option<ServerDelta>,
    /// Things the reader must know (client saturation, early stops, errors).
    pub warnings: Vec<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfSummary {
    /// [`PERF_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `perf`.
    pub kind: String,
    /// Writer.
    pub tool: ToolInfo,
    /// Start time, RFC 3339.
    pub created_at: String,
    /// `running`, `complete` or `interrupted`.
    pub status: String,
    /// Settings.
    pub settings: PerfSettings,
    /// What `/models` listed.
    pub served_models: Vec<String>,
    /// Levels finished so far.
    pub levels: Vec<LevelSummary>,
    /// Command line, secrets masked ([`crate::redact::Redactor::command`]).
    pub command: Vec<String>,
}

/// Paths of a perf run directory.
#[derive(Debug, Clone)]
pub struct PerfDir {
    /// The directory.
    pub root: PathBuf,
}

impl PerfDir {
    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// `requests.jsonl`.
    pub fn requests(&self) -> PathBuf {
        self.root.join("requests.jsonl")
    }

    /// Read `summary.json`.
    pub fn read_summary(&self) -> std::io::Result<PerfSummary> {
        let text = std::fs::read_to_string(self.summary())?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", self.summary().display()),
            )
        })
    }

    /// Write `summary.json` atomically.
    pub fn write_summary(&self, s: &PerfSummary) -> std::io::Result<()> {
        crate::util::write_atomic(&self.summary(), serde_json::to_string_pretty(s)?.as_bytes())
    }

    /// Every record, grouped by level (lines that do not parse are left
    /// out; [`PerfDir::read_records_checked`] says which).
    pub fn read_records(&self) -> std::io::Result<BTreeMap<usize, Vec<RequestRecord>>> {
        Ok(self.read_records_checked()?.0)
    }

    /// As [`PerfDir::read_records`], with the lines that were skipped.
    /// A run recorded with `--record none` has no file: no records.
    pub fn read_records_checked(&self) -> std::io::Result<(LevelRecords, Vec<SkippedLine>)> {
        if !self.requests().exists() {
            return Ok((LevelRecords::new(), Vec::new()));
        }
        let lines = crate::record::read_jsonl::<RequestRecord>(&self.requests())?;
        let mut out = LevelRecords::new();
        for (_, r) in lines.values {
            out.entry(r.level).or_default().push(r);
        }
        Ok((out, lines.skipped))
    }
}

/// Request records grouped by level index.
pub type LevelRecords = BTreeMap<usize, Vec<RequestRecord>>;

/// Whether `dir` holds a perf run.
pub fn is_perf_dir(dir: &Path) -> bool {
    dir.join("summary.json").is_file() && !dir.join("run.json").is_file()
}
