//! The eval runner: datasets -> samples -> prompts -> bounded concurrent
//! requests -> journal -> verdicts -> reports.
//!
//! Owns the order of work and the "nothing lost" rules: every finished item
//! is appended (and flushed) to `samples/<benchmark>.jsonl` before the next
//! result is handled; a re-run into the same directory asks only for items
//! not yet answered (or that failed) and refuses different settings; Ctrl-C
//! (the `cancel` token) stops sending and the reports cover what finished.
//! A failed request never aborts the run: it is recorded as failed.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::benchmarks::{Benchmark, RequestKind, Sample, ShotPolicy};
use crate::client::{Client, Completion, Prompt, RequestError, ServerError, resolve_endpoints};
use crate::config::{BenchmarkPlan, EvalConfig};
use crate::dataset::{self, Row};
use crate::engine::Engine;
use crate::engine::gguf::EngineError;
use crate::engine::load::{LoadOptions, load_model};
use crate::hub::{FetchedFile, Hub, HubFile, RepoType};
use crate::prompt::Prompts;
use crate::pyrandom::PyRandom;
use crate::record::{
    BenchmarkSettings, DatasetFileRecord, DatasetRecord, Outcome, ReportData, RunDir, RunManifest,
    RunSettings, SCHEMA_VERSION, SampleRecord,
};
use crate::redact::strip_userinfo;
use crate::report;
use crate::util::{ToolInfo, now_rfc3339};

mod ll;

/// Why an eval could not run (item failures are not errors: they are
/// recorded). Each message names the flag, file, server or item at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The server cannot take the run (unreachable, refused the key, does
    /// not serve the model).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A bad client setting (`--api-url`, a header, the key).
    #[error(transparent)]
    Client(#[from] crate::client::ConfigError),
    /// Bad `--api-url` and the like.
    #[error("{0}")]
    Config(String),
    /// The run directory holds a run with other settings.
    #[error(
        "{dir} already holds a run with different settings ({field}: was {old}, now {new}); use another --output, or the same settings to resume"
    )]
    Mismatch {
        /// Run directory.
        dir: String,
        /// First differing setting.
        field: String,
        /// Recorded value.
        old: String,
        /// Requested value.
        new: String,
    },
    /// Dataset download failed.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// Dataset file unreadable.
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    /// A row could not be turned into a sample.
    #[error("{benchmark}: {file} row {index}: {message}")]
    BadRow {
        /// Benchmark.
        benchmark: String,
        /// File in the repo.
        file: String,
        /// Row index.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Template error.
    #[error(transparent)]
    Prompt(#[from] crate::prompt::PromptError),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Report rendering failed.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// The output directory holds another kind of run, or another process
    /// has it.
    #[error(transparent)]
    Claim(#[from] crate::rundir::ClaimError),
    /// Ctrl-C or SIGTERM came before anything was recorded.
    #[error("interrupted before the run started; nothing was recorded")]
    Interrupted,
    /// The server stopped accepting connections for good; what finished is
    /// journaled and reported.
    #[error(
        "stopped: {n} requests in a row could not connect to {url} after their retries (the server is gone?); the {done} item(s) answered are journaled and the reports written; run the same command again to resume"
    )]
    ServerGone {
        /// The server.
        url: String,
        /// Consecutive connect failures.
        n: usize,
        /// Items answered in this directory.
        done: usize,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into().display().to_string();
    move |source| EvalError::Io { path, source }
}

/// What a finished (or interrupted) eval produced.
#[derive(Debug)]
pub struct EvalOutput {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The report data (also in `report.json`).
    pub report: ReportData,
    /// True when Ctrl-C stopped the run early.
    pub interrupted: bool,
    /// Items requested in this invocation (not already in the journal).
    pub requested: usize,
}

/// What `api_base` says in the record of a run whose model ran in process.
pub const IN_PROCESS: &str = "in-process";

/// Who answers the requests: a server over HTTP, or the model in process.
pub(crate) enum Backend {
    Http(Box<Client>),
    Local(std::sync::Arc<Engine>),
}

impl Backend {
    async fn generate(
        &self,
        model: &str,
        prompt: &Prompt,
        params: &Map<String, Value>,
    ) -> Result<Completion, RequestError> {
        match self {
            Backend::Http(c) => c.generate(model, prompt, params).await,
            Backend::Local(e) => e.generate(prompt, params).await,
        }
    }

    fn engine_info(&self) -> Option<crate::record::EngineInfo> {
        match self {
            Backend::Http(_) => None,
            Backend::Local(e) => Some(e.info().clone()),
        }
    }
}

/// One item ready to send.
pub(crate) struct Item {
    pub(crate) sample: Sample,
    pub(crate) prompt: Prompt,
    /// Indices of the few-shot examples in their pool.
    pub(crate) shots: Vec<usize>,
}

/// One request: an item and which of its repeats (`None` in a run without
/// repeats, so its journal lines keep their old form).
struct Job {
    item: std::sync::Arc<Item>,
    repeat: Option<usize>,
}

/// The generation parameters of repeat `r`: with an integer `seed`, repeat
/// r sends `seed + r` (wrapping at the integer's bounds), so that sampled
/// repeats differ and a re-run reproduces each one. Without a seed, or for
/// repeat 0, the parameters are unchanged.
pub fn repeat_params(params: &Map<String, Value>, r: usize) -> Map<String, Value> {
    let mut out = params.clone();
    if r == 0 {
        return out;
    }
    if let Some(seed) = out.get_mut("seed") {
        // usize fits u64 on every target we build for.
        let r64 = r as u64;
        if let Some(u) = seed.as_u64() {
            *seed = Value::from(u.wrapping_add(r64));
        } else if let Some(i) = seed.as_i64() {
            *seed = Value::from(i.wrapping_add(r64 as i64));
        }
    }
    out
}

/// The warning for a plan that asks several samples per item at
/// temperature 0 (greedy decoding: the repeats will likely be the same
/// answer, and pass@k will equal the accuracy). `None` when sampling.
pub fn greedy_repeats_warning(plan: &BenchmarkPlan, cfg: &EvalConfig) -> Option<String> {
    if plan.repeats < 2 {
        return None;
    }
    let mut params: Map<String, Value> = plan.recipe.generation.clone();
    params.extend(cfg.generation.clone());
    let greedy = params
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t == 0.0);
    greedy.then(|| {
        format!(
            "{}: {} repeats at temperature 0 (greedy decoding) will likely give the same answer each time; set a temperature (and a seed) in --generation-config to sample",
            plan.bench.name, plan.repeats
        )
    })
}

