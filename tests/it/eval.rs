//! `bench eval` end to end, in-process and through the binary, against the
//! fake hub and the fake OpenAI server.

use std::time::{Duration, Instant};

use bench::benchmarks::{self, Benchmark, Scorer};
use bench::client::ApiKind;
use bench::config::Limit;
use bench::eval::{EvalError, run_eval};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use bench::record::{Outcome, RunDir, SampleRecord};
use tokio_util::sync::CancellationToken;

use crate::support::{self, all_files, config, start_hub, start_oracle};

fn primary<'a>(
    data: &'a bench::record::ReportData,
    bench: &str,
    subset: &str,
) -> &'a bench::record::ResultRow {
    data.results
        .iter()
        .find(|r| r.benchmark == bench && r.subset == subset && r.primary)
        .unwrap_or_else(|| panic!("no row {bench}/{subset}: {:#?}", data.results))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsm8k_and_arc_end_to_end() {
    let hub = start_hub().await;
    // One gsm8k item (Janet's ducks, test row 0) is answered wrong.
    let server = start_oracle(vec!["Janet".into()]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k", "arc"],
    );
    let out = run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval runs");
    assert!(!out.interrupted);

    let d = &out.report;
    let g = primary(d, "gsm8k", "main");
    assert_eq!((g.stats.n, g.stats.correct), (5, 4));
    assert_eq!(g.outcomes[&Outcome::Wrong], 1);
    for subset in ["ARC-Easy", "ARC-Challenge"] {
        let a = primary(d, "arc", subset);
        assert_eq!((a.stats.n, a.stats.correct), (5, 5), "{subset}");
    }
    let all = primary(d, "arc", "all");
    assert_eq!((all.stats.n, all.stats.correct), (10, 10));
    // Both extractors of each mode have rows.
    assert!(
        d.results
            .iter()
            .any(|r| r.benchmark == "gsm8k" && r.extractor == "last-number" && !r.primary)
    );

    // Journal: one line per item with the required fields.
    let dir = RunDir::new(&out_dir);
    let recs = dir.read_journal("gsm8k").unwrap();
    assert_eq!(recs.len(), 5);
    let r0 = recs.iter().find(|r| r.index == 0).unwrap();
    assert_eq!(r0.split, "test");
    assert!(r0.messages.as_ref().unwrap()[0].content.contains("Janet"));
    assert_eq!(r0.correct, Some(false));
    assert!(r0.extracted.contains_key("answer-chain") && r0.verdicts.contains_key("last-number"));
    let raw = std::fs::read_to_string(out_dir.join("samples/arc.jsonl")).unwrap();
    assert_eq!(raw.lines().count(), 10);
    for key in [
        "\"benchmark\"",
        "\"subset\"",
        "\"index\"",
        "\"messages\"",
        "\"response\"",
        "\"reasoning\"",
        "\"finish_reason\"",
        "\"extracted\"",
        "\"verdicts\"",
        "\"gold\"",
        "\"correct\"",
        "\"error\"",
        "\"latency_ms\"",
        "\"usage\"",
    ] {
        assert!(
            raw.lines().next().unwrap().contains(key),
            "journal line lacks {key}"
        );
    }

    // Reports.
    for f in ["run.json", "report.md", "report.html", "report.json"] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| gsm8k | main | native | **answer-chain** | 5 | **80.0** |"),
        "{md}"
    );
    assert!(md.contains("allenai/ai2_arc") && md.contains("210d026faf99"));
    let manifest = dir.read_manifest().unwrap();
    assert_eq!(manifest.status, "complete");
    assert_eq!(manifest.datasets.len(), 2);
    assert!(
        manifest
            .datasets
            .iter()
            .all(|d| d.files.iter().all(|f| f.sha256.len() == 64))
    );

    // Concurrency cap respected (4) and the server saw every item once.
    assert!(
        server.peak_in_flight() <= 4,
        "peak {}",
        server.peak_in_flight()
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count(),
        15
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_json_matches_schema() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k", "arc_easy"],
    );
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/report.schema.json")).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And the schema really constrains: a broken report is rejected.
    let mut broken = report.clone();
    broken["results"][0]["outcomes"]["failed"] = serde_json::json!(-1);
    assert!(!validator.is_valid(&broken));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_benchmark_runs_end_to_end() {
    let hub = start_hub().await;
    for b in benchmarks::registry().iter() {
        if support::scores_loglikelihood(&b.recipes[0]) {
            // hellaswag, truthfulqa_mc2: tests/it/loglikelihood.rs.
            continue;
        }
        // One oracle per benchmark: MMLU-Pro asks MMLU's questions with
        // other options, so one shared table would answer with the wrong gold.
        let server =
            support::start_oracle_with(support::gold_table_of(Some(&b.name)), vec![]).await;
        let tmp = tempfile::tempdir().unwrap();
        let out_dir = tmp.path().join("run");
        let mut cfg = config(
            &server.url(),
            &hub.url(),
            &tmp.path().join("cache"),
            &out_dir,
            &[&b.name],
        );
        cfg.limit = Some(Limit::Count(2));
        let out = run_eval(cfg, CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        for r in out.report.results.iter().filter(|r| r.primary) {
            assert!(
                r.stats.n > 0 && r.stats.accuracy == 1.0,
                "{}: {r:?}",
                b.name
            );
        }
    }
}

/// The fixture sample a request asks about: the one whose question starts
/// latest in the request's text (few-shot examples come before the item;
/// with a prefill the item is not the last message).
fn asked_sample<'a>(
    samples: &'a [benchmarks::Sample],
    body: &serde_json::Value,
) -> Option<&'a benchmarks::Sample> {
    let text = match body.get("messages").and_then(|m| m.as_array()) {
        Some(messages) => messages
            .iter()
            .filter_map(|m| m.get("content").and_then(|c| c.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        None => bench::fake::openai::prompt_text(body),
    };
    samples
        .iter()
        .filter_map(|s| text.rfind(s.question.as_str()).map(|pos| (pos, s)))
        .max_by_key(|(pos, s)| (*pos, s.question.len()))
        .map(|(_, s)| s)
}

/// Every (benchmark, recipe) pair, end to end, against a server answering
/// in that recipe's own target format: every extractor of every recipe must
/// find the answer and the scorer must accept it, on every subset, for
/// both endpoint kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_of_every_benchmark_grades_its_own_answer_format() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let samples = support::fixture_samples();
    let mut pairs = 0;
    for b in benchmarks::registry().iter() {
        let mine: Vec<benchmarks::Sample> = samples
            .iter()
            .filter(|(n, _)| *n == b.name)
            .map(|(_, s)| s.clone())
            .collect();
        for recipe in b
            .recipes
            .iter()
            .filter(|r| !support::scores_loglikelihood(r))
        {
            for api in [ApiKind::Chat, ApiKind::Completions] {
                let (r, m) = (recipe.clone(), mine.clone());
                let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
                    match asked_sample(&m, body) {
                        Some(s) => Reply::text(r.format_answer(s)),
                        None => Reply::text("I cannot find the question."),
                    }
                }))
                .await;
                let out_dir = tmp.path().join(format!("{}-{}-{api:?}", b.name, recipe.id));
                let mut cfg = config(&server.url(), &hub.url(), &cache, &out_dir, &[&b.name]);
                cfg.benchmarks = bench::config::plan_benchmarks(
                    std::slice::from_ref(&b.name),
                    Some(&format!(r#"{{"{}": {{"mode": "{}"}}}}"#, b.name, recipe.id)),
                )
                .unwrap();
                cfg.client.api = api;
                cfg.limit = Some(Limit::Count(3));
                let out = run_eval(cfg, CancellationToken::new())
                    .await
                    .unwrap_or_else(|e| panic!("{} {}: {e}", b.name, recipe.id));
                let what = format!("{} {} {api:?}", b.name, recipe.id);
                let rows: Vec<_> = out
                    .report
                    .results
                    .iter()
                    .filter(|r| r.subset != "all")
                    .collect();
                assert_eq!(
                    rows.len(),
                    b.dataset.subsets.len() * recipe.extractors.len(),
                    "{what}: one row per subset and extractor"
                );
                for r in rows {
                    assert_eq!(r.mode, recipe.id, "{what}");
                    assert!(
                        r.stats.n == 3 && r.stats.accuracy == 1.0,
                        "{what} {} {}: {:?}",
                        r.subset,
                        r.extractor,
                        r.stats
                    );
                }
                pairs += 1;
            }
        }
    }
    // Every recipe of every benchmark, on both APIs.
    let recipes: usize = benchmarks::registry()
        .iter()
        .map(|b| {
            b.recipes
                .iter()
                .filter(|r| !support::scores_loglikelihood(r))
                .count()
        })
        .sum();
    assert!(recipes >= 6 + 3 * 3, "gsm8k's 6 and ARC's 3 x 3 at least");
    assert_eq!(pairs, 2 * recipes);
}

