//! Command line: clap `*Args` structs, converted once into validated configs
//! ([`crate::config`]), then dispatched. The only place besides `main.rs`
//! that uses `anyhow`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::benchmarks;
use crate::client::{ApiKind, ClientConfig};
use crate::config::{EvalConfig, Limit, plan_benchmarks};
use crate::hub::HubConfig;
use crate::range::limits as L;

/// LLM accuracy benchmarks against OpenAI-compatible servers.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run accuracy benchmarks against a served model.
    Eval(Box<EvalArgs>),
    /// List the benchmarks and their modes.
    List,
    /// Re-render the reports of a run directory, or (--index) list every run of a folder.
    Report(ReportArgs),
    /// Re-grade a finished run's responses with another mode's extractors and scorer (no model calls).
    Rescore(RescoreArgs),
    /// Serving latency/throughput sweep against a server (concurrency or request-rate levels).
    Perf(Box<PerfArgs>),
    /// An OpenAI-compatible streaming server with known timing, for checking a client's ceiling.
    MockServer(MockArgs),
    /// Compare runs: eval (paired accuracy differences, flipped items) or perf (level by level).
    Compare(CompareArgs),
    /// Serve a model in process behind an OpenAI-compatible HTTP API (for bench perf, lm-eval, ...).
    Serve(ServeArgs),
}

