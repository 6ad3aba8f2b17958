//! `bench compare`: decide from two or more eval runs. For each benchmark,
//! subset and extractor the runs share, accuracy of each run on the items
//! both answered, the difference with an exact McNemar test and a paired
//! bootstrap 95% interval, and the items that flipped.
//!
//! Owns the pairing (by subset, split, row index and repeat), the statistics and the
//! comparison record, and its renderers ([`render`]: markdown sized for a PR
//! comment, the HTML page, JSON), the same [`crate::report::Renderer`] trait
//! as run reports; the comparison table is one [`crate::report::table::Table`]
//! definition ([`comparison_table`]) for markdown and HTML.
//! Runs on other items or in other modes are compared only where they
//! overlap, and the result says so.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};

use crate::record::{RunDir, SampleRecord};
use crate::report::html::escape;
use crate::report::table::{Cell, Column, Table};
use crate::report::{self, Format, ReportError, RunView};

mod command;
pub mod html;
mod perf;
pub mod render;

pub use command::{CompareConfig, CompareOutcome, CompareRunError, run};

pub use perf::{
    PERF_METRICS, PerfCompareRow, PerfComparison, PerfMetric, compare_perf, compare_summaries,
    perf_markdown, perf_metric, perf_regressions,
};
pub use render::{PerfComparisons, eval_renderer, perf_renderer};

/// Markdown longer than this is cut (GitHub's comment limit is 65,536).
pub const MAX_MARKDOWN: usize = 60_000;

/// One compared row: baseline vs candidate on one benchmark/subset/extractor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Benchmark.
    pub benchmark: String,
    /// Subset, or `all`; for a group row, the group's value.
    pub subset: String,
    /// For a group row, the metadata key grouped by (`category`); `None`
    /// for subset rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Extractor.
    pub extractor: String,
    /// Items both runs have (failed requests count as not correct).
    pub n: u64,
    /// Baseline accuracy on those items.
    pub acc_a: f64,
    /// Candidate accuracy on those items.
    pub acc_b: f64,
    /// `acc_b − acc_a`.
    pub diff: f64,
    /// Paired bootstrap 95% interval of the difference (low).
    pub ci_low: f64,
    /// Paired bootstrap 95% interval of the difference (high).
    pub ci_high: f64,
    /// Right in A, wrong in B.
    pub right_to_wrong: u64,
    /// Wrong in A, right in B.
    pub wrong_to_right: u64,
    /// Exact two-sided McNemar p-value.
    pub p_value: f64,
    /// Items only one run has.
    pub unpaired: u64,
    /// Flipped items as `subset/split#index` (`/r<repeat>` in runs with
    /// repeats), right → wrong first.
    pub flipped: Vec<String>,
}

/// Where a row's paired interval lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// The whole interval is below zero: worse beyond doubt.
    Worse,
    /// The interval contains zero.
    Unclear,
    /// The whole interval is above zero: better beyond doubt.
    Better,
}

impl CompareRow {
    /// Whether the candidate is worse or better beyond doubt.
    pub fn shift(&self) -> Shift {
        if self.ci_high < 0.0 {
            Shift::Worse
        } else if self.ci_low > 0.0 {
            Shift::Better
        } else {
            Shift::Unclear
        }
    }
}

/// The comparison of a candidate run with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Baseline run directory.
    pub baseline: String,
    /// Candidate run directory.
    pub candidate: String,
    /// Models (baseline, candidate).
    pub models: (String, String),
    /// Rows.
    pub rows: Vec<CompareRow>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
    /// Every item some extractor judged differently, with both runs' text.
    pub items: Vec<FlippedItem>,
    /// Benchmarks in which every candidate request failed: nothing of the
    /// candidate was measured there, so the regression gate fails whatever
    /// the baseline scored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_all_failed: Vec<String>,
}

/// An item whose verdict changed between the runs under some extractor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlippedItem {
    /// Benchmark.
    pub benchmark: String,
    /// `subset/split#index`, as in [`CompareRow::flipped`].
    pub item: String,
    /// Dataset id, if the dataset has one.
    pub dataset_id: Option<String>,
    /// The question (last user turn, or the prompt).
    pub question: String,
    /// Gold answer.
    pub gold: String,
    /// Extractors that changed their verdict: (extractor, `true` when the
    /// item went right → wrong).
    pub flips: Vec<(String, bool)>,
    /// The baseline's answer.
    pub a: ItemSide,
    /// The candidate's answer.
    pub b: ItemSide,
}

