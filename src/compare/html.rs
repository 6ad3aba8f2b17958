//! `bench compare --format html`: one self-contained page per comparison
//! (no network, works from `file://`).
//!
//! Eval: per benchmark/subset/extractor the two accuracies, the difference
//! with its paired interval drawn as a forest plot, McNemar's p, and every
//! flipped item with the question and both runs' answers side by side,
//! linked from the table and filterable (direction, benchmark, extractor,
//! search). Perf: the level-by-level table with changes coloured, and every
//! chart overlaid (one colour per run): throughput, TTFT/TPOT/E2E
//! percentiles against concurrency or rate, and TTFT/E2E CDFs per level.
//!
//! Safety as in the run reports: model text is untrusted and only ever
//! written through [`escape`]; the page script touches `hidden` and
//! `textContent`, never `innerHTML`.

use std::fmt::Write;

use super::{Comparison, PerfComparison};
use crate::perf::report::{Cdf, PerfView, level_cdf, sweep_axis, x_of};
use crate::report::Format;
use crate::report::html::{STYLE, escape, shorten};
use crate::report::svg::{Chart, Series, line_chart};

/// Where a run's own report is, relative to the comparison page (`None`:
/// no link).
pub type ReportLink<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Filters of the flipped items.
const SCRIPT: &str = include_str!("../../assets/compare.js");

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
}

fn run_name(dir: &str, link: ReportLink) -> String {
    match link(dir) {
        Some(h) => format!(
            "<a href=\"{}\"><code>{}</code></a>",
            escape(&h),
            escape(dir)
        ),
        None => format!("<code>{}</code>", escape(dir)),
    }
}

/// The paired 95% interval of a difference as a small forest plot: a zero
/// line, the interval and the point estimate, on a scale shared by the table.
pub(crate) fn forest(lo: f64, diff: f64, hi: f64, scale: f64) -> String {
    let (w, h) = (160.0, 16.0);
    let x = |v: f64| w / 2.0 + v / scale * (w / 2.0 - 6.0);
    let colour = match (hi < 0.0, lo > 0.0) {
        (true, _) => "#cf222e",
        (_, true) => "#1a7f37",
        _ => "#57606a",
    };
    format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{:+.1} to {:+.1} pts</title>\
<line x1=\"{z:.1}\" x2=\"{z:.1}\" y1=\"0\" y2=\"{h}\" stroke=\"#8c959f\"/>\
<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"8\" y2=\"8\" stroke=\"{colour}\" stroke-width=\"2\"/>\
<circle cx=\"{:.1}\" cy=\"8\" r=\"3.5\" fill=\"{colour}\"/></svg>",
        lo * 100.0,
        hi * 100.0,
        x(lo),
        x(hi),
        x(diff),
        z = x(0.0),
    )
}

fn flip_dirs(flips: &[(String, bool)]) -> String {
    let mut d = Vec::new();
    if flips.iter().any(|f| f.1) {
        d.push("rw");
    }
    if flips.iter().any(|f| !f.1) {
        d.push("wr");
    }
    d.join(" ")
}

fn side(out: &mut String, name: &str, s: &super::ItemSide, limit: usize) {
    let _ = write!(
        out,
        "<div class=side><h5>{} · {}</h5><div>",
        escape(name),
        escape(&s.outcome.replace('_', " "))
    );
    for (ex, v) in &s.extracted {
        let ok = s.verdicts.get(ex).copied().unwrap_or(false);
        let _ = write!(
            out,
            "<span class={}>{}: {} {}</span> ",
            if ok { "ok" } else { "bad" },
            escape(ex),
            escape(v.as_deref().unwrap_or("(none)")),
            if ok { "✓" } else { "✗" }
        );
    }
    out.push_str("</div>");
    if let Some(e) = &s.error {
        let _ = write!(out, "<pre>error: {}</pre>", escape(e));
    }
    if let Some(r) = &s.response {
        let _ = write!(out, "<pre>{}</pre>", escape(&shorten(r, Some(limit))));
    }
    if let Some(r) = s.reasoning.as_deref().filter(|r| !r.is_empty()) {
        let _ = write!(
            out,
            "<details><summary>reasoning</summary><pre>{}</pre></details>",
            escape(&shorten(r, Some(limit)))
        );
    }
    out.push_str("</div>");
}

