//! Reports rendered from a run directory: markdown, HTML, JSON, and the
//! terminal table.
//!
//! Owns turning the run record (`run.json` + `samples/*.jsonl`) into
//! [`ReportData`] and rendering it. Every format implements [`Renderer`]
//! (hyperfine's exporter idea), so a new format is one file with one method;
//! comparisons ([`crate::compare::render`]), perf runs and the index of runs
//! ([`index`]) implement the same trait. Tables are defined once as a
//! [`table::Table`] ([`results_table`], [`agreement_table`]) and written by
//! each format; the one stylesheet and the page scripts live in `assets/`
//! and are included at build time. This module imports neither `perf` nor
//! `compare`: pages that need them live above, in [`crate::site`].
//! Reports are pure functions of the run directory: `bench report DIR`
//! re-renders them at any time without a model call.

pub mod html;
pub mod index;
pub mod json;
pub mod markdown;
pub mod svg;
pub mod table;

use std::path::Path;

use crate::record::{self, Outcome, ReportData, RunDir, RunManifest, SampleRecord};
use table::{Cell, Column, Table};

/// An output format of the library's renderers. The command line maps its
/// own `--format` values onto this (the library knows no flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// GitHub-flavoured markdown (PR comments, `report.md`).
    Markdown,
    /// One self-contained HTML page.
    Html,
    /// JSON (the data, not a layout).
    Json,
    /// Aligned plain text for the terminal.
    Text,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [Format::Markdown, Format::Html, Format::Json, Format::Text];

    /// The usual file extension (`md`, `html`, `json`, `txt`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Json => "json",
            Format::Text => "txt",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Json => "json",
            Format::Text => "text",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// `markdown` (or `md`), `html`, `json`, `text` (or `txt`); anything
    /// else is an error naming the valid values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "text" | "txt" => Ok(Format::Text),
            other => Err(format!(
                "unknown format {other:?} (expected markdown, html, json or text)"
            )),
        }
    }
}

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

/// One output format of one kind of document: `V` is what it renders (an
/// eval [`RunView`] by default, a perf view, a list of comparisons, the
/// index of a folder of runs). A new format is one type with these two
/// methods; the tables inside come from [`table::Table`] definitions shared
/// by every format.
pub trait Renderer<V: ?Sized = RunView> {
    /// File name inside the run directory (`report.md`).
    fn file_name(&self) -> &'static str;
    /// Render the whole document.
    fn render(&self, view: &V) -> String;
}

/// Render `view` with every renderer into `dir`.
pub fn write_all<V: ?Sized>(
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
    load_from(dir, std::collections::HashMap::new())
}

