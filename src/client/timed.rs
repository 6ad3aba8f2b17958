//! The perf tool's request path: one attempt, no retries, every SSE event
//! timestamped when its bytes were read.
//!
//! Owns the hot loop of `bench perf`. It shares the connection pool, body
//! building, SSE parser and error classification with [`Client::generate`],
//! but keeps the loop lean: the request body is serialised before the clock
//! starts, each socket read takes one `Instant::now()` shared by the events it
//! completed, events are classified by a borrowing parse of the first choice
//! (no per-event `Vec` or `String`), and answer text is kept only when asked
//! (for a tokenizer count when the server reports no usage).

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::events::{EventKind, EventRecord};
use super::h1::H1Conn;
use super::parse::error_message;
use super::retry::kind_for_status;
use super::sse::SseParser;
use super::{Client, ErrorKind, Failure, Usage};

/// Everything observed about one request, times relative to `sent`.
#[derive(Debug)]
pub struct TimedResponse {
    /// When the request was handed to the connection.
    pub sent: Instant,
    /// Response headers, µs after `sent`.
    pub headers_us: Option<u64>,
    /// Events in arrival order (streaming).
    pub events: Vec<EventRecord>,
    /// Body complete / stream closed, µs after `sent`.
    pub end_us: Option<u64>,
    /// Server usage.
    pub usage: Option<Usage>,
    /// Finish reason.
    pub finish_reason: Option<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Failure, if any.
    pub error: Option<(ErrorKind, String)>,
    /// Generated text, when kept.
    pub text: Option<String>,
    /// Bytes of generated text (content + reasoning).
    pub output_chars: u64,
    /// Token-bearing events.
    pub token_events: u64,
}

impl TimedResponse {
    fn failed(&mut self, kind: ErrorKind, message: String) {
        // Recorded in requests.jsonl: a server may echo the key or a header.
        self.error = Some((kind, crate::redact::scrub(&message)));
    }
}

/// Microseconds from `a` to `b`.
fn us(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_micros() as u64
}

/// A response body read piece by piece into a caller's buffer, with the
/// time of the socket read that delivered each piece.
trait BodySource {
    /// The next piece into `buf` (replacing its content): `Some(read time)`
    /// (`None` when the bytes were already buffered), or `None` at the end.
    async fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Option<Instant>>, Failure>;
}

/// reqwest's body (any URL, TLS included).
struct ReqwestBody(reqwest::Response);

impl BodySource for ReqwestBody {
    async fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Option<Instant>>, Failure> {
        match self.0.chunk().await {
            Ok(Some(c)) => {
                let t = Instant::now();
                buf.clear();
                buf.extend_from_slice(&c);
                Ok(Some(Some(t)))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Failure::transport(&e)),
        }
    }
}

/// The body of a response on a [`RawConn`].
struct H1Body<'a>(&'a mut H1Conn);

impl BodySource for H1Body<'_> {
    async fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<Option<Instant>>, Failure> {
        self.0
            .next_body(buf)
            .await
            .map_err(|e| Failure::new(ErrorKind::Connect, format!("reading the body: {e}")))
    }
}

/// A keep-alive HTTP/1.1 connection for the perf hot path (see
/// [`super::h1`]): the response is decoded in the caller's task, each socket
/// read timestamped once.
pub struct RawConn {
    conn: H1Conn,
}

impl RawConn {
    /// Whether the connection can take another request.
    pub fn is_open(&self) -> bool {
        self.conn.is_reusable()
    }
}

/// A plain-HTTP server address and the header lines every request carries.
/// `Debug` shows neither (they may hold the API key).
#[derive(Clone)]
pub struct RawTarget {
    addr: std::net::SocketAddr,
    /// `name: value\r\n` lines (host, user agent, content type, accept,
    /// authorization, `--header`s).
    head: String,
}

impl fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTarget")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RawTarget {
    /// The complete request bytes for `path` and `body`, built once per
    /// prompt so that sending is a single write.
    pub fn request_bytes(&self, path: &str, body: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(self.head.len() + path.len() + body.len() + 64);
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.into()
    }
}

impl Client {
    /// The fast-path target for `http://` endpoints (`None` for `https://`
    /// and for URLs with `user:pass@`, which go through reqwest). Resolves
    /// the host once.
    pub fn raw_target(&self) -> Option<RawTarget> {
        let url = reqwest::Url::parse(&self.endpoints.base).ok()?;
        // Credentials in the URL go through reqwest, which sends them as
        // basic auth (the fast path would drop them).
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .ok()?
            .next()?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let accept = if self.cfg.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut head = format!(
            "host: {host_header}\r\nuser-agent: bench/{}\r\ncontent-type: application/json\r\naccept: {accept}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        let clean = |v: &str| !v.contains(['\r', '\n']);
        if let Some(key) = self.cfg.key() {
            if !clean(key) {
                return None;
            }
            head.push_str(&format!("authorization: Bearer {key}\r\n"));
        }
        for (k, v) in &self.cfg.headers {
            // Names and values were validated by `Client::new`.
            if !clean(k) || !clean(v) {
                return None;
            }
            head.push_str(&format!("{}: {}\r\n", k.trim(), v.trim()));
        }
        Some(RawTarget { addr, head })
    }

    /// Open a connection to `target`.
    pub async fn connect_raw(&self, target: &RawTarget) -> Result<RawConn, (ErrorKind, String)> {
        let connect = H1Conn::connect(target.addr);
        match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
            Ok(Ok(conn)) => Ok(RawConn { conn }),
            Ok(Err(e)) => Err((
                ErrorKind::Connect,
                format!("connecting to {}: {e}", target.addr),
            )),
            Err(_) => Err((
                ErrorKind::Connect,
                format!("connecting to {}: timed out after 5 s", target.addr),
            )),
        }
    }

