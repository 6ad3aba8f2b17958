//! `bench rescore`: re-grade stored responses under another mode, with no
//! model call, and show how much the grading moves the score.

use bench::record::{Outcome, RunDir};
use tokio_util::sync::CancellationToken;

use crate::support::{config, start_hub, start_oracle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_native_run_with_lm_eval_and_evalscope() {
    let hub = start_hub().await;
    // The oracle answers in the native format: `\boxed{N}` / `ANSWER: X`.
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let cfg = config(&server.url(), &hub.url(), &cache, &run, &["gsm8k", "arc"]);
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let native_correct = out
        .report
        .results
        .iter()
        .find(|r| r.benchmark == "gsm8k" && r.primary)
        .unwrap()
        .stats
        .correct;
    assert_eq!(native_correct, 5);
    let sent = server.request_count();

    let hubcfg = bench::hub::HubConfig {
        endpoint: "http://127.0.0.1:9".into(), // unreachable: the cache must do
        token: None,
        cache_dir: cache.clone(),
        offline: true,
    };
    // lm-eval: `\boxed{18}` has no `#### N` (strict-match finds nothing) but
    // flexible-extract takes the last number.
    let (dir, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "lm-eval".into(),
        output: None,
        hub: hubcfg.clone(),
    })
    .await
    .unwrap();
    assert_eq!(dir, run.join("rescore-lm-eval"));
    assert_eq!(server.request_count(), sent, "rescore made a model call");
    let row = |ex: &str| {
        data.results
            .iter()
            .find(|r| r.benchmark == "gsm8k" && r.extractor == ex)
            .unwrap()
            .clone()
    };
    assert_eq!(row("strict-match").stats.correct, 0);
    assert_eq!(row("strict-match").outcomes[&Outcome::NoAnswer], 5);
    assert!(row("strict-match").primary);
    assert_eq!(row("flexible-extract").stats.correct, 5);
    let agree = data
        .agreement
        .iter()
        .find(|a| a.benchmark == "gsm8k")
        .unwrap();
    assert_eq!(
        (agree.a.as_str(), agree.b.as_str()),
        ("strict-match", "flexible-extract")
    );
    assert_eq!(
        (
            agree.both_correct,
            agree.only_a,
            agree.only_b,
            agree.neither
        ),
        (0, 0, 5, 0)
    );
    let manifest = RunDir::new(&dir).read_manifest().unwrap();
    let src = manifest.rescored_from.expect("rescored_from recorded");
    assert_eq!(src.modes["gsm8k"], "native");
    assert_eq!(manifest.settings.benchmarks[0].mode, "lm-eval");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("Re-graded without model calls")
            && md.contains("How much the grading moves the score"),
        "{md}"
    );
    // The journal keeps the responses and changes only the grading.
    let recs = RunDir::new(&dir).read_journal("gsm8k").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.mode == "lm-eval" && r.extracted.contains_key("flexible-extract"))
    );
    assert!(
        recs.iter()
            .all(|r| r.response.as_deref().unwrap().contains("\\boxed{"))
    );

    // EvalScope: its chain reads `\boxed{}` and `ANSWER:` too.
    let (_, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "evalscope".into(),
        output: Some(tmp.path().join("es")),
        hub: hubcfg.clone(),
    })
    .await
    .unwrap();
    for r in data.results.iter().filter(|r| r.primary) {
        assert_eq!(r.stats.accuracy, 1.0, "{r:?}");
    }

    // A mode a benchmark lacks is a clear error.
    let err = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "lm-eval-cot".into(),
        output: Some(tmp.path().join("x")),
        hub: hubcfg,
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`arc` has no such mode"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_through_the_binary() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let cfg = config(&server.url(), &hub.url(), &cache, &run, &["gsm8k"]);
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "rescore",
            run.to_str().unwrap(),
            "--mode",
            "lm-eval-cot",
            "--offline",
        ])
        .env("HF_HUB_CACHE", &cache)
        // The cache holds the fake hub's files: it serves only that hub.
        .env("HF_ENDPOINT", hub.url())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("strict-match*") && stdout.contains("flexible-extract"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gsm8k: strict-match vs flexible-extract"),
        "{stdout}"
    );
    assert!(run.join("rescore-lm-eval-cot/report.html").is_file());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["rescore", run.to_str().unwrap(), "--mode", "lmeval"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode `lmeval`"));
}