/// Run an eval. `cancel` stops sending new requests and drops those in
/// flight; what finished is kept and reported.
pub async fn run_eval(cfg: EvalConfig, cancel: CancellationToken) -> Result<EvalOutput, EvalError> {
    let started = Instant::now();
    let run_dir = RunDir::new(&cfg.output);
    // Before anything else: the directory must be new or an eval run to
    // resume, and no other process may be writing it.
    let (_lock, _) = crate::rundir::claim(&cfg.output, crate::rundir::Intent::Eval)?;
    std::fs::create_dir_all(run_dir.samples_dir()).map_err(io_err(run_dir.samples_dir()))?;
    let mut prompts = Prompts::load(cfg.prompts_dir.as_deref())?;
    // Templates named by benchmark files join the embedded ones.
    for p in &cfg.benchmarks {
        if let Some((name, text)) = crate::benchmarks::file::templates(&p.bench) {
            prompts.add(&name, &text)?;
        }
    }

    let hub = Hub::new(cfg.hub.clone())?;
    // The model first: an unreachable server, an unknown model or a model
    // that cannot load should fail in seconds, before any dataset work.
    let (backend, served, api_base) = if cfg.in_process {
        let opts = LoadOptions {
            max_batch: cfg.concurrency.max(1),
            progress: cfg.progress,
        };
        // A signal during a download or a load stops it.
        let loaded = tokio::select! {
            r = load_model(&cfg.model, &hub, &opts) => r.map_err(|e| match e {
                // Eval can also ask a server: say how, where the name was not found.
                EngineError::Request(m) if m.contains("no such file") => {
                    EvalError::Config(format!("{m}; to ask a server instead, give --api-url"))
                }
                e => EvalError::Config(e.to_string()),
            })?,
            _ = cancel.cancelled() => return Err(EvalError::Interrupted),
        };
        let engine = Engine::new(loaded).map_err(|e| EvalError::Config(e.to_string()))?;
        (
            Backend::Local(std::sync::Arc::new(engine)),
            vec![cfg.model.clone()],
            IN_PROCESS.to_string(),
        )
    } else {
        let endpoints = resolve_endpoints(&cfg.client.api_url)?;
        let client = Client::new(cfg.client.clone())?;
        // A signal while waiting on a server that accepts but never answers
        // must not wait out every retry.
        let models = tokio::select! {
            r = client.list_models() => r,
            _ = cancel.cancelled() => return Err(EvalError::Interrupted),
        };
        let served = models.map_err(|source| {
            ServerError::from_models(
                source,
                strip_userinfo(&endpoints.models),
                "--api-url",
                cfg.client.api_key.is_some(),
                false,
            )
        })?;
        if !served.contains(&cfg.model) {
            return Err(ServerError::UnknownModel {
                model: cfg.model.clone(),
                url: strip_userinfo(&endpoints.base),
                served,
            }
            .into());
        }
        // Recorded and shown: credentials in the URL stay out.
        (
            Backend::Http(Box::new(client)),
            served,
            strip_userinfo(&endpoints.base),
        )
    };

    let settings = RunSettings {
        model: cfg.model.clone(),
        api_base,
        api: cfg.client.api.as_str().into(),
        stream: cfg.client.stream,
        generation: cfg.generation.clone().into_iter().collect(),
        benchmarks: cfg
            .benchmarks
            .iter()
            .map(|p| BenchmarkSettings {
                benchmark: p.bench.name.clone(),
                mode: p.recipe.id.clone(),
                provenance: p.recipe.provenance.clone(),
                few_shot: p.few_shot,
                subsets: p.subsets.iter().map(|s| s.name.clone()).collect(),
                template: p.recipe.template.clone(),
                template_sha256: prompts.hash(&p.recipe.template).unwrap_or_default(),
                extractors: p.recipe.extractor_names(),
                groups: p.group_keys().to_vec(),
                repeats: p.repeats,
            })
            .collect(),
    };
    let now = now_rfc3339();
    let mut manifest = match run_dir.read_manifest() {
        Ok(mut old) => {
            merge_settings(&run_dir, &mut old.settings, &settings)?;
            check_same_files(&run_dir, &old.benchmark_files, &cfg.benchmarks)?;
            old
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RunManifest {
            schema_version: SCHEMA_VERSION,
            kind: "eval".into(),
            tool: ToolInfo::current(),
            created_at: now.clone(),
            updated_at: now.clone(),
            settings: settings.clone(),
            served_models: vec![],
            concurrency: cfg.concurrency,
            limit: None,
            datasets: vec![],
            status: "running".into(),
            duration_s: 0.0,
            command: vec![],
            rescored_from: None,
            engine: None,
            benchmark_files: vec![],
        },
        Err(e) => return Err(io_err(run_dir.manifest())(e)),
    };
    let prior_duration = manifest.duration_s;
    manifest.tool = ToolInfo::current();
    manifest.served_models = served;
    manifest.engine = backend.engine_info();
    manifest.concurrency = cfg.concurrency;
    manifest.limit = cfg.limit_text.clone();
    manifest.command = cfg.command.clone();
    manifest.status = "running".into();
    manifest.updated_at = now;
    for p in &cfg.benchmarks {
        if let Some(f) = &p.bench.file {
            manifest
                .benchmark_files
                .retain(|o| o.benchmark != f.benchmark);
            manifest.benchmark_files.push((**f).clone());
        }
    }
    run_dir
        .write_manifest(&manifest)
        .map_err(io_err(run_dir.manifest()))?;

    // Once per run, not once per benchmark.
    let greedy: Vec<String> = cfg
        .benchmarks
        .iter()
        .filter_map(|p| greedy_repeats_warning(p, &cfg))
        .collect();
    if !greedy.is_empty() {
        eprintln!("warning: {}", greedy.join("; "));
    }

    // The tokenizer loglikelihood prompts are tokenised with (lm-eval's
    // token-id requests), when one is given and a recipe scores choices.
    let ll_tokenizer = match &cfg.tokenizer {
        Some(spec)
            if !cfg.in_process
                && cfg
                    .benchmarks
                    .iter()
                    .any(|p| p.recipe.request.loglikelihood().is_some()) =>
        {
            let t = crate::perf::prompts::load_tokenizer(spec, &hub)
                .await
                .map_err(|e| EvalError::Config(format!("--tokenizer-path {spec}: {e}")))?;
            Some(std::sync::Arc::new(t))
        }
        _ => None,
    };
    let mut interrupted = false;
    let mut requested = 0usize;
    // Each benchmark's journal as this run leaves it, for the final reports.
    let mut journals: std::collections::HashMap<String, crate::record::Journal> =
        std::collections::HashMap::new();
    for (plan_index, plan) in cfg.benchmarks.iter().enumerate() {
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        // A dataset download can take long: a signal stops it, and the run
        // ends as interrupted with the reports of what finished.
        let prepared = tokio::select! {
            r = prepare(plan, &hub, &prompts, &cfg) => r?,
            _ = cancel.cancelled() => {
                interrupted = true;
                break;
            }
        };
        let (items, mut dataset) = prepared;
        // Items answered earlier were graded against the recorded data: a
        // resume must read the very same files, or one run would mix two
        // datasets under the same row numbers.
        if let Some(old) = manifest
            .datasets
            .iter()
            .find(|d| d.benchmark == dataset.benchmark)
        {
            check_same_data(&run_dir, old, &dataset)?;
            for (rev, commit) in &old.commits {
                dataset
                    .commits
                    .entry(rev.clone())
                    .or_insert_with(|| commit.clone());
            }
            for f in &old.files {
                if !dataset.files.iter().any(|n| n.path == f.path) {
                    dataset.files.push(f.clone());
                }
            }
        }
        manifest
            .datasets
            .retain(|d| d.benchmark != dataset.benchmark);
        manifest.datasets.push(dataset);
        run_dir
            .write_manifest(&manifest)
            .map_err(io_err(run_dir.manifest()))?;

        // A line cut short by a crash would swallow the next record.
        let jpath = run_dir.journal(&plan.bench.name);
        if let Some(note) = crate::record::repair_tail(&jpath).map_err(io_err(&jpath))? {
            eprintln!("warning: {note}");
        }
        // Resume: skip (item, repeat) pairs already answered; failed ones
        // are asked again.
        let journal = run_dir
            .read_journal_checked(&plan.bench.name)
            .map_err(io_err(&jpath))?;
        if let Some(w) = report::skipped_warning(&jpath.display().to_string(), &journal.skipped) {
            eprintln!("warning: {w}; their items are asked again");
        }
        // Loglikelihood scores already journaled, per (context,
        // continuation): a resumed run asks none of them again.
        let ll_state = ll::LlState {
            cache: ll::cache_from(&journal.records),
            tokenizer: ll_tokenizer.clone(),
        };
        let done: HashSet<(String, String, usize, usize)> = journal
            .records
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| r.key())
            .collect();
        // Item by item, its repeats one after the other: a server with a
        // prefix cache sees the same prompt together.
        let mut pending: Vec<Job> = Vec::new();
        for it in items {
            let it = std::sync::Arc::new(it);
            for r in 0..plan.repeats.max(1) {
                let key = (
                    it.sample.subset.clone(),
                    it.sample.split.clone(),
                    it.sample.index,
                    r,
                );
                if !done.contains(&key) {
                    pending.push(Job {
                        item: it.clone(),
                        repeat: (plan.repeats > 1).then_some(r),
                    });
                }
            }
        }
        requested += pending.len();
        let mut sink = JournalSink::open(jpath.clone())?;
        let stop = run_items(plan, pending, &backend, &cfg, &mut sink, &cancel, ll_state).await?;
        // The journal as a reader would take it: the latest record per
        // (item, repeat), those of earlier runs first.
        let mut latest: BTreeMap<_, SampleRecord> =
            journal.records.into_iter().map(|r| (r.key(), r)).collect();
        latest.extend(sink.kept.into_iter().map(|r| (r.key(), r)));
        journals.insert(
            plan.bench.name.clone(),
            crate::record::Journal {
                records: latest.into_values().collect(),
                skipped: journal.skipped,
            },
        );
        // The manifest after each benchmark, not only at the end.
        manifest.duration_s = prior_duration + started.elapsed().as_secs_f64();
        if matches!(stop, Stop::ServerGone(_)) {
            manifest.status = "interrupted".into();
            manifest.updated_at = now_rfc3339();
        }
        run_dir
            .write_manifest(&manifest)
            .map_err(io_err(run_dir.manifest()))?;
        // Results after each benchmark, not only at the end; after the
        // last one the final write below follows at once (rendering the
        // reports of a 14,042-item run twice cost a third of its CPU).
        let last = plan_index + 1 == cfg.benchmarks.len();
        if !last && matches!(stop, Stop::Done) {
            report::write_reports(&run_dir)?;
        }
        match stop {
            Stop::Done => {}
            Stop::Cancelled => {
                interrupted = true;
                break;
            }
            Stop::ServerGone(n) => {
                let data = report::write_reports(&run_dir)?;
                let done = data
                    .results
                    .iter()
                    .filter(|r| r.primary && r.subset != "all")
                    .map(|r| r.stats.n - r.outcomes.get(&Outcome::Failed).copied().unwrap_or(0))
                    .sum::<u64>() as usize;
                return Err(EvalError::ServerGone {
                    url: manifest.settings.api_base.clone(),
                    n,
                    done,
                });
            }
        }
    }

    manifest.status = if interrupted {
        "interrupted"
    } else {
        "complete"
    }
    .into();
    manifest.updated_at = now_rfc3339();
    manifest.duration_s = prior_duration + started.elapsed().as_secs_f64();
    run_dir
        .write_manifest(&manifest)
        .map_err(io_err(run_dir.manifest()))?;
    let report = report::write_reports_from(&run_dir, journals)?;
    Ok(EvalOutput {
        run_dir: cfg.output.clone(),
        report,
        interrupted,
        requested,
    })
}

