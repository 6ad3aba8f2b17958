//! The run record: what a run directory holds, as serde types.
//!
//! A run directory is `run.json` (the [`RunManifest`]: tool, model, config
//! with secrets removed, dataset revisions and file hashes, status),
//! `samples/<benchmark>.jsonl` (one [`SampleRecord`] per item, appended and
//! flushed as each item completes) and the rendered reports. Every report is
//! rendered from these files alone, so `bench report DIR` can redo them and
//! later tools can compare runs without calling a model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Message, RequestError, Usage};
use crate::score::AccuracyStats;
use crate::util::{ToolInfo, write_atomic};

/// Version of `run.json` / `report.json`; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// One dataset file used by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetFileRecord {
    /// Path inside the repo.
    pub path: String,
    /// sha256 of the content.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// The revision it was read at, when not the dataset's `revision` (the
    /// parquet convert branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The commit that revision resolved to (runs before this field: see
    /// the sha256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The data a benchmark was run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Benchmark name.
    pub benchmark: String,
    /// Hub repo.
    pub repo_id: String,
    /// The revision the benchmark names: a commit sha (pinned) or a branch.
    pub revision: String,
    /// Every revision read (the dataset's, the parquet convert branch) ->
    /// the commit it resolved to; for a branch, the commit its files came
    /// from, looked up once and then kept by the cache.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commits: BTreeMap<String, String>,
    /// Files read.
    pub files: Vec<DatasetFileRecord>,
    /// What differed from the settings asked for, e.g. a few-shot split
    /// that was missing so the subset ran zero-shot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl DatasetRecord {
    /// The commit the rows came from: the revision itself when pinned, the
    /// commit a branch resolved to otherwise (the dataset's revision first,
    /// then any other, e.g. the parquet convert branch).
    pub fn commit(&self) -> &str {
        self.commits
            .get(&self.revision)
            .or_else(|| self.commits.values().next())
            .unwrap_or(&self.revision)
    }

    /// Revisions that are branches, with the commit each resolved to (a
    /// pinned sha maps to itself and is left out).
    pub fn resolved_branches(&self) -> Vec<(&str, &str)> {
        self.commits
            .iter()
            .filter(|(rev, commit)| rev != commit)
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect()
    }
}

/// The verdict of one named extractor on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// Extractor name.
    pub extractor: String,
    /// What it extracted (`None`: no answer found).
    pub extracted: Option<String>,
    /// Whether that matches the gold answer.
    pub correct: bool,
}

/// A benchmark defined in a TOML file, as the run keeps it: enough to
/// rebuild the benchmark (`bench rescore`) without the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkFileRecord {
    /// Benchmark name.
    pub benchmark: String,
    /// The file as given on the command line.
    pub path: String,
    /// sha256 of its content.
    pub sha256: String,
    /// Its content.
    pub content: String,
    /// The template file it names, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateFileRecord>,
}

/// A template file named by a benchmark file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateFileRecord {
    /// Path as written in the benchmark file (relative to it).
    pub path: String,
    /// Name it is registered under (`<benchmark>/<path>`).
    pub name: String,
    /// sha256 of its content.
    pub sha256: String,
    /// Its content.
    pub content: String,
}

/// Per-benchmark settings that define what was measured (a resumed run must
/// match them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkSettings {
    /// Benchmark name.
    pub benchmark: String,
    /// Mode.
    pub mode: String,
    /// Where the mode's rules come from.
    pub provenance: String,
    /// Few-shot examples per item.
    pub few_shot: usize,
    /// Subsets evaluated.
    pub subsets: Vec<String>,
    /// Template used and the sha256 of its source.
    pub template: String,
    /// sha256 of the template source.
    pub template_sha256: String,
    /// Named extractors, primary first.
    pub extractors: Vec<String>,
    /// Metadata keys items are grouped by in reports (besides the subset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Samples per item (`--repeats`); left out of `run.json` when 1, so
    /// records of runs without repeats read and compare as before.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeats: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Settings that must be equal for two invocations to share a run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Model name sent in requests.
    pub model: String,
    /// Server base URL (no credentials).
    pub api_base: String,
    /// `chat` or `completions`.
    pub api: String,
    /// Streaming on or off.
    pub stream: bool,
    /// Generation parameters sent with every request (merged defaults).
    pub generation: BTreeMap<String, Value>,
    /// Benchmarks and their settings.
    pub benchmarks: Vec<BenchmarkSettings>,
}

/// `run.json`: everything about a run except its items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `eval`.
    pub kind: String,
    /// Writer.
    pub tool: ToolInfo,
    /// RFC 3339 time of the first invocation.
    pub created_at: String,
    /// RFC 3339 time of the last update.
    pub updated_at: String,
    /// What is measured.
    pub settings: RunSettings,
    /// Models the server listed at `/models`.
    pub served_models: Vec<String>,
    /// Concurrency of the last invocation.
    pub concurrency: usize,
    /// `--limit` of the last invocation, as given.
    pub limit: Option<String>,
    /// Dataset provenance.
    pub datasets: Vec<DatasetRecord>,
    /// `running`, `complete` or `interrupted`.
    pub status: String,
    /// Wall time of the invocations so far, seconds.
    pub duration_s: f64,
    /// Command line, secrets masked ([`crate::redact::Redactor::command`]).
    pub command: Vec<String>,
    /// Set when this run re-graded another run's responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescored_from: Option<RescoreSource>,
    /// Set when the model ran in process (no server): which files, in what
    /// precision, on how many threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineInfo>,
    /// Benchmarks defined in files (`--benchmark-file`): each file's text
    /// and sha256, so the run can be re-graded and reported without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub benchmark_files: Vec<BenchmarkFileRecord>,
}

/// What a run record says about a model run in process by `bench eval`
/// without `--api-url` (or served by `bench serve`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Which engine ran the model (`candle`).
    pub engine: String,
    /// `--model` as given (hub id or local path).
    pub source: String,
    /// `gguf` or `safetensors`.
    pub format: String,
    /// The architecture as the files name it (`llama`, `qwen2`, ...).
    pub architecture: String,
    /// The hub revision asked for, for hub models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The commit the revision resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The files read, with their sha256 and size.
    pub files: Vec<ModelFileInfo>,
    /// Weight types as loaded: `F16 x12, F32 x13`, `bf16 as f32`, ...
    pub dtype: String,
    /// CPU threads the kernels use.
    pub threads: usize,
    /// Sequences decoded together at most.
    pub max_batch: usize,
    /// Longest prompt plus output, in tokens.
    pub max_positions: usize,
    /// Seconds to load the weights.
    pub load_s: f64,
}

/// One model file in [`EngineInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFileInfo {
    /// Path in the repo (hub) or on disk (local).
    pub path: String,
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