/// The eval comparison page.
pub fn eval_page(cs: &[Comparison], link: ReportLink) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, "bench compare");
    let _ = write!(
        out,
        "<header><h1>bench compare</h1><p>{} comparison(s) against the baseline {} · {} {}</p></header><main>",
        cs.len(),
        cs.first().map(|c| escape(&c.baseline)).unwrap_or_default(),
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );
    for (ci, c) in cs.iter().enumerate() {
        let _ = write!(
            out,
            "<section class=cmp id=\"c{ci}\"><h2>A: {} {} → {}: {} {}</h2>",
            escape(&c.models.0),
            run_name(&c.baseline, link),
            run_letter(ci + 1),
            escape(&c.models.1),
            run_name(&c.candidate, link)
        );
        for n in &c.notes {
            let _ = write!(out, "<div class=warn>{}</div>", escape(n));
        }
        out.push_str(&super::comparison_table(c, run_letter(ci + 1), ci).render(Format::Html));
        for t in super::group_comparison_tables(c, run_letter(ci + 1), ci) {
            out.push_str(&t.render(Format::Html));
        }
        out.push_str("<p class=muted>Δ and its interval are B − A in percentage points on the items both runs have (failed requests count as not correct). Interval: paired bootstrap, 2,000 resamples. Red: B is worse beyond doubt; green: better beyond doubt.</p>");

        // Flipped items with their text.
        let _ = write!(out, "<h3>Flipped items ({})</h3>", c.items.len());
        if c.items.is_empty() {
            out.push_str("<p class=muted>No item changed its verdict.</p></section>");
            continue;
        }
        out.push_str("<div class=filters id=filters><label><input type=checkbox checked data-dir=rw> right → wrong</label> <label><input type=checkbox checked data-dir=wr> wrong → right</label> <select class=bench><option value=\"\">all benchmarks</option>");
        let mut benches: Vec<&str> = c.items.iter().map(|i| i.benchmark.as_str()).collect();
        benches.dedup();
        for b in benches {
            let _ = write!(out, "<option value=\"{0}\">{0}</option>", escape(b));
        }
        out.push_str("</select> <select class=ex><option value=\"\">any extractor</option>");
        let mut exs: Vec<&str> = c
            .items
            .iter()
            .flat_map(|i| i.flips.iter().map(|f| f.0.as_str()))
            .collect();
        exs.sort_unstable();
        exs.dedup();
        for e in exs {
            let _ = write!(out, "<option value=\"{0}\">{0}</option>", escape(e));
        }
        out.push_str("</select> <input type=search placeholder=\"search question / responses\"> <span class=\"count muted\"></span></div>");
        // Five texts per card (question, two answers, two reasonings): a
        // per-text limit that keeps the page a few MB however many items
        // flipped (`--format json` has every text in full).
        let limit = (4_000_000 / c.items.len().max(1) / 5).clamp(300, 8_000);
        let longest = c
            .items
            .iter()
            .flat_map(|it| {
                [
                    Some(&it.question),
                    it.a.response.as_ref(),
                    it.b.response.as_ref(),
                    it.a.reasoning.as_ref(),
                    it.b.reasoning.as_ref(),
                ]
            })
            .flatten()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(0);
        if longest > limit {
            let _ = write!(
                out,
                "<p class=muted>Texts longer than {limit} characters are shortened in the middle on this page; <code>bench compare --format json</code> and the runs' samples/*.jsonl have them in full.</p>"
            );
        }
        for (k, it) in c.items.iter().enumerate() {
            let ex: Vec<&str> = it.flips.iter().map(|f| f.0.as_str()).collect();
            let _ = write!(
                out,
                "<article class=\"flip {dirs}\" id=\"c{ci}-{k}\" data-dir=\"{dirs}\" data-bench=\"{}\" data-ex=\"{}\"><h4>{} / {}{}",
                escape(&it.benchmark),
                escape(&ex.join("|")),
                escape(&it.benchmark),
                escape(&it.item),
                it.dataset_id
                    .as_deref()
                    .map(|id| format!(" ({})", escape(id)))
                    .unwrap_or_default(),
                dirs = flip_dirs(&it.flips),
            );
            for (e, rw) in &it.flips {
                let _ = write!(
                    out,
                    " <span class=tag>{}: {}</span>",
                    escape(e),
                    if *rw {
                        "right → wrong"
                    } else {
                        "wrong → right"
                    }
                );
            }
            let _ = write!(
                out,
                "</h4><div class=muted>gold: {}</div><details{}><summary>question</summary><pre>{}</pre></details><div class=sides>",
                escape(&it.gold),
                if it.question.len() < 1500 {
                    " open"
                } else {
                    ""
                },
                escape(&shorten(&it.question, Some(limit)))
            );
            side(&mut out, "A", &it.a, limit);
            side(&mut out, run_letter(ci + 1), &it.b, limit);
            out.push_str("</div></article>");
        }
        out.push_str("</section>");
    }
    let _ = writeln!(
        out,
        "</main><script>{SCRIPT}</script><script>{}</script></body></html>",
        crate::report::html::SORT_SCRIPT
    );
    out
}

