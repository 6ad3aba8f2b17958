//! Perf reports: `report.md` (tables that fit a PR comment) and
//! `report.html` (one self-contained page with inline SVG charts:
//! throughput and latency percentiles against concurrency or rate, and
//! latency CDFs), rendered from `summary.json` and `requests.jsonl` alone.
//! `summary.json` itself is the JSON form.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::record::RequestRecord;
use super::run::Load;
use super::stats::{CDF_POINTS, Distribution, RequestMetrics};
use super::summary::{LevelSummary, PerfDir, PerfSummary};
use crate::report::html::{STYLE, escape};
use crate::report::markdown::{code, text};
use crate::report::svg::{Chart, Series, cdf_points, fmt_num, line_chart};
use crate::report::table::{Column, Table};
use crate::report::{Format, Renderer, ReportError, write_all};

/// What perf renderers see.
#[derive(Debug)]
pub struct PerfView {
    /// `summary.json`.
    pub summary: PerfSummary,
    /// `requests.jsonl`, by level.
    pub records: BTreeMap<usize, Vec<RequestRecord>>,
}

/// Read a perf run directory.
pub fn load(dir: &PerfDir) -> Result<PerfView, ReportError> {
    load_with(dir, true)
}

/// Read a perf run directory; `records: false` skips `requests.jsonl` (for
/// what needs only the summary) and leaves [`PerfView::records`] empty.
pub fn load_with(dir: &PerfDir, records: bool) -> Result<PerfView, ReportError> {
    let io = |path: std::path::PathBuf| {
        move |source| ReportError::Io {
            path: path.display().to_string(),
            source,
        }
    };
    let mut summary = dir.read_summary().map_err(io(dir.summary()))?;
    if crate::rundir::stale_running(&dir.root, &summary.status).is_some() {
        summary.status = "interrupted".into();
    }
    // Runs that keep their CDFs in the summary need no records for the
    // reports (a long run's requests.jsonl can be gigabytes).
    let records = records && summary.levels.iter().any(|l| l.cdf.is_none());
    let records = if records {
        let (records, skipped) = dir.read_records_checked().map_err(io(dir.requests()))?;
        if let Some(w) = crate::report::skipped_warning("requests.jsonl", &skipped) {
            eprintln!("warning: {}: {w}", dir.root.display());
        }
        records
    } else {
        BTreeMap::new()
    };
    Ok(PerfView { summary, records })
}