impl EngineInfo {
    /// One line for reports: `candle, gguf llama (Q8_0 x7, F32 x13), 2 threads, batch 8`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {} {} ({}), {} thread{}, batch {}",
            self.engine,
            self.format,
            self.architecture,
            self.dtype,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.max_batch
        )
    }
}

/// How one item ended, under the primary extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Extracted answer matches.
    Correct,
    /// Extracted answer differs.
    Wrong,
    /// No answer could be extracted.
    NoAnswer,
    /// Not correct and the response hit the token limit (`finish_reason: length`).
    Truncated,
    /// The request failed after retries.
    Failed,
}

impl Outcome {
    /// All outcomes in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Correct,
        Outcome::Wrong,
        Outcome::NoAnswer,
        Outcome::Truncated,
        Outcome::Failed,
    ];

    /// Name as written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Wrong => "wrong",
            Outcome::NoAnswer => "no_answer",
            Outcome::Truncated => "truncated",
            Outcome::Failed => "failed",
        }
    }

    /// Classify one extractor's verdict on one item.
    pub fn classify(
        failed: bool,
        finish_reason: Option<&str>,
        extracted: Option<&str>,
        correct: bool,
    ) -> Self {
        if failed {
            Outcome::Failed
        } else if correct {
            Outcome::Correct
        } else if finish_reason == Some("length") {
            Outcome::Truncated
        } else if extracted.is_none() {
            Outcome::NoAnswer
        } else {
            Outcome::Wrong
        }
    }
}

/// One line of `samples/<benchmark>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Benchmark name.
    pub benchmark: String,
    /// Subset.
    pub subset: String,
    /// Split.
    pub split: String,
    /// Row index in the split.
    pub index: usize,
    /// Which sample of the item this is (0-based) when the run asks each
    /// item several times (`--repeats`); absent in runs without repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<usize>,
    /// Dataset id if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The item's value of each of the benchmark's group keys
    /// (`category` → `STEM`), for per-group tables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, String>,
    /// Mode.
    pub mode: String,
    /// Row indices of the few-shot examples used, in prompt order (in the
    /// few-shot split, or in the mode's fixed exemplar list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shots: Vec<usize>,
    /// Prompt sent (completions API), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Messages sent (chat API), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// Visible response text (`null` when the request failed).
    pub response: Option<String>,
    /// Reasoning kept apart from the answer.
    pub reasoning: Option<String>,
    /// `stop`, `length`, ...
    pub finish_reason: Option<String>,
    /// Extracted answer per extractor (`null`: none found).
    pub extracted: BTreeMap<String, Option<String>>,
    /// Verdict per extractor.
    pub verdicts: BTreeMap<String, bool>,
    /// Primary extractor name.
    pub primary: String,
    /// Gold answer.
    pub gold: String,
    /// Primary verdict (`null` when the request failed).
    pub correct: Option<bool>,
    /// Primary outcome.
    pub outcome: Outcome,
    /// Why the request failed.
    pub error: Option<RequestError>,
    /// Latency of the successful attempt, ms.
    pub latency_ms: Option<f64>,
    /// Time to first token when streaming, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Attempts made.
    pub attempts: u32,
    /// Token usage reported by the server.
    pub usage: Option<Usage>,
    /// A loglikelihood item: the context and each choice's score, from
    /// which every metric (`acc`, `acc_norm`, `mc2`) is recomputed without
    /// a model call. Absent for generated items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loglikelihood: Option<LoglikelihoodRecord>,
    /// Per-extractor scores in [0, 1] for metrics that are not a plain
    /// right/wrong (TruthfulQA's `mc2`: the probability mass on the true
    /// answers). Reports average these instead of counting verdicts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f64>,
}

/// How the continuation's tokens were told apart from the context's in a
/// server's echoed prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    /// Context and continuation tokenised together with the model's
    /// tokenizer and sent as token ids (lm-eval's way): the continuation is
    /// the last tokens of the prompt.
    Tokenizer,
    /// Sent as text; the continuation is the tokens whose `text_offset`
    /// starts at or after the end of the context (a token straddling the
    /// join counts as continuation).
    TextOffset,
    /// Computed in process from the model's logits (token ids, like
    /// [`Boundary::Tokenizer`]).
    Engine,
}

/// One scored choice of a loglikelihood item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceRecord {
    /// The continuation scored (`" " + choice`, lm-eval's target delimiter
    /// included).
    pub continuation: String,
    /// Sum of the continuation tokens' log-probabilities.
    pub logprob: f64,
    /// Continuation tokens.
    pub tokens: usize,
    /// UTF-8 bytes of the continuation (`acc_bytes`).
    pub bytes: usize,
    /// Characters of the continuation (`acc_norm` divides by these, as
    /// lm-eval's `len(choice)`).
    pub chars: usize,
    /// Whether every continuation token was the model's top-1 choice.
    pub is_greedy: bool,
}

/// What a loglikelihood item sent and got back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoglikelihoodRecord {
    /// The context (few-shot examples and the question), exactly.
    pub context: String,
    /// How continuation tokens were found.
    pub boundary: Boundary,
    /// Each choice, in the recipe's choice order.
    pub choices: Vec<ChoiceRecord>,
    /// Requests sent for this item (1 when the choices went together as a
    /// list prompt; 0 when every choice came from the cache).
    #[serde(default)]
    pub requests: usize,
}

impl SampleRecord {
    /// Key identifying the (item, repeat) pair across invocations (a
    /// record without `repeat` is repeat 0).
    pub fn key(&self) -> (String, String, usize, usize) {
        (
            self.subset.clone(),
            self.split.clone(),
            self.index,
            self.repeat.unwrap_or(0),
        )
    }

    /// `subset/split#index`, with `/r<repeat>` when the run has repeats:
    /// how reports and comparisons name the pair.
    pub fn label(&self) -> String {
        match self.repeat {
            Some(r) => format!("{}/{}#{}/r{r}", self.subset, self.split, self.index),
            None => format!("{}/{}#{}", self.subset, self.split, self.index),
        }
    }

    /// The question as the model last saw it: the last user message of a
    /// chat, else the whole prompt.
    pub fn question(&self) -> String {
        self.messages
            .as_ref()
            .and_then(|ms| ms.iter().rev().find(|m| m.role == "user"))
            .map(|m| m.content.clone())
            .or_else(|| self.prompt.clone())
            .unwrap_or_default()
    }

    /// Everything sent, as one text (chat turns headed by their role).
    pub fn sent_text(&self) -> String {
        match (&self.prompt, &self.messages) {
            (Some(p), _) => p.clone(),
            (None, Some(ms)) => ms
                .iter()
                .map(|m| format!("[{}]\n{}", m.role, m.content))
                .collect::<Vec<_>>()
                .join("\n\n"),
            _ => String::new(),
        }
    }

