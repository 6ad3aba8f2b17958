//! Writes the fixed run directories in `fixtures/runs/` that the report and
//! compare snapshot tests (`tests/it/snapshots.rs`) and browser tests read.
//!
//! ```text
//! cargo run --example make_run_fixtures
//! ```
//!
//! Two eval runs (`eval-a`, `eval-b`: gsm8k and arc_easy, 8 items each at
//! most, concurrency 1) against the in-process fake hub over `fixtures/hub`
//! and a fake OpenAI server that answers from the fixtures' gold answers,
//! and two perf runs (`perf-a`, `perf-b`: levels c=1 and c=4, 16 streamed
//! requests each) against the in-process mock server. Everything that
//! depends on the time or the machine (timestamps, latencies, durations,
//! ports, tool version, client CPU figures) is then rewritten to fixed
//! values, perf timelines included (and the perf statistics recomputed from
//! them), so running this twice gives byte-identical files. Rendered reports
//! are not kept: the record files are the fixture.
//!
//! What the runs answer (keep `fixtures/README.md` in step):
//! - gsm8k `main/test#1` is answered, in both runs, with hostile HTML
//!   (`<script>` and `<img onerror>`) followed by the right answer, so it is
//!   graded correct;
//! - run A answers gsm8k `main/test#3` wrong; run B answers `main/test#0` and
//!   `main/test#2` wrong: flips right→wrong #0, #2 and wrong→right #3.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bench::benchmarks;
use bench::client::{ClientConfig, Prompt};
use bench::config::{EvalConfig, Limit, plan_benchmarks};
use bench::eval::run_eval;
use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply, prompt_text};
use bench::hub::HubConfig;
use bench::mock::{MockConfig, MockServer};
use bench::perf::driver::{PerfConfig, WorkItem, run_perf};
use bench::perf::record::RequestRecord;
use bench::perf::run::{ClientHealth, Load, Stop};
use bench::perf::stats::{LevelStats, StatsOptions, vllm_block};
use bench::perf::summary::PerfDir;
use bench::record::{RunDir, SampleRecord};
use bench::util::ToolInfo;
use tokio_util::sync::CancellationToken;

/// The gsm8k item whose response is hostile HTML (both runs).
const HOSTILE: usize = 1;
/// The payload, before the right answer.
const HOSTILE_HTML: &str =
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> ";
/// Endpoint written in place of the fake servers' real addresses.
const FIXED_BASE: &str = "http://127.0.0.1:8000/v1";

/// One eval run to write.
struct EvalSpec {
    name: &'static str,
    /// gsm8k `main/test` rows answered wrong.
    wrong: &'static [usize],
    created_at: &'static str,
    /// Latency of item `i` is `latency_base + 25 i` ms.
    latency_base: f64,
}

/// One perf run to write.
struct PerfSpec {
    name: &'static str,
    created_at: &'static str,
    /// Synthetic time to first token at c=1, µs.
    ttft_us: u64,
    /// Synthetic gap between tokens at c=1, µs.
    itl_us: u64,
}

