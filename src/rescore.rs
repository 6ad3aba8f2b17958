//! `bench rescore`: re-grade a finished run's stored responses with another
//! mode's extractors and scorer, without any model call, into a new run
//! directory with its own reports.
//!
//! Owns matching journal lines back to their dataset items (the samples are
//! rebuilt from the same pinned dataset files, normally straight from the
//! hub cache) and writing the re-graded run. The responses, prompts and
//! timings are kept as they were; only `extracted`, `verdicts`, `correct`
//! and `outcome` change.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::benchmarks::{self, Benchmark, Recipe, Sample};
use crate::dataset;
use crate::hub::{Hub, HubConfig, HubFile, RepoType};
use crate::record::{DatasetRecord, Outcome, RescoreSource, RunDir, SampleRecord};
use crate::report;
use crate::util::{ToolInfo, now_rfc3339, write_atomic};

/// Why a rescore could not run; each message names the run, benchmark or mode.
#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    /// The source is not a run directory, or a file cannot be read/written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// A benchmark of the run does not support the mode.
    #[error("--mode {mode}: benchmark `{benchmark}` has no such mode (modes: {available})")]
    UnsupportedMode {
        /// Mode asked for.
        mode: String,
        /// Benchmark.
        benchmark: String,
        /// Its modes.
        available: String,
    },
    /// The run names a benchmark this binary does not know.
    #[error("{dir}: unknown benchmark `{benchmark}` (written by another version of bench?)")]
    UnknownBenchmark {
        /// Run directory.
        dir: String,
        /// Benchmark.
        benchmark: String,
    },
    /// A benchmark file kept in run.json no longer reads.
    #[error("{dir}: run.json keeps a benchmark file this bench cannot read: {message}")]
    BenchmarkFile {
        /// Run directory.
        dir: String,
        /// The file's error.
        message: String,
    },
    /// Dataset files could not be loaded.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// Dataset file unreadable.
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    /// A journal line names an item the dataset does not have.
    #[error(
        "{benchmark}: the journal names {subset}/{split} row {index}, which the dataset does not have"
    )]
    MissingItem {
        /// Benchmark.
        benchmark: String,
        /// Subset.
        subset: String,
        /// Split.
        split: String,
        /// Row.
        index: usize,
    },
    /// A row could not be read as a sample.
    #[error("{benchmark}: {file} row {index}: {message}")]
    BadRow {
        /// Benchmark.
        benchmark: String,
        /// File.
        file: String,
        /// Row.
        index: usize,
        /// Problem.
        message: String,
    },
    /// The run records no dataset provenance for a benchmark, so what it
    /// was graded against cannot be checked.
    #[error(
        "{dir}: run.json records no dataset revision for `{benchmark}`; bench rescore grades only against the exact files a run used"
    )]
    NoProvenance {
        /// Run directory.
        dir: String,
        /// Benchmark.
        benchmark: String,
    },
    /// A subset's file is not among those the run recorded.
    #[error(
        "{benchmark}: the run did not record `{path}` of {repo}@{revision} (it read: {recorded}); this bench reads its subsets from other files, so it cannot re-grade that run"
    )]
    UnrecordedFile {
        /// Benchmark.
        benchmark: String,
        /// File wanted.
        path: String,
        /// Repo.
        repo: String,
        /// Revision the run used.
        revision: String,
        /// Files the run recorded.
        recorded: String,
    },
    /// The file fetched is not the one the run used.
    #[error(
        "{benchmark}: {repo}@{revision}/{path} has sha256 {found}, but the run recorded {recorded}; refusing to grade against other data"
    )]
    Sha256Mismatch {
        /// Benchmark.
        benchmark: String,
        /// Repo.
        repo: String,
        /// Revision.
        revision: String,
        /// File.
        path: String,
        /// What run.json says.
        recorded: String,
        /// What the file has now.
        found: String,
    },
    /// The output directory holds a run this command did not make, or is
    /// the source itself, or another process has it.
    #[error(transparent)]
    Claim(#[from] crate::rundir::ClaimError),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What `bench rescore` needs.
#[derive(Debug, Clone)]
pub struct RescoreConfig {
    /// The finished run.
    pub source: PathBuf,
    /// Mode (recipe id) whose extractors and scorer to apply.
    pub mode: String,
    /// Where to write (default `<source>/rescore-<mode>`).
    pub output: Option<PathBuf>,
    /// Hub settings (the dataset files are normally already cached).
    pub hub: HubConfig,
}

/// Re-grade `cfg.source` under `cfg.mode`; returns the new run directory.
pub async fn rescore(
    cfg: RescoreConfig,
) -> Result<(PathBuf, crate::record::ReportData), RescoreError> {
    let src = RunDir::new(&cfg.source);
    let view = report::load(&src)?;
    let mut manifest = view.data.manifest.clone();
    // A run written before URLs lost their userinfo in records: not copied on.
    let strip = crate::redact::strip_userinfo;
    manifest.settings.api_base = strip(&manifest.settings.api_base);
    manifest.command = manifest.command.iter().map(|a| strip(a)).collect();
    let out = cfg
        .output
        .clone()
        .unwrap_or_else(|| cfg.source.join(format!("rescore-{}", cfg.mode)));
    let dst = RunDir::new(&out);
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| RescoreError::Io { path, source }
    };
    let hub = Hub::new(cfg.hub.clone())?;
    // Benchmarks defined in files come back from the record, not the files.
    let registry =
        benchmarks::file::registry_from_records(&manifest.benchmark_files).map_err(|e| {
            RescoreError::BenchmarkFile {
                dir: cfg.source.display().to_string(),
                message: e.to_string(),
            }
        })?;

    // Everything is checked and graded in memory first: a rescore that
    // fails half way must leave no half-written output behind.
    let mut original_modes = BTreeMap::new();
    let mut graded: Vec<(String, Vec<SampleRecord>)> = Vec::new();
    for b in manifest.settings.benchmarks.iter_mut() {
        let bench = registry
            .get(&b.benchmark)
            .ok_or_else(|| RescoreError::UnknownBenchmark {
                dir: cfg.source.display().to_string(),
                benchmark: b.benchmark.clone(),
            })?;
        let mode = bench
            .recipe(&cfg.mode)
            .ok_or_else(|| RescoreError::UnsupportedMode {
                mode: cfg.mode.clone(),
                benchmark: b.benchmark.clone(),
                available: bench.recipe_ids().join(", "),
            })?;
        original_modes.insert(b.benchmark.clone(), b.mode.clone());
        let records = view
            .samples
            .iter()
            .find(|(n, _)| *n == b.benchmark)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(records.len());
        // A benchmark the run never reached has no items (and no dataset
        // record): nothing to grade.
        if !records.is_empty() {
            let recorded = view
                .data
                .manifest
                .datasets
                .iter()
                .find(|d| d.benchmark == b.benchmark)
                .ok_or_else(|| RescoreError::NoProvenance {
                    dir: cfg.source.display().to_string(),
                    benchmark: b.benchmark.clone(),
                })?;
            let samples = load_samples(&bench, &hub, recorded, &records).await?;
            for rec in records {
                let key = (rec.subset.clone(), rec.split.clone(), rec.index);
                let sample = samples.get(&key).ok_or_else(|| RescoreError::MissingItem {
                    benchmark: b.benchmark.clone(),
                    subset: rec.subset.clone(),
                    split: rec.split.clone(),
                    index: rec.index,
                })?;
                out.push(regrade(mode, sample, rec));
            }
        }
        graded.push((b.benchmark.clone(), out));
        // The responses still come from the original prompts: keep the
        // template fields, change what grading means.
        b.mode = mode.id.clone();
        b.provenance = mode.provenance.clone();
        b.extractors = mode.extractor_names();
    }

    // The source is never written: the output must be new, or this same
    // rescore's earlier output (the source itself is an eval run, so
    // `--output SOURCE` is refused here).
    let (_lock, _) = crate::rundir::claim(
        &out,
        crate::rundir::Intent::Rescore {
            source: &cfg.source,
            mode: &cfg.mode,
        },
    )?;
    std::fs::create_dir_all(dst.samples_dir()).map_err(io(&dst.samples_dir()))?;
    // run.json first: a rescore killed while writing the journals leaves a
    // directory that is still recognisably this rescore, and redoable.
    manifest.tool = ToolInfo::current();
    manifest.updated_at = now_rfc3339();
    manifest.rescored_from = Some(RescoreSource {
        dir: cfg.source.display().to_string(),
        modes: original_modes,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| RescoreError::Io {
        path: dst.manifest().display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(&dst.manifest(), &bytes).map_err(io(&dst.manifest()))?;
    for (name, records) in &graded {
        let path = dst.journal(name);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        for rec in records {
            let mut line = serde_json::to_vec(rec).map_err(|e| RescoreError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
            line.push(b'\n');
            w.write_all(&line).map_err(io(&path))?;
        }
        w.flush().map_err(io(&path))?;
    }
    let data = report::write_reports(&dst)?;
    Ok((out, data))
}

/// Grade one stored response under `mode`.
pub fn regrade(mode: &Recipe, sample: &Sample, rec: SampleRecord) -> SampleRecord {
    let primary = mode.primary().to_string();
    let mut out = SampleRecord {
        mode: mode.id.clone(),
        primary,
        gold: sample.target.clone(),
        extracted: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        correct: None,
        outcome: Outcome::Failed,
        ..rec
    };
    // A loglikelihood item keeps its scores: every metric is recomputed
    // from them (acc <-> acc_norm) without a call.
    out.scores.clear();
    if let Some(spec) = mode.request.loglikelihood() {
        if let Some(ll) = out.loglikelihood.take() {
            if out.error.is_none() {
                spec.apply(sample, &mut out, ll);
            } else {
                out.loglikelihood = Some(ll);
            }
        }
        return out;
    }
    let Some(response) = out.response.clone().filter(|_| out.error.is_none()) else {
        return out;
    };
    out.set_grades(&mode.grade(sample, &response));
    out
}

/// The samples the records refer to, keyed by (subset, split, index),
/// read from the repo, revision and files the run recorded (whatever this
/// binary pins now), each checked against its recorded sha256.
async fn load_samples(
    bench: &Benchmark,
    hub: &Hub,
    recorded: &DatasetRecord,
    records: &[SampleRecord],
) -> Result<HashMap<(String, String, usize), Sample>, RescoreError> {
    let mut out = HashMap::new();
    for subset in &bench.dataset.subsets {
        if !records
            .iter()
            .any(|r| r.subset == subset.name && r.split == subset.eval_split)
        {
            continue;
        }
        // A discovered convert-branch split may be several files, read in
        // order as the run read them; else the one eval path.
        let wants: Vec<&crate::record::DatasetFileRecord> = match &subset.convert {
            Some(c) if c.discover => {
                let prefix = format!("{}/{}/", c.config, subset.eval_split);
                let mut v: Vec<_> = recorded
                    .files
                    .iter()
                    .filter(|f| f.path.starts_with(&prefix))
                    .collect();
                v.sort_by(|a, b| a.path.cmp(&b.path));
                v.dedup_by(|a, b| a.path == b.path);
                v
            }
            _ => recorded
                .files
                .iter()
                .find(|f| f.path == subset.eval_path)
                .into_iter()
                .collect(),
        };
        if wants.is_empty() {
            return Err(RescoreError::UnrecordedFile {
                benchmark: bench.name.clone(),
                path: subset.eval_path.clone(),
                repo: recorded.repo_id.clone(),
                revision: recorded.revision.clone(),
                recorded: recorded
                    .files
                    .iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut i = 0usize;
        for want in wants {
            // The exact commit the run read (a branch may have moved since);
            // runs recorded before commits were kept use the revision.
            let revision = want
                .commit
                .clone()
                .or_else(|| want.revision.clone())
                .unwrap_or_else(|| recorded.revision.clone());
            let file = HubFile {
                repo_type: RepoType::Dataset,
                repo_id: recorded.repo_id.clone(),
                revision,
                path: want.path.clone(),
            };
            let fetched = hub.fetch(&file).await?;
            if !fetched.sha256.eq_ignore_ascii_case(&want.sha256) {
                return Err(RescoreError::Sha256Mismatch {
                    benchmark: bench.name.clone(),
                    repo: recorded.repo_id.clone(),
                    revision: file.revision.clone(),
                    path: want.path.clone(),
                    recorded: want.sha256.clone(),
                    found: fetched.sha256.clone(),
                });
            }
            for row in dataset::read_parquet(&fetched.local_path)?.iter() {
                let s = bench
                    .sample(row, &subset.name, &subset.eval_split, i)
                    .map_err(|message| RescoreError::BadRow {
                        benchmark: bench.name.clone(),
                        file: want.path.clone(),
                        index: i,
                        message,
                    })?;
                out.insert((s.subset.clone(), s.split.clone(), i), s);
                i += 1;
            }
        }
    }
    Ok(out)
}
