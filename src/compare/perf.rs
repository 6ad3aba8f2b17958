//! `bench compare` on perf runs: level by level (matched by label), every
//! headline metric of each run with its relative change, and the regression
//! gate on one chosen metric.

use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::ReportError;

/// Perf metrics compared: (key, label, higher is better).
pub const PERF_METRICS: &[(&str, &str, bool)] = &[
    ("request_throughput", "requests/s", true),
    ("output_throughput", "output tok/s", true),
    ("total_token_throughput", "total tok/s", true),
    ("mean_ttft_ms", "TTFT mean ms", false),
    ("p99_ttft_ms", "TTFT p99 ms", false),
    ("mean_tpot_ms", "TPOT mean ms", false),
    ("p99_tpot_ms", "TPOT p99 ms", false),
    ("mean_itl_ms", "ITL mean ms", false),
    ("p99_itl_ms", "ITL p99 ms", false),
    ("mean_e2el_ms", "E2E mean ms", false),
    ("p99_e2el_ms", "E2E p99 ms", false),
    ("failed", "failed requests", false),
];

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
    /// (b − a) / a in percent (0 when a is 0).
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

fn perf_value(l: &crate::perf::summary::LevelSummary, key: &str) -> f64 {
    let s = &l.stats;
    match key {
        "request_throughput" => s.request_throughput,
        "output_throughput" => s.output_throughput,
        "total_token_throughput" => s.total_token_throughput,
        "mean_ttft_ms" => s.ttft.mean,
        "p99_ttft_ms" => s.ttft.p99,
        "mean_tpot_ms" => s.tpot.mean,
        "p99_tpot_ms" => s.tpot.p99,
        "mean_itl_ms" => s.itl.mean,
        "p99_itl_ms" => s.itl.p99,
        "mean_e2el_ms" => s.e2el.mean,
        "p99_e2el_ms" => s.e2el.p99,
        "failed" => s.failed as f64,
        _ => f64::NAN,
    }
}

/// Compare perf run `b` with baseline `a`, level by level (matched by label).
pub fn compare_perf(a: &Path, b: &Path) -> Result<PerfComparison, ReportError> {
    let read = |d: &Path| {
        let dir = crate::perf::summary::PerfDir {
            root: d.to_path_buf(),
        };
        dir.read_summary().map_err(|source| ReportError::Io {
            path: dir.summary().display().to_string(),
            source,
        })
    };
    let (sa, sb) = (read(a)?, read(b)?);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for la in &sa.levels {
        let Some(lb) = sb.levels.iter().find(|l| l.label == la.label) else {
            notes.push(format!("level {} is only in {}", la.label, a.display()));
            continue;
        };
        for (key, _, higher_better) in PERF_METRICS {
            let (x, y) = (perf_value(la, key), perf_value(lb, key));
            let change_pct = if x != 0.0 { (y - x) / x * 100.0 } else { 0.0 };
            let better = if y == x {
                None
            } else {
                Some((y > x) == *higher_better)
            };
            rows.push(PerfCompareRow {
                level: la.label.clone(),
                metric: key.to_string(),
                a: x,
                b: y,
                change_pct,
                better,
            });
        }
    }
    for lb in &sb.levels {
        if !sa.levels.iter().any(|l| l.label == lb.label) {
            notes.push(format!("level {} is only in {}", lb.label, b.display()));
        }
    }
    Ok(PerfComparison {
        baseline: a.display().to_string(),
        candidate: b.display().to_string(),
        rows,
        notes,
    })
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
            r.metric == metric && r.better == Some(false) && r.change_pct.abs() > threshold_pct
        })
        .collect()
}

/// Markdown of perf comparisons (PR-sized).
pub fn perf_markdown(cs: &[PerfComparison]) -> String {
    let mut out = String::from("## bench compare (perf)\n");
    for c in cs {
        let _ = writeln!(out, "\n`{}` → `{}`\n", c.baseline, c.candidate);
        let _ = writeln!(out, "| Level | Metric | A | B | Change |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for r in &c.rows {
            let label = PERF_METRICS
                .iter()
                .find(|m| m.0 == r.metric)
                .map_or(r.metric.as_str(), |m| m.1);
            let mark = match r.better {
                Some(true) => " ✅",
                Some(false) => " ❌",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {label} | {:.2} | {:.2} | {:+.1}%{mark} |",
                r.level, r.a, r.b, r.change_pct
            );
        }
        for n in &c.notes {
            let _ = writeln!(out, "\n> [!NOTE]\n> {n}");
        }
    }
    out
}