/// A benchmark defined outside the crate, at run time: gsm8k's data and the
/// shared native maths recipe with a scorer of its own (the opposite of
/// gsm8k's, so the test can tell it was used). A registry entry makes it
/// reachable by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_benchmark_runs_end_to_end() {
    let recipe = benchmarks::math::native("gsm8k_boxed.jinja").with_scorer(Scorer::new(
        "reversed",
        |s: &benchmarks::Sample, e: &str| !bench::extract::numbers_equal(e, &s.target),
    ));
    let mut registry = benchmarks::Registry::builtin();
    registry
        .add(Benchmark::new(
            "gsm8k_reversed",
            "test-only benchmark",
            benchmarks::gsm8k::dataset(),
            vec![recipe],
        ))
        .unwrap();
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k"],
    );
    cfg.benchmarks =
        bench::config::plan_benchmarks_in(&registry, &["gsm8k_reversed".into()], None).unwrap();
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    let row = primary(&out.report, "gsm8k_reversed", "main");
    assert_eq!((row.stats.n, row.stats.correct), (5, 0));
    assert!(out_dir.join("samples/gsm8k_reversed.jsonl").is_file());
}

/// A multiple-choice benchmark on the shared recipes is a dataset definition
/// (files and a row parser) plus a registry entry: no grading code. This one
/// reads ARC-Easy's fixture with its own column mapping, keeps the numeric
/// labels' order and records the first label as metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiple_choice_benchmark_is_a_dataset_and_a_registry_entry() {
    fn row_to_fields(row: &bench::dataset::Row) -> Result<benchmarks::SampleFields, String> {
        let question = row["question"].as_str().ok_or("no question")?.to_string();
        let list = |k: &str| -> Vec<String> {
            row["choices"][k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let labels = list("label");
        let key = row["answerKey"].as_str().ok_or("no answerKey")?;
        let gold = labels
            .iter()
            .position(|l| l == key)
            .ok_or("answerKey not a label")?;
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("first_label".to_string(), serde_json::json!(labels[0]));
        Ok(benchmarks::SampleFields {
            question,
            choices: list("text"),
            target: bench::extract::letters(gold + 1)[gold].to_string(),
            metadata,
            ..Default::default()
        })
    }
    let arc = benchmarks::get("arc").unwrap();
    let dataset = benchmarks::Dataset::new(
        &arc.dataset.repo_id,
        &arc.dataset.revision,
        vec![benchmarks::SubsetSource::parquet(
            "easy", "ARC-Easy", "test", "train",
        )],
        row_to_fields,
    );
    let mut registry = benchmarks::Registry::builtin();
    registry
        .add(Benchmark::new(
            "science_mcq",
            "ARC-Easy, read another way",
            dataset,
            vec![benchmarks::mcq::native(), benchmarks::mcq::evalscope()],
        ))
        .unwrap();
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    for mode in ["native", "evalscope"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(
            &server.url(),
            &hub.url(),
            &tmp.path().join("cache"),
            &tmp.path().join("run"),
            &["gsm8k"],
        );
        cfg.benchmarks = bench::config::plan_benchmarks_in(
            &registry,
            &["science_mcq".into()],
            Some(&format!(r#"{{"science_mcq": {{"mode": "{mode}"}}}}"#)),
        )
        .unwrap();
        let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
        let row = primary(&out.report, "science_mcq", "easy");
        assert_eq!(row.mode, mode);
        assert_eq!((row.stats.n, row.stats.correct), (5, 5), "{mode}");
    }
}

/// A fake server answering every item right, except that it rejects the
/// gsm8k item about Janet with a 400 until the returned flag is set.
async fn janet_fails_until_healthy() -> (FakeOpenAi, std::sync::Arc<std::sync::atomic::AtomicBool>)
{
    let table = std::sync::Arc::new(support::gold_table());
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h2 = healthy.clone();
    let server = FakeOpenAi::start(FakeOptions::responding(
        move |body| match support::gold_for(&table, body) {
            Some((q, _))
                if q.contains("Janet") && !h2.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                Reply::fault(bench::fake::openai::Fault::Status(400))
            }
            Some((_, gold)) => Reply::text(support::native_answer(&gold)),
            None => Reply::text("?"),
        },
    ))
    .await;
    (server, healthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_asks_only_for_missing_or_failed_items() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");

    // First run: 3 items, and the server rejects the Janet item with a 400.
    let (server, healthy) = janet_fails_until_healthy().await;
    let generations = || {
        server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/completions"))
            .count()
    };
    let mut cfg = config(&server.url(), &hub.url(), &cache, &out_dir, &["gsm8k"]);
    cfg.limit = Some(Limit::Count(3));
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    let g = primary(&out.report, "gsm8k", "main");
    assert_eq!(g.outcomes[&Outcome::Failed], 1);
    assert_eq!(g.stats.correct, 2);
    let failed: Vec<SampleRecord> = RunDir::new(&out_dir)
        .read_journal("gsm8k")
        .unwrap()
        .into_iter()
        .filter(|r| r.error.is_some())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.as_ref().unwrap().status, Some(400));
    assert_eq!(failed[0].attempts, 1, "a 400 is not retried");
    assert_eq!(generations(), 3);

    // Second run, limit 5, the server healthy again: only the failed item and the 2 new ones are asked.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let cfg = config(&server.url(), &hub.url(), &cache, &out_dir, &["gsm8k"]);
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    assert_eq!(out.requested, 3);
    assert_eq!(generations(), 6);
    let g = primary(&out.report, "gsm8k", "main");
    assert_eq!((g.stats.n, g.stats.correct), (5, 5));

    // Same settings, nothing left: nothing is asked.
    let cfg = config(&server.url(), &hub.url(), &cache, &out_dir, &["gsm8k"]);
    assert_eq!(
        run_eval(cfg, CancellationToken::new())
            .await
            .unwrap()
            .requested,
        0
    );
    assert_eq!(generations(), 6);

    // Third run with other settings into the same directory is refused.
    let mut cfg = config(&server.url(), &hub.url(), &cache, &out_dir, &["gsm8k"]);
    cfg.generation
        .insert("temperature".into(), serde_json::json!(0.7));
    let err = run_eval(cfg, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, EvalError::Mismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("generation.temperature") && msg.contains("different settings"),
        "{msg}"
    );
}

/// `bench eval` builds its final reports from the records it holds (the
/// journal is not read back); they must equal what `bench report` renders
/// from the journal, across a resume that replaces a failed item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_memory_equal_reports_from_the_journal() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let (server, healthy) = janet_fails_until_healthy().await;
    let files = ["report.md", "report.html", "report.json"];
    let mut checked = 0;
    for (limit, heal) in [(3, false), (5, true)] {
        healthy.store(heal, std::sync::atomic::Ordering::SeqCst);
        let mut cfg = config(
            &server.url(),
            &hub.url(),
            &cache,
            &out_dir,
            &["gsm8k", "arc"],
        );
        cfg.limit = Some(Limit::Count(limit));
        let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
        // The first run has the failed item, the second asked it again.
        let g = primary(&out.report, "gsm8k", "main");
        let failed = g.outcomes.get(&Outcome::Failed).copied().unwrap_or(0);
        assert_eq!((g.stats.n, failed), (limit as u64, u64::from(!heal)));
        let from_memory: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(out_dir.join(f)).unwrap())
            .collect();
        bench::report::rerender(&out_dir).unwrap();
        for (f, m) in files.iter().zip(&from_memory) {
            let from_journal = std::fs::read(out_dir.join(f)).unwrap();
            assert!(
                from_journal == *m,
                "{f} differs after a run with limit {limit}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_recorded_and_never_abort_the_run() {
    let hub = start_hub().await;
    let table = std::sync::Arc::new(support::gold_table());
    // Every answer is truncated for "Janet", garbage for "Josh", no answer for "James".
    let server = FakeOpenAi::start(FakeOptions::responding(
        move |body| match support::gold_for(&table, body) {
            Some((q, _)) if q.contains("Janet") => {
                Reply::text("Let me compute 16 - 3 - 4 = ").with_finish_reason("length")
            }
            Some((q, _)) if q.contains("Josh") => Reply::fault(bench::fake::openai::Fault::Garbage),
            Some((q, _)) if q.contains("James") => Reply::text("I am not sure."),
            Some((_, gold)) => Reply::text(support::native_answer(&gold)),
            None => Reply::text("?"),
        },
    ))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k"],
    );
    cfg.client.max_retries = 2;
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    let g = primary(&out.report, "gsm8k", "main");
    assert_eq!(g.outcomes[&Outcome::Truncated], 1, "{g:?}");
    assert_eq!(g.outcomes[&Outcome::Failed], 1, "{g:?}");
    assert_eq!(g.outcomes[&Outcome::NoAnswer], 1, "{g:?}");
    assert_eq!(g.outcomes[&Outcome::Correct], 2, "{g:?}");
    let recs = RunDir::new(&out_dir).read_journal("gsm8k").unwrap();
    let failed = recs.iter().find(|r| r.outcome == Outcome::Failed).unwrap();
    assert_eq!(failed.attempts, 3, "garbage is retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_sending_and_reports_what_finished() {
    let hub = start_hub().await;
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("\\boxed{1}").with_delay(Duration::from_millis(300))
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k", "arc"],
    );
    cfg.concurrency = 2;
    cfg.limit = Some(Limit::Count(8));
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    // Cancel once an item is journaled (not after a fixed time, which a
    // loaded machine can spend before the first answer).
    let journal = out_dir.join("samples/gsm8k.jsonl");
    tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && !std::fs::read_to_string(&journal).is_ok_and(|s| s.lines().count() >= 1)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c2.cancel();
    });
    let t0 = Instant::now();
    let out = run_eval(cfg, cancel).await.unwrap();
    assert!(out.interrupted);
    // Only "does not hang" (room for a loaded machine).
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    let dir = RunDir::new(&out_dir);
    assert_eq!(dir.read_manifest().unwrap().status, "interrupted");
    let done = dir.read_journal("gsm8k").unwrap().len();
    assert!((1..8).contains(&done), "finished {done}");
    assert!(dir.read_journal("arc").unwrap().is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["results"][0]["n"], serde_json::json!(done));
    // Nothing more was sent after the cancel.
    let sent = server.request_count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.request_count(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_and_dead_server_fail_fast() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("c"),
        &tmp.path().join("r"),
        &["gsm8k"],
    );
    cfg.model = "nope".into();
    let err = run_eval(cfg, CancellationToken::new()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`nope`") && msg.contains("fake-model"),
        "{msg}"
    );

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let cfg = config(
        &dead,
        &hub.url(),
        &tmp.path().join("c"),
        &tmp.path().join("r2"),
        &["gsm8k"],
    );
    let t0 = Instant::now();
    let err = run_eval(cfg, CancellationToken::new()).await.unwrap_err();
    // A refused connection, not the 600 s timeout (room for load).
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    assert!(err.to_string().contains("cannot reach the server"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_api_streaming_and_reasoning() {
    let hub = start_hub().await;
    let table = std::sync::Arc::new(support::gold_table());
    let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
        let gold = support::gold_for(&table, body)
            .map(|g| g.1)
            .unwrap_or_default();
        Reply::text(support::native_answer(&gold)).with_reasoning("thinking \\boxed{0} hard")
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k"],
    );
    cfg.client.api = bench::client::ApiKind::Completions;
    cfg.client.stream = true;
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    // Reasoning holds a wrong boxed answer; only the visible text is graded.
    assert_eq!(primary(&out.report, "gsm8k", "main").stats.correct, 5);
    let recs = RunDir::new(&out_dir).read_journal("gsm8k").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.prompt.is_some() && r.messages.is_none())
    );
    assert!(
        recs.iter()
            .all(|r| r.reasoning.as_deref() == Some("thinking \\boxed{0} hard"))
    );
    assert!(recs.iter().all(|r| r.ttft_ms.is_some()));
    let req = &server.requests()[1];
    assert!(req.path.ends_with("/v1/completions"), "{}", req.path);
    assert_eq!(req.body["stream"], serde_json::json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_run_uses_the_cache_only() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cfg = config(
        &server.url(),
        &hub.url(),
        &cache,
        &tmp.path().join("r1"),
        &["arc"],
    );
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    // Offline, with a hub URL that points nowhere: served from the cache.
    let mut cfg = config(
        &server.url(),
        "http://127.0.0.1:9",
        &cache,
        &tmp.path().join("r2"),
        &["arc"],
    );
    cfg.hub.offline = true;
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    assert_eq!(primary(&out.report, "arc", "all").stats.n, 10);
    // Offline with an empty cache: a clear error naming repo, file and revision.
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("empty"),
        &tmp.path().join("r3"),
        &["arc"],
    );
    cfg.hub.offline = true;
    let msg = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("allenai/ai2_arc") && msg.contains("ARC-Easy/test-00000-of-00001.parquet"),
        "{msg}"
    );
    assert!(
        msg.contains("210d026faf9955653af8916fad021475a3f00453"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_text_is_escaped_in_html() {
    let hub = start_hub().await;
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text(
            "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"> \\boxed{3}",
        )
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k"],
    );
    cfg.limit = Some(Limit::Count(1));
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(!html.contains("<script>window.pwned"), "raw script in html");
    assert!(!html.contains("<img src=x"), "raw img in html");
    // The items travel as gzip + base64 data; unpacked, the response is there verbatim.
    let packed = html
        .split_once("id=items data-encoding=\"gzip+base64\">")
        .and_then(|(_, r)| r.split_once("</script>"))
        .map(|(b, _)| b)
        .expect("packed items block");
    use base64::Engine;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(packed)
        .unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json).unwrap();
    let data: serde_json::Value = serde_json::from_str(&json).unwrap();
    // A plain item array, or {prefixes, items} when prompts share a prefix.
    let items = if data.is_array() {
        &data
    } else {
        &data["items"]
    };
    assert_eq!(
        items[0]["response"],
        "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"> \\boxed{3}",
        "response not embedded as data"
    );
    // Re-rendering from the run directory gives the same reports.
    let before = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    std::fs::remove_file(out_dir.join("report.md")).unwrap();
    bench::report::rerender(&out_dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(out_dir.join("report.md")).unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_never_reaches_files() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k"],
    );
    cfg.client.api_key = Some("sk-very-secret-key".into());
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sk-very-secret-key"))
    );
    for f in all_files(&out_dir) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains("sk-very-secret-key"),
            "key in {}",
            f.display()
        );
    }
}

