//! The server's own view: Prometheus `/metrics` scraped before and after a
//! level (llama.cpp's `llama-server --metrics`, vLLM, SGLang), reported as
//! deltas beside the client's numbers.
//!
//! Owns parsing the text exposition format (enough of it: `name{labels}
//! value` samples; label sets of one name are summed) and deriving the few
//! figures that compare with ours.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metric name -> value, label sets summed.
pub type Sample = BTreeMap<String, f64>;

/// Parse Prometheus text format.
pub fn parse(text: &str) -> Sample {
    let mut out = Sample::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // name[{labels}] value [timestamp]
        let (name, rest) = match line.find('{') {
            Some(i) => match line[i..].find('}') {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, r),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if value.is_finite() {
            *out.entry(name.to_string()).or_default() += value;
        }
    }
    out
}

/// What changed on the server during a level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerDelta {
    /// `after − before` for every counter-like metric (`*_total`, `*_sum`,
    /// `*_count`, `*_bucket` excluded).
    pub deltas: BTreeMap<String, f64>,
    /// Derived figures, named for the report.
    pub derived: BTreeMap<String, f64>,
}

/// Deltas and derived figures between two scrapes.
pub fn delta(before: &Sample, after: &Sample) -> ServerDelta {
    let mut d = ServerDelta::default();
    for (k, a) in after {
        if k.ends_with("_bucket") {
            continue;
        }
        if k.ends_with("_total") || k.ends_with("_sum") || k.ends_with("_count") {
            d.deltas
                .insert(k.clone(), a - before.get(k).copied().unwrap_or(0.0));
        }
    }
    let g = |k: &str| d.deltas.get(k).copied();
    let mut derived = BTreeMap::new();
    // llama.cpp's llama-server.
    if let (Some(t), Some(s)) = (
        g("llamacpp:tokens_predicted_total"),
        g("llamacpp:tokens_predicted_seconds_total"),
    ) {
        derived.insert("llamacpp generated tokens".into(), t);
        if s > 0.0 {
            derived.insert(
                "llamacpp decode tokens/s (per slot busy time)".into(),
                t / s,
            );
        }
    }
    if let (Some(t), Some(s)) = (
        g("llamacpp:prompt_tokens_total"),
        g("llamacpp:prompt_seconds_total"),
    ) {
        derived.insert("llamacpp prompt tokens".into(), t);
        if s > 0.0 {
            derived.insert("llamacpp prompt tokens/s".into(), t / s);
        }
    }
    if let Some(n) = g("llamacpp:n_decode_total") {
        derived.insert("llamacpp decode calls".into(), n);
    }
    // vLLM (and SGLang, which uses `sglang:` with similar names).
    for prefix in ["vllm", "sglang"] {
        let mean = |name: &str| match (
            g(&format!("{prefix}:{name}_sum")),
            g(&format!("{prefix}:{name}_count")),
        ) {
            (Some(s), Some(c)) if c > 0.0 => Some(s / c * 1000.0),
            _ => None,
        };
        for (name, label) in [
            ("time_to_first_token_seconds", "mean TTFT ms (server)"),
            ("e2e_request_latency_seconds", "mean E2E ms (server)"),
            ("request_queue_time_seconds", "mean queue ms (server)"),
            ("time_per_output_token_seconds", "mean TPOT ms (server)"),
            ("inter_token_latency_seconds", "mean ITL ms (server)"),
        ] {
            if let Some(v) = mean(name) {
                derived.insert(format!("{prefix} {label}"), v);
            }
        }
        if let Some(t) = g(&format!("{prefix}:generation_tokens_total")) {
            derived.insert(format!("{prefix} generated tokens"), t);
        }
    }
    d.derived = derived;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_diffs_llama_server_metrics() {
        let before = parse(
            "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 100\nllamacpp:tokens_predicted_total 1000\nllamacpp:tokens_predicted_seconds_total 1.0\nllamacpp:requests_processing 0\n",
        );
        let after = parse(
            "llamacpp:prompt_tokens_total 300\nllamacpp:tokens_predicted_total 3000\nllamacpp:tokens_predicted_seconds_total 2.0\nllamacpp:requests_processing 2\nvllm:time_to_first_token_seconds_sum{model_name=\"m\"} 0.5\nvllm:time_to_first_token_seconds_count{model_name=\"m\"} 10\nvllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 3\n",
        );
        let d = delta(&before, &after);
        assert_eq!(d.deltas["llamacpp:tokens_predicted_total"], 2000.0);
        assert_eq!(
            d.derived["llamacpp decode tokens/s (per slot busy time)"],
            2000.0
        );
        assert_eq!(d.derived["vllm mean TTFT ms (server)"], 50.0);
        assert!(
            !d.deltas.contains_key("llamacpp:requests_processing"),
            "gauges are not diffed"
        );
        assert!(!d.deltas.keys().any(|k| k.ends_with("_bucket")));
    }
}