/// [`load`], taking the journals found in `journals` from there.
fn load_from(
    dir: &RunDir,
    mut journals: std::collections::HashMap<String, crate::record::Journal>,
) -> Result<RunView, ReportError> {
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
    let mut groups = Vec::new();
    let mut instructions = Vec::new();
    for b in &manifest.settings.benchmarks {
        let path = dir.journal(&b.benchmark);
        let journal = match journals.remove(&b.benchmark) {
            Some(j) => j,
            None => dir
                .read_journal_checked(&b.benchmark)
                .map_err(|source| ReportError::Io {
                    path: path.display().to_string(),
                    source,
                })?,
        };
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
        // Only subsets still selected count (the order follows the settings),
        // and only the repeats asked for.
        let recs: Vec<SampleRecord> = b
            .subsets
            .iter()
            .flat_map(|s| {
                recs.iter()
                    .filter(move |r| &r.subset == s && r.repeat.unwrap_or(0) < b.repeats.max(1))
                    .cloned()
            })
            .collect();
        results.extend(record::results_for(
            &b.benchmark,
            &b.mode,
            &b.extractors,
            b.repeats,
            &recs,
        ));
        agreement.extend(record::agreement_for(&b.benchmark, &b.extractors, &recs));
        instructions.extend(record::instructions_for(&b.benchmark, &b.extractors, &recs));
        if let Some(primary) = b.extractors.first() {
            groups.extend(record::groups_for(
                &b.benchmark,
                &b.mode,
                primary,
                &b.groups,
                b.repeats,
                &recs,
            ));
        }
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
            groups,
            warnings,
            instructions,
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
    write_reports_from(dir, std::collections::HashMap::new())
}

/// [`write_reports`], with the journals of some benchmarks already in
/// memory (as `bench eval` has them at its end): those are not read back.
/// Each must be what [`crate::record::read_journal_checked`] gives for the
/// file (the test `reports_from_memory_equal_reports_from_the_journal`).
pub fn write_reports_from(
    dir: &RunDir,
    journals: std::collections::HashMap<String, crate::record::Journal>,
) -> Result<ReportData, ReportError> {
    let view = load_from(dir, journals)?;
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

/// The results table of a run: one row per benchmark, subset and
/// extractor, the primary extractor's rows emphasised. Defined once for
/// `report.md`, `report.html` and the terminal.
pub fn results_table(data: &ReportData) -> Table {
    let mut t = Table::new(vec![
        Column::left("Benchmark").short("benchmark"),
        Column::left("Subset").short("subset"),
        Column::left("Mode").short("mode"),
        Column::left("Extractor").short("extractor").emphasis(),
        Column::right("n"),
        Column::right("Accuracy (%)").short("accuracy").emphasis(),
        Column::left("").only(Format::Html),
        Column::right("± stderr").short("±stderr"),
        Column::left("95% CI (Wilson)").short("95% CI"),
        Column::right("Correct").short("ok"),
        Column::right("Wrong").short("wrong"),
        Column::right("No answer").short("no-ans"),
        Column::right("Truncated").short("trunc"),
        Column::right("Failed").short("failed"),
    ]);
    for r in &data.results {
        // A benchmark with many subsets shows its combined row here; its
        // subsets have a table of their own (see [`group_tables`]).
        if r.subset != "all" && many_subsets(data, &r.benchmark) {
            continue;
        }
        let mut cells: Vec<Cell> = vec![
            r.benchmark.as_str().into(),
            r.subset.as_str().into(),
            r.mode.as_str().into(),
            r.extractor.as_str().into(),
        ];
        cells.extend(stats_cells(&r.stats));
        cells.extend(
            Outcome::ALL.map(|o| r.outcomes.get(&o).copied().unwrap_or(0).to_string().into()),
        );
        if r.primary {
            t.strong_row(cells);
        } else {
            t.row(cells);
        }
    }
    t
}

/// The k of pass@k shown in the repeats tables: every k some row reports.
fn pass_levels<'a>(stats: impl IntoIterator<Item = &'a record::RepeatStats>) -> Vec<u64> {
    let mut ks: Vec<u64> = stats
        .into_iter()
        .flat_map(|s| s.pass_at_k.iter().map(|p| p.k))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// `12.5` for a pass@k row that has it, blank otherwise.
fn pass_cells(s: &record::RepeatStats, ks: &[u64]) -> Vec<Cell> {
    ks.iter()
        .map(|&k| s.pass(k).map_or_else(String::new, pct).into())
        .collect()
}

/// What several samples per item measure, for the benchmarks run with
/// `--repeats N` > 1 (`None` when none was): per benchmark, subset and
/// extractor, the mean accuracy over the (item, repeat) pairs, its spread
/// over repeats, the lowest and highest repeat, the standard error over
/// items and pass@k (unbiased estimator, averaged over items).
pub fn repeats_table(data: &ReportData) -> Option<Table> {
    let rows: Vec<&record::ResultRow> = data
        .results
        .iter()
        .filter(|r| r.repeats.is_some())
        .filter(|r| r.subset == "all" || !many_subsets(data, &r.benchmark))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let ks = pass_levels(rows.iter().filter_map(|r| r.repeats.as_ref()));
    let mut cols = vec![
        Column::left("Benchmark").short("benchmark"),
        Column::left("Subset").short("subset"),
        Column::left("Extractor").short("extractor").emphasis(),
        Column::right("Items").short("items"),
        Column::right("Repeats").short("N"),
        Column::right("Mean accuracy (%)")
            .short("mean acc")
            .emphasis(),
        Column::right("± std over repeats").short("±std rep"),
        Column::left("Repeat min–max").short("min–max"),
        Column::right("± stderr (items)").short("±se items"),
    ];
    cols.extend(
        ks.iter()
            .map(|k| Column::right(format!("pass@{k} (%)")).short(format!("pass@{k}"))),
    );
    let mut t = Table::new(cols);
    for r in rows {
        let Some(s) = &r.repeats else { continue };
        let lo = s.per_repeat.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s
            .per_repeat
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let mut cells: Vec<Cell> = vec![
            r.benchmark.as_str().into(),
            r.subset.as_str().into(),
            r.extractor.as_str().into(),
            if s.incomplete > 0 {
                format!("{} ({} incomplete)", s.items, s.incomplete)
            } else {
                s.items.to_string()
            }
            .into(),
            s.n.to_string().into(),
            pct(r.stats.accuracy).into(),
            pct(s.std).into(),
            format!("{}–{}", pct(lo), pct(hi)).into(),
            pct(s.item_stderr).into(),
        ];
        cells.extend(pass_cells(s, &ks));
        if r.primary {
            t.strong_row(cells);
        } else {
            t.row(cells);
        }
    }
    Some(t.note(REPEATS_NOTE))
}

/// What the repeats table means, under it in every format.
pub const REPEATS_NOTE: &str = "several samples per item: mean accuracy over every (item, repeat) pair (= the mean of the per-repeat accuracies); std: sample std (N-1) of the per-repeat accuracies; stderr (items): std of each item's mean over its repeats, over sqrt(items); pass@k: 1 - C(n-c, k)/C(n, k) per item (c correct of n samples), averaged over items";

/// `, 8 repeats` in a benchmark's settings line; nothing for one sample
/// per item (so reports of runs without repeats read as before).
pub(crate) fn repeats_setting(n: usize) -> String {
    if n > 1 {
        format!(", {n} repeats")
    } else {
        String::new()
    }
}

/// The cells every accuracy table shares: n, accuracy (%), its bar (HTML
/// only), stderr and the Wilson interval.
fn stats_cells(s: &crate::score::AccuracyStats) -> [Cell; 5] {
    [
        s.n.to_string().into(),
        pct(s.accuracy).into(),
        Cell::html(
            "",
            format!(
                "<span class=bar style=\"width:{}px\"></span>",
                (s.accuracy * 120.0).round()
            ),
        ),
        pct(s.stderr).into(),
        format!("{}–{}", pct(s.ci_low), pct(s.ci_high)).into(),
    ]
}

/// Whether `benchmark` has more subsets than the headline table lists.
fn many_subsets(data: &ReportData, benchmark: &str) -> bool {
    data.groups
        .iter()
        .any(|g| g.benchmark == benchmark && g.key == "subset")
}

/// `category` -> `Category`.
fn title_case(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c)
            .collect::<String>()
            .replace('_', " "),
        None => String::new(),
    }
}