/// Everything the fixtures write that is not a fact of the run.
fn fixed_tool() -> ToolInfo {
    ToolInfo {
        name: "bench".into(),
        version: "0.0.0-fixture".into(),
        git_sha: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
    let tmp = tempfile::tempdir()?;
    let hub = FakeHub::start(FakeHubOptions::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hub"),
    ))
    .await;
    let table = Arc::new(gold_table()?);
    for spec in [
        EvalSpec {
            name: "eval-a",
            wrong: &[3],
            created_at: "2026-01-01T00:00:00Z",
            latency_base: 400.0,
        },
        EvalSpec {
            name: "eval-b",
            wrong: &[0, 2],
            created_at: "2026-01-02T00:00:00Z",
            latency_base: 450.0,
        },
    ] {
        let dir = out.join(spec.name);
        eval_run(&spec, &hub, table.clone(), tmp.path(), &dir).await?;
        println!("wrote {}", dir.display());
    }
    for spec in [
        PerfSpec {
            name: "perf-a",
            created_at: "2026-01-01T00:00:00Z",
            ttft_us: 20_000,
            itl_us: 2_000,
        },
        PerfSpec {
            name: "perf-b",
            created_at: "2026-01-02T00:00:00Z",
            ttft_us: 35_000,
            itl_us: 3_000,
        },
    ] {
        let dir = out.join(spec.name);
        perf_run(&spec, tmp.path(), &dir).await?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Eval runs

/// One test item of the hub fixtures.
struct Gold {
    benchmark: String,
    index: usize,
    question: String,
    gold: String,
}

/// Every eval item of every benchmark in `fixtures/hub`.
fn gold_table() -> Result<Vec<Gold>> {
    let hub = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hub/datasets");
    let mut out = Vec::new();
    for b in benchmarks::registry().iter() {
        for s in &b.dataset.subsets {
            let repo = hub.join(&b.dataset.repo_id);
            // The fake hub serves the convert branch from its own folder.
            let repo = match s.convert {
                Some(_) => repo.join(bench::fake::hub::CONVERT_FOLDER),
                None => repo,
            };
            let path = repo.join(&s.eval_path);
            let rows = bench::dataset::read_parquet(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            for (index, r) in rows.iter().enumerate() {
                let f = b
                    .dataset
                    .fields(r)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                out.push(Gold {
                    benchmark: b.name.clone(),
                    index,
                    question: f.question,
                    gold: f.target,
                });
            }
        }
    }
    Ok(out)
}

/// The item a request asks about: the latest (then longest) known question
/// in the last message (few-shot examples come before it).
fn item_for<'a>(table: &'a [Gold], body: &serde_json::Value) -> Option<&'a Gold> {
    let text = body
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
        .map(|last| {
            last.get("content")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|| prompt_text(body));
    table
        .iter()
        .filter_map(|g| text.rfind(g.question.as_str()).map(|pos| (pos, g)))
        .max_by_key(|(pos, g)| (*pos, g.question.len()))
        .map(|(_, g)| g)
}

/// The reply of a run to one request.
fn reply(table: &[Gold], wrong: &[usize], body: &serde_json::Value) -> Reply {
    let Some(g) = item_for(table, body) else {
        return Reply::text("I cannot find the question.");
    };
    let gsm8k = g.benchmark == "gsm8k";
    if gsm8k && wrong.contains(&g.index) {
        return Reply::text("ANSWER: Z \\boxed{-99999}").with_usage(50, 8);
    }
    let answer = if gsm8k {
        format!("Step by step... so the total is \\boxed{{{}}}.", g.gold)
    } else {
        format!("Let me think about the options.\nANSWER: {}", g.gold)
    };
    let text = if gsm8k && g.index == HOSTILE {
        format!("{HOSTILE_HTML}{answer}")
    } else {
        answer
    };
    Reply::text(text).with_usage(50, 12)
}

async fn eval_run(
    spec: &EvalSpec,
    hub: &FakeHub,
    table: Arc<Vec<Gold>>,
    tmp: &Path,
    dest: &Path,
) -> Result<()> {
    let wrong = spec.wrong;
    let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
        reply(&table, wrong, body)
    }))
    .await;
    let work = tmp.join(spec.name);
    let names = vec!["gsm8k".to_string(), "arc_easy".to_string()];
    let cfg = EvalConfig {
        model: "fake-model".into(),
        client: ClientConfig::new(server.url()),
        in_process: false,
        benchmarks: plan_benchmarks(&names, None).map_err(anyhow::Error::msg)?,
        limit: Some(Limit::Count(8)),
        limit_text: Some("8".into()),
        concurrency: 1,
        generation: Default::default(),
        output: work.clone(),
        prompts_dir: None,
        hub: HubConfig {
            endpoint: hub.url(),
            token: None,
            cache_dir: tmp.join("hf-cache"),
            offline: false,
        },
        progress: false,
        print_table: false,
        command: vec![],
        tokenizer: None,
    };
    let res = run_eval(cfg, CancellationToken::new()).await?;
    ensure!(!res.interrupted, "{}: interrupted", spec.name);

    // Normalize into the destination: run.json and the journals only.
    let run = RunDir::new(&work);
    let mut m = run.read_manifest()?;
    m.tool = fixed_tool();
    m.created_at = spec.created_at.into();
    m.updated_at = spec.created_at.replace("T00:00:00Z", "T00:01:00Z");
    m.settings.api_base = FIXED_BASE.into();
    m.command = vec![];
    let mut total_ms = 0.0;
    let mut journals = Vec::new();
    for b in &m.settings.benchmarks {
        let mut recs: Vec<SampleRecord> = run.read_journal(&b.benchmark)?;
        recs.sort_by_key(|r| r.key());
        for r in &mut recs {
            ensure!(r.error.is_none(), "{}: {:?}", spec.name, r.error);
            let lat = spec.latency_base + 25.0 * r.index as f64;
            r.latency_ms = Some(lat);
            r.ttft_ms = r.ttft_ms.map(|_| 50.0 + 5.0 * r.index as f64);
            total_ms += lat;
        }
        journals.push((b.benchmark.clone(), recs));
    }
    m.duration_s = (total_ms / 1000.0 * 10.0).round() / 10.0;

    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    let out = RunDir::new(dest);
    std::fs::create_dir_all(out.samples_dir())?;
    let mut text = serde_json::to_string_pretty(&m)?;
    text.push('\n');
    std::fs::write(out.manifest(), text)?;
    for (bench, recs) in journals {
        let mut text = String::new();
        for r in &recs {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        std::fs::write(out.journal(&bench), text)?;
    }
    check_no_machine_data(dest, &server.url())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Perf runs

async fn perf_run(spec: &PerfSpec, tmp: &Path, dest: &Path) -> Result<()> {
    let mock = MockServer::start(MockConfig {
        ttft: Duration::from_micros(spec.ttft_us),
        itl: Duration::from_micros(spec.itl_us),
        output_tokens: 8,
        ..Default::default()
    })
    .await?;
    let work = tmp.join(spec.name);
    let mut client = ClientConfig::new(mock.url());
    client.stream = true;
    client.timeout = Duration::from_secs(30);
    let levels = vec![
        (Load::Concurrency { concurrency: 1 }, Stop::Count(16)),
        (Load::Concurrency { concurrency: 4 }, Stop::Count(16)),
    ];
    let cfg = PerfConfig {
        model: "mock".into(),
        client,
        levels,
        prompts: (0..8)
            .map(|i| WorkItem {
                prompt: Prompt::Text(format!("hello number {i}")),
                prompt_tokens: None,
                output_tokens: None,
            })
            .collect(),
        dataset_label: "fixture prompts (8)".into(),
        max_tokens: Some(8),
        min_tokens: None,
        temperature: None,
        extra: Default::default(),
        warmup: 0,
        seed: 1,
        slo: None,
        output: work.clone(),
        count_tokens: None,
        record: bench::perf::record::RecordLevel::Events,
        progress: false,
        print: false,
        command: vec![],
    };
    let res = run_perf(cfg, CancellationToken::new()).await?;
    ensure!(!res.interrupted, "{}: interrupted", spec.name);

    let dir = PerfDir { root: work.clone() };
    let mut summary = dir.read_summary()?;
    let mut records = dir.read_records()?;
    summary.tool = fixed_tool();
    summary.created_at = spec.created_at.into();
    summary.command = vec![];
    let endpoint = summary
        .settings
        .url
        .rsplit_once("/v1/")
        .map(|(_, path)| format!("{FIXED_BASE}/{path}"))
        .context("endpoint url")?;
    summary.settings.url = endpoint;
    let mut all = Vec::new();
    for level in &mut summary.levels {
        let recs = records.get_mut(&level.index).context("level records")?;
        let c = match level.load {
            Load::Concurrency { concurrency } => concurrency,
            Load::Rate { .. } => bail!("closed-loop levels only"),
        };
        ensure!(
            recs.iter().all(RequestRecord::ok),
            "{}: a request failed",
            spec.name
        );
        retime(recs, c, spec);
        level.stats = LevelStats::compute(
            recs,
            &StatsOptions {
                slo: None,
                expected_min_output: None,
                max_concurrency: Some(c as u64),
            },
        );
        level.vllm = vllm_block(&level.stats);
        level.client = ClientHealth {
            cpu_cores_used: 0.05,
            cores: 4,
            wall_s: level.stats.duration_s,
            ..Default::default()
        };
        level.server = None;
        level.warnings = vec![];
        all.extend(recs.iter().cloned());
    }

    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    std::fs::create_dir_all(dest)?;
    let out = PerfDir {
        root: dest.to_path_buf(),
    };
    let mut text = serde_json::to_string_pretty(&summary)?;
    text.push('\n');
    std::fs::write(out.summary(), text)?;
    let mut text = String::new();
    for r in &all {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    std::fs::write(out.requests(), text)?;
    check_no_machine_data(dest, &mock.url())?;
    Ok(())
}

/// Replace a closed-loop level's measured timeline with a synthetic one
/// derived from the request index: same events, fixed times. With `c` in
/// flight, TTFT and ITL grow with `c` (the server shares its time).
fn retime(recs: &mut [RequestRecord], c: usize, spec: &PerfSpec) {
    recs.sort_by_key(|r| r.index);
    let load = 1.0 + 0.25 * (c as f64 - 1.0);
    let mut slot_free = vec![0u64; c];
    for r in recs.iter_mut() {
        let i = r.index;
        let ttft = (spec.ttft_us as f64 * load) as u64 + 700 * (i % 5);
        let itl = (spec.itl_us as f64 * load) as u64 + 150 * (i % 3);
        // Closed loop: the request goes out when a slot frees up.
        let slot = (0..c).min_by_key(|s| (slot_free[*s], *s)).unwrap_or(0);
        r.scheduled_us = None;
        r.sent_us = slot_free[slot] + 40;
        r.headers_us = Some(ttft / 2);
        let mut t = ttft;
        let mut first = true;
        let mut last_token = None;
        for e in &mut r.events {
            if e.kind.has_tokens() {
                if !first {
                    t += itl;
                }
                first = false;
                last_token = Some(t);
                e.t_us = t;
            } else if last_token.is_none() {
                // Role-only chunk before the first token.
                e.t_us = ttft.saturating_sub(100);
            } else {
                t += 30;
                e.t_us = t;
            }
        }
        r.last_token_us = last_token;
        r.end_us = Some(t + 60);
        slot_free[slot] = r.sent_us + t + 60;
    }
}

/// Fail when a written file still names a temp dir or a real port.
fn check_no_machine_data(dir: &Path, server_url: &str) -> Result<()> {
    let tmp = std::env::temp_dir().display().to_string();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p)?;
            ensure!(
                !text.contains(server_url) && !text.contains(&tmp),
                "{} still holds machine-dependent text",
                p.display()
            );
        }
    }
    Ok(())
}
