//! Speed of the loglikelihood path (not a test: figures go in notes).
//!
//! Serves the real ARC parquet files (`../shared/datasets/hub`, or
//! `BENCH_DATASETS_HUB`) from the fake hub and scores all of ARC-Easy test
//! (2,376 items x 4 choices, `lm-eval-ll`) against an instant fake server
//! that echoes scripted prompt log-probabilities, the choices of an item
//! sent together as one list prompt. Prints the wall time and the process
//! CPU (client and in-process server together) of five runs.
//!
//! Run: `cargo run --release --example ll_speed`

use std::path::PathBuf;
use std::time::Instant;

use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, echo_logprobs};
use tokio_util::sync::CancellationToken;

#[path = "common/mod.rs"]
mod common;
use common::{cpu_seconds, eval_config, median};

#[tokio::main]
async fn main() {
    let root = std::env::var("BENCH_DATASETS_HUB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/hub")
        });
    let hub = FakeHub::start(FakeHubOptions::new(root)).await;
    let server = FakeOpenAi::start(FakeOptions::responding(|body| {
        echo_logprobs(body, |_, _, t| -(t.len() as f64) / 10.0)
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#;
    let names = ["arc_easy".to_string()];
    let plan = |out: PathBuf| {
        let mut cfg = eval_config(&server.url(), &hub.url(), &cache, out, &["arc_easy"], 64);
        cfg.benchmarks = bench::config::plan_benchmarks(&names, Some(args)).unwrap();
        cfg
    };
    // Warm the cache (the download is not the harness's speed).
    let mut warm = plan(tmp.path().join("warm"));
    warm.limit = Some(bench::config::Limit::Count(1));
    bench::eval::run_eval(warm, CancellationToken::new())
        .await
        .unwrap();
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let before = server.requests().len();
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let out = bench::eval::run_eval(
            plan(tmp.path().join(format!("run{i}"))),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        walls.push(t0.elapsed().as_secs_f64());
        cpus.push(cpu_seconds() - c0);
        assert_eq!(out.requested, 2376);
        let sent = server.requests().len() - before;
        if i == 0 {
            let acc = out
                .report
                .results
                .iter()
                .find(|r| r.primary)
                .unwrap()
                .stats
                .accuracy;
            println!(
                "ARC-Easy test: 2376 items, {sent} HTTP requests (one list prompt per item), acc {acc:.4}"
            );
        }
    }
    println!(
        "2376 items x 4 choices, concurrency 64, instant echo server: wall median {:.3} s (runs: {:?}), process CPU median {:.2} s (client + in-process fake server)",
        median(walls.clone()),
        walls.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>(),
        median(cpus)
    );
}
