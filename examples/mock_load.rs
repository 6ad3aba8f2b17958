//! Drive the mock server (`bench::mock`) as hard as possible and print what
//! it sustains: requests/s, SSE events/s, tokens/s, and CPU time of the
//! server threads and of the client, plus the server's own timing view.
//!
//! ```sh
//! cargo run --release --example mock_load                      # both clients, 64 streams, 3 s
//! cargo run --release --example mock_load -- -c 256 -s 5 --client raw --tokens 128
//! cargo run --release --example mock_load -- --ttft-ms 50 --itl-ms 10 --tokens 64 -c 512
//! # the same pacing on tokio's millisecond timer alone:
//! cargo run --release --example mock_load -- --ttft-ms 50 --itl-ms 10 --tokens 64 -c 512 --coarse
//! # server and client on separate cores:
//! taskset -c 0 cargo run --release --example mock_load -- --serve --port 8808 &
//! taskset -c 1 cargo run --release --example mock_load -- --url http://127.0.0.1:8808/v1
//! ```
//!
//! Two clients: `reqwest` (N keep-alive connections, streamed bodies read
//! chunk by chunk, events counted) and `raw` (hand-written HTTP/1.1 over
//! TCP with a minimal chunked-encoding reader: the closest to oha's raw
//! rate, so it measures the server rather than the client). Each runs on
//! one current-thread runtime, i.e. one core; the server has its own
//! threads (`--threads`, default 1).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bench::mock::{MockConfig, MockServer, MockStats};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    concurrency: usize,
    secs: f64,
    tokens: u32,
    per_chunk: u32,
    ttft_ms: f64,
    itl_ms: f64,
    threads: usize,
    client: String,
    url: Option<String>,
    serve: bool,
    coarse: bool,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        concurrency: 64,
        secs: 3.0,
        tokens: 128,
        per_chunk: 1,
        ttft_ms: 0.0,
        itl_ms: 0.0,
        threads: 1,
        client: "both".into(),
        url: None,
        serve: false,
        coarse: false,
        port: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--serve" || flag == "--coarse" {
            a.serve |= flag == "--serve";
            a.coarse |= flag == "--coarse";
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "-c" | "--concurrency" => a.concurrency = num(&value)? as usize,
            "-s" | "--secs" => a.secs = num(&value)?,
            "--tokens" => a.tokens = num(&value)? as u32,
            "--tokens-per-chunk" => a.per_chunk = num(&value)? as u32,
            "--ttft-ms" => a.ttft_ms = num(&value)?,
            "--itl-ms" => a.itl_ms = num(&value)?,
            "--threads" => a.threads = num(&value)? as usize,
            "--client" => a.client = value,
            "--url" => a.url = Some(value),
            "--port" => a.port = num(&value)? as u16,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mock_load: {e}");
            std::process::exit(2);
        }
    };
    // The client gets one single-threaded runtime: one core, like the
    // server's default, so the figures compare one core against one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args));
}

fn mock_config(a: &Args) -> MockConfig {
    MockConfig {
        port: a.port,
        ttft: Duration::from_secs_f64(a.ttft_ms / 1e3),
        itl: Duration::from_secs_f64(a.itl_ms / 1e3),
        output_tokens: a.tokens,
        tokens_per_chunk: a.per_chunk,
        threads: a.threads,
        precise_timing: !a.coarse,
        ..MockConfig::default()
    }
}

