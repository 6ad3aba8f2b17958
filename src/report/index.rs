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
    /// Benchmarks (eval runs) or level labels (perf runs): two runs of the
    /// same kind sharing one of these get a comparison page.
    pub parts: Vec<String>,
}

/// What `bench report --index` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSummary {
    /// Runs listed.
    pub runs: usize,
    /// Comparison pages linked from the picker.
    pub comparisons: usize,
    /// Of those, pages (re)written now (the others were newer than both runs).
    pub written: usize,
    /// Comparable pairs left without a page (past the page limit).
    pub skipped: usize,
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
                status: if crate::rundir::stale_running(&d, &s.status).is_some() {
                    "interrupted".into()
                } else {
                    s.status
                },
                headline,
                parts: s.levels.iter().map(|l| l.label.clone()).collect(),
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
                parts: view.samples.iter().map(|(b, _)| b.clone()).collect(),
            });
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.rel.cmp(&b.rel)));
    out
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

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1f24}table{border-collapse:collapse}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}.perf{color:#8250df}.eval{color:#0969da}\
#picker{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #d0d7de;margin-bottom:8px}\
td.pick{text-align:center}#pick-msg{color:#57606a;margin-left:8px}";

const SCRIPT: &str = r#"
(function(){
  var info = JSON.parse(document.getElementById('pairs').textContent);
  var pages = info.pages, skipped = info.skipped, runs = info.runs;
  var go = document.getElementById('go'), msg = document.getElementById('pick-msg');
  function sh(p){ return /^[A-Za-z0-9_\/.,:+=@-]+$/.test(p) ? p : "'" + p.replace(/'/g, "'\\''") + "'"; }
  function picked(name){ var e = document.querySelector('input[name=' + name + ']:checked'); return e ? e.value : null; }
  function update(){
    var a = picked('a'), b = picked('b'), href = a !== null && b !== null ? pages[a + '\n' + b] : null;
    go.disabled = !href;
    if(a === null || b === null) msg.textContent = 'pick a baseline (A) and a candidate (B)';
    else if(a === b) msg.textContent = 'pick two different runs';
    else if(!href && skipped[a + '\n' + b]) msg.textContent = 'not generated (more comparable pairs than --max-comparisons); run: bench compare ' + sh(runs[a]) + ' ' + sh(runs[b]) + ' --format html -o compare.html';
    else if(!href) msg.textContent = 'no comparison: the runs are of different kinds or share no benchmark or level';
    else msg.textContent = '';
  }
  Array.prototype.forEach.call(document.querySelectorAll('input[name=a], input[name=b]'), function(r){ r.addEventListener('change', update); });
  go.addEventListener('click', function(){ var a = picked('a'), b = picked('b'); var href = pages[a + '\n' + b]; if(href) location.href = href; });
  update();
})();
"#;

/// Whether two runs get a comparison page: same kind, sharing a benchmark
/// (eval) or a level (perf).
fn comparable(a: &IndexEntry, b: &IndexEntry) -> bool {
    a.kind == b.kind && a.parts.iter().any(|p| b.parts.contains(p))
}

/// Comparison pages `bench report --index` writes at most by default.
pub const DEFAULT_MAX_COMPARISONS: usize = 200;

/// Write `root/index.html` and, under `root/compare/`, a comparison page for
/// every ordered pair of comparable runs (kept when newer than both runs),
/// at most [`DEFAULT_MAX_COMPARISONS`].
pub fn write_index(root: &Path) -> Result<IndexSummary, ReportError> {
    write_index_with(root, DEFAULT_MAX_COMPARISONS)
}

/// [`write_index`] with at most `max_pages` comparison pages: pairs whose
/// newer run is most recent come first (n runs of a kind make n(n−1)
/// pairs); the picker names the command for the others.
pub fn write_index_with(root: &Path, max_pages: usize) -> Result<IndexSummary, ReportError> {
    if !root.is_dir() {
        return Err(ReportError::NotARun(format!(
            "{} (not a directory)",
            root.display()
        )));
    }
    let list = entries(root);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        for (j, b) in list.iter().enumerate() {
            if i != j && comparable(a, b) {
                pairs.push((i, j));
            }
        }
    }
    // The list is newest first: a pair's recency is its newer run's position.
    pairs.sort_by_key(|&(i, j)| (i.min(j), i.max(j), i));
    let skipped = pairs.split_off(pairs.len().min(max_pages));
    let rels: Vec<&str> = list.iter().map(|e| e.rel.as_str()).collect();
    let kinds: Vec<&str> = list.iter().map(|e| e.kind).collect();
    let (files, written) = crate::compare::html::write_pair_pages(root, &rels, &kinds, &pairs)?;
    let mut page_of = serde_json::Map::new();
    for ((i, j), file) in pairs.iter().zip(&files) {
        page_of.insert(
            format!("{i}\n{j}"),
            serde_json::Value::String(format!("compare/{}", href(file))),
        );
    }

    let skipped_of: serde_json::Map<String, serde_json::Value> = skipped
        .iter()
        .map(|(i, j)| (format!("{i}\n{j}"), serde_json::Value::Bool(true)))
        .collect();
    let run_paths: Vec<serde_json::Value> = list
        .iter()
        .map(|e| root.join(&e.rel).display().to_string().into())
        .collect();
    let info = serde_json::json!({"pages": page_of, "skipped": skipped_of, "runs": run_paths});

    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench runs</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        out,
        "<h1>bench runs</h1><p>{} run(s) in {}</p>",
        list.len(),
        escape(&root.display().to_string())
    );
    out.push_str("<div id=picker>Compare: pick a baseline in column A and a candidate in column B, then <button id=go type=button disabled>open the comparison</button><span id=pick-msg></span></div>");
    out.push_str("<table><thead><tr><th>A</th><th>B</th><th>Date</th><th>Kind</th><th>Model</th><th>Status</th><th>Headline</th><th>Run</th></tr></thead><tbody>");
    for (i, e) in list.iter().enumerate() {
        let href = href(&e.rel);
        let _ = write!(
            out,
            "<tr><td class=pick><input type=radio name=a value=\"{i}\" aria-label=\"baseline\"></td><td class=pick><input type=radio name=b value=\"{i}\" aria-label=\"candidate\"></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{href}/report.html\">{}</a></td></tr>",
            escape(&e.created),
            e.kind,
            e.kind,
            escape(&e.model),
            escape(&e.status),
            escape(&e.headline),
            escape(&e.rel)
        );
    }
    let _ = writeln!(
        out,
        "</tbody></table><p>Comparison pages are generated in <code>compare/</code> by <code>bench report --index</code>; from a shell: <code>bench compare RUN_A RUN_B --format html -o page.html</code>.</p>\
<script type=\"application/json\" id=pairs>{}</script><script>{SCRIPT}</script></body></html>",
        super::html::script_json(&info)
    );
    let path = root.join("index.html");
    crate::util::write_atomic(&path, out.as_bytes()).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(IndexSummary {
        runs: list.len(),
        comparisons: pairs.len(),
        skipped: skipped.len(),
        written,
    })
}
