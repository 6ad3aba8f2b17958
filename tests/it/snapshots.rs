//! Snapshot tests of the report and compare renderers on the fixed run
//! records in `fixtures/runs/` (written by `cargo run --example
//! make_run_fixtures`; see `fixtures/README.md`). The snapshots live in
//! `tests/it/snapshots/`.
//!
//! To update snapshots after an intended change in the output, run
//! `INSTA_UPDATE=always cargo test --test it snapshots`, then review the diff
//! of `tests/it/snapshots/` (`git diff`) before committing it.
//!
//! Paths are given relative to the crate root (the working directory of
//! integration tests), so the outputs, which echo run directories, are the
//! same on every machine.

use std::path::{Path, PathBuf};

use bench::compare;
use bench::perf::summary::PerfDir;
use bench::record::{Outcome, ReportData, RunDir};
use bench::report::Renderer;
use bench::report::json::JsonRenderer;
use bench::report::markdown::MarkdownRenderer;

/// `fixtures/runs/<name>`, relative to the crate root.
fn run(name: &str) -> PathBuf {
    let p = Path::new("fixtures/runs").join(name);
    assert!(
        p.is_dir(),
        "{} missing: tests run from the crate root; regenerate with `cargo run --example make_run_fixtures`",
        p.display()
    );
    p
}

/// Nothing machine-dependent leaks into an output.
fn assert_portable(out: &str) {
    assert!(
        !out.contains(env!("CARGO_MANIFEST_DIR")),
        "absolute path in output"
    );
    let tmp = std::env::temp_dir().display().to_string();
    assert!(!out.contains(&tmp), "temp dir in output");
}

#[test]
fn eval_markdown_report() {
    let view = bench::report::load(&RunDir::new(run("eval-a"))).unwrap();
    let md = MarkdownRenderer.render(&view);
    // Run A misses one gsm8k item of 8 and no ARC item.
    assert!(
        md.contains("| gsm8k | main | native | **answer-chain** | 8 | **87.5** |"),
        "{md}"
    );
    assert!(md.contains("| arc_easy | ARC-Easy |"), "{md}");
    assert!(md.contains("2026-01-01T00:00:00Z") && md.contains("http://127.0.0.1:8000/v1"));
    assert_portable(&md);
    insta::assert_snapshot!("eval_a_report_md", md);
}

#[test]
fn eval_json_report() {
    let view = bench::report::load(&RunDir::new(run("eval-a"))).unwrap();
    let json = JsonRenderer.render(&view);
    let data: ReportData = serde_json::from_str(&json).unwrap();
    assert_eq!(data, view.data, "report.json round-trips");
    let g = data
        .results
        .iter()
        .find(|r| r.benchmark == "gsm8k" && r.primary)
        .unwrap();
    assert_eq!((g.stats.n, g.stats.correct), (8, 7));
    assert_eq!(g.outcomes[&Outcome::Wrong], 1);
    assert_eq!(data.manifest.tool.version, "0.0.0-fixture");
    assert_portable(&json);
    insta::assert_snapshot!("eval_a_report_json", json);
}

#[test]
fn the_hostile_response_is_in_both_eval_runs_and_graded_correct() {
    for name in ["eval-a", "eval-b"] {
        let recs = RunDir::new(run(name)).read_journal("gsm8k").unwrap();
        let hostile: Vec<_> = recs
            .iter()
            .filter(|r| r.response.as_deref().unwrap_or("").contains("<script>"))
            .collect();
        assert_eq!(hostile.len(), 1, "{name}");
        let r = hostile[0];
        let text = r.response.as_deref().unwrap();
        assert_eq!(
            (r.subset.as_str(), r.split.as_str(), r.index),
            ("main", "test", 1)
        );
        assert!(text.contains("<script>window.__pwned=1</script>"));
        assert!(text.contains("<img src=x onerror=\"window.__pwned=2\">"));
        assert_eq!(r.outcome, Outcome::Correct, "{name}");
    }
}

