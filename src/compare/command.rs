//! `bench compare` from a validated [`CompareConfig`]: check the runs,
//! compare them (eval or perf), render the chosen format, write it, and
//! count what the regression gate would fail on. The command line only
//! parses flags into the config and turns the outcome into an exit code.

use std::path::{Path, PathBuf};

use super::PerfMetric;
use crate::range::limits as L;
use crate::report::{Format, ReportError};

/// What `bench compare` was asked for.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// Run directories: the first is the baseline.
    pub runs: Vec<PathBuf>,
    /// Output format.
    pub format: Format,
    /// Where to write the comparison (`None`: the caller prints
    /// [`CompareOutcome::text`]).
    pub output: Option<PathBuf>,
    /// Whether the regression gate is on (only changes a warning's wording
    /// here; the caller decides the exit code from [`CompareOutcome::worse`]).
    pub fail_on_regression: bool,
    /// Perf runs: the metric the regression gate watches.
    pub metric: &'static PerfMetric,
    /// How much worse still passes the gate: accuracy points for eval runs
    /// (default 0), percent for perf runs (default 5).
    pub threshold: Option<f64>,
}

/// What a comparison found.
#[derive(Debug, Clone)]
pub struct CompareOutcome {
    /// The rendered comparison (already written when an output was given).
    pub text: String,
    /// How many regressions (or candidates with nothing measured) the gate
    /// counts.
    pub worse: usize,
    /// What `worse` counts, for the gate's message (`{worse} {what}`).
    pub what: String,
}

/// Why a comparison could not be made or written. Each names the run or
/// flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum CompareRunError {
    /// A run directory does not exist.
    #[error("bench compare: {}: no such directory", .0.display())]
    NoSuchDir(PathBuf),
    /// A directory that is not a bench run.
    #[error("bench compare: {} is not a bench run directory (no run.json or summary.json)", .0.display())]
    NotARun(PathBuf),
    /// Eval and perf runs mixed.
    #[error("bench compare: give only eval runs or only perf runs, not both")]
    Mixed,
    /// Fewer than two runs.
    #[error("bench compare: give at least two runs (the baseline and a candidate)")]
    TooFewRuns,
    /// The output would land inside a run directory.
    #[error(
        "--output {}: {} holds a bench run, whose files a comparison must not replace; write it elsewhere",
        output.display(),
        run.display()
    )]
    OutputInsideRun {
        /// `--output`.
        output: PathBuf,
        /// The run directory above it.
        run: PathBuf,
    },
    /// The output's folder could not be made.
    #[error("--output: creating {}: {source}", path.display())]
    CreateDir {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("--output: writing {}: {source}", path.display())]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `--threshold` out of range.
    #[error("--threshold: {0}")]
    Threshold(String),
    /// A run could not be read.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The JSON output could not be made.
    #[error("rendering the comparison as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs `bench compare`: see the module docs. Warnings (candidates with