/// Resume check: the run-wide settings (model, API, generation) must be
/// the same, and so must those of every benchmark both invocations name.
/// The benchmark list itself may differ: its order does not matter, a
/// subset resumes those benchmarks, and a new benchmark joins the run.
/// `old` becomes the merged settings.
fn merge_settings(dir: &RunDir, old: &mut RunSettings, new: &RunSettings) -> Result<(), EvalError> {
    let mismatch = |field: String, o: &Value, n: &Value| EvalError::Mismatch {
        dir: dir.root.display().to_string(),
        field,
        old: short_json(o),
        new: short_json(n),
    };
    let wide = |s: &RunSettings| {
        let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("benchmarks");
        }
        v
    };
    // A run recorded before URLs lost their userinfo in records.
    old.api_base = crate::redact::strip_userinfo(&old.api_base);
    let (a, b) = (wide(old), wide(new));
    if let Some((field, o, n)) = first_difference("", &a, &b) {
        return Err(mismatch(field, &o, &n));
    }
    for nb in &new.benchmarks {
        match old
            .benchmarks
            .iter()
            .find(|ob| ob.benchmark == nb.benchmark)
        {
            Some(ob) => {
                // The mode first: it explains every other difference.
                if ob.mode != nb.mode {
                    return Err(mismatch(
                        format!("{}.mode", nb.benchmark),
                        &Value::from(ob.mode.clone()),
                        &Value::from(nb.mode.clone()),
                    ));
                }
                let a = serde_json::to_value(ob).unwrap_or(Value::Null);
                let b = serde_json::to_value(nb).unwrap_or(Value::Null);
                if let Some((field, o, n)) = first_difference(&nb.benchmark, &a, &b) {
                    return Err(mismatch(field, &o, &n));
                }
            }
            None => old.benchmarks.push(nb.clone()),
        }
    }
    Ok(())
}

