//! Reports rendered from a run directory: markdown, HTML, JSON, and the
//! terminal table.
//!
//! Owns turning the run record (`run.json` + `samples/*.jsonl`) into
//! [`ReportData`] and rendering it. Every format implements [`Renderer`]
//! (hyperfine's exporter idea), so a new format is one file with one method.
//! Reports are pure functions of the run directory: `bench report DIR`
//! re-renders them at any time without a model call.

pub mod html;
pub mod index;
pub mod json;
pub mod markdown;
pub mod svg;

use std::path::Path;

use crate::record::{self, Outcome, ReportData, RunDir, RunManifest, SampleRecord};

/// Errors reading a run directory or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Missing or unreadable file.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a run directory.
    #[error("{0} is not a bench run directory (no run.json)")]
    NotARun(String),
}

/// Everything a renderer may show: the report data and every item.
#[derive(Debug)]
pub struct RunView {
    /// Summary (also `report.json`).
    pub data: ReportData,
    /// Items per benchmark, in manifest order.
    pub samples: Vec<(String, Vec<SampleRecord>)>,
}

/// One output format of one kind of run: `V` is what it renders (an eval
/// [`RunView`] by default, or a perf view). A new format is one type with
/// these two methods.
pub trait Renderer<V = RunView> {
    /// File name inside the run directory (`report.md`).
    fn file_name(&self) -> &'static str;
    /// Render the whole document.
    fn render(&self, view: &V) -> String;
}

