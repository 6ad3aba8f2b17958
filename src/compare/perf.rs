//! `bench compare` on perf runs: level by level (matched by label), every
//! headline metric of each run with its relative change, and the regression
//! gate on one chosen metric.

use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::perf::summary::{LevelSummary, PerfSettings, PerfSummary};
use crate::report::markdown::{code, text};
use crate::report::table::{Cell, Column, Table};
use crate::report::{Format, ReportError};

/// A metric `bench compare` puts side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfMetric {
    /// Key (`p99_ttft_ms`; vLLM's names where it has one).
    pub key: &'static str,
    /// Label in tables.
    pub label: &'static str,
    /// Whether a larger value is an improvement.
    pub higher_is_better: bool,
    /// Shown in the markdown's main table (the rest go in a `<details>` block).
    pub headline: bool,
}

const fn m(key: &'static str, label: &'static str, higher: bool, headline: bool) -> PerfMetric {
    PerfMetric {
        key,
        label,
        higher_is_better: higher,
        headline,
    }
}

/// Every perf metric compared, level by level.
pub const PERF_METRICS: &[PerfMetric] = &[
    m("request_throughput", "requests/s", true, true),
    m("output_throughput", "output tok/s", true, true),
    m("total_token_throughput", "total tok/s", true, true),
    m("input_throughput", "input tok/s", true, false),
    m("goodput", "goodput req/s", true, false),
    m("mean_ttft_ms", "TTFT mean ms", false, true),
    m("median_ttft_ms", "TTFT p50 ms", false, false),
    m("p90_ttft_ms", "TTFT p90 ms", false, false),
    m("p99_ttft_ms", "TTFT p99 ms", false, true),
    m("mean_tpot_ms", "TPOT mean ms", false, true),
    m("median_tpot_ms", "TPOT p50 ms", false, false),
    m("p90_tpot_ms", "TPOT p90 ms", false, false),
    m("p99_tpot_ms", "TPOT p99 ms", false, true),
    m("mean_itl_ms", "ITL mean ms", false, true),
    m("median_itl_ms", "ITL p50 ms", false, false),
    m("p90_itl_ms", "ITL p90 ms", false, false),
    m("p99_itl_ms", "ITL p99 ms", false, true),
    m("mean_icl_ms", "chunk gap mean ms", false, false),
    m("p99_icl_ms", "chunk gap p99 ms", false, false),
    m("mean_e2el_ms", "E2E mean ms", false, true),
    m("median_e2el_ms", "E2E p50 ms", false, false),
    m("p90_e2el_ms", "E2E p90 ms", false, false),
    m("p99_e2el_ms", "E2E p99 ms", false, true),
    m("failed", "failed requests", false, true),
];

/// The metric with this key.
pub fn perf_metric(key: &str) -> Option<&'static PerfMetric> {
    PERF_METRICS.iter().find(|m| m.key == key)
}

/// One metric of one level in two perf runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfCompareRow {
    /// Level label (`c=64`, `rate=10/s`).
    pub level: String,
    /// Metric key (the level's own numbers, token-level ITL).
    pub metric: String,
    /// Baseline value.
    pub a: f64,
    /// Candidate value.
    pub b: f64,
    /// (b − a) / a in percent (0 when a is 0; the gate then counts any
    /// worsening).
    pub change_pct: f64,
    /// Whether the change is an improvement (`None` when unchanged).
    pub better: Option<bool>,
}

/// A candidate perf run against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfComparison {
    /// Baseline run directory.
    pub baseline: String,
    /// Candidate run directory.
    pub candidate: String,
    /// Rows, level by level.
    pub rows: Vec<PerfCompareRow>,
    /// Levels only one run has.
    pub notes: Vec<String>,
}

fn perf_value(l: &LevelSummary, key: &str) -> Option<f64> {
    let s = &l.stats;
    let dist = |d: &crate::perf::stats::Distribution, stat: &str| match stat {
        "mean" => d.mean,
        "median" => d.p50,
        "p90" => d.p90,
        _ => d.p99,
    };
    let v = match key {
        "request_throughput" => s.request_throughput,
        "output_throughput" => s.output_throughput,
        "total_token_throughput" => s.total_token_throughput,
        "input_throughput" => s.input_throughput,
        "goodput" => s.goodput?,
        "failed" => s.failed as f64,
        _ => {
            let (stat, rest) = key.split_once('_')?;
            let d = match rest.strip_suffix("_ms")? {
                "ttft" => &s.ttft,
                "tpot" => &s.tpot,
                "itl" => &s.itl,
                "icl" => &s.icl,
                "e2el" => &s.e2el,
                _ => return None,
            };
            dist(d, stat)
        }
    };
    Some(v)
}

