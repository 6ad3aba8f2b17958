//! `bench perf` flags -> [`PerfConfig`], then the run. Every check names
//! the flag at fault; `--parallel` and `--number` pair up like EvalScope's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

use bench::client::{ApiKind, ClientConfig, resolve_endpoints};
use bench::perf::driver::{PerfConfig, run_perf};
use bench::perf::prompts::{PerfDataset, WorkloadOptions};
use bench::perf::record::RecordLevel;
use bench::perf::run::{Load, Stop};
use bench::perf::stats::Slo;
use bench::range::limits as L;

/// Parse `10`, `10s`, `2m`, `500ms`, `1h` (a bare number is seconds), from
/// 1 ms to 7 days ([`L::DURATION_S`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    // The unit is a known suffix ("ms" before "s"), so `1e300s` reads as
    // 1e300 seconds (then refused by the range) rather than as unit `e300s`.
    let (num, unit) = ["ms", "s", "m", "h"]
        .iter()
        .find_map(|&u| t.strip_suffix(u).map(|n| (n, u)))
        .unwrap_or((t, "s"));
    let v: f64 = num.trim().parse().map_err(|_| {
        match t.find(|c: char| c.is_ascii_alphabetic() && !"eE".contains(c)) {
            Some(i) if num == t => format!(
                "--duration `{s}`: unknown unit `{}` (use ms, s, m or h)",
                &t[i..]
            ),
            _ => format!("--duration `{s}`: expected e.g. 30, 30s, 2m or 500ms"),
        }
    })?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => v,
    };
    let secs = L::DURATION_S
        .check(secs)
        .map_err(|_| format!("--duration: {}", L::DURATION_S.message(s)))?;
    Ok(Duration::from_secs_f64(secs))
}

/// `r` with its error prefixed by `--name: `.
fn flag<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("--{name}: {e}"))
}

/// The levels of the sweep from --parallel / --rate / --number / --duration.
pub fn levels(a: &PerfArgs) -> Result<Vec<(Load, Stop)>, String> {
    if !a.parallel.is_empty() && !a.rate.is_empty() {
        return Err("--parallel and --rate are alternatives: give one (use --max-concurrency to cap a rate)".into());
    }
    let duration = a.duration.as_deref().map(parse_duration).transpose()?;
    if duration.is_some() && !a.number.is_empty() {
        return Err("--duration and --number are alternatives: give one".into());
    }
    // Parsing checked each number's range; checked again here for configs
    // built without clap, since these values size schedules and pools.
    for &r in &a.rate {
        flag("rate", L::RATE.check(r))?;
    }
    for &c in &a.parallel {
        flag("parallel", L::CONCURRENCY.check(c as u64))?;
    }
    if let Some(c) = a.max_concurrency {
        flag("max-concurrency", L::CONCURRENCY.check(c as u64))?;
    }
    for &n in &a.number {
        flag("number", L::REQUESTS.check(n))?;
    }
    flag("warmup", L::WARMUP.check(a.warmup))?;
    let loads: Vec<Load> = if !a.rate.is_empty() {
        flag("burstiness", L::BURSTINESS.check(a.burstiness))?;
        // A level schedules rate × duration arrivals up front.
        if let Some(d) = duration
            && let Some(r) = a
                .rate
                .iter()
                .find(|r| **r * d.as_secs_f64() > L::REQUESTS.max as f64)
        {
            return Err(format!(
                "--rate {r} with --duration {}: {} arrivals in one level, more than the {} \
                 a level may schedule; shorten --duration or lower --rate",
                a.duration.as_deref().unwrap_or_default(),
                (r * d.as_secs_f64()).round(),
                L::REQUESTS.max
            ));
        }
        a.rate
            .iter()
            .map(|&rate| Load::Rate {
                rate,
                burstiness: a.burstiness,
                max_concurrency: a.max_concurrency,
            })
            .collect()
    } else {
        let parallel = if a.parallel.is_empty() {
            vec![1]
        } else {
            a.parallel.clone()
        };
        if parallel.contains(&0) {
            return Err("--parallel values must be at least 1".into());
        }
        if a.max_concurrency.is_some() {
            return Err(
                "--max-concurrency applies to --rate; with --parallel the level is the concurrency"
                    .into(),
            );
        }
        parallel
            .into_iter()
            .map(|concurrency| Load::Concurrency { concurrency })
            .collect()
    };
    let stops: Vec<Stop> = match (duration, a.number.len()) {
        (Some(d), _) => vec![Stop::Duration(d); loads.len()],
        (None, 0) => loads
            .iter()
            .map(|l| match l {
                // EvalScope's default of 1000 requests would take long on a
                // slow server; this keeps a first run short.
                Load::Concurrency { concurrency } => {
                    Stop::Count((*concurrency as u64 * 10).max(10))
                }
                Load::Rate { rate, .. } => Stop::Count((rate * 10.0).ceil().max(10.0) as u64),
            })
            .collect(),
        (None, 1) => vec![Stop::Count(a.number[0]); loads.len()],
        (None, n) if n == loads.len() => a.number.iter().map(|&n| Stop::Count(n)).collect(),
        (None, n) => {
            return Err(format!(
                "--number has {n} values but there are {} levels (--{}); give one value or one per level",
                loads.len(),
                if a.rate.is_empty() {
                    "parallel"
                } else {
                    "rate"
                }
            ));
        }
    };
    if stops.contains(&Stop::Count(0)) {
        return Err("--number values must be at least 1".into());
    }
    Ok(loads.into_iter().zip(stops).collect())
}