/// Resume check on benchmark files: a benchmark the run took from a file
/// must come from a file with the same content (sha256), and a template
/// with the same content.
fn check_same_files(
    dir: &RunDir,
    old: &[crate::record::BenchmarkFileRecord],
    plans: &[BenchmarkPlan],
) -> Result<(), EvalError> {
    let mismatch = |field: String, o: &str, n: &str| EvalError::Mismatch {
        dir: dir.root.display().to_string(),
        field,
        old: short_json(&Value::from(o)),
        new: short_json(&Value::from(n)),
    };
    for p in plans {
        let name = &p.bench.name;
        let recorded = old.iter().find(|o| o.benchmark == *name);
        match (recorded, &p.bench.file) {
            (Some(o), Some(n)) => {
                if o.sha256 != n.sha256 {
                    return Err(mismatch(
                        format!("{name}.benchmark file {} sha256", n.path),
                        &o.sha256,
                        &n.sha256,
                    ));
                }
                let sha = |t: &Option<crate::record::TemplateFileRecord>| {
                    t.as_ref().map(|t| t.sha256.clone()).unwrap_or_default()
                };
                if sha(&o.template) != sha(&n.template) {
                    return Err(mismatch(
                        format!("{name}.benchmark template sha256"),
                        &sha(&o.template),
                        &sha(&n.template),
                    ));
                }
            }
            (Some(o), None) => {
                return Err(mismatch(
                    format!("{name}.benchmark file"),
                    &o.path,
                    "(built in)",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Resume check on the data: same repo and revision, and every file both
/// invocations read has the same sha256.
fn check_same_data(
    dir: &RunDir,
    old: &DatasetRecord,
    new: &DatasetRecord,
) -> Result<(), EvalError> {
    let mismatch = |field: String, o: &str, n: &str| EvalError::Mismatch {
        dir: dir.root.display().to_string(),
        field,
        old: short_json(&Value::from(o)),
        new: short_json(&Value::from(n)),
    };
    let b = &new.benchmark;
    if old.repo_id != new.repo_id {
        return Err(mismatch(format!("{b}.dataset"), &old.repo_id, &new.repo_id));
    }
    if !old.revision.eq_ignore_ascii_case(&new.revision) {
        return Err(mismatch(
            format!("{b}.dataset revision"),
            &old.revision,
            &new.revision,
        ));
    }
    // A branch that moved between the two invocations (its cached ref was
    // cleared) would mix two commits' rows.
    for (rev, commit) in &new.commits {
        if let Some(o) = old.commits.get(rev)
            && !o.eq_ignore_ascii_case(commit)
        {
            return Err(mismatch(format!("{b}.dataset {rev} commit"), o, commit));
        }
    }
    for f in &new.files {
        if let Some(o) = old.files.iter().find(|o| o.path == f.path)
            && !o.sha256.eq_ignore_ascii_case(&f.sha256)
        {
            return Err(mismatch(
                format!("{b}.dataset file {} sha256", f.path),
                &o.sha256,
                &f.sha256,
            ));
        }
    }
    Ok(())
}

/// A JSON value for a message: at most 80 characters.
fn short_json(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("`{s}`"),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    };
    if s.chars().count() <= 80 {
        s
    } else {
        let head: String = s.chars().take(77).collect();
        format!("{head}...")
    }
}

/// Path and values of the first difference between two JSON values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                first_difference(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some((path.to_string(), a.clone(), b.clone())),
    }
}

/// Fetch, read and render one benchmark's items.
async fn prepare(
    plan: &BenchmarkPlan,
    hub: &Hub,
    prompts: &Prompts,
    cfg: &EvalConfig,
) -> Result<(Vec<Item>, DatasetRecord), EvalError> {
    let bench = &*plan.bench;
    let recipe = &*plan.recipe;
    let src = &bench.dataset;
    let mut files = Vec::new();
    let mut items = Vec::new();
    let mut notes = Vec::new();
    for subset in &plan.subsets {
        let (rows, fetched, eval_file) =
            read_split(hub, bench, subset, &subset.eval_split, &subset.eval_path).await?;
        files.extend(fetched.iter().map(|f| file_record(f, &src.revision)));
        let take = cfg.limit.map_or(rows.len(), |l| l.apply(rows.len()));
        if take == 0 && !rows.is_empty() {
            return Err(EvalError::Config(format!(
                "--limit {}: selects no item of {}/{} ({} rows); give a whole number of items or a larger fraction",
                cfg.limit_text.as_deref().unwrap_or("?"),
                bench.name,
                subset.name,
                rows.len()
            )));
        }
        let mut k = plan.few_shot;
        // The pool few-shot examples are drawn from.
        let pool: Vec<Sample> = match (k, &recipe.shots) {
            (0, _) => vec![],
            (_, ShotPolicy::Fixed(exemplars)) => exemplars
                .iter()
                .enumerate()
                .map(|(i, f)| Sample::from_fields(f.clone(), &subset.name, "fixed", i))
                .collect(),
            (_, policy) => {
                match read_split(
                    hub,
                    bench,
                    subset,
                    &subset.fewshot_split,
                    &subset.fewshot_path,
                )
                .await
                {
                    Ok((train, fetched, fewshot_file)) => {
                        files.extend(fetched.iter().map(|f| file_record(f, &src.revision)));
                        // FirstN needs only the head of the split; the
                        // random sampler and the per-group rule draw from
                        // all of it.
                        let n = if *policy == ShotPolicy::FirstN {
                            k.min(train.len())
                        } else {
                            train.len()
                        };
                        train
                            .iter()
                            .take(n)
                            .enumerate()
                            .map(|(i, r)| {
                                to_sample(
                                    bench,
                                    &subset.name,
                                    &subset.fewshot_split,
                                    &fewshot_file,
                                    i,
                                    r,
                                )
                            })
                            .collect::<Result<Vec<_>, _>>()?
                    }
                    // A dataset whose few-shot split is often missing runs
                    // zero-shot, said on stderr and kept in run.json.
                    Err(EvalError::Hub(crate::hub::HubError::NotFound { .. }))
                        if src.fewshot_optional =>
                    {
                        let note = format!(
                            "{}/{}: few-shot split `{}` ({}) is not in {}@{}: ran 0-shot instead of {k}-shot",
                            bench.name,
                            subset.name,
                            subset.fewshot_split,
                            subset.fewshot_path,
                            src.repo_id,
                            src.revision
                        );
                        eprintln!("warning: {note}");
                        notes.push(note);
                        k = 0;
                        vec![]
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        // Per-group shots: item i's pool is the rows of its own group.
        let same_key = match &recipe.shots {
            ShotPolicy::FirstNSame { key } if k > 0 => Some(key.as_str()),
            _ => None,
        };
        if same_key.is_none() && k > pool.len() {
            return Err(EvalError::Config(format!(
                "--dataset-args {}.few_shot: {k} examples asked but the {} few-shot pool of {} has only {}",
                bench.name,
                recipe.id,
                subset.name,
                pool.len()
            )));
        }
        // lm-eval seeds one RNG per task (here: per subset) and draws for each
        // document in split order, so the draw for item i depends on i only.
        let mut rng = match recipe.shots {
            ShotPolicy::LmEvalRandom { seed } => Some(PyRandom::new(seed)),
            _ => None,
        };
        for (i, row) in rows.iter().take(take).enumerate() {
            let sample = to_sample(bench, &subset.name, &subset.eval_split, &eval_file, i, row)?;
            let shot_idx: Vec<usize> = match (rng.as_mut(), same_key) {
                (Some(r), _) if k > 0 => r.sample(pool.len(), k),
                (_, Some(key)) => {
                    let want = sample.metadata.get(key);
                    let idx: Vec<usize> = (0..pool.len())
                        .filter(|&j| want.is_some() && pool[j].metadata.get(key) == want)
                        .take(k)
                        .collect();
                    if idx.len() < k {
                        return Err(EvalError::Config(format!(
                            "--dataset-args {}.few_shot: {k} examples asked but the {} few-shot pool of {} has only {} with {key} {}",
                            bench.name,
                            recipe.id,
                            subset.name,
                            idx.len(),
                            want.map_or("(none)".to_string(), Value::to_string)
                        )));
                    }
                    idx
                }
                _ => (0..k).collect(),
            };
            let shots: Vec<Sample> = shot_idx.iter().map(|&j| pool[j].clone()).collect();
            // A loglikelihood context is plain text whatever --api says:
            // only /v1/completions echoes prompt log-probabilities.
            let api = match recipe.request {
                RequestKind::Generate => cfg.client.api,
                RequestKind::Loglikelihood(_) => crate::client::ApiKind::Completions,
            };
            let prompt = recipe.prompt(&sample, &shots, prompts, api)?;
            items.push(Item {
                sample,
                prompt,
                shots: shot_idx,
            });
        }
    }
    // Branches are looked up once (the cache then keeps their commit) and
    // recorded, so the run names the exact data even when not pinned.
    let commits = files
        .iter()
        .filter_map(|f| {
            let rev = f.revision.clone().unwrap_or_else(|| src.revision.clone());
            Some((rev, f.commit.clone()?))
        })
        .collect();
    let record = DatasetRecord {
        benchmark: bench.name.clone(),
        repo_id: src.repo_id.clone(),
        revision: src.revision.clone(),
        commits,
        files,
        notes,
    };
    Ok((items, record))
}

/// Fetches and reads the files of one split of `subset`: its one path, or
/// on the convert branch with discovery, every file the hub's parquet
/// listing names (rows concatenated in file order). Returns the rows, the
/// files, and the name errors give the split's data.
async fn read_split(
    hub: &Hub,
    bench: &Benchmark,
    subset: &crate::benchmarks::SubsetSource,
    split: &str,
    path: &str,
) -> Result<(Vec<Row>, Vec<FetchedFile>, String), EvalError> {
    let src = &bench.dataset;
    let revision = subset.revision(&src.revision);
    let paths = match &subset.convert {
        Some(c) if c.discover => {
            hub.convert_split_files(&src.repo_id, &c.config, split)
                .await?
        }
        _ => vec![path.to_string()],
    };
    let mut rows = Vec::new();
    let mut fetched = Vec::with_capacity(paths.len());
    for p in &paths {
        let f = fetch(hub, &src.repo_id, revision, p).await?;
        rows.extend(dataset::read_parquet(&f.local_path)?);
        fetched.push(f);
    }
    let shown = match paths.as_slice() {
        [one] => one.clone(),
        many => format!(
            "{} ({} files, rows numbered across them)",
            many.join(" + "),
            many.len()
        ),
    };
    Ok((rows, fetched, shown))
}

async fn fetch(
    hub: &Hub,
    repo: &str,
    revision: &str,
    path: &str,
) -> Result<FetchedFile, EvalError> {
    let file = HubFile {
        repo_type: RepoType::Dataset,
        repo_id: repo.into(),
        revision: revision.into(),
        path: path.into(),
    };
    Ok(hub.fetch(&file).await?)
}

fn file_record(f: &FetchedFile, dataset_revision: &str) -> DatasetFileRecord {
    DatasetFileRecord {
        path: f.file.path.clone(),
        sha256: f.sha256.clone(),
        size: f.size,
        revision: (f.file.revision != dataset_revision).then(|| f.file.revision.clone()),
        commit: Some(f.commit.clone()),
    }
}

fn to_sample(
    bench: &Benchmark,
    subset: &str,
    split: &str,
    file: &str,
    index: usize,
    row: &Row,
) -> Result<Sample, EvalError> {
    bench
        .sample(row, subset, split, index)
        .map_err(|message| EvalError::BadRow {
            benchmark: bench.name.clone(),
            file: file.into(),
            index,
            message,
        })
}

/// Why [`run_items`] returned.
pub(crate) enum Stop {
    /// Every item was sent.
    Done,
    /// Ctrl-C or SIGTERM.
    Cancelled,
    /// This many requests in a row could not connect after their retries.
    ServerGone(usize),
}

/// Consecutive connect failures (each after all its retries) that stop a
/// run: the server is gone, and asking every remaining item would take its
/// full retry schedule each.
pub(crate) fn server_gone_after(concurrency: usize) -> usize {
    concurrency.max(4)
}

/// Send `items` with at most `cfg.concurrency` in flight, journaling each
/// result as it arrives.
#[allow(clippy::too_many_arguments)]
/// A benchmark's journal as the run appends to it: each record is written
/// and flushed before the next (a crash or kill loses at most the items in
/// flight), and kept, so the reports at the end are built from memory
/// instead of reading back and parsing what was just written.
pub(crate) struct JournalSink {
    writer: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    kept: Vec<SampleRecord>,
}

impl JournalSink {
    fn open(path: std::path::PathBuf) -> Result<Self, EvalError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            writer: std::io::BufWriter::new(file),
            path,
            kept: Vec::new(),
        })
    }

    /// Append `rec` as one line, flushed, and keep it.
    pub(crate) fn write(&mut self, rec: SampleRecord) -> Result<(), EvalError> {
        let mut line = serde_json::to_vec(&rec).map_err(|e| EvalError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .and_then(|_| self.writer.flush())
            .map_err(io_err(&self.path))?;
        self.kept.push(rec);
        Ok(())
    }
}

async fn run_items(
    plan: &BenchmarkPlan,
    items: Vec<Job>,
    client: &Backend,
    cfg: &EvalConfig,
    journal: &mut JournalSink,
    cancel: &CancellationToken,
    ll_state: ll::LlState,
) -> Result<Stop, EvalError> {
    let bench = &*plan.bench;
    if let RequestKind::Loglikelihood(spec) = &plan.recipe.request {
        return ll::run_ll_items(
            plan,
            spec,
            items.into_iter().map(|j| j.item).collect(),
            client,
            cfg,
            journal,
            cancel,
            ll_state,
        )
        .await;
    }
    let mut params: Map<String, Value> = plan.recipe.generation.clone();
    params.extend(cfg.generation.clone());

    let bar = progress_bar(cfg.progress, &bench.name, items.len());
    let mut results = futures::stream::iter(items.into_iter().map(|job| {
        let params = &params;
        async move {
            let res = match job.repeat {
                Some(r) if r > 0 => {
                    let p = repeat_params(params, r);
                    client.generate(&cfg.model, &job.item.prompt, &p).await
                }
                _ => client.generate(&cfg.model, &job.item.prompt, params).await,
            };
            (job, res)
        }
    }))
    .buffer_unordered(cfg.concurrency.max(1));

    let mut stop = Stop::Done;
    let mut connect_failures = 0usize;
    let limit = server_gone_after(cfg.concurrency);
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => { stop = Stop::Cancelled; break; }
            next = results.next() => next,
        };
        let Some((item, res)) = next else { break };
        match &res {
            Err(e) if e.kind == crate::client::ErrorKind::Connect => connect_failures += 1,
            _ => connect_failures = 0,
        }
        journal.write(make_record(plan, item, res))?;
        bar.inc(1);
        if connect_failures >= limit {
            stop = Stop::ServerGone(connect_failures);
            break;
        }
    }
    bar.finish_and_clear();
    Ok(stop)
}

pub(crate) fn progress_bar(enabled: bool, name: &str, len: usize) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>14} [{bar:30}] {pos}/{len} {per_sec:>10} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_string());
    bar
}

