//! `bench perf` from configuration to run directory: checks the server,
//! prepares request bodies, runs each level, computes statistics off the hot
//! path, scrapes the server's `/metrics` around each level, and writes
//! `requests.jsonl`, `summary.json` and the reports after every level (so
//! Ctrl-C or a crash loses at most the level in progress).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::record::RecordLevel;
use super::run::{LevelOptions, Load, PreparedRequest, SinkOptions, Stop, run_level};
use super::server_metrics;
use super::stats::{LevelStats, Slo, StatsOptions, vllm_block};
use super::summary::{LevelSummary, PERF_SCHEMA_VERSION, PerfDir, PerfSettings, PerfSummary};
use crate::client::{
    ApiKind, Client, ClientConfig, Message, Prompt, ServerError, resolve_endpoints,
};
use crate::redact::strip_userinfo;
use crate::util::ToolInfo;

/// Most events a response's buffer reserves before the first one arrives
/// (it grows past this as needed).
const MAX_EVENTS_HINT: usize = 1 << 16;

/// Counts tokens of a text (a tokenizer), for servers that send no usage.
pub type TokenCounter = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// One prompt of the workload.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// What to send.
    pub prompt: Prompt,
    /// Its exact token count, when known.
    pub prompt_tokens: Option<u64>,
    /// Per-prompt output length (ShareGPT), overriding `max_tokens`.
    pub output_tokens: Option<u32>,
}

/// Everything `bench perf` needs.
#[derive(Clone)]
pub struct PerfConfig {
    /// Model name.
    pub model: String,
    /// Client settings (URL, key, API kind, stream, timeout, headers).
    pub client: ClientConfig,
    /// The sweep.
    pub levels: Vec<(Load, Stop)>,
    /// Prompts, used in order and cycled.
    pub prompts: Vec<WorkItem>,
    /// How the prompts were made, for the record.
    pub dataset_label: String,
    /// `max_tokens` of every request.
    pub max_tokens: Option<u32>,
    /// `min_tokens` of every request.
    pub min_tokens: Option<u32>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// Extra body keys.
    pub extra: Map<String, Value>,
    /// Warmup requests per level.
    pub warmup: u64,
    /// Seed.
    pub seed: u64,
    /// SLOs for goodput.
    pub slo: Option<Slo>,
    /// Run directory.
    pub output: PathBuf,
    /// Output-token fallback when the server sends no usage.
    pub count_tokens: Option<TokenCounter>,
    /// What `requests.jsonl` keeps of each request.
    pub record: RecordLevel,
    /// Progress bars.
    pub progress: bool,
    /// Print tables to stdout.
    pub print: bool,
    /// Command line (redacted).
    pub command: Vec<String>,
}