/// `Name: value` headers.
fn headers(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    raw.iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| format!("--header `{h}`: expected `Name: value`"))?;
            if k.trim().is_empty() {
                return Err(format!("--header `{h}`: empty name"));
            }
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Validate flags into a config (the prompts are built here too).
pub fn config(a: PerfArgs, command: Vec<String>) -> Result<PerfConfig> {
    let levels = levels(&a).map_err(anyhow::Error::msg)?;
    let endpoints = resolve_endpoints(&a.url).map_err(anyhow::Error::new)?;
    let api = match (a.api, endpoints.named) {
        (PerfApi::Openai, named) => named.unwrap_or(ApiKind::Chat),
        (PerfApi::Chat, Some(ApiKind::Completions))
        | (PerfApi::Completions, Some(ApiKind::Chat)) => {
            bail!(
                "--api {} contradicts --url {}, which names the other endpoint",
                a.api.name(),
                bench::redact::url_for_message(&a.url)
            )
        }
        (PerfApi::Chat, _) => ApiKind::Chat,
        (PerfApi::Completions, _) => ApiKind::Completions,
    };
    let timeout = L::TIMEOUT_S
        .check(a.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let mut client = ClientConfig::new(&a.url);
    client.api_key = a.api_key.clone().filter(|k| !k.is_empty());
    client.api = api;
    client.timeout = Duration::from_secs_f64(timeout);
    client.stream = !a.no_stream;
    client.headers = headers(&a.headers).map_err(anyhow::Error::msg)?;
    let extra: Map<String, Value> = match &a.extra_args {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text).context("--extra-args is not valid JSON")? {
            Value::Object(m) => m,
            _ => bail!("--extra-args must be a JSON object, e.g. '{{\"ignore_eos\": true}}'"),
        },
    };
    // `stream_options` may be given (e.g. vLLM's continuous_usage_stats);
    // `include_usage` is always added to it.
    for k in ["model", "messages", "prompt", "stream"] {
        if extra.contains_key(k) {
            bail!("--extra-args: `{k}` is set by bench");
        }
    }
    let slo = a
        .slo
        .as_deref()
        .map(Slo::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let (Some(min), Some(max)) = (a.min_tokens, a.max_tokens)
        && min > max
    {
        bail!("--min-tokens {min} is larger than --max-tokens {max}");
    }
    let mut hub = bench::hub::HubConfig::from_env();
    hub.offline |= a.offline;
    let max_requests = levels
        .iter()
        .map(|(_, s)| match s {
            Stop::Count(n) => *n as usize,
            Stop::Duration(_) => 1000,
        })
        .max()
        .unwrap_or(1);
    let options = a.workload_options();
    let workload = bench::perf::prompts::workload(&options, &hub, max_requests)?;
    if let Some(note) = &workload.note {
        eprintln!("note: {note}");
    }
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| super::default_output("perf-", &a.model));
    Ok(PerfConfig {
        model: a.model,
        client,
        levels,
        prompts: workload.items,
        dataset_label: workload.label,
        max_tokens: a.max_tokens,
        min_tokens: a.min_tokens,
        temperature: a.temperature,
        extra,
        warmup: a.warmup,
        seed: a.seed,
        slo,
        output,
        count_tokens: workload.counter.map(|c| c as Arc<_>),
        record: a.record.into(),
        progress: !a.no_progress,
        print: true,
        command,
    })
}

