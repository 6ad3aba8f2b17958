//! `index.html`, the page listing every run of a folder (`bench report
//! --index DIR`): newest first, with model, date, status, headline figures,
//! links to each run's report and an A/B picker that opens the comparison
//! page of two runs. Self-contained; works from `file://`.
//!
//! Owns the page (an [`IndexView`] rendered by [`IndexHtml`]) and the
//! relative links between pages. Finding the runs and writing the
//! comparison pages is [`crate::site`]'s job, above both the reports and
//! the comparisons, so that this module needs neither.

use std::fmt::Write;
use std::path::Path;

use super::html::{STYLE, escape, script_json};
use super::table::{Cell, Column, Table};
use super::{Format, Renderer};

/// The picker of the index page.
const SCRIPT: &str = include_str!("../../assets/index.js");

/// One listed run.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Directory relative to the index.
    pub rel: String,
    /// `eval` or `perf`.
    pub kind: &'static str,
    /// Model.
    pub model: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Status.
    pub status: String,
    /// Headline figures, already formatted.
    pub headline: String,
    /// Benchmarks (eval runs) or level labels (perf runs): two runs of the
    /// same kind sharing one of these get a comparison page.
    pub parts: Vec<String>,
}

/// What the index page shows: the runs and the comparison pages of pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexView {
    /// The folder, as shown.
    pub root: String,
    /// Runs, newest first.
    pub entries: Vec<IndexEntry>,
    /// `(baseline, candidate)` positions in [`Self::entries`] with their
    /// comparison page (a link relative to the index).
    pub pages: Vec<((usize, usize), String)>,
    /// Comparable pairs left without a page (past the page limit).
    pub skipped: Vec<(usize, usize)>,
    /// Each run's directory as a shell would name it (for the command the
    /// picker suggests when a pair has no page).
    pub run_paths: Vec<String>,
}

/// The list of runs; the radio buttons of the picker exist in HTML only.
pub fn index_table(view: &IndexView) -> Table {
    let mut t = Table::new(vec![
        Column::left("A").only(Format::Html),
        Column::left("B").only(Format::Html),
        Column::left("Date"),
        Column::left("Kind"),
        Column::left("Model"),
        Column::left("Status"),
        Column::left("Headline"),
        Column::left("Run"),
    ]);
    for (i, e) in view.entries.iter().enumerate() {
        let radio = |name: &str, label: &str| {
            Cell::html(
                "",
                format!("<input type=radio name={name} value=\"{i}\" aria-label=\"{label}\">"),
            )
            .class("pick")
        };
        t.row(vec![
            radio("a", "baseline"),
            radio("b", "candidate"),
            e.created.as_str().into(),
            Cell::from(e.kind).class(e.kind),
            e.model.as_str().into(),
            e.status.as_str().into(),
            e.headline.as_str().into(),
            Cell::html(
                e.rel.as_str(),
                format!(
                    "<a href=\"{}/report.html\">{}</a>",
                    href(&e.rel),
                    escape(&e.rel)
                ),
            ),
        ]);
    }
    t
}

/// Writes `index.html`.
pub struct IndexHtml;

impl Renderer<IndexView> for IndexHtml {
    fn file_name(&self) -> &'static str {
        "index.html"
    }

    fn render(&self, view: &IndexView) -> String {
        let pair = |(i, j): (usize, usize)| format!("{i}\n{j}");
        let pages: serde_json::Map<String, serde_json::Value> = view
            .pages
            .iter()
            .map(|&(p, ref link)| (pair(p), link.clone().into()))
            .collect();
        let skipped: serde_json::Map<String, serde_json::Value> = view
            .skipped
            .iter()
            .map(|&p| (pair(p), true.into()))
            .collect();
        let info = serde_json::json!({"pages": pages, "skipped": skipped, "runs": view.run_paths});
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench runs</title><style>{STYLE}</style></head><body class=index>"
        );
        let _ = write!(
            out,
            "<h1>bench runs</h1><p>{} run(s) in {}</p>",
            view.entries.len(),
            escape(&view.root)
        );
        out.push_str("<div id=picker>Compare: pick a baseline in column A and a candidate in column B, then <button id=go type=button disabled>open the comparison</button><span id=pick-msg></span></div>");
        out.push_str(&index_table(view).render(Format::Html));
        let _ = writeln!(
            out,
            "<p>Comparison pages are generated in <code>compare/</code> by <code>bench report --index</code>; from a shell: <code>bench compare RUN_A RUN_B --format html -o page.html</code>.</p>\
<script type=\"application/json\" id=pairs>{}</script><script>{SCRIPT}</script></body></html>",
            script_json(&info)
        );
        out
    }
}

/// A relative path (`/`-separated) as a link target: each segment
/// percent-encoded where HTML attribute escaping is not enough.
pub fn href(rel: &str) -> String {
    rel.split('/')
        .map(|seg| {
            if seg == ".." || seg == "." {
                return seg.to_string();
            }
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The link from a page in directory `from` to `to` (both existing), as a
/// relative, percent-encoded path; `None` when either cannot be resolved.
pub fn relative_href(from: &Path, to: &Path) -> Option<String> {
    let (f, t) = (from.canonicalize().ok()?, to.canonicalize().ok()?);
    let fc: Vec<_> = f.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = fc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); fc.len() - common];
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        return Some(".".into());
    }
    Some(href(&parts.join("/")))
}