    /// Fill `extracted`, `verdicts`, `correct` and `outcome` from the
    /// grades of an answered item (primary grade first).
    pub fn set_grades(&mut self, grades: &[Grade]) {
        self.extracted = grades
            .iter()
            .map(|g| (g.extractor.clone(), g.extracted.clone()))
            .collect();
        self.verdicts = grades
            .iter()
            .map(|g| (g.extractor.clone(), g.correct))
            .collect();
        if let Some(g0) = grades.first() {
            self.primary = g0.extractor.clone();
            self.correct = Some(g0.correct);
            self.outcome = Outcome::classify(
                false,
                self.finish_reason.as_deref(),
                g0.extracted.as_deref(),
                g0.correct,
            );
        }
    }

    /// The outcome under extractor `name` (the primary outcome for the primary).
    pub fn outcome_for(&self, name: &str) -> Outcome {
        let extracted = self.extracted.get(name).and_then(|e| e.as_deref());
        let correct = self.verdicts.get(name).copied().unwrap_or(false);
        Outcome::classify(
            self.error.is_some(),
            self.finish_reason.as_deref(),
            extracted,
            correct,
        )
    }
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Benchmark.
    pub benchmark: String,
    /// Subset, or `all` for the combination of several.
    pub subset: String,
    /// Mode.
    pub mode: String,
    /// Extractor.
    pub extractor: String,
    /// Whether this is the mode's primary extractor.
    pub primary: bool,
    /// Accuracy statistics (failed items count as not correct). With
    /// repeats, over every (item, repeat) pair: `n` counts pairs and the
    /// accuracy is the mean accuracy over repeats.
    #[serde(flatten)]
    pub stats: AccuracyStats,
    /// Items per outcome (pairs, with repeats).
    pub outcomes: BTreeMap<Outcome, u64>,
    /// With repeats (`--repeats N`, N > 1): per-repeat accuracies, their
    /// spread and pass@k. Absent without repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<RepeatStats>,
    /// Loglikelihood rows: the metric and its stderr under the keys of
    /// lm-eval's results JSON ([`lm_eval_names`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_eval: Option<BTreeMap<String, f64>>,
}

/// A metric and its stderr keyed as lm-eval's results JSON keys them with
/// no filter (`acc,none`, `acc_stderr,none`), so a bench row can be
/// compared with lm-eval's line for line.
pub fn lm_eval_names(metric: &str, stats: &AccuracyStats) -> BTreeMap<String, f64> {
    BTreeMap::from([
        (format!("{metric},none"), stats.accuracy),
        (format!("{metric}_stderr,none"), stats.stderr),
    ])
}

/// What several samples per item add to an accuracy: how much the accuracy
/// moves from one repeat to the next, and pass@k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatStats {
    /// Samples asked per item (N).
    pub n: usize,
    /// Distinct items.
    pub items: u64,
    /// Items with fewer than N answered samples (an interrupted run); they
    /// count in the accuracy with what they have, and in pass@k only for k
    /// up to their own sample count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub incomplete: u64,
    /// Accuracy of each repeat r = 0..N over the items that have it.
    pub per_repeat: Vec<f64>,
    /// Sample standard deviation (N − 1) of `per_repeat`: the spread of
    /// the accuracy from one repeat to the next; 0 when N < 2.
    pub std: f64,
    /// Standard error of the mean accuracy over items: the sample std
    /// (with n − 1) of each item's mean over its repeats, over
    /// sqrt(items). Unlike the pairs' stderr, it does not treat an item's
    /// repeats as independent.
    pub item_stderr: f64,
    /// pass@k for k = 1, 2, 4, ... up to N.
    pub pass_at_k: Vec<PassAtK>,
}

/// One pass@k figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PassAtK {
    /// k.
    pub k: u64,
    /// The unbiased estimate `1 - C(n-c, k)/C(n, k)` per item (c correct of
    /// its n samples), averaged over items ([`crate::score::pass_at_k`]).
    pub value: f64,
    /// Items averaged (those with at least k samples).
    pub items: u64,
}

impl RepeatStats {
    /// Statistics of `records` (every (item, repeat) pair of some items)
    /// for `n` repeats, judging each pair by `correct`.
    pub fn of<'a>(
        n: usize,
        records: impl IntoIterator<Item = &'a SampleRecord>,
        correct: impl Fn(&SampleRecord) -> bool,
    ) -> Self {
        // (samples, correct) per item, and per repeat.
        let mut per_item: BTreeMap<(&str, &str, usize), (u64, u64)> = BTreeMap::new();
        let mut per_repeat = vec![(0u64, 0u64); n];
        for r in records {
            let ok = u64::from(correct(r));
            let e = per_item
                .entry((r.subset.as_str(), r.split.as_str(), r.index))
                .or_default();
            e.0 += 1;
            e.1 += ok;
            if let Some(slot) = per_repeat.get_mut(r.repeat.unwrap_or(0)) {
                slot.0 += 1;
                slot.1 += ok;
            }
        }
        let per_repeat: Vec<f64> = per_repeat
            .iter()
            .map(|&(t, c)| if t == 0 { 0.0 } else { c as f64 / t as f64 })
            .collect();
        let std = sample_std(&per_repeat);
        let item_means: Vec<f64> = per_item
            .values()
            .map(|&(t, c)| c as f64 / t as f64)
            .collect();
        let item_stderr = if item_means.len() > 1 {
            sample_std(&item_means) / (item_means.len() as f64).sqrt()
        } else {
            0.0
        };
        let counts: Vec<(u64, u64)> = per_item.values().copied().collect();
        let pass_at_k = crate::score::pass_at_k_levels(n as u64)
            .into_iter()
            .filter_map(|k| {
                let value = crate::score::mean_pass_at_k(&counts, k)?;
                let items = counts.iter().filter(|(t, _)| *t >= k).count() as u64;
                Some(PassAtK { k, value, items })
            })
            .collect();
        Self {
            n,
            items: per_item.len() as u64,
            incomplete: per_item.values().filter(|(t, _)| *t < n as u64).count() as u64,
            per_repeat,
            std,
            item_stderr,
            pass_at_k,
        }
    }

    /// pass@k for this `k`, if reported.
    pub fn pass(&self, k: u64) -> Option<f64> {
        self.pass_at_k.iter().find(|p| p.k == k).map(|p| p.value)
    }
}

/// Sample standard deviation (n − 1); 0 for fewer than two values.
fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// `report.json`: the manifest plus the results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run.
    pub manifest: RunManifest,
    /// Accuracy rows.
    pub results: Vec<ResultRow>,
    /// Token usage totals over answered items.
    pub usage: UsageTotals,
    /// How often each pair of extractors agrees, per benchmark.
    pub agreement: Vec<AgreementRow>,
    /// Per-group accuracy (subjects, categories, levels) under each
    /// benchmark's primary extractor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupTable>,
    /// What a reader must know before trusting the table: journal lines
    /// that could not be read, a run that died while running, nothing
    /// measured. Empty for a clean run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per-instruction verdicts of checklist benchmarks (IFEval): the
    /// instruction-level accuracy (`all`) and one row per instruction kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<InstructionRow>,
}