#[test]
fn eval_comparison_markdown_and_json() {
    let cs = compare::compare_all(&[run("eval-a"), run("eval-b")]).unwrap();
    assert_eq!(cs.len(), 1);
    let c = &cs[0];
    assert_eq!(c.baseline, "fixtures/runs/eval-a");
    assert_eq!(c.candidate, "fixtures/runs/eval-b");
    // Flips both ways on gsm8k, under both extractors; none on ARC.
    for ex in ["answer-chain", "last-number"] {
        let row = c
            .rows
            .iter()
            .find(|r| r.benchmark == "gsm8k" && r.extractor == ex)
            .unwrap();
        assert_eq!(row.n, 8, "{ex}");
        assert_eq!((row.right_to_wrong, row.wrong_to_right), (2, 1), "{ex}");
        assert_eq!(
            row.flipped,
            ["main/test#0", "main/test#2", "main/test#3"],
            "{ex}"
        );
        assert!((row.diff + 0.125).abs() < 1e-12, "{ex}: {}", row.diff);
    }
    assert!(
        c.rows
            .iter()
            .filter(|r| r.benchmark == "arc_easy")
            .all(|r| r.flipped.is_empty() && r.diff == 0.0)
    );
    assert!(c.notes.is_empty(), "{:?}", c.notes);

    let md = compare::markdown(&cs);
    assert!(
        md.contains("| gsm8k | main | answer-chain | 8 | 87.5 | 75.0 | -12.5"),
        "{md}"
    );
    assert!(md.contains("`fixtures/runs/eval-a`") && md.contains("`fixtures/runs/eval-b`"));
    assert_portable(&md);
    insta::assert_snapshot!("compare_eval_md", md);

    let json = serde_json::to_string_pretty(&cs).unwrap();
    let back: Vec<compare::Comparison> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cs, "comparison JSON round-trips");
    assert_portable(&json);
    insta::assert_snapshot!("compare_eval_json", json);
}

#[test]
fn perf_markdown_report() {
    let view = bench::perf::report::load(&PerfDir {
        root: run("perf-a"),
    })
    .unwrap();
    assert_eq!(view.summary.levels.len(), 2);
    for (level, recs) in &view.records {
        assert_eq!(recs.len(), 16, "level {level}");
        assert!(recs.iter().all(|r| r.ok() && !r.events.is_empty()));
    }
    let md = bench::perf::report::PerfMarkdown.render(&view);
    assert!(md.contains("## bench perf: `mock`"), "{md}");
    assert!(
        md.contains("| c=1 | 16 | 100.0 |") && md.contains("| c=4 | 16 | 100.0 |"),
        "{md}"
    );
    assert!(
        md.contains("`http://127.0.0.1:8000/v1/chat/completions`"),
        "{md}"
    );
    assert_portable(&md);
    insta::assert_snapshot!("perf_a_report_md", md);
}

#[test]
fn perf_comparison_markdown_and_json() {
    let c = compare::compare_perf(&run("perf-a"), &run("perf-b")).unwrap();
    assert_eq!(c.baseline, "fixtures/runs/perf-a");
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    // B is slower at every level: latencies up, throughput down.
    for level in ["c=1", "c=4"] {
        let get = |m: &str| {
            c.rows
                .iter()
                .find(|r| r.level == level && r.metric == m)
                .unwrap_or_else(|| panic!("{level} {m}"))
        };
        for m in [
            "mean_ttft_ms",
            "mean_itl_ms",
            "mean_e2el_ms",
            "request_throughput",
        ] {
            assert_eq!(get(m).better, Some(false), "{level} {m}");
        }
        assert!(get("mean_ttft_ms").b > get("mean_ttft_ms").a);
        assert_eq!(get("failed").better, None);
    }
    let md = compare::perf_markdown(std::slice::from_ref(&c));
    assert!(
        md.contains("`fixtures/runs/perf-a` → `fixtures/runs/perf-b`"),
        "{md}"
    );
    assert!(md.contains("❌") && !md.contains("✅"), "{md}");
    assert_portable(&md);
    insta::assert_snapshot!("compare_perf_md", md);

    let json = serde_json::to_string_pretty(&c).unwrap();
    let back: compare::PerfComparison = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c, "perf comparison JSON round-trips");
    insta::assert_snapshot!("compare_perf_json", json);
}
