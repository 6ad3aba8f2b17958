//! `bench compare` on two eval runs of the same items.

use bench::config::Limit;
use tokio_util::sync::CancellationToken;

use crate::support::{config, start_hub, start_oracle};

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
}
