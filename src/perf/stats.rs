//! Perf statistics: every latency and throughput number `bench perf`
//! reports, computed off the hot path from the [`RequestRecord`]s of one
//! level. Warmup records are excluded.
//!
//! # Conventions
//!
//! - Timestamps come from a monotonic clock and are taken when bytes are read
//!   from the socket. Latencies are reported in **milliseconds**.
//! - **send** is when the request was written; **scheduled** is when an
//!   open-loop (`--rate`) arrival was due.
//! - A **token-bearing event** is a streamed (SSE) event that carries at
//!   least one generated token: reasoning or answer text (tool-call deltas
//!   count as answer). Role-only chunks, empty or finish-only chunks and the
//!   usage-only chunk carry no token and never count as one.
//! - **n**, the output tokens of a request, comes from the server's
//!   `usage.completion_tokens`; without it, from a client tokenizer run on
//!   the whole generated text; without that, from the number of token-bearing
//!   events. It is never counted per chunk.
//! - Only **successful** requests contribute to latency, token and throughput
//!   metrics. Failed requests count only in `failed` and `errors`, and in the
//!   measurement window (they occupied it).
//!
//! # Per-request metrics
//!
//! | metric | definition |
//! | --- | --- |
//! | TTFT | first token-bearing event − send. Reasoning tokens count, and role-only chunks do not. Streamed requests only. |
//! | E2EL | streamed: last token-bearing event − send. The trailing usage chunk and the stream close are excluded, as in vLLM. Non-streamed: body complete − send. |
//! | TPOT | (E2EL − TTFT) / (n − 1) when n ≥ 2, so the first token is excluded. A single-token response has TTFT and E2EL but no TPOT. |
//! | decode rate | 1000 / TPOT: the tokens per second one user sees while the answer streams. Requests with TPOT = 0 (everything arrived in one chunk) are left out. |
//! | queue time | send − scheduled: how late the client sent an open-loop arrival (dispatch lag plus any `--max-concurrency` wait). Open-loop runs only. |
//! | TTFT queued | first token − scheduled: the TTFT the arriving user experienced. Client-side queueing cannot hide in it, so coordinated omission does not shrink it. Open-loop runs only. |
//! | E2EL queued | last token − scheduled (open-loop, streamed); body complete − scheduled (non-streamed). |
//! | output tokens | n, as defined above. |
//!
//! # Inter-token latency: two views
//!
//! Let a streamed request's token-bearing events arrive at t₁ < … < tₘ and
//! carry Δ₁ … Δₘ tokens, with gaps gⱼ = tⱼ − tⱼ₋₁.
//!
//! - **ITL** (token level, one sample per token): each event j ≥ 2
//!   contributes Δⱼ samples of gⱼ / Δⱼ, so the gap is split evenly over the
//!   tokens it delivered. If the first event carries Δ₁ > 1 tokens, its extra
//!   Δ₁ − 1 tokens are 0-ms samples, as in vLLM PR #28183. A request then
//!   contributes n − 1 samples that add up to E2EL − TTFT, and the ITL mean
//!   is the token-weighted mean of TPOT. This is the number to compare with
//!   a server's decode speed. Only requests with n ≥ 2 contribute.
//! - **ICL** (inter-chunk latency, one sample per chunk): every gap gⱼ
//!   between consecutive token-bearing events, whatever they carried. vLLM,
//!   SGLang and EvalScope call this "ITL". It goes under the `itl` keys of
//!   [`vllm_block`] for compatibility. Unlike vLLM, a role-only opening chunk
//!   never starts a gap here.
//!
//! Δⱼ, the tokens each event carried:
//! 1. The event's own token count (the server's continuous usage deltas)
//!    when it is known. Tokens reported on a non-token-bearing event, such as
//!    a chunk whose text the detokenizer held back, move forward to the next
//!    token-bearing event.
//! 2. If some token-bearing events have no known count, the tokens of n that
//!    the known counts do not account for are spread evenly over those events.
//!    Each still gets at least one token, since it delivered text. When the
//!    tokens do not divide evenly, the remainder goes to events spaced evenly
//!    along the stream. With no usage deltas and n equal to the number of
//!    chunks, every chunk gets one token. With twice as many tokens as chunks
//!    (speculative decoding, say), every chunk gets two.
//!
//! **tokens per chunk** is the distribution of Δⱼ over all token-bearing
//! events, under the same rule.
//!
//! # Level metrics
//!
//! | metric | definition |
//! | --- | --- |
//! | total / succeeded / failed | measured (non-warmup) requests, and how they ended. |
//! | errors | failures grouped by kind (`connect`, `timeout`, `rate_limited`, `server`, `client`, `error_body`, `decode`, `cancelled`), with a count and the first message seen. |
//! | duration D | the measurement window: from the earliest send to the latest completion among measured requests, failures included. A request completes at the last timestamp recorded for it, normally the stream close. Unlike vLLM, the window does not include the time before the first send. |
//! | request throughput | succeeded / D. |
//! | output throughput | Σ n over successful requests / D. |
//! | input throughput | Σ prompt tokens over successful requests / D. |
//! | total token throughput | (Σ prompt + Σ n) / D. |
//! | goodput | requests that met every SLO given with `--slo` / D (DistServe's definition, as in vLLM's `--goodput`). A request meets the SLOs when it succeeded, TTFT ≤ ttft (a non-streamed request uses its E2EL as TTFT), TPOT ≤ tpot (0 when n < 2, as in vLLM) and E2EL ≤ e2el. |
//! | goodput fraction | requests that met every SLO / total requests, failures included. |
//! | min-tokens violations | successful requests with n below the expected minimum, usually `--min-tokens` with `ignore_eos`. They flag servers that stopped early anyway. |
//! | input length error | mean and max of \|prompt tokens − intended prompt tokens\| over successful requests that have both, for exact-length prompts. |
//! | invariants | Σ ITL samples against Σ (E2EL − TTFT), which agree by construction, and the ITL sample count against Σ (n − 1), which differ when the per-chunk token counts do not add up to n. |
//!
//! # Summaries
//!
//! Each distribution reports n, mean, std, min, max and the percentiles p50,
//! p90, p95, p99 and p99.9. std is the population standard deviation, which
//! is numpy's `np.std` default and what vLLM reports as `std_*`. Percentiles
//! use linear interpolation, numpy's default and the method vLLM and SGLang
//! use: over sorted values x₀ … xₙ₋₁, the rank is r = p/100 · (n − 1), and
//! the percentile is x⌊r⌋ + (r − ⌊r⌋)(x⌈r⌉ − x⌊r⌋). An empty distribution
//! reports n = 0 and zeros, as vLLM does.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::hist::Accumulator;
use super::record::RequestRecord;

/// Microseconds to milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// `num / den`, or 0 when the denominator is 0, so an empty or instantaneous
/// level gives zero rates, never infinities or NaN.
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { 0.0 }
}

// ---------------------------------------------------------------------------
// Distribution
// ---------------------------------------------------------------------------