/// `bench perf`.
pub fn run(a: PerfArgs, command: Vec<String>) -> Result<ExitCode> {
    // On one core a single-threaded runtime does the same work without the
    // work-stealing machinery (oha's fast path is one such runtime per core).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = if cores <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    let cfg = config(a, command)?;
    rt.block_on(async move {
        let cancel = super::cancel_on_ctrl_c();
        let out = match run_perf(cfg, cancel).await {
            Err(bench::perf::driver::PerfError::Interrupted) => {
                eprintln!("interrupted before the run started; nothing was recorded");
                return Ok(super::interrupted_exit_code());
            }
            r => r?,
        };
        println!("\n{}", bench::perf::report::console_table(&out.summary));
        eprintln!(
            "run directory: {} (summary.json, requests.jsonl, report.md, report.html)",
            out.dir.display()
        );
        let sent: u64 = out
            .summary
            .levels
            .iter()
            .map(|l| l.stats.succeeded + l.stats.failed)
            .sum();
        let ok: u64 = out.summary.levels.iter().map(|l| l.stats.succeeded).sum();
        Ok(if out.interrupted {
            super::interrupted_exit_code()
        } else if ok == 0 {
            eprintln!(
                "error: nothing was measured: {} of {sent} request(s) succeeded (see the errors above and in requests.jsonl; exit {})",
                ok,
                super::NOTHING_MEASURED
            );
            ExitCode::from(super::NOTHING_MEASURED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1").is_err());
        for bad in ["0", "1e300s", "1e300", "NaN", "inf", "8d", "169h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.starts_with("--duration"), "{e}");
        }
        assert!(parse_duration("7d").unwrap_err().contains("unknown unit"));
        assert_eq!(
            parse_duration("168h").unwrap(),
            Duration::from_secs(604_800)
        );
    }

    #[test]
    fn header_parsing() {
        assert_eq!(
            headers(&["X-A: b c".into()]).unwrap(),
            vec![("X-A".into(), "b c".into())]
        );
        assert!(
            headers(&["nocolon".into()])
                .unwrap_err()
                .contains("--header")
        );
    }
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
    #[arg(long, value_enum, default_value_t = PerfApi::Openai)]
    pub api: PerfApi,
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
    #[arg(long, default_value = "random", value_parser = dataset_parser())]
    pub dataset: PerfDataset,
    /// File for line_by_line / openqa / custom / sharegpt.
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
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
    #[arg(long, value_enum, default_value_t = RecordArg::Requests)]
    pub record: RecordArg,
    /// Never touch the hub (tokenizer from the cache only).
    #[arg(long)]
    pub offline: bool,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

impl PerfArgs {
    /// The prompt options (`--dataset` and the flags that go with it).
    pub fn workload_options(&self) -> WorkloadOptions {
        WorkloadOptions {
            dataset: self.dataset,
            dataset_path: self.dataset_path.clone(),
            tokenizer_path: self.tokenizer_path.clone(),
            min_prompt_length: self.min_prompt_length,
            max_prompt_length: self.max_prompt_length,
            prefix_length: self.prefix_length,
            seed: self.seed,
        }
    }
}

/// `bench perf --api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PerfApi {
    /// The endpoint the URL names; chat for a base URL.
    Openai,
    /// Chat completions.
    Chat,
    /// Plain completions.
    Completions,
}

impl PerfApi {
    /// The value as on the command line.
    fn name(self) -> &'static str {
        match self {
            PerfApi::Openai => "openai",
            PerfApi::Chat => "chat",
            PerfApi::Completions => "completions",
        }
    }
}

/// `--record`: the command line's spelling of [`RecordLevel`] (the library
/// knows nothing of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordArg {
    /// One line per request with every SSE event's arrival time and kind
    /// (about 25 bytes per event).
    Events,
    /// One line per request: times (send, headers, first and last token,
    /// end), token counts, status and error; no events.
    Requests,
    /// No `requests.jsonl`: the summary and reports only.
    None,
}

impl From<RecordArg> for RecordLevel {
    fn from(r: RecordArg) -> Self {
        match r {
            RecordArg::Events => RecordLevel::Events,
            RecordArg::Requests => RecordLevel::Requests,
            RecordArg::None => RecordLevel::None,
        }
    }
}

/// `--dataset`: one of [`PerfDataset::ALL`] (the alternative spellings
/// accepted but not listed), so a typo is a usage error naming the choices.
fn dataset_parser() -> impl TypedValueParser<Value = PerfDataset> {
    PossibleValuesParser::new(
        PerfDataset::ALL
            .iter()
            .map(|d| PossibleValue::new(d.name()).hide(!d.listed())),
    )
    .try_map(|name| {
        PerfDataset::from_name(&name).ok_or_else(|| format!("unknown dataset `{name}`"))
    })
}
