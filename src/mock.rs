//! A fast OpenAI-compatible streaming mock server with known timing
//! (`bench mock-server`).
//!
//! Owns: serving `GET /v1/models`, `POST /v1/chat/completions` and
//! `POST /v1/completions` (streamed or not) with a fixed number of output
//! tokens at a configured pace, and reporting what the server itself observed
//! at `GET /stats` ([`MockStats`]), reset by `POST /stats/reset`. It exists so
//! that a load generator (ours or anyone's) can be checked against a server
//! whose behaviour is known and whose own clock is the reference: a client's
//! TTFT and inter-token figures should match the `/stats` figures, and with
//! zero delays the request rate a client reaches is its own ceiling. Does not
//! own: the CLI flags (the binary's `src/cli/`) or any client-side metric.
//!
//! # Wire format
//! vLLM's: for chat, a role-only first chunk `{"role":"assistant","content":""}`,
//! then token chunks of [`MockConfig::tokens_per_chunk`] tokens each (a token
//! is the 4-byte word `" tok"`; the first [`MockConfig::reasoning_tokens`] are
//! `" hmm"` sent as `reasoning_content`, in chunks of their own), then a chunk
//! with an empty delta and `finish_reason` (`"length"` when the output reached
//! `max_tokens`, else `"stop"`), a usage chunk with `choices: []` when the
//! request set `stream_options.include_usage`, and `data: [DONE]`.
//! Completions send `text` chunks, no role chunk and no reasoning. Every
//! response carries the same `id` (`chatcmpl-mock` / `cmpl-mock`): that keeps
//! every token chunk a pre-rendered, shared buffer, and no client should
//! depend on ids being unique.
//!
//! # Timing
//! `t0` is the moment the whole request body has been read. Response headers
//! go out at once; token chunk `i` (0-based, reasoning and content alike) is
//! written at `t0 + ttft + i * itl`, so `itl` is the gap between chunks (the
//! per-token gap is `itl / tokens_per_chunk`). The role chunk goes with the
//! first token chunk, as vLLM sends it once the first token exists (or at
//! `t0` with [`MockConfig::early_role_chunk`], to catch clients that take the
//! role chunk for the first token). Finish, usage and `[DONE]` follow the
//! last token chunk in the same write. A non-streamed response is written
//! whole when its last chunk would have been, `t0 + ttft + (chunks-1) * itl`.
//!
//! The schedule is absolute rather than "sleep `itl` after each write": a
//! timer that fires late then delays one chunk, not every later one, so
//! the mean gap stays at `itl` however long the response (a request's mean
//! gap is `itl` plus the difference between its last and first chunks'
//! lateness over the number of gaps). A chunk is never early. tokio's timer
//! wheel has millisecond resolution and rounds up, which alone would make
//! chunks 0.5 ms late on average; with [`MockConfig::precise_timing`] (the
//! default) tokio covers the wait up to 2 ms before a deadline and a
//! dedicated thread parked on the kernel's high-resolution timer wakes the
//! task for the rest, typically within 50-100 µs of the deadline.
//!
//! The server measures itself: TTFT is `t0` to the moment the first token
//! chunk is handed to hyper, which writes it to the socket in the same poll
//! (no other task runs in between), and each inter-token gap is the time
//! between consecutive token-chunk hand-overs. These are what `/stats`
//! reports, so a client is judged against what was actually sent, timer
//! slack included, not against the configuration.
//!
//! # Speed
//! Each worker thread runs a current-thread tokio runtime (as oha runs one
//! runtime per core); the first accepts and deals connections round-robin
//! to all of them. They serve HTTP/1.1 keep-alive with `TCP_NODELAY`
//! through hyper directly. A response body is a small state machine polled
//! by hyper's connection task itself (no channel, no extra task); full
//! token chunks are rendered once at start and shared (`Bytes` clones), so
//! a request allocates only its usage chunk. With zero delays every chunk
//! is ready at once and hyper flattens the whole response into one socket
//! write. Statistics are sharded per worker thread in atomics and summed
//! only when `/stats` is read, so the hot path takes no lock and shares no
//! cache line across threads except the in-flight count.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

/// How the mock server behaves. `Default` is a zero-delay server on an
/// ephemeral loopback port sending 128 one-token chunks per response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (see [`MockServer::addr`]).
    pub port: u16,
    /// Time to first token: from the request being read to the first token
    /// chunk being written.
    pub ttft: Duration,
    /// Gap between consecutive token chunks (not between tokens when
    /// `tokens_per_chunk` > 1).
    pub itl: Duration,
    /// Tokens generated per response (before `max_tokens`).
    pub output_tokens: u32,
    /// Tokens per content chunk (0 is taken as 1).
    pub tokens_per_chunk: u32,
    /// Model name reported in responses and by `/v1/models`. Requests may
    /// name any model.
    pub model: String,
    /// Send the usage chunk when a streamed request sets
    /// `stream_options.include_usage` (false imitates servers that never
    /// do). Non-streamed responses always carry usage.
    pub usage: bool,
    /// Chat only: the first this many tokens go out as `reasoning_content`.
    pub reasoning_tokens: u32,
    /// Generate `min(max_tokens, output_tokens)` tokens; when false, always
    /// `output_tokens`.
    pub honour_max_tokens: bool,
    /// Worker threads, each with its own single-threaded runtime (0 = 1).
    pub threads: usize,
    /// Send the role-only chunk as soon as the request is read instead of
    /// with the first token.
    pub early_role_chunk: bool,
    /// Wake for the last 2 ms before each chunk on a dedicated
    /// high-resolution timer thread, so chunks leave within tens of
    /// microseconds of their schedule instead of up to a millisecond late
    /// (tokio's timer resolution). Costs that thread some CPU per chunk;
    /// unused without delays.
    pub precise_timing: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            output_tokens: 128,
            tokens_per_chunk: 1,
            model: "mock".into(),
            usage: true,
            reasoning_tokens: 0,
            honour_max_tokens: true,
            threads: 1,
            early_role_chunk: false,
            precise_timing: true,
        }
    }
}