/// `bench compare`: eval or perf runs, in the chosen format, with the CI gate.
fn compare(a: CompareArgs) -> anyhow::Result<ExitCode> {
    // Name the run at fault before deciding what kind of comparison this is.
    for d in &a.runs {
        if !d.exists() {
            bail!("bench compare: {}: no such directory", d.display());
        }
        if !crate::perf::summary::is_perf_dir(d) && !d.join("run.json").is_file() {
            bail!(
                "bench compare: {} is not a bench run directory (no run.json or summary.json)",
                d.display()
            );
        }
    }
    let perf = a
        .runs
        .iter()
        .filter(|p| crate::perf::summary::is_perf_dir(p))
        .count();
    if perf > 0 && perf < a.runs.len() {
        bail!("bench compare: give only eval runs or only perf runs, not both");
    }
    // Links from an HTML page to each run's report, relative to the page.
    let page_dir = a.output.as_ref().map(|o| {
        o.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    // A comparison is not part of any run: never written over a run's files.
    // Every folder above the file counts: `-o RUN/samples/x.jsonl` is inside
    // a run as much as `-o RUN/report.md`.
    if let Some(d) = &page_dir {
        let abs = std::path::absolute(d).unwrap_or_else(|_| d.clone());
        if let Some(run) = abs
            .ancestors()
            .find(|p| p.join("run.json").is_file() || p.join("summary.json").is_file())
        {
            bail!(
                "--output {}: {} holds a bench run, whose files a comparison must not replace; write it elsewhere",
                a.output.as_deref().unwrap_or(Path::new("")).display(),
                run.display()
            );
        }
    }
    if let Some(d) = &page_dir {
        std::fs::create_dir_all(d)
            .with_context(|| format!("--output: creating {}", d.display()))?;
    }
    let link = |run: &str| -> Option<String> {
        let d = page_dir.as_ref()?;
        Some(format!(
            "{}/report.html",
            crate::report::index::relative_href(d, Path::new(run))?
        ))
    };
    let (text, worse, what) = if perf > 0 {
        if crate::compare::perf_metric(&a.metric).is_none() {
            let known: Vec<_> = crate::compare::PERF_METRICS.iter().map(|m| m.key).collect();
            bail!(
                "--metric `{}`: expected one of {}",
                a.metric,
                known.join(", ")
            );
        }
        // Each run is read once; only the HTML page draws from the requests.
        let html = a.format == "html";
        let views = a
            .runs
            .iter()
            .map(|d| {
                let dir = crate::perf::summary::PerfDir { root: d.clone() };
                Ok((
                    d.display().to_string(),
                    crate::perf::report::load_with(&dir, html)?,
                ))
            })
            .collect::<Result<Vec<_>, crate::report::ReportError>>()?;
        let (base, rest) = views.split_first().context("no runs")?;
        let cs: Vec<_> = rest
            .iter()
            .map(|(d, v)| {
                crate::compare::compare_summaries(&base.1.summary, &base.0, &v.summary, d)
            })
            .collect();
        let text = match a.format.as_str() {
            "json" => serde_json::to_string_pretty(&cs)? + "\n",
            "html" => {
                let views: Vec<_> = views.iter().map(|(d, v)| (d.clone(), v)).collect();
                crate::compare::html::perf_page(&views, &cs, &link)
            }
            _ => crate::compare::perf_markdown(&cs),
        };
        let threshold = a.threshold.unwrap_or(5.0);
        // Levels of a candidate where nothing succeeded have all-zero
        // latencies, which would read as "better"; and a candidate sharing
        // no level with the baseline compares nothing. Neither may pass.
        let unmeasured: Vec<String> = views
            .iter()
            .skip(1)
            .zip(&cs)
            .filter_map(|((d, v), c)| {
                let dead: Vec<&str> = v
                    .summary
                    .levels
                    .iter()
                    .filter(|l| {
                        l.stats.succeeded == 0
                            && base.1.summary.levels.iter().any(|b| b.label == l.label)
                    })
                    .map(|l| l.label.as_str())
                    .collect();
                if c.rows.is_empty() {
                    Some(format!("{d}: no level in common with {}", base.0))
                } else if !dead.is_empty() {
                    Some(format!("{d}: no request succeeded at {}", dead.join(", ")))
                } else {
                    None
                }
            })
            .collect();
        for u in &unmeasured {
            eprintln!("warning: {u}: nothing to compare there");
        }
        let worse: usize = cs
            .iter()
            .map(|c| crate::compare::perf_regressions(c, &a.metric, threshold).len())
            .sum::<usize>()
            + unmeasured.len();
        let what = format!(
            "level(s) where {} got worse by more than {threshold}% (or candidates with nothing measured)",
            a.metric
        );
        (text, worse, what)
    } else {
        let cs = crate::compare::compare_all(&a.runs)?;
        let text = match a.format.as_str() {
            "json" => serde_json::to_string_pretty(&cs)? + "\n",
            "html" => crate::compare::html::eval_page(&cs, &link),
            _ => crate::compare::markdown(&cs),
        };
        let points = L::THRESHOLD
            .check(a.threshold.unwrap_or(0.0))
            .map_err(|e| anyhow::anyhow!("--threshold: {e}"))?;
        // A comparison with no row at all (nothing paired) proves nothing:
        // the gate must not pass it.
        let empty: Vec<&str> = cs
            .iter()
            .filter(|c| c.rows.is_empty())
            .map(|c| c.candidate.as_str())
            .collect();
        if !empty.is_empty() {
            eprintln!(
                "warning: no item could be compared between {} and {} (see the notes){}",
                cs.first().map_or("", |c| c.baseline.as_str()),
                empty.join(", "),
                if a.fail_on_regression {
                    ": the regression gate fails"
                } else {
                    ""
                }
            );
        }
        for c in &cs {
            if !c.candidate_all_failed.is_empty() {
                eprintln!(
                    "warning: {}: every request failed in {}: nothing of it was measured",
                    c.candidate,
                    c.candidate_all_failed.join(", ")
                );
            }
        }
        let worse: usize = cs
            .iter()
            .map(|c| crate::compare::regressions(c, points).len() + c.candidate_all_failed.len())
            .sum::<usize>()
            + empty.len();
        let what = format!(
            "regression(s) (or benchmarks where the candidate measured nothing): accuracy fell{} and the paired 95% interval excludes zero",
            if points > 0.0 {
                format!(" by more than {points} points")
            } else {
                String::new()
            }
        );
        (text, worse, what)
    };
    match &a.output {
        Some(path) => {
            crate::record::write_atomic(path, text.as_bytes())
                .with_context(|| format!("--output: writing {}", path.display()))?;
            eprintln!("comparison written to {}", path.display());
        }
        None => print!("{text}"),
    }
    if a.fail_on_regression && worse > 0 {
        eprintln!("{worse} {what}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench compare` flags.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories: the first is the baseline, each other is compared with it.
    #[arg(num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Output format: markdown for a PR comment, a self-contained HTML page, or JSON.
    #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
    pub format: String,
    /// Write the comparison to FILE instead of standard output (HTML links each run's report
    /// relative to FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 on a regression: eval runs, accuracy fell by more than --threshold points (default
    /// 0) and the paired 95% interval excludes zero; perf runs, --metric got worse by more than
    /// --threshold percent (default 5) at some level.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Perf runs: the metric the regression gate watches.
    #[arg(long, default_value = "output_throughput")]
    pub metric: String,
    /// How much worse still passes the gate: accuracy points for eval runs (default 0), percent
    /// for perf runs (default 5; 0 to 10000).
    #[arg(long, allow_negative_numbers = true, value_parser = L::THRESHOLD.parser())]
    pub threshold: Option<f64>,
}

/// `bench perf` flags (EvalScope perf's names where it has one).
#[derive(Debug, Args)]
pub struct PerfArgs {
    /// Server URL: a full endpoint (.../v1/chat/completions, .../v1/completions) or a base (.../v1).
    #[arg(long, visible_alias = "api-url")]
    pub url: String,
    /// Model name (checked against /v1/models).
    #[arg(long)]
    pub model: String,
    /// API flavour: `openai` (endpoint from the URL, chat by default), `chat` or `completions`.
    #[arg(long, default_value = "openai")]
    pub api: String,
    /// API key (default: $OPENAI_API_KEY). Never written anywhere.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Extra request header `Name: value` (repeatable); values are never recorded.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Closed-loop levels: requests in flight (pairs with --number; 1 to 100000 each).
    #[arg(long, num_args = 1.., allow_negative_numbers = true, value_parser = L::CONCURRENCY.parser::<usize>())]
    pub parallel: Vec<usize>,
    /// Requests per level (pairs with --parallel or --rate; one value applies to all; 1 to 10000000 each).
    #[arg(long, num_args = 1.., allow_negative_numbers = true, value_parser = L::REQUESTS.parser::<u64>())]
    pub number: Vec<u64>,
    /// Open-loop levels: arrivals per second (Poisson, or gamma with --burstiness; 0.001 to 1000000 each).
    #[arg(long, num_args = 1.., allow_negative_numbers = true, value_parser = L::RATE.parser())]
    pub rate: Vec<f64>,
    /// Gamma shape of inter-arrival times with --rate (1 = Poisson; lower is burstier; 0.001 to 1000).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = L::BURSTINESS.parser())]
    pub burstiness: f64,
    /// With --rate: cap on requests in flight (arrivals beyond it queue; queue time is reported; 1 to 100000).
    #[arg(long, allow_negative_numbers = true, value_parser = L::CONCURRENCY.parser::<usize>())]
    pub max_concurrency: Option<usize>,
    /// Run each level for this long instead of --number (seconds, or 10s, 2m, 500ms; 1 ms to 7 days).
    #[arg(long)]
    pub duration: Option<String>,
    /// Warmup requests before each level (not measured; 0 to 1000000).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = L::WARMUP.parser::<u64>())]
    pub warmup: u64,
    /// Seed for prompts and arrival schedules.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = L::SEED.parser::<u64>())]
    pub seed: u64,
    /// Stream responses (the default; needed for TTFT and ITL).
    #[arg(long, overrides_with = "no_stream")]
    pub stream: bool,
    /// Do not stream (then only end-to-end latency is measured).
    #[arg(long)]
    pub no_stream: bool,
    /// Sampling temperature (0 to 100).
    #[arg(long, allow_negative_numbers = true, value_parser = L::TEMPERATURE.parser())]
    pub temperature: Option<f64>,
    /// max_tokens of every request (1 to 10000000).
    #[arg(long, allow_negative_numbers = true, value_parser = L::MAX_TOKENS.parser::<u32>())]
    pub max_tokens: Option<u32>,
    /// min_tokens of every request (vLLM); responses shorter than this are flagged (0 to 10000000).
    #[arg(long, allow_negative_numbers = true, value_parser = L::MIN_TOKENS.parser::<u32>())]
    pub min_tokens: Option<u32>,
    /// Extra JSON merged into every request body, e.g. '{"ignore_eos": true}'.
    #[arg(long)]
    pub extra_args: Option<String>,
    /// SLOs for goodput, e.g. ttft=500ms,tpot=50ms,e2el=2s.
    #[arg(long)]
    pub slo: Option<String>,
    /// Prompt source: random, line_by_line, openqa, custom (JSONL), sharegpt.
    #[arg(long, default_value = "random")]
    pub dataset: String,
    /// File for line_by_line / openqa / custom / sharegpt.
    #[arg(long)]
    pub dataset_path: Option<std::path::PathBuf>,
    /// tokenizer.json (or a directory holding one), or a hub model id: owner/name, optionally @revision.
    #[arg(long)]
    pub tokenizer_path: Option<String>,
    /// Random prompts: shortest prompt in tokens (1 to 1048576).
    #[arg(long, default_value_t = 1024, allow_negative_numbers = true, value_parser = L::PROMPT_LENGTH.parser::<usize>())]
    pub min_prompt_length: usize,
    /// Random prompts: longest prompt in tokens (1 to 1048576).
    #[arg(long, default_value_t = 1024, allow_negative_numbers = true, value_parser = L::PROMPT_LENGTH.parser::<usize>())]
    pub max_prompt_length: usize,
    /// Random prompts: shared prefix length in tokens (in addition to the prompt length; 0 to 1048576).
    /// Prefix plus the longest prompt may be at most 1048576 tokens, and at most the
    /// tokenizer's model_max_length where its files state one.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = L::PREFIX_LENGTH.parser::<usize>())]
    pub prefix_length: usize,
    /// Per-request timeout in seconds (0.001 to 86400).
    #[arg(long, default_value_t = 600.0, allow_negative_numbers = true, value_parser = L::TIMEOUT_S.parser())]
    pub timeout: f64,
    /// Run directory (default: outputs/perf-TIME-MODEL).
    #[arg(long, visible_alias = "work-dir")]
    pub output: Option<PathBuf>,
    /// What requests.jsonl keeps of each request: `events` (every SSE event's
    /// arrival time and kind), `requests` (one line of times and counts per
    /// request), `none` (no requests.jsonl). Statistics are the same at every level.
    #[arg(long, value_enum, default_value_t = crate::perf::record::RecordLevel::Requests)]
    pub record: crate::perf::record::RecordLevel,
    /// Never touch the hub (tokenizer from the cache only).
    #[arg(long)]
    pub offline: bool,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// `bench serve` flags (names follow `vllm serve`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model to serve: a hub id (owner/name, owner/name@revision, or owner/name:file.gguf),
    /// a .gguf file or a Hugging Face model directory.
    #[arg(long)]
    pub model: String,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind (0: any free port; the line `serving ... at URL` on stderr names it; 0 to 65535).
    #[arg(long, default_value_t = 8000, allow_negative_numbers = true, value_parser = L::PORT.parser::<u16>())]
    pub port: u16,
    /// The model name clients send and /v1/models lists (default: --model).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Sequences decoded together at most (1 to 100000); more requests wait.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = L::CONCURRENCY.parser::<usize>())]
    pub max_batch: usize,
    /// Never touch the hub; use the local cache only (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Do not draw download progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// `bench serve`: load, bind, say where, serve until Ctrl-C or SIGTERM.
fn serve_command(a: ServeArgs) -> Result<ExitCode> {
    let mut hub = HubConfig::from_env();
    hub.offline |= a.offline;
    let cfg = crate::serve::ServeConfig {
        model: a.model,
        host: a.host,
        port: a.port,
        served_model_name: a.served_model_name,
        max_batch: a.max_batch,
        hub,
        progress: !a.no_progress,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        // Installed before loading, so a signal during a long load stops it.
        let mut signals = StopSignals::install();
        tokio::spawn(async move {
            let mut seen = 0;
            while let Some(sig) = signals.next().await {
                seen += 1;
                if seen > 1 {
                    std::process::exit(128 + sig);
                }
                STOP_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
                eprintln!(
                    "\nstopping: finishing the requests in flight (signal again to quit at once)"
                );
                c2.cancel();
            }
        });
        let server = tokio::select! {
            r = crate::serve::Server::bind(&cfg) => r.context("bench serve")?,
            _ = cancel.cancelled() => return Ok(interrupted_exit_code()),
        };
        let addr = server.local_addr().context("bench serve")?;
        eprintln!("serving {} at http://{addr}/v1", server.model_name());
        server
            .run(async move { cancel.cancelled().await })
            .await
            .context("bench serve")?;
        Ok(interrupted_exit_code())
    })
}

/// `bench mock-server` flags.
#[derive(Debug, Args)]
pub struct MockArgs {
    /// Port on 127.0.0.1 (0 picks a free one and prints it; 0 to 65535).
    #[arg(long, default_value_t = 8801, allow_negative_numbers = true, value_parser = L::PORT.parser::<u16>())]
    pub port: u16,
    /// Time to first token, ms (0 to 3600000).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = L::DELAY_MS.parser())]
    pub ttft_ms: f64,
    /// Gap between token chunks, ms (0 to 3600000).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = L::DELAY_MS.parser())]
    pub itl_ms: f64,
    /// Tokens per response (capped by the request's max_tokens; 0 to 1000000).
    #[arg(long, default_value_t = 128, allow_negative_numbers = true, value_parser = L::OUTPUT_TOKENS.parser::<u32>())]
    pub output_tokens: u32,
    /// Tokens per chunk (1 to 1000000).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = L::TOKENS_PER_CHUNK.parser::<u32>())]
    pub tokens_per_chunk: u32,
    /// Model name it serves.
    #[arg(long, default_value = "mock")]
    pub model: String,
    /// Worker threads (one single-threaded runtime each; 1 to 1024).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = L::THREADS.parser::<usize>())]
    pub threads: usize,
}

/// `bench rescore` flags.
#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// A run directory written by `bench eval`.
    pub dir: PathBuf,
    /// Mode whose extractors and scorer to apply (see `bench list`).
    #[arg(long)]
    pub mode: String,
    /// Where to write the re-graded run (default: DIR/rescore-MODE).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Never touch the hub (the dataset files are normally cached already).
    #[arg(long)]
    pub offline: bool,
}

/// `bench eval` flags (names follow EvalScope where it has one).
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// With --api-url: the model name as the server knows it (checked against /v1/models).
    /// Without: the model to run in process: a hub id (owner/name, owner/name@revision, or
    /// owner/name:file.gguf), a .gguf file or a Hugging Face model directory.
    #[arg(long)]
    pub model: String,
    /// Server URL: a base (http://127.0.0.1:8000/v1) or a full endpoint (.../v1/chat/completions).
    /// Without it, --model runs in process (no server).
    #[arg(long, env = "BENCH_API_URL")]
    pub api_url: Option<String>,
    /// API key (default: $OPENAI_API_KEY). Never written to any file or log.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Endpoint kind: chat completions (default) or plain completions. When omitted and
    /// --api-url names an endpoint, that endpoint's kind is used.
    #[arg(long, value_enum)]
    pub api: Option<ApiKind>,
    /// Benchmarks to run (see `bench list`).
    #[arg(long, num_args = 1.., required = true)]
    pub datasets: Vec<String>,
    /// Items per subset: a count (5) or a fraction of the split (0.1, rounded down).
    #[arg(long)]
    pub limit: Option<String>,
    /// Per-benchmark options as JSON: {"gsm8k": {"mode": "native", "few_shot": 0, "subsets": [...]}}.
    #[arg(long)]
    pub dataset_args: Option<String>,
    /// Generation parameters as JSON, sent with every request (temperature, max_tokens, top_p,
    /// seed, stop, ...). The keys timeout (s), retries and stream set the client instead;
    /// extra_body is merged into the request.
    #[arg(long)]
    pub generation_config: Option<String>,
    /// Requests in flight at most (1 to 100000).
    #[arg(long, visible_alias = "eval-batch-size", default_value_t = 8, allow_negative_numbers = true, value_parser = L::CONCURRENCY.parser::<usize>())]
    pub concurrency: usize,
    /// Run directory (default: outputs/TIME-MODEL). Re-using one resumes it.
    #[arg(long, visible_alias = "work-dir")]
    pub output: Option<PathBuf>,
    /// Per-request timeout in seconds (one attempt; 0.001 to 86400).
    #[arg(long, default_value_t = 600.0, allow_negative_numbers = true, value_parser = L::TIMEOUT_S.parser())]
    pub timeout: f64,
    /// Retries per request after the first attempt (0 to 100).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = L::RETRIES.parser::<u32>())]
    pub retries: u32,
    /// Stream responses (SSE); records time to first token.
    #[arg(long)]
    pub stream: bool,
    /// Never touch the hub; use the local cache only (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Directory of *.jinja templates overriding the built-in prompts of the same name.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// `bench report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory written by `bench eval` or `bench perf` (with --index: a folder of runs).
    pub dir: PathBuf,
    /// Write DIR/index.html listing every run under DIR instead, with a picker that opens the
    /// comparison of two runs (pages generated in DIR/compare/).
    #[arg(long)]
    pub index: bool,
    /// With --index: write at most N comparison pages (n runs of one kind make n(n-1) ordered
    /// pairs; the most recent pairs come first; 0 to 1000000).
    #[arg(long, value_name = "N", default_value_t = crate::site::DEFAULT_MAX_COMPARISONS, allow_negative_numbers = true, value_parser = L::MAX_COMPARISONS.parser::<usize>())]
    pub max_comparisons: usize,
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    // Before anything can fail: `main.rs` scrubs the error it prints with it.
    let redactor = redactor(&cli.command);
    crate::redact::install(&redactor);
    match cli.command {
        Command::List => {
            print!("{}", list_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) if a.index => {
            let s = crate::site::write_index_with(&a.dir, a.max_comparisons)?;
            eprintln!(
                "{} lists {} run(s) and links {} comparison page(s) ({} written now)",
                a.dir.join("index.html").display(),
                s.runs,
                s.comparisons,
                s.written
            );
            if s.skipped > 0 {
                eprintln!(
                    "{} older pair(s) have no page (--max-comparisons {}); the index names the bench compare command for them",
                    s.skipped, a.max_comparisons
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) if crate::perf::summary::is_perf_dir(&a.dir) => {
            let dir = crate::perf::summary::PerfDir {
                root: a.dir.clone(),
            };
            crate::perf::report::write_reports(&dir)?;
            let summary = dir
                .read_summary()
                .with_context(|| format!("reading {}", dir.summary().display()))?;
            print!("{}", crate::perf::report::console_table(&summary));
            eprintln!("reports written to {}", a.dir.display());
            if summary.levels.iter().all(|l| l.stats.succeeded == 0) {
                eprintln!(
                    "error: no request of this run succeeded: nothing was measured (exit {NOTHING_MEASURED})"
                );
                return Ok(ExitCode::from(NOTHING_MEASURED));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) => {
            let data = crate::report::rerender(&a.dir)?;
            print!("{}", crate::report::terminal_table(&data));
            eprintln!("reports written to {}", a.dir.display());
            for w in &data.warnings {
                eprintln!("warning: {w}");
            }
            if crate::report::nothing_measured(&data) {
                eprintln!("error: the run holds no measured item (exit {NOTHING_MEASURED})");
                return Ok(ExitCode::from(NOTHING_MEASURED));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rescore(a) => {
            let all = benchmarks::registry().recipe_ids();
            if !all.contains(&a.mode) {
                bail!(
                    "--mode: unknown mode `{}` (modes: {})",
                    a.mode,
                    all.join(", ")
                );
            }
            let mode = a.mode;
            let mut hub = HubConfig::from_env();
            hub.offline |= a.offline;
            let cfg = crate::rescore::RescoreConfig {
                source: a.dir,
                mode,
                output: a.output,
                hub,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let (out, data) = rt.block_on(crate::rescore::rescore(cfg))?;
            print!("{}", crate::report::terminal_table(&data));
            eprintln!("re-graded run written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare(a) => compare(a),
        Command::Serve(a) => serve_command(a),
        Command::Perf(a) => {
            let command = redactor.command(&process_args());
            crate::perf::cli::run(*a, command)
        }
        Command::MockServer(a) => {
            let cfg = crate::mock::MockConfig {
                port: a.port,
                ttft: Duration::from_secs_f64(a.ttft_ms.max(0.0) / 1000.0),
                itl: Duration::from_secs_f64(a.itl_ms.max(0.0) / 1000.0),
                output_tokens: a.output_tokens,
                tokens_per_chunk: a.tokens_per_chunk.max(1),
                model: a.model,
                threads: a.threads.max(1),
                ..Default::default()
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(crate::mock::serve(cfg))
                .context("mock server")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => {
            let command = redactor.command(&process_args());
            let cfg = eval_config(*a, command)?;
            run_eval_command(cfg)
        }
    }
}

/// The text of `bench list`.
pub fn list_text() -> String {
    let mut out = String::new();
    for b in benchmarks::registry().iter() {
        out.push_str(&format!("{:<14} {}\n", b.name, b.summary));
        let src = &b.dataset;
        let subsets: Vec<_> = src.subsets.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(
            "{:<14} data: {}@{} ({})\n",
            "",
            src.repo_id,
            &src.revision[..12.min(src.revision.len())],
            subsets.join(", ")
        ));
        for (i, m) in b.recipes.iter().enumerate() {
            out.push_str(&format!(
                "{:<14}   mode {}{}: {} [extractors: {}; {}]\n",
                "",
                m.id,
                if i == 0 { " (default)" } else { "" },
                m.summary,
                m.extractor_names().join(", "),
                m.provenance
            ));
        }
    }
    out
}

/// Every secret the command was given, wherever it came from: the API key
/// (flag or `$OPENAI_API_KEY`), `--header` values, the userinfo of
/// `--api-url`/`--url` and `$HF_ENDPOINT`, and the hub token (`$HF_TOKEN`,
/// or the token file the hub client would read).
fn redactor(command: &Command) -> crate::redact::Redactor {
    let mut r = crate::redact::Redactor::new();
    match command {
        Command::Eval(a) => {
            r.secret(a.api_key.as_deref().unwrap_or_default());
            r.url(a.api_url.as_deref().unwrap_or_default());
        }
        Command::Perf(a) => {
            r.secret(a.api_key.as_deref().unwrap_or_default());
            r.url(&a.url);
            for h in &a.headers {
                r.header(h);
            }
        }
        _ => {}
    }
    // Also for commands that take no key: the environment is there anyway.
    for var in ["OPENAI_API_KEY", "HF_TOKEN"] {
        r.secret(&std::env::var(var).unwrap_or_default());
    }
    let hub = HubConfig::from_env();
    r.secret(hub.token.as_deref().unwrap_or_default());
    r.url(&hub.endpoint);
    r
}

/// The process arguments as text (lossy, so a non-UTF-8 argument cannot
/// panic here).
fn process_args() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Validate `bench eval` flags into an [`EvalConfig`].
pub fn eval_config(a: EvalArgs, command: Vec<String>) -> Result<EvalConfig> {
    let benchmarks =
        plan_benchmarks(&a.datasets, a.dataset_args.as_deref()).map_err(anyhow::Error::msg)?;
    let limit = a
        .limit
        .as_deref()
        .map(Limit::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // Parsing already checked the ranges; a config built another way gets
    // the same check here, before any `Duration` is made.
    L::CONCURRENCY
        .check(a.concurrency as u64)
        .map_err(|e| anyhow::anyhow!("--concurrency: {e}"))?;
    let timeout = L::TIMEOUT_S
        .check(a.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let in_process = a.api_url.as_deref().is_none_or(str::is_empty);
    let api_url = a.api_url.clone().unwrap_or_default();
    let api = if in_process {
        a.api.unwrap_or(ApiKind::Chat)
    } else {
        let endpoints = crate::client::resolve_endpoints(&api_url).map_err(anyhow::Error::new)?;
        match (a.api, endpoints.named) {
            (Some(flag), Some(url)) if flag != url => bail!(
                "--api {} contradicts --api-url {}, which names the {} endpoint; pass a base URL or drop --api",
                flag.as_str(),
                api_url,
                url.as_str()
            ),
            (Some(flag), _) => flag,
            (None, named) => named.unwrap_or(ApiKind::Chat),
        }
    };
    let mut client = ClientConfig::new(&api_url);
    client.api_key = a.api_key.filter(|k| !k.is_empty());
    client.api = api;
    client.timeout = Duration::from_secs_f64(timeout);
    client.max_retries = a.retries;
    client.stream = a.stream;

    let mut generation = Map::new();
    if let Some(text) = &a.generation_config {
        let v: Value =
            serde_json::from_str(text).context("--generation-config is not valid JSON")?;
        let Value::Object(obj) = v else {
            bail!("--generation-config must be a JSON object")
        };
        for (k, v) in obj {
            match k.as_str() {
                "timeout" => {
                    let s = L::TIMEOUT_S
                        .json("--generation-config timeout", &v)
                        .map_err(anyhow::Error::msg)?;
                    client.timeout = Duration::from_secs_f64(s);
                }
                "retries" => {
                    let n = L::RETRIES
                        .json("--generation-config retries", &v)
                        .map_err(anyhow::Error::msg)?;
                    // RETRIES.max fits a u32.
                    client.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
                }
                "stream" => {
                    client.stream = v
                        .as_bool()
                        .context("--generation-config stream: expected true/false")?
                }
                "extra_body" => {
                    let Value::Object(extra) = v else {
                        bail!("--generation-config extra_body must be an object")
                    };
                    generation.extend(extra);
                }
                "model" | "messages" | "prompt" => {
                    bail!(
                        "--generation-config: `{k}` is set by bench, not by the generation config"
                    )
                }
                _ => {
                    generation.insert(k, v);
                }
            }
        }
    }

    let mut hub = HubConfig::from_env();
    hub.offline |= a.offline;
    let output = a.output.unwrap_or_else(|| default_output("", &a.model));
    Ok(EvalConfig {
        model: a.model,
        client,
        in_process,
        benchmarks,
        limit,
        limit_text: a.limit,
        concurrency: a.concurrency,
        generation,
        output,
        prompts_dir: a.prompts,
        hub,
        progress: !a.no_progress,
        print_table: true,
        command,
    })
}

fn run_eval_command(cfg: EvalConfig) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let cancel = cancel_on_ctrl_c();
        let print = cfg.print_table;
        let out = match crate::eval::run_eval(cfg, cancel).await {
            Err(crate::eval::EvalError::Interrupted) => {
                eprintln!("interrupted before the run started; nothing was recorded");
                return Ok(interrupted_exit_code());
            }
            r => r?,
        };
        if print {
            print!("{}", crate::report::terminal_table(&out.report));
        }
        eprintln!(
            "run directory: {} (report.md, report.html, report.json, samples/)",
            out.run_dir.display()
        );
        for w in &out.report.warnings {
            eprintln!("warning: {w}");
        }
        Ok(if out.interrupted {
            interrupted_exit_code()
        } else if crate::report::nothing_measured(&out.report) {
            eprintln!("error: nothing was measured (exit {NOTHING_MEASURED})");
            ExitCode::from(NOTHING_MEASURED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Exit code of a command that ran but measured nothing: no item selected
/// or answered, or every request failed. The reports are still written.
pub const NOTHING_MEASURED: u8 = 3;

/// `outputs/<prefix><UTC time>-<model>` (the model name made file-safe).
pub(crate) fn default_output(prefix: &str, model: &str) -> PathBuf {
    let ts = time::OffsetDateTime::now_utc();
    let model: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("outputs").join(format!(
        "{prefix}{:04}{:02}{:02}-{:02}{:02}{:02}-{model}",
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second()
    ))
}

/// An error and its causes on one line, each cause once. Many errors here
/// already quote their cause in their own message (`cannot reach ...: {source}`)
/// and also expose it as the source, so printing the plain chain would say
/// every cause twice.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The signal that stopped the run (0 while none came).
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit code of a run stopped by a signal: 128 + the signal's number
/// (130 for Ctrl-C, 143 for SIGTERM), as shells report it.
pub fn interrupted_exit_code() -> ExitCode {
    match STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        15 => ExitCode::from(143),
        _ => ExitCode::from(130),
    }
}

/// A token cancelled by the first Ctrl-C or SIGTERM (stop sending, write
/// what finished, mark the run interrupted); a second signal exits at once,
/// since everything finished is already on disk. SIGTERM is what `kill`,
/// systemd, Kubernetes and CI runners send, so it gets the same orderly stop
/// as Ctrl-C. Call inside a tokio runtime.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    // Installed here, before the run starts, not when the task first runs:
    // a signal that comes at once is then handled, not fatal.
    let mut signals = StopSignals::install();
    tokio::spawn(async move {
        let mut seen = 0;
        while let Some(sig) = signals.next().await {
            seen += 1;
            if seen > 1 {
                std::process::exit(128 + sig);
            }
            STOP_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
            let name = if sig == 15 { "SIGTERM" } else { "Ctrl-C" };
            eprintln!(
                "\ninterrupted ({name}): stopping and writing the reports of what finished (signal again to quit at once)"
            );
            c2.cancel();
        }
    });
    cancel
}

/// The signals that stop a run: Ctrl-C (2) and SIGTERM (15).
struct StopSignals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Install the handlers (a handler that cannot be installed is left out).
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            StopSignals {}
        }
    }

    /// The next signal's number; `None` when no handler is left.
    async fn next(&mut self) -> Option<i32> {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
                match s {
                    Some(s) => s.recv().await,
                    None => None,
                }
            }
            tokio::select! {
                Some(()) = recv(&mut self.int) => Some(2),
                Some(()) = recv(&mut self.term) => Some(15),
                else => None,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|_| 2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_secret_input_reaches_the_redactor() {
        let cli = Cli::try_parse_from([
            "bench",
            "perf",
            "--url",
            "http://u:URLPASS789@127.0.0.1:1/v1",
            "--model",
            "m",
            "--api-key=SECRETKEY123",
            "--header",
            "Authorization: Bearer HDRSECRET456",
        ])
        .unwrap();
        let r = redactor(&cli.command);
        let text = r.scrub("SECRETKEY123 HDRSECRET456 URLPASS789");
        assert_eq!(text, "*** *** ***");
    }

    #[test]
    fn list_shows_modes() {
        let t = list_text();
        assert!(
            t.contains("gsm8k") && t.contains("arc_easy") && t.contains("mode native (default)")
        );
    }
}