impl std::fmt::Debug for PerfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfConfig")
            .field("model", &self.model)
            .field("client", &self.client)
            .field("levels", &self.levels)
            .field("prompts", &self.prompts.len())
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Why a perf run could not run.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// A bad client setting (`--api-url`, a header, the key).
    #[error(transparent)]
    Client(#[from] crate::client::ConfigError),
    /// The server cannot take the run (unreachable, refused the key, does
    /// not serve the model).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Report rendering.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// Ctrl-C or SIGTERM came before any request was sent.
    #[error("interrupted before the run started; nothing was recorded")]
    Interrupted,
    /// The output directory holds another run, or another process has it.
    #[error(transparent)]
    Claim(#[from] crate::rundir::ClaimError),
}

/// The finished (or interrupted) run.
#[derive(Debug)]
pub struct PerfOutput {
    /// Run directory.
    pub dir: PathBuf,
    /// The summary (also `summary.json`).
    pub summary: PerfSummary,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PerfError {
    let path = path.into().display().to_string();
    move |source| PerfError::Io { path, source }
}

/// Serialise each prompt into the body it will be sent as.
fn prepare(cfg: &PerfConfig, client: &Client) -> Result<Vec<PreparedRequest>, PerfError> {
    let ep = client.endpoints();
    let mut params = Map::new();
    if let Some(t) = cfg.temperature {
        params.insert("temperature".into(), json!(t));
    }
    if let Some(m) = cfg.min_tokens {
        params.insert("min_tokens".into(), json!(m));
    }
    params.extend(cfg.extra.clone());
    let raw_target = client.raw_target();
    let chat: Arc<str> = Arc::from(ep.chat.as_str());
    let completions: Arc<str> = Arc::from(ep.completions.as_str());
    cfg.prompts
        .iter()
        .enumerate()
        .map(|(i, item)| {
            // The endpoint follows --api: a text prompt becomes one user
            // message for chat; chat messages cannot go to completions.
            let prompt = match (cfg.client.api, &item.prompt) {
                (ApiKind::Chat, Prompt::Text(t)) => Prompt::Messages(vec![Message { role: "user".into(), content: t.clone() }]),
                (ApiKind::Completions, Prompt::Messages(_)) => {
                    return Err(PerfError::Config(format!(
                        "prompt {i} is a chat conversation, which /v1/completions cannot take; use a chat endpoint"
                    )));
                }
                (_, p) => p.clone(),
            };
            let mut p = params.clone();
            let max = item.output_tokens.or(cfg.max_tokens);
            if let Some(m) = max {
                p.insert("max_tokens".into(), json!(m));
            }
            let body = Value::Object(client.request_body(&cfg.model, &prompt, &p)).to_string();
            let url = if matches!(prompt, Prompt::Messages(_)) { chat.clone() } else { completions.clone() };
            let raw = raw_target.as_ref().and_then(|t| {
                let u = reqwest::Url::parse(&url).ok()?;
                let path = match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                };
                Some(t.request_bytes(&path, body.as_bytes()))
            });
            Ok(PreparedRequest {
                url,
                raw,
                body: body.into(),
                expected_prompt_tokens: item.prompt_tokens,
                // A sizing hint only: capped so a huge max_tokens cannot
                // make each response reserve gigabytes up front.
                expected_events: (max.unwrap_or(256) as usize).min(MAX_EVENTS_HINT) + 4,
            })
        })
        .collect()
}

/// Scrape `/metrics` at the server's origin; `None` when it has none.
async fn scrape(http: &reqwest::Client, url: &Option<String>) -> Option<server_metrics::Sample> {
    let url = url.as_ref()?;
    let resp = http
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let text = resp.text().await.ok()?;
    let s = server_metrics::parse(&text);
    (!s.is_empty()).then_some(s)
}

/// Refuses a workload whose longest prompt plus its output budget exceeds
/// the server's stated context (`max_model_len`): every such request would
/// fail. Prompt counts exclude the chat template, so passing is necessary,
/// not sufficient.
fn check_context(cfg: &PerfConfig, context: u64) -> Result<(), PerfError> {
    let longest = cfg
        .prompts
        .iter()
        .filter_map(|p| {
            let output = p.output_tokens.or(cfg.max_tokens).map_or(0, u64::from);
            Some((p.prompt_tokens? + output, p.prompt_tokens?, output))
        })
        .max();
    match longest {
        Some((total, prompt, output)) if total > context => Err(PerfError::Config(format!(
            "the longest prompt is {prompt} tokens{}, more than the server's max_model_len \
                 {context} for {}: lower --max-prompt-length / --prefix-length (random \
                 prompts){}, or use shorter prompts",
            if output > 0 {
                format!(" + {output} output tokens (--max-tokens) = {total}")
            } else {
                String::new()
            },
            cfg.model,
            if output > 0 { " or --max-tokens" } else { "" }
        ))),
        _ => Ok(()),
    }
}

/// Run the sweep.
pub async fn run_perf(cfg: PerfConfig, cancel: CancellationToken) -> Result<PerfOutput, PerfError> {
    if cfg.prompts.is_empty() {
        return Err(PerfError::Config("the dataset produced no prompts".into()));
    }
    if cfg.levels.is_empty() {
        return Err(PerfError::Config(
            "no levels: give --parallel or --rate".into(),
        ));
    }
    // Before any network work: a perf run never replaces another run, and
    // the lock keeps a second process out while this one writes.
    let (_lock, _) = crate::rundir::claim(&cfg.output, crate::rundir::Intent::Perf)?;
    let endpoints = resolve_endpoints(&cfg.client.api_url)?;
    let client = Client::new(cfg.client.clone())?;
    let models = tokio::select! {
        r = client.served_models() => r,
        _ = cancel.cancelled() => return Err(PerfError::Interrupted),
    };
    let served_models = models.map_err(|source| {
        ServerError::from_models(
            source,
            strip_userinfo(&endpoints.models),
            "--url",
            cfg.client.api_key.is_some(),
            true,
        )
    })?;
    let served: Vec<String> = served_models.iter().map(|m| m.id.clone()).collect();
    if let Some(context) = served_models
        .iter()
        .find(|m| m.id == cfg.model)
        .and_then(|m| m.max_model_len)
    {
        check_context(&cfg, context)?;
    }
    if !served.contains(&cfg.model) {
        return Err(ServerError::UnknownModel {
            model: cfg.model.clone(),
            url: strip_userinfo(&endpoints.base),
            served,
        }
        .into());
    }
    let requests = prepare(&cfg, &client)?;
    let dir = PerfDir {
        root: cfg.output.clone(),
    };
    // `claim` made the directory and checked it holds no run, so there are
    // no earlier records to mix with ours.

    let origin = endpoints
        .base
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_string();
    // No key or --header goes to /metrics (not an endpoint the user named),
    // and no redirect is followed; a plain-HTTP origin needs no root
    // certificates (loading them costs ~10 ms of a short run).
    let metrics_http = {
        let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let b = if origin.starts_with("http://") {
            b.tls_certs_only([])
        } else {
            b
        };
        b.build().unwrap_or_default()
    };
    let metrics_url = Some(format!("{origin}/metrics"));
    let metrics_url = if scrape(&metrics_http, &metrics_url).await.is_some() {
        metrics_url
    } else {
        None
    };

    let ignore_eos = cfg
        .extra
        .get("ignore_eos")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let expected_min_output = if ignore_eos {
        cfg.max_tokens.or(cfg.min_tokens)
    } else {
        cfg.min_tokens
    }
    .map(u64::from);
    let mut summary = PerfSummary {
        schema_version: PERF_SCHEMA_VERSION,
        kind: "perf".into(),
        tool: ToolInfo::current(),
        created_at: crate::util::now_rfc3339(),
        status: "running".into(),
        settings: PerfSettings {
            model: cfg.model.clone(),
            // Recorded and shown: credentials in the URL stay out.
            url: strip_userinfo(&requests[0].url),
            api: cfg.client.api.as_str().into(),
            stream: cfg.client.stream,
            dataset: cfg.dataset_label.clone(),
            max_tokens: cfg.max_tokens,
            min_tokens: cfg.min_tokens,
            extra_args: cfg.extra.clone(),
            warmup: cfg.warmup,
            seed: cfg.seed,
            slo: cfg.slo.as_ref().map(|s| s.to_string()),
            headers: cfg.client.headers.iter().map(|(k, _)| k.clone()).collect(),
            record: cfg.record,
        },
        served_models: served,
        levels: vec![],
        command: cfg.command.clone(),
    };
    dir.write_summary(&summary).map_err(io_err(dir.summary()))?;
    if cfg.record != RecordLevel::None {
        // Found out now, not after the first level has run.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.requests())
            .map_err(io_err(dir.requests()))?;
    }

    let mut interrupted = false;
    for (i, (load, stop)) in cfg.levels.iter().enumerate() {
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        let bar = progress_bar(cfg.progress, &load.label(), *stop);
        let before = match &metrics_url {
            Some(_) => scrape(&metrics_http, &metrics_url).await,
            None => None,
        };
        let opts = LevelOptions {
            level: i,
            load: *load,
            stop: *stop,
            warmup: cfg.warmup,
            seed: cfg.seed.wrapping_add(i as u64),
            keep_text: cfg.count_tokens.is_some(),
        };
        let max_concurrency = match load {
            Load::Concurrency { concurrency } => Some(*concurrency as u64),
            Load::Rate {
                max_concurrency, ..
            } => max_concurrency.map(|m| m as u64),
        };
        let sink = SinkOptions {
            path: (cfg.record != RecordLevel::None).then(|| dir.requests()),
            record: cfg.record,
            stats: StatsOptions {
                slo: cfg.slo,
                expected_min_output,
                max_concurrency,
            },
            count_tokens: cfg.count_tokens.clone(),
        };
        let run = run_level(&client, requests.clone(), &opts, sink, &cancel, &bar).await;
        bar.finish_and_clear();
        let after = match &metrics_url {
            Some(_) => scrape(&metrics_http, &metrics_url).await,
            None => None,
        };
        let stats = run.stats;
        let mut vllm = vllm_block(&stats);
        if let Load::Rate {
            rate, burstiness, ..
        } = load
        {
            vllm.insert("request_rate".into(), json!(rate));
            vllm.insert("burstiness".into(), json!(burstiness));
        }
        let warnings = warnings_for(load, &stats, &run.health, ignore_eos);
        summary.levels.push(LevelSummary {
            index: i,
            load: *load,
            stop: *stop,
            label: load.label(),
            stats,
            cdf: Some(run.cdfs),
            vllm,
            client: run.health,
            server: match (before, after) {
                (Some(b), Some(a)) => Some(server_metrics::delta(&b, &a)),
                _ => None,
            },
            warnings,
        });
        dir.write_summary(&summary).map_err(io_err(dir.summary()))?;
        if let Some(e) = run.write_error {
            // The level's statistics are kept (summary and reports); the
            // records stop where the write failed.
            summary.status = "failed".into();
            dir.write_summary(&summary).map_err(io_err(dir.summary()))?;
            super::report::write_reports(&dir)?;
            return Err(io_err(dir.requests())(e));
        }
        super::report::write_reports(&dir)?;
        if cfg.print {
            let last = summary.levels.last().expect("just pushed");
            println!("{}", super::report::level_line(last));
            for w in &last.warnings {
                eprintln!("warning [{}]: {w}", last.label);
            }
        }
        if run.interrupted {
            interrupted = true;
            break;
        }
    }
    summary.status = if interrupted {
        "interrupted"
    } else {
        "complete"
    }
    .into();
    dir.write_summary(&summary).map_err(io_err(dir.summary()))?;
    super::report::write_reports(&dir)?;
    Ok(PerfOutput {
        dir: cfg.output.clone(),
        summary,
        interrupted,
    })
}

fn progress_bar(enabled: bool, label: &str, stop: Stop) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match stop {
        Stop::Count(n) => indicatif::ProgressBar::new(n),
        Stop::Duration(_) => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>18} [{bar:30}] {pos}/{len} {per_sec:>12} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// What the reader must be told about a level.
fn warnings_for(
    load: &Load,
    s: &LevelStats,
    h: &super::run::ClientHealth,
    ignore_eos: bool,
) -> Vec<String> {
    let mut w = Vec::new();
    let workers = h.cores.max(1) as f64;
    if h.cpu_cores_used >= 0.9 * workers {
        w.push(format!(
            "CLIENT SATURATED: bench used {:.2} of {} CPU core(s) during this level; the numbers may describe the client, not the server (run the client on more cores or lower the load)",
            h.cpu_cores_used, h.cores
        ));
    }
    if h.sink_stalls > 0 {
        w.push(format!(
            "the record writer fell behind {} time(s): finished requests waited for it, so the load was lower than asked meanwhile (record less with --record requests or none)",
            h.sink_stalls
        ));
    }
    if let Some(p99) = h.dispatch_lag_p99_ms
        && p99 > 1.0
    {
        w.push(format!("dispatch lag p99 {p99:.2} ms: arrivals left late (client busy); queue time and TTFT include it"));
    }
    if let (Load::Rate { rate, .. }, Some(achieved)) = (load, h.achieved_rate)
        && (achieved / rate - 1.0).abs() > 0.05
        && s.total > 50
    {
        w.push(format!(
            "achieved arrival rate {achieved:.2}/s differs from the target {rate}/s by more than 5%"
        ));
    }
    if s.failed > 0 {
        let kinds: Vec<String> = s
            .errors
            .iter()
            .map(|(k, g)| format!("{k} x{}: {}", g.count, g.example))
            .collect();
        w.push(format!(
            "{} of {} requests failed ({})",
            s.failed,
            s.total,
            kinds.join("; ")
        ));
    }
    if let Some(v) = s.min_tokens_violations.filter(|v| *v > 0) {
        let why = if ignore_eos {
            " although ignore_eos was asked"
        } else {
            ""
        };
        w.push(format!(
            "{v} response(s) stopped before {} output tokens{why}: throughput per request is not what was asked",
            s.expected_min_output.unwrap_or(0)
        ));
    }
    if s.succeeded > 0 && s.output_token_source.usage < s.succeeded {
        w.push(format!(
            "{} response(s) carried no usage: their output tokens were counted {}",
            s.succeeded - s.output_token_source.usage,
            if s.output_token_source.tokenizer > 0 {
                "with the tokenizer on the whole text"
            } else {
                "as token-bearing chunks (approximate; give --tokenizer-path)"
            }
        ));
    }
    w
}