/// Summary of a set of samples. Latencies are in milliseconds. Other units
/// are given on the field that holds the distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of samples; 0 means the metric was not measured (all fields 0).
    pub n: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (numpy `np.std`, as vLLM reports).
    pub std: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Median (linear interpolation, like every percentile here).
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The percentiles come from a histogram (more samples than
    /// [`super::hist::EXACT_LIMIT`]): each within
    /// [`super::hist::RELATIVE_ERROR`] of the exact value. Count, mean, std,
    /// min and max stay exact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binned: bool,
}

impl From<&mut Vec<f64>> for Distribution {
    /// Summarizes `samples`, sorting them in place (the caller's buffer is
    /// reused, no copy). Non-finite values are dropped first: they can only
    /// come from a bug upstream, and one NaN would poison every statistic.
    fn from(samples: &mut Vec<f64>) -> Self {
        samples.retain(|x| x.is_finite());
        if samples.is_empty() {
            return Distribution::default();
        }
        samples.sort_unstable_by(f64::total_cmp);
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        // Two-pass variance: no catastrophic cancellation for large means.
        let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Distribution {
            n: samples.len() as u64,
            mean,
            std: var.sqrt(),
            min: samples[0],
            max: samples[samples.len() - 1],
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p95: percentile(samples, 95.0),
            p99: percentile(samples, 99.0),
            p999: percentile(samples, 99.9),
            binned: false,
        }
    }
}

/// The `p`-th percentile (0 ≤ p ≤ 100) of already **sorted** samples by
/// linear interpolation between closest ranks (numpy's default `linear`
/// method). Returns 0 for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return 0.0;
    };
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    if hi >= sorted.len() {
        return last;
    }
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

// ---------------------------------------------------------------------------
// SLOs
// ---------------------------------------------------------------------------

/// Per-request service-level objectives for goodput (`--slo`), in
/// milliseconds. A request is *good* when it meets every objective that is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Maximum TTFT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Maximum TPOT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Maximum end-to-end latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2el_ms: Option<f64>,
}

/// A malformed `--slo` value. The message names the flag and the bad item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--slo: {0}")]
pub struct SloError(String);

impl Slo {
    /// Parses `ttft=500ms,tpot=50ms,e2el=2s`.
    ///
    /// Metrics are `ttft`, `tpot` and `e2el`. `:` may stand for `=`, so
    /// vLLM's `ttft:500` also parses. Units are `ms`, `s` and `us` (or `µs`).
    /// A bare number is taken as milliseconds, the unit of vLLM's
    /// `--goodput`.
    pub fn parse(s: &str) -> Result<Slo, SloError> {
        let mut slo = Slo::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = |why: &str| SloError(format!("bad item `{item}`: {why}"));
            let (name, value) = item
                .split_once(['=', ':'])
                .ok_or_else(|| bad("expected METRIC=VALUE, e.g. ttft=500ms"))?;
            let value = value.trim();
            // Longest suffixes first: "ms" and "us" also end in "s".
            let (number, unit) = ["ms", "µs", "us", "s"]
                .iter()
                .find_map(|&unit| value.strip_suffix(unit).map(|n| (n, unit)))
                .unwrap_or((value, "ms"));
            let number: f64 = number
                .trim()
                .parse()
                .map_err(|_| bad("expected a number with unit ms, s or us, e.g. 500ms"))?;
            if !number.is_finite() || number < 0.0 {
                return Err(bad("the limit must be a finite, non-negative time"));
            }
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "ttft" => &mut slo.ttft_ms,
                "tpot" => &mut slo.tpot_ms,
                "e2el" => &mut slo.e2el_ms,
                _ => return Err(bad("unknown metric (use ttft, tpot or e2el)")),
            };
            if slot.is_some() {
                return Err(bad("metric given twice"));
            }
            // Divide rather than multiply by 1e-3: 100us is exactly 0.1 ms.
            let ms = match unit {
                "s" => number * 1000.0,
                "us" | "µs" => number / 1000.0,
                _ => number,
            };
            // Up to one day, like every other time flag.
            let ms = crate::range::limits::SLO_MS
                .check(ms)
                .map_err(|_| bad(&crate::range::limits::SLO_MS.message(value)))?;
            *slot = Some(ms);
        }
        if slo.is_empty() {
            return Err(SloError(format!(
                "no objective in `{s}` (expected e.g. ttft=500ms,tpot=50ms,e2el=2s)"
            )));
        }
        Ok(slo)
    }

    /// Whether no objective is set.
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2el_ms.is_none()
    }

    /// Whether a request met every objective that is set. Failed requests
    /// never do. A non-streamed request has no TTFT, so its first token
    /// reached the user with the body and its E2EL stands in. A missing TPOT
    /// (n < 2) counts as 0, as in vLLM.
    pub fn met(&self, m: &RequestMetrics) -> bool {
        if !m.ok {
            return false;
        }
        let within = |limit: Option<f64>, value: Option<f64>| match (limit, value) {
            (None, _) => true,
            (Some(limit), Some(value)) => value <= limit,
            (Some(_), None) => false,
        };
        within(self.ttft_ms, m.ttft_ms.or(m.e2el_ms))
            && within(self.tpot_ms, Some(m.tpot_ms.unwrap_or(0.0)))
            && within(self.e2el_ms, m.e2el_ms)
    }
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slo::parse(s)
    }
}

impl fmt::Display for Slo {
    /// The canonical `--slo` form, in milliseconds: `ttft=500ms,tpot=50ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = [
            ("ttft", self.ttft_ms),
            ("tpot", self.tpot_ms),
            ("e2el", self.e2el_ms),
        ];
        let mut first = true;
        for (name, value) in items {
            if let Some(v) = value {
                write!(f, "{}{name}={v}ms", if first { "" } else { "," })?;
                first = false;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Per-request metrics
// ---------------------------------------------------------------------------

/// Where a request's output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens`.
    Usage,
    /// A client tokenizer on the whole generated text.
    Tokenizer,
    /// The number of token-bearing events (no usage, no tokenizer).
    TokenEvents,
}

/// The scalar metrics of one request, as defined in the module docs.
/// Every timing is `None` for a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestMetrics {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Whether the response was streamed (it has recorded events).
    pub streamed: bool,
    /// n: output tokens.
    pub output_tokens: u64,
    /// Where `output_tokens` came from.
    pub output_token_source: TokenSource,
    /// Events that carried generated tokens.
    pub token_events: u64,
    /// Time to first token, ms (streamed only).
    pub ttft_ms: Option<f64>,
    /// End-to-end latency, ms.
    pub e2el_ms: Option<f64>,
    /// Time per output token after the first, ms (n ≥ 2, streamed).
    pub tpot_ms: Option<f64>,
    /// Send − scheduled, ms (open-loop only).
    pub queue_ms: Option<f64>,
    /// First token − scheduled, ms (open-loop, streamed).
    pub ttft_queued_ms: Option<f64>,
    /// Last token (or body) − scheduled, ms (open-loop only).
    pub e2el_queued_ms: Option<f64>,
}