/// One run's answer to a flipped item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSide {
    /// Primary outcome (`correct`, `wrong`, ...).
    pub outcome: String,
    /// Visible response (`null` when the request failed).
    pub response: Option<String>,
    /// Reasoning kept apart, if any.
    pub reasoning: Option<String>,
    /// Extracted answer per extractor.
    pub extracted: BTreeMap<String, Option<String>>,
    /// Verdict per extractor.
    pub verdicts: BTreeMap<String, bool>,
    /// Why the request failed.
    pub error: Option<String>,
}

impl ItemSide {
    fn of(r: &SampleRecord) -> Self {
        Self {
            outcome: r.outcome.as_str().to_string(),
            response: r.response.clone(),
            reasoning: r.reasoning.clone(),
            extracted: r.extracted.clone(),
            verdicts: r.verdicts.clone(),
            error: r.error.as_ref().map(|e| e.to_string()),
        }
    }
}

/// Exact two-sided McNemar test: the binomial probability of a split at
/// least as uneven as (b, c) among b + c discordant pairs with p = 1/2.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Σ_{i ≤ k} C(n, i) / 2^n, in logs to stay finite for large n.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_c = 0.0f64; // ln C(n, 0)
    let mut sum = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        sum += (ln_c + ln_half_n).exp();
    }
    (2.0 * sum).min(1.0)
}

