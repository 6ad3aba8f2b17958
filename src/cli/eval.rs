//! `bench eval` flags -> [`EvalConfig`], then the run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

use bench::benchmarks::file::registry_with;
use bench::client::{ApiKind, ClientConfig};
use bench::config::{EvalConfig, Limit, plan_benchmarks_with};
use bench::hub::HubConfig;
use bench::range::limits as L;

use super::{NOTHING_MEASURED, cancel_on_ctrl_c, default_output, interrupted_exit_code};

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
    pub api: Option<ApiArg>,
    /// Define benchmarks from a TOML file, or from every *.toml of a folder (repeatable); they
    /// join the built-in ones for --datasets (see README "Benchmarks in a file").
    #[arg(long, value_name = "PATH")]
    pub benchmark_file: Vec<PathBuf>,
    /// Benchmarks to run (see `bench list`).
    #[arg(long, num_args = 1.., required = true)]
    pub datasets: Vec<String>,
    /// Items per subset: a count (5) or a fraction of the split (0.1, rounded down).
    #[arg(long)]
    pub limit: Option<String>,
    /// Per-benchmark options as JSON: {"gsm8k": {"mode": "native", "few_shot": 0, "subsets": [...],
    /// "repeats": 8}}.
    #[arg(long)]
    pub dataset_args: Option<String>,
    /// Samples per item (1 to 10000; default 1): each item is asked N times, the report gives the
    /// mean accuracy, its spread over repeats and pass@k. With a seed, repeat r sends seed + r.
    /// Also `--generation-config '{"n": N}'`, or per benchmark `--dataset-args '{"aime24": {"repeats": N}}'`.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = L::REPEATS.parser::<usize>())]
    pub repeats: Option<usize>,
    /// Generation parameters as JSON, sent with every request (temperature, max_tokens, top_p,
    /// seed, stop, ...). The keys timeout (s), retries and stream set the client instead; n sets
    /// --repeats (never sent); extra_body is merged into the request.
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
    /// Loglikelihood modes over a server: tokenize context and continuation
    /// with this tokenizer and send token ids, as lm-eval does (a
    /// tokenizer.json, a directory holding one, or a hub model id
    /// owner/name[@revision]). Without it the text is sent and the
    /// continuation is found by the server's text_offset.
    #[arg(long)]
    pub tokenizer_path: Option<String>,
}

/// Validate `bench eval` flags into an [`EvalConfig`].
pub fn eval_config(a: EvalArgs, command: Vec<String>) -> Result<EvalConfig> {
    let registry = registry_with(&a.benchmark_file).map_err(anyhow::Error::new)?;
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
        a.api.map_or(ApiKind::Chat, ApiKind::from)
    } else {
        let endpoints = bench::client::resolve_endpoints(&api_url).map_err(anyhow::Error::new)?;
        match (a.api.map(ApiKind::from), endpoints.named) {
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
    // `n` (EvalScope's and the OpenAI API's spelling) means repeats: bench
    // asks one completion per request and sends each repeat on its own.
    let mut gen_n: Option<usize> = None;
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
                "n" => {
                    let n = L::REPEATS
                        .json("--generation-config n", &v)
                        .map_err(anyhow::Error::msg)?;
                    // REPEATS.max fits any usize.
                    gen_n = Some(usize::try_from(n).unwrap_or(usize::MAX));
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

    let repeats = match (a.repeats, gen_n) {
        (Some(r), Some(n)) if r != n => bail!(
            "--repeats {r} contradicts --generation-config n {n} (both set the samples per item); give one of them"
        ),
        (r, n) => r.or(n).unwrap_or(1),
    };
    let benchmarks =
        plan_benchmarks_with(&registry, &a.datasets, a.dataset_args.as_deref(), repeats)
            .map_err(anyhow::Error::msg)?;

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
        tokenizer: a.tokenizer_path,
    })
}

pub fn run_eval_command(cfg: EvalConfig) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let cancel = cancel_on_ctrl_c();
        let print = cfg.print_table;
        let out = match bench::eval::run_eval(cfg, cancel).await {
            Err(bench::eval::EvalError::Interrupted) => {
                eprintln!("interrupted before the run started; nothing was recorded");
                return Ok(interrupted_exit_code());
            }
            r => r?,
        };
        if print {
            print!("{}", bench::report::terminal_table(&out.report));
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
        } else if bench::report::nothing_measured(&out.report) {
            eprintln!("error: nothing was measured (exit {NOTHING_MEASURED})");
            ExitCode::from(NOTHING_MEASURED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// `bench eval --api`: the command line's spelling of [`ApiKind`] (the
/// library knows nothing of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// `POST {base}/chat/completions` with `messages`.
    Chat,
    /// `POST {base}/completions` with a plain-text `prompt`.
    Completions,
}

impl From<ApiArg> for ApiKind {
    fn from(a: ApiArg) -> Self {
        match a {
            ApiArg::Chat => ApiKind::Chat,
            ApiArg::Completions => ApiKind::Completions,
        }
    }
}