async fn run(a: Args) {
    if a.serve {
        if let Err(e) = bench::mock::serve(mock_config(&a)).await {
            eprintln!("mock_load: {e}");
        }
        return;
    }
    // In-process server unless one is given.
    let (server, base) = match &a.url {
        Some(url) => (None, url.trim_end_matches('/').to_string()),
        None => {
            let s = MockServer::start(mock_config(&a))
                .await
                .expect("mock server");
            let url = s.url();
            (Some(s), url)
        }
    };
    let addr: SocketAddr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|h| h.parse().ok())
        .expect("--url http://IP:PORT/v1");
    println!(
        "mock at {base}: {} tokens/response, {} per chunk, ttft {} ms, itl {} ms, {} server thread(s); {} streams for {} s",
        a.tokens, a.per_chunk, a.ttft_ms, a.itl_ms, a.threads, a.concurrency, a.secs
    );
    let clients: Vec<&str> = match a.client.as_str() {
        "both" => vec!["raw", "reqwest"],
        one => vec![one],
    };
    for client in clients {
        reset(&addr).await;
        let cpu0 = thread_cpu();
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(a.secs);
        let totals = match client {
            "raw" => raw_load(addr, a.concurrency, deadline).await,
            "reqwest" => reqwest_load(&base, a.concurrency, deadline).await,
            other => {
                eprintln!("mock_load: --client raw|reqwest|both, not {other}");
                return;
            }
        };
        let wall = started.elapsed().as_secs_f64();
        let cpu1 = thread_cpu();
        let stats = fetch_stats(&addr).await;
        println!(
            "{client:>8}: {:>9.0} req/s  {:>10.0} events/s  {:>10.0} tokens/s  ({} requests, {} errors, {:.2} s)",
            totals.requests as f64 / wall,
            totals.events as f64 / wall,
            stats.tokens_sent as f64 / wall,
            totals.requests,
            totals.errors,
            wall,
        );
        if server.is_some() {
            println!(
                "          cpu: server threads {:.0}%, client {:.0}% of one core",
                (cpu1.0 - cpu0.0) / wall * 100.0,
                (cpu1.1 - cpu0.1) / wall * 100.0
            );
        }
        println!(
            "          server's view: {} completed, {} aborted, peak in flight {}, ttft mean {:.3} p99 {:.3} ms, itl mean {:.3} p99 {:.3} max {:.3} ms",
            stats.completed,
            stats.aborted,
            stats.peak_in_flight,
            stats.mean_ttft_ms,
            stats.p99_ttft_ms,
            stats.mean_itl_ms,
            stats.p99_itl_ms,
            stats.max_itl_ms
        );
        if a.ttft_ms > 0.0 || a.itl_ms > 0.0 {
            println!(
                "          client's view: ttft mean {:.3} ms (server +{:.3}), chunk gap mean {:.3} ms (server {:+.4})",
                totals.ttft_mean_ms(),
                totals.ttft_mean_ms() - stats.mean_ttft_ms,
                totals.gap_mean_ms(),
                totals.gap_mean_ms() - stats.mean_itl_ms
            );
        }
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        });
    if let Some(hwm) = hwm {
        println!("peak RSS of this process (client and server): {hwm}");
    }
    if let Some(s) = server {
        s.shutdown().await;
    }
}

#[derive(Default)]
struct Totals {
    requests: u64,
    events: u64,
    errors: u64,
    ttft_sum: f64,
    ttft_n: u64,
    gap_sum: f64,
    gap_n: u64,
}

impl Totals {
    fn add(&mut self, o: Totals) {
        self.requests += o.requests;
        self.events += o.events;
        self.errors += o.errors;
        self.ttft_sum += o.ttft_sum;
        self.ttft_n += o.ttft_n;
        self.gap_sum += o.gap_sum;
        self.gap_n += o.gap_n;
    }

    fn ttft_mean_ms(&self) -> f64 {
        self.ttft_sum / self.ttft_n.max(1) as f64 * 1e3
    }

    fn gap_mean_ms(&self) -> f64 {
        self.gap_sum / self.gap_n.max(1) as f64 * 1e3
    }
}

const BODY: &str = r#"{"model":"mock","messages":[{"role":"user","content":"Say something long."}],"stream":true,"stream_options":{"include_usage":true}}"#;

/// Counts SSE event ends (`\n\n`) across reads; `prev` carries the last
/// byte of the previous read.
fn count_events(data: &[u8], prev: &mut u8) -> u64 {
    let mut n = 0;
    for &b in data {
        if b == b'\n' && *prev == b'\n' {
            n += 1;
        }
        *prev = b;
    }
    n
}

/// Timing of one response as the client saw it: the first read holding a
/// content token, and the reads holding later ones.
struct Timeline {
    sent: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: f64,
    gap_n: u64,
}

impl Timeline {
    fn new() -> Self {
        Timeline {
            sent: Instant::now(),
            first: None,
            last: None,
            gaps: 0.0,
            gap_n: 0,
        }
    }

    /// Called per read that contained `tokens` token events (0 skips it).
    fn read(&mut self, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        match self.last {
            // Events sharing a read share its timestamp: gaps of 0.
            None => {
                self.first = Some(now);
                self.gap_n += tokens - 1;
            }
            Some(last) => {
                self.gaps += (now - last).as_secs_f64();
                self.gap_n += tokens;
            }
        }
        self.last = Some(now);
    }

    fn finish(&self, t: &mut Totals) {
        if let Some(first) = self.first {
            t.ttft_sum += (first - self.sent).as_secs_f64();
            t.ttft_n += 1;
            t.gap_sum += self.gaps;
            t.gap_n += self.gap_n;
        }
    }
}

