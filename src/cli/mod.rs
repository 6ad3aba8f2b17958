//! Command line (binary side only; the library knows nothing of clap):
//! clap `*Args` structs, converted once into the library's validated
//! configs ([`bench::config::EvalConfig`], [`bench::perf::driver::PerfConfig`],
//! [`bench::compare::CompareConfig`], ...), then dispatched. With `main.rs`,
//! the only place that uses `anyhow`.
//!
//! Everything here names the library as `bench::` and never `crate::`, so
//! the integration tests can include this module tree as it is (to walk
//! clap's command tree and parse flags).

pub mod compare;
pub mod eval;
pub mod perf;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use bench::benchmarks;
use bench::hub::HubConfig;
use bench::range::limits as L;

pub use compare::CompareArgs;
pub use eval::EvalArgs;
pub use perf::PerfArgs;

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
    List(ListArgs),
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
    let cfg = bench::serve::ServeConfig {
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
        // Installed before loading, so a signal during a long load stops it.
        let cancel = cancel_on_signal("finishing the requests in flight");
        let server = tokio::select! {
            r = bench::serve::Server::bind(&cfg) => r.context("bench serve")?,
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
    #[arg(long, value_parser = mode_parser)]
    pub mode: String,
    /// Where to write the re-graded run (default: DIR/rescore-MODE).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Never touch the hub (the dataset files are normally cached already).
    #[arg(long)]
    pub offline: bool,
}

/// `bench list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also list the benchmarks defined in this TOML file, or in every *.toml of this folder
    /// (repeatable; see README "Benchmarks in a file").
    #[arg(long, value_name = "PATH")]
    pub benchmark_file: Vec<PathBuf>,
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
    #[arg(long, value_name = "N", default_value_t = bench::site::DEFAULT_MAX_COMPARISONS, allow_negative_numbers = true, value_parser = L::MAX_COMPARISONS.parser::<usize>())]
    pub max_comparisons: usize,
}