/// nothing measured) go to stderr as they are found.
pub fn run(a: &CompareConfig) -> Result<CompareOutcome, CompareRunError> {
    // Name the run at fault before deciding what kind of comparison this is.
    for d in &a.runs {
        if !d.exists() {
            return Err(CompareRunError::NoSuchDir(d.clone()));
        }
        if !crate::perf::summary::is_perf_dir(d) && !d.join("run.json").is_file() {
            return Err(CompareRunError::NotARun(d.clone()));
        }
    }
    let perf = a
        .runs
        .iter()
        .filter(|p| crate::perf::summary::is_perf_dir(p))
        .count();
    if perf > 0 && perf < a.runs.len() {
        return Err(CompareRunError::Mixed);
    }
    // Links from an HTML page to each run's report, relative to the page.
    let page_dir = a.output.as_ref().map(|o| {
        o.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    // A comparison is not part of any run: never written over a run's files.
    // Every folder above the file counts: `-o RUN/samples/x.jsonl` is inside
    // a run as much as `-o RUN/report.md`.
    if let Some(d) = &page_dir {
        let abs = std::path::absolute(d).unwrap_or_else(|_| d.clone());
        if let Some(run) = abs
            .ancestors()
            .find(|p| p.join("run.json").is_file() || p.join("summary.json").is_file())
        {
            return Err(CompareRunError::OutputInsideRun {
                output: a.output.clone().unwrap_or_default(),
                run: run.to_path_buf(),
            });
        }
    }
    if let Some(d) = &page_dir {
        std::fs::create_dir_all(d).map_err(|source| CompareRunError::CreateDir {
            path: d.clone(),
            source,
        })?;
    }
    let link = |run: &str| -> Option<String> {
        let d = page_dir.as_ref()?;
        Some(format!(
            "{}/report.html",
            crate::report::index::relative_href(d, Path::new(run))?
        ))
    };
    let (text, worse, what) = if perf > 0 {
        // Each run is read once; only the HTML page draws from the requests.
        let html = a.format == Format::Html;
        let views = a
            .runs
            .iter()
            .map(|d| {
                let dir = crate::perf::summary::PerfDir { root: d.clone() };
                Ok((
                    d.display().to_string(),
                    crate::perf::report::load_with(&dir, html)?,
                ))
            })
            .collect::<Result<Vec<_>, crate::report::ReportError>>()?;
        let (base, rest) = views.split_first().ok_or(CompareRunError::TooFewRuns)?;
        let cs: Vec<_> = rest
            .iter()
            .map(|(d, v)| super::compare_summaries(&base.1.summary, &base.0, &v.summary, d))
            .collect();
        let pc = super::render::PerfComparisons {
            runs: views,
            comparisons: cs,
        };
        let text = super::render::perf_renderer(a.format, &link).render(&pc);
        let (views, cs) = (&pc.runs, &pc.comparisons);
        let base = &views[0];
        let threshold = a.threshold.unwrap_or(5.0);
        // Levels of a candidate where nothing succeeded have all-zero
        // latencies, which would read as "better"; and a candidate sharing
        // no level with the baseline compares nothing. Neither may pass.
        let unmeasured: Vec<String> = views
            .iter()
            .skip(1)
            .zip(cs)
            .filter_map(|((d, v), c)| {
                let dead: Vec<&str> = v
                    .summary
                    .levels
                    .iter()
                    .filter(|l| {
                        l.stats.succeeded == 0
                            && base.1.summary.levels.iter().any(|b| b.label == l.label)
                    })
                    .map(|l| l.label.as_str())
                    .collect();
                if c.rows.is_empty() {
                    Some(format!("{d}: no level in common with {}", base.0))
                } else if !dead.is_empty() {
                    Some(format!("{d}: no request succeeded at {}", dead.join(", ")))
                } else {
                    None
                }
            })
            .collect();
        for u in &unmeasured {
            eprintln!("warning: {u}: nothing to compare there");
        }
        let worse: usize = cs
            .iter()
            .map(|c| super::perf_regressions(c, a.metric.key, threshold).len())
            .sum::<usize>()
            + unmeasured.len();
        let what = format!(
            "level(s) where {} got worse by more than {threshold}% (or candidates with nothing measured)",
            a.metric.key
        );
        (text, worse, what)
    } else {
        let cs = super::compare_all(&a.runs)?;
        let text = super::render::eval_renderer(a.format, &link).render(&cs);
        let points = L::THRESHOLD
            .check(a.threshold.unwrap_or(0.0))
            .map_err(CompareRunError::Threshold)?;
        // A comparison with no row at all (nothing paired) proves nothing:
        // the gate must not pass it.
        let empty: Vec<&str> = cs
            .iter()
            .filter(|c| c.rows.is_empty())
            .map(|c| c.candidate.as_str())
            .collect();
        if !empty.is_empty() {
            eprintln!(
                "warning: no item could be compared between {} and {} (see the notes){}",
                cs.first().map_or("", |c| c.baseline.as_str()),
                empty.join(", "),
                if a.fail_on_regression {
                    ": the regression gate fails"
                } else {
                    ""
                }
            );
        }
        for c in &cs {
            if !c.candidate_all_failed.is_empty() {
                eprintln!(
                    "warning: {}: every request failed in {}: nothing of it was measured",
                    c.candidate,
                    c.candidate_all_failed.join(", ")
                );
            }
        }
        let worse: usize = cs
            .iter()
            .map(|c| super::regressions(c, points).len() + c.candidate_all_failed.len())
            .sum::<usize>()
            + empty.len();
        let what = format!(
            "regression(s) (or benchmarks where the candidate measured nothing): accuracy fell{} and the paired 95% interval excludes zero",
            if points > 0.0 {
                format!(" by more than {points} points")
            } else {
                String::new()
            }
        );
        (text, worse, what)
    };
    if let Some(path) = &a.output {
        crate::util::write_atomic(path, text.as_bytes()).map_err(|source| {
            CompareRunError::Write {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(CompareOutcome { text, worse, what })
}