/// Where a re-graded run's responses came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescoreSource {
    /// The original run directory.
    pub dir: String,
    /// Modes the responses were generated with, per benchmark.
    pub modes: BTreeMap<String, String>,
}

/// Verdicts of two extractors on the same answered items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    /// Benchmark (all subsets together).
    pub benchmark: String,
    /// First extractor.
    pub a: String,
    /// Second extractor.
    pub b: String,
    /// Answered items compared (failed requests excluded).
    pub n: u64,
    /// Both correct.
    pub both_correct: u64,
    /// Only `a` correct.
    pub only_a: u64,
    /// Only `b` correct.
    pub only_b: u64,
    /// Neither correct.
    pub neither: u64,
    /// Items where the extracted answers differ (after extraction, before scoring).
    pub extracted_differ: u64,
}

/// Pairwise agreement of `extractors` over a benchmark's answered records.
pub fn agreement_for(
    benchmark: &str,
    extractors: &[String],
    records: &[SampleRecord],
) -> Vec<AgreementRow> {
    let answered: Vec<&SampleRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let mut rows = Vec::new();
    for (i, a) in extractors.iter().enumerate() {
        for b in &extractors[i + 1..] {
            let mut row = AgreementRow {
                benchmark: benchmark.into(),
                a: a.clone(),
                b: b.clone(),
                n: answered.len() as u64,
                both_correct: 0,
                only_a: 0,
                only_b: 0,
                neither: 0,
                extracted_differ: 0,
            };
            for r in &answered {
                let va = r.verdicts.get(a).copied().unwrap_or(false);
                let vb = r.verdicts.get(b).copied().unwrap_or(false);
                match (va, vb) {
                    (true, true) => row.both_correct += 1,
                    (true, false) => row.only_a += 1,
                    (false, true) => row.only_b += 1,
                    (false, false) => row.neither += 1,
                }
                if r.extracted.get(a) != r.extracted.get(b) {
                    row.extracted_differ += 1;
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// Sum of reported token usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Items whose response carried usage.
    pub items_with_usage: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Mean latency of answered items, ms.
    pub mean_latency_ms: Option<f64>,
}

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// `run.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// `samples/`.
    pub fn samples_dir(&self) -> PathBuf {
        self.root.join("samples")
    }
    /// `samples/<benchmark>.jsonl`.
    pub fn journal(&self, benchmark: &str) -> PathBuf {
        self.samples_dir().join(format!("{benchmark}.jsonl"))
    }

    /// Read `run.json`.
    pub fn read_manifest(&self) -> std::io::Result<RunManifest> {
        let text = std::fs::read_to_string(self.manifest())?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", self.manifest().display()),
            )
        })
    }

    /// Write `run.json` atomically (temp file + rename), so a crash never
    /// leaves half a manifest.
    pub fn write_manifest(&self, m: &RunManifest) -> std::io::Result<()> {
        write_atomic(
            &self.manifest(),
            serde_json::to_string_pretty(m)?.as_bytes(),
        )
    }

    /// The latest record per item of `benchmark`'s journal (a retried item
    /// appears once per attempt; the last line wins). Lines that do not
    /// parse are left out; [`RunDir::read_journal_checked`] says which.
    pub fn read_journal(&self, benchmark: &str) -> std::io::Result<Vec<SampleRecord>> {
        read_journal_file(&self.journal(benchmark))
    }

    /// As [`RunDir::read_journal`], with the lines that were skipped.
    pub fn read_journal_checked(&self, benchmark: &str) -> std::io::Result<Journal> {
        read_journal_checked(&self.journal(benchmark))
    }
}

/// A line of a JSON-lines file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why (the parser's message, or "torn last line").
    pub reason: String,
}

/// A journal as read: the latest record per item and the skipped lines.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Latest record per item, in key order.
    pub records: Vec<SampleRecord>,
    /// Lines that did not parse (bad bytes, a torn last line).
    pub skipped: Vec<SkippedLine>,
}

/// A JSON-lines file as read: each value with its 1-based line number, and
/// the lines that could not be read.
#[derive(Debug, Clone)]
pub struct JsonLines<T> {
    /// Values that parsed, with their line numbers.
    pub values: Vec<(usize, T)>,
    /// Lines that did not.
    pub skipped: Vec<SkippedLine>,
}

/// Every value of a JSON-lines file that parses as `T`, with its line
/// number, and the lines that do not. A line that is not UTF-8 or not valid
/// JSON is skipped on its own (the rest is still read); a last line without
/// its newline is a write cut short by a crash and is reported as torn.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<JsonLines<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(JsonLines {
                values: vec![],
                skipped: vec![],
            });
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let complete = bytes.last().is_none_or(|&b| b == b'\n');
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if complete {
        // split leaves an empty piece after the final newline.
        lines.pop();
    }
    let last = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let n = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(v) => out.push((n, v)),
            Err(e) => skipped.push(SkippedLine {
                line: n,
                reason: if n == last && !complete {
                    format!(
                        "torn last line, {} bytes with no newline (an interrupted write)",
                        line.len()
                    )
                } else if std::str::from_utf8(line).is_err() {
                    "not UTF-8".into()
                } else {
                    e.to_string()
                },
            }),
        }
    }
    Ok(JsonLines {
        values: out,
        skipped,
    })
}

/// See [`RunDir::read_journal`].
pub fn read_journal_file(path: &Path) -> std::io::Result<Vec<SampleRecord>> {
    Ok(read_journal_checked(path)?.records)
}

/// See [`RunDir::read_journal_checked`].
pub fn read_journal_checked(path: &Path) -> std::io::Result<Journal> {
    let JsonLines { values, skipped } = read_jsonl::<SampleRecord>(path)?;
    let mut latest: BTreeMap<(String, String, usize, usize), SampleRecord> = BTreeMap::new();
    for (_, rec) in values {
        latest.insert(rec.key(), rec);
    }
    Ok(Journal {
        records: latest.into_values().collect(),
        skipped,
    })
}

/// Make a JSON-lines file safe to append to: a last line cut short by a
/// crash (no newline) would otherwise be glued to the next record and take
/// it down with it. A torn tail that still parses is completed with its
/// newline; one that does not is moved to `<file>.torn` (kept, not lost)
/// and cut off. Returns a note for the user when something was done.
pub fn repair_tail(path: &Path) -> std::io::Result<Option<String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(None);
    }
    let start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[start..];
    let line = bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1;
    if serde_json::from_slice::<Value>(tail).is_ok_and(|v| v.is_object()) {
        let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        return Ok(None);
    }
    let torn = PathBuf::from(format!("{}.torn", path.display()));
    {
        let mut t = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&torn)?;
        t.write_all(tail)?;
        t.write_all(b"\n")?;
        t.sync_data()?;
    }
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(start as u64)?;
    f.sync_data()?;
    Ok(Some(format!(
        "{}: line {line} was cut short by an interrupted write ({} bytes, no newline); it was moved to {} before appending",
        path.display(),
        tail.len(),
        torn.display()
    )))
}

