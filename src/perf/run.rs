//! The load generator: runs one level (a concurrency or an arrival rate)
//! and returns the raw records; statistics come afterwards ([`super::stats`]).
//!
//! Design (after oha): request bodies are serialised before the clock
//! starts; closed-loop workers take request numbers from an atomic budget
//! and keep their records in a local `Vec` that is returned once at the end
//! (no channel or lock per request); open-loop arrivals follow an absolute,
//! precomputed, seeded schedule (Poisson, or gamma with `burstiness`), paced
//! by a dedicated thread that sleeps coarsely and spins the last fraction of
//! a millisecond, so pacing error does not accumulate and dispatch lag stays
//! well under a millisecond. A request that waits for a `--max-concurrency`
//! slot keeps its scheduled time, so queueing shows up in `queue_time` and
//! `ttft_queued` instead of hiding (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::record::RequestRecord;
use crate::client::Client;
use crate::client::timed::{RawConn, RawTarget, TimedResponse};

/// How load is applied in a level.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Load {
    /// Closed loop: this many requests in flight at all times.
    Concurrency {
        /// In-flight requests.
        concurrency: usize,
    },
    /// Open loop: arrivals at `rate` per second.
    Rate {
        /// Mean arrivals per second.
        rate: f64,
        /// Gamma shape of inter-arrival times (1 = Poisson; < 1 burstier).
        burstiness: f64,
        /// Cap on in-flight requests; arrivals beyond it queue.
        max_concurrency: Option<usize>,
    },
}

impl Load {
    /// Short label: `c=64` or `rate=10/s`.
    pub fn label(&self) -> String {
        match self {
            Load::Concurrency { concurrency } => format!("c={concurrency}"),
            Load::Rate {
                rate,
                max_concurrency: Some(m),
                ..
            } => format!("rate={rate}/s (max {m})"),
            Load::Rate { rate, .. } => format!("rate={rate}/s"),
        }
    }
}

/// When a level stops sending.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this many requests.
    Count(u64),
    /// After this long (requests in flight then finish and count).
    Duration(Duration),
}

/// One request ready to send. `Debug` leaves out the bodies (the raw
/// request carries the API key).
#[derive(Clone)]
pub struct PreparedRequest {
    /// Endpoint URL.
    pub url: Arc<str>,
    /// The whole HTTP/1.1 request (head and body) for plain-HTTP endpoints,
    /// sent with one write on the fast path.
    pub raw: Option<Bytes>,
    /// Serialised JSON body.
    pub body: Bytes,
    /// Prompt tokens the prompt source intended.
    pub expected_prompt_tokens: Option<u64>,
    /// Events to expect (sizing only).
    pub expected_events: usize,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .field("expected_prompt_tokens", &self.expected_prompt_tokens)
            .finish_non_exhaustive()
    }
}

/// What the client itself looked like during a level.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientHealth {
    /// Open loop: dispatch lag (actual start − scheduled start) p50, ms.
    pub dispatch_lag_p50_ms: Option<f64>,
    /// p99 of the same.
    pub dispatch_lag_p99_ms: Option<f64>,
    /// Maximum of the same.
    pub dispatch_lag_max_ms: Option<f64>,
    /// Open loop: achieved arrival rate (arrivals / dispatch window), per second.
    pub achieved_rate: Option<f64>,
    /// Process CPU time over wall time (1.0 = one core busy).
    pub cpu_cores_used: f64,
    /// Cores available to the process.
    pub cores: usize,
    /// Wall time of the level, seconds.
    pub wall_s: f64,
}

/// Raw results of one level.
#[derive(Debug)]
pub struct LevelRun {
    /// Every request (warmup ones flagged), in dispatch order.
    pub records: Vec<RequestRecord>,
    /// Client self-measurements.
    pub health: ClientHealth,
    /// True when cancelled before the end.
    pub interrupted: bool,
}

/// Shared state of a running level.
struct Shared {
    client: Client,
    /// Plain-HTTP endpoints use caller-owned hyper connections (faster than
    /// the pooled client); `https://` goes through reqwest.
    raw: Option<RawTarget>,
    /// Idle connections for open-loop requests (closed-loop workers own one each).
    pool: std::sync::Mutex<Vec<RawConn>>,
    requests: Vec<PreparedRequest>,
    keep_text: bool,
    level: usize,
    start: Instant,
    done: AtomicU64,
    cancel: CancellationToken,
}

