//! Speed benchmark of the eval harness (not a test: figures go in notes).
//!
//! Serves the real GSM8K and ARC parquet files (`../shared/datasets/hub`, or
//! `BENCH_DATASETS_HUB`) from the fake hub and answers from an in-process
//! fake OpenAI server, then measures:
//! 1. cached parquet load time (median of repeated reads);
//! 2. all of gsm8k test + ARC-Easy test + ARC-Challenge test (4867 items) at
//!    concurrency 64 against an instant server: wall time and process CPU;
//! 3. 1319 gsm8k items at concurrency 256 against a server with a fixed 1 s
//!    latency, against the ideal ceil(1319/256) s;
//! 4. MMLU: the 57 cached subject test files loaded (total, median of
//!    repeats), then all 14,042 test items (5-shot prompts from `dev`) at
//!    concurrency 64 against an instant server: wall time and process CPU.
//!
//! Run: `cargo run --release --example eval_speed`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
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
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    let instant = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("so \\boxed{18}\nANSWER: B")
    }))
    .await;
    // Warm the cache (downloads), then measure loads of cached files.
    let cfg = eval_config(
        &instant.url(),
        &hub.url(),
        &cache,
        tmp.path().join("warm"),
        &["gsm8k", "arc"],
        64,
    );
    let mut warm = cfg.clone();
    warm.limit = Some(bench::config::Limit::Count(1));
    bench::eval::run_eval(warm, CancellationToken::new())
        .await
        .unwrap();
    let hubc = bench::hub::Hub::new(cfg.hub.clone()).unwrap();
    for (repo, rev, path) in [
        (
            "openai/gsm8k",
            "740312add88f781978c0658806c59bc2815b9866",
            "main/test-00000-of-00001.parquet",
        ),
        (
            "allenai/ai2_arc",
            "210d026faf9955653af8916fad021475a3f00453",
            "ARC-Easy/test-00000-of-00001.parquet",
        ),
    ] {
        let file = bench::hub::HubFile {
            repo_type: bench::hub::RepoType::Dataset,
            repo_id: repo.into(),
            revision: rev.into(),
            path: path.into(),
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..15 {
            let t = Instant::now();
            let f = hubc.fetch(&file).await.unwrap();
            rows = bench::dataset::read_parquet(&f.local_path).unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "cached load {repo}/{path}: {rows} rows, median {:.2} ms (cache lookup + sha256 check + parquet read)",
            median(times)
        );
    }

    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for i in 0..5 {
        let cfg = eval_config(
            &instant.url(),
            &hub.url(),
            &cache,
            tmp.path().join(format!("full{i}")),
            &["gsm8k", "arc"],
            64,
        );
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let out = bench::eval::run_eval(cfg, CancellationToken::new())
            .await
            .unwrap();
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - c0;
        assert_eq!(out.requested, 4867);
        walls.push(wall);
        cpus.push(cpu);
    }
    println!(
        "4867 items, concurrency 64, instant server: wall median {:.3} s (runs: {:?}), process CPU median {:.2} s (client + in-process server)",
        median(walls.clone()),
        walls.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>(),
        median(cpus)
    );

    let slow = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("\\boxed{1}").with_delay(Duration::from_secs(1))
    }))
    .await;
    let cfg = eval_config(
        &slow.url(),
        &hub.url(),
        &cache,
        tmp.path().join("slow"),
        &["gsm8k"],
        256,
    );
    let t0 = Instant::now();
    let out = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let ideal = (1319f64 / 256.0).ceil();
    println!(
        "1319 items, concurrency 256, 1 s server latency: {:.2} s vs ideal {ideal} s ({:+.1}%), peak in flight {}",
        wall,
        (wall / ideal - 1.0) * 100.0,
        slow.peak_in_flight()
    );
    assert_eq!(out.requested, 1319);

    mmlu(&instant, &hub, &cache, tmp.path()).await;
}

/// Part 4: MMLU's 57 cached parquet files and its 14,042 items.
async fn mmlu(instant: &FakeOpenAi, hub: &FakeHub, cache: &std::path::Path, tmp: &std::path::Path) {
    let cfg = eval_config(
        &instant.url(),
        &hub.url(),
        cache,
        tmp.join("mmlu-warm"),
        &["mmlu"],
        64,
    );
    let mut warm = cfg.clone();
    warm.limit = Some(bench::config::Limit::Count(1));
    bench::eval::run_eval(warm, CancellationToken::new())
        .await
        .unwrap();
    let registry = bench::benchmarks::registry();
    let b = registry.iter().find(|b| b.name == "mmlu").unwrap();
    let hubc = bench::hub::Hub::new(cfg.hub.clone()).unwrap();
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..7 {
        let t = Instant::now();
        rows = 0;
        for s in &b.dataset.subsets {
            let file = bench::hub::HubFile {
                repo_type: bench::hub::RepoType::Dataset,
                repo_id: b.dataset.repo_id.clone(),
                revision: b.dataset.revision.clone(),
                path: s.eval_path.clone(),
            };
            let f = hubc.fetch(&file).await.unwrap();
            rows += bench::dataset::read_parquet(&f.local_path).unwrap().len();
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "cached load of mmlu's {} test files: {rows} rows, median {:.1} ms in all (cache lookup + sha256 check + parquet read)",
        b.dataset.subsets.len(),
        median(times)
    );
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for i in 0..3 {
        let cfg = eval_config(
            &instant.url(),
            &hub.url(),
            cache,
            tmp.join(format!("mmlu{i}")),
            &["mmlu"],
            64,
        );
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let out = bench::eval::run_eval(cfg, CancellationToken::new())
            .await
            .unwrap();
        walls.push(t0.elapsed().as_secs_f64());
        cpus.push(cpu_seconds() - c0);
        assert_eq!(out.requested, 14042);
    }
    println!(
        "mmlu 14042 items (57 subjects, 5-shot), concurrency 64, instant server: wall median {:.3} s (runs: {:?}), process CPU median {:.2} s (client + in-process server)",
        median(walls.clone()),
        walls.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>(),
        median(cpus)
    );
}