/// Paired bootstrap percentile interval of mean(b − a), seeded.
///
/// A resample of n pairs only matters through how many discordant pairs
/// of each kind it draws, so each resample is two binomial draws (how many
/// discordant pairs, then how many of them went wrong → right) instead of
/// n uniform draws: the same distribution as resampling pairs one by one,
/// in O(resamples) instead of O(resamples × n).
pub fn paired_bootstrap(pairs: &[(bool, bool)], resamples: usize, seed: u64) -> (f64, f64) {
    let n = pairs.len() as u64;
    let rw = pairs.iter().filter(|p| p.0 && !p.1).count() as u64;
    let wr = pairs.iter().filter(|p| !p.0 && p.1).count() as u64;
    if n == 0 || resamples == 0 || rw + wr == 0 {
        return (0.0, 0.0);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let discordant = Binomial::new(n, (rw + wr) as f64 / n as f64).expect("p in [0, 1]");
    let p_wr = wr as f64 / (rw + wr) as f64;
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let d = discordant.sample(&mut rng);
            let up = Binomial::new(d, p_wr)
                .expect("p in [0, 1]")
                .sample(&mut rng);
            (up as f64 - (d - up) as f64) / n as f64
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let q = |p: f64| diffs[((resamples - 1) as f64 * p).round() as usize];
    (q(0.025), q(0.975))
}

/// The pairing key: (subset, split, index, repeat), a record without
/// repeats being repeat 0, so runs with different numbers of repeats pair
/// on the repeats both have.
fn key(r: &SampleRecord) -> (String, String, usize, usize) {
    r.key()
}

/// Whether extractor `ex` judged `r` right (failed requests are not).
fn right(r: &SampleRecord, ex: &str) -> bool {
    r.error.is_none() && r.verdicts.get(ex).copied().unwrap_or(false)
}

/// Compare run `b` with baseline `a`.
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Comparison, ReportError> {
    let va = report::load(&RunDir::new(a))?;
    let vb = report::load(&RunDir::new(b))?;
    Ok(compare_views(&va, a, &vb, b))
}

/// Compare loaded run `vb` (from directory `b`) with baseline `va` (from `a`).
pub fn compare_views(va: &RunView, a: &Path, vb: &RunView, b: &Path) -> Comparison {
    let mut items = Vec::new();
    let mut rows = Vec::new();
    let mut notes = setting_notes(va, vb);
    let mut candidate_all_failed = Vec::new();
    for (bench, recs_a) in &va.samples {
        let Some((_, recs_b)) = vb.samples.iter().find(|(n, _)| n == bench) else {
            notes.push(format!("{bench}: only in {}", a.display()));
            continue;
        };
        let mode = |v: &report::RunView| {
            v.data
                .manifest
                .settings
                .benchmarks
                .iter()
                .find(|s| &s.benchmark == bench)
                .map(|s| s.mode.clone())
        };
        let (ma, mb) = (mode(va).unwrap_or_default(), mode(vb).unwrap_or_default());
        if ma != mb {
            notes.push(format!(
                "{bench}: modes differ ({ma} vs {mb}); compared on extractors both have"
            ));
        }
        // The extractors a run graded with come from its settings, not
        // from the verdicts: a run whose every request failed has no
        // verdict at all, and must still be compared (its failures count
        // as wrong, as they do in accuracy).
        let extractors = |v: &report::RunView, recs: &[SampleRecord]| -> BTreeSet<String> {
            v.data
                .manifest
                .settings
                .benchmarks
                .iter()
                .filter(|s| &s.benchmark == bench)
                .flat_map(|s| s.extractors.iter().cloned())
                .chain(recs.iter().flat_map(|r| r.verdicts.keys().cloned()))
                .collect()
        };
        let ex_a = extractors(va, recs_a);
        let ex_b = extractors(vb, recs_b);
        if !recs_b.is_empty() && recs_b.iter().all(|r| r.error.is_some()) {
            candidate_all_failed.push(bench.clone());
        }
        for (recs, dir) in [(recs_a, a), (recs_b, b)] {
            let failed = recs.iter().filter(|r| r.error.is_some()).count();
            if failed > 0 {
                notes.push(format!(
                    "{bench}: {failed} of {} item(s) failed in {} and count as wrong",
                    recs.len(),
                    dir.display()
                ));
            }
        }
        let by_key_b: BTreeMap<_, &SampleRecord> = recs_b.iter().map(|r| (key(r), r)).collect();
        let keys_a: BTreeSet<_> = recs_a.iter().map(key).collect();
        let paired = keys_a.iter().filter(|k| by_key_b.contains_key(*k)).count();
        let unpaired = (recs_a.len() + recs_b.len()) as u64 - 2 * paired as u64;
        let repeats = |v: &report::RunView| {
            v.data
                .manifest
                .settings
                .benchmarks
                .iter()
                .find(|s| &s.benchmark == bench)
                .map_or(1, |s| s.repeats.max(1))
        };
        let (na, nb) = (repeats(va), repeats(vb));
        if na > 1 || nb > 1 {
            notes.push(if na == nb {
                format!(
                    "{bench}: {na} repeats per item in both runs, paired by (item, repeat): the counts, McNemar's test and the interval run over the {paired} (item, repeat) pairs, which treat an item's repeats as independent (the interval is then narrower than one over items)"
                )
            } else {
                format!(
                    "{bench}: {na} vs {nb} repeats per item; paired by (item, repeat) on the {} repeat(s) both runs have ({paired} pairs), the other repeats are left out",
                    na.min(nb)
                )
            });
        }
        if unpaired > 0 {
            let what = if na > 1 || nb > 1 {
                "(item, repeat) pair(s)"
            } else {
                "item(s)"
            };
            notes.push(format!(
                "{bench}: {unpaired} {what} are in only one run and are left out"
            ));
        }
        let mut subsets: Vec<String> = Vec::new();
        for r in recs_a {
            if !subsets.contains(&r.subset) {
                subsets.push(r.subset.clone());
            }
        }
        // Rows: each subset, all of them, then (primary extractor only)
        // each value of each metadata key the baseline groups by.
        type Member<'r> = Box<dyn Fn(&SampleRecord) -> bool + 'r>;
        let mut groups: Vec<(Option<String>, String, Member)> = subsets
            .iter()
            .map(|s| {
                let s2 = s.clone();
                let member: Member = Box::new(move |r: &SampleRecord| r.subset == s2);
                (None, s.clone(), member)
            })
            .collect();
        if subsets.len() > 1 {
            groups.push((None, "all".into(), Box::new(|_: &SampleRecord| true)));
        }
        let settings_a = va
            .data
            .manifest
            .settings
            .benchmarks
            .iter()
            .find(|s| &s.benchmark == bench);
        let primary = settings_a.and_then(|s| s.extractors.first()).cloned();
        for key in settings_a.map(|s| s.groups.clone()).unwrap_or_default() {
            let mut values: Vec<String> = recs_a
                .iter()
                .filter_map(|r| r.groups.get(&key).cloned())
                .collect();
            values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            });
            values.dedup();
            for v in values {
                let (k2, v2) = (key.clone(), v.clone());
                let member: Member =
                    Box::new(move |r: &SampleRecord| r.groups.get(&k2) == Some(&v2));
                groups.push((Some(key.clone()), v, member));
            }
        }
        let common: Vec<&String> = ex_a.intersection(&ex_b).collect();
        for ra in recs_a {
            let Some(rb) = by_key_b.get(&key(ra)) else {
                continue;
            };
            let flips: Vec<(String, bool)> = common
                .iter()
                .filter(|ex| right(ra, ex) != right(rb, ex))
                .map(|ex| (ex.to_string(), right(ra, ex)))
                .collect();
            if !flips.is_empty() {
                items.push(FlippedItem {
                    benchmark: bench.clone(),
                    item: ra.label(),
                    dataset_id: ra.id.clone(),
                    question: ra.question(),
                    gold: ra.gold.clone(),
                    flips,
                    a: ItemSide::of(ra),
                    b: ItemSide::of(rb),
                });
            }
        }
        for ex in common {
            for (group_key, label, member) in &groups {
                if group_key.is_some() && primary.as_ref() != Some(ex) {
                    continue;
                }
                let mut pairs = Vec::new();
                let mut flipped_rw = Vec::new();
                let mut flipped_wr = Vec::new();
                for ra in recs_a.iter().filter(|r| member(r)) {
                    let Some(rb) = by_key_b.get(&key(ra)) else {
                        continue;
                    };
                    let (x, y) = (right(ra, ex), right(rb, ex));
                    let id = ra.label();
                    match (x, y) {
                        (true, false) => flipped_rw.push(id),
                        (false, true) => flipped_wr.push(id),
                        _ => {}
                    }
                    pairs.push((x, y));
                }
                if pairs.is_empty() {
                    continue;
                }
                let n = pairs.len() as f64;
                let acc_a = pairs.iter().filter(|p| p.0).count() as f64 / n;
                let acc_b = pairs.iter().filter(|p| p.1).count() as f64 / n;
                let (ci_low, ci_high) = paired_bootstrap(&pairs, 2000, 0x5eed);
                let (rw, wr) = (flipped_rw.len() as u64, flipped_wr.len() as u64);
                let mut flipped = flipped_rw;
                flipped.extend(flipped_wr);
                rows.push(CompareRow {
                    benchmark: bench.clone(),
                    subset: label.clone(),
                    group: group_key.clone(),
                    extractor: ex.clone(),
                    n: pairs.len() as u64,
                    acc_a,
                    acc_b,
                    diff: acc_b - acc_a,
                    ci_low,
                    ci_high,
                    right_to_wrong: rw,
                    wrong_to_right: wr,
                    p_value: mcnemar_exact(rw, wr),
                    unpaired,
                    flipped,
                });
            }
        }
    }
    for (bench, _) in &vb.samples {
        if !va.samples.iter().any(|(n, _)| n == bench) {
            notes.push(format!("{bench}: only in {}", b.display()));
        }
    }
    Comparison {
        baseline: a.display().to_string(),
        candidate: b.display().to_string(),
        models: (
            va.data.manifest.settings.model.clone(),
            vb.data.manifest.settings.model.clone(),
        ),
        rows,
        notes,
        items,
        candidate_all_failed,
    }
}

