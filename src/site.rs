//! The pages of a folder of runs (`bench report --index DIR`): `index.html`
//! listing every run, and under `compare/` a comparison page for each pair
//! of comparable runs that the index's picker opens.
//!
//! Sits above [`crate::report`] (run reports, the index page itself),
//! [`crate::perf`] and [`crate::compare`] (comparison pages): it finds the
//! runs, reads them and asks each of those modules for its page, so none of
//! them needs to know about the others' pages. Top-level modules import
//! downwards only; this one is the top of the report side.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::Digest;

use crate::compare::html::{eval_page, perf_page};
use crate::perf::report::PerfView;
use crate::perf::summary::{PerfDir, is_perf_dir};
use crate::record::RunDir;
use crate::report::index::{IndexEntry, IndexHtml, IndexView, href, relative_href};
use crate::report::{Renderer, ReportError, RunView, pct, write_all};

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
            let Ok(view) = crate::report::load(&RunDir::new(&d)) else {
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
    let (files, written) = write_pair_pages(root, &rels, &kinds, &pairs)?;
    let view = IndexView {
        root: root.display().to_string(),
        pages: pairs
            .iter()
            .zip(&files)
            .map(|(&p, file)| (p, format!("compare/{}", href(file))))
            .collect(),
        skipped: skipped.clone(),
        run_paths: list
            .iter()
            .map(|e| root.join(&e.rel).display().to_string())
            .collect(),
        entries: list,
    };
    write_all(
        root,
        &view,
        &[Box::new(IndexHtml) as Box<dyn Renderer<IndexView>>],
    )?;
    Ok(IndexSummary {
        runs: view.entries.len(),
        comparisons: pairs.len(),
        skipped: skipped.len(),
        written,
    })
}

/// The newest modification time of the files a run's reports are made of.
fn run_mtime(dir: &Path) -> Option<SystemTime> {
    let mut files = vec![
        dir.join("run.json"),
        dir.join("summary.json"),
        dir.join("requests.jsonl"),
    ];
    if let Ok(rd) = std::fs::read_dir(dir.join("samples")) {
        files.extend(rd.flatten().map(|e| e.path()));
    }
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .max()
}

/// A file-name-safe, collision-free name for a run path.
fn slug(rel: &str) -> String {
    let mut s: String = rel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let digest = sha2::Sha256::digest(rel.as_bytes());
    let _ = write!(s, "-{}", hex::encode(&digest[..4]));
    s
}

/// Write `root/compare/<A>--vs--<B>.html` for each `(baseline, candidate)`
/// pair of runs (paths relative to `root`; `kinds` says `eval` or `perf`).
/// A page newer than both runs' records is kept. Each run is read at most
/// once. Returns the page file names, in pair order, and how many pages
/// were written now.
pub fn write_pair_pages(
    root: &Path,
    rels: &[&str],
    kinds: &[&str],
    pairs: &[(usize, usize)],
) -> Result<(Vec<String>, usize), ReportError> {
    let dir = root.join("compare");
    if !pairs.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let link = |rel: &str| -> Option<String> {
        Some(format!(
            "{}/report.html",
            relative_href(&dir, &root.join(rel))?
        ))
    };
    let mut evals: HashMap<usize, RunView> = HashMap::new();
    let mut perfs: HashMap<usize, PerfView> = HashMap::new();
    let (mut names, mut written) = (Vec::new(), 0);
    for &(i, j) in pairs {
        // Bound memory on big folders: a full run is tens of MB in memory.
        if evals.len() + perfs.len() > 16 {
            evals.clear();
            perfs.clear();
        }
        let name = format!("{}--vs--{}.html", slug(rels[i]), slug(rels[j]));
        let path = dir.join(&name);
        let page_time = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let runs_time = run_mtime(&root.join(rels[i])).max(run_mtime(&root.join(rels[j])));
        names.push(name);
        if page_time.is_some() && page_time >= runs_time {
            continue;
        }
        let html = if kinds[i] == "perf" {
            for k in [i, j] {
                if let std::collections::hash_map::Entry::Vacant(e) = perfs.entry(k) {
                    e.insert(crate::perf::report::load(&PerfDir {
                        root: root.join(rels[k]),
                    })?);
                }
            }
            let c = crate::compare::compare_summaries(
                &perfs[&i].summary,
                rels[i],
                &perfs[&j].summary,
                rels[j],
            );
            let views = [
                (rels[i].to_string(), &perfs[&i]),
                (rels[j].to_string(), &perfs[&j]),
            ];
            perf_page(&views, &[c], &link)
        } else {
            for k in [i, j] {
                if let std::collections::hash_map::Entry::Vacant(e) = evals.entry(k) {
                    e.insert(crate::report::load(&RunDir::new(root.join(rels[k])))?);
                }
            }
            let c = crate::compare::compare_views(
                &evals[&i],
                Path::new(rels[i]),
                &evals[&j],
                Path::new(rels[j]),
            );
            eval_page(&[c], &link)
        };
        crate::util::write_atomic(&path, html.as_bytes()).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        written += 1;
    }
    Ok((names, written))
}