/// The perf comparison page: `views[0]` is the baseline, `cs[i]` compares
/// `views[i + 1]` with it.
pub fn perf_page(views: &[(String, &PerfView)], cs: &[PerfComparison], link: ReportLink) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, "bench compare (perf)");
    let _ = write!(
        out,
        "<header><h1>bench compare (perf)</h1><p>{} run(s): {}</p></header><main>",
        views.len(),
        views
            .iter()
            .enumerate()
            .map(|(i, (d, v))| format!(
                "{} = {} ({})",
                run_letter(i),
                escape(d),
                escape(&v.summary.settings.model)
            ))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    for (ci, c) in cs.iter().enumerate() {
        let _ = write!(
            out,
            "<section class=cmp id=\"c{ci}\"><h2>A {} → {} {}</h2>",
            run_name(&c.baseline, link),
            run_letter(ci + 1),
            run_name(&c.candidate, link)
        );
        for n in &c.notes {
            let _ = write!(out, "<div class=warn>{}</div>", escape(n));
        }
        // One row per metric, one column group per level: A, B, change.
        let mut levels: Vec<&str> = Vec::new();
        for r in &c.rows {
            if !levels.contains(&r.level.as_str()) {
                levels.push(&r.level);
            }
        }
        let letter = run_letter(ci + 1);
        out.push_str("<table><thead><tr><th rowspan=2>Metric</th>");
        for l in &levels {
            let _ = write!(out, "<th colspan=3>{}</th>", escape(l));
        }
        out.push_str("</tr><tr>");
        for _ in &levels {
            let _ = write!(out, "<th>A</th><th>{letter}</th><th>change</th>");
        }
        out.push_str("</tr></thead><tbody>");
        for metric in super::PERF_METRICS {
            let cells: Vec<Option<&super::PerfCompareRow>> = levels
                .iter()
                .map(|l| {
                    c.rows
                        .iter()
                        .find(|r| r.level == *l && r.metric == metric.key)
                })
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let _ = write!(
                out,
                "<tr{}><td>{}</td>",
                if metric.headline {
                    " class=primary"
                } else {
                    ""
                },
                escape(metric.label)
            );
            for cell in cells {
                match cell {
                    Some(r) => {
                        let cls = match r.better {
                            Some(true) => "up",
                            Some(false) => "down",
                            None => "n",
                        };
                        let _ = write!(
                            out,
                            "<td class=n>{:.2}</td><td class=n>{:.2}</td><td class={cls}>{:+.1}%</td>",
                            r.a, r.b, r.change_pct
                        );
                    }
                    None => out.push_str("<td></td><td></td><td></td>"),
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table><p class=muted>Green: better, red: worse (higher is better for throughput, lower for latencies and failures). Times in ms.</p></section>");
    }

    // Every run on the same charts: one colour per run, dashes per percentile.
    let all_levels: Vec<_> = views
        .iter()
        .flat_map(|(_, v)| v.summary.levels.iter().cloned())
        .collect();
    let (x_label, log_x) = sweep_axis(&all_levels);
    let name = |i: usize| format!("{} {}", run_letter(i), short(&views[i].0));
    let per_run = |f: &dyn Fn(&crate::perf::summary::LevelSummary) -> f64,
                   suffix: &str,
                   dash: u8|
     -> Vec<Series> {
        views
            .iter()
            .enumerate()
            .map(|(i, (_, v))| Series {
                label: format!("{}{suffix}", name(i)),
                points: v.summary.levels.iter().map(|l| (x_of(l), f(l))).collect(),
                colour: Some(i),
                dash,
            })
            .collect()
    };
    let chart = |title: &'static str, y_label: &'static str| Chart {
        title,
        x_label,
        y_label,
        log_x,
        ..Default::default()
    };
    out.push_str("<h2>Charts</h2><div class=charts>");
    out.push_str(&line_chart(
        &chart("Output throughput", "tokens/s"),
        &per_run(&|l| l.stats.output_throughput, "", 0),
    ));
    out.push_str(&line_chart(
        &chart("Request throughput", "req/s"),
        &per_run(&|l| l.stats.request_throughput, "", 0),
    ));
    for (title, get) in [
        (
            "TTFT",
            (&|l: &crate::perf::summary::LevelSummary| (l.stats.ttft.p50, l.stats.ttft.p99))
                as &dyn Fn(&crate::perf::summary::LevelSummary) -> (f64, f64),
        ),
        ("TPOT", &|l| (l.stats.tpot.p50, l.stats.tpot.p99)),
        ("E2E latency", &|l| (l.stats.e2el.p50, l.stats.e2el.p99)),
    ] {
        let mut series = per_run(&|l| get(l).0, " p50", 0);
        series.extend(per_run(&|l| get(l).1, " p99", 1));
        out.push_str(&line_chart(&chart(title, "ms"), &series));
    }
    // CDFs level by level, for the levels every run has.
    let mut labels: Vec<String> = Vec::new();
    for l in views
        .first()
        .map(|(_, v)| v.summary.levels.as_slice())
        .unwrap_or_default()
    {
        if views
            .iter()
            .all(|(_, v)| v.summary.levels.iter().any(|m| m.label == l.label))
        {
            labels.push(l.label.clone());
        }
    }
    for label in &labels {
        for (what, which) in [("TTFT", Cdf::Ttft), ("E2E latency", Cdf::E2el)] {
            let series: Vec<Series> = views
                .iter()
                .enumerate()
                .map(|(i, (_, v))| Series {
                    label: name(i),
                    points: v
                        .summary
                        .levels
                        .iter()
                        .find(|l| &l.label == label)
                        .map(|l| level_cdf(v, l, which))
                        .unwrap_or_default(),
                    colour: Some(i),
                    dash: 0,
                })
                .collect();
            let title = format!("{what} CDF, {label}");
            out.push_str(&line_chart(
                &Chart {
                    title: &title,
                    x_label: "ms",
                    y_label: "fraction of requests",
                    ..Default::default()
                },
                &series,
            ));
        }
    }
    out.push_str("</div></main></body></html>\n");
    out
}

/// `A`, `B`, ... for run positions (the baseline is A).
fn run_letter(i: usize) -> &'static str {
    const L: [&str; 26] = [
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R",
        "S", "T", "U", "V", "W", "X", "Y", "Z",
    ];
    L.get(i).copied().unwrap_or("?")
}

/// The last path component of a run directory, for legends.
fn short(dir: &str) -> String {
    let s = dir.trim_end_matches('/');
    let last = s.rsplit('/').next().unwrap_or(s);
    let mut t: String = last.chars().take(28).collect();
    if last.chars().count() > 28 {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forest_marks_the_side_of_zero() {
        assert!(forest(-0.2, -0.1, -0.05, 0.2).contains("#cf222e"));
        assert!(forest(0.05, 0.1, 0.2, 0.2).contains("#1a7f37"));
        assert!(forest(-0.05, 0.0, 0.05, 0.2).contains("#57606a"));
        assert_eq!(short("outputs/run-2026/"), "run-2026");
        assert_eq!(run_letter(1), "B");
    }
}
