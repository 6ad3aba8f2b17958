//! `bench compare` on two eval runs of the same items.

use bench::config::Limit;
use tokio_util::sync::CancellationToken;

use crate::support::{config, copy_runs, start_hub, start_oracle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_two_runs_pairs_items_and_flags_regressions() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Baseline right everywhere; candidate wrong on two gsm8k items.
    let good = start_oracle(vec![]).await;
    let worse = start_oracle(vec!["Janet".into(), "Josh".into()]).await;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (server, dir) in [(&good, &a), (&worse, &b)] {
        let mut cfg = config(
            &server.url(),
            &hub.url(),
            &cache,
            dir,
            &["gsm8k", "arc_easy"],
        );
        cfg.limit = Some(Limit::Count(8));
        bench::eval::run_eval(cfg, CancellationToken::new())
            .await
            .unwrap();
    }
    let cs = bench::compare::compare_all(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(cs.len(), 1);
    let row = cs[0]
        .rows
        .iter()
        .find(|r| r.benchmark == "gsm8k" && r.extractor == "answer-chain")
        .unwrap();
    assert_eq!(row.n, 8);
    assert_eq!((row.right_to_wrong, row.wrong_to_right), (2, 0));
    assert!((row.diff + 0.25).abs() < 1e-12, "{}", row.diff);
    assert!(
        (row.p_value - 0.5).abs() < 1e-12,
        "two discordant pairs: p = 0.5"
    );
    assert_eq!(
        row.flipped,
        vec!["main/test#0".to_string(), "main/test#2".to_string()]
    );
    let arc = cs[0]
        .rows
        .iter()
        .find(|r| r.benchmark == "arc_easy" && r.extractor == "answer-line")
        .unwrap();
    assert_eq!(
        (arc.diff, arc.right_to_wrong, arc.wrong_to_right),
        (0.0, 0, 0)
    );

    // Through the binary: markdown for a PR, and the CI gate.
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let o = run(vec![
        "compare".into(),
        a.display().to_string(),
        b.display().to_string(),
    ])
    .await;
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        md.contains("| gsm8k | main | answer-chain | 8 | 100.0 | 75.0 | -25.0"),
        "{md}"
    );
    assert!(md.contains("Flipped items") && md.len() < bench::compare::MAX_MARKDOWN);
    let o = run(vec![
        "compare".into(),
        a.display().to_string(),
        b.display().to_string(),
        "--format".into(),
        "json".into(),
        "--fail-on-regression".into(),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["rows"][0]["benchmark"], "gsm8k");
    // Two flips out of eight do not exclude zero: no regression beyond doubt.
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A run wrong on every item is a regression beyond doubt: the gate fails.
    let broken =
        bench::fake::openai::FakeOpenAi::start(bench::fake::openai::FakeOptions::responding(
            |_| bench::fake::openai::Reply::text("\\boxed{-1} ANSWER: Z"),
        ))
        .await;
    let c = tmp.path().join("c");
    let mut cfg = config(
        &broken.url(),
        &hub.url(),
        &cache,
        &c,
        &["gsm8k", "arc_easy"],
    );
    cfg.limit = Some(Limit::Count(8));
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let o = run(vec![
        "compare".into(),
        a.display().to_string(),
        c.display().to_string(),
        "--fail-on-regression".into(),
    ])
    .await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("regression"));
    // With a threshold in points, a fall of exactly that much still passes.
    let o = run(vec![
        "compare".into(),
        a.display().to_string(),
        c.display().to_string(),
        "--fail-on-regression".into(),
        "--threshold".into(),
        "100".into(),
    ])
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cs = bench::compare::compare_all(&[a.clone(), c.clone()]).unwrap();
    assert!(!bench::compare::regressions(&cs[0], 0.0).is_empty());
    assert!(bench::compare::regressions(&cs[0], 100.0).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_two_perf_runs_level_by_level() {
    use bench::mock::{MockConfig, MockServer};
    use bench::perf::driver::{PerfConfig, WorkItem, run_perf};
    use bench::perf::run::{Load, Stop};
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    // The same sweep against a fast and a slower server.
    for (i, ttft) in [5u64, 40].into_iter().enumerate() {
        let mock = MockServer::start(MockConfig {
            ttft: std::time::Duration::from_millis(ttft),
            output_tokens: 8,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut client = bench::client::ClientConfig::new(mock.url());
        client.stream = true;
        let out = tmp.path().join(format!("p{i}"));
        let cfg = PerfConfig {
            model: "mock".into(),
            client,
            levels: vec![(Load::Concurrency { concurrency: 2 }, Stop::Count(6))],
            prompts: vec![WorkItem {
                prompt: bench::client::Prompt::Text("hi".into()),
                prompt_tokens: None,
                output_tokens: None,
            }],
            dataset_label: "t".into(),
            max_tokens: Some(8),
            min_tokens: None,
            temperature: None,
            extra: Default::default(),
            warmup: 0,
            seed: 0,
            slo: None,
            output: out.clone(),
            count_tokens: None,
            record: bench::perf::record::RecordLevel::Events,
            progress: false,
            print: false,
            command: vec![],
        };
        run_perf(cfg, CancellationToken::new()).await.unwrap();
        dirs.push(out);
    }
    let c = bench::compare::compare_perf(&dirs[0], &dirs[1]).unwrap();
    let ttft = c
        .rows
        .iter()
        .find(|r| r.metric == "mean_ttft_ms" && r.level == "c=2")
        .unwrap();
    assert!(
        ttft.b > ttft.a && ttft.better == Some(false) && ttft.change_pct > 100.0,
        "{ttft:?}"
    );
    assert_eq!(
        bench::compare::perf_regressions(&c, "mean_ttft_ms", 50.0).len(),
        1
    );
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            "--fail-on-regression",
            "--metric",
            "p99_ttft_ms",
            "--threshold",
            "20",
        ])
        .output()
        .await
        .unwrap();
    let md = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{md}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        md.contains("| c=2 | TTFT p99 ms |") && md.contains("❌"),
        "{md}"
    );
    // Eval and perf runs do not mix.
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            dirs[0].to_str().unwrap(),
            tmp.path().to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_lists_eval_and_perf_runs() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs");
    let server = start_oracle(vec![]).await;
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &outputs.join("eval <b>&1"),
        &["gsm8k"],
    );
    cfg.limit = Some(Limit::Count(2));
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let mock = bench::mock::MockServer::start(bench::mock::MockConfig {
        output_tokens: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut client = bench::client::ClientConfig::new(mock.url());
    client.stream = true;
    let perf = bench::perf::driver::PerfConfig {
        model: "mock".into(),
        client,
        levels: vec![(
            bench::perf::run::Load::Concurrency { concurrency: 1 },
            bench::perf::run::Stop::Count(2),
        )],
        prompts: vec![bench::perf::driver::WorkItem {
            prompt: bench::client::Prompt::Text("hi".into()),
            prompt_tokens: None,
            output_tokens: None,
        }],
        dataset_label: "t".into(),
        max_tokens: Some(4),
        min_tokens: None,
        temperature: None,
        extra: Default::default(),
        warmup: 0,
        seed: 0,
        slo: None,
        output: outputs.join("perf1"),
        count_tokens: None,
        record: bench::perf::record::RecordLevel::Events,
        progress: false,
        print: false,
        command: vec![],
    };
    bench::perf::driver::run_perf(perf, CancellationToken::new())
        .await
        .unwrap();
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["report", "--index", outputs.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(outputs.join("index.html")).unwrap();
    assert!(html.contains("2 run(s)"), "{html}");
    assert!(
        html.contains("href=\"perf1/report.html\"") && html.contains("c=1:"),
        "{html}"
    );
    // The odd directory name is escaped in text and percent-encoded in the link.
    assert!(
        html.contains("eval &lt;b&gt;&amp;1")
            && html.contains("href=\"eval%20%3Cb%3E%261/report.html\""),
        "{html}"
    );
    assert!(!html.contains("<b>&"));
    assert!(html.contains("gsm8k 100.0%"), "{html}");
}

#[test]
fn html_comparison_links_flips_to_their_text_and_escapes_it() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b"]);
    // A hostile answer on a flipped item (B's answer to gsm8k main/test#0).
    let journal = tmp.path().join("eval-b/samples/gsm8k.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["index"] == 0 {
                v["response"] = "</pre><script>alert(1)</script><b>x</b>".into();
            }
            if v["index"] == 2 {
                v["response"] = format!("{}THE END", "blah ".repeat(4000)).into();
            }
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let page = tmp.path().join("pages/cmp.html");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            tmp.path().join("eval-a").to_str().unwrap(),
            tmp.path().join("eval-b").to_str().unwrap(),
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "-o writes the file, not stdout");
    let html = std::fs::read_to_string(&page).unwrap();
    let cs = bench::compare::compare_all(&[tmp.path().join("eval-a"), tmp.path().join("eval-b")])
        .unwrap();
    // Every flipped item has a card, and each row's list links to the cards.
    for (k, it) in cs[0].items.iter().enumerate() {
        assert!(html.contains(&format!("id=\"c0-{k}\"")), "card {k}");
        assert!(
            html.contains(&format!("<a href=\"#c0-{k}\">{}</a>", it.item)),
            "link to {}",
            it.item
        );
    }
    assert_eq!(cs[0].items.len(), 3);
    // Very long texts are shortened in the middle (the end kept), and the page says so.
    assert!(html.contains("characters left out of this page") && html.contains("THE END"));
    assert!(html.contains("are shortened in the middle on this page"));
    // Model text is escaped, never markup.
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"));
    // Run names link to their reports relative to the page.
    assert!(
        html.contains("href=\"../eval-a/report.html\"")
            && html.contains("href=\"../eval-b/report.html\""),
        "{}",
        &html[..2000.min(html.len())]
    );

    // Perf: every chart overlays both runs.
    copy_runs(tmp.path(), &["perf-a", "perf-b"]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            tmp.path().join("perf-a").to_str().unwrap(),
            tmp.path().join("perf-b").to_str().unwrap(),
            "--format",
            "html",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = String::from_utf8(o.stdout).unwrap();
    for title in ["Output throughput", "TTFT", "TPOT", "TTFT CDF, c=4"] {
        assert!(html.contains(&format!("<title>{title}</title>")), "{title}");
    }
    assert!(html.contains("A perf-a p99") && html.contains("B perf-b p99"));
}

#[test]
fn index_writes_comparison_pages_for_comparable_pairs_and_keeps_fresh_ones() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b", "perf-a", "perf-b"]);
    let s = bench::site::write_index(tmp.path()).unwrap();
    // eval-a <-> eval-b and perf-a <-> perf-b, both directions; never eval <-> perf.
    assert_eq!((s.runs, s.comparisons, s.written), (4, 4, 4));
    let pages: Vec<String> = std::fs::read_dir(tmp.path().join("compare"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages.iter().all(|p| {
        let (a, b) = p.split_once("--vs--").unwrap();
        a.starts_with("eval") == b.starts_with("eval")
    }));
    let index = std::fs::read_to_string(tmp.path().join("index.html")).unwrap();
    assert!(index.contains("id=pairs") && index.contains("compare/eval-a-"));
    // Nothing changed: the pages are kept. A run changed: its pages are rewritten.
    let again = bench::site::write_index(tmp.path()).unwrap();
    assert_eq!(again.written, 0);
    // (The change is dated a minute ahead so coarse file-system clocks cannot hide it.)
    let j = tmp.path().join("eval-b/samples/gsm8k.jsonl");
    std::fs::File::options()
        .append(true)
        .open(&j)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let third = bench::site::write_index(tmp.path()).unwrap();
    assert_eq!(third.written, 2, "both directions of eval-a/eval-b");
    // A page limit keeps the most recent pairs and names the command for the rest.
    std::fs::remove_dir_all(tmp.path().join("compare")).unwrap();
    let capped = bench::site::write_index_with(tmp.path(), 2).unwrap();
    assert_eq!(
        (capped.comparisons, capped.skipped, capped.written),
        (2, 2, 2)
    );
    let index = std::fs::read_to_string(tmp.path().join("index.html")).unwrap();
    assert!(index.contains("\"skipped\":{\"") && index.contains("--max-comparisons"));
}

#[test]
fn comparisons_say_what_differs_besides_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b", "perf-a", "perf-b"]);
    let edit = |file: &std::path::Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(file, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    edit(&tmp.path().join("eval-b/run.json"), &|v| {
        v["settings"]["generation"]["temperature"] = 0.7.into();
        v["settings"]["benchmarks"][0]["template_sha256"] = "ab".repeat(32).into();
    });
    let cs = bench::compare::compare_all(&[tmp.path().join("eval-a"), tmp.path().join("eval-b")])
        .unwrap();
    let notes = cs[0].notes.join("\n");
    assert!(notes.contains("generation settings differ"), "{notes}");
    assert!(
        notes.contains("gsm8k: the prompt template differs"),
        "{notes}"
    );
    let md = bench::compare::markdown(&cs);
    assert!(
        md.contains("> [!NOTE]\n> generation settings differ"),
        "{md}"
    );

    edit(&tmp.path().join("perf-b/summary.json"), &|v| {
        v["settings"]["max_tokens"] = 64.into();
    });
    let c = bench::compare::compare_perf(&tmp.path().join("perf-a"), &tmp.path().join("perf-b"))
        .unwrap();
    assert!(
        c.notes.iter().any(|n| n.starts_with("max_tokens differs")),
        "{:?}",
        c.notes
    );
    // Same workload: nothing to say.
    let same = bench::compare::compare_perf(&tmp.path().join("perf-a"), &tmp.path().join("perf-a"))
        .unwrap();
    assert!(same.notes.is_empty(), "{:?}", same.notes);
    assert!(same.rows.iter().all(|r| r.better.is_none()));
}

#[test]
fn several_candidates_get_one_section_each() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b", "perf-a", "perf-b"]);
    let run = |args: &[&std::path::Path]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bench"));
        cmd.arg("compare").args(args).args(["--format", "html"]);
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let (a, b) = (tmp.path().join("eval-a"), tmp.path().join("eval-b"));
    let html = run(&[&a, &b, &a]);
    assert!(html.contains("id=\"c0\"") && html.contains("id=\"c1\""));
    // The third run is C; comparing A with itself flips nothing.
    assert!(html.contains("→ C: fake-model"), "{html}");
    assert!(html.contains("Flipped items (0)"));
    let (pa, pb) = (tmp.path().join("perf-a"), tmp.path().join("perf-b"));
    let html = run(&[&pa, &pb, &pa]);
    // Three runs overlaid: three throughput lines.
    let chart = html
        .split("<title>Output throughput</title>")
        .nth(1)
        .unwrap()
        .split("</svg>")
        .next()
        .unwrap();
    assert_eq!(chart.matches("<polyline").count(), 3, "{chart}");
}

#[test]
fn failures_appearing_from_zero_trip_the_perf_gate() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["perf-a", "perf-b"]);
    let file = tmp.path().join("perf-b/summary.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v["levels"][0]["stats"]["failed"] = 3.into();
    std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
    let c = bench::compare::compare_perf(&tmp.path().join("perf-a"), &tmp.path().join("perf-b"))
        .unwrap();
    let hit = bench::compare::perf_regressions(&c, "failed", 50.0);
    assert_eq!(hit.len(), 1, "{:?}", c.rows);
    assert_eq!((hit[0].a, hit[0].b), (0.0, 3.0));
}