/// Results rows for one benchmark's records: per subset, plus `all` when
/// there are several subsets, for every extractor; with [`RepeatStats`]
/// when the benchmark asked `repeats` > 1 samples per item.
pub fn results_for(
    benchmark: &str,
    mode: &str,
    extractors: &[String],
    repeats: usize,
    records: &[SampleRecord],
) -> Vec<ResultRow> {
    let mut subsets: Vec<String> = Vec::new();
    for r in records {
        if !subsets.contains(&r.subset) {
            subsets.push(r.subset.clone());
        }
    }
    let mut groups: Vec<(String, Vec<&SampleRecord>)> = subsets
        .iter()
        .map(|s| {
            (
                s.clone(),
                records.iter().filter(|r| &r.subset == s).collect(),
            )
        })
        .collect();
    if subsets.len() > 1 {
        groups.push(("all".into(), records.iter().collect()));
    }
    let ll = is_loglikelihood(records);
    let mut rows = Vec::new();
    for (subset, recs) in groups {
        for (i, ex) in extractors.iter().enumerate() {
            let mut outcomes: BTreeMap<Outcome, u64> =
                Outcome::ALL.iter().map(|o| (*o, 0)).collect();
            for r in &recs {
                *outcomes.entry(r.outcome_for(ex)).or_default() += 1;
            }
            let correct = outcomes[&Outcome::Correct];
            // lm-eval reports a group of loglikelihood tasks (MMLU's 57
            // subjects) as the size-weighted mean of its leaf subtasks
            // with their pooled stderr: `mmlu` pools the 57 subjects
            // directly, not its four groups (0.4.13 `Group.aggregate`).
            let stats = if subset == "all" && ll {
                let parts: Vec<AccuracyStats> = rows
                    .iter()
                    .filter(|r: &&ResultRow| r.extractor == *ex && r.subset != "all")
                    .map(|r| r.stats)
                    .collect();
                crate::score::lm_eval_group(&parts)
            } else {
                item_stats(&recs, ex, correct)
            };
            rows.push(ResultRow {
                benchmark: benchmark.into(),
                subset: subset.clone(),
                mode: mode.into(),
                extractor: ex.clone(),
                primary: i == 0,
                outcomes,
                repeats: (repeats > 1).then(|| {
                    RepeatStats::of(repeats, recs.iter().copied(), |r| {
                        r.outcome_for(ex) == Outcome::Correct
                    })
                }),
                lm_eval: ll.then(|| lm_eval_names(ex, &stats)),
                stats,
            });
        }
    }
    rows
}

/// Whether these are loglikelihood records (lm-eval's `multiple_choice`
/// recipes), whose groups are aggregated as lm-eval aggregates them.
fn is_loglikelihood(records: &[SampleRecord]) -> bool {
    records.iter().any(|r| r.loglikelihood.is_some())
}

/// Accuracy statistics of `recs` under extractor `ex`: the mean of their
/// scores when the metric is a score (failed items count 0), else
/// `correct` verdicts out of all.
fn item_stats(recs: &[&SampleRecord], ex: &str, correct: u64) -> AccuracyStats {
    if recs.iter().any(|r| r.scores.contains_key(ex)) {
        let scores: Vec<f64> = recs
            .iter()
            .map(|r| r.scores.get(ex).copied().unwrap_or(0.0))
            .collect();
        AccuracyStats::from_scores(&scores)
    } else {
        AccuracyStats::new(correct, recs.len() as u64)
    }
}

/// A benchmark with more subsets than this shows only its combined row in
/// the headline table; its subsets get a [`GroupTable`] of their own.
pub const INLINE_SUBSETS: usize = 4;

/// Accuracy per value of one grouping of a benchmark's items (by subset, or
/// by a metadata key such as `category` or `level`), under the primary
/// extractor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupTable {
    /// Benchmark.
    pub benchmark: String,
    /// Mode.
    pub mode: String,
    /// Primary extractor the verdicts come from.
    pub extractor: String,
    /// What the items are grouped by: `subset` or a metadata key.
    pub key: String,
    /// One row per value, in report order.
    pub rows: Vec<GroupRow>,
    /// Accuracy over all items of the benchmark (the micro average).
    pub micro_accuracy: f64,
    /// Mean of the groups' accuracies, each group weighing the same (the
    /// macro average).
    pub macro_accuracy: f64,
    /// Items with no value for the key (not in any row).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ungrouped: u64,
    /// How a row's figures combine its items when not simply over them
    /// ([`LM_EVAL_AGGREGATION`] for loglikelihood records). Absent: over
    /// the row's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<String>,
}

/// The [`GroupTable::aggregation`] of loglikelihood records: each row as
/// lm-eval aggregates a group (`weight_by_size: True`) of the subsets in it.
pub const LM_EVAL_AGGREGATION: &str = "lm-eval: accuracy = size-weighted mean of the row's subsets, stderr = pooled_sample_stderr of theirs";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// The group's value (`STEM`, `5`, `abstract_algebra`).
    pub value: String,
    /// Accuracy statistics (failed items count as not correct).
    #[serde(flatten)]
    pub stats: AccuracyStats,
    /// Items whose request failed.
    pub failed: u64,
    /// With repeats: per-repeat accuracies, their spread and pass@k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<RepeatStats>,
    /// Loglikelihood records: the row's metric and stderr under lm-eval's
    /// result keys ([`lm_eval_names`]), as lm-eval reports the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_eval: Option<BTreeMap<String, f64>>,
}