/// A table collapses behind its summary from this many rows on.
const COLLAPSE_ROWS: usize = 9;

/// The sentence that heads a group table: what is grouped, and both
/// averages, saying which is which.
pub fn group_summary(g: &record::GroupTable) -> String {
    let plural = match g.key.as_str() {
        "subset" => "subsets".to_string(),
        "category" => "categories".to_string(),
        "lm_eval_group" => "lm-eval groups".to_string(),
        k => format!("{k} values"),
    };
    let mut s = format!(
        "{} by {} ({} {}): micro average {}% (over items), macro average {}% (mean over {})",
        g.benchmark,
        g.key,
        g.rows.len(),
        plural,
        pct(g.micro_accuracy),
        pct(g.macro_accuracy),
        plural
    );
    if g.ungrouped > 0 {
        s.push_str(&format!("; {} item(s) have no {}", g.ungrouped, g.key));
    }
    // Loglikelihood rows are lm-eval's group figures, not plain counts:
    // say so where the numbers are read.
    if let Some(how) = &g.aggregation {
        s.push_str(&format!("; rows as {how}"));
    }
    s
}

/// The tables of per-group accuracy: one per benchmark and grouping (its
/// subsets when they are many, each metadata key), collapsed when long,
/// sortable in HTML.
pub fn group_tables(data: &ReportData) -> Vec<Table> {
    data.groups
        .iter()
        .map(|g| {
            let mut cols = vec![
                Column::left(title_case(&g.key)).short(g.key.clone()),
                Column::right("n"),
                Column::right("Accuracy (%)").short("accuracy"),
                Column::left("").only(Format::Html),
                Column::right("± stderr").short("±stderr"),
                Column::left("95% CI (Wilson)").short("95% CI"),
                Column::right("Failed").short("failed"),
            ];
            // With repeats: the spread over repeats and pass@k per group.
            let ks = pass_levels(g.rows.iter().filter_map(|r| r.repeats.as_ref()));
            if !ks.is_empty() {
                cols.push(Column::right("± std over repeats").short("±std rep"));
                cols.extend(
                    ks.iter()
                        .map(|k| Column::right(format!("pass@{k} (%)")).short(format!("pass@{k}"))),
                );
            }
            let mut t = Table::new(cols).sortable();
            for r in &g.rows {
                let mut cells: Vec<Cell> = vec![r.value.as_str().into()];
                cells.extend(stats_cells(&r.stats));
                cells.push(r.failed.to_string().into());
                if let Some(s) = &r.repeats {
                    cells.push(pct(s.std).into());
                    cells.extend(pass_cells(s, &ks));
                }
                t.row(cells);
            }
            let summary = group_summary(g);
            if g.rows.len() >= COLLAPSE_ROWS {
                t.collapsed(summary)
            } else {
                t.caption(summary)
            }
        })
        .collect()
}

