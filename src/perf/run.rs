//! The load generator: runs one level (a concurrency or an arrival rate)
//! and hands each finished request to a sink that folds it into the level's
//! statistics ([`LevelAggregator`]) and appends it to `requests.jsonl` at
//! the chosen [`RecordLevel`], then drops it. Memory is flat in the number
//! of requests: records live only between their last byte and the sink
//! (a bounded channel), and [`ClientHealth::peak_live_records`] says how many
//! were alive at once.
//!
//! Design (after oha): request bodies are serialised before the clock
//! starts; closed-loop workers take request numbers from an atomic budget;
//! the sink runs on its own thread, so JSON writing and statistics stay off
//! the tasks that read sockets; open-loop arrivals follow an absolute,
//! precomputed, seeded schedule (Poisson, or gamma with `burstiness`), paced
//! by a dedicated thread that sleeps coarsely and spins the last fraction of
//! a millisecond, so pacing error does not accumulate and dispatch lag stays
//! well under a millisecond. A request that waits for a `--max-concurrency`
//! slot keeps its scheduled time, so queueing shows up in `queue_time` and
//! `ttft_queued` instead of hiding (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::driver::TokenCounter;
use super::hist::Accumulator;
use super::record::{RecordLevel, RequestRecord};
use super::stats::{LevelAggregator, LevelCdfs, LevelStats, StatsOptions};
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
    /// Most request records alive at once (in flight to the sink or being
    /// written): bounded by the concurrency plus the sink's queue, whatever
    /// the number of requests.
    #[serde(default)]
    pub peak_live_records: u64,
    /// Finished requests that waited for room in the record writer's queue
    /// (it fell behind: the load was lower than asked meanwhile).
    #[serde(default)]
    pub sink_stalls: u64,
    /// Open loop with `--max-concurrency`: most arrivals waiting for a slot
    /// at once (each costs a few bytes until it is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_waiting_arrivals: Option<u64>,
}

/// Results of one level.
#[derive(Debug)]
pub struct LevelRun {
    /// Statistics of the measured requests.
    pub stats: LevelStats,
    /// Their TTFT and E2E CDFs.
    pub cdfs: LevelCdfs,
    /// Client self-measurements.
    pub health: ClientHealth,
    /// True when cancelled before the end.
    pub interrupted: bool,
    /// Requests handed to the sink (warmup included).
    pub finished: u64,
    /// The first error writing `requests.jsonl`, if any (the level still
    /// ran and its statistics are complete; the file stops at the error).
    pub write_error: Option<std::io::Error>,
}

/// Where finished requests go, and what becomes of them.
#[derive(Clone)]
pub struct SinkOptions {
    /// `requests.jsonl` to append to; `None` records nothing.
    pub path: Option<std::path::PathBuf>,
    /// What each line keeps.
    pub record: RecordLevel,
    /// Statistics options of the level.
    pub stats: StatsOptions,
    /// Output-token fallback for responses without usage (run in the sink,
    /// off the socket tasks).
    pub count_tokens: Option<TokenCounter>,
}

impl std::fmt::Debug for SinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkOptions")
            .field("path", &self.path)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Finished requests waiting for the sink at most: a bound on the records
/// alive at once besides the ones in flight.
pub const SINK_QUEUE: usize = 1024;

/// A count that goes up and down, and its peak: records alive (made and
/// not yet dropped by the sink), or arrivals waiting for a slot.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Gauge {
    fn made(&self) {
        let n = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
    }

    fn dropped(&self) {
        self.now.fetch_sub(1, Ordering::Relaxed);
    }

    /// The most at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// What the sink thread is sent.
// `End` is sent once per level; boxing the record would cost an allocation
// per request to save bytes in a bounded queue.
#[allow(clippy::large_enum_variant)]
enum ToSink {
    Done(RequestRecord, Option<String>),
    End,
}