/// `rescore --mode`: a recipe id of the benchmark registry (built at run
/// time, so checked here rather than by a fixed list of values).
fn mode_parser(s: &str) -> Result<String, String> {
    let all = benchmarks::registry().recipe_ids();
    if all.iter().any(|m| m == s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown mode `{s}` (modes: {})", all.join(", ")))
    }
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    // Before anything can fail: `main.rs` scrubs the error it prints with it.
    let redactor = redactor(&cli.command);
    bench::redact::install(&redactor);
    match cli.command {
        Command::List(a) => {
            let registry =
                benchmarks::file::registry_with(&a.benchmark_file).map_err(anyhow::Error::new)?;
            print!("{}", list_text_of(&registry));
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) if a.index => {
            let s = bench::site::write_index_with(&a.dir, a.max_comparisons)?;
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
        Command::Report(a) if bench::perf::summary::is_perf_dir(&a.dir) => {
            let dir = bench::perf::summary::PerfDir {
                root: a.dir.clone(),
            };
            bench::perf::report::write_reports(&dir)?;
            let summary = dir
                .read_summary()
                .with_context(|| format!("reading {}", dir.summary().display()))?;
            print!("{}", bench::perf::report::console_table(&summary));
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
            let data = bench::report::rerender(&a.dir)?;
            print!("{}", bench::report::terminal_table(&data));
            eprintln!("reports written to {}", a.dir.display());
            for w in &data.warnings {
                eprintln!("warning: {w}");
            }
            if bench::report::nothing_measured(&data) {
                eprintln!("error: the run holds no measured item (exit {NOTHING_MEASURED})");
                return Ok(ExitCode::from(NOTHING_MEASURED));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rescore(a) => {
            let mode = a.mode;
            let mut hub = HubConfig::from_env();
            hub.offline |= a.offline;
            let cfg = bench::rescore::RescoreConfig {
                source: a.dir,
                mode,
                output: a.output,
                hub,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let (out, data) = rt.block_on(bench::rescore::rescore(cfg))?;
            print!("{}", bench::report::terminal_table(&data));
            eprintln!("re-graded run written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare(a) => compare::compare(a),
        Command::Serve(a) => serve_command(a),
        Command::Perf(a) => {
            let command = redactor.command(&process_args());
            perf::run(*a, command)
        }
        Command::MockServer(a) => {
            let cfg = bench::mock::MockConfig {
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
            rt.block_on(bench::mock::serve(cfg))
                .context("mock server")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => {
            let command = redactor.command(&process_args());
            let cfg = eval::eval_config(*a, command)?;
            eval::run_eval_command(cfg)
        }
    }
}

/// The text of `bench list` for `registry`.
pub fn list_text_of(registry: &benchmarks::Registry) -> String {
    let mut out = String::new();
    for b in registry.iter() {
        out.push_str(&format!("{:<14} {}\n", b.name, b.summary));
        let src = &b.dataset;
        let subsets: Vec<_> = src.subsets.iter().map(|s| s.name.as_str()).collect();
        // Pinned (a commit sha) or resolved (a branch, looked up once per
        // run and its commit recorded in run.json).
        out.push_str(&format!(
            "{:<14} data: {} ({}) {}\n",
            "",
            src.repo_id,
            subsets.join(", "),
            src.pin_status()
        ));
        if let Some(f) = &b.file {
            out.push_str(&format!(
                "{:<14} file: {} (sha256 {})\n",
                "",
                f.path,
                &f.sha256[..12]
            ));
        }
        for (i, m) in b.recipes.iter().enumerate() {
            out.push_str(&format!(
                "{:<14}   mode {}{}{}: {} [extractors: {}; {}]\n",
                "",
                m.id,
                if i == 0 { " (default)" } else { "" },
                // Loglikelihood recipes score echoed prompt tokens, which
                // not every server returns (README, loglikelihood scoring).
                if m.request.loglikelihood().is_some() {
                    " [needs prompt logprobs]"
                } else {
                    ""
                },
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
fn redactor(command: &Command) -> bench::redact::Redactor {
    let mut r = bench::redact::Redactor::new();
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

/// Exit code of a command that ran but measured nothing: no item selected
/// or answered, or every request failed. The reports are still written.
pub const NOTHING_MEASURED: u8 = 3;

/// `outputs/<prefix><UTC time>-<model>` (the model name made file-safe).
pub fn default_output(prefix: &str, model: &str) -> PathBuf {
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
    cancel_on_signal("stopping and writing the reports of what finished")
}

/// A token cancelled by the first Ctrl-C or SIGTERM, which prints
/// `doing` (what the command does now that it stops); a second signal exits
/// at once. Call inside a tokio runtime.
fn cancel_on_signal(doing: &'static str) -> CancellationToken {
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
            eprintln!("\ninterrupted ({name}): {doing} (signal again to quit at once)");
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
        let t = list_text_of(benchmarks::registry());
        assert!(
            t.contains("gsm8k") && t.contains("arc_easy") && t.contains("mode native (default)")
        );
    }

    #[test]
    fn list_marks_the_recipes_that_need_prompt_logprobs() {
        let registry = benchmarks::registry();
        let t = list_text_of(registry);
        let marked: Vec<&str> = t
            .lines()
            .filter(|l| l.contains("[needs prompt logprobs]"))
            .collect();
        // Exactly the loglikelihood recipes, each on its own mode line.
        let expected: usize = registry
            .iter()
            .map(|b| {
                b.recipes
                    .iter()
                    .filter(|r| r.request.loglikelihood().is_some())
                    .count()
            })
            .sum();
        assert!(expected >= 8, "{expected}");
        assert_eq!(marked.len(), expected, "{t}");
        assert!(t.contains("mode lm-eval-ll [needs prompt logprobs]: lm-eval arc_easy"));
        assert!(t.contains("mode lm-eval-ll (default) [needs prompt logprobs]: lm-eval hellaswag"));
        assert!(
            !t.lines()
                .any(|l| l.contains("mode native") && l.contains("logprobs]"))
        );
    }
}