    /// [`Client::timed`] over a caller-owned connection (opened or reopened
    /// as needed; left in `conn` when still usable afterwards). `request`
    /// comes from [`RawTarget::request_bytes`].
    pub async fn timed_raw(
        &self,
        target: &RawTarget,
        conn: &mut Option<RawConn>,
        request: &[u8],
        keep_text: bool,
        expected_events: usize,
    ) -> TimedResponse {
        let mut out = self.new_response(keep_text, expected_events);
        let deadline = Instant::now() + self.cfg.timeout;
        // A kept-alive connection can be closed by the server between two
        // requests (a race no client can avoid): when a reused connection
        // fails before any response arrives, the request goes again once on
        // a fresh connection, as HTTP clients do. A fresh one that fails is
        // a real failure.
        let mut fresh_only = false;
        let head = loop {
            let reused = conn.as_ref().is_some_and(RawConn::is_open) && !fresh_only;
            if !reused {
                *conn = None;
                match self.connect_raw(target).await {
                    Ok(c) => *conn = Some(c),
                    Err((kind, message)) => {
                        out.failed(kind, message);
                        return out;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { return out };
            let attempt = async {
                let sent = c.conn.send(request).await?;
                let head = c.conn.read_head().await?;
                Ok::<_, std::io::Error>((sent, head))
            };
            match tokio::time::timeout_at(deadline.into(), attempt).await {
                Ok(Ok((sent, head))) => {
                    out.sent = sent;
                    out.headers_us = Some(us(sent, Instant::now()));
                    break head;
                }
                Ok(Err(_)) if reused => fresh_only = true,
                Ok(Err(e)) => {
                    *conn = None;
                    out.failed(
                        ErrorKind::Connect,
                        format!("sending the request to {}: {e}", target.addr),
                    );
                    return out;
                }
                Err(_) => {
                    *conn = None;
                    out.failed(
                        ErrorKind::Timeout,
                        format!("no response headers within {:?}", self.cfg.timeout),
                    );
                    return out;
                }
            }
        };
        let is_sse = head
            .content_type
            .as_deref()
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let Some(c) = conn.as_mut() else { return out };
        self.read_response(&mut out, head.status, is_sse, &mut H1Body(&mut c.conn))
            .await;
        if !c.is_open() {
            *conn = None;
        }
        out
    }

    fn new_response(&self, keep_text: bool, expected_events: usize) -> TimedResponse {
        TimedResponse {
            sent: Instant::now(),
            headers_us: None,
            events: Vec::with_capacity(if self.cfg.stream { expected_events } else { 0 }),
            end_us: None,
            usage: None,
            finish_reason: None,
            status: None,
            error: None,
            text: keep_text.then(String::new),
            output_chars: 0,
            token_events: 0,
        }
    }

    /// Send a pre-serialised body to `url` once and time everything.
    /// `expected_events` sizes the event buffer (max_tokens + a few).
    pub async fn timed(
        &self,
        url: &str,
        body: Bytes,
        keep_text: bool,
        expected_events: usize,
    ) -> TimedResponse {
        let accept = if self.cfg.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut out = self.new_response(keep_text, expected_events);
        let request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .body(body);
        out.sent = Instant::now();
        let resp = match tokio::time::timeout(self.cfg.timeout, request.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let f = Failure::transport(&e);
                out.failed(f.kind, f.message);
                return out;
            }
            Err(_) => {
                out.failed(
                    ErrorKind::Timeout,
                    format!("no response headers within {:?}", self.cfg.timeout),
                );
                return out;
            }
        };
        out.headers_us = Some(us(out.sent, Instant::now()));
        let status = resp.status().as_u16();
        let is_sse = super::is_event_stream(resp.headers());
        self.read_response(&mut out, status, is_sse, &mut ReqwestBody(resp))
            .await;
        out
    }

    /// Read and time a response body (shared by both transports).
    async fn read_response<S: BodySource>(
        &self,
        out: &mut TimedResponse,
        status: u16,
        is_sse: bool,
        source: &mut S,
    ) {
        out.status = Some(status);
        let deadline = tokio::time::Instant::from_std(out.sent + self.cfg.timeout);
        let mut buf = Vec::with_capacity(4096);
        if !(200..300).contains(&status) || !is_sse {
            // A whole body: an error message or a non-streamed answer.
            let all = async {
                let mut all = Vec::new();
                while source.next(&mut buf).await?.is_some() {
                    all.extend_from_slice(&buf);
                }
                Ok::<_, Failure>(all)
            };
            let body = tokio::time::timeout_at(deadline, all).await;
            out.end_us = Some(us(out.sent, Instant::now()));
            if !(200..300).contains(&status) {
                let message = body
                    .ok()
                    .and_then(Result::ok)
                    .as_deref()
                    .and_then(error_message)
                    .unwrap_or_else(|| {
                        reqwest::StatusCode::from_u16(status)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("no message")
                            .to_owned()
                    });
                out.failed(kind_for_status(status), message);
                return;
            }
            match body {
                Ok(Ok(bytes)) => {
                    if let Err(f) = whole_body(&bytes, out) {
                        out.failed(f.kind, f.message);
                    }
                }
                Ok(Err(f)) => out.failed(f.kind, f.message),
                Err(_) => out.failed(
                    ErrorKind::Timeout,
                    format!("body not complete within {:?}", self.cfg.timeout),
                ),
            }
            return;
        }
        let mut sse = HotSse::default();
        let mut skeleton = Skeleton::default();
        let mut done = false;
        // One timer for the whole stream, not one per read.
        let timeout = tokio::time::sleep_until(deadline);
        tokio::pin!(timeout);
        loop {
            let next = tokio::select! {
                biased;
                c = source.next(&mut buf) => Some(c),
                _ = &mut timeout => None,
            };
            let read_at = match next {
                Some(Ok(Some(t))) => t.unwrap_or_else(Instant::now),
                Some(Ok(None)) => {
                    // A last event not closed by a blank line still counts.
                    let t = us(out.sent, Instant::now());
                    sse.finish(&mut |d| handle_event_with(d, t, out, Some(&mut skeleton)));
                    if out.error.is_none() && out.finish_reason.is_some() {
                        done = true;
                    }
                    break;
                }
                Some(Err(f)) => {
                    out.failed(f.kind, f.message);
                    break;
                }
                None => {
                    out.failed(
                        ErrorKind::Timeout,
                        format!("stream not complete within {:?}", self.cfg.timeout),
                    );
                    break;
                }
            };
            // One timestamp per socket read: events completed by the same
            // read arrived together.
            let t = us(out.sent, read_at);
            if !sse.feed(&buf, &mut |d| {
                handle_event_with(d, t, out, Some(&mut skeleton))
            }) {
                done = true;
                break;
            }
        }
        out.end_us = Some(us(out.sent, Instant::now()));
        if out.error.is_none() && !done && out.finish_reason.is_none() {
            out.failed(
                ErrorKind::Decode,
                format!(
                    "stream ended early: {} event(s), no finish_reason and no [DONE]",
                    out.events.len()
                ),
            );
        }
        if done && out.error.is_none() {
            // Let the connection be reused: read to the end of the body,
            // which follows [DONE] at once on well-behaved servers (so look
            // without arming a timer first).
            use futures::FutureExt;
            let ended = loop {
                match source.next(&mut buf).now_or_never() {
                    Some(Ok(Some(_))) => continue,
                    Some(_) => break true,
                    None => break false,
                }
            };
            if !ended {
                let drain = async { while let Ok(Some(_)) = source.next(&mut buf).await {} };
                let _ = tokio::time::timeout(super::DRAIN_TIMEOUT, drain).await;
            }
        }
    }
}

/// The hot path's SSE framing: the lean [`FastSse`] while the stream uses
/// `\n` line ends, the general [`SseParser`] from the first read that holds
/// a `\r` on. Gives the events [`SseParser`] gives for the whole stream,
/// however it is cut into reads (a property test checks it on arbitrary
/// bytes).
#[derive(Default)]
struct HotSse {
    fast: FastSse,
    generic: Option<SseParser>,
}

impl HotSse {
    /// Feed one read; `f` gets each complete event's data and returns false
    /// to stop. Returns false if stopped.
    fn feed(&mut self, chunk: &[u8], f: &mut impl FnMut(&[u8]) -> bool) -> bool {
        if self.generic.is_none() && memchr::memchr(b'\r', chunk).is_some() {
            // What the fast scanner carries is the start of an event (it
            // holds no blank line), so the general parser picks it up with
            // nothing dispatched in between.
            let mut p = SseParser::new();
            let carried = std::mem::take(&mut self.fast.carry);
            for event in p.push(&carried) {
                if !f(&event.data) {
                    return false;
                }
            }
            self.generic = Some(p);
        }
        match self.generic.as_mut() {
            Some(p) => p.push(chunk).all(|event| f(&event.data)),
            None => self.fast.feed(chunk, f),
        }
    }

    /// The stream ended: a last event not closed by a blank line.
    fn finish(&mut self, f: &mut impl FnMut(&[u8]) -> bool) -> bool {
        match self.generic.as_mut() {
            Some(p) => p.finish().all(|event| f(&event.data)),
            None => self.fast.finish(f),
        }
    }
}

/// A lean SSE scanner for the usual framing (`\n` line ends, events ended
/// by a blank line): each event's data is handed out as a slice of the read
/// (or of a small carry-over buffer for an event split across reads), with
/// no per-line allocation or reference counting. Comment lines (`:`) and
/// other fields are skipped; several `data:` lines are joined with `\n`.
/// Streams that use `\r` go to the general [`SseParser`] instead.
#[derive(Default)]
struct FastSse {
    carry: Vec<u8>,
    joined: Vec<u8>,
}

impl FastSse {
    /// Feed one read; `f` gets each complete event's data and returns
    /// false to stop. Returns false if stopped.
    fn feed(&mut self, chunk: &[u8], f: &mut impl FnMut(&[u8]) -> bool) -> bool {
        if self.carry.is_empty() {
            let used = match self.scan(chunk, f) {
                Some(n) => n,
                None => return false,
            };
            self.carry.extend_from_slice(&chunk[used..]);
            true
        } else {
            // Complete the carried event with the bytes up to its blank
            // line, not the whole read: the rest is scanned in place, so a
            // read that ends mid-event does not cost a copy of the next.
            let end = if self.carry.last() == Some(&b'\n') && chunk.first() == Some(&b'\n') {
                Some(1)
            } else {
                memchr::memmem::find(chunk, b"\n\n").map(|i| i + 2)
            };
            let Some(end) = end else {
                self.carry.extend_from_slice(chunk);
                return true;
            };
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(&chunk[..end]);
            let used = self.scan(&buf, f);
            let go = used.is_some();
            buf.drain(..used.unwrap_or(buf.len()));
            self.carry = buf;
            if !go {
                return false;
            }
            if !self.carry.is_empty() {
                // Not a whole event after all (only possible for odd
                // framings): fall back to carrying everything.
                self.carry.extend_from_slice(&chunk[end..]);
                let mut buf = std::mem::take(&mut self.carry);
                let used = self.scan(&buf, f);
                let go = used.is_some();
                buf.drain(..used.unwrap_or(buf.len()));
                self.carry = buf;
                return go;
            }
            self.feed(&chunk[end..], f)
        }
    }

    /// The stream ended: what is left is a last event.
    fn finish(&mut self, f: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let mut rest = std::mem::take(&mut self.carry);
        if rest.iter().all(|b| b.is_ascii_whitespace()) {
            return true;
        }
        rest.extend_from_slice(b"\n\n");
        self.scan(&rest, f).is_some()
    }

    /// Dispatch the complete events in `buf`; the bytes consumed, or `None`
    /// when `f` asked to stop.
    fn scan(&mut self, buf: &[u8], f: &mut impl FnMut(&[u8]) -> bool) -> Option<usize> {
        let mut start = 0;
        // Each blank line: a newline followed by another (scanning for
        // single newlines is cheaper than building a two-byte searcher per
        // read).
        let ends = memchr::memchr_iter(b'\n', buf).filter(|&i| buf.get(i + 1) == Some(&b'\n'));
        for end in ends {
            if end < start {
                continue; // "\n\n\n": the extra newline closed nothing
            }
            let block = &buf[start..end];
            start = end + 2;
            if !self.event(block, f) {
                return None;
            }
        }
        Some(start)
    }

    /// One event block (lines without the blank line).
    fn event(&mut self, block: &[u8], f: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let mut first: Option<&[u8]> = None;
        let mut many = false;
        for line in block.split(|b| *b == b'\n') {
            let Some(rest) = line.strip_prefix(b"data") else {
                continue;
            };
            let value = match rest.first() {
                None => &rest[..0],
                Some(b':') => rest[1..].strip_prefix(b" ").unwrap_or(&rest[1..]),
                Some(_) => continue, // a field named e.g. "database"
            };
            match first {
                None => first = Some(value),
                Some(v) => {
                    if !many {
                        self.joined.clear();
                        self.joined.extend_from_slice(v);
                        many = true;
                    }
                    self.joined.push(b'\n');
                    self.joined.extend_from_slice(value);
                }
            }
        }
        match (first, many) {
            (None, _) => true,
            (Some(v), false) => f(v),
            (Some(_), true) => {
                let joined = std::mem::take(&mut self.joined);
                let go = f(&joined);
                self.joined = joined;
                go
            }
        }
    }
}

/// A chunk's fields that timing needs, borrowed from the event data.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Option<First<TimedChoice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct TimedChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<TimedDelta<'a>>,
    #[serde(borrow, default)]
    message: Option<TimedDelta<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TimedDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

/// The first element of a JSON array, the rest skipped without allocating.
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(First(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The common case decided in one pass over the bytes, without building
/// the serde structs: a mid-stream chunk whose only news is a piece of
/// answer or reasoning text (or nothing). Returns the kind and the text's
/// length in bytes as decoded (what the full parse counts), or `None` when
/// the chunk needs the full parse: a finish reason, usage, an error, tool
/// calls, no first choice, anything unusual (escaped keys, a repeated field,
/// deep nesting, a lone surrogate), and anything that is not valid JSON, so
/// that the full parse reports it. Where it answers, it answers what
/// [`on_event`]'s full parse would: the same fields of the same (first)
/// choice, `null` read as absent, `reasoning_content` before `reasoning`
/// (a property test checks this on arbitrary input).
#[cfg(test)]
fn fast_classify(data: &[u8]) -> Option<(EventKind, u64)> {
    fast_event(data).map(|e| (e.kind, e.chars))
}

/// What [`fast_event`] reads of a chunk.
struct FastEvent<'a> {
    kind: EventKind,
    /// Bytes of generated text, decoded.
    chars: u64,
    /// The reasoning then the answer text, as raw JSON string contents.
    texts: [Option<&'a [u8]>; 2],
    /// Whether a text holds escapes (its raw bytes are not the text).
    escaped: bool,
    /// The byte range of the only text string, and its kind when not
    /// empty (for [`Skeleton`]).
    slot: Option<((usize, usize), EventKind)>,
}

/// [`fast_classify`] with the texts, for a response that keeps its text
/// (a tokenizer counts output tokens when the server sends no usage).
fn fast_event(data: &[u8]) -> Option<FastEvent<'_>> {
    // serde checks the strings it reads for UTF-8; checking the whole event
    // once is cheaper and only stricter.
    std::str::from_utf8(data).ok()?;
    let mut j = Json {
        b: data,
        i: 0,
        depth: 0,
    };
    j.ws();
    if j.peek()? != b'{' {
        return None;
    }
    let mut choice = None;
    let mut seen = [false; 3];
    j.object(|j, key| {
        let slot = match key {
            b"choices" => 0,
            b"usage" => 1,
            b"error" => 2,
            _ => return j.skip(),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None; // serde rejects a repeated field
        }
        if slot == 0 {
            // `null` or `[]` choices: the kind depends on earlier usage.
            choice = Some(j.first_choice()?);
            Some(())
        } else {
            j.null() // usage or an error is news: the full parse
        }
    })?;
    j.ws();
    if j.i != data.len() {
        return None;
    }
    let c = choice?;
    let (content, reasoning) = match c.delta.or(c.message) {
        Some(d) => (d.content, d.reasoning_content.or(d.reasoning)),
        None => (c.text, None),
    };
    // An empty string counts as no text, as in the full parse.
    let (cl, rl) = (content.map_or(0, |s| s.len), reasoning.map_or(0, |s| s.len));
    let kind = if cl > 0 {
        EventKind::Content
    } else if rl > 0 {
        EventKind::Reasoning
    } else {
        EventKind::Role
    };
    // Every escape is longer than what it decodes to.
    let escaped = [content, reasoning]
        .iter()
        .flatten()
        .any(|s| s.raw.len() as u64 != s.len);
    // A chunk whose only string of text is one field can be the template
    // of the next ones (see [`Skeleton`]).
    let strings = [c.text]
        .into_iter()
        .chain(
            [c.delta, c.message]
                .into_iter()
                .flatten()
                .flat_map(|d| [d.content, d.reasoning_content, d.reasoning]),
        )
        .flatten()
        .count();
    let slot = match (strings, content, reasoning) {
        (1, Some(s), None) => Some((offset(data, s.raw), EventKind::Content)),
        (1, None, Some(s)) => Some((offset(data, s.raw), EventKind::Reasoning)),
        _ => None,
    };
    Some(FastEvent {
        kind,
        chars: cl + rl,
        texts: [reasoning.map(|s| s.raw), content.map(|s| s.raw)],
        escaped,
        slot,
    })
}

/// Where `part` (a sub-slice of `whole`) starts and ends in `whole`.
fn offset(whole: &[u8], part: &[u8]) -> (usize, usize) {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    (start, start + part.len())
}

/// The last plain chunk of a stream, as a template: servers send every
/// mid-stream chunk with the same bytes around its text (same id, model,
/// `created`, `finish_reason: null`, ...). A chunk equal to the template
/// but for the text is the same JSON with another string there, so only
/// that string needs reading; anything else takes [`fast_event`] and
/// becomes the template. It answers exactly what [`fast_event`] would (a
/// property test checks it on arbitrary streams).
#[derive(Default)]
struct Skeleton {
    /// The template chunk.
    bytes: Vec<u8>,
    /// Where its text string's contents start and end.
    text: (usize, usize),
    /// What a non-empty text there is.
    kind: EventKind,
}

impl Skeleton {
    /// The chunk read against the template: `(kind, decoded length, raw
    /// text, escaped)`, or `None` when it differs outside the text.
    fn read<'a>(&self, data: &'a [u8]) -> Option<(EventKind, u64, &'a [u8], bool)> {
        // No template yet (a template is never empty).
        if self.bytes.is_empty() {
            return None;
        }
        let (start, end) = self.text;
        let suffix = &self.bytes[end..];
        let cut = data.len().checked_sub(suffix.len())?;
        if cut < start || data[..start] != self.bytes[..start] || data[cut..] != *suffix {
            return None;
        }
        // The text with its quotes (the template has them right outside).
        let quoted = data.get(start.checked_sub(1)?..cut + 1)?;
        let mut j = Json {
            b: quoted,
            i: 0,
            depth: 0,
        };
        let len = j.string()?;
        if j.i != quoted.len() {
            return None; // a quote inside: not one string
        }
        let raw = &data[start..cut];
        std::str::from_utf8(raw).ok()?;
        let kind = if len > 0 { self.kind } else { EventKind::Role };
        Some((kind, len, raw, raw.len() as u64 != len))
    }

    /// Make `data` the template, when it has one text string.
    fn learn(&mut self, data: &[u8], slot: Option<((usize, usize), EventKind)>) {
        match slot {
            Some((text, kind)) => {
                self.bytes.clear();
                self.bytes.extend_from_slice(data);
                self.text = text;
                self.kind = kind;
            }
            None => self.bytes.clear(),
        }
    }
}

/// A JSON string as [`fast_event`] keeps it: its decoded length and its
/// raw contents (between the quotes).
#[derive(Clone, Copy)]
struct RawStr<'a> {
    len: u64,
    raw: &'a [u8],
}

/// What [`fast_classify`] keeps of a choice: string lengths, `None` for
/// absent or `null`.
#[derive(Default)]
struct FastChoice<'a> {
    delta: Option<FastDelta<'a>>,
    message: Option<FastDelta<'a>>,
    text: Option<RawStr<'a>>,
}