/// Grade a response (or record a failure) as one journal line.
fn make_record(
    plan: &BenchmarkPlan,
    job: Job,
    res: Result<Completion, RequestError>,
) -> SampleRecord {
    let Job { item, repeat } = job;
    // The last repeat of an item takes it without copying.
    let Item {
        sample,
        prompt,
        shots,
    } = std::sync::Arc::try_unwrap(item).unwrap_or_else(|shared| Item {
        sample: shared.sample.clone(),
        prompt: shared.prompt.clone(),
        shots: shared.shots.clone(),
    });
    let (messages, prompt_text) = match prompt {
        Prompt::Messages(m) => (Some(m), None),
        Prompt::Text(t) => (None, Some(t)),
    };
    let primary = plan.recipe.primary().to_string();
    let base = SampleRecord {
        benchmark: plan.bench.name.clone(),
        subset: sample.subset.clone(),
        split: sample.split.clone(),
        index: sample.index,
        repeat,
        id: sample.id.clone(),
        groups: plan.group_values(&sample),
        mode: plan.recipe.id.clone(),
        shots,
        prompt: prompt_text,
        messages,
        response: None,
        reasoning: None,
        finish_reason: None,
        extracted: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        primary: primary.clone(),
        gold: sample.target.clone(),
        correct: None,
        outcome: Outcome::Failed,
        error: None,
        latency_ms: None,
        ttft_ms: None,
        attempts: 0,
        usage: None,
        loglikelihood: None,
        scores: BTreeMap::new(),
    };
    match res {
        Err(e) => SampleRecord {
            attempts: e.attempts,
            error: Some(e),
            ..base
        },
        Ok(c) => {
            let mut rec = SampleRecord {
                response: Some(c.text),
                reasoning: c.reasoning,
                finish_reason: c.finish_reason,
                latency_ms: Some(c.latency_ms),
                ttft_ms: c.ttft_ms,
                attempts: c.attempts,
                usage: c.usage,
                ..base
            };
            let grades = plan
                .recipe
                .grade(&sample, rec.response.as_deref().unwrap_or(""));
            rec.set_grades(&grades);
            rec
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_r_sends_seed_plus_r() {
        let params = |v: Value| v.as_object().unwrap().clone();
        let p = params(serde_json::json!({"seed": 1234, "temperature": 0.7}));
        assert_eq!(repeat_params(&p, 0), p);
        assert_eq!(repeat_params(&p, 3)["seed"], serde_json::json!(1237));
        assert_eq!(repeat_params(&p, 3)["temperature"], serde_json::json!(0.7));
        // Negative seeds stay integers; u64::MAX wraps.
        let neg = params(serde_json::json!({"seed": -2}));
        assert_eq!(repeat_params(&neg, 5)["seed"], serde_json::json!(3));
        let max = params(serde_json::json!({"seed": u64::MAX}));
        assert_eq!(repeat_params(&max, 1)["seed"], serde_json::json!(0));
        // No seed: nothing added.
        let none = params(serde_json::json!({"temperature": 1.0}));
        assert_eq!(repeat_params(&none, 2), none);
    }

    #[test]
    fn first_difference_names_the_field() {
        let a = serde_json::json!({"model": "a", "benchmarks": [{"mode": "native"}]});
        let b = serde_json::json!({"model": "a", "benchmarks": [{"mode": "lm-eval"}]});
        let (f, o, n) = first_difference("", &a, &b).unwrap();
        assert_eq!(f, "benchmarks[0].mode");
        assert_eq!(
            (short_json(&o), short_json(&n)),
            ("`native`".into(), "`lm-eval`".into())
        );
        assert!(first_difference("", &a, &a).is_none());
    }
}