/// What differs between the two runs' settings besides the model (what a
/// reader must know before reading a difference as the model's doing).
fn setting_notes(va: &RunView, vb: &RunView) -> Vec<String> {
    let (sa, sb) = (&va.data.manifest.settings, &vb.data.manifest.settings);
    let mut notes = Vec::new();
    if sa.api != sb.api || sa.stream != sb.stream {
        notes.push(format!(
            "requests differ: {} API{} vs {} API{}",
            sa.api,
            if sa.stream { " (streaming)" } else { "" },
            sb.api,
            if sb.stream { " (streaming)" } else { "" }
        ));
    }
    if sa.generation != sb.generation {
        let json =
            |g: &BTreeMap<String, serde_json::Value>| serde_json::to_string(g).unwrap_or_default();
        notes.push(format!(
            "generation settings differ: {} vs {}",
            json(&sa.generation),
            json(&sb.generation)
        ));
    }
    for a in &sa.benchmarks {
        let Some(b) = sb.benchmarks.iter().find(|b| b.benchmark == a.benchmark) else {
            continue;
        };
        if a.mode == b.mode && a.template_sha256 != b.template_sha256 {
            notes.push(format!(
                "{}: the prompt template differs ({} sha256 {} vs {})",
                a.benchmark,
                a.template,
                a.template_sha256.get(..12).unwrap_or(""),
                b.template_sha256.get(..12).unwrap_or("")
            ));
        }
        if a.few_shot != b.few_shot {
            notes.push(format!(
                "{}: {}-shot vs {}-shot",
                a.benchmark, a.few_shot, b.few_shot
            ));
        }
    }
    let (ma, mb) = (&va.data.manifest, &vb.data.manifest);
    for da in &ma.datasets {
        if let Some(db) = mb.datasets.iter().find(|d| d.benchmark == da.benchmark)
            && (da.revision != db.revision || da.files != db.files)
        {
            notes.push(format!(
                "{}: the dataset files differ ({}@{} vs {}@{})",
                da.benchmark,
                da.repo_id,
                da.revision.get(..12).unwrap_or(&da.revision),
                db.repo_id,
                db.revision.get(..12).unwrap_or(&db.revision)
            ));
        }
    }
    notes
}

