//! Markdown for GitHub escapes every value that comes from outside: a
//! `<script>` model name, a served model id with HTML, a subset and an
//! extracted answer with `|` must neither become HTML nor split a table row,
//! in the eval `report.md`, the perf `report.md` and the compare markdown.

use std::path::Path;

use bench::perf::report::PerfMarkdown;
use bench::perf::summary::PerfDir;
use bench::record::RunDir;
use bench::report::markdown::MarkdownRenderer;
use bench::report::{Renderer, RunView};

const SCRIPT: &str = "<script>alert(1)</script>";

/// A fixture run with hostile values in every outside field markdown shows.
fn hostile_eval(name: &str) -> RunView {
    let mut v = bench::report::load(&RunDir::new(Path::new("fixtures/runs").join(name))).unwrap();
    let m = &mut v.data.manifest;
    m.settings.model = SCRIPT.into();
    m.served_models = vec![SCRIPT.into(), "<img src=x onerror=alert(2)>|x".into()];
    m.settings.api_base = "http://user:pw@127.0.0.1:8000/v1".into();
    for r in &mut v.data.results {
        if r.benchmark == "gsm8k" {
            r.subset = "main|<b>x</b>".into();
        }
    }
    for (bench, samples) in &mut v.samples {
        if bench == "gsm8k" {
            for s in samples {
                s.subset = "main|<b>x</b>".into();
                for e in s.extracted.values_mut() {
                    *e = Some("1|2 <script>x</script>".into());
                }
            }
        }
    }
    v
}

/// `|` that separate cells (not escaped ones).
fn cells(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
        .count()
}

/// `line` without its code spans (whose content GitHub shows literally),
/// as CommonMark pairs them: a run of n unescaped backticks up to the next
/// run of exactly n.
fn outside_code(line: &str) -> String {
    let b = line.as_bytes();
    let run = |i: usize| b[i..].iter().take_while(|&&c| c == b'`').count();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' && (i == 0 || b[i - 1] != b'\\') {
            let n = run(i);
            let mut j = i + n;
            let mut close = None;
            while j < b.len() {
                if b[j] == b'`' {
                    let m = run(j);
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            if let Some(end) = close {
                out.push_str("CODE");
                i = end;
                continue;
            }
            out.push_str(&line[i..i + n]);
            i += n;
            continue;
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// No raw HTML from the values outside code spans, no URL credentials
/// anywhere, and every row of every table has as many cells as its header.
fn assert_safe(md: &str) {
    assert!(!md.contains("user:pw"), "{md}");
    for line in md.lines() {
        let prose = outside_code(line);
        for bad in ["<script", "<img", "<b>"] {
            assert!(!prose.contains(bad), "{bad} outside code in: {line}");
        }
    }
    let mut header = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let n = cells(line);
        match header {
            None => header = Some(n),
            Some(h) => assert_eq!(n, h, "row splits differently from its header: {line}"),
        }
    }
}

#[test]
fn script_model_name_and_pipe_answer_are_escaped_in_eval_report_md() {
    let v = hostile_eval("eval-a");
    let md = MarkdownRenderer.render(&v);
    assert_safe(&md);
    assert!(
        md.contains("## bench eval: `<script>alert(1)</script>`"),
        "{md}"
    );
    assert!(
        md.contains("| gsm8k | main\\|&lt;b&gt;x&lt;/b&gt; |"),
        "{md}"
    );
    assert!(
        md.contains("&lt;img src=x onerror=alert(2)&gt;\\|x"),
        "{md}"
    );
}

#[test]
fn script_model_name_and_pipe_answer_are_escaped_in_compare_md() {
    let (a, b) = (hostile_eval("eval-a"), hostile_eval("eval-b"));
    let c = bench::compare::compare_views(&a, Path::new("runs/a|<b>"), &b, Path::new("runs/b"));
    assert!(
        c.rows.iter().any(|r| r.subset.contains('|')),
        "the hostile subset is compared"
    );
    let md = bench::compare::markdown(&[c]);
    assert_safe(&md);
    assert!(
        md.contains("**&lt;script&gt;alert(1)&lt;/script&gt;**"),
        "{md}"
    );
}

#[test]
fn script_model_name_and_warnings_are_escaped_in_perf_report_md() {
    let dir = PerfDir {
        root: Path::new("fixtures/runs/perf-a").into(),
    };
    let mut v = bench::perf::report::load(&dir).unwrap();
    v.summary.settings.model = SCRIPT.into();
    v.summary.settings.dataset = "<img src=x>|file".into();
    v.summary.settings.url = "http://user:pw@127.0.0.1:8000/v1/chat/completions".into();
    for l in &mut v.summary.levels {
        l.label = format!("{}<b>|", l.label);
        l.warnings
            .push("server said <script>x</script> | boom".into());
    }
    let md = PerfMarkdown.render(&v);
    assert_safe(&md);
    assert!(
        md.contains("## bench perf: `<script>alert(1)</script>`"),
        "{md}"
    );
    assert!(
        md.contains("server said &lt;script&gt;x&lt;/script&gt; \\| boom"),
        "{md}"
    );

    // And the perf comparison.
    let c = bench::compare::compare_summaries(&v.summary, "runs/a", &v.summary, "runs/<b>`b");
    let md = bench::compare::perf_markdown(&[c]);
    assert_safe(&md);
}