/// Group tables of one benchmark's records: by subset when there are more
/// than [`INLINE_SUBSETS`] subsets, then by each of `keys` (the benchmark's
/// metadata groups) that some record has. Values are in first-seen order
/// for subsets (the dataset's order) and sorted otherwise, numbers by value.
///
/// For loglikelihood records a row is what lm-eval reports for a group of
/// the subsets (subtasks) in it: [`crate::score::lm_eval_group`] of the
/// row's items split by subset, so MMLU's `lm_eval_group` table gives
/// lm-eval's `stem`, `other`, `social sciences` and `humanities` lines.
pub fn groups_for(
    benchmark: &str,
    mode: &str,
    primary: &str,
    keys: &[String],
    repeats: usize,
    records: &[SampleRecord],
) -> Vec<GroupTable> {
    if records.is_empty() {
        return Vec::new();
    }
    let ll = is_loglikelihood(records);
    let mut tables = Vec::new();
    let mut subsets: Vec<&str> = Vec::new();
    for r in records {
        if !subsets.contains(&r.subset.as_str()) {
            subsets.push(&r.subset);
        }
    }
    let micro = {
        let ok = records
            .iter()
            .filter(|r| r.outcome_for(primary) == Outcome::Correct)
            .count();
        ok as f64 / records.len() as f64
    };
    let table = |key: &str, values: Vec<String>, of: &dyn Fn(&SampleRecord) -> Option<String>| {
        let mut rows: Vec<GroupRow> = values
            .into_iter()
            .map(|value| GroupRow {
                value,
                stats: AccuracyStats::new(0, 0),
                failed: 0,
                repeats: None,
                lm_eval: None,
            })
            .collect();
        let mut counts = vec![(0u64, 0u64, 0u64); rows.len()];
        let mut ungrouped = 0;
        for r in records {
            let Some(v) = of(r) else {
                ungrouped += 1;
                continue;
            };
            let Some(i) = rows.iter().position(|g| g.value == v) else {
                continue;
            };
            counts[i].0 += 1;
            if r.outcome_for(primary) == Outcome::Correct {
                counts[i].1 += 1;
            }
            if r.error.is_some() {
                counts[i].2 += 1;
            }
        }
        for (row, (n, ok, failed)) in rows.iter_mut().zip(counts) {
            row.stats = AccuracyStats::new(ok, n);
            row.failed = failed;
            if ll {
                let parts: Vec<AccuracyStats> = subsets
                    .iter()
                    .filter_map(|s| {
                        let members: Vec<&SampleRecord> = records
                            .iter()
                            .filter(|r| {
                                r.subset == *s && of(r).as_deref() == Some(row.value.as_str())
                            })
                            .collect();
                        let ok = members
                            .iter()
                            .filter(|r| r.outcome_for(primary) == Outcome::Correct)
                            .count() as u64;
                        (!members.is_empty()).then(|| item_stats(&members, primary, ok))
                    })
                    .collect();
                row.stats = crate::score::lm_eval_group(&parts);
                row.lm_eval = Some(lm_eval_names(primary, &row.stats));
            }
            if repeats > 1 {
                let members = records
                    .iter()
                    .filter(|r| of(r).as_deref() == Some(row.value.as_str()));
                row.repeats = Some(RepeatStats::of(repeats, members, |r| {
                    r.outcome_for(primary) == Outcome::Correct
                }));
            }
        }
        let macro_accuracy = if rows.is_empty() {
            0.0
        } else {
            rows.iter().map(|g| g.stats.accuracy).sum::<f64>() / rows.len() as f64
        };
        GroupTable {
            benchmark: benchmark.into(),
            mode: mode.into(),
            extractor: primary.into(),
            key: key.into(),
            rows,
            micro_accuracy: micro,
            macro_accuracy,
            ungrouped,
            aggregation: ll.then(|| LM_EVAL_AGGREGATION.to_string()),
        }
    };
    if subsets.len() > INLINE_SUBSETS {
        let values = subsets.iter().map(|s| s.to_string()).collect();
        tables.push(table("subset", values, &|r| Some(r.subset.clone())));
    }
    for key in keys {
        let mut values: Vec<String> = records
            .iter()
            .filter_map(|r| r.groups.get(key).cloned())
            .collect();
        if values.is_empty() {
            continue;
        }
        values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
        values.dedup();
        tables.push(table(key, values, &|r| r.groups.get(key).cloned()));
    }
    tables
}