impl RequestMetrics {
    /// Derives the scalar metrics of one record.
    pub fn of(r: &RequestRecord) -> RequestMetrics {
        let (output_tokens, output_token_source) = output_tokens(r);
        let token_events = if r.events.is_empty() {
            r.token_events
        } else {
            r.events.iter().filter(|e| e.kind.has_tokens()).count() as u64
        };
        let mut m = RequestMetrics {
            ok: r.ok(),
            streamed: r.streamed(),
            output_tokens,
            output_token_source,
            token_events,
            ttft_ms: None,
            e2el_ms: None,
            tpot_ms: None,
            queue_ms: None,
            ttft_queued_ms: None,
            e2el_queued_ms: None,
        };
        if !m.ok {
            return m;
        }
        let first_us = r.first_token_us();
        let last_us = r
            .events
            .iter()
            .rev()
            .find(|e| e.kind.has_tokens())
            .map(|e| e.t_us)
            // Recorded without events: the record's own last-token time.
            .or(if r.events.is_empty() && first_us.is_some() {
                r.last_token_us
            } else {
                None
            });
        let e2el_us = if m.streamed {
            // A stream without a single token (empty answer) still completed:
            // its latency is the last token the client saw, else the close.
            last_us.or(r.last_token_us).or(r.end_us)
        } else {
            r.end_us.or(r.last_token_us)
        };
        m.ttft_ms = first_us.map(ms);
        m.e2el_ms = e2el_us.map(ms);
        if let (Some(first), Some(last)) = (first_us, last_us)
            && output_tokens >= 2
        {
            m.tpot_ms = Some(ms(last.saturating_sub(first)) / (output_tokens - 1) as f64);
        }
        if let Some(sched) = r.scheduled_us {
            let since_sched = |after_send: u64| ms((r.sent_us + after_send).saturating_sub(sched));
            m.queue_ms = Some(ms(r.sent_us.saturating_sub(sched)));
            m.ttft_queued_ms = first_us.map(since_sched);
            m.e2el_queued_ms = e2el_us.map(since_sched);
        }
        m
    }

    /// Tokens per second one user sees while the answer streams (1000 / TPOT).
    pub fn decode_rate(&self) -> Option<f64> {
        self.tpot_ms.filter(|&t| t > 0.0).map(|t| 1000.0 / t)
    }
}

/// n and its source: server usage, else client tokenizer, else token events.
fn output_tokens(r: &RequestRecord) -> (u64, TokenSource) {
    if let Some(n) = r.completion_tokens {
        (n, TokenSource::Usage)
    } else if let Some(n) = r.client_completion_tokens {
        (n, TokenSource::Tokenizer)
    } else {
        (r.token_events, TokenSource::TokenEvents)
    }
}

/// `(arrival µs after send, tokens attributed)` for each token-bearing event
/// of `r`, by the rule in the module docs.
fn token_timeline(r: &RequestRecord, n: u64) -> Vec<(u64, u64)> {
    let mut timeline = Vec::new();
    let mut carried = 0u64;
    for e in &r.events {
        if e.kind.has_tokens() {
            timeline.push((e.t_us, u64::from(e.tokens) + carried));
            carried = 0;
        } else {
            // Tokens counted on an event without text were generated but held
            // back; they reach the user with the next token-bearing event.
            carried += u64::from(e.tokens);
        }
    }
    let unknown = timeline.iter().filter(|&&(_, d)| d == 0).count() as u64;
    if unknown == 0 {
        return timeline;
    }
    let known: u64 = timeline.iter().map(|&(_, d)| d).sum();
    let rest = n.saturating_sub(known).max(unknown);
    let (base, extra) = (rest / unknown, rest % unknown);
    // Event i of the unknown ones gets base tokens, plus one when
    // ⌊(i+1)·extra/u⌋ steps up: the remainder lands evenly spaced.
    for (i, (_, d)) in timeline.iter_mut().filter(|(_, d)| *d == 0).enumerate() {
        let i = i as u64;
        *d = base + ((i + 1) * extra / unknown - i * extra / unknown);
    }
    timeline
}

// ---------------------------------------------------------------------------
// Level statistics
// ---------------------------------------------------------------------------

/// Inputs to [`LevelStats::compute`] besides the records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsOptions {
    /// Objectives for goodput (`--slo`); `None` or empty: no goodput.
    pub slo: Option<Slo>,
    /// Output tokens every successful response should have reached, such as
    /// `--min-tokens` when `ignore_eos` was asked. Shorter ones count in
    /// [`LevelStats::min_tokens_violations`].
    pub expected_min_output: Option<u64>,
    /// The level's concurrency cap, echoed in the summary (`max_concurrency`).
    pub max_concurrency: Option<u64>,
}

/// Failures of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorGroup {
    /// How many requests failed this way.
    pub count: u64,
    /// The first message seen, prefixed with the HTTP status when there was one.
    pub example: String,
}

/// Where the output token counts of the successful requests came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSourceCounts {
    /// From the server's usage.
    pub usage: u64,
    /// From a client tokenizer.
    pub tokenizer: u64,
    /// From counting token-bearing events. ITL and throughput are
    /// approximate for these requests.
    pub token_events: u64,
}

/// How far the prompts' actual token counts were from the intended ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct InputLengthError {
    /// Successful requests that had both counts.
    pub requests: u64,
    /// Mean of |prompt tokens − intended prompt tokens|.
    pub mean_abs: f64,
    /// Largest |prompt tokens − intended prompt tokens|.
    pub max_abs: u64,
}

/// Consistency numbers between the token-level ITL and the request totals.
/// They are reported, not asserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Invariants {
    /// Σ of all token-level ITL samples, ms.
    pub itl_sum_ms: f64,
    /// Σ (E2EL − TTFT) over the requests that contribute ITL (streamed,
    /// n ≥ 2), ms. Equal to `itl_sum_ms` up to float rounding.
    pub e2el_minus_ttft_sum_ms: f64,
    /// Number of token-level ITL samples.
    pub itl_samples: u64,
    /// Σ (n − 1) over the same requests. It differs from `itl_samples` when
    /// per-chunk token counts do not add up to n, for example when server
    /// deltas disagree with the final usage or a chunk had to be credited
    /// with at least one token.
    pub expected_itl_samples: u64,
    /// Σ (E2EL − TTFT) / Σ (n − 1), ms: the token-weighted mean ITL implied
    /// by the request totals. Compare it with `itl.mean`.
    pub token_weighted_tpot_ms: f64,
}