/// Rows where the candidate is worse beyond doubt: accuracy fell by more
/// than `threshold_points` percentage points and the paired interval
/// excludes zero. Subset and combined rows only: the metadata groups
/// re-cut the same items, and gating on every cut would multiply the
/// chances of a false alarm.
pub fn regressions(c: &Comparison, threshold_points: f64) -> Vec<&CompareRow> {
    c.rows
        .iter()
        .filter(|r| r.group.is_none())
        .filter(|r| r.shift() == Shift::Worse && -r.diff * 100.0 > threshold_points)
        .collect()
}

/// The table of one comparison, for markdown and the HTML page: per
/// benchmark, subset and extractor both accuracies, the difference (coloured
/// in HTML, arrowed elsewhere) with its paired interval (and, in HTML, a
/// forest plot and links to the flipped items). `letter` names the
/// candidate's column; `section` is the comparison's position on the HTML
/// page (anchors of its flipped items are `c<section>-<k>`).
pub fn comparison_table(c: &Comparison, letter: &str, section: usize) -> Table {
    let many = many_subset_benchmarks(c);
    let rows: Vec<&CompareRow> = c
        .rows
        .iter()
        .filter(|r| r.group.is_none() && (r.subset == "all" || !many.contains(&r.benchmark)))
        .collect();
    rows_table(c, &rows, "Subset", letter, section)
}

/// Benchmarks with more subsets than the headline table lists (their
/// subsets go to a table of their own).
fn many_subset_benchmarks(c: &Comparison) -> BTreeSet<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in c
        .rows
        .iter()
        .filter(|r| r.group.is_none() && r.subset != "all")
    {
        if seen.insert((&r.benchmark, &r.subset)) {
            *count.entry(&r.benchmark).or_default() += 1;
        }
    }
    count
        .into_iter()
        .filter(|(_, n)| *n > crate::record::INLINE_SUBSETS)
        .map(|(b, _)| b.to_string())
        .collect()
}