/// What the server observed, on its own clock, since start or the last
/// reset. Served as JSON by `GET /stats`. Means and percentiles are 0 when
/// there is no sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MockStats {
    /// Generation requests accepted (chat and completions, valid bodies).
    pub requests: u64,
    /// Responses written to the end.
    pub completed: u64,
    /// Responses dropped before the end (the client went away).
    pub aborted: u64,
    /// Requests refused with 4xx (bad JSON, missing fields, unknown path).
    pub errors: u64,
    /// Generation requests being answered now.
    pub in_flight: u64,
    /// Most generation requests answered at once.
    pub peak_in_flight: u64,
    /// Completion tokens written (reasoning included).
    pub tokens_sent: u64,
    /// Token-bearing chunks written (role, finish and usage chunks excluded).
    pub chunks_sent: u64,
    /// Streamed responses whose first token chunk was written.
    pub ttft_samples: u64,
    /// Mean time from request read to first token chunk written.
    pub mean_ttft_ms: f64,
    /// Median of the same (histogram, within 0.4%).
    pub p50_ttft_ms: f64,
    /// 99th percentile of the same (histogram, within 0.4%).
    pub p99_ttft_ms: f64,
    /// Largest TTFT.
    pub max_ttft_ms: f64,
    /// Gaps between consecutive token chunks of a response.
    pub itl_samples: u64,
    /// Mean gap between consecutive token chunks.
    pub mean_itl_ms: f64,
    /// Median gap (histogram, within 0.4%).
    pub p50_itl_ms: f64,
    /// 99th percentile gap (histogram, within 0.4%).
    pub p99_itl_ms: f64,
    /// Largest gap.
    pub max_itl_ms: f64,
    /// Mean time from request read to last token written (whole body for
    /// non-streamed responses), over completed responses.
    pub mean_e2e_ms: f64,
    /// The configured TTFT, for comparison.
    pub configured_ttft_ms: f64,
    /// The configured gap between chunks, for comparison.
    pub configured_itl_ms: f64,
}

/// A running mock server. Stops when dropped or by [`MockServer::shutdown`].
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.cfg)
            .finish()
    }
}

impl MockServer {
    /// Binds `cfg.host:cfg.port` and starts `cfg.threads` worker threads.
    /// The workers have their own runtimes, so the caller's runtime (often
    /// the client under test) does not share timers or CPU time with them.
    pub async fn start(cfg: MockConfig) -> io::Result<MockServer> {
        let listener = std::net::TcpListener::bind((cfg.host, cfg.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let threads = cfg.threads.max(1);
        let paced = !(cfg.ttft.is_zero() && cfg.itl.is_zero());
        let fine = if cfg.precise_timing && paced {
            Some(FineTimer::start()?)
        } else {
            None
        };
        let shared = Arc::new(Shared::new(cfg, threads, fine));
        // Built first so that an early return stops whatever was started
        // (its `Drop` cancels the workers and the timer thread).
        let mut server = MockServer {
            addr,
            shared,
            cancel: CancellationToken::new(),
            done: Vec::with_capacity(threads),
        };
        // Worker 0 accepts and deals connections round-robin to all workers
        // (itself included): load generators open their connections in a
        // burst, which a shared listening socket would hand mostly to
        // whichever worker woke first.
        let mut listener = Some(listener);
        let mut handoff = Vec::with_capacity(threads);
        let mut inboxes = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            handoff.push(tx);
            inboxes.push(rx);
        }
        for (shard, inbox) in inboxes.into_iter().enumerate() {
            // Built here so that any failure is returned by `start`.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let acceptor = match listener.take() {
                Some(l) => {
                    let _guard = rt.enter();
                    Some((tokio::net::TcpListener::from_std(l)?, handoff.clone()))
                }
                None => None,
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            let shared = server.shared.clone();
            let cancel = server.cancel.clone();
            std::thread::Builder::new()
                .name(format!("bench-mock-{shard}"))
                .spawn(move || {
                    rt.block_on(worker(acceptor, inbox, shared, shard, cancel));
                    // Dropping the runtime drops every connection task, so
                    // open connections close with the server.
                    drop(rt);
                    let _ = tx.send(());
                })?;
            server.done.push(rx);
        }
        Ok(server)
    }

    fn stop(&self) {
        self.cancel.cancel();
        if let Some(fine) = &self.shared.fine {
            fine.stop();
        }
    }

    /// The bound address (with the real port when `port` was 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:PORT/v1` (loopback when
    /// bound to an unspecified address).
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/v1", SocketAddr::new(ip, self.addr.port()))
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &MockConfig {
        &self.shared.cfg
    }

    /// What the server observed so far (the same as `GET /stats`).
    pub fn stats(&self) -> MockStats {
        self.shared.stats()
    }

    /// Zeroes the counters (as `POST /stats/reset`); `in_flight` stays and
    /// becomes the new peak. Requests running across the reset count their
    /// remaining chunks afterwards.
    pub fn reset_stats(&self) {
        self.shared.reset();
    }

    /// Stops accepting, closes every connection and waits for the worker
    /// threads to finish.
    pub async fn shutdown(mut self) {
        self.stop();
        for rx in self.done.drain(..) {
            let _ = rx.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Workers stop on their own; waiting here would block an async caller.
        self.stop();
    }
}

/// Runs a mock server until Ctrl-C, printing its URL on start and its
/// statistics on exit (for `bench mock-server`).
pub async fn serve(cfg: MockConfig) -> io::Result<()> {
    let server = MockServer::start(cfg).await?;
    let c = server.config();
    println!(
        "mock server on {} ({} tokens per response, {} per chunk, ttft {} ms, itl {} ms, {} thread{})",
        server.url(),
        c.output_tokens,
        c.tokens_per_chunk.max(1),
        c.ttft.as_secs_f64() * 1e3,
        c.itl.as_secs_f64() * 1e3,
        c.threads.max(1),
        if c.threads.max(1) == 1 { "" } else { "s" },
    );
    println!(
        "its own timings: GET http://{}/stats (POST /stats/reset to zero them); Ctrl-C stops",
        server.addr()
    );
    tokio::signal::ctrl_c().await?;
    let s = server.stats();
    println!(
        "served {} requests ({} completed, {} aborted, {} errors), {} tokens; mean ttft {:.3} ms, mean itl {:.3} ms, peak in flight {}",
        s.requests,
        s.completed,
        s.aborted,
        s.errors,
        s.tokens_sent,
        s.mean_ttft_ms,
        s.mean_itl_ms,
        s.peak_in_flight
    );
    server.shutdown().await;
    Ok(())
}

/// Connections handed from the accepting worker to the others.
type Inbox = tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>;
type Handoff = Vec<tokio::sync::mpsc::UnboundedSender<std::net::TcpStream>>;

/// One worker thread's main task: serve the connections it is dealt and,
/// for worker 0, accept them.
async fn worker(
    acceptor: Option<(tokio::net::TcpListener, Handoff)>,
    mut inbox: Inbox,
    shared: Arc<Shared>,
    shard: usize,
    cancel: CancellationToken,
) {
    let Some((listener, handoff)) = acceptor else {
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                stream = inbox.recv() => match stream {
                    Some(stream) => {
                        if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                            serve_connection(stream, &shared, shard);
                        }
                    }
                    // The acceptor is gone: the server is stopping.
                    None => return,
                },
            }
        }
    };
    let mut next = 0usize;
    loop {
        let stream = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: back off rather
                    // than spin; the listener itself stays usable.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        // Each chunk must leave when written, not when Nagle allows.
        let _ = stream.set_nodelay(true);
        let target = next % handoff.len();
        next = next.wrapping_add(1);
        if target == shard {
            serve_connection(stream, &shared, shard);
        } else if let Ok(stream) = stream.into_std() {
            // Moves to the other worker's reactor; a worker that has
            // stopped drops it, closing the connection.
            let _ = handoff[target].send(stream);
        }
    }
}

