//! The output formats of `bench compare` as [`Renderer`]s, the same trait
//! the run reports implement: eval comparisons render `[Comparison]`, perf
//! comparisons a [`PerfComparisons`] (the runs' views and the comparisons
//! with the first). [`eval_renderer`] and [`perf_renderer`] pick one by
//! [`Format`].

use super::html::{ReportLink, eval_page, perf_page};
use super::{Comparison, PerfComparison, markdown, perf_markdown};
use crate::perf::report::PerfView;
use crate::report::{Format, Renderer};

/// No links from a comparison page to the runs' reports.
fn no_link(_: &str) -> Option<String> {
    None
}

/// Eval comparisons as markdown for a PR comment.
pub struct CompareMarkdown;

impl Renderer<[Comparison]> for CompareMarkdown {
    fn file_name(&self) -> &'static str {
        "compare.md"
    }

    fn render(&self, cs: &[Comparison]) -> String {
        markdown(cs)
    }
}

/// Eval comparisons as one HTML page; `link` says where each run's report
/// is relative to the page.
pub struct CompareHtml<'a> {
    /// Link from the page to a run's report (`None`: no link).
    pub link: ReportLink<'a>,
}

impl Renderer<[Comparison]> for CompareHtml<'_> {
    fn file_name(&self) -> &'static str {
        "compare.html"
    }

    fn render(&self, cs: &[Comparison]) -> String {
        eval_page(cs, self.link)
    }
}

/// Comparisons (eval or perf) as pretty JSON: everything, nothing cut.
pub struct CompareJson;

impl Renderer<[Comparison]> for CompareJson {
    fn file_name(&self) -> &'static str {
        "compare.json"
    }

    fn render(&self, cs: &[Comparison]) -> String {
        serde_json::to_string_pretty(cs).expect("comparisons serialise") + "\n"
    }
}

impl Renderer<PerfComparisons> for CompareJson {
    fn file_name(&self) -> &'static str {
        "compare.json"
    }

    fn render(&self, v: &PerfComparisons) -> String {
        serde_json::to_string_pretty(&v.comparisons).expect("comparisons serialise") + "\n"
    }
}

/// The renderer of eval comparisons in `format` (aligned text is the
/// markdown: both are read in a terminal or a PR).
pub fn eval_renderer<'a>(
    format: Format,
    link: ReportLink<'a>,
) -> Box<dyn Renderer<[Comparison]> + 'a> {
    match format {
        Format::Html => Box::new(CompareHtml { link }),
        Format::Json => Box::new(CompareJson),
        Format::Markdown | Format::Text => Box::new(CompareMarkdown),
    }
}

/// What perf comparison renderers see: every run (the baseline first) and
/// the comparison of each other run with it.
#[derive(Debug)]
pub struct PerfComparisons {
    /// `(directory, view)` of each run, baseline first.
    pub runs: Vec<(String, PerfView)>,
    /// `comparisons[i]` compares `runs[i + 1]` with `runs[0]`.
    pub comparisons: Vec<PerfComparison>,
}

/// Perf comparisons as markdown.
pub struct PerfCompareMarkdown;

impl Renderer<PerfComparisons> for PerfCompareMarkdown {
    fn file_name(&self) -> &'static str {
        "compare.md"
    }

    fn render(&self, v: &PerfComparisons) -> String {
        perf_markdown(&v.comparisons)
    }
}

/// Perf comparisons as one HTML page with every run on the same charts.
pub struct PerfCompareHtml<'a> {
    /// Link from the page to a run's report (`None`: no link).
    pub link: ReportLink<'a>,
}

impl Renderer<PerfComparisons> for PerfCompareHtml<'_> {
    fn file_name(&self) -> &'static str {
        "compare.html"
    }

    fn render(&self, v: &PerfComparisons) -> String {
        let views: Vec<(String, &PerfView)> = v.runs.iter().map(|(d, r)| (d.clone(), r)).collect();
        perf_page(&views, &v.comparisons, self.link)
    }
}

/// The renderer of perf comparisons in `format`.
pub fn perf_renderer<'a>(
    format: Format,
    link: ReportLink<'a>,
) -> Box<dyn Renderer<PerfComparisons> + 'a> {
    match format {
        Format::Html => Box::new(PerfCompareHtml { link }),
        Format::Json => Box::new(CompareJson),
        Format::Markdown | Format::Text => Box::new(PerfCompareMarkdown),
    }
}

/// Renderers without links, for tests and tools that write a page where
/// the runs' reports cannot be reached.
pub const NO_LINK: ReportLink<'static> = &no_link;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_format_renders_the_same_comparison() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
        let cs = super::super::compare_all(&[root.join("eval-a"), root.join("eval-b")]).unwrap();
        let md = eval_renderer(Format::Markdown, NO_LINK).render(&cs);
        assert_eq!(md, markdown(&cs));
        let html = eval_renderer(Format::Html, NO_LINK).render(&cs);
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<td class=n>"));
        let json = eval_renderer(Format::Json, NO_LINK).render(&cs);
        let back: Vec<Comparison> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cs);
        assert_eq!(
            eval_renderer(Format::Html, NO_LINK).file_name(),
            "compare.html"
        );
    }
}