/// Every statistic of one level. See the module docs for definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    /// Measured (non-warmup) requests.
    pub total: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Failures by kind (`ErrorKind` in snake_case).
    pub errors: BTreeMap<String, ErrorGroup>,
    /// Measurement window, seconds: earliest send → latest completion.
    pub duration_s: f64,
    /// Σ prompt tokens of successful requests.
    pub total_input_tokens: u64,
    /// Σ output tokens (n) of successful requests.
    pub total_output_tokens: u64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Prompt tokens per second.
    pub input_throughput: f64,
    /// Output tokens per second.
    pub output_throughput: f64,
    /// Prompt plus output tokens per second.
    pub total_token_throughput: f64,
    /// Time to first token, ms.
    pub ttft: Distribution,
    /// Time per output token after the first, ms (one sample per request).
    pub tpot: Distribution,
    /// Token-level inter-token latency, ms (one sample per token).
    pub itl: Distribution,
    /// Inter-chunk latency, ms (one sample per gap between chunks): what
    /// vLLM, SGLang and EvalScope report as ITL.
    pub icl: Distribution,
    /// End-to-end latency, ms.
    pub e2el: Distribution,
    /// Send − scheduled, ms (open-loop only; n = 0 otherwise).
    pub queue_time: Distribution,
    /// First token − scheduled, ms (open-loop only).
    pub ttft_queued: Distribution,
    /// Last token − scheduled, ms (open-loop only).
    pub e2el_queued: Distribution,
    /// Output tokens per successful request (tokens, not ms).
    pub output_tokens: Distribution,
    /// Tokens per token-bearing chunk (tokens, not ms).
    pub tokens_per_chunk: Distribution,
    /// Per-user decode rate 1000 / TPOT, tokens/s.
    pub decode_rate: Distribution,
    /// Where output token counts came from.
    pub output_token_source: TokenSourceCounts,
    /// The objectives goodput was measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Requests that met every SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_requests: Option<u64>,
    /// Good requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
    /// Good requests / total requests (failures included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput_fraction: Option<f64>,
    /// The expected minimum output the violations were checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_min_output: Option<u64>,
    /// Successful requests with fewer output tokens than expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens_violations: Option<u64>,
    /// Prompt length error, when prompts had an intended length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_length_error: Option<InputLengthError>,
    /// ITL consistency numbers.
    pub invariants: Invariants,
    /// The concurrency cap of the level, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u64>,
}

/// The error-group key of a failure: its `ErrorKind` as serialized.
fn error_key(r: &RequestRecord) -> String {
    match r.error_kind {
        Some(kind) => match serde_json::to_value(kind) {
            Ok(Value::String(s)) => s,
            _ => format!("{kind:?}"),
        },
        None => "unknown".to_owned(),
    }
}

/// Last timestamp recorded for a request, µs from level start: when it
/// stopped occupying the window.
fn completion_us(r: &RequestRecord) -> u64 {
    let after_send = [
        r.end_us,
        r.last_token_us,
        r.headers_us,
        r.events.last().map(|e| e.t_us),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    r.sent_us + after_send
}

impl LevelStats {
    /// Computes the statistics of one level's records. Warmup records are
    /// skipped, and no records give zeroed stats. The same as feeding each
    /// record to a [`LevelAggregator`].
    pub fn compute(records: &[RequestRecord], opts: &StatsOptions) -> LevelStats {
        let mut agg = LevelAggregator::new(opts);
        for r in records {
            agg.add(r);
        }
        agg.finish()
    }
}

/// Every distribution of a level, as bounded-memory accumulators.
#[derive(Debug, Clone, Default)]
struct Accumulators {
    ttft: Accumulator,
    tpot: Accumulator,
    itl: Accumulator,
    icl: Accumulator,
    e2el: Accumulator,
    queue: Accumulator,
    ttft_queued: Accumulator,
    e2el_queued: Accumulator,
    output_tokens: Accumulator,
    tokens_per_chunk: Accumulator,
    decode_rate: Accumulator,
}

/// The latency CDFs the reports draw, kept in `summary.json` so that
/// reports and comparisons need not read `requests.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelCdfs {
    /// TTFT, `(ms, fraction of requests ≤ ms)`, at most 200 points.
    pub ttft: Vec<(f64, f64)>,
    /// E2E latency, the same way.
    pub e2el: Vec<(f64, f64)>,
}

/// Points kept per CDF.
pub const CDF_POINTS: usize = 200;

/// The statistics of one level, built as requests complete: each record is
/// folded in and can be dropped, so memory stays flat in the number of
/// requests (distributions are exact up to [`super::hist::EXACT_LIMIT`]
/// samples each, then binned; see [`super::hist`]).
#[derive(Debug, Clone, Default)]
pub struct LevelAggregator {
    s: LevelStats,
    acc: Accumulators,
    good: u64,
    short: u64,
    len_err: (u64, u64, u64),
    window: Option<(u64, u64)>,
}

impl LevelAggregator {
    /// An empty level.
    pub fn new(opts: &StatsOptions) -> LevelAggregator {
        LevelAggregator {
            s: LevelStats {
                slo: opts.slo.filter(|s| !s.is_empty()),
                expected_min_output: opts.expected_min_output,
                max_concurrency: opts.max_concurrency,
                ..LevelStats::default()
            },
            ..LevelAggregator::default()
        }
    }

    /// Requests folded in so far (warmup excluded).
    pub fn total(&self) -> u64 {
        self.s.total
    }