/// Usage totals over records.
pub fn usage_totals<'a>(records: impl IntoIterator<Item = &'a SampleRecord>) -> UsageTotals {
    let mut t = UsageTotals::default();
    let (mut lat_sum, mut lat_n) = (0.0, 0u64);
    for r in records {
        if let Some(u) = r.usage {
            t.items_with_usage += 1;
            t.prompt_tokens += u.prompt_tokens.unwrap_or(0);
            t.completion_tokens += u.completion_tokens.unwrap_or(0);
        }
        if let (Some(l), None) = (r.latency_ms, &r.error) {
            lat_sum += l;
            lat_n += 1;
        }
    }
    t.mean_latency_ms = (lat_n > 0).then(|| lat_sum / lat_n as f64);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graded record of `subset` with `groups`, right or wrong (or
    /// failed) under the extractor `x`.
    fn rec(
        subset: &str,
        index: usize,
        groups: &[(&str, &str)],
        verdict: Option<bool>,
    ) -> SampleRecord {
        let mut r: SampleRecord = serde_json::from_value(serde_json::json!({
            "benchmark": "b", "subset": subset, "split": "test", "index": index,
            "mode": "native", "response": "r", "reasoning": null, "finish_reason": "stop",
            "extracted": {"x": "A"}, "verdicts": {"x": verdict.unwrap_or(false)},
            "primary": "x", "gold": "A", "correct": verdict, "outcome": "correct",
            "error": null, "latency_ms": 1.0, "attempts": 1, "usage": null
        }))
        .unwrap();
        r.groups = groups
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if verdict.is_none() {
            r.response = None;
            r.error = Some(serde_json::from_value(serde_json::json!({"kind": "timeout", "status": null, "message": "t", "attempts": 1})).unwrap());
        }
        r
    }

    /// `rec` as a loglikelihood item (choices not needed: the verdict is
    /// the record's).
    fn ll_rec(subset: &str, index: usize, group: &str, ok: bool) -> SampleRecord {
        let mut r = rec(subset, index, &[("lm_eval_group", group)], Some(ok));
        r.loglikelihood = Some(LoglikelihoodRecord {
            context: "Q".into(),
            boundary: Boundary::Engine,
            choices: Vec::new(),
            requests: 1,
        });
        r
    }

    #[test]
    fn lm_eval_group_aggregation_worked_by_hand() {
        // Two groups of uneven sizes: stem = s_a (2 of 3) + s_b (1 of 5),
        // humanities = h_a (3 of 4) + h_b (1 of 2).
        let parts = [
            ("s_a", "stem", 3, 2),
            ("s_b", "stem", 5, 1),
            ("h_a", "humanities", 4, 3),
            ("h_b", "humanities", 2, 1),
        ];
        let mut recs = Vec::new();
        for (subset, group, n, ok) in parts {
            for i in 0..n {
                recs.push(ll_rec(subset, i, group, i < ok));
            }
        }
        let x = vec!["x".to_string()];
        let keys = vec!["lm_eval_group".to_string()];
        // The formulas written out. A subject's stderr: sample std (n-1)
        // over sqrt(n), for 0/1 data sqrt(p(1-p)/(n-1)).
        let se = |n: f64, ok: f64| ((ok / n) * (1.0 - ok / n) / (n - 1.0)).sqrt();
        // pooled_sample_stderr: sqrt(sum((n_i-1) se_i^2 n_i) / (N - k) / N).
        let pooled = |ps: &[(f64, f64)]| {
            let total: f64 = ps.iter().map(|p| p.0).sum();
            let k = ps.len() as f64;
            let num: f64 = ps
                .iter()
                .map(|&(n, ok)| (n - 1.0) * se(n, ok).powi(2) * n)
                .sum();
            (num / (total - k) / total).sqrt()
        };
        let stem = [(3.0, 2.0), (5.0, 1.0)];
        let hum = [(4.0, 3.0), (2.0, 1.0)];
        let want_stem = ((2.0 / 3.0) * 3.0 + 0.2 * 5.0) / 8.0;
        let want_hum = (0.75 * 4.0 + 0.5 * 2.0) / 6.0;
        // `mmlu` pools the four subjects, not the two groups: lm-eval
        // 0.4.13's Group.aggregate reads every leaf task (get_all_tasks).
        let all4 = [stem, hum].concat();
        // The same numbers from the installed lm-eval 0.4.13 itself
        // (Group.aggregate over these four fake subtasks, metrics from
        // api/metrics.py mean / mean_stderr), pasted:
        // mmlu_stem 0.375 0.17480147469502527, mmlu_humanities
        // 0.6666666666666666 0.22821773229381923, mmlu 0.5 0.13930097596485785.
        let lm_eval = [
            ("stem", 0.375, 0.174_801_474_695_025_27),
            (
                "humanities",
                0.666_666_666_666_666_6,
                0.228_217_732_293_819_23,
            ),
        ];
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(pooled(&stem), lm_eval[0].2) && close(pooled(&hum), lm_eval[1].2));
        assert!(close(pooled(&all4), 0.139_300_975_964_857_85));

        let g = groups_for("b", "lm-eval-ll", "x", &keys, 1, &recs);
        let t = g.iter().find(|t| t.key == "lm_eval_group").unwrap();
        assert_eq!(t.aggregation.as_deref(), Some(LM_EVAL_AGGREGATION));
        // Sorted by value: humanities, stem.
        let rows: Vec<(&str, u64, f64, f64)> = t
            .rows
            .iter()
            .map(|r| {
                (
                    r.value.as_str(),
                    r.stats.n,
                    r.stats.accuracy,
                    r.stats.stderr,
                )
            })
            .collect();
        assert_eq!((rows[0].0, rows[0].1), ("humanities", 6));
        assert_eq!((rows[1].0, rows[1].1), ("stem", 8));
        assert!(close(rows[0].2, want_hum) && close(rows[0].3, pooled(&hum)));
        assert!(close(rows[1].2, want_stem) && close(rows[1].3, pooled(&stem)));
        for (row, (name, acc, stderr)) in [&t.rows[1], &t.rows[0]].iter().zip(lm_eval) {
            assert_eq!(row.value, name);
            let names = row.lm_eval.as_ref().unwrap();
            assert!(close(names["x,none"], acc), "{name}");
            assert!(close(names["x_stderr,none"], stderr), "{name}");
        }
        // A subset row of the same table kind is the subject's own figures.
        let s = g.iter().find(|t| t.key == "subset");
        assert!(s.is_none(), "4 subsets are shown inline, not as a table");

        let res = results_for("b", "lm-eval-ll", &x, 1, &recs);
        let all = res.iter().find(|r| r.subset == "all").unwrap();
        assert_eq!(all.stats.n, 14);
        assert!(close(
            all.stats.accuracy,
            (want_stem * 8.0 + want_hum * 6.0) / 14.0
        ));
        assert!(close(all.stats.accuracy, 0.5));
        assert!(close(all.stats.stderr, pooled(&all4)));
        let names = all.lm_eval.as_ref().unwrap();
        assert!(close(names["x_stderr,none"], 0.139_300_975_964_857_85));
        // Not the older rule (pooled over the two group stderrs), which
        // differs in the fourth decimal here.
        let over_groups =
            crate::score::pooled_sample_stderr(&[(pooled(&stem), 8), (pooled(&hum), 6)]);
        assert!((over_groups - 0.139_591_476_900_563_03).abs() < 1e-12);
        assert!((all.stats.stderr - over_groups).abs() > 1e-4);
        let sa = res.iter().find(|r| r.subset == "s_a").unwrap();
        assert!(close(sa.stats.stderr, se(3.0, 2.0)));
        assert!(close(sa.lm_eval.as_ref().unwrap()["x,none"], 2.0 / 3.0));

        // Generation records keep plain counts and no lm-eval names.
        let plain: Vec<SampleRecord> = recs
            .iter()
            .cloned()
            .map(|mut r| {
                r.loglikelihood = None;
                r
            })
            .collect();
        let g = groups_for("b", "native", "x", &keys, 1, &plain);
        assert!(g.iter().all(|t| t.aggregation.is_none()));
        assert!(g[0].rows.iter().all(|r| r.lm_eval.is_none()));
        assert!(
            results_for("b", "native", &x, 1, &plain)
                .iter()
                .all(|r| r.lm_eval.is_none())
        );
    }

    #[test]
    fn repeat_stats_computed_by_hand() {
        // Two items, three repeats: item 0 right on r0 and r2, item 1 on
        // r1 only; item 1's r2 is missing (an interrupted run).
        let mut recs = Vec::new();
        for (i, r, ok) in [
            (0, 0, true),
            (0, 1, false),
            (0, 2, true),
            (1, 0, false),
            (1, 1, true),
        ] {
            let mut x = rec("s", i, &[], Some(ok));
            x.repeat = Some(r);
            recs.push(x);
        }
        let s = RepeatStats::of(3, &recs, |r| r.outcome_for("x") == Outcome::Correct);
        assert_eq!((s.n, s.items, s.incomplete), (3, 2, 1));
        // Per repeat: r0 1/2, r1 1/2, r2 1/1.
        assert_eq!(s.per_repeat, vec![0.5, 0.5, 1.0]);
        // Mean 2/3; squared deviations 1/36, 1/36, 4/36; / 2 = 1/12.
        assert!((s.std - (1.0f64 / 12.0).sqrt()).abs() < 1e-12);
        // Item means 2/3 and 1/2: sample std |2/3 - 1/2| / sqrt(2), over sqrt(2).
        assert!((s.item_stderr - (1.0 / 6.0) / 2.0).abs() < 1e-12);
        // pass@1 = (2/3 + 1/2) / 2; pass@2 over item 0 alone (3 samples,
        // 2 right: 1 - C(1,2)/C(3,2) = 1) and item 1 (2 samples, 1 right:
        // 1 - C(1,2)/C(2,2) = 1): both 1.
        assert_eq!(s.pass_at_k.len(), 2);
        assert!((s.pass(1).unwrap() - 7.0 / 12.0).abs() < 1e-12);
        assert_eq!((s.pass_at_k[1].k, s.pass_at_k[1].items), (2, 2));
        assert!((s.pass(2).unwrap() - 1.0).abs() < 1e-12);
        // The pair key and label carry the repeat; a record without is repeat 0.
        assert_eq!(recs[2].key(), ("s".into(), "test".into(), 0, 2));
        assert_eq!(recs[2].label(), "s/test#0/r2");
        let plain = rec("s", 4, &[], Some(true));
        assert_eq!(plain.key().3, 0);
        assert_eq!(plain.label(), "s/test#4");
        assert_eq!(sample_std(&[1.0]), 0.0);
    }

    #[test]
    fn groups_give_micro_and_macro_averages_computed_by_hand() {
        // Five subsets (more than INLINE_SUBSETS): s0 has 4 items, 3 right;
        // s1..s4 one item each, right, wrong, wrong, failed.
        let mut recs = Vec::new();
        for (i, v) in [true, true, true, false].into_iter().enumerate() {
            recs.push(rec(
                "s0",
                i,
                &[("category", "STEM"), ("level", "10")],
                Some(v),
            ));
        }
        recs.push(rec(
            "s1",
            0,
            &[("category", "other"), ("level", "2")],
            Some(true),
        ));
        recs.push(rec(
            "s2",
            0,
            &[("category", "other"), ("level", "2")],
            Some(false),
        ));
        recs.push(rec("s3", 0, &[("category", "STEM")], Some(false)));
        recs.push(rec("s4", 0, &[("category", "other"), ("level", "2")], None));
        let keys = vec!["category".to_string(), "level".to_string()];
        let g = groups_for("b", "native", "x", &keys, 1, &recs);
        assert_eq!(g.len(), 3, "{g:?}");
        let subsets = &g[0];
        assert_eq!(subsets.key, "subset");
        let values: Vec<&str> = subsets.rows.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["s0", "s1", "s2", "s3", "s4"], "first-seen order");
        // Micro: 4 right of 8. Macro: (3/4 + 1 + 0 + 0 + 0) / 5.
        assert!((subsets.micro_accuracy - 0.5).abs() < 1e-12);
        assert!((subsets.macro_accuracy - 0.35).abs() < 1e-12);
        assert_eq!(subsets.rows[4].failed, 1);
        assert_eq!(subsets.rows[4].stats.n, 1);
        let cat = &g[1];
        assert_eq!(cat.key, "category");
        let values: Vec<&str> = cat.rows.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["STEM", "other"]);
        // STEM: 3 of 5; other: 1 of 3; macro (0.6 + 1/3) / 2.
        assert_eq!((cat.rows[0].stats.correct, cat.rows[0].stats.n), (3, 5));
        assert_eq!((cat.rows[1].stats.correct, cat.rows[1].stats.n), (1, 3));
        assert!((cat.macro_accuracy - (0.6 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        // Levels sort by value (2 before 10); s3's item has no level.
        let level = &g[2];
        let values: Vec<&str> = level.rows.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["2", "10"]);
        assert_eq!(level.ungrouped, 1);
        // Few subsets: no subset table.
        let few: Vec<SampleRecord> = recs.iter().filter(|r| r.subset != "s4").cloned().collect();
        let g = groups_for("b", "native", "x", &[], 1, &few);
        assert!(g.is_empty(), "{g:?}");
    }
}