/// The per-group tables of one comparison: the subsets of a benchmark with
/// many, and each metadata grouping (`category`, `level`), collapsed behind
/// a summary. Same columns as [`comparison_table`].
pub fn group_comparison_tables(c: &Comparison, letter: &str, section: usize) -> Vec<Table> {
    let many = many_subset_benchmarks(c);
    let mut keys: Vec<(String, Option<String>)> = Vec::new();
    for r in &c.rows {
        let k = (r.benchmark.clone(), r.group.clone());
        let wanted = r.group.is_some() || (many.contains(&r.benchmark) && r.subset != "all");
        if wanted && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(bench, group)| {
            let rows: Vec<&CompareRow> = c
                .rows
                .iter()
                .filter(|r| {
                    r.benchmark == bench
                        && r.group == group
                        && (group.is_some() || r.subset != "all")
                })
                .collect();
            let by = group.clone().unwrap_or_else(|| "subset".into());
            let worse = rows.iter().filter(|r| r.shift() == Shift::Worse).count();
            let better = rows.iter().filter(|r| r.shift() == Shift::Better).count();
            let summary = format!(
                "{bench} by {by}: {} rows, {worse} worse and {better} better beyond doubt",
                rows.len()
            );
            let header = {
                let mut h = by.replace('_', " ");
                if let Some(f) = h.get(..1) {
                    h = f.to_uppercase() + &h[1..];
                }
                h
            };
            rows_table(c, &rows, &header, letter, section)
                .sortable()
                .collapsed(summary)
        })
        .collect()
}

/// A comparison table of `rows`; `label` heads the subset/group column.
fn rows_table(
    c: &Comparison,
    rows: &[&CompareRow],
    label: &str,
    letter: &str,
    section: usize,
) -> Table {
    let anchor: HashMap<(&str, &str), usize> = c
        .items
        .iter()
        .enumerate()
        .map(|(k, it)| ((it.benchmark.as_str(), it.item.as_str()), k))
        .collect();
    // One scale for every forest plot of the table.
    let scale = rows
        .iter()
        .map(|r| r.ci_low.abs().max(r.ci_high.abs()).max(r.diff.abs()))
        .fold(0.01, f64::max);
    let mut t = Table::new(vec![
        Column::left("Benchmark"),
        Column::left(label),
        Column::left("Extractor"),
        Column::right("n"),
        Column::right("A %"),
        Column::right(format!("{letter} %")),
        Column::right("Δ (pts)"),
        Column::left("95% CI (paired bootstrap)"),
        Column::left("").only(Format::Html),
        Column::right("right→wrong"),
        Column::right("wrong→right"),
        Column::right("McNemar p"),
        Column::left("flipped items").only(Format::Html),
    ]);
    for r in rows {
        let diff = Cell::from(format!("{:+.1}", r.diff * 100.0));
        let diff = match r.shift() {
            Shift::Worse => diff.class("down").mark(" ⬇"),
            Shift::Better => diff.class("up").mark(" ⬆"),
            Shift::Unclear => diff.class("n"),
        };
        // The "all" row repeats its subsets' lists; link those only.
        let mut flipped = String::new();
        if !r.flipped.is_empty() && r.subset != "all" && r.group.is_none() {
            let _ = write!(
                flipped,
                "<details class=flist><summary>{}</summary>",
                r.flipped.len()
            );
            for f in &r.flipped {
                if let Some(k) = anchor.get(&(r.benchmark.as_str(), f.as_str())) {
                    let _ = write!(flipped, "<a href=\"#c{section}-{k}\">{}</a>", escape(f));
                }
            }
            flipped.push_str("</details>");
        }
        t.row(vec![
            r.benchmark.as_str().into(),
            r.subset.as_str().into(),
            r.extractor.as_str().into(),
            r.n.to_string().into(),
            format!("{:.1}", r.acc_a * 100.0).into(),
            format!("{:.1}", r.acc_b * 100.0).into(),
            diff,
            format!("{:+.1} to {:+.1}", r.ci_low * 100.0, r.ci_high * 100.0).into(),
            Cell::html("", html::forest(r.ci_low, r.diff, r.ci_high, scale)),
            r.right_to_wrong.to_string().into(),
            r.wrong_to_right.to_string().into(),
            format!("{:.3}", r.p_value).into(),
            Cell::html(r.flipped.len().to_string(), flipped),
        ]);
    }
    t
}

