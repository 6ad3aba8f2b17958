//! `bench perf` flags -> [`super::driver::PerfConfig`], then the
//! run. Every check names the flag at fault; `--parallel` and `--number`
//! pair up like EvalScope's.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::driver::{PerfConfig, run_perf};
use super::run::{Load, Stop};
use super::stats::Slo;
use crate::cli::PerfArgs;
use crate::client::{ApiKind, ClientConfig, resolve_endpoints};
use crate::range::limits as L;

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
    let api = match (a.api.as_str(), endpoints.named) {
        ("openai", named) => named.unwrap_or(ApiKind::Chat),
        ("chat", Some(ApiKind::Completions)) | ("completions", Some(ApiKind::Chat)) => {
            bail!(
                "--api {} contradicts --url {}, which names the other endpoint",
                a.api,
                crate::redact::url_for_message(&a.url)
            )
        }
        ("chat", _) => ApiKind::Chat,
        ("completions", _) => ApiKind::Completions,
        (other, _) => bail!("--api `{other}`: expected openai, chat or completions"),
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
    let mut hub = crate::hub::HubConfig::from_env();
    hub.offline |= a.offline;
    let max_requests = levels
        .iter()
        .map(|(_, s)| match s {
            Stop::Count(n) => *n as usize,
            Stop::Duration(_) => 1000,
        })
        .max()
        .unwrap_or(1);
    let workload = super::prompts::workload(&a, &hub, max_requests)?;
    if let Some(note) = &workload.note {
        eprintln!("note: {note}");
    }
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| crate::cli::default_output("perf-", &a.model));
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
        record: a.record,
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
        let cancel = crate::cli::cancel_on_ctrl_c();
        let out = match run_perf(cfg, cancel).await {
            Err(super::driver::PerfError::Interrupted) => {
                eprintln!("interrupted before the run started; nothing was recorded");
                return Ok(crate::cli::interrupted_exit_code());
            }
            r => r?,
        };
        println!("\n{}", super::report::console_table(&out.summary));
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
            crate::cli::interrupted_exit_code()
        } else if ok == 0 {
            eprintln!(
                "error: nothing was measured: {} of {sent} request(s) succeeded (see the errors above and in requests.jsonl; exit {})",
                ok,
                crate::cli::NOTHING_MEASURED
            );
            ExitCode::from(crate::cli::NOTHING_MEASURED)
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