/// A checklist answer (IFEval): each instruction's id and whether it was
/// followed, written `pass id; fail id` as the extractor's answer, so the
/// journal keeps every verdict and reports read them without regrading.
pub fn checklist_text(items: &[(String, bool)]) -> String {
    items
        .iter()
        .map(|(id, ok)| format!("{} {id}", if *ok { "pass" } else { "fail" }))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The items of a [`checklist_text`] answer, or `None` when `s` is not one.
pub fn parse_checklist(s: &str) -> Option<Vec<(&str, bool)>> {
    if s.is_empty() {
        return None;
    }
    s.split("; ")
        .map(|item| {
            if let Some(id) = item.strip_prefix("pass ") {
                Some((id, true))
            } else {
                item.strip_prefix("fail ").map(|id| (id, false))
            }
        })
        .collect()
}

/// Whether a [`checklist_text`] answer has every item passed.
pub fn checklist_passed(s: &str) -> bool {
    parse_checklist(s).is_some_and(|items| items.iter().all(|(_, ok)| *ok))
}

/// How often one instruction kind (or `all`) was followed, per extractor
/// (`strict`, `loose`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructionRow {
    /// Benchmark.
    pub benchmark: String,
    /// Instruction id (`punctuation:no_comma`), or `all`.
    pub instruction: String,
    /// Instructions of this kind over the items (a failed request's
    /// instructions count, as not followed).
    pub n: u64,
    /// Followed, per extractor, in the benchmark's extractor order.
    pub followed: Vec<(String, u64)>,
}

impl InstructionRow {
    /// The share followed under `extractor`.
    pub fn accuracy(&self, extractor: &str) -> Option<f64> {
        let (_, k) = self.followed.iter().find(|(e, _)| e == extractor)?;
        (self.n > 0).then(|| *k as f64 / self.n as f64)
    }
}

/// Instruction-level rows of a benchmark whose extractors answer with
/// checklists: `all` first, then each kind in id order. Empty when some
/// answered record's primary answer is not a checklist (any other
/// benchmark). A failed request's instructions are read from its gold
/// (`id, id`) and count as not followed.
pub fn instructions_for(
    benchmark: &str,
    extractors: &[String],
    records: &[SampleRecord],
) -> Vec<InstructionRow> {
    let Some(primary) = extractors.first() else {
        return Vec::new();
    };
    let answered: Vec<&SampleRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let is_checklist = |r: &SampleRecord| {
        r.extracted
            .get(primary)
            .and_then(|x| x.as_deref())
            .is_some_and(|x| parse_checklist(x).is_some())
    };
    if answered.is_empty() || !answered.iter().all(|r| is_checklist(r)) {
        return Vec::new();
    }
    let mut rows: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    let mut all = (0u64, vec![0u64; extractors.len()]);
    for r in records {
        let ids: Vec<String> = if r.error.is_none() {
            r.extracted
                .get(primary)
                .and_then(|x| x.as_deref())
                .and_then(parse_checklist)
                .map(|items| items.iter().map(|(id, _)| id.to_string()).collect())
                .unwrap_or_default()
        } else {
            r.gold
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        for (i, id) in ids.iter().enumerate() {
            let row = rows
                .entry(id.clone())
                .or_insert_with(|| (0, vec![0; extractors.len()]));
            row.0 += 1;
            all.0 += 1;
            for (e, ex) in extractors.iter().enumerate() {
                let ok = r
                    .extracted
                    .get(ex)
                    .and_then(|x| x.as_deref())
                    .and_then(parse_checklist)
                    .and_then(|items| items.get(i).map(|(_, ok)| *ok))
                    .unwrap_or(false);
                if ok {
                    row.1[e] += 1;
                    all.1[e] += 1;
                }
            }
        }
    }
    let make = |instruction: String, (n, k): (u64, Vec<u64>)| InstructionRow {
        benchmark: benchmark.into(),
        instruction,
        n,
        followed: extractors.iter().cloned().zip(k).collect(),
    };
    std::iter::once(make("all".into(), all))
        .chain(rows.into_iter().map(|(id, v)| make(id, v)))
        .collect()
}