/// What the sink thread made of a level.
struct SinkOutput {
    agg: LevelAggregator,
    finished: u64,
    write_error: Option<std::io::Error>,
}

/// The sink thread: counts tokens the server did not report, folds each
/// record into the statistics, writes it, and drops it.
fn spawn_sink(
    opts: SinkOptions,
    live: Arc<Gauge>,
) -> (
    tokio::sync::mpsc::Sender<ToSink>,
    std::thread::JoinHandle<SinkOutput>,
) {
    use std::io::Write;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ToSink>(SINK_QUEUE);
    let handle = std::thread::spawn(move || {
        let mut out = SinkOutput {
            agg: LevelAggregator::new(&opts.stats),
            finished: 0,
            write_error: None,
        };
        let mut file = match (&opts.path, opts.record) {
            (Some(path), RecordLevel::Events | RecordLevel::Requests) => {
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    Ok(f) => Some(std::io::BufWriter::with_capacity(1 << 16, f)),
                    Err(e) => {
                        out.write_error = Some(e);
                        None
                    }
                }
            }
            _ => None,
        };
        let mut line = Vec::with_capacity(4096);
        while let Some(ToSink::Done(mut record, text)) = rx.blocking_recv() {
            if let (Some(count), None) = (&opts.count_tokens, record.completion_tokens) {
                record.client_completion_tokens = text.as_deref().and_then(|t| count(t));
            }
            out.agg.add(&record);
            out.finished += 1;
            if let Some(w) = file.as_mut() {
                if opts.record == RecordLevel::Requests {
                    record.drop_events();
                }
                line.clear();
                let written = serde_json::to_writer(&mut line, &record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| {
                        line.push(b'\n');
                        w.write_all(&line)
                    });
                if let Err(e) = written {
                    out.write_error = Some(e);
                    // Drop what the buffer holds without writing it: a
                    // flush after a failed write could add half a line.
                    if let Some(w) = file.take() {
                        let _ = w.into_parts();
                    }
                }
            }
            drop(record);
            live.dropped();
        }
        if let Some(mut w) = file
            && let Err(e) = w.flush()
        {
            out.write_error = Some(e);
        }
        out
    });
    (tx, handle)
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
    sink: tokio::sync::mpsc::Sender<ToSink>,
    live: Arc<Gauge>,
    /// Finished requests that had to wait for room in the sink's queue.
    stalls: Arc<AtomicU64>,
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
        self.live.made();
        to_record(self.level, index, warmup, self.start, scheduled, req, r)
    }

    /// Hand a finished request to the sink; false when the sink is gone.
    async fn finish(&self, (record, text): (RequestRecord, Option<String>)) -> bool {
        use tokio::sync::mpsc::error::TrySendError;
        let msg = match self.sink.try_send(ToSink::Done(record, text)) {
            Ok(()) => return true,
            Err(TrySendError::Full(msg)) => msg,
            Err(TrySendError::Closed(_)) => {
                self.live.dropped();
                return false;
            }
        };
        // The sink is behind: this worker waits, so the load is lower than
        // asked while it does. Counted, and reported as a warning.
        self.stalls.fetch_add(1, Ordering::Relaxed);
        let sent = tokio::select! {
            r = self.sink.send(msg) => r.is_ok(),
            _ = self.cancel.cancelled() => false,
        };
        if !sent {
            self.live.dropped();
        }
        sent
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
        first_token_us: r
            .events
            .iter()
            .find(|e| e.kind.has_tokens())
            .map(|e| e.t_us),
        event_count: None,
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
    Schedule::new(rate, burstiness, stop, seed).collect()
}

/// [`schedule`] one arrival at a time, so a long level does not hold its
/// whole schedule: the gaps are drawn twice from the same seed, once to
/// sum them (for the scale) and once to hand them out.
#[derive(Debug)]
pub struct Schedule {
    rng: rand::rngs::StdRng,
    shape: f64,
    scale: f64,
    left: usize,
    t: f64,
    first: bool,
}