impl Shared {
    /// Send request `index`; `conn` is the worker's own connection, if it has one.
    async fn one(
        &self,
        index: u64,
        scheduled: Option<Instant>,
        warmup: bool,
        conn: Option<&mut Option<RawConn>>,
    ) -> (RequestRecord, Option<String>) {
        let req = &self.requests[(index as usize) % self.requests.len()];
        let r = match (self.raw.as_ref().zip(req.raw.as_deref()), conn) {
            (Some((target, raw)), Some(conn)) => {
                self.client
                    .timed_raw(target, conn, raw, self.keep_text, req.expected_events)
                    .await
            }
            (Some((target, raw)), None) => {
                let mut conn = self.pool.lock().ok().and_then(|mut p| p.pop());
                let r = self
                    .client
                    .timed_raw(target, &mut conn, raw, self.keep_text, req.expected_events)
                    .await;
                if let Some(c) = conn.filter(RawConn::is_open)
                    && let Ok(mut p) = self.pool.lock()
                {
                    p.push(c);
                }
                r
            }
            (None, _) => {
                self.client
                    .timed(
                        &req.url,
                        req.body.clone(),
                        self.keep_text,
                        req.expected_events,
                    )
                    .await
            }
        };
        self.done.fetch_add(1, Ordering::Relaxed);
        to_record(self.level, index, warmup, self.start, scheduled, req, r)
    }
}

/// Turn a timed response into a record.
fn to_record(
    level: usize,
    index: u64,
    warmup: bool,
    start: Instant,
    scheduled: Option<Instant>,
    req: &PreparedRequest,
    r: TimedResponse,
) -> (RequestRecord, Option<String>) {
    let since = |t: Instant| t.saturating_duration_since(start).as_micros() as u64;
    let last_token_us = r
        .events
        .iter()
        .rev()
        .find(|e| e.kind.has_tokens())
        .map(|e| e.t_us)
        .or(if r.events.is_empty() && r.error.is_none() {
            r.end_us
        } else {
            None
        });
    let record = RequestRecord {
        level,
        index,
        warmup,
        scheduled_us: scheduled.map(since),
        sent_us: since(r.sent),
        headers_us: r.headers_us,
        events: r.events,
        last_token_us,
        end_us: r.end_us,
        prompt_tokens: r
            .usage
            .and_then(|u| u.prompt_tokens)
            .or(req.expected_prompt_tokens),
        expected_prompt_tokens: req.expected_prompt_tokens,
        completion_tokens: r.usage.and_then(|u| u.completion_tokens),
        client_completion_tokens: None,
        token_events: r.token_events,
        output_chars: r.output_chars,
        finish_reason: r.finish_reason,
        status: r.status,
        error_kind: r.error.as_ref().map(|e| e.0),
        error: r.error.map(|e| e.1),
    };
    (record, r.text)
}

/// CPU seconds (user + system) used by this process so far.
pub fn process_cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks; Linux
    // uses 100 ticks per second on every platform we run on.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The arrival schedule of an open-loop level: offsets from the start.
///
/// Inter-arrival gaps are drawn from Gamma(burstiness) (exponential for
/// burstiness 1: a Poisson process), then scaled so that the n − 1 gaps add
/// up to exactly (n − 1) / rate, as vLLM and EvalScope rescale theirs: the
/// shape of the arrivals is random, their mean rate is the one asked, so
/// the achieved rate measures the client's pacing and not sampling noise.
/// With a duration, n = rate × duration (at least 1).
pub fn schedule(rate: f64, burstiness: f64, stop: Stop, seed: u64) -> Vec<Duration> {
    let n = match stop {
        Stop::Count(n) => n as usize,
        Stop::Duration(d) => ((d.as_secs_f64() * rate).round() as usize).max(1),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let shape = burstiness.max(1e-3);
    let gaps: Vec<f64> = (1..n).map(|_| gamma(&mut rng, shape)).collect();
    let total: f64 = gaps.iter().sum();
    let scale = if total > 0.0 {
        (n.saturating_sub(1)) as f64 / rate / total
    } else {
        0.0
    };
    let mut out = Vec::with_capacity(n);
    let mut t = 0.0f64;
    out.push(Duration::ZERO);
    for g in gaps {
        t += g * scale;
        // Saturates rather than panics for a rate too low to be useful
        // (the flags refuse those; this guards other callers).
        out.push(Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX));
    }
    out.truncate(n);
    out
}