/// `aime25` reads the hub's parquet convert branch (its `main` holds only
/// jsonl): the run record names the branch and the commit it resolved to,
/// the same commit the cache's `refs/refs/convert/parquet` holds, and
/// `aime24` (no pinned commit) records the commit `main` resolved to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_branch_commit_is_recorded() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out_dir = tmp.path().join("run");
    let cfg = config(
        &server.url(),
        &hub.url(),
        &cache,
        &out_dir,
        &["aime25", "aime24"],
    );
    let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
    let primary: Vec<_> = out
        .report
        .results
        .iter()
        .filter(|r| r.primary && r.subset != "all")
        .collect();
    assert_eq!(primary.len(), 2);
    for r in primary {
        assert_eq!(r.stats.accuracy, 1.0, "{} {:?}", r.benchmark, r.stats);
    }
    let manifest = RunDir::new(&out_dir).read_manifest().unwrap();
    let branch = bench::hub::CONVERT_BRANCH;
    let d25 = manifest
        .datasets
        .iter()
        .find(|d| d.benchmark == "aime25")
        .unwrap();
    let recorded = d25.commits.get(branch).expect("convert commit recorded");
    let cached =
        std::fs::read_to_string(cache.join("datasets--math-ai--aime25/refs/refs/convert/parquet"))
            .unwrap();
    assert_eq!(recorded, &cached);
    assert_eq!(recorded.len(), 40);
    assert_eq!(d25.files.len(), 1);
    assert_eq!(d25.files[0].path, "default/test/0000.parquet");
    assert_eq!(d25.files[0].revision.as_deref(), Some(branch));
    assert_eq!(d25.files[0].commit.as_ref(), Some(recorded));
    let d24 = manifest
        .datasets
        .iter()
        .find(|d| d.benchmark == "aime24")
        .unwrap();
    assert_eq!(d24.revision, "main");
    let main_commit = d24.commits.get("main").expect("main's commit recorded");
    let cached =
        std::fs::read_to_string(cache.join("datasets--HuggingFaceH4--aime_2024/refs/main"))
            .unwrap();
    assert_eq!(main_commit, &cached);
    assert_eq!(d24.files[0].revision, None);

    // The reports name the commits a branch resolved to, and the markdown
    // links to the commit, not to the moving branch.
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let line24 = md
        .lines()
        .find(|l| l.starts_with("| Data: aime24"))
        .unwrap();
    assert!(
        line24.contains(&format!("tree/{main_commit})"))
            && line24.contains(&format!("(resolved: `main` = `{}`)", &main_commit[..12])),
        "{line24}"
    );
    let line25 = md
        .lines()
        .find(|l| l.starts_with("| Data: aime25"))
        .unwrap();
    assert!(
        line25.contains(&format!("`{branch}` = `{}`", &recorded[..12])),
        "{line25}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains(&format!("main = {main_commit}")));

    // Rescoring reads the recorded commit of the branch, from the cache
    // alone (offline, the hub gone).
    let mut hub_cfg = bench::hub::HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.clone(),
        offline: true,
    };
    hub_cfg.offline = true;
    let (_, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: out_dir.clone(),
        mode: "evalscope".into(),
        output: Some(tmp.path().join("rescored")),
        hub: hub_cfg,
    })
    .await
    .unwrap();
    let rescored: Vec<_> = data
        .results
        .iter()
        .filter(|r| r.primary && r.subset != "all")
        .collect();
    assert_eq!(rescored.len(), 2);
    for r in rescored {
        assert_eq!(r.mode, "evalscope");
        assert_eq!(r.stats.accuracy, 1.0, "{} {:?}", r.benchmark, r.stats);
    }
}