#[test]
fn runs_on_other_items_or_modes_are_compared_where_they_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b"]);
    let b = tmp.path().join("eval-b");
    // B: two gsm8k items fewer, gsm8k graded in another mode with only one
    // extractor in common, and no arc_easy at all.
    let journal = b.join("samples/gsm8k.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["index"] == 6 || v["index"] == 7 {
                return None;
            }
            let chain = v["verdicts"]["answer-chain"].clone();
            v["verdicts"] = serde_json::json!({"answer-chain": chain, "other-extractor": true});
            v["mode"] = "evalscope".into();
            Some(serde_json::to_string(&v).unwrap())
        })
        .collect();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(b.join("samples/arc_easy.jsonl")).unwrap();
    let run_json = b.join("run.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    let benches = m["settings"]["benchmarks"].as_array_mut().unwrap();
    benches.retain(|x| x["benchmark"] == "gsm8k");
    benches[0]["mode"] = "evalscope".into();
    benches[0]["extractors"] = serde_json::json!(["answer-chain", "other-extractor"]);
    std::fs::write(&run_json, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let cs = bench::compare::compare_all(&[tmp.path().join("eval-a"), b.clone()]).unwrap();
    let c = &cs[0];
    let notes = c.notes.join("\n");
    assert!(
        notes.contains("gsm8k: modes differ (native vs evalscope)"),
        "{notes}"
    );
    assert!(
        notes.contains("gsm8k: 2 item(s) are in only one run"),
        "{notes}"
    );
    assert!(notes.contains("arc_easy: only in"), "{notes}");
    // Only the extractor both modes have, on the six items both runs have.
    assert_eq!(c.rows.len(), 1, "{:?}", c.rows);
    assert_eq!(
        (
            c.rows[0].extractor.as_str(),
            c.rows[0].n,
            c.rows[0].unpaired
        ),
        ("answer-chain", 6, 2)
    );
    assert!(c.rows.iter().all(|r| r.benchmark == "gsm8k"));
    let md = bench::compare::markdown(&cs);
    assert!(md.contains("> [!NOTE]\n> gsm8k: modes differ"), "{md}");
}

/// Issue 13: a run of every registered benchmark at once (all 57 MMLU
/// subjects, every group table) keeps the PR-sized markdown, report.md and
/// the compare comment, under 60,000 characters without cutting anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_at_once_stays_pr_sized() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Benchmarks scored only by log-probability (hellaswag, truthfulqa_mc2)
    // need a server returning them: tests/it/loglikelihood.rs.
    let names: Vec<String> = bench::benchmarks::registry()
        .iter()
        .filter(|b| !crate::support::scores_loglikelihood(&b.recipes[0]))
        .map(|b| b.name.clone())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // The candidate answers every third fixture question wrong, so the
    // comparison has flips and group rows that differ.
    let wrong: Vec<String> = crate::support::gold_table()
        .into_iter()
        .step_by(3)
        .map(|(q, _)| q)
        .collect();
    let good = start_oracle(vec![]).await;
    let worse = start_oracle(wrong).await;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (server, dir) in [(&good, &a), (&worse, &b)] {
        let mut cfg = config(&server.url(), &hub.url(), &cache, dir, &names);
        cfg.limit = Some(Limit::Count(3));
        cfg.concurrency = 16;
        bench::eval::run_eval(cfg, CancellationToken::new())
            .await
            .unwrap();
    }
    for dir in [&a, &b] {
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        eprintln!("{}: report.md {} characters", dir.display(), md.len());
        assert!(md.contains("abstract_algebra") && md.contains("gpqa_diamond"));
        assert!(md.len() < 60_000, "report.md is {} characters", md.len());
    }
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["compare".as_ref(), a.as_os_str(), b.as_os_str()])
        .output()
        .await
        .unwrap();
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    eprintln!("compare markdown {} characters", md.len());
    assert!(
        md.contains("abstract_algebra") && md.contains("Flipped items"),
        "{md}"
    );
    assert!(
        md.len() < 60_000 && !md.contains("cut to fit one GitHub comment"),
        "compare markdown is {} characters",
        md.len()
    );
}