/// Render `view` with every renderer into `dir`.
pub fn write_all<V>(
    dir: &Path,
    view: &V,
    renderers: &[Box<dyn Renderer<V>>],
) -> Result<(), ReportError> {
    for r in renderers {
        let path = dir.join(r.file_name());
        crate::util::write_atomic(&path, r.render(view).as_bytes()).map_err(|source| {
            ReportError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The formats written for every run.
pub fn renderers() -> Vec<Box<dyn Renderer>> {
    vec![
        Box::new(markdown::MarkdownRenderer),
        Box::new(html::HtmlRenderer),
        Box::new(json::JsonRenderer),
    ]
}

/// Read a run directory into a [`RunView`].
pub fn load(dir: &RunDir) -> Result<RunView, ReportError> {
    let manifest: RunManifest = dir.read_manifest().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ReportError::NotARun(dir.root.display().to_string())
        } else {
            ReportError::Io {
                path: dir.manifest().display().to_string(),
                source: e,
            }
        }
    })?;
    let mut manifest = manifest;
    let mut warnings = Vec::new();
    if let Some(w) = crate::rundir::stale_running(&dir.root, &manifest.status) {
        manifest.status = "interrupted".into();
        warnings.push(w);
    }
    let mut samples = Vec::new();
    let mut results = Vec::new();
    let mut agreement = Vec::new();
    for b in &manifest.settings.benchmarks {
        let path = dir.journal(&b.benchmark);
        let journal = dir
            .read_journal_checked(&b.benchmark)
            .map_err(|source| ReportError::Io {
                path: path.display().to_string(),
                source,
            })?;
        // Only a benchmark the run started (its data was recorded) must
        // have a journal; one an interrupted run never reached has none.
        let started = manifest.datasets.iter().any(|d| d.benchmark == b.benchmark);
        if started && !path.exists() {
            warnings.push(format!(
                "{}: samples/{}.jsonl is missing: no item of this benchmark can be reported",
                b.benchmark, b.benchmark
            ));
        }
        if let Some(w) =
            skipped_warning(&format!("samples/{}.jsonl", b.benchmark), &journal.skipped)
        {
            warnings.push(w);
        }
        let recs = journal.records;
        // Only subsets still selected count (the order follows the settings).
        let recs: Vec<SampleRecord> = b
            .subsets
            .iter()
            .flat_map(|s| recs.iter().filter(move |r| &r.subset == s).cloned())
            .collect();
        results.extend(record::results_for(
            &b.benchmark,
            &b.mode,
            &b.extractors,
            &recs,
        ));
        agreement.extend(record::agreement_for(&b.benchmark, &b.extractors, &recs));
        samples.push((b.benchmark.clone(), recs));
    }
    let total: usize = samples.iter().map(|(_, r)| r.len()).sum();
    let failed = samples
        .iter()
        .flat_map(|(_, r)| r.iter())
        .filter(|r| r.error.is_some())
        .count();
    if total == 0 {
        warnings.push("no item was answered: nothing was measured".into());
    } else if failed == total {
        warnings.push(format!(
            "every one of the {total} item(s) failed (see `error` in the journals): the accuracy measures the failures, not the model"
        ));
    }
    let usage = record::usage_totals(samples.iter().flat_map(|(_, r)| r.iter()));
    Ok(RunView {
        data: ReportData {
            schema_version: record::SCHEMA_VERSION,
            manifest,
            results,
            usage,
            agreement,
            warnings,
        },
        samples,
    })
}

/// One warning for the unreadable lines of a JSON-lines file (the first few
/// line numbers and reasons), or `None` when every line was read.
pub fn skipped_warning(file: &str, skipped: &[record::SkippedLine]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let first: Vec<String> = skipped
        .iter()
        .take(3)
        .map(|s| format!("line {}: {}", s.line, s.reason))
        .collect();
    Some(format!(
        "{file}: {} line(s) could not be read and were skipped ({}{})",
        skipped.len(),
        first.join("; "),
        if skipped.len() > 3 { "; ..." } else { "" }
    ))
}

/// Whether a report shows nothing measured (no item answered, or every one
/// failed): the commands that print it then exit non-zero.
pub fn nothing_measured(data: &ReportData) -> bool {
    let n: u64 = data
        .results
        .iter()
        .filter(|r| r.primary && r.subset != "all")
        .map(|r| r.stats.n)
        .sum();
    let failed: u64 = data
        .results
        .iter()
        .filter(|r| r.primary && r.subset != "all")
        .map(|r| r.outcomes.get(&Outcome::Failed).copied().unwrap_or(0))
        .sum();
    n == 0 || failed == n
}

/// Render every format into the run directory; returns the report data.
pub fn write_reports(dir: &RunDir) -> Result<ReportData, ReportError> {
    let view = load(dir)?;
    for r in renderers() {
        let path = dir.root.join(r.file_name());
        crate::util::write_atomic(&path, r.render(&view).as_bytes()).map_err(|source| {
            ReportError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    Ok(view.data)
}

/// Re-render the reports of an existing run directory (`bench report DIR`).
pub fn rerender(dir: &Path) -> Result<ReportData, ReportError> {
    write_reports(&RunDir::new(dir))
}

/// `0.8123` -> `81.2`.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

/// Rows as aligned plain text: the first row is the header (underlined),
/// the first `left` columns are left-aligned (names), the rest right-aligned
/// (numbers).
pub fn text_table(rows: &[Vec<String>], left: usize) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c < left {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(
                &widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  "),
            );
            out.push('\n');
        }
    }
    out
}

/// The results table for the terminal (plain text, aligned columns).
pub fn terminal_table(data: &ReportData) -> String {
    let header = [
        "benchmark",
        "subset",
        "mode",
        "extractor",
        "n",
        "accuracy",
        "±stderr",
        "95% CI",
        "ok",
        "wrong",
        "no-ans",
        "trunc",
        "failed",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in &data.results {
        let o = |k: Outcome| r.outcomes.get(&k).copied().unwrap_or(0).to_string();
        rows.push(vec![
            r.benchmark.clone(),
            r.subset.clone(),
            r.mode.clone(),
            format!("{}{}", r.extractor, if r.primary { "*" } else { "" }),
            r.stats.n.to_string(),
            pct(r.stats.accuracy),
            pct(r.stats.stderr),
            format!("{}-{}", pct(r.stats.ci_low), pct(r.stats.ci_high)),
            o(Outcome::Correct),
            o(Outcome::Wrong),
            o(Outcome::NoAnswer),
            o(Outcome::Truncated),
            o(Outcome::Failed),
        ]);
    }
    let mut out = text_table(&rows, 4);
    out.push_str("accuracy in %; * = primary extractor; failed items count as not correct\n");
    for a in &data.agreement {
        out.push_str(&format!(
            "{}: {} vs {}: both right {}, only {} {}, only {} {}, both wrong {} (extracted answers differ on {} of {})\n",
            a.benchmark, a.a, a.b, a.both_correct, a.a, a.only_a, a.b, a.only_b, a.neither, a.extracted_differ, a.n
        ));
    }
    out
}