/// Serves one HTTP/1.1 keep-alive connection on the current worker.
fn serve_connection(stream: tokio::net::TcpStream, shared: &Arc<Shared>, shard: usize) {
    let shared = shared.clone();
    let arrival = Arc::new(AtomicU64::new(0));
    let stream = ArrivalStream::new(stream, arrival.clone());
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let shared = shared.clone();
            // When this request's first bytes reached the socket (taken
            // here, before the next request can arrive on this connection).
            let arrived = ArrivalStream::take(&arrival);
            async move { Ok::<_, Infallible>(route(&shared, shard, req, arrived).await) }
        });
        // Errors are clients going away; nothing to report.
        let _ = http1::Builder::new()
            .keep_alive(true)
            // No timer is configured; say so instead of having hyper
            // warn about its default header timeout on every connection.
            .header_read_timeout(None)
            // Copy chunks into one buffer and write once per poll: one
            // syscall for a whole zero-delay response instead of one per
            // 16 chunks with vectored writes.
            .writev(false)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

/// A server socket that notes when each request's first bytes arrived:
/// the kernel's receive timestamp (`SO_TIMESTAMPNS`, read with `recvmsg`),
/// or the read time where the kernel gives none. Under a burst of requests
/// on one core, a request can wait in the socket for milliseconds before
/// the server gets to it; a clock started at the read would hide that wait,
/// one started at arrival does not.
struct ArrivalStream {
    inner: tokio::net::TcpStream,
    /// Arrival of the first unread request (ns after [`arrival_base`], +1;
    /// 0 = none since the last [`ArrivalStream::take`]).
    arrival: Arc<AtomicU64>,
}

/// The origin of arrival times.
fn arrival_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl ArrivalStream {
    fn new(inner: tokio::net::TcpStream, arrival: Arc<AtomicU64>) -> Self {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                inner.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        Self { inner, arrival }
    }

    /// The arrival noted since the last call, and reset.
    fn take(arrival: &AtomicU64) -> Option<Instant> {
        match arrival.swap(0, Ordering::Relaxed) {
            0 => None,
            ns => Some(arrival_base() + Duration::from_nanos(ns - 1)),
        }
    }

    /// `recvmsg` into `buf`; returns the bytes read and the kernel receive
    /// time if it sent one.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        use std::os::fd::AsRawFd;
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(self.inner.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut when = None;
        // SAFETY: the CMSG_* helpers walk the control buffer the kernel
        // filled, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                    when = Some(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok((n as usize, when))
    }

    /// Note an arrival if none is pending.
    fn note(&self, kernel: Option<SystemTime>) {
        if self.arrival.load(Ordering::Relaxed) != 0 {
            return;
        }
        let now = Instant::now();
        // Kernel times are wall-clock: place them on the monotonic clock by
        // their distance from now.
        let at = kernel
            .and_then(|k| SystemTime::now().duration_since(k).ok())
            .and_then(|ago| now.checked_sub(ago))
            .unwrap_or(now);
        let ns = at.saturating_duration_since(arrival_base()).as_nanos() as u64;
        self.arrival.store(ns + 1, Ordering::Relaxed);
    }
}

impl tokio::io::AsyncRead for ArrivalStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.inner.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let unfilled = buf.initialize_unfilled();
            match this
                .inner
                .try_io(tokio::io::Interest::READABLE, || this.recv(unfilled))
            {
                Ok((n, kernel)) => {
                    if n > 0 {
                        this.note(kernel);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for ArrivalStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------
// Routing and requests

/// Request bodies larger than this are refused (no prompt is this long).
const MAX_BODY: usize = 64 << 20;

async fn route(
    shared: &Arc<Shared>,
    shard: usize,
    req: Request<Incoming>,
    arrived: Option<Instant>,
) -> Response<MockBody> {
    let path = req.uri().path();
    // The base URL ends in /v1; accept the endpoints with or without it.
    let path = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    match (req.method(), path) {
        (&Method::POST, "/chat/completions") => generate(shared, shard, req, true, arrived).await,
        (&Method::POST, "/completions") => generate(shared, shard, req, false, arrived).await,
        (&Method::GET, "/models") => json_response(StatusCode::OK, shared.models.clone()),
        (&Method::GET, "/stats") => stats_response(&shared.stats()),
        (&Method::POST, "/stats/reset") => {
            // Answer with what was counted up to the reset.
            let before = shared.stats();
            shared.reset();
            stats_response(&before)
        }
        (&Method::GET, "/health") => json_response(StatusCode::OK, Bytes::from_static(b"{}")),
        (method, _) => {
            let msg = format!("no route for {method} {}", req.uri().path());
            shared.error(shard, StatusCode::NOT_FOUND, &msg)
        }
    }
}

async fn generate(
    shared: &Arc<Shared>,
    shard: usize,
    req: Request<Incoming>,
    chat: bool,
    arrived: Option<Instant>,
) -> Response<MockBody> {
    let body = match read_body(req.into_body()).await {
        Ok(body) => body,
        Err(msg) => return shared.error(shard, StatusCode::BAD_REQUEST, &msg),
    };
    // The clock starts when the request reached the socket (the kernel's
    // receive time), so time the request spent waiting for this server to
    // read it counts, as it does for the client; without kernel timestamps,
    // when it has been read.
    let now = Instant::now();
    let t0 = arrived.filter(|a| *a <= now).unwrap_or(now);
    let req: GenRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(err) => {
            let msg = format!("invalid request body: {err}");
            return shared.error(shard, StatusCode::BAD_REQUEST, &msg);
        }
    };
    let plan = match Plan::new(&shared.cfg, &req, chat) {
        Ok(plan) => plan,
        Err(msg) => return shared.error(shard, StatusCode::BAD_REQUEST, msg),
    };
    let guard = InFlight::enter(shared.clone(), shard);
    if plan.stream {
        let mut response = Response::new(MockBody::Stream(Box::new(StreamState::new(
            guard, plan, t0,
        ))));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        response
    } else {
        let wire = shared.wire(chat);
        let bytes = Bytes::from(wire.whole(&plan));
        let due = plan.due(&shared.cfg, t0, plan.chunks().saturating_sub(1));
        let len = bytes.len();
        let mut response = Response::new(MockBody::Whole(Box::new(WholeState {
            guard,
            pacer: Pacer::new(&shared.cfg),
            due,
            t0,
            tokens: plan.reasoning + plan.content,
            body: Some(bytes),
        })));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        response
    }
}

/// Reads a whole request body, without copying when it came in one frame.
async fn read_body(body: Incoming) -> Result<Bytes, String> {
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| format!("reading the request body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        match &first {
            None => first = Some(data),
            Some(f) => {
                if rest.is_empty() {
                    rest.extend_from_slice(f);
                }
                rest.extend_from_slice(&data);
            }
        }
        if first.as_ref().map_or(0, Bytes::len).max(rest.len()) > MAX_BODY {
            return Err(format!("request body over {MAX_BODY} bytes"));
        }
    }
    Ok(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        Bytes::from(rest)
    })
}