    /// Fold in one request (warmup records are skipped).
    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return;
        }
        let s = &mut self.s;
        let acc = &mut self.acc;
        s.total += 1;
        let (start, end) = (r.sent_us, completion_us(r));
        self.window = Some(
            self.window
                .map_or((start, end), |(a, b)| (a.min(start), b.max(end))),
        );

        let m = RequestMetrics::of(r);
        if !m.ok {
            s.failed += 1;
            let group = s.errors.entry(error_key(r)).or_insert_with(|| ErrorGroup {
                count: 0,
                example: match (r.status, r.error.as_deref()) {
                    (Some(st), Some(msg)) => format!("HTTP {st}: {msg}"),
                    (Some(st), None) => format!("HTTP {st}"),
                    (None, Some(msg)) => msg.to_owned(),
                    (None, None) => "(no message)".to_owned(),
                },
            });
            group.count += 1;
            return;
        }
        s.succeeded += 1;
        let n = m.output_tokens;
        s.total_output_tokens += n;
        s.total_input_tokens += r.prompt_tokens.unwrap_or(0);
        acc.output_tokens.push(n as f64);
        match m.output_token_source {
            TokenSource::Usage => s.output_token_source.usage += 1,
            TokenSource::Tokenizer => s.output_token_source.tokenizer += 1,
            TokenSource::TokenEvents => s.output_token_source.token_events += 1,
        }
        let put = |a: &mut Accumulator, x: Option<f64>| {
            if let Some(x) = x {
                a.push(x);
            }
        };
        put(&mut acc.ttft, m.ttft_ms);
        put(&mut acc.e2el, m.e2el_ms);
        put(&mut acc.tpot, m.tpot_ms);
        put(&mut acc.decode_rate, m.decode_rate());
        put(&mut acc.queue, m.queue_ms);
        put(&mut acc.ttft_queued, m.ttft_queued_ms);
        put(&mut acc.e2el_queued, m.e2el_queued_ms);
        if s.slo.is_some_and(|slo| slo.met(&m)) {
            self.good += 1;
        }
        if s.expected_min_output.is_some_and(|min| n < min) {
            self.short += 1;
        }
        if let (Some(got), Some(want)) = (r.prompt_tokens, r.expected_prompt_tokens) {
            let err = got.abs_diff(want);
            self.len_err.0 += 1;
            self.len_err.1 += err;
            self.len_err.2 = self.len_err.2.max(err);
        }

        let timeline = token_timeline(r, n);
        for &(_, d) in &timeline {
            acc.tokens_per_chunk.push(d as f64);
        }
        for pair in timeline.windows(2) {
            acc.icl.push(ms(pair[1].0.saturating_sub(pair[0].0)));
        }
        // Token-level ITL: the same requests as TPOT (n ≥ 2, streamed).
        if let (Some(&(t_first, d_first)), Some(&(t_last, _))) = (timeline.first(), timeline.last())
            && n >= 2
        {
            let zeros = d_first.saturating_sub(1);
            acc.itl.push_n(0.0, zeros);
            let (mut sum, mut samples) = (0.0f64, zeros);
            for pair in timeline.windows(2) {
                let (gap, d) = (ms(pair[1].0.saturating_sub(pair[0].0)), pair[1].1);
                let x = gap / d as f64;
                // d comes from the server's counts: O(1) in d, never a loop.
                acc.itl.push_n(x, d);
                sum += x * d as f64;
                samples += d;
            }
            let inv = &mut s.invariants;
            inv.itl_sum_ms += sum;
            inv.e2el_minus_ttft_sum_ms += ms(t_last.saturating_sub(t_first));
            inv.itl_samples += samples;
            inv.expected_itl_samples += n - 1;
        }
    }

    /// The TTFT and E2E CDFs so far.
    pub fn cdfs(&self) -> LevelCdfs {
        LevelCdfs {
            ttft: self.acc.ttft.cdf(CDF_POINTS),
            e2el: self.acc.e2el.cdf(CDF_POINTS),
        }
    }

    /// The level's statistics.
    pub fn finish(&mut self) -> LevelStats {
        let mut s = self.s.clone();
        let (start, end) = self.window.unwrap_or((0, 0));
        s.duration_s = (end - start) as f64 / 1e6;
        let d = s.duration_s;
        s.request_throughput = ratio(s.succeeded as f64, d);
        s.input_throughput = ratio(s.total_input_tokens as f64, d);
        s.output_throughput = ratio(s.total_output_tokens as f64, d);
        s.total_token_throughput = ratio((s.total_input_tokens + s.total_output_tokens) as f64, d);
        if s.slo.is_some() {
            s.good_requests = Some(self.good);
            s.goodput = Some(ratio(self.good as f64, d));
            s.goodput_fraction = Some(ratio(self.good as f64, s.total as f64));
        }
        s.min_tokens_violations = s.expected_min_output.map(|_| self.short);
        let (len_n, len_sum, len_max) = self.len_err;
        if len_n > 0 {
            s.input_length_error = Some(InputLengthError {
                requests: len_n,
                mean_abs: len_sum as f64 / len_n as f64,
                max_abs: len_max,
            });
        }
        s.invariants.token_weighted_tpot_ms = ratio(
            s.invariants.e2el_minus_ttft_sum_ms,
            s.invariants.expected_itl_samples as f64,
        );
        let a = &mut self.acc;
        s.ttft = a.ttft.summary();
        s.tpot = a.tpot.summary();
        s.itl = a.itl.summary();
        s.icl = a.icl.summary();
        s.e2el = a.e2el.summary();
        s.queue_time = a.queue.summary();
        s.ttft_queued = a.ttft_queued.summary();
        s.e2el_queued = a.e2el_queued.summary();
        s.output_tokens = a.output_tokens.summary();
        s.tokens_per_chunk = a.tokens_per_chunk.summary();
        s.decode_rate = a.decode_rate.summary();
        s
    }
}

// ---------------------------------------------------------------------------
// vLLM-compatible block
// ---------------------------------------------------------------------------