/// A Gamma(shape, 1) draw (Marsaglia–Tsang; shape < 1 via the boost
/// `G(a) = G(a+1) * U^(1/a)`). Shape 1 is the exponential of a Poisson process.
fn gamma(rng: &mut impl RngExt, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // Standard normal by Box–Muller.
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let x = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Sleep until `t` with sub-millisecond precision: the OS sleep for all but
/// the last 300 µs, then a spin (cheap at the rates this is used for).
fn sleep_until_precise(t: Instant) {
    const SPIN: Duration = Duration::from_micros(300);
    let now = Instant::now();
    if t > now + SPIN {
        std::thread::sleep(t - now - SPIN);
    }
    while Instant::now() < t {
        std::hint::spin_loop();
    }
}

/// Options of one level run.
#[derive(Debug, Clone)]
pub struct LevelOptions {
    /// Level index.
    pub level: usize,
    /// Load model.
    pub load: Load,
    /// Stop rule.
    pub stop: Stop,
    /// Warmup requests before measuring (closed loop at the level's concurrency).
    pub warmup: u64,
    /// Seed of the arrival schedule.
    pub seed: u64,
    /// Keep answer text (for a tokenizer count).
    pub keep_text: bool,
}

/// Run one level. `progress` is told how many requests finished.
pub async fn run_level(
    client: &Client,
    requests: Vec<PreparedRequest>,
    opts: &LevelOptions,
    cancel: &CancellationToken,
    progress: &indicatif::ProgressBar,
) -> (LevelRun, Vec<Option<String>>) {
    let make = |requests: Vec<PreparedRequest>| {
        Arc::new(Shared {
            client: client.clone(),
            raw: client.raw_target(),
            pool: std::sync::Mutex::new(Vec::new()),
            requests,
            keep_text: opts.keep_text,
            level: opts.level,
            start: Instant::now(),
            done: AtomicU64::new(0),
            cancel: cancel.clone(),
        })
    };
    // Warmup: closed loop at the level's concurrency, flagged and excluded
    // from statistics; the measured window starts after it.
    let warm_c = match opts.load {
        Load::Concurrency { concurrency } => concurrency,
        Load::Rate {
            max_concurrency, ..
        } => max_concurrency.unwrap_or(1),
    }
    .max(1) as u64;
    let mut records = Vec::new();
    let mut texts = Vec::new();
    if opts.warmup > 0 {
        let warm = make(requests.clone());
        let (r, t) = closed_loop(
            &warm,
            warm_c.min(opts.warmup) as usize,
            Stop::Count(opts.warmup),
            true,
        )
        .await;
        records.extend(r);
        texts.extend(t);
    }
    let shared = make(requests);

    let ticker = {
        let shared = shared.clone();
        let bar = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(shared.done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu0 = process_cpu_seconds();
    let t0 = Instant::now();
    let mut health = ClientHealth {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Default::default()
    };
    let (measured, measured_texts) = match opts.load {
        Load::Concurrency { concurrency } => {
            closed_loop(&shared, concurrency, opts.stop, false).await
        }
        Load::Rate {
            rate,
            burstiness,
            max_concurrency,
        } => {
            let sched = schedule(rate, burstiness, opts.stop, opts.seed);
            let (r, t, lags, window) = open_loop(&shared, sched, max_concurrency).await;
            if !lags.is_empty() {
                let mut l = lags;
                l.sort_by(f64::total_cmp);
                let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
                health.dispatch_lag_p50_ms = Some(q(0.5));
                health.dispatch_lag_p99_ms = Some(q(0.99));
                health.dispatch_lag_max_ms = l.last().copied();
                if window > 0.0 {
                    health.achieved_rate = Some((l.len() as f64 - 1.0).max(0.0) / window);
                }
            }
            (r, t)
        }
    };
    ticker.abort();
    progress.set_position(shared.done.load(Ordering::Relaxed));
    health.wall_s = t0.elapsed().as_secs_f64();
    health.cpu_cores_used = if health.wall_s > 0.0 {
        (process_cpu_seconds() - cpu0) / health.wall_s
    } else {
        0.0
    };
    records.extend(measured);
    texts.extend(measured_texts);
    (
        LevelRun {
            records,
            health,
            interrupted: cancel.is_cancelled(),
        },
        texts,
    )
}

type Collected = (Vec<RequestRecord>, Vec<Option<String>>);

/// `workers` tasks share an atomic request budget until `stop`.
async fn closed_loop(shared: &Arc<Shared>, workers: usize, stop: Stop, warmup: bool) -> Collected {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = match stop {
        Stop::Duration(d) => Some(Instant::now() + d),
        Stop::Count(_) => None,
    };
    let limit = match stop {
        Stop::Count(n) => n,
        Stop::Duration(_) => u64::MAX,
    };
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let shared = shared.clone();
        let next = next.clone();
        set.spawn(async move {
            let mut recs = Vec::new();
            let mut texts = Vec::new();
            // Each worker keeps one keep-alive connection for its whole life.
            let mut conn: Option<RawConn> = None;
            loop {
                if shared.cancel.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let fut = shared.one(i, None, warmup, Some(&mut conn));
                let (rec, text) = tokio::select! {
                    r = fut => r,
                    _ = shared.cancel.cancelled() => break,
                };
                recs.push(rec);
                texts.push(text);
            }
            (recs, texts)
        });
    }
    let mut all = Vec::new();
    let mut texts = Vec::new();
    while let Some(res) = set.join_next().await {
        if let Ok((r, t)) = res {
            all.extend(r);
            texts.extend(t);
        }
    }
    sort_by_index(all, texts)
}

fn sort_by_index(records: Vec<RequestRecord>, texts: Vec<Option<String>>) -> Collected {
    let mut pairs: Vec<_> = records.into_iter().zip(texts).collect();
    pairs.sort_by_key(|(r, _)| r.index);
    pairs.into_iter().unzip()
}

/// Arrivals on `sched`; returns records, texts, dispatch lags (ms) and the
/// dispatch window (first to last arrival, s).
async fn open_loop(
    shared: &Arc<Shared>,
    sched: Vec<Duration>,
    max_concurrency: Option<usize>,
) -> (Vec<RequestRecord>, Vec<Option<String>>, Vec<f64>, f64) {
    let handle = tokio::runtime::Handle::current();
    let sem = max_concurrency.map(|m| Arc::new(Semaphore::new(m.max(1))));
    let stop_flag = Arc::new(AtomicBool::new(false));
    let shared2 = shared.clone();
    let cancel = shared.cancel.clone();
    let flag = stop_flag.clone();
    // The pacer runs on its own OS thread so that a busy runtime cannot delay
    // arrivals; it spawns each request onto the runtime at its time.
    let pacer = std::thread::spawn(move || {
        let start = shared2.start;
        let mut handles = Vec::with_capacity(sched.len());
        let mut lags = Vec::with_capacity(sched.len());
        let mut first_last: Option<(Instant, Instant)> = None;
        for (i, offset) in sched.into_iter().enumerate() {
            if cancel.is_cancelled() || flag.load(Ordering::Relaxed) {
                break;
            }
            let due = start + offset;
            sleep_until_precise(due);
            let now = Instant::now();
            lags.push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
            first_last = Some((first_last.map_or(now, |f| f.0), now));
            let shared = shared2.clone();
            let sem = sem.clone();
            handles.push(handle.spawn(async move {
                let _permit = match &sem {
                    Some(s) => Some(s.clone().acquire_owned().await.ok()?),
                    None => None,
                };
                if shared.cancel.is_cancelled() {
                    return None;
                }
                let fut = shared.one(i as u64, Some(due), false, None);
                tokio::select! {
                    r = fut => Some(r),
                    _ = shared.cancel.cancelled() => None,
                }
            }));
        }
        let window = first_last.map_or(0.0, |(a, b)| (b - a).as_secs_f64());
        (handles, lags, window)
    });
    let (handles, lags, window) = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut records = Vec::new();
    let mut texts = Vec::new();
    for h in handles {
        if let Ok(Some((r, t))) = h.await {
            records.push(r);
            texts.push(t);
        }
    }
    stop_flag.store(true, Ordering::Relaxed);
    let (records, texts) = sort_by_index(records, texts);
    (records, texts, lags, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_schedule_has_the_asked_rate() {
        let s = schedule(500.0, 1.0, Stop::Duration(Duration::from_secs(20)), 7);
        assert_eq!(s.len(), 10_000);
        // (n - 1) gaps span exactly (n - 1) / rate.
        let span = s.last().unwrap().as_secs_f64();
        assert!((span - 9_999.0 / 500.0).abs() < 1e-6, "{span}");
        // Still random: gaps vary like an exponential (cv ~ 1).
        let gaps: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // Same seed, same schedule.
        assert_eq!(
            s,
            schedule(500.0, 1.0, Stop::Duration(Duration::from_secs(20)), 7)
        );
        let c = schedule(10.0, 1.0, Stop::Count(7), 1);
        assert_eq!(c.len(), 7);
        assert_eq!(c[0], Duration::ZERO);
    }

    #[test]
    fn gamma_burstiness_keeps_the_mean_and_changes_the_spread() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for shape in [0.5, 1.0, 4.0] {
            let xs: Vec<f64> = (0..40_000)
                .map(|_| gamma(&mut rng, shape) / shape)
                .collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            assert!((mean - 1.0).abs() < 0.03, "shape {shape}: mean {mean}");
            // Var of Gamma(k, 1/k) is 1/k.
            assert!(
                (var - 1.0 / shape).abs() < 0.1 / shape,
                "shape {shape}: var {var}"
            );
        }
    }
}
