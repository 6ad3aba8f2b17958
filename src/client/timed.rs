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

use super::h1::H1Conn;
use super::parse::error_message;
use super::retry::kind_for_status;
use super::sse::SseParser;
use super::{Client, ErrorKind, Failure, Usage};
use crate::perf::record::{EventKind, EventRecord};

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
        let mut fast = FastSse::default();
        let mut generic: Option<SseParser> = None;
        let mut done = false;
        // One timer for the whole stream, not one per read.
        let timeout = tokio::time::sleep_until(deadline);
        tokio::pin!(timeout);
        // Handles one event's data; false stops the stream.
        let handle = |data: &[u8], t: u64, out: &mut TimedResponse| -> bool {
            if data == b"[DONE]" {
                return false;
            }
            if let Err(f) = on_event(data, t, out) {
                out.failed(f.kind, f.message);
                return false;
            }
            true
        };
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
                    match generic.as_mut() {
                        Some(p) => {
                            for event in p.finish() {
                                if !handle(&event.data, t, out) {
                                    break;
                                }
                            }
                        }
                        None => {
                            fast.finish(&mut |d| handle(d, t, out));
                        }
                    }
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
            if generic.is_none() && memchr::memchr(b'\r', &buf).is_some() {
                // `\r` line ends: the general parser from here on.
                let mut p = SseParser::new();
                let carried = std::mem::take(&mut fast.carry);
                let _ = p.push(&carried).count();
                generic = Some(p);
            }
            let go_on = match generic.as_mut() {
                Some(p) => {
                    let mut go = true;
                    for event in p.push(&buf) {
                        if !handle(&event.data, t, out) {
                            go = false;
                            break;
                        }
                    }
                    go
                }
                None => fast.feed(&buf, &mut |d| handle(d, t, out)),
            };
            if !go_on {
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
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(chunk);
            let used = self.scan(&buf, f);
            let go = used.is_some();
            buf.drain(..used.unwrap_or(buf.len()));
            self.carry = buf;
            go
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
        for end in memchr::memmem::find_iter(buf, b"\n\n") {
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

/// The common case decided without a JSON parse: a mid-stream chunk whose
/// only news is a piece of answer or reasoning text (or nothing). Returns
/// the kind and the text's byte length, or `None` when the chunk needs the
/// full parse (finish reason, usage, errors, tool calls, or text to keep).
/// Sound because JSON string values cannot contain an unescaped `"`, so the
/// key patterns below only match real keys.
fn fast_classify(data: &[u8]) -> Option<(EventKind, u64)> {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: building a finder costs more than searching a chunk.
    // An `"error"` event has no `"choices"`, so it reaches the full parse
    // without a search of its own.
    static DECLINE: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
        [
            Finder::new(b"\"usage\""),
            Finder::new(b"\"tool_calls\""),
            Finder::new(b"\"finish_reason\":\""),
            Finder::new(b"\"finish_reason\": \""),
        ]
    });
    static KEYS: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
        [
            Finder::new(b"\"content\":"),
            Finder::new(b"\"text\":"),
            Finder::new(b"\"reasoning_content\":"),
            Finder::new(b"\"reasoning\":"),
            Finder::new(b"\"choices\""),
        ]
    });
    if DECLINE.iter().any(|f| f.find(data).is_some()) {
        return None;
    }
    let find = |i: usize| KEYS[i].find(data);
    // The length of the string value after `key`, `Some(0)` for "" or null,
    // `None` when the key is absent.
    let value_len = |key: usize| -> Option<Option<u64>> {
        let at = find(key)? + KEYS[key].needle().len();
        let rest = &data[at..];
        let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
        match rest.first()? {
            b'"' => {
                let mut i = 1;
                while i < rest.len() {
                    match rest[i] {
                        b'\\' => i += 2,
                        b'"' => return Some(Some(i as u64 - 1)),
                        _ => i += 1,
                    }
                }
                Some(None) // unterminated: let the full parse report it
            }
            b'n' => Some(Some(0)),
            _ => Some(None),
        }
    };
    let content = value_len(0).or_else(|| value_len(1));
    let reasoning = value_len(2).or_else(|| value_len(3));
    let c = match content {
        Some(v) => v?,
        None => 0,
    };
    let r = match reasoning {
        Some(v) => v?,
        None => 0,
    };
    let kind = if c > 0 {
        EventKind::Content
    } else if r > 0 {
        EventKind::Reasoning
    } else if find(4).is_some() {
        EventKind::Role
    } else {
        return None;
    };
    Some((kind, c + r))
}

/// Classify and account one SSE event that arrived at `t_us`.
fn on_event(data: &[u8], t_us: u64, out: &mut TimedResponse) -> Result<(), Failure> {
    if out.text.is_none()
        && let Some((kind, chars)) = fast_classify(data)
    {
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
                text: Some(String::new()), // forces the full parse
                output_chars: 0,
                token_events: 0,
            };
            on_event(data.as_bytes(), 5, &mut slow).unwrap();
            if let Some((kind, chars)) = fast_classify(data.as_bytes()) {
                assert_eq!(kind, slow.events[0].kind, "{data}");
                // Escapes make the raw length differ; plain text agrees.
                if !data.contains('\\') {
                    assert_eq!(chars, slow.output_chars, "{data}");
                }
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
}