/// Token events in a read: content deltas (`" tok`), not role, finish or
/// usage chunks.
fn count_tokens(data: &[u8]) -> u64 {
    data.windows(6).filter(|w| w == br#"":" to"#).count() as u64
}

async fn reqwest_load(base: &str, concurrency: usize, deadline: Instant) -> Totals {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest client");
    let url = format!("{base}/chat/completions");
    let tasks = (0..concurrency).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut t = Totals::default();
            while Instant::now() < deadline {
                let mut tl = Timeline::new();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(BODY)
                    .send()
                    .await;
                let Ok(response) = response else {
                    t.errors += 1;
                    continue;
                };
                let mut stream = response.bytes_stream();
                let mut prev = 0u8;
                let mut ok = true;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(bytes) => {
                            t.events += count_events(&bytes, &mut prev);
                            tl.read(count_tokens(&bytes));
                        }
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    t.requests += 1;
                    tl.finish(&mut t);
                } else {
                    t.errors += 1;
                }
            }
            t
        }
    });
    let mut total = Totals::default();
    for t in futures::future::join_all(tasks).await {
        total.add(t);
    }
    total
}

async fn raw_load(addr: SocketAddr, concurrency: usize, deadline: Instant) -> Totals {
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let tasks = (0..concurrency).map(|_| {
        let request = request.clone();
        async move {
            let mut t = Totals::default();
            let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
                t.errors += 1;
                return t;
            };
            let _ = conn.set_nodelay(true);
            let mut reader = ChunkedReader::default();
            while Instant::now() < deadline {
                let mut tl = Timeline::new();
                if conn.write_all(request.as_bytes()).await.is_err() {
                    t.errors += 1;
                    break;
                }
                match reader.response(&mut conn, &mut t, &mut tl).await {
                    Ok(()) => {
                        t.requests += 1;
                        tl.finish(&mut t);
                    }
                    Err(_) => {
                        t.errors += 1;
                        break;
                    }
                }
            }
            t
        }
    });
    let mut total = Totals::default();
    for t in futures::future::join_all(tasks).await {
        total.add(t);
    }
    total
}

/// Just enough HTTP/1.1 to read a chunked response on a keep-alive
/// connection: skip the head, then follow chunk sizes to the empty chunk.
#[derive(Default)]
struct ChunkedReader {
    buf: Vec<u8>,
    start: usize,
}

impl ChunkedReader {
    async fn fill(&mut self, conn: &mut tokio::net::TcpStream) -> std::io::Result<usize> {
        // Keep only the unread part, then read into spare capacity (no
        // zeroing, no growth past the largest response).
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        let n = conn.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }

    fn find(&self, pat: &[u8]) -> Option<usize> {
        self.buf[self.start..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| self.start + p)
    }

    async fn response(
        &mut self,
        conn: &mut tokio::net::TcpStream,
        t: &mut Totals,
        tl: &mut Timeline,
    ) -> std::io::Result<()> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let head_end = loop {
            if let Some(p) = self.find(b"\r\n\r\n") {
                break p;
            }
            self.fill(conn).await?;
        };
        if !self.buf[self.start..].starts_with(b"HTTP/1.1 200") {
            return Err(bad("status is not 200"));
        }
        self.start = head_end + 4;
        let mut prev = 0u8;
        loop {
            let line_end = loop {
                if let Some(p) = self.find(b"\r\n") {
                    break p;
                }
                self.fill(conn).await?;
            };
            let size = std::str::from_utf8(&self.buf[self.start..line_end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad("bad chunk size"))?;
            self.start = line_end + 2;
            while self.buf.len() < self.start + size + 2 {
                self.fill(conn).await?;
            }
            let data = &self.buf[self.start..self.start + size];
            t.events += count_events(data, &mut prev);
            tl.read(count_tokens(data));
            self.start += size + 2;
            if size == 0 {
                return Ok(());
            }
        }
    }
}

async fn reset(addr: &SocketAddr) {
    let _ = reqwest::Client::new()
        .post(format!("http://{addr}/stats/reset"))
        .send()
        .await;
}

async fn fetch_stats(addr: &SocketAddr) -> MockStats {
    async {
        reqwest::Client::new()
            .get(format!("http://{addr}/stats"))
            .send()
            .await?
            .json()
            .await
    }
    .await
    .unwrap_or_default()
}

/// CPU seconds of this process's threads: (server worker threads, the rest).
fn thread_cpu() -> (f64, f64) {
    let mut server = 0.0;
    let mut other = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the parenthesised name: utime and stime are the 12th
        // and 13th, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        if comm.starts_with("bench-mock") {
            server += ticks / 100.0;
        } else {
            other += ticks / 100.0;
        }
    }
    (server, other)
}
