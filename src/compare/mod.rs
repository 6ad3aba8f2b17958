//! `bench compare`: decide from two or more eval runs. For each benchmark,
//! subset and extractor the runs share, accuracy of each run on the items
//! both answered, the difference with an exact McNemar test and a paired
//! bootstrap 95% interval, and the items that flipped.
//!
//! Owns the pairing (by subset, split and row index), the statistics and the
//! comparison record; renders markdown (sized for a PR comment) and JSON.
//! Runs on other items or in other modes are compared only where they
//! overlap, and the result says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::record::{RunDir, SampleRecord};
use crate::report::{self, ReportError};

/// Markdown longer than this is cut (GitHub's comment limit is 65,536).
pub const MAX_MARKDOWN: usize = 60_000;

/// One compared row: baseline vs candidate on one benchmark/subset/extractor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Benchmark.
    pub benchmark: String,
    /// Subset, or `all`.
    pub subset: String,
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
    /// Flipped items as `subset/split#index`, right → wrong first.
    pub flipped: Vec<String>,
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
pub fn paired_bootstrap(pairs: &[(bool, bool)], resamples: usize, seed: u64) -> (f64, f64) {
    if pairs.is_empty() {
        return (0.0, 0.0);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = pairs.len();
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut d = 0i64;
            for _ in 0..n {
                let (a, b) = pairs[rng.random_range(0..n)];
                d += i64::from(b) - i64::from(a);
            }
            d as f64 / n as f64
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let q = |p: f64| diffs[((resamples - 1) as f64 * p).round() as usize];
    (q(0.025), q(0.975))
}

fn key(r: &SampleRecord) -> (String, String, usize) {
    (r.subset.clone(), r.split.clone(), r.index)
}

/// Whether extractor `ex` judged `r` right (failed requests are not).
fn right(r: &SampleRecord, ex: &str) -> bool {
    r.error.is_none() && r.verdicts.get(ex).copied().unwrap_or(false)
}

/// Compare run `b` with baseline `a`.
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Comparison, ReportError> {
    let va = report::load(&RunDir::new(a))?;
    let vb = report::load(&RunDir::new(b))?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
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
        let (ma, mb) = (mode(&va).unwrap_or_default(), mode(&vb).unwrap_or_default());
        if ma != mb {
            notes.push(format!(
                "{bench}: modes differ ({ma} vs {mb}); compared on extractors both have"
            ));
        }
        let ex_a: BTreeSet<String> = recs_a
            .iter()
            .flat_map(|r| r.verdicts.keys().cloned())
            .collect();
        let ex_b: BTreeSet<String> = recs_b
            .iter()
            .flat_map(|r| r.verdicts.keys().cloned())
            .collect();
        let by_key_b: BTreeMap<_, &SampleRecord> = recs_b.iter().map(|r| (key(r), r)).collect();
        let keys_a: BTreeSet<_> = recs_a.iter().map(key).collect();
        let unpaired = (recs_a.len() + recs_b.len()) as u64
            - 2 * keys_a.iter().filter(|k| by_key_b.contains_key(*k)).count() as u64;
        if unpaired > 0 {
            notes.push(format!(
                "{bench}: {unpaired} item(s) are in only one run and are left out"
            ));
        }
        let mut subsets: Vec<String> = Vec::new();
        for r in recs_a {
            if !subsets.contains(&r.subset) {
                subsets.push(r.subset.clone());
            }
        }
        let mut groups: Vec<String> = subsets.clone();
        if subsets.len() > 1 {
            groups.push("all".into());
        }
        for ex in ex_a.intersection(&ex_b) {
            for group in &groups {
                let mut pairs = Vec::new();
                let mut flipped_rw = Vec::new();
                let mut flipped_wr = Vec::new();
                for ra in recs_a
                    .iter()
                    .filter(|r| group == "all" || &r.subset == group)
                {
                    let Some(rb) = by_key_b.get(&key(ra)) else {
                        continue;
                    };
                    let (x, y) = (right(ra, ex), right(rb, ex));
                    let id = format!("{}/{}#{}", ra.subset, ra.split, ra.index);
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
                    subset: group.clone(),
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
    Ok(Comparison {
        baseline: a.display().to_string(),
        candidate: b.display().to_string(),
        models: (
            va.data.manifest.settings.model.clone(),
            vb.data.manifest.settings.model.clone(),
        ),
        rows,
        notes,
    })
}

/// Rows where the candidate is worse beyond doubt: accuracy fell and the
/// paired interval excludes zero.
pub fn regressions(c: &Comparison) -> Vec<&CompareRow> {
    c.rows
        .iter()
        .filter(|r| r.diff < 0.0 && r.ci_high < 0.0)
        .collect()
}

/// Markdown for a PR comment (cut with a note past [`MAX_MARKDOWN`]).
pub fn markdown(cs: &[Comparison]) -> String {
    let mut out = String::from("## bench compare\n");
    for c in cs {
        let _ = writeln!(
            out,
            "\n**{}** (`{}`) → **{}** (`{}`)\n",
            c.models.0, c.baseline, c.models.1, c.candidate
        );
        let _ = writeln!(
            out,
            "| Benchmark | Subset | Extractor | n | A % | B % | Δ (pts) | 95% CI (paired bootstrap) | right→wrong | wrong→right | McNemar p |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|");
        for r in &c.rows {
            let flag = if r.ci_high < 0.0 {
                " ⬇"
            } else if r.ci_low > 0.0 {
                " ⬆"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:+.1}{flag} | {:+.1} to {:+.1} | {} | {} | {:.3} |",
                r.benchmark,
                r.subset,
                r.extractor,
                r.n,
                r.acc_a * 100.0,
                r.acc_b * 100.0,
                r.diff * 100.0,
                r.ci_low * 100.0,
                r.ci_high * 100.0,
                r.right_to_wrong,
                r.wrong_to_right,
                r.p_value
            );
        }
        for n in &c.notes {
            let _ = writeln!(out, "\n> [!NOTE]\n> {n}");
        }
        let flips: Vec<&CompareRow> = c
            .rows
            .iter()
            .filter(|r| !r.flipped.is_empty() && r.subset != "all")
            .collect();
        if !flips.is_empty() {
            let _ = writeln!(out, "\n<details><summary>Flipped items</summary>\n");
            for r in flips {
                let _ = writeln!(
                    out,
                    "- {} {} {}: {}",
                    r.benchmark,
                    r.subset,
                    r.extractor,
                    r.flipped.join(", ")
                );
            }
            let _ = writeln!(out, "\n</details>");
        }
    }
    if out.len() > MAX_MARKDOWN {
        let mut cut = MAX_MARKDOWN - 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n… cut to fit one GitHub comment; the JSON output (`--format json`) has everything.\n");
    }
    out
}

/// Compare every candidate with the first run.
pub fn compare_all(dirs: &[PathBuf]) -> Result<Vec<Comparison>, ReportError> {
    let (base, rest) = dirs
        .split_first()
        .ok_or_else(|| ReportError::NotARun("(none)".into()))?;
    rest.iter().map(|d| compare_dirs(base, d)).collect()
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
}

// ---------------------------------------------------------------------------
// Perf runs

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