/// Write `report.md` and `report.html` into the run directory.
pub fn write_reports(dir: &PerfDir) -> Result<(), ReportError> {
    let view = load(dir)?;
    let renderers: Vec<Box<dyn Renderer<PerfView>>> =
        vec![Box::new(PerfMarkdown), Box::new(PerfHtml)];
    write_all(&dir.root, &view, &renderers)
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// The columns of the level table: (header, value).
fn columns(l: &LevelSummary) -> Vec<(&'static str, String)> {
    let s = &l.stats;
    let ok_rate = if s.total > 0 {
        s.succeeded as f64 / s.total as f64 * 100.0
    } else {
        0.0
    };
    vec![
        ("Level", l.label.clone()),
        ("Requests", s.total.to_string()),
        ("OK %", f1(ok_rate)),
        ("Req/s", f2(s.request_throughput)),
        ("Out tok/s", f1(s.output_throughput)),
        ("Total tok/s", f1(s.total_token_throughput)),
        ("TTFT mean", f2(s.ttft.mean)),
        ("TTFT p99", f2(s.ttft.p99)),
        ("TPOT mean", f2(s.tpot.mean)),
        ("TPOT p99", f2(s.tpot.p99)),
        ("ITL mean", f2(s.itl.mean)),
        ("ITL p99", f2(s.itl.p99)),
        ("E2E mean", f2(s.e2el.mean)),
        ("E2E p99", f2(s.e2el.p99)),
    ]
}

/// One aligned console line for a finished level.
pub fn level_line(l: &LevelSummary) -> String {
    columns(l)
        .iter()
        .map(|(h, v)| format!("{h} {v}"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The level table: one row per level, the columns of [`level_line`].
/// Defined once for `report.md`, `report.html` and the console.
pub fn level_table(levels: &[LevelSummary]) -> Table {
    let mut t = Table::new(
        levels
            .first()
            .map(|first| {
                columns(first)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (h, _))| {
                        if i == 0 {
                            Column::left(h)
                        } else {
                            Column::right(h)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    );
    for l in levels {
        t.row(columns(l).into_iter().map(|(_, v)| v.into()).collect());
    }
    t
}

/// The console table over all levels (times in ms).
pub fn console_table(s: &PerfSummary) -> String {
    if s.levels.is_empty() {
        return "no level finished\n".into();
    }
    level_table(&s.levels)
        .note("times in ms; ITL is token-level (chunk gaps split over their tokens), see report.md for vLLM's chunk-gap ITL")
        .render(Format::Text)
}

fn dist_row(name: &str, d: &Distribution) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        d.n,
        f2(d.mean),
        f2(d.std),
        f2(d.min),
        f2(d.p50),
        f2(d.p90),
        f2(d.p95),
        f2(d.p99),
        f2(d.p999),
        f2(d.max)
    )
}

/// `report.md`.
pub struct PerfMarkdown;

impl Renderer<PerfView> for PerfMarkdown {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn render(&self, view: &PerfView) -> String {
        let s = &view.summary;
        let st = &s.settings;
        let mut out = String::new();
        let _ = writeln!(out, "## bench perf: {}\n", code(&st.model));
        let _ = writeln!(
            out,
            "{} · {} ({}{}) · dataset {} · max_tokens {} · {} {}{}\n",
            text(&s.created_at),
            // A run written before URLs lost their userinfo in records.
            code(&crate::redact::strip_userinfo(&st.url)),
            text(&st.api),
            if st.stream { ", streaming" } else { "" },
            text(&st.dataset),
            st.max_tokens
                .map_or("server default".into(), |m| m.to_string()),
            text(&s.tool.name),
            text(&s.tool.version),
            if s.status == "complete" {
                String::new()
            } else {
                format!(" — **{}**", text(&s.status))
            }
        );
        if !s.levels.is_empty() {
            out.push_str(&level_table(&s.levels).render(Format::Markdown));
            let _ = writeln!(
                out,
                "\nTimes in ms. ITL is token-level (each gap between chunks split over the tokens it carried); vLLM's chunk-gap \"ITL\" is the ICL row below and its `*_itl_ms` keys in `summary.json`."
            );
        }
        for l in &s.levels {
            let st = &l.stats;
            // Inside an HTML block: HTML escaping, not markdown's.
            let _ = writeln!(
                out,
                "\n<details><summary>{} — details</summary>\n",
                escape(&l.label)
            );
            for w in &l.warnings {
                let _ = writeln!(out, "> [!WARNING]\n> {}\n", text(w));
            }
            let _ = writeln!(
                out,
                "| Metric (ms) | n | mean | std | min | p50 | p90 | p95 | p99 | p99.9 | max |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for (name, d) in [
                ("TTFT", &st.ttft),
                ("TPOT", &st.tpot),
                ("ITL (token)", &st.itl),
                ("ICL (chunk gap)", &st.icl),
                ("E2E latency", &st.e2el),
                ("Queue time", &st.queue_time),
                ("TTFT incl. queue", &st.ttft_queued),
            ] {
                if d.n > 0 {
                    let _ = writeln!(out, "{}", dist_row(name, d));
                }
            }
            let _ = writeln!(out, "\n| Figure | Value |\n|---|---|");
            let _ = writeln!(
                out,
                "| Requests ok / failed | {} / {} |",
                st.succeeded, st.failed
            );
            let _ = writeln!(out, "| Window | {:.2} s |", st.duration_s);
            let _ = writeln!(
                out,
                "| Input / output tokens | {} / {} |",
                st.total_input_tokens, st.total_output_tokens
            );
            let _ = writeln!(out, "| Input tok/s | {:.1} |", st.input_throughput);
            if let Some(g) = st.goodput {
                let _ = writeln!(
                    out,
                    "| Goodput ({}) | {g:.2} req/s ({:.1}% of requests) |",
                    text(&st.slo.as_ref().map(|s| s.to_string()).unwrap_or_default()),
                    st.goodput_fraction.unwrap_or(0.0) * 100.0
                );
            }
            if let Some(e) = &st.input_length_error {
                let _ = writeln!(
                    out,
                    "| Input length error | mean {:.2}, max {} tokens over {} requests |",
                    e.mean_abs, e.max_abs, e.requests
                );
            }
            let h = &l.client;
            let _ = writeln!(
                out,
                "| Client CPU | {:.2} of {} core(s) |",
                h.cpu_cores_used, h.cores
            );
            if let (Some(p99), Some(max)) = (h.dispatch_lag_p99_ms, h.dispatch_lag_max_ms) {
                let _ = writeln!(out, "| Dispatch lag | p99 {p99:.3} ms, max {max:.3} ms |");
            }
            if let Some(r) = h.achieved_rate {
                let _ = writeln!(out, "| Achieved arrival rate | {r:.2}/s |");
            }
            if let Some(srv) = &l.server {
                for (k, v) in &srv.derived {
                    let _ = writeln!(out, "| Server: {} | {} |", text(k), fmt_num(*v));
                }
            }
            let _ = writeln!(out, "\n</details>");
        }
        out
    }
}

/// `report.html`.
pub struct PerfHtml;

/// The sweep variable of a level for charts: concurrency or rate.
pub(crate) fn x_of(l: &LevelSummary) -> f64 {
    match l.load {
        Load::Concurrency { concurrency } => concurrency as f64,
        Load::Rate { rate, .. } => rate,
    }
}

/// The x axis of charts over these levels: its label, and whether it is
/// logarithmic (concurrency sweeps such as 1, 8, 64).
pub(crate) fn sweep_axis(levels: &[LevelSummary]) -> (&'static str, bool) {
    let is_rate = levels.iter().any(|l| matches!(l.load, Load::Rate { .. }));
    if is_rate {
        ("request rate (req/s)", false)
    } else {
        ("concurrency", levels.len() > 2)
    }
}

/// One metric of every measured (non-warmup) request of a level.
pub(crate) fn level_values(
    view: &PerfView,
    level: usize,
    f: &dyn Fn(&RequestMetrics) -> Option<f64>,
) -> Vec<f64> {
    view.records
        .get(&level)
        .map(|rs| {
            rs.iter()
                .filter(|r| !r.warmup)
                .map(RequestMetrics::of)
                .filter_map(|m| f(&m))
                .collect()
        })
        .unwrap_or_default()
}

/// Which latency CDF a chart draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cdf {
    /// Time to first token.
    Ttft,
    /// End-to-end latency.
    E2el,
}

/// The points of a level's CDF: from `summary.json` when the run kept them
/// there, else computed from `requests.jsonl` (runs made before).
pub(crate) fn level_cdf(view: &PerfView, level: &LevelSummary, which: Cdf) -> Vec<(f64, f64)> {
    match (&level.cdf, which) {
        (Some(c), Cdf::Ttft) => c.ttft.clone(),
        (Some(c), Cdf::E2el) => c.e2el.clone(),
        (None, Cdf::Ttft) => {
            cdf_points(&level_values(view, level.index, &|m| m.ttft_ms), CDF_POINTS)
        }
        (None, Cdf::E2el) => {
            cdf_points(&level_values(view, level.index, &|m| m.e2el_ms), CDF_POINTS)
        }
    }
}

impl Renderer<PerfView> for PerfHtml {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, view: &PerfView) -> String {
        let s = &view.summary;
        let st = &s.settings;
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench perf: {}</title><style>{STYLE}</style></head><body>",
            escape(&st.model)
        );
        let _ = write!(
            out,
            "<header><h1>bench perf: {}</h1><p>{} · {} ({}{}) · dataset {} · status {}</p></header><main>",
            escape(&st.model),
            escape(&s.created_at),
            escape(&crate::redact::strip_userinfo(&st.url)),
            escape(&st.api),
            if st.stream { ", streaming" } else { "" },
            escape(&st.dataset),
            escape(&s.status)
        );
        // Level table.
        if !s.levels.is_empty() {
            out.push_str("<h2>Levels</h2>");
            out.push_str(&level_table(&s.levels).render(Format::Html));
            out.push_str("<p>Times in ms.</p>");
        }
        for l in &s.levels {
            for w in &l.warnings {
                let _ = write!(
                    out,
                    "<div class=warn><b>{}</b>: {}</div>",
                    escape(&l.label),
                    escape(w)
                );
            }
        }
        // Charts against the sweep variable.
        let (x_label, log_x) = sweep_axis(&s.levels);
        let series = |name: &str, f: &dyn Fn(&LevelSummary) -> f64| {
            Series::new(name, s.levels.iter().map(|l| (x_of(l), f(l))).collect())
        };
        out.push_str("<h2>Charts</h2><div class=charts>");
        out.push_str(&line_chart(
            &Chart {
                title: "Output throughput",
                x_label,
                y_label: "tokens/s",
                log_x,
                ..Default::default()
            },
            &[
                series("output tok/s", &|l| l.stats.output_throughput),
                series("total tok/s", &|l| l.stats.total_token_throughput),
            ],
        ));
        out.push_str(&line_chart(
            &Chart {
                title: "Request throughput",
                x_label,
                y_label: "req/s",
                log_x,
                ..Default::default()
            },
            &[series("req/s", &|l| l.stats.request_throughput)],
        ));
        out.push_str(&line_chart(
            &Chart {
                title: "TTFT",
                x_label,
                y_label: "ms",
                log_x,
                ..Default::default()
            },
            &[
                series("p50", &|l| l.stats.ttft.p50),
                series("p90", &|l| l.stats.ttft.p90),
                series("p99", &|l| l.stats.ttft.p99),
            ],
        ));
        out.push_str(&line_chart(
            &Chart {
                title: "TPOT",
                x_label,
                y_label: "ms",
                log_x,
                ..Default::default()
            },
            &[
                series("p50", &|l| l.stats.tpot.p50),
                series("p90", &|l| l.stats.tpot.p90),
                series("p99", &|l| l.stats.tpot.p99),
            ],
        ));
        out.push_str(&line_chart(
            &Chart {
                title: "E2E latency",
                x_label,
                y_label: "ms",
                log_x,
                ..Default::default()
            },
            &[
                series("p50", &|l| l.stats.e2el.p50),
                series("p99", &|l| l.stats.e2el.p99),
            ],
        ));
        // CDFs kept in the summary (older runs: from the raw records).
        let cdf = |which: Cdf| -> Vec<Series> {
            s.levels
                .iter()
                .map(|l| Series::new(l.label.clone(), level_cdf(view, l, which)))
                .collect()
        };
        out.push_str(&line_chart(
            &Chart {
                title: "TTFT CDF",
                x_label: "ms",
                y_label: "fraction of requests",
                ..Default::default()
            },
            &cdf(Cdf::Ttft),
        ));
        out.push_str(&line_chart(
            &Chart {
                title: "E2E latency CDF",
                x_label: "ms",
                y_label: "fraction of requests",
                ..Default::default()
            },
            &cdf(Cdf::E2el),
        ));
        out.push_str("</div>");
        // Per-level details.
        for l in &s.levels {
            let st = &l.stats;
            let _ = write!(
                out,
                "<h3>{}</h3><table><thead><tr><th>ms</th><th>n</th><th>mean</th><th>std</th><th>min</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>",
                escape(&l.label)
            );
            for (name, d) in [
                ("TTFT", &st.ttft),
                ("TPOT", &st.tpot),
                ("ITL (token)", &st.itl),
                ("ICL (chunk gap)", &st.icl),
                ("E2E", &st.e2el),
                ("Queue", &st.queue_time),
            ] {
                if d.n == 0 {
                    continue;
                }
                let _ = write!(out, "<tr><td>{name}</td><td class=n>{}</td>", d.n);
                for v in [
                    d.mean, d.std, d.min, d.p50, d.p90, d.p95, d.p99, d.p999, d.max,
                ] {
                    let _ = write!(out, "<td class=n>{}</td>", f2(v));
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
            if let Some(srv) = &l.server {
                out.push_str("<table><tbody>");
                for (k, v) in &srv.derived {
                    let _ = write!(
                        out,
                        "<tr><th>server: {}</th><td class=n>{}</td></tr>",
                        escape(k),
                        fmt_num(*v)
                    );
                }
                out.push_str("</tbody></table>");
            }
        }
        out.push_str("</main></body></html>\n");
        out
    }
}