/// How much the grading moves the score: for each pair of extractors, the
/// answered items both, one or neither judged right.
pub fn agreement_table(data: &ReportData) -> Table {
    let mut t = Table::new(vec![
        Column::left("Benchmark").short("benchmark"),
        Column::left("Extractor A").short("A"),
        Column::left("Extractor B").short("B"),
        Column::right("n"),
        Column::right("Both correct").short("both right"),
        Column::right("Only A").short("only A"),
        Column::right("Only B").short("only B"),
        Column::right("Neither").short("both wrong"),
        Column::right("Extracted answers differ").short("answers differ"),
    ]);
    for a in &data.agreement {
        t.row(vec![
            a.benchmark.as_str().into(),
            a.a.as_str().into(),
            a.b.as_str().into(),
            a.n.to_string().into(),
            a.both_correct.to_string().into(),
            a.only_a.to_string().into(),
            a.only_b.to_string().into(),
            a.neither.to_string().into(),
            a.extracted_differ.to_string().into(),
        ]);
    }
    t
}

/// Instruction-level accuracy of checklist benchmarks (IFEval): per
/// benchmark the `all` row (the headline instruction-level accuracy,
/// emphasised) then one row per instruction kind, a column per extractor
/// (`strict`, `loose`). `None` when the run has none. With `headline_only`,
/// just the `all` rows (the terminal).
pub fn instructions_table(data: &ReportData, headline_only: bool) -> Option<Table> {
    let first = data.instructions.first()?;
    let extractors: Vec<String> = first.followed.iter().map(|(e, _)| e.clone()).collect();
    let mut cols = vec![
        Column::left("Benchmark").short("benchmark"),
        Column::left("Instruction").short("instruction"),
        Column::right("n"),
    ];
    for e in &extractors {
        cols.push(Column::right(format!("Followed, {e} (%)")).short(e.clone()));
    }
    let mut t = Table::new(cols)
        .caption(
            "Instruction-level accuracy: the share of instructions followed (all, then per kind)",
        )
        .sortable();
    for r in &data.instructions {
        if headline_only && r.instruction != "all" {
            continue;
        }
        let mut cells: Vec<Cell> = vec![
            r.benchmark.as_str().into(),
            r.instruction.as_str().into(),
            r.n.to_string().into(),
        ];
        for e in &extractors {
            cells.push(r.accuracy(e).map(pct).unwrap_or_else(|| "-".into()).into());
        }
        if r.instruction == "all" {
            t.strong_row(cells);
        } else {
            t.row(cells);
        }
    }
    Some(t)
}

/// The results for the terminal: the table of `report.md` as aligned text,
/// then one sentence per pair of extractors (the agreement, read aloud:
/// scripts and tests look for these lines).
pub fn terminal_table(data: &ReportData) -> String {
    let mut out = results_table(data)
        .note("accuracy in %; * = primary extractor; failed items count as not correct")
        .render(Format::Text);
    if let Some(t) = repeats_table(data) {
        out.push('\n');
        out.push_str(&t.render(Format::Text));
    }
    for (g, t) in data.groups.iter().zip(group_tables(data)) {
        out.push('\n');
        if g.rows.len() >= COLLAPSE_ROWS {
            out.push_str(&group_summary(g));
            out.push_str(" (every group in report.md)\n");
        } else {
            out.push_str(&t.render(Format::Text));
        }
    }
    if let Some(t) = instructions_table(data, true) {
        out.push('\n');
        out.push_str(&t.render(Format::Text));
    }
    for a in &data.agreement {
        out.push_str(&format!(
            "{}: {} vs {}: both right {}, only {} {}, only {} {}, both wrong {} (extracted answers differ on {} of {})\n",
            a.benchmark, a.a, a.b, a.both_correct, a.a, a.only_a, a.b, a.only_b, a.neither, a.extracted_differ, a.n
        ));
    }
    out
}