/// What differs in the two runs' workloads (a different server or model is
/// the point of comparing, so neither is noted).
fn setting_notes(a: &PerfSettings, b: &PerfSettings) -> Vec<String> {
    let mut notes = Vec::new();
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            notes.push(format!("{what} differs: {x} vs {y}"));
        }
    };
    differ("API", a.api.clone(), b.api.clone());
    differ("streaming", a.stream.to_string(), b.stream.to_string());
    differ("dataset", a.dataset.clone(), b.dataset.clone());
    differ(
        "max_tokens",
        format!("{:?}", a.max_tokens),
        format!("{:?}", b.max_tokens),
    );
    differ(
        "min_tokens",
        format!("{:?}", a.min_tokens),
        format!("{:?}", b.min_tokens),
    );
    differ(
        "extra request body",
        serde_json::to_string(&a.extra_args).unwrap_or_default(),
        serde_json::to_string(&b.extra_args).unwrap_or_default(),
    );
    differ("seed", a.seed.to_string(), b.seed.to_string());
    notes
}

/// Compare perf run `b` with baseline `a`, level by level (matched by label).
pub fn compare_perf(a: &Path, b: &Path) -> Result<PerfComparison, ReportError> {
    let read = |d: &Path| {
        let dir = crate::perf::summary::PerfDir {
            root: d.to_path_buf(),
        };
        Ok::<_, ReportError>(crate::perf::report::load_with(&dir, false)?.summary)
    };
    Ok(compare_summaries(
        &read(a)?,
        &a.display().to_string(),
        &read(b)?,
        &b.display().to_string(),
    ))
}

/// Compare perf summary `sb` (of run `b`) with baseline `sa` (of run `a`),
/// level by level (matched by label); `a` and `b` name the runs.
pub fn compare_summaries(sa: &PerfSummary, a: &str, sb: &PerfSummary, b: &str) -> PerfComparison {
    let mut rows = Vec::new();
    let mut notes = setting_notes(&sa.settings, &sb.settings);
    for la in &sa.levels {
        let Some(lb) = sb.levels.iter().find(|l| l.label == la.label) else {
            notes.push(format!("level {} is only in {a}", la.label));
            continue;
        };
        for metric in PERF_METRICS {
            let (Some(x), Some(y)) = (perf_value(la, metric.key), perf_value(lb, metric.key))
            else {
                continue;
            };
            let change_pct = if x != 0.0 { (y - x) / x * 100.0 } else { 0.0 };
            let better = if y == x {
                None
            } else {
                Some((y > x) == metric.higher_is_better)
            };
            rows.push(PerfCompareRow {
                level: la.label.clone(),
                metric: metric.key.to_string(),
                a: x,
                b: y,
                change_pct,
                better,
            });
        }
    }
    for lb in &sb.levels {
        if !sa.levels.iter().any(|l| l.label == lb.label) {
            notes.push(format!("level {} is only in {b}", lb.label));
        }
    }
    PerfComparison {
        baseline: a.to_string(),
        candidate: b.to_string(),
        rows,
        notes,
    }
}

/// Rows of `metric` that got worse by more than `threshold_pct`.
pub fn perf_regressions<'a>(
    c: &'a PerfComparison,
    metric: &str,
    threshold_pct: f64,
) -> Vec<&'a PerfCompareRow> {
    c.rows
        .iter()
        .filter(|r| {
            // From zero (e.g. no failed request before) any change is past any threshold.
            r.metric == metric
                && r.better == Some(false)
                && (r.change_pct.abs() > threshold_pct || r.a == 0.0)
        })
        .collect()
}

/// Perf comparison rows as a table: per level and metric both values and
/// the change, coloured in HTML, marked ✅ / ❌ elsewhere.
pub fn perf_rows_table(rows: &[&PerfCompareRow]) -> Table {
    let mut t = Table::new(vec![
        Column::left("Level"),
        Column::left("Metric"),
        Column::right("A"),
        Column::right("B"),
        Column::right("Change"),
    ]);
    for r in rows {
        let label = perf_metric(&r.metric).map_or(r.metric.as_str(), |m| m.label);
        let change = Cell::from(format!("{:+.1}%", r.change_pct));
        let change = match r.better {
            Some(true) => change.class("up").mark(" ✅"),
            Some(false) => change.class("down").mark(" ❌"),
            None => change,
        };
        t.row(vec![
            r.level.as_str().into(),
            label.into(),
            format!("{:.2}", r.a).into(),
            format!("{:.2}", r.b).into(),
            change,
        ]);
    }
    t
}

/// Markdown of perf comparisons, PR-sized: the headline metrics in a table,
/// every metric in a `<details>` block, cut with a note past
/// [`super::MAX_MARKDOWN`].
pub fn perf_markdown(cs: &[PerfComparison]) -> String {
    let mut out = String::from("## bench compare (perf)\n");
    for c in cs {
        let _ = writeln!(out, "\n{} → {}\n", code(&c.baseline), code(&c.candidate));
        let headline: Vec<&PerfCompareRow> = c
            .rows
            .iter()
            .filter(|r| perf_metric(&r.metric).is_some_and(|m| m.headline))
            .collect();
        out.push_str(&perf_rows_table(&headline).render(Format::Markdown));
        for n in &c.notes {
            let _ = writeln!(out, "\n> [!NOTE]\n> {}", text(n));
        }
        out.push('\n');
        out.push_str(
            &perf_rows_table(&c.rows.iter().collect::<Vec<_>>())
                .collapsed("Every metric")
                .render(Format::Markdown),
        );
    }
    super::cut_markdown(out)
}
