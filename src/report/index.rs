//! `bench report --index DIR`: one `index.html` listing every run under
//! `DIR` (eval and perf, found by their `run.json` / `summary.json`), newest
//! first, with model, date, status, headline figures and links to each run's
//! report. Self-contained; works from `file://`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::html::escape;
use super::{ReportError, pct};
use crate::perf::summary::{PerfDir, is_perf_dir};
use crate::record::RunDir;

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
}

/// Run directories under `root` (up to two levels down, as `outputs/<run>`
/// and `outputs/<run>/rescore-<mode>`).
fn find_runs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let is_run = d.join("run.json").is_file() || is_perf_dir(&d);
        if is_run && d != root {
            out.push(d.clone());
        }
        if depth < 2 {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    out
}

/// Read what the index shows of each run; unreadable directories are skipped.
pub fn entries(root: &Path) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for d in find_runs(root) {
        let rel = d
            .strip_prefix(root)
            .unwrap_or(&d)
            .to_string_lossy()
            .replace('\\', "/");
        if is_perf_dir(&d) {
            let Ok(s) = (PerfDir { root: d.clone() }).read_summary() else {
                continue;
            };
            let headline = s
                .levels
                .iter()
                .map(|l| {
                    format!(
                        "{}: {:.1} tok/s, TTFT p99 {:.1} ms",
                        l.label, l.stats.output_throughput, l.stats.ttft.p99
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            out.push(IndexEntry {
                rel,
                kind: "perf",
                model: s.settings.model,
                created: s.created_at,
                status: s.status,
                headline,
            });
        } else {
            let Ok(view) = super::load(&RunDir::new(&d)) else {
                continue;
            };
            let m = &view.data.manifest;
            let headline = view
                .data
                .results
                .iter()
                .filter(|r| {
                    r.primary
                        && (r.subset == "all"
                            || !view
                                .data
                                .results
                                .iter()
                                .any(|o| o.benchmark == r.benchmark && o.subset == "all"))
                })
                .map(|r| format!("{} {}%", r.benchmark, pct(r.stats.accuracy)))
                .collect::<Vec<_>>()
                .join(", ");
            out.push(IndexEntry {
                rel,
                kind: "eval",
                model: m.settings.model.clone(),
                created: m.created_at.clone(),
                status: m.status.clone(),
                headline,
            });
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.rel.cmp(&b.rel)));
    out
}

/// Write `root/index.html`; returns how many runs it lists.
pub fn write_index(root: &Path) -> Result<usize, ReportError> {
    if !root.is_dir() {
        return Err(ReportError::NotARun(format!(
            "{} (not a directory)",
            root.display()
        )));
    }
    let list = entries(root);
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench runs</title><style>\
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1f24}table{border-collapse:collapse}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}.perf{color:#8250df}.eval{color:#0969da}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>bench runs</h1><p>{} run(s) in {}</p>",
        list.len(),
        escape(&root.display().to_string())
    );
    out.push_str("<table><thead><tr><th>Date</th><th>Kind</th><th>Model</th><th>Status</th><th>Headline</th><th>Run</th></tr></thead><tbody>");
    for e in &list {
        // Link paths are percent-encoded where HTML attribute escaping is not enough.
        let href: String = e
            .rel
            .split('/')
            .map(|seg| {
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
            .join("/");
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{href}/report.html\">{}</a></td></tr>",
            escape(&e.created),
            e.kind,
            e.kind,
            escape(&e.model),
            escape(&e.status),
            escape(&e.headline),
            escape(&e.rel)
        );
    }
    out.push_str("</tbody></table><p>Compare two runs: <code>bench compare RUN_A RUN_B</code>.</p></body></html>\n");
    let path = root.join("index.html");
    crate::record::write_atomic(&path, out.as_bytes()).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(list.len())
}