/// The level's numbers under `vllm bench serve --save-result` key names, so
/// scripts written for vLLM's JSON read ours.
///
/// Keys: `completed`, `failed`, `duration`, `total_input_tokens`,
/// `total_output_tokens`, `request_throughput`, `request_goodput` (null
/// without SLOs, as vLLM writes it), `output_throughput`,
/// `total_token_throughput`, `max_concurrency` (when given), and for each of
/// `ttft`, `tpot`, `itl`, `e2el`: `mean_*_ms`, `median_*_ms`, `std_*_ms`,
/// `p50_*_ms`, `p90_*_ms`, `p95_*_ms`, `p99_*_ms`, `p99.9_*_ms`. vLLM names
/// a percentile key `p{p}` with the percentile written as an integer when it
/// is one, so 99.9 gives `p99.9_ttft_ms`.
///
/// **`*_itl_ms` hold our ICL (inter-chunk) values**, because vLLM's ITL is one
/// sample per chunk. Our token-level ITL has no vLLM key. One difference
/// remains: vLLM lets a role-only opening chunk count as the first token,
/// and we do not.
pub fn vllm_block(s: &LevelStats) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("completed".into(), s.succeeded.into());
    m.insert("failed".into(), s.failed.into());
    m.insert("duration".into(), s.duration_s.into());
    m.insert("total_input_tokens".into(), s.total_input_tokens.into());
    m.insert("total_output_tokens".into(), s.total_output_tokens.into());
    m.insert("request_throughput".into(), s.request_throughput.into());
    m.insert(
        "request_goodput".into(),
        s.goodput.map_or(Value::Null, Value::from),
    );
    m.insert("output_throughput".into(), s.output_throughput.into());
    m.insert(
        "total_token_throughput".into(),
        s.total_token_throughput.into(),
    );
    if let Some(c) = s.max_concurrency {
        m.insert("max_concurrency".into(), c.into());
    }
    for (name, d) in [
        ("ttft", &s.ttft),
        ("tpot", &s.tpot),
        ("itl", &s.icl),
        ("e2el", &s.e2el),
    ] {
        m.insert(format!("mean_{name}_ms"), d.mean.into());
        m.insert(format!("median_{name}_ms"), d.p50.into());
        m.insert(format!("std_{name}_ms"), d.std.into());
        for (p, v) in [
            ("50", d.p50),
            ("90", d.p90),
            ("95", d.p95),
            ("99", d.p99),
            ("99.9", d.p999),
        ] {
            m.insert(format!("p{p}_{name}_ms"), v.into());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorKind;
    use crate::perf::record::{EventKind, EventRecord};
    use EventKind::{Content, Empty, Reasoning, Role, Usage};

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// A successful streamed record sent at `sent_us` whose events are
    /// `(µs after send, kind, tokens)`; the stream closes 100 µs after the
    /// last event.
    fn streamed(sent_us: u64, events: &[(u64, EventKind, u32)]) -> RequestRecord {
        let events: Vec<EventRecord> = events
            .iter()
            .map(|&(t_us, kind, tokens)| EventRecord { t_us, kind, tokens })
            .collect();
        let token_events = events.iter().filter(|e| e.kind.has_tokens()).count() as u64;
        RequestRecord {
            level: 0,
            index: 0,
            warmup: false,
            scheduled_us: None,
            sent_us,
            headers_us: events.first().map(|e| e.t_us / 2),
            last_token_us: events
                .iter()
                .rev()
                .find(|e| e.kind.has_tokens())
                .map(|e| e.t_us),
            end_us: events.last().map(|e| e.t_us + 100),
            events,
            event_count: None,
            first_token_us: None,
            prompt_tokens: Some(10),
            expected_prompt_tokens: None,
            completion_tokens: None,
            client_completion_tokens: None,
            token_events,
            output_chars: 0,
            finish_reason: Some("length".into()),
            status: Some(200),
            error_kind: None,
            error: None,
        }
    }

    /// `count` one-token content events, `gap_us` apart, the first at `ttft_us`.
    fn even(sent_us: u64, ttft_us: u64, gap_us: u64, count: u64) -> RequestRecord {
        let ev: Vec<_> = (0..count)
            .map(|i| (ttft_us + i * gap_us, Content, 0))
            .collect();
        streamed(sent_us, &ev)
    }

    fn failed(sent_us: u64, kind: ErrorKind, status: Option<u16>, msg: &str) -> RequestRecord {
        RequestRecord {
            events: vec![],
            token_events: 0,
            last_token_us: None,
            end_us: Some(700),
            headers_us: None,
            status,
            error_kind: Some(kind),
            error: Some(msg.into()),
            ..streamed(sent_us, &[])
        }
    }

    fn stats(records: &[RequestRecord]) -> LevelStats {
        LevelStats::compute(records, &StatsOptions::default())
    }

    #[test]
    fn percentiles_match_numpy() {
        // numpy 2.4.6:
        // python3 -c "import numpy as np; a=[3.0,1.0,4.0,1.5,5.0,9.0,2.6]; \
        //   print([float(np.percentile(a,p)) for p in (50,90,95,99,99.9)], np.mean(a), np.std(a))"
        // → [3.0, 6.600000000000001, 7.799999999999997, 8.759999999999998, 8.976000000000003]
        //   3.7285714285714286 2.4984076561535207
        let d = Distribution::from(&mut vec![3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.6]);
        assert_eq!(d.n, 7);
        for (got, want) in [
            (d.p50, 3.0),
            (d.p90, 6.600000000000001),
            (d.p95, 7.799999999999997),
            (d.p99, 8.759999999999998),
            (d.p999, 8.976000000000003),
            (d.mean, 3.7285714285714286),
            (d.std, 2.4984076561535207),
            (d.min, 1.0),
            (d.max, 9.0),
        ] {
            assert!((got - want).abs() < 1e-12, "{got} != {want}");
        }
        // python3 -c "import numpy as np; b=[10.0,20.0]; \
        //   print([float(np.percentile(b,p)) for p in (50,90,95,99,99.9)], np.std(b))"
        // → [15.0, 19.0, 19.5, 19.9, 19.990000000000002] 5.0
        let d = Distribution::from(&mut vec![20.0, 10.0]);
        for (got, want) in [
            (d.p50, 15.0),
            (d.p90, 19.0),
            (d.p95, 19.5),
            (d.p99, 19.9),
            (d.p999, 19.99),
            (d.std, 5.0),
        ] {
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
        let one = Distribution::from(&mut vec![4.0]);
        assert_eq!((one.p50, one.p999, one.std), (4.0, 4.0, 0.0));
        assert_eq!(Distribution::from(&mut vec![]), Distribution::default());
        assert_eq!(Distribution::from(&mut vec![f64::NAN, 2.0]).n, 1);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn multi_token_chunks_split_gaps_over_tokens() {
        let mut r = streamed(
            0,
            &[
                (100, Role, 0),
                (1000, Content, 2),
                (1200, Content, 3),
                (1500, Content, 1),
                (1600, Usage, 0),
            ],
        );
        r.completion_tokens = Some(6);
        let m = RequestMetrics::of(&r);
        assert_eq!(m.ttft_ms, Some(1.0));
        assert_eq!(m.e2el_ms, Some(1.5));
        assert!(close(m.tpot_ms.unwrap(), 0.1));
        assert!(close(m.decode_rate().unwrap(), 10_000.0));

        let s = stats(&[r]);
        // First chunk's extra token: one 0-ms sample; then 3 × 0.2/3 and 1 × 0.3.
        assert_eq!(s.itl.n, 5);
        assert_eq!(s.itl.min, 0.0);
        assert!(close(s.itl.max, 0.3));
        assert!(
            close(s.itl.mean, 0.1),
            "token-weighted ITL mean equals TPOT for one request"
        );
        assert!(close(s.itl.p50, 0.2 / 3.0));
        // Chunk view: two gaps, the role chunk starts none.
        assert_eq!(s.icl.n, 2);
        assert!(close(s.icl.min, 0.2) && close(s.icl.max, 0.3));
        assert_eq!(s.tokens_per_chunk.n, 3);
        assert!(close(s.tokens_per_chunk.mean, 2.0));
        assert_eq!(s.tokens_per_chunk.max, 3.0);
        assert_eq!(s.total_output_tokens, 6);
    }

    #[test]
    fn role_only_first_chunk_does_not_count_as_first_token() {
        let r = streamed(0, &[(50, Role, 0), (300, Content, 0), (400, Content, 0)]);
        let m = RequestMetrics::of(&r);
        assert_eq!(m.ttft_ms, Some(0.3));
        let s = stats(&[r]);
        assert_eq!(s.icl.n, 1);
        assert!(close(s.icl.mean, 0.1));
        assert_eq!(s.ttft.mean, 0.3);
    }

    #[test]
    fn usage_only_last_chunk_does_not_extend_e2el() {
        let mut r = streamed(0, &[(100, Content, 0), (200, Content, 0), (900, Usage, 0)]);
        r.completion_tokens = Some(2);
        let m = RequestMetrics::of(&r);
        assert_eq!(m.e2el_ms, Some(0.2));
        assert!(close(m.tpot_ms.unwrap(), 0.1));
        // The stream close (1000 µs) still ends the measurement window.
        assert!(close(stats(&[r]).duration_s, 0.001));
    }

    #[test]
    fn reasoning_deltas_count_for_ttft() {
        let r = streamed(
            0,
            &[
                (10, Role, 0),
                (100, Reasoning, 0),
                (200, Reasoning, 0),
                (500, Content, 0),
            ],
        );
        let m = RequestMetrics::of(&r);
        assert_eq!(m.ttft_ms, Some(0.1));
        assert_eq!(m.e2el_ms, Some(0.5));
        assert_eq!(m.output_tokens, 3);
        assert_eq!(m.output_token_source, TokenSource::TokenEvents);
        assert!(close(m.tpot_ms.unwrap(), 0.2));
    }

    #[test]
    fn single_token_response_has_no_tpot_or_itl() {
        let mut r = streamed(0, &[(100, Content, 0), (150, Usage, 0)]);
        r.completion_tokens = Some(1);
        let s = stats(&[r]);
        assert_eq!((s.ttft.n, s.e2el.n), (1, 1));
        assert_eq!(s.ttft.mean, 0.1);
        assert_eq!(s.e2el.mean, 0.1);
        assert_eq!((s.tpot.n, s.itl.n, s.icl.n, s.decode_rate.n), (0, 0, 0, 0));
        assert_eq!(s.invariants.expected_itl_samples, 0);
    }

    #[test]
    fn failed_stream_counts_only_as_failure() {
        let mut bad = streamed(0, &[(100, Content, 0), (200, Content, 0)]);
        bad.error_kind = Some(ErrorKind::Decode);
        bad.error = Some("stream cut".into());
        bad.end_us = Some(5000);
        let good = even(0, 100, 100, 3);
        let s = stats(&[bad.clone(), good]);
        assert_eq!((s.total, s.succeeded, s.failed), (2, 1, 1));
        assert_eq!((s.ttft.n, s.e2el.n, s.tpot.n), (1, 1, 1));
        assert_eq!(s.total_output_tokens, 3);
        assert_eq!(
            s.errors["decode"],
            ErrorGroup {
                count: 1,
                example: "HTTP 200: stream cut".into()
            }
        );
        // The failure still occupied the window (it ended at 5 ms).
        assert!(close(s.duration_s, 0.005));
        let m = RequestMetrics::of(&bad);
        assert!(!m.ok && m.ttft_ms.is_none() && m.e2el_ms.is_none());
    }

    #[test]
    fn non_streamed_request_has_e2el_only() {
        let mut r = streamed(1000, &[]);
        r.end_us = Some(5000);
        r.last_token_us = Some(5000);
        r.completion_tokens = Some(10);
        let m = RequestMetrics::of(&r);
        assert!(!m.streamed);
        assert_eq!((m.ttft_ms, m.tpot_ms, m.e2el_ms), (None, None, Some(5.0)));
        let s = stats(&[r]);
        assert_eq!(
            (s.ttft.n, s.tpot.n, s.itl.n, s.icl.n, s.e2el.n),
            (0, 0, 0, 0, 1)
        );
        assert_eq!(s.total_output_tokens, 10);
        assert!(close(s.duration_s, 0.005));
        assert!(close(s.output_throughput, 2000.0));
        assert!(close(s.request_throughput, 200.0));
        assert!(close(s.input_throughput, 2000.0));
        assert!(close(s.total_token_throughput, 4000.0));
    }

    #[test]
    fn open_loop_queue_time() {
        let mut r = even(1500, 2000, 500, 3);
        r.scheduled_us = Some(1000);
        let m = RequestMetrics::of(&r);
        assert_eq!(m.queue_ms, Some(0.5));
        assert_eq!(m.ttft_ms, Some(2.0));
        assert_eq!(m.ttft_queued_ms, Some(2.5));
        assert_eq!(m.e2el_queued_ms, Some(3.5));
        let s = stats(&[r, even(0, 100, 100, 2)]);
        assert_eq!(s.queue_time.n, 1, "closed-loop records have no queue time");
        assert_eq!(s.queue_time.mean, 0.5);
        assert_eq!(s.ttft_queued.mean, 2.5);
    }

    #[test]
    fn slo_goodput() {
        // TTFT 0.5/1.0/2.0 ms, TPOT 0.1 ms each, all within a 10 ms window.
        let mut recs: Vec<_> = [500, 1000, 2000]
            .iter()
            .map(|&t| even(0, t, 100, 5))
            .collect();
        recs[2].end_us = Some(10_000);
        recs.push(failed(0, ErrorKind::Timeout, None, "timed out"));
        let opts = StatsOptions {
            slo: Some(Slo::parse("ttft=1ms,tpot=100us").unwrap()),
            ..Default::default()
        };
        let s = LevelStats::compute(&recs, &opts);
        assert_eq!(
            s.good_requests,
            Some(2),
            "TTFT ≤ limit is good, the failure is not"
        );
        assert!(close(s.duration_s, 0.01));
        assert!(close(s.goodput.unwrap(), 200.0));
        assert!(close(s.goodput_fraction.unwrap(), 0.5));
        let v = vllm_block(&s);
        assert!(close(v["request_goodput"].as_f64().unwrap(), 200.0));

        let tight = StatsOptions {
            slo: Some(Slo::parse("tpot=0.05ms").unwrap()),
            ..Default::default()
        };
        assert_eq!(LevelStats::compute(&recs, &tight).good_requests, Some(0));
        // No SLO: no goodput, and vLLM's key is null.
        let s = stats(&recs);
        assert_eq!(s.goodput, None);
        assert_eq!(vllm_block(&s)["request_goodput"], Value::Null);
    }

    #[test]
    fn slo_non_streamed_uses_e2el_as_ttft_and_single_token_tpot_zero() {
        let slo = Slo {
            ttft_ms: Some(3.0),
            tpot_ms: Some(1.0),
            e2el_ms: None,
        };
        let mut r = streamed(0, &[]);
        r.end_us = Some(2000);
        r.completion_tokens = Some(1);
        assert!(slo.met(&RequestMetrics::of(&r)));
        r.end_us = Some(4000);
        assert!(!slo.met(&RequestMetrics::of(&r)));
    }

    #[test]
    fn slo_parse_units_and_errors() {
        let s = Slo::parse("ttft=500ms, tpot=50000us,e2el=2s").unwrap();
        assert_eq!(
            s,
            Slo {
                ttft_ms: Some(500.0),
                tpot_ms: Some(50.0),
                e2el_ms: Some(2000.0)
            }
        );
        assert_eq!(s.to_string(), "ttft=500ms,tpot=50ms,e2el=2000ms");
        assert_eq!("ttft:250".parse::<Slo>().unwrap().ttft_ms, Some(250.0));
        assert_eq!(Slo::parse("TPOT=1.5µs").unwrap().tpot_ms, Some(0.0015));
        assert_eq!(Slo::parse("e2el=1e3ms").unwrap().e2el_ms, Some(1000.0));
        for (input, item) in [
            ("ttft=5xs", "ttft=5xs"),
            ("itl=5ms", "itl=5ms"),
            ("ttft", "ttft"),
            ("ttft=-1ms", "ttft=-1ms"),
            ("ttft=infms", "ttft=infms"),
            ("ttft=1ms,ttft=2ms", "ttft=2ms"),
        ] {
            let err = Slo::parse(input).unwrap_err().to_string();
            assert!(err.starts_with("--slo: bad item"), "{err}");
            assert!(err.contains(&format!("`{item}`")), "{err}");
        }
        assert!(
            Slo::parse(" , ")
                .unwrap_err()
                .to_string()
                .starts_with("--slo: no objective")
        );
    }

    #[test]
    fn errors_grouped_by_kind() {
        let recs = [
            failed(0, ErrorKind::Timeout, None, "first timeout"),
            failed(0, ErrorKind::Server, Some(503), "overloaded"),
            failed(0, ErrorKind::Timeout, None, "second timeout"),
            RequestRecord {
                error: None,
                ..failed(0, ErrorKind::Connect, None, "")
            },
        ];
        let s = stats(&recs);
        assert_eq!((s.total, s.failed, s.succeeded), (4, 4, 0));
        assert_eq!(s.errors.len(), 3);
        assert_eq!(
            s.errors["timeout"],
            ErrorGroup {
                count: 2,
                example: "first timeout".into()
            }
        );
        assert_eq!(
            s.errors["server"],
            ErrorGroup {
                count: 1,
                example: "HTTP 503: overloaded".into()
            }
        );
        assert_eq!(s.errors["connect"].example, "(no message)");
        assert_eq!((s.request_throughput, s.ttft.n), (0.0, 0));
    }

    #[test]
    fn unknown_chunk_tokens_are_spread_evenly() {
        let mut r = streamed(
            0,
            &[
                (100, Content, 0),
                (200, Content, 0),
                (300, Content, 0),
                (400, Content, 0),
            ],
        );
        r.completion_tokens = Some(10);
        let per_event: Vec<u64> = token_timeline(&r, 10).iter().map(|&(_, d)| d).collect();
        assert_eq!(per_event, [2, 3, 2, 3]);
        // Known deltas stay; the rest of n goes to the unknown event; tokens on
        // an empty (held-back) event move to the next token-bearing one.
        let r = streamed(
            0,
            &[
                (100, Content, 1),
                (150, Empty, 2),
                (200, Content, 0),
                (250, Content, 0),
                (300, Content, 4),
            ],
        );
        let per_event: Vec<u64> = token_timeline(&r, 12).iter().map(|&(_, d)| d).collect();
        assert_eq!(per_event, [1, 2, 5, 4]);
        let mut r = streamed(
            0,
            &[(100, Content, 0), (200, Content, 0), (300, Content, 0)],
        );
        r.completion_tokens = Some(2);
        let per_event: Vec<u64> = token_timeline(&r, 2).iter().map(|&(_, d)| d).collect();
        assert_eq!(
            per_event,
            [1, 1, 1],
            "a chunk with text carries at least one token"
        );
    }

    #[test]
    fn invariant_itl_sum_equals_e2el_minus_ttft() {
        // Chunks that carry a varying, unknown number of tokens; n from usage.
        let mut recs = Vec::new();
        for i in 0..20u64 {
            let ev: Vec<_> = (0..(3 + i % 5))
                .map(|j| (1000 + j * (137 + 31 * i) + j * j * 7, Content, 0))
                .collect();
            let mut r = streamed(i * 250, &ev);
            r.completion_tokens = Some(ev.len() as u64 * (1 + i % 3) + i % 2);
            recs.push(r);
        }
        let s = stats(&recs);
        let inv = s.invariants;
        assert!(inv.itl_samples > 0);
        assert!(
            (inv.itl_sum_ms - inv.e2el_minus_ttft_sum_ms).abs() < 1e-6,
            "{inv:?}"
        );
        assert_eq!(inv.itl_samples, inv.expected_itl_samples);
        assert!((s.itl.mean - inv.token_weighted_tpot_ms).abs() < 1e-9);
        let expected: f64 = recs
            .iter()
            .map(|r| {
                let m = RequestMetrics::of(r);
                m.e2el_ms.unwrap() - m.ttft_ms.unwrap()
            })
            .sum();
        assert!((inv.e2el_minus_ttft_sum_ms - expected).abs() < 1e-9);
    }

    #[test]
    fn min_tokens_input_error_warmup_and_sources() {
        let mut warm = even(0, 100, 100, 1);
        warm.warmup = true;
        warm.end_us = Some(1_000_000);
        let mut short = even(0, 100, 100, 4);
        short.completion_tokens = Some(4);
        short.expected_prompt_tokens = Some(12);
        let mut full = even(0, 100, 100, 8);
        full.client_completion_tokens = Some(8);
        full.expected_prompt_tokens = Some(10);
        let opts = StatsOptions {
            expected_min_output: Some(8),
            max_concurrency: Some(4),
            ..Default::default()
        };
        let s = LevelStats::compute(&[warm, short, full], &opts);
        assert_eq!(s.total, 2, "warmup excluded");
        assert!(s.duration_s < 0.01, "warmup does not stretch the window");
        assert_eq!(s.min_tokens_violations, Some(1));
        let e = s.input_length_error.unwrap();
        assert_eq!((e.requests, e.mean_abs, e.max_abs), (2, 1.0, 2));
        assert_eq!(
            s.output_token_source,
            TokenSourceCounts {
                usage: 1,
                tokenizer: 1,
                token_events: 0
            }
        );
        assert_eq!(s.output_tokens.mean, 6.0);
        assert_eq!(vllm_block(&s)["max_concurrency"], 4);
        assert_eq!(stats(&[]).min_tokens_violations, None);
    }

    #[test]
    fn empty_level_is_zeroed() {
        let s = stats(&[]);
        assert_eq!(s, LevelStats::default());
        let v = vllm_block(&s);
        assert_eq!(v["completed"], 0);
        assert_eq!(v["mean_ttft_ms"], 0.0);
        assert!(!v.contains_key("max_concurrency"));
        serde_json::to_string(&s).unwrap();
    }

    #[test]
    fn vllm_block_key_names_and_icl_under_itl() {
        let mut r = streamed(
            0,
            &[(1000, Content, 2), (1200, Content, 3), (1500, Content, 1)],
        );
        r.completion_tokens = Some(6);
        let s = stats(&[r, even(0, 500, 100, 4)]);
        let v = vllm_block(&s);
        for metric in ["ttft", "tpot", "itl", "e2el"] {
            for stat in ["mean", "median", "std", "p50", "p90", "p95", "p99", "p99.9"] {
                assert!(
                    v.contains_key(&format!("{stat}_{metric}_ms")),
                    "{stat}_{metric}_ms"
                );
            }
        }
        for key in [
            "completed",
            "failed",
            "duration",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "request_goodput",
            "output_throughput",
            "total_token_throughput",
        ] {
            assert!(v.contains_key(key), "{key}");
        }
        assert_eq!(v["mean_itl_ms"].as_f64().unwrap(), s.icl.mean);
        assert_eq!(v["p99.9_itl_ms"].as_f64().unwrap(), s.icl.p999);
        assert_ne!(s.icl.mean, s.itl.mean);
        assert_eq!(v["median_ttft_ms"].as_f64().unwrap(), s.ttft.p50);
        assert_eq!(v["completed"], 2);
    }
}