impl Schedule {
    /// The schedule of `rate` arrivals per second (see [`schedule`]).
    pub fn new(rate: f64, burstiness: f64, stop: Stop, seed: u64) -> Schedule {
        let n = match stop {
            Stop::Count(n) => n as usize,
            Stop::Duration(d) => ((d.as_secs_f64() * rate).round() as usize).max(1),
        };
        let shape = burstiness.max(1e-3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let total: f64 = (1..n).map(|_| gamma(&mut rng, shape)).sum();
        let scale = if total > 0.0 {
            (n.saturating_sub(1)) as f64 / rate / total
        } else {
            0.0
        };
        Schedule {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            shape,
            scale,
            left: n,
            t: 0.0,
            first: true,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if std::mem::take(&mut self.first) {
            return Some(Duration::ZERO);
        }
        self.t += gamma(&mut self.rng, self.shape) * self.scale;
        // Saturates rather than panics for a rate too low to be useful
        // (the flags refuse those; this guards other callers).
        Some(Duration::try_from_secs_f64(self.t).unwrap_or(Duration::MAX))
    }
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
    sink: SinkOptions,
    cancel: &CancellationToken,
    progress: &indicatif::ProgressBar,
) -> LevelRun {
    let live = Arc::new(Gauge::default());
    let stalls = Arc::new(AtomicU64::new(0));
    let (tx, sink_thread) = spawn_sink(sink, live.clone());
    // Built before the clock starts: its first pass over the gaps takes a
    // while for millions of arrivals.
    let sched = match opts.load {
        Load::Rate {
            rate, burstiness, ..
        } => Some(Schedule::new(rate, burstiness, opts.stop, opts.seed)),
        Load::Concurrency { .. } => None,
    };
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
            sink: tx.clone(),
            live: live.clone(),
            stalls: stalls.clone(),
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
    if opts.warmup > 0 {
        let warm = make(requests.clone());
        closed_loop(
            &warm,
            warm_c.min(opts.warmup) as usize,
            Stop::Count(opts.warmup),
            true,
        )
        .await;
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
    match opts.load {
        Load::Concurrency { concurrency } => {
            closed_loop(&shared, concurrency, opts.stop, false).await;
        }
        Load::Rate {
            max_concurrency, ..
        } => {
            let sched = sched.unwrap_or_else(|| Schedule::new(1.0, 1.0, Stop::Count(0), 0));
            let (mut lags, window, backlog) = open_loop(&shared, sched, max_concurrency).await;
            health.peak_waiting_arrivals = backlog;
            if !lags.is_empty() {
                let d = lags.summary();
                health.dispatch_lag_p50_ms = Some(d.p50);
                health.dispatch_lag_p99_ms = Some(d.p99);
                health.dispatch_lag_max_ms = Some(d.max);
                if window > 0.0 {
                    health.achieved_rate = Some((d.n as f64 - 1.0).max(0.0) / window);
                }
            }
        }
    }
    ticker.abort();
    let _ = ticker.await;
    progress.set_position(shared.done.load(Ordering::Relaxed));
    health.wall_s = t0.elapsed().as_secs_f64();
    health.cpu_cores_used = if health.wall_s > 0.0 {
        (process_cpu_seconds() - cpu0) / health.wall_s
    } else {
        0.0
    };
    drop(shared);
    let _ = tx.send(ToSink::End).await;
    drop(tx);
    let out = tokio::task::spawn_blocking(move || sink_thread.join())
        .await
        .ok()
        .and_then(Result::ok);
    health.peak_live_records = live.peak();
    health.sink_stalls = stalls.load(Ordering::Relaxed);
    let (mut agg, finished, write_error) = match out {
        Some(o) => (o.agg, o.finished, o.write_error),
        None => (
            LevelAggregator::default(),
            0,
            Some(std::io::Error::other(
                "the record writer stopped unexpectedly",
            )),
        ),
    };
    LevelRun {
        stats: agg.finish(),
        cdfs: agg.cdfs(),
        health,
        interrupted: cancel.is_cancelled(),
        finished,
        write_error,
    }
}

/// `workers` tasks share an atomic request budget until `stop`; each hands
/// its finished requests to the sink.
async fn closed_loop(shared: &Arc<Shared>, workers: usize, stop: Stop, warmup: bool) {
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
                let done = tokio::select! {
                    r = fut => r,
                    _ = shared.cancel.cancelled() => break,
                };
                if !shared.finish(done).await {
                    break;
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Arrivals on `sched`, each handed to the sink when it finishes; returns
/// the dispatch lags (ms), the dispatch window (first to last arrival, s)
/// and, with a concurrency cap, the most arrivals waiting for a slot.
async fn open_loop(
    shared: &Arc<Shared>,
    sched: Schedule,
    max_concurrency: Option<usize>,
) -> (Accumulator, f64, Option<u64>) {
    let handle = tokio::runtime::Handle::current();
    let tracker = tokio_util::task::TaskTracker::new();
    // With a cap, arrivals that find no free slot wait as (index, due) in a
    // queue, a few bytes each, and a dispatcher sends them as slots free up
    // (they keep their scheduled time, so the wait shows as queue time).
    let (queue_tx, mut queue_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let waiting = Arc::new(Gauge::default());
    let dispatcher = max_concurrency.map(|m| {
        let sem = Arc::new(Semaphore::new(m.max(1)));
        let shared = shared.clone();
        let tracker = tracker.clone();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            while let Some((i, due)) = queue_rx.recv().await {
                let permit = tokio::select! {
                    p = sem.clone().acquire_owned() => p.ok(),
                    _ = shared.cancel.cancelled() => None,
                };
                waiting.dropped();
                let Some(permit) = permit else { continue };
                let shared = shared.clone();
                tracker.spawn(async move {
                    arrival(&shared, i, due).await;
                    drop(permit);
                });
            }
        })
    });
    let capped = dispatcher.is_some();
    let shared2 = shared.clone();
    let cancel = shared.cancel.clone();
    let tracker2 = tracker.clone();
    let waiting2 = waiting.clone();
    // The pacer runs on its own OS thread so that a busy runtime cannot delay
    // arrivals; it spawns each request onto the runtime at its time. The
    // tracker keeps no handle of a finished task, so nothing grows with the
    // number of arrivals.
    let pacer = std::thread::spawn(move || {
        let start = shared2.start;
        let mut lags = Accumulator::default();
        let mut first_last: Option<(Instant, Instant)> = None;
        for (i, offset) in sched.enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            let due = start + offset;
            sleep_until_precise(due);
            let now = Instant::now();
            lags.push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
            first_last = Some((first_last.map_or(now, |f| f.0), now));
            if capped {
                waiting2.made();
                if queue_tx.send((i as u64, due)).is_err() {
                    waiting2.dropped();
                }
            } else {
                let shared = shared2.clone();
                tracker2.spawn_on(
                    async move { arrival(&shared, i as u64, due).await },
                    &handle,
                );
            }
        }
        drop(queue_tx);
        let window = first_last.map_or(0.0, |(a, b)| (b - a).as_secs_f64());
        (lags, window)
    });
    let (lags, window) = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    tracker.close();
    tracker.wait().await;
    (lags, window, capped.then(|| waiting.peak()))
}

/// One open-loop arrival: sent (unless cancelled) and handed to the sink.
async fn arrival(shared: &Shared, i: u64, due: Instant) {
    if shared.cancel.is_cancelled() {
        return;
    }
    let fut = shared.one(i, Some(due), false, None);
    let done = tokio::select! {
        r = fut => r,
        _ = shared.cancel.cancelled() => return,
    };
    shared.finish(done).await;
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