/// Markdown for a PR comment (cut with a note past [`MAX_MARKDOWN`]).
/// Every value from the runs is escaped (see [`crate::report::markdown::text`]).
pub fn markdown(cs: &[Comparison]) -> String {
    use crate::report::markdown::{code, text};
    let mut out = String::from("## bench compare\n");
    for c in cs {
        let _ = writeln!(
            out,
            "\n**{}** ({}) → **{}** ({})\n",
            text(&c.models.0),
            code(&c.baseline),
            text(&c.models.1),
            code(&c.candidate)
        );
        out.push_str(&comparison_table(c, "B", 0).render(Format::Markdown));
        for t in group_comparison_tables(c, "B", 0) {
            out.push('\n');
            out.push_str(&t.render(Format::Markdown));
        }
        for n in &c.notes {
            let _ = writeln!(out, "\n> [!NOTE]\n> {}", text(n));
        }
        let flips: Vec<&CompareRow> = c
            .rows
            .iter()
            .filter(|r| !r.flipped.is_empty() && r.subset != "all" && r.group.is_none())
            .collect();
        if !flips.is_empty() {
            let _ = writeln!(out, "\n<details><summary>Flipped items</summary>\n");
            for r in flips {
                let _ = writeln!(
                    out,
                    "- {} {} {}: {}",
                    text(&r.benchmark),
                    text(&r.subset),
                    text(&r.extractor),
                    text(&r.flipped.join(", "))
                );
            }
            let _ = writeln!(out, "\n</details>");
        }
    }
    cut_markdown(out)
}

/// Cut markdown longer than [`MAX_MARKDOWN`] (on a line boundary, closing
/// an open `<details>` block) and say where the rest is.
pub(crate) fn cut_markdown(mut out: String) -> String {
    if out.len() <= MAX_MARKDOWN {
        return out;
    }
    let mut cut = MAX_MARKDOWN - 300;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(nl) = out[..cut].rfind('\n') {
        cut = nl + 1;
    }
    out.truncate(cut);
    if out.matches("<details>").count() > out.matches("</details>").count() {
        out.push_str("\n</details>\n");
    }
    out.push_str(
        "\n… cut to fit one GitHub comment; `--format json` or `--format html` has everything.\n",
    );
    out
}

/// Compare every candidate with the first run (the baseline is read once).
pub fn compare_all(dirs: &[PathBuf]) -> Result<Vec<Comparison>, ReportError> {
    let (base, rest) = dirs
        .split_first()
        .ok_or_else(|| ReportError::NotARun("(none)".into()))?;
    let va = report::load(&RunDir::new(base))?;
    rest.iter()
        .map(|d| Ok(compare_views(&va, base, &report::load(&RunDir::new(d))?, d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial() {
        // scipy.stats.binomtest(1, 10, 0.5).pvalue == 0.021484375
        assert!((mcnemar_exact(1, 9) - 0.021484375).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // binomtest(0, 5, 0.5).pvalue == 0.0625
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // Large n stays finite and small.
        assert!(mcnemar_exact(100, 300) < 1e-20);
    }

    #[test]
    fn bootstrap_brackets_the_difference() {
        let pairs: Vec<(bool, bool)> = (0..200).map(|i| (i % 2 == 0, i % 4 != 3)).collect();
        let (lo, hi) = paired_bootstrap(&pairs, 2000, 1);
        // mean(b - a) = 0.75 - 0.5 = 0.25
        assert!(lo < 0.25 && 0.25 < hi && lo > 0.1 && hi < 0.4, "{lo} {hi}");
        assert_eq!(paired_bootstrap(&[], 10, 1), (0.0, 0.0));
    }

    #[test]
    fn binomial_bootstrap_matches_resampling_pairs() {
        // The naive bootstrap (draw n pairs with replacement) and ours agree
        // on the interval within Monte Carlo noise.
        use rand::RngExt;
        let pairs: Vec<(bool, bool)> = (0..300)
            .map(|i| (i % 3 != 0, i % 5 != 0 && i % 7 != 0))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let n = pairs.len();
        let mut naive: Vec<f64> = (0..4000)
            .map(|_| {
                let d: i64 = (0..n)
                    .map(|_| {
                        let (a, b) = pairs[rng.random_range(0..n)];
                        i64::from(b) - i64::from(a)
                    })
                    .sum();
                d as f64 / n as f64
            })
            .collect();
        naive.sort_by(f64::total_cmp);
        let (lo, hi) = paired_bootstrap(&pairs, 4000, 3);
        let (nlo, nhi) = (naive[100], naive[3899]);
        assert!(
            (lo - nlo).abs() < 0.012 && (hi - nhi).abs() < 0.012,
            "{lo} {hi} vs {nlo} {nhi}"
        );
    }
}