/// The fields of a generation request the mock looks at; the rest is
/// skipped unparsed.
#[derive(Deserialize)]
struct GenRequest {
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    messages: Option<Words>,
    #[serde(default)]
    prompt: Option<Words>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A prompt's length in whitespace-separated words, counted while parsing
/// (no string is kept): text counts its words, a number counts as one token
/// id, lists add up, and objects count their `content` and `text` fields
/// (chat messages and content parts).
struct Words(u64);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WordsVisitor)
    }
}

struct WordsVisitor;

impl<'de> Visitor<'de> for WordsVisitor {
    type Value = Words;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a prompt: text, token ids, messages or a list of them")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Words, E> {
        Ok(Words(s.split_whitespace().count() as u64))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Words, E> {
        Ok(Words(1))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Words, E> {
        Ok(Words(1))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
        let mut n = 0u64;
        while let Some(Words(w)) = seq.next_element()? {
            n = n.saturating_add(w);
        }
        Ok(Words(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Words, A::Error> {
        let mut n = 0u64;
        while let Some(key) = map.next_key::<TextKey>()? {
            if key.0 {
                n = n.saturating_add(map.next_value::<Words>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Words(n))
    }
}

/// An object key: true for the fields that hold prompt text.
struct TextKey(bool);

impl<'de> Deserialize<'de> for TextKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TextKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TextKey, E> {
                Ok(TextKey(matches!(s, "content" | "text")))
            }
        }
        d.deserialize_str(V)
    }
}

/// What to send for one request.
#[derive(Debug, Clone, Copy)]
struct Plan {
    chat: bool,
    stream: bool,
    include_usage: bool,
    /// Reasoning tokens, sent first (chat only).
    reasoning: u32,
    /// Content tokens.
    content: u32,
    /// Tokens per chunk (≥ 1).
    per_chunk: u32,
    /// `finish_reason: "length"` (else `"stop"`).
    length: bool,
    prompt_tokens: u64,
}

impl Plan {
    fn new(cfg: &MockConfig, req: &GenRequest, chat: bool) -> Result<Plan, &'static str> {
        let prompt = if chat {
            req.messages
                .as_ref()
                .ok_or("chat requests need `messages`")?
        } else {
            req.prompt
                .as_ref()
                .ok_or("completion requests need `prompt`")?
        };
        let max = req.max_completion_tokens.or(req.max_tokens);
        if max == Some(0) {
            return Err("max_tokens must be at least 1");
        }
        let n = match max {
            Some(m) if cfg.honour_max_tokens => u64::from(cfg.output_tokens).min(m) as u32,
            _ => cfg.output_tokens,
        };
        let reasoning = if chat { cfg.reasoning_tokens.min(n) } else { 0 };
        let stream = req.stream.unwrap_or(false);
        Ok(Plan {
            chat,
            stream,
            include_usage: stream
                && cfg.usage
                && req
                    .stream_options
                    .as_ref()
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
            reasoning,
            content: n - reasoning,
            per_chunk: cfg.tokens_per_chunk.max(1),
            length: max.is_some_and(|m| u64::from(n) >= m),
            prompt_tokens: prompt.0,
        })
    }

    fn reasoning_chunks(&self) -> u32 {
        self.reasoning.div_ceil(self.per_chunk)
    }

    /// Token-bearing chunks in a streamed response.
    fn chunks(&self) -> u32 {
        self.reasoning_chunks() + self.content.div_ceil(self.per_chunk)
    }

    /// When token chunk `i` is due: `t0 + ttft + i * itl`.
    fn due(&self, cfg: &MockConfig, t0: Instant, i: u32) -> Instant {
        let offset = cfg.ttft.saturating_add(cfg.itl.saturating_mul(i));
        // An absurd configured delay saturates instead of panicking.
        t0.checked_add(offset)
            .or_else(|| t0.checked_add(Duration::from_secs(1 << 32)))
            .unwrap_or(t0)
    }

    fn usage_json(&self) -> String {
        let n = self.reasoning + self.content;
        let mut s = format!(
            r#"{{"prompt_tokens":{},"total_tokens":{},"completion_tokens":{}"#,
            self.prompt_tokens,
            self.prompt_tokens + u64::from(n),
            n
        );
        if self.reasoning > 0 {
            s.push_str(&format!(
                r#","completion_tokens_details":{{"reasoning_tokens":{}}}"#,
                self.reasoning
            ));
        }
        s.push('}');
        s
    }
}

// ---------------------------------------------------------------------------
// Pre-rendered wire pieces

const CONTENT_TOKEN: &str = " tok";
const REASONING_TOKEN: &str = " hmm";

/// The bytes of one endpoint's responses, rendered once.
struct Wire {
    chat: bool,
    /// `data: {"id":..,"object":..,"created":..,"model":..,`
    head: String,
    /// Role-only chunk (chat).
    role: Bytes,
    /// A chunk of `per_chunk` content tokens.
    content_chunk: Bytes,
    /// A chunk of `per_chunk` reasoning tokens.
    reasoning_chunk: Bytes,
    /// The finish chunks.
    finish_length: Bytes,
    finish_stop: Bytes,
}

impl Wire {
    fn new(cfg: &MockConfig, chat: bool, created: u64) -> Wire {
        let (id, object) = if chat {
            ("chatcmpl-mock", "chat.completion.chunk")
        } else {
            ("cmpl-mock", "text_completion")
        };
        // Serialising a string cannot fail; the fallback is never used.
        let model = serde_json::to_string(&cfg.model).unwrap_or_else(|_| "\"mock\"".into());
        let head = format!(
            r#"data: {{"id":"{id}","object":"{object}","created":{created},"model":{model},"#
        );
        let k = cfg.tokens_per_chunk.max(1);
        let mut wire = Wire {
            chat,
            head,
            role: Bytes::new(),
            content_chunk: Bytes::new(),
            reasoning_chunk: Bytes::new(),
            finish_length: Bytes::new(),
            finish_stop: Bytes::new(),
        };
        wire.role = wire.choice_chunk(r#""delta":{"role":"assistant","content":""}"#, "null");
        wire.content_chunk = wire.token_chunk(false, k);
        wire.reasoning_chunk = wire.token_chunk(true, k);
        let empty = if chat {
            r#""delta":{}"#
        } else {
            r#""text":"""#
        };
        wire.finish_length = wire.choice_chunk(empty, r#""length""#);
        wire.finish_stop = wire.choice_chunk(empty, r#""stop""#);
        wire
    }

    fn choice_chunk(&self, delta: &str, finish: &str) -> Bytes {
        Bytes::from(
            format!(
                r#"{}"choices":[{{"index":0,{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#,
                self.head
            ) + "\n\n",
        )
    }

    fn token_chunk(&self, reasoning: bool, tokens: u32) -> Bytes {
        let word = if reasoning {
            REASONING_TOKEN
        } else {
            CONTENT_TOKEN
        };
        let text = word.repeat(tokens as usize);
        let delta = match (self.chat, reasoning) {
            (true, true) => format!(r#""delta":{{"reasoning_content":"{text}"}}"#),
            (true, false) => format!(r#""delta":{{"content":"{text}"}}"#),
            (false, _) => format!(r#""text":"{text}""#),
        };
        self.choice_chunk(&delta, "null")
    }

    /// Token chunk `i` of `plan` and the number of tokens in it.
    fn chunk(&self, plan: &Plan, i: u32) -> (Bytes, u32) {
        let k = plan.per_chunk;
        let rc = plan.reasoning_chunks();
        let (reasoning, index, total) = if i < rc {
            (true, i, plan.reasoning)
        } else {
            (false, i - rc, plan.content)
        };
        let tokens = k.min(total - index * k);
        let bytes = match (tokens == k, reasoning) {
            (true, true) => self.reasoning_chunk.clone(),
            (true, false) => self.content_chunk.clone(),
            // Only the last chunk of each kind can be short.
            (false, _) => self.token_chunk(reasoning, tokens),
        };
        (bytes, tokens)
    }

    /// Finish chunk, usage chunk if asked, `[DONE]`: one buffer, one frame.
    fn tail(&self, plan: &Plan) -> Bytes {
        let finish = if plan.length {
            &self.finish_length
        } else {
            &self.finish_stop
        };
        let mut out = Vec::with_capacity(finish.len() + self.head.len() + 160);
        out.extend_from_slice(finish);
        if plan.include_usage {
            out.extend_from_slice(self.head.as_bytes());
            out.extend_from_slice(br#""choices":[],"usage":"#);
            out.extend_from_slice(plan.usage_json().as_bytes());
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Bytes::from(out)
    }

    /// A non-streamed response body.
    fn whole(&self, plan: &Plan) -> String {
        let finish = if plan.length { "length" } else { "stop" };
        let content = CONTENT_TOKEN.repeat(plan.content as usize);
        // `head` minus its `data: ` prefix, with the non-chunk object name.
        let head = &self.head["data: ".len()..];
        let head = if self.chat {
            head.replace("chat.completion.chunk", "chat.completion")
        } else {
            head.to_string()
        };
        let choice = if self.chat {
            let reasoning = if plan.reasoning > 0 {
                format!("\"{}\"", REASONING_TOKEN.repeat(plan.reasoning as usize))
            } else {
                "null".into()
            };
            format!(
                r#"{{"index":0,"message":{{"role":"assistant","content":"{content}","reasoning_content":{reasoning}}},"logprobs":null,"finish_reason":"{finish}"}}"#
            )
        } else {
            format!(
                r#"{{"index":0,"text":"{content}","logprobs":null,"finish_reason":"{finish}"}}"#
            )
        };
        format!(
            r#"{head}"choices":[{choice}],"usage":{}}}"#,
            plan.usage_json()
        )
    }
}

// ---------------------------------------------------------------------------
// Response bodies

/// The response body: a state machine hyper polls from the connection task.
enum MockBody {
    /// A body already known (errors, `/stats`, `/v1/models`).
    Ready(Option<Bytes>),
    /// A non-streamed completion, released at its due time.
    Whole(Box<WholeState>),
    /// A streamed completion.
    Stream(Box<StreamState>),
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            MockBody::Ready(body) => Poll::Ready(body.take()),
            MockBody::Whole(state) => state.poll_next(cx),
            MockBody::Stream(state) => state.poll_next(cx),
        };
        frame.map(|b| b.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        // Lets hyper write the terminating chunk together with the last one.
        match self {
            MockBody::Ready(body) => body.is_none(),
            MockBody::Whole(state) => state.body.is_none(),
            MockBody::Stream(state) => state.finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Ready(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Ready(None) => SizeHint::with_exact(0),
            MockBody::Whole(state) => {
                SizeHint::with_exact(state.body.as_ref().map_or(0, |b| b.len() as u64))
            }
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Waits for absolute deadlines; free when the server has no delays.
///
/// tokio's timer wheel has millisecond resolution and rounds deadlines up,
/// so on its own it sends chunks 0.5 ms late on average. With a
/// [`FineTimer`] the tokio timer only covers the wait up to
/// [`FINE_WINDOW`] before the deadline, and the fine timer wakes the task
/// for the rest, within tens of microseconds.
struct Pacer {
    paced: bool,
    timer: Option<Pin<Box<Sleep>>>,
    /// The deadline already handed to the fine timer.
    fine_due: Option<Instant>,
}

/// How long before a deadline the fine timer takes over: more than the
/// tokio timer's 1 ms rounding, so that it always wakes before the deadline.
const FINE_WINDOW: Duration = Duration::from_millis(2);

impl Pacer {
    fn new(cfg: &MockConfig) -> Pacer {
        Pacer {
            paced: !(cfg.ttft.is_zero() && cfg.itl.is_zero()),
            timer: None,
            fine_due: None,
        }
    }

    /// True once `due` has passed; otherwise arranges a wake-up at `due`.
    fn ready(&mut self, due: Instant, cx: &mut Context<'_>, fine: Option<&FineTimer>) -> bool {
        if !self.paced {
            return true;
        }
        loop {
            let now = Instant::now();
            if now >= due {
                return true;
            }
            let coarse = match fine {
                Some(fine) if due - now <= FINE_WINDOW => {
                    if self.fine_due != Some(due) {
                        self.fine_due = Some(due);
                        fine.wake_at(due, cx.waker());
                    }
                    return false;
                }
                Some(_) => due - FINE_WINDOW,
                None => due,
            };
            let deadline = tokio::time::Instant::from_std(coarse);
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            // Fired: the loop re-reads the clock, so a chunk is never early.
        }
    }
}

/// A timer thread for the last stretch before a chunk's deadline: a heap of
/// (deadline, waker) and a thread parked until the earliest deadline (the
/// kernel's high-resolution timers wake it within about 50 µs). It only
/// ever holds the requests within [`FINE_WINDOW`] of a deadline.
struct FineTimer {
    queue: Mutex<BinaryHeap<Reverse<FineEntry>>>,
    thread: OnceLock<std::thread::Thread>,
    stop: AtomicBool,
}

struct FineEntry {
    due: Instant,
    waker: Waker,
}

impl PartialEq for FineEntry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl Eq for FineEntry {}

impl PartialOrd for FineEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FineEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

impl FineTimer {
    fn start() -> io::Result<Arc<FineTimer>> {
        let timer = Arc::new(FineTimer {
            queue: Mutex::new(BinaryHeap::new()),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
        });
        let run = timer.clone();
        let handle = std::thread::Builder::new()
            .name("bench-mock-timer".into())
            .spawn(move || run.run())?;
        let _ = timer.thread.set(handle.thread().clone());
        Ok(timer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<FineEntry>>> {
        // A waker that panicked cannot leave the heap inconsistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_at(&self, due: Instant, waker: &Waker) {
        let mut queue = self.lock();
        let earliest = queue.peek().is_none_or(|Reverse(e)| due < e.due);
        queue.push(Reverse(FineEntry {
            due,
            waker: waker.clone(),
        }));
        drop(queue);
        // Only a new earliest deadline changes how long the thread sleeps.
        if earliest && let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn run(&self) {
        let mut ready = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            let next = {
                let mut queue = self.lock();
                let now = Instant::now();
                while queue.peek().is_some_and(|Reverse(e)| e.due <= now) {
                    if let Some(Reverse(e)) = queue.pop() {
                        ready.push(e.waker);
                    }
                }
                queue.peek().map(|Reverse(e)| e.due)
            };
            // Woken outside the lock: a wake may run the task inline.
            for waker in ready.drain(..) {
                waker.wake();
            }
            match next {
                Some(due) => {
                    std::thread::park_timeout(due.saturating_duration_since(Instant::now()))
                }
                None => std::thread::park(),
            }
        }
        self.lock().clear();
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// Counts a generation request in flight until dropped; a drop before
/// [`InFlight::complete`] is an abort (the client went away).
struct InFlight {
    shared: Arc<Shared>,
    shard: usize,
    completed: bool,
}

impl InFlight {
    fn enter(shared: Arc<Shared>, shard: usize) -> InFlight {
        let s = &shared.shards[shard];
        s.requests.fetch_add(1, Ordering::Relaxed);
        let now = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight {
            shared,
            shard,
            completed: false,
        }
    }

    fn shard(&self) -> &Shard {
        &self.shared.shards[self.shard]
    }

    fn complete(&mut self, e2e: Duration) {
        self.completed = true;
        let s = self.shard();
        s.completed.fetch_add(1, Ordering::Relaxed);
        s.e2e_sum_ns.fetch_add(nanos(e2e), Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.completed {
            self.shard().aborted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A non-streamed completion: its body, held until the last chunk would
/// have been written.
struct WholeState {
    guard: InFlight,
    pacer: Pacer,
    due: Instant,
    t0: Instant,
    tokens: u32,
    body: Option<Bytes>,
}

impl WholeState {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.body.is_none() {
            return Poll::Ready(None);
        }
        if !self
            .pacer
            .ready(self.due, cx, self.guard.shared.fine.as_deref())
        {
            return Poll::Pending;
        }
        let now = Instant::now();
        let s = self.guard.shard();
        s.tokens
            .fetch_add(u64::from(self.tokens), Ordering::Relaxed);
        self.guard.complete(now - self.t0);
        Poll::Ready(self.body.take())
    }
}

/// A streamed completion: which chunk is next and when the previous one
/// left, for the gap statistics.
struct StreamState {
    guard: InFlight,
    pacer: Pacer,
    plan: Plan,
    t0: Instant,
    /// Role chunk still to send (chat).
    role: Option<Bytes>,
    /// Next token chunk.
    next: u32,
    chunks: u32,
    /// When the previous token chunk was handed to hyper.
    last: Option<Instant>,
    finished: bool,
}

impl StreamState {
    fn new(guard: InFlight, plan: Plan, t0: Instant) -> StreamState {
        let pacer = Pacer::new(&guard.shared.cfg);
        let role = plan.chat.then(|| guard.shared.wire(true).role.clone());
        StreamState {
            guard,
            pacer,
            chunks: plan.chunks(),
            plan,
            t0,
            role,
            next: 0,
            last: None,
            finished: false,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let cfg = &self.guard.shared.cfg;
        if cfg.early_role_chunk
            && let Some(role) = self.role.take()
        {
            return Poll::Ready(Some(role));
        }
        // The tail of a response with no tokens goes out when a first token
        // would have.
        let due = self.plan.due(cfg, self.t0, self.next);
        if !self.pacer.ready(due, cx, self.guard.shared.fine.as_deref()) {
            return Poll::Pending;
        }
        if let Some(role) = self.role.take() {
            // With the first token, in the same write: the next poll finds
            // chunk 0 due already.
            return Poll::Ready(Some(role));
        }
        let shared = &self.guard.shared;
        let wire = shared.wire(self.plan.chat);
        if self.next < self.chunks {
            let (bytes, tokens) = wire.chunk(&self.plan, self.next);
            let now = Instant::now();
            let s = &shared.shards[self.guard.shard];
            match self.last {
                None => s.record_ttft(now - self.t0),
                Some(last) => s.record_itl(now - last),
            }
            s.tokens.fetch_add(u64::from(tokens), Ordering::Relaxed);
            s.chunks.fetch_add(1, Ordering::Relaxed);
            self.last = Some(now);
            self.next += 1;
            return Poll::Ready(Some(bytes));
        }
        let tail = wire.tail(&self.plan);
        let end = self.last.unwrap_or_else(Instant::now);
        self.guard.complete(end - self.t0);
        self.finished = true;
        Poll::Ready(Some(tail))
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response<MockBody> {
    let mut response = Response::new(MockBody::Ready(Some(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn stats_response(stats: &MockStats) -> Response<MockBody> {
    // Plain numbers always serialise.
    let body = serde_json::to_vec(stats).unwrap_or_default();
    json_response(StatusCode::OK, Bytes::from(body))
}

// ---------------------------------------------------------------------------
// Statistics

/// State shared by the worker threads.
struct Shared {
    cfg: MockConfig,
    chat: Wire,
    completions: Wire,
    models: Bytes,
    shards: Box<[Shard]>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    /// The sub-millisecond timer, when pacing precisely.
    fine: Option<Arc<FineTimer>>,
}

impl Shared {
    fn new(cfg: MockConfig, threads: usize, fine: Option<Arc<FineTimer>>) -> Shared {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let models = serde_json::json!({
            "object": "list",
            "data": [{"id": cfg.model, "object": "model", "created": created, "owned_by": "bench-mock"}],
        })
        .to_string();
        Shared {
            chat: Wire::new(&cfg, true, created),
            completions: Wire::new(&cfg, false, created),
            models: Bytes::from(models),
            shards: (0..threads).map(|_| Shard::default()).collect(),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            fine,
            cfg,
        }
    }

    fn wire(&self, chat: bool) -> &Wire {
        if chat { &self.chat } else { &self.completions }
    }

    fn error(&self, shard: usize, status: StatusCode, msg: &str) -> Response<MockBody> {
        self.shards[shard].errors.fetch_add(1, Ordering::Relaxed);
        let error_type = if status == StatusCode::NOT_FOUND {
            "NotFoundError"
        } else {
            "BadRequestError"
        };
        let body = serde_json::json!({
            "object": "error",
            "error": {"message": msg, "type": error_type, "param": null, "code": status.as_u16()},
        });
        json_response(status, Bytes::from(body.to_string()))
    }

    fn stats(&self) -> MockStats {
        let sum = |f: fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        let max = |f: fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        };
        let mean = |sum_ns: u64, n: u64| {
            if n == 0 {
                0.0
            } else {
                sum_ns as f64 / n as f64 / 1e6
            }
        };
        let ttft_n = sum(|s| &s.ttft_n);
        let itl_n = sum(|s| &s.itl_n);
        let completed = sum(|s| &s.completed);
        let ttft_hist = Histogram::merged(self.shards.iter().map(|s| &s.ttft_hist));
        let itl_hist = Histogram::merged(self.shards.iter().map(|s| &s.itl_hist));
        let max_ttft_ns = max(|s| &s.ttft_max_ns);
        let max_itl_ns = max(|s| &s.itl_max_ns);
        MockStats {
            requests: sum(|s| &s.requests),
            completed,
            aborted: sum(|s| &s.aborted),
            errors: sum(|s| &s.errors),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            tokens_sent: sum(|s| &s.tokens),
            chunks_sent: sum(|s| &s.chunks),
            ttft_samples: ttft_n,
            mean_ttft_ms: mean(sum(|s| &s.ttft_sum_ns), ttft_n),
            p50_ttft_ms: percentile_ms(&ttft_hist, 0.50, max_ttft_ns),
            p99_ttft_ms: percentile_ms(&ttft_hist, 0.99, max_ttft_ns),
            max_ttft_ms: max_ttft_ns as f64 / 1e6,
            itl_samples: itl_n,
            mean_itl_ms: mean(sum(|s| &s.itl_sum_ns), itl_n),
            p50_itl_ms: percentile_ms(&itl_hist, 0.50, max_itl_ns),
            p99_itl_ms: percentile_ms(&itl_hist, 0.99, max_itl_ns),
            max_itl_ms: max_itl_ns as f64 / 1e6,
            mean_e2e_ms: mean(sum(|s| &s.e2e_sum_ns), completed),
            configured_ttft_ms: self.cfg.ttft.as_secs_f64() * 1e3,
            configured_itl_ms: self.cfg.itl.as_secs_f64() * 1e3,
        }
    }

    fn reset(&self) {
        for s in self.shards.iter() {
            s.reset();
        }
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// One worker thread's counters. Only that thread writes them, so the
/// atomics never bounce between cores; aligned so shards do not share a
/// cache line.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    requests: AtomicU64,
    completed: AtomicU64,
    aborted: AtomicU64,
    errors: AtomicU64,
    tokens: AtomicU64,
    chunks: AtomicU64,
    ttft_n: AtomicU64,
    ttft_sum_ns: AtomicU64,
    ttft_max_ns: AtomicU64,
    itl_n: AtomicU64,
    itl_sum_ns: AtomicU64,
    itl_max_ns: AtomicU64,
    e2e_sum_ns: AtomicU64,
    ttft_hist: Histogram,
    itl_hist: Histogram,
}

impl Shard {
    fn record_ttft(&self, d: Duration) {
        let ns = nanos(d);
        self.ttft_n.fetch_add(1, Ordering::Relaxed);
        self.ttft_sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.ttft_max_ns.fetch_max(ns, Ordering::Relaxed);
        self.ttft_hist.record(ns);
    }

    fn record_itl(&self, d: Duration) {
        let ns = nanos(d);
        self.itl_n.fetch_add(1, Ordering::Relaxed);
        self.itl_sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.itl_max_ns.fetch_max(ns, Ordering::Relaxed);
        self.itl_hist.record(ns);
    }

    fn reset(&self) {
        for a in [
            &self.requests,
            &self.completed,
            &self.aborted,
            &self.errors,
            &self.tokens,
            &self.chunks,
            &self.ttft_n,
            &self.ttft_sum_ns,
            &self.ttft_max_ns,
            &self.itl_n,
            &self.itl_sum_ns,
            &self.itl_max_ns,
            &self.e2e_sum_ns,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.ttft_hist.reset();
        self.itl_hist.reset();
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Log-linear histogram of microseconds: exact below 256 µs, then 128
/// buckets per power of two (a bucket's midpoint is within 1/256 of any
/// value in it), up to 2^41 µs (25 days; longer is clamped).
struct Histogram(Box<[AtomicU64]>);

const HIST_SUB_BITS: u32 = 7;
const HIST_SUB: u64 = 1 << HIST_SUB_BITS;
const HIST_EXACT: u64 = 2 * HIST_SUB;
const HIST_OCTAVES: u64 = 33;
const HIST_BUCKETS: usize = (HIST_EXACT + HIST_OCTAVES * HIST_SUB) as usize;

impl Default for Histogram {
    fn default() -> Self {
        Histogram((0..HIST_BUCKETS).map(|_| AtomicU64::new(0)).collect())
    }
}

impl Histogram {
    fn bucket(us: u64) -> usize {
        if us < HIST_EXACT {
            return us as usize;
        }
        let msb = 63 - u64::from(us.leading_zeros()); // > HIST_SUB_BITS
        let shift = msb - u64::from(HIST_SUB_BITS); // `us >> shift` is in [SUB, 2 SUB)
        let idx = HIST_EXACT + (shift - 1) * HIST_SUB + ((us >> shift) - HIST_SUB);
        (idx as usize).min(HIST_BUCKETS - 1)
    }

    /// The middle of bucket `idx`, in microseconds.
    fn midpoint_us(idx: usize) -> f64 {
        let idx = idx as u64;
        if idx < HIST_EXACT {
            return idx as f64 + 0.5;
        }
        let j = idx - HIST_EXACT;
        let shift = j / HIST_SUB + 1;
        let lo = (j % HIST_SUB + HIST_SUB) << shift;
        lo as f64 + (1u64 << shift) as f64 / 2.0
    }

    fn record(&self, ns: u64) {
        self.0[Self::bucket(ns / 1000)].fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for b in self.0.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    fn merged<'a>(hists: impl Iterator<Item = &'a Histogram>) -> Vec<u64> {
        let mut counts = vec![0u64; HIST_BUCKETS];
        for h in hists {
            for (c, b) in counts.iter_mut().zip(h.0.iter()) {
                *c += b.load(Ordering::Relaxed);
            }
        }
        counts
    }
}

/// Nearest-rank percentile of merged histogram counts, in milliseconds,
/// never above the exact maximum.
fn percentile_ms(counts: &[u64], p: f64, max_ns: u64) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (idx, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return (Histogram::midpoint_us(idx) / 1e3).min(max_ns as f64 / 1e6);
        }
    }
    max_ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_contiguous_and_tight() {
        let mut prev = 0;
        for us in 0..2_000_000u64 {
            let b = Histogram::bucket(us);
            assert!(b == prev || b == prev + 1, "gap at {us} µs");
            prev = b;
            let mid = Histogram::midpoint_us(b);
            assert!((mid - us as f64).abs() <= (us as f64 / 256.0).max(0.5) + 1e-9);
        }
        assert_eq!(Histogram::bucket(u64::MAX), HIST_BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000);
        }
        let counts = Histogram::merged(std::iter::once(&h));
        let p50 = percentile_ms(&counts, 0.5, 100_000_000);
        let p99 = percentile_ms(&counts, 0.99, 100_000_000);
        assert!((p50 - 50.0).abs() < 0.5, "{p50}");
        assert!((p99 - 99.0).abs() < 1.0, "{p99}");
        assert_eq!(percentile_ms(&[0; 4], 0.5, 0), 0.0);
    }

    #[test]
    fn prompt_words_are_counted_in_every_shape() {
        let words = |s: &str| serde_json::from_str::<Words>(s).map(|w| w.0).ok();
        assert_eq!(words(r#""one two  three""#), Some(3));
        assert_eq!(words(r#"[1, 2, 3, 4]"#), Some(4));
        assert_eq!(words(r#"["a b", "c"]"#), Some(3));
        assert_eq!(
            words(
                r#"[{"role":"system","content":"be brief"},
                    {"role":"user","content":[{"type":"text","text":"hi there you"},
                                              {"type":"image_url","image_url":{"url":"x y"}}]}]"#
            ),
            Some(5)
        );
    }

    #[test]
    fn chunks_split_reasoning_and_content() {
        let cfg = MockConfig {
            output_tokens: 10,
            tokens_per_chunk: 4,
            reasoning_tokens: 3,
            ..MockConfig::default()
        };
        let req: GenRequest =
            serde_json::from_str(r#"{"messages":[],"stream":true,"max_tokens":9}"#)
                .expect("request");
        let plan = Plan::new(&cfg, &req, true).expect("plan");
        assert_eq!((plan.reasoning, plan.content, plan.length), (3, 6, true));
        // 3 reasoning tokens in one chunk, 6 content tokens in 4 + 2.
        assert_eq!(plan.chunks(), 3);
        let wire = Wire::new(&cfg, true, 0);
        let tokens: Vec<u32> = (0..3).map(|i| wire.chunk(&plan, i).1).collect();
        assert_eq!(tokens, [3, 4, 2]);
        let (first, _) = wire.chunk(&plan, 0);
        let json: serde_json::Value = serde_json::from_slice(
            first
                .strip_prefix(b"data: ")
                .and_then(|b| b.strip_suffix(b"\n\n"))
                .expect("sse framing"),
        )
        .expect("json");
        assert_eq!(
            json["choices"][0]["delta"]["reasoning_content"],
            " hmm hmm hmm"
        );
    }
}