/// What [`fast_classify`] keeps of a delta or message.
#[derive(Default, Clone, Copy)]
struct FastDelta<'a> {
    content: Option<RawStr<'a>>,
    reasoning_content: Option<RawStr<'a>>,
    reasoning: Option<RawStr<'a>>,
}

/// A validating JSON reader for [`fast_classify`]: every method returns
/// `None` on input that is not JSON (or that it declines), never panics.
struct Json<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

/// Nesting [`Json`] follows (serde_json's limit is 128; declining earlier
/// is safe).
const FAST_MAX_DEPTH: u32 = 32;

impl<'a> Json<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    /// `{ "key": value, ... }`; `field` reads each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.depth += 1;
        if self.depth > FAST_MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.eat(b'}').is_none() {
            loop {
                let key = self.key()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                field(self, key)?;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// `[ value, ... ]`; `elem` reads each element, given its index.
    fn array(&mut self, mut elem: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.depth += 1;
        if self.depth > FAST_MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.eat(b']').is_none() {
            let mut n = 0;
            loop {
                elem(self, n)?;
                n += 1;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A key, as its raw bytes; keys with escapes are declined (serde
    /// would compare them decoded).
    fn key(&mut self) -> Option<&'a [u8]> {
        let start = self.i + 1;
        let decoded = self.string()?;
        let key = &self.b[start..self.i - 1];
        // Every escape is longer than what it decodes to.
        (decoded == key.len() as u64).then_some(key)
    }

    /// A string; its length in bytes once decoded.
    fn string(&mut self) -> Option<u64> {
        self.eat(b'"')?;
        let mut len = 0u64;
        loop {
            // Plain bytes in one tight scan up to the next quote, backslash
            // or control character.
            let rest = &self.b[self.i..];
            let n = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            len += n as u64;
            self.i += n + 1;
            match rest[n] {
                b'"' => return Some(len),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    len += match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 1,
                        b'u' => match self.hex4()? {
                            0xD800..=0xDBFF => {
                                // Only a surrogate pair is a character.
                                self.literal(b"\\u")?;
                                if !(0xDC00..=0xDFFF).contains(&self.hex4()?) {
                                    return None;
                                }
                                4
                            }
                            0xDC00..=0xDFFF => return None,
                            cp => char::from_u32(cp)?.len_utf8() as u64,
                        },
                        _ => return None,
                    };
                }
                _ => return None, // control characters must be escaped
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &h in hex {
            v = v * 16 + char::from(h).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as serde_json reads it.
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && !self.digits() {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.digits() {
                return None;
            }
        }
        Some(())
    }

    /// Whether at least one digit was read.
    fn digits(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i > start
    }

    /// Any value, checked and skipped.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(|j, _| j.skip()),
            b'[' => self.array(|j, _| j.skip()),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.null(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A string, `None` inside for `null`; other types decline.
    fn text(&mut self) -> Option<Option<RawStr<'a>>> {
        if self.peek()? == b'n' {
            self.null().map(|()| None)
        } else {
            let start = self.i + 1;
            let len = self.string()?;
            Some(Some(RawStr {
                len,
                raw: &self.b[start..self.i - 1],
            }))
        }
    }

    /// `choices`: a non-empty array whose first element is an object.
    fn first_choice(&mut self) -> Option<FastChoice<'a>> {
        if self.peek()? != b'[' {
            return None;
        }
        let mut first = None;
        self.array(|j, n| {
            if n == 0 {
                first = Some(j.choice()?);
                Some(())
            } else {
                j.skip()
            }
        })?;
        first
    }

    fn choice(&mut self) -> Option<FastChoice<'a>> {
        if self.peek()? != b'{' {
            return None;
        }
        let mut c = FastChoice::default();
        let mut seen = [false; 4];
        self.object(|j, key| {
            let slot = match key {
                b"delta" => 0,
                b"message" => 1,
                b"text" => 2,
                b"finish_reason" => 3,
                _ => return j.skip(),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match slot {
                0 | 1 => {
                    let d = if j.peek()? == b'n' {
                        j.null()?;
                        None
                    } else {
                        Some(j.delta()?)
                    };
                    if slot == 0 {
                        c.delta = d;
                    } else {
                        c.message = d;
                    }
                    Some(())
                }
                2 => {
                    c.text = j.text()?;
                    Some(())
                }
                // A finish reason is news: the full parse records it.
                _ => j.null(),
            }
        })?;
        Some(c)
    }

    fn delta(&mut self) -> Option<FastDelta<'a>> {
        if self.peek()? != b'{' {
            return None;
        }
        let mut d = FastDelta::default();
        let mut seen = [false; 4];
        self.object(|j, key| {
            let slot = match key {
                b"content" => 0,
                b"reasoning_content" => 1,
                b"reasoning" => 2,
                b"tool_calls" => 3,
                _ => return j.skip(),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match slot {
                0 => d.content = j.text()?,
                1 => d.reasoning_content = j.text()?,
                2 => d.reasoning = j.text()?,
                // Tool calls: the full parse.
                _ => j.null()?,
            }
            Some(())
        })?;
        Some(d)
    }
}

/// Handles one event's data in a stream, read against the stream's
/// [`Skeleton`] (`None`: the full parse); false stops the stream (`[DONE]`
/// or a failure, recorded in `out`).
fn handle_event_with(
    data: &[u8],
    t_us: u64,
    out: &mut TimedResponse,
    skeleton: Option<&mut Skeleton>,
) -> bool {
    if data == b"[DONE]" {
        return false;
    }
    if let Err(f) = on_event_via(data, t_us, out, skeleton) {
        out.failed(f.kind, f.message);
        return false;
    }
    true
}

/// Classify and account one SSE event that arrived at `t_us`.
fn on_event(data: &[u8], t_us: u64, out: &mut TimedResponse) -> Result<(), Failure> {
    on_event_via(data, t_us, out, Some(&mut Skeleton::default()))
}

/// [`on_event`] with the stream's [`Skeleton`]; `None` skips the fast
/// paths (tests compare them with the full parse).
fn on_event_via(
    data: &[u8],
    t_us: u64,
    out: &mut TimedResponse,
    skeleton: Option<&mut Skeleton>,
) -> Result<(), Failure> {
    let fast = match skeleton {
        None => None,
        Some(sk) => match sk.read(data) {
            Some((kind, chars, raw, escaped)) => {
                let texts = match kind {
                    EventKind::Reasoning => [Some(raw), None],
                    _ => [None, Some(raw)],
                };
                Some((kind, chars, texts, escaped))
            }
            None => fast_event(data).map(|e| {
                sk.learn(data, e.slot);
                (e.kind, e.chars, e.texts, e.escaped)
            }),
        },
    };
    // A kept text needs the decoded strings: text with escapes takes the
    // full parse, plain text is its own raw bytes.
    if let Some((kind, chars, texts, escaped)) = fast
        && !(escaped && out.text.is_some())
    {
        if let Some(text) = out.text.as_mut() {
            for raw in texts.into_iter().flatten() {
                // Slices of checked UTF-8 cut at quotes: always UTF-8.
                text.push_str(std::str::from_utf8(raw).unwrap_or_default());
            }
        }
        out.output_chars += chars;
        if kind.has_tokens() {
            out.token_events += 1;
        }
        out.events.push(EventRecord {
            t_us,
            kind,
            tokens: 0,
        });
        return Ok(());
    }
    let chunk: Chunk = serde_json::from_slice(data).map_err(|e| {
        Failure::new(
            ErrorKind::Decode,
            format!(
                "event is not JSON ({e}): {}",
                String::from_utf8_lossy(&data[..data.len().min(200)])
            ),
        )
    })?;
    if chunk.error.is_some() {
        let message = error_message(data).unwrap_or_else(|| "error event in stream".into());
        return Err(Failure::new(ErrorKind::ErrorBody, message));
    }
    // Servers that report usage on every chunk (vLLM's
    // `continuous_usage_stats`) tell how many tokens each chunk carried.
    let mut delta = 0u32;
    if let Some(u) = chunk.usage {
        if let Some(c) = u.completion_tokens {
            let before = out.usage.and_then(|p| p.completion_tokens).unwrap_or(0);
            delta = c.saturating_sub(before).min(u64::from(u32::MAX)) as u32;
        }
        out.usage = Some(u);
    }
    let kind = match chunk.choices.and_then(|c| c.0) {
        None => {
            if out.usage.is_some() {
                EventKind::Usage
            } else {
                EventKind::Empty
            }
        }
        Some(choice) => {
            if let Some(reason) = &choice.finish_reason {
                out.finish_reason = Some(reason.to_string());
            }
            let (content, reasoning, tool) = match choice.delta.or(choice.message) {
                Some(d) => (
                    d.content,
                    d.reasoning_content.or(d.reasoning),
                    d.tool_calls.is_some(),
                ),
                None => (choice.text, None, false),
            };
            let content = content.filter(|c| !c.is_empty());
            let reasoning = reasoning.filter(|r| !r.is_empty());
            if let Some(text) = out.text.as_mut() {
                text.push_str(reasoning.as_deref().unwrap_or(""));
                text.push_str(content.as_deref().unwrap_or(""));
            }
            out.output_chars += (content.as_ref().map_or(0, |c| c.len())
                + reasoning.as_ref().map_or(0, |r| r.len())) as u64;
            if content.is_some() || tool {
                EventKind::Content
            } else if reasoning.is_some() {
                EventKind::Reasoning
            } else {
                EventKind::Role
            }
        }
    };
    if kind.has_tokens() {
        out.token_events += 1;
    }
    // Only token-bearing chunks get a count: a usage-only or finish chunk
    // that reports the total (servers without per-chunk usage) would
    // otherwise look like a chunk of every token.
    let tokens = if kind.has_tokens() { delta } else { 0 };
    out.events.push(EventRecord { t_us, kind, tokens });
    Ok(())
}

/// A non-streamed body: the whole answer at `end_us`.
fn whole_body(bytes: &[u8], out: &mut TimedResponse) -> Result<(), Failure> {
    on_event(bytes, out.end_us.unwrap_or(0), out)?;
    // A whole body is not an event stream: keep its totals, drop the event
    // (one body says nothing about how many tokens it held).
    out.events.clear();
    out.token_events = 0;
    if out.finish_reason.is_none() && out.output_chars == 0 && out.usage.is_none() {
        return Err(Failure::new(
            ErrorKind::ErrorBody,
            "response has no choices".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast scanner gives the same events as the general parser for
    /// every way of cutting a stream into reads.
    #[test]
    fn fast_sse_matches_the_general_parser() {
        let stream: &[u8] = b": ping\n\ndata: {\"a\":1}\n\ndata:{\"b\":2}\nid: 3\n\nevent: x\ndata: one\ndata: two\n\n\n\ndata: [DONE]\n\n";
        let mut want = Vec::new();
        let mut p = SseParser::new();
        for e in p.push(stream) {
            want.push(e.data.to_vec());
        }
        for cut1 in 0..stream.len() {
            for cut2 in cut1..stream.len() {
                let mut got: Vec<Vec<u8>> = Vec::new();
                let mut fast = FastSse::default();
                for part in [&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]] {
                    fast.feed(part, &mut |d| {
                        got.push(d.to_vec());
                        true
                    });
                }
                fast.finish(&mut |d| {
                    got.push(d.to_vec());
                    true
                });
                assert_eq!(got, want, "cuts {cut1} {cut2}");
            }
        }
        // An unterminated last event comes out of finish().
        let mut fast = FastSse::default();
        let mut got = Vec::new();
        fast.feed(b"data: last", &mut |d| {
            got.push(d.to_vec());
            true
        });
        fast.finish(&mut |d| {
            got.push(d.to_vec());
            true
        });
        assert_eq!(got, vec![b"last".to_vec()]);
    }

    /// The fast path must agree with the full parse wherever it answers.
    #[test]
    fn fast_classification_agrees_with_the_parse() {
        // Per-chunk usage (continuous usage stats) gives per-event deltas.
        let mut r = TimedResponse {
            sent: Instant::now(),
            headers_us: None,
            events: vec![],
            end_us: None,
            usage: None,
            finish_reason: None,
            status: None,
            error: None,
            text: None,
            output_chars: 0,
            token_events: 0,
        };
        for (i, (data, total)) in [
            (
                r#"{"choices":[{"delta":{"content":"a b"}}],"usage":{"completion_tokens":2}}"#,
                2,
            ),
            (
                r#"{"choices":[{"delta":{"content":"c"}}],"usage":{"completion_tokens":3}}"#,
                3,
            ),
            (
                r#"{"choices":[],"usage":{"completion_tokens":3,"prompt_tokens":1}}"#,
                3,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            on_event(data.as_bytes(), i as u64, &mut r).unwrap();
            assert_eq!(r.usage.unwrap().completion_tokens, Some(total));
        }
        assert_eq!(
            r.events.iter().map(|e| e.tokens).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        // Errors always take the full parse (which reports them).
        assert!(
            fast_classify(br#"{"error":{"message":"\"content\": boom","type":"x"}}"#).is_none()
        );
        let samples: &[&str] = &[
            // vLLM
            r#"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"a \"quoted\" \\ word"},"finish_reason":null}]}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{"reasoning_content":"think"},"finish_reason":null}]}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{"reasoning":"think","content":null},"finish_reason":null}]}"#,
            r#"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            r#"{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#,
            // llama.cpp: content null on the role chunk
            r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"object":"chat.completion.chunk"}"#,
            // llama-cpp-python: Python spacing
            r#"{"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}, "logprobs": null, "finish_reason": null}]}"#,
            r#"{"id": "x", "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]}"#,
            // completions
            r#"{"id":"x","object":"text_completion","choices":[{"index":0,"text":" word","finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#,
        ];
        for data in samples {
            let mut slow = TimedResponse {
                sent: Instant::now(),
                headers_us: None,
                events: vec![],
                end_us: None,
                usage: None,
                finish_reason: None,
                status: None,
                error: None,
                text: Some(String::new()),
                output_chars: 0,
                token_events: 0,
            };
            on_event_via(data.as_bytes(), 5, &mut slow, None).unwrap();
            if let Some((kind, chars)) = fast_classify(data.as_bytes()) {
                assert_eq!(kind, slow.events[0].kind, "{data}");
                // Lengths are counted decoded, escapes included.
                assert_eq!(chars, slow.output_chars, "{data}");
            } else {
                assert!(
                    data.contains("finish_reason\":\"")
                        || data.contains("finish_reason\": \"")
                        || data.contains("usage")
                        || data.contains("tool_calls"),
                    "fast path declined a plain chunk: {data}"
                );
            }
        }
    }

    fn blank(keep_text: bool) -> TimedResponse {
        TimedResponse {
            sent: Instant::now(),
            headers_us: None,
            events: vec![],
            end_us: None,
            usage: None,
            finish_reason: None,
            status: None,
            error: None,
            text: keep_text.then(String::new),
            output_chars: 0,
            token_events: 0,
        }
    }

    /// What the perf report takes from a response.
    #[derive(Debug, PartialEq)]
    struct Seen {
        events: Vec<(EventKind, u32)>,
        token_events: u64,
        output_chars: u64,
        usage: Option<Usage>,
        finish_reason: Option<String>,
        error: Option<ErrorKind>,
    }

    fn seen(out: &TimedResponse) -> Seen {
        Seen {
            events: out.events.iter().map(|e| (e.kind, e.tokens)).collect(),
            token_events: out.token_events,
            output_chars: out.output_chars,
            usage: out.usage,
            finish_reason: out.finish_reason.clone(),
            error: out.error.as_ref().map(|e| e.0),
        }
    }

    /// One event's data through the fast path (no text kept, so
    /// [`fast_classify`] is tried first) and through the full parse.
    fn both_ways(data: &[u8]) -> (Seen, Seen) {
        let run = |keep_text, fast: bool| {
            let mut out = blank(keep_text);
            let mut sk = Skeleton::default();
            if data != b"[DONE]"
                && let Err(f) = on_event_via(data, 7, &mut out, fast.then_some(&mut sk))
            {
                out.failed(f.kind, f.message);
            }
            (seen(&out), out.text)
        };
        let (fast, _) = run(false, true);
        let (full, full_text) = run(true, false);
        // Keeping the text does not change what the fast path sees, and it
        // keeps the text the full parse decodes.
        let (fast_kept, fast_text) = run(true, true);
        assert_eq!(fast_kept, full, "fast path with the text kept");
        if full.error.is_none() {
            assert_eq!(fast_text, full_text, "kept text");
        }
        (fast, full)
    }

    fn check_agree(data: &str) -> Seen {
        let (fast, full) = both_ways(data.as_bytes());
        assert_eq!(fast, full, "{data}");
        fast
    }

    #[test]
    fn fast_path_reads_reasoning_after_a_null_reasoning_content() {
        // The full parse takes `reasoning` when `reasoning_content` is null;
        // the key search stopped at the null and called it a role chunk.
        let data = r#"{"choices":[{"delta":{"reasoning_content":null,"reasoning":"think"}}]}"#;
        let s = check_agree(data);
        assert_eq!((s.events[0].0, s.output_chars), (EventKind::Reasoning, 5));
        assert_eq!(
            fast_classify(data.as_bytes()),
            Some((EventKind::Reasoning, 5))
        );
    }

    #[test]
    fn finish_reason_after_a_spaced_colon_is_recorded() {
        // `"finish_reason" : "stop"` did not match the `"finish_reason":"`
        // needles, so the fast path dropped the finish reason (and the
        // stream then "ended early"); `"content" :` was not seen either.
        let s = check_agree(
            r#"{"choices" : [{"delta" : {"content" : "hi"}, "finish_reason" : "stop"}]}"#,
        );
        assert_eq!(s.finish_reason.as_deref(), Some("stop"));
        assert_eq!(s.events[0].0, EventKind::Content);
        let s = check_agree(r#"{"choices":[{"delta":{"content" :"hi"}}]}"#);
        assert_eq!((s.events[0].0, s.output_chars), (EventKind::Content, 2));
    }

    #[test]
    fn empty_choices_chunk_is_not_a_role_event() {
        // Azure opens streams with `"choices":[]` and prompt filter results:
        // no choice, so no role; the key search saw `"choices"` and said Role.
        let s = check_agree(r#"{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}"#);
        assert_eq!(s.events, [(EventKind::Empty, 0)]);
    }

    #[test]
    fn only_the_first_choice_counts_on_the_fast_path() {
        // The full parse reads the first choice; the key search found the
        // second one's content.
        let s = check_agree(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}},{"index":1,"delta":{"content":"x"}}]}"#,
        );
        assert_eq!((s.events[0].0, s.token_events), (EventKind::Role, 0));
    }

    #[test]
    fn escaped_text_is_counted_as_decoded() {
        // `\n`, `\u00e9` and a surrogate pair count as the 1, 2 and 4 bytes
        // they decode to, as in the full parse (`ensure_ascii` servers escape
        // every non-ASCII character).
        let data = r#"{"choices":[{"delta":{"content":"a\nb \u00e9 \ud83d\ude00"}}]}"#;
        let s = check_agree(data);
        assert_eq!(s.output_chars, 11);
        assert_eq!(
            fast_classify(data.as_bytes()),
            Some((EventKind::Content, 11))
        );
    }

    #[test]
    fn malformed_chunk_is_an_error_on_the_fast_path_too() {
        // The key search answered for text that is not JSON, which the full
        // parse reports as a decode failure.
        for data in [
            r#"{"choices":[{"delta":{"content":"x"}}]"#,
            r#"{"choices":[{"delta":{"content":"x"}}]}}"#,
            r#"{"choices":[{"delta":{"content":"x",}}]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"n":01}"#,
            r#""content":"x""#,
        ] {
            assert_eq!(check_agree(data).error, Some(ErrorKind::Decode), "{data}");
        }
    }

    /// Issue 10: chunks read against the previous chunk's template (only
    /// the text read) give what the full parse gives, whatever lands in
    /// the text: escapes, quotes that end the string early, control
    /// characters, bytes that are not UTF-8, a changed tail.
    #[test]
    fn template_chunks_agree_with_the_full_parse() {
        let pre: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""#;
        let post: &[u8] = br#""},"logprobs":null,"finish_reason":null}]}"#;
        let texts: &[&[u8]] = &[
            b" tok",
            b"",
            br#"a\"b"#,
            br#"\u00e9\n"#,
            br#"a"b"#,
            br#"a","content":"b"#,
            br#"x\"#,
            b"\x01",
            b"\xff\xfe",
            br#" \ud83d\ude00"#,
            b" ok",
            b"\xc3\xa9",
        ];
        let mut input = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            input.extend_from_slice(b"data: ");
            input.extend_from_slice(pre);
            input.extend_from_slice(t);
            input.extend_from_slice(post);
            input.extend_from_slice(b"\n\n");
            if i == 3 {
                // Reasoning chunks in between: a template of their own.
                for r in ["hm", "hmm"] {
                    input.extend_from_slice(b"data: ");
                    input.extend_from_slice(
                        format!(r#"{{"choices":[{{"delta":{{"reasoning_content":"{r}"}}}}]}}"#)
                            .as_bytes(),
                    );
                    input.extend_from_slice(b"\n\n");
                }
            }
        }
        input.extend_from_slice(b"data: [DONE]\n\n");
        // Each event through the template path and through the full parse,
        // with the text kept, until the first failure stops both.
        let mut kept = blank(true);
        let mut sk = Skeleton::default();
        let mut full = blank(true);
        let mut failed = 0;
        for data in general_events(&input) {
            let a = handle_event_with(&data, 1, &mut kept, Some(&mut sk));
            let b = handle_event_with(&data, 1, &mut full, None);
            assert_eq!(a, b, "{}", String::from_utf8_lossy(&data));
            assert_eq!(
                seen(&kept),
                seen(&full),
                "{}",
                String::from_utf8_lossy(&data)
            );
            assert_eq!(kept.text, full.text);
            if !a {
                // Start again after a failure, to reach the later cases.
                failed += 1;
                (kept, full) = (blank(true), blank(true));
            }
        }
        assert!(failed >= 4, "the bad texts failed: {failed}");
        // And without the text kept, as one read through the hot path.
        assert_eq!(
            through_hot_path(&[&input[..600]]),
            through_general(&input[..600])
        );
    }

    #[test]
    fn usage_null_chunks_take_the_fast_path() {
        // With `include_usage` every chunk carries `"usage":null`.
        let data = r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(
            fast_classify(data.as_bytes()),
            Some((EventKind::Content, 2))
        );
        check_agree(data);
    }

    use proptest::prelude::*;
    use std::fmt::Write as _;

    /// A JSON value, written with chosen spacing and escaping so that the
    /// generated chunks look like any server's (compact, Python's `", "`,
    /// pretty-printed, `ensure_ascii`).
    #[derive(Debug, Clone)]
    enum J {
        Null,
        Num(&'static str),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    #[derive(Debug, Clone)]
    struct Style {
        before_colon: &'static str,
        after_colon: &'static str,
        after_comma: &'static str,
        inside: &'static str,
        ascii: bool,
    }

    fn write_str(s: &str, ascii: bool, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\u{0}'..='\u{1f}' => write!(out, "\\u{:04x}", c as u32).unwrap(),
                c if ascii && !c.is_ascii() => {
                    for u in c.encode_utf16(&mut [0u16; 2]) {
                        write!(out, "\\u{u:04x}").unwrap();
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    impl J {
        fn write(&self, st: &Style, out: &mut String) {
            match self {
                J::Null => out.push_str("null"),
                J::Num(n) => out.push_str(n),
                J::Str(s) => write_str(s, st.ascii, out),
                J::Arr(items) => {
                    out.push('[');
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                            out.push_str(st.after_comma);
                        }
                        v.write(st, out);
                    }
                    out.push(']');
                }
                J::Obj(fields) => {
                    out.push('{');
                    out.push_str(st.inside);
                    for (i, (k, v)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                            out.push_str(st.after_comma);
                        }
                        write_str(k, st.ascii, out);
                        out.push_str(st.before_colon);
                        out.push(':');
                        out.push_str(st.after_colon);
                        v.write(st, out);
                    }
                    out.push_str(st.inside);
                    out.push('}');
                }
            }
        }
    }

    fn style() -> impl Strategy<Value = Style> {
        let ws = || prop::sample::select(vec!["", "", " ", "\n", "\t", "\r\n  "]);
        (ws(), ws(), ws(), ws(), any::<bool>()).prop_map(|(a, b, c, d, ascii)| Style {
            before_colon: a,
            after_colon: b,
            after_comma: c,
            inside: d,
            ascii,
        })
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z ]{1,8}",
            "\\PC{1,6}",
            "[\"\\\\/\\n\\t\\u{0}-\\u{1f}é😀]{1,5}",
        ]
    }

    /// A text field: mostly a string, sometimes `null`, rarely a wrong type.
    fn text_value() -> impl Strategy<Value = J> {
        prop_oneof![
            6 => text().prop_map(J::Str),
            2 => Just(J::Null),
            1 => Just(J::Num("1")),
        ]
    }

    fn field(
        name: &'static str,
        v: impl Strategy<Value = J> + 'static,
    ) -> BoxedStrategy<(String, J)> {
        v.prop_map(move |v| (name.to_string(), v)).boxed()
    }

    /// An object with some of `fields`, in any order, now and then with a
    /// field repeated.
    fn object(fields: Vec<BoxedStrategy<(String, J)>>) -> impl Strategy<Value = J> {
        let fields: Vec<_> = fields.into_iter().map(prop::option::of).collect();
        (fields, prop::bool::weighted(0.05))
            .prop_map(|(f, dup)| {
                let mut f: Vec<(String, J)> = f.into_iter().flatten().collect();
                if dup && let Some(first) = f.first().cloned() {
                    f.push(first);
                }
                f
            })
            .prop_shuffle()
            .prop_map(J::Obj)
    }

    fn delta() -> impl Strategy<Value = J> {
        object(vec![
            field("role", Just(J::Str("assistant".into()))),
            field("content", text_value()),
            field("reasoning_content", text_value()),
            field("reasoning", text_value()),
            field(
                "tool_calls",
                prop_oneof![
                    3 => Just(J::Null),
                    1 => Just(J::Arr(vec![J::Obj(vec![("index".into(), J::Num("0"))])])),
                ],
            ),
        ])
    }

    fn choice() -> impl Strategy<Value = J> {
        let token = J::Obj(vec![
            ("token".into(), J::Str("a".into())),
            ("logprob".into(), J::Num("-0.5e-3")),
        ]);
        object(vec![
            field("index", Just(J::Num("0"))),
            field("delta", prop_oneof![4 => delta(), 1 => Just(J::Null)]),
            field("message", delta()),
            field("text", text_value()),
            field(
                "logprobs",
                prop_oneof![
                    Just(J::Null),
                    Just(J::Obj(vec![("content".into(), J::Null)])),
                    Just(J::Obj(vec![("content".into(), J::Arr(vec![token]))])),
                ],
            ),
            field(
                "finish_reason",
                prop_oneof![
                    4 => Just(J::Null),
                    1 => Just(J::Str("stop".into())),
                    1 => Just(J::Str("length".into())),
                ],
            ),
        ])
    }

    fn chunk() -> impl Strategy<Value = J> {
        let usage = J::Obj(vec![
            ("prompt_tokens".into(), J::Num("3")),
            ("completion_tokens".into(), J::Num("5")),
            ("total_tokens".into(), J::Num("8")),
        ]);
        object(vec![
            field("id", Just(J::Str("chatcmpl-1".into()))),
            field(
                "object",
                prop::sample::select(vec!["chat.completion.chunk", "text_completion"])
                    .prop_map(|s| J::Str(s.into())),
            ),
            field(
                "choices",
                prop_oneof![
                    6 => prop::collection::vec(choice(), 1..=1).prop_map(J::Arr),
                    2 => prop::collection::vec(choice(), 0..3).prop_map(J::Arr),
                    1 => Just(J::Null),
                ],
            ),
            field("usage", prop_oneof![3 => Just(J::Null), 1 => Just(usage)]),
            field(
                "error",
                prop_oneof![
                    3 => Just(J::Null),
                    1 => Just(J::Obj(vec![("message".into(), J::Str("boom".into()))])),
                ],
            ),
            field("prompt_filter_results", Just(J::Arr(vec![]))),
        ])
    }

    fn chunk_text() -> impl Strategy<Value = String> {
        (chunk(), style()).prop_map(|(j, st)| {
            let mut s = String::new();
            j.write(&st, &mut s);
            s
        })
    }

    /// JSON-like token soup: mostly invalid, sometimes valid, rich in the
    /// keys and corner cases the fast path looks at.
    fn soup() -> impl Strategy<Value = Vec<u8>> {
        let tokens = vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n",
            "\"choices\"",
            "\"delta\"",
            "\"message\"",
            "\"text\"",
            "\"content\"",
            "\"reasoning\"",
            "\"reasoning_content\"",
            "\"finish_reason\"",
            "\"usage\"",
            "\"error\"",
            "\"tool_calls\"",
            "null",
            "\"x\"",
            "\"\"",
            "\"stop\"",
            "1",
            "-0.5e3",
            "01",
            "1.",
            "-",
            "true",
            "nul",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\x\"",
            "\"a\nb\"",
            "\"é\"",
            "\"\\u00\"",
        ];
        prop::collection::vec(prop::sample::select(tokens), 0..40)
            .prop_map(|v| v.concat().into_bytes())
    }

    /// SSE-like bytes: field names, line ends of every kind, `[DONE]`, and
    /// arbitrary bytes.
    fn sse_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            6 => prop::sample::select(vec![
                "data:", "data: ", "data", "event: x", ": c", "\n", "\n", "\r", "\r\n", "x", "[DONE]",
                "{}", " ", "id: 1", "é", "database: 1",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..6),
        ];
        prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
    }

    /// A real-looking stream: generated chunks (pretty-printed ones become
    /// several `data:` lines), comments, one kind of line end throughout,
    /// and `[DONE]` closed, unclosed or missing.
    fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec((chunk_text(), any::<bool>(), any::<bool>()), 0..6),
            prop::sample::select(vec!["\n", "\r\n", "\r"]),
            prop::sample::select(vec![
                "data: [DONE]\n\n",
                "data: [DONE]\n",
                "data: [DONE]",
                "",
            ]),
        )
            .prop_map(|(chunks, eol, end)| {
                let mut s = String::new();
                for (json, comment, tight) in chunks {
                    if comment {
                        s.push_str(": ping");
                        s.push_str(eol);
                    }
                    let json = json.replace("\r\n", "\n").replace('\r', "\n");
                    for line in json.split('\n') {
                        s.push_str(if tight { "data:" } else { "data: " });
                        s.push_str(line);
                        s.push_str(eol);
                    }
                    s.push_str(eol);
                }
                s.push_str(&end.replace('\n', eol));
                s.into_bytes()
            })
    }

    /// `input` cut into reads at `cuts`.
    fn reads<'a>(input: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        at.sort_unstable();
        let mut out = Vec::new();
        let mut prev = 0;
        for a in at {
            out.push(&input[prev..a]);
            prev = a;
        }
        out.push(&input[prev..]);
        out
    }

    fn general_events(input: &[u8]) -> Vec<Vec<u8>> {
        let mut p = SseParser::new();
        let mut v: Vec<Vec<u8>> = p.push(input).map(|e| e.data.to_vec()).collect();
        v.extend(p.finish().map(|e| e.data.to_vec()));
        v
    }

    fn hot_events(reads: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut h = HotSse::default();
        let mut v = Vec::new();
        for r in reads {
            h.feed(r, &mut |d| {
                v.push(d.to_vec());
                true
            });
        }
        h.finish(&mut |d| {
            v.push(d.to_vec());
            true
        });
        v
    }

    /// A stream as `bench perf` reads it: hot framing, fast classification.
    fn through_hot_path(reads: &[&[u8]]) -> Seen {
        let mut out = blank(false);
        let mut h = HotSse::default();
        let mut sk = Skeleton::default();
        let mut go = true;
        for r in reads {
            if !h.feed(r, &mut |d| handle_event_with(d, 1, &mut out, Some(&mut sk))) {
                go = false;
                break;
            }
        }
        if go {
            h.finish(&mut |d| handle_event_with(d, 1, &mut out, Some(&mut sk)));
        }
        seen(&out)
    }

    /// The same stream through the general parser and the full parse.
    fn through_general(input: &[u8]) -> Seen {
        let mut out = blank(true);
        for data in general_events(input) {
            if !handle_event_with(&data, 1, &mut out, None) {
                break;
            }
        }
        seen(&out)
    }

    #[test]
    fn hot_sse_matches_the_general_parser_at_every_cut() {
        let stream: &[u8] = b": ping\r\n\r\ndata: {\"a\":1}\n\ndata:{\"b\":2}\r\nid: 3\r\rdata: x\ndata\n\ndata: [DONE]";
        let want = general_events(stream);
        assert_eq!(want.len(), 4);
        for cut in 0..=stream.len() {
            assert_eq!(
                hot_events(&[&stream[..cut], &stream[cut..]]),
                want,
                "cut {cut}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The hot path's framing gives the general parser's events on any
        /// bytes, however they are cut into reads.
        #[test]
        fn hot_sse_matches_the_general_parser_on_any_bytes(
            input in sse_soup(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            prop_assert_eq!(hot_events(&reads(&input, &cuts)), general_events(&input));
        }

        /// Where the fast path answers, it answers what the full parse does:
        /// generated chunks of every shape and spacing.
        #[test]
        fn fast_path_agrees_with_the_full_parse_on_chunks(data in chunk_text()) {
            let (fast, full) = both_ways(data.as_bytes());
            prop_assert_eq!(fast, full, "{}", data);
        }

        /// ... on chunks cut short anywhere (not JSON, or not UTF-8).
        #[test]
        fn fast_path_agrees_with_the_full_parse_on_cut_chunks(
            data in chunk_text(),
            cut in any::<prop::sample::Index>(),
        ) {
            let data = &data.as_bytes()[..cut.index(data.len() + 1)];
            let (fast, full) = both_ways(data);
            prop_assert_eq!(fast, full, "{}", String::from_utf8_lossy(data));
        }

        /// ... on JSON-like token soup and on arbitrary bytes.
        #[test]
        fn fast_path_agrees_with_the_full_parse_on_soup(
            data in prop_oneof![soup(), prop::collection::vec(any::<u8>(), 0..48)],
        ) {
            let (fast, full) = both_ways(&data);
            prop_assert_eq!(fast, full, "{}", String::from_utf8_lossy(&data));
        }

        /// A whole stream read the hot way (any cuts) gives the same events,
        /// token counts, usage and finish reason as the general parser and
        /// the full parse.
        #[test]
        fn hot_path_agrees_with_the_general_path_on_streams(
            stream in sse_stream(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            prop_assert_eq!(
                through_hot_path(&reads(&stream, &cuts)),
                through_general(&stream),
                "{}",
                String::from_utf8_lossy(&stream)
            );
        }
    }
}
