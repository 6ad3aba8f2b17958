//! A scriptable fake OpenAI-compatible server on `127.0.0.1:0`.
//!
//! Owns: serving `GET /v1/models`, `POST /v1/chat/completions` and
//! `POST /v1/completions`, streaming or not, with answers from a responder
//! function, injected faults, request recording and in-flight counting. Used
//! by the integration tests and the speed benchmarks of the whole tool, so it
//! does no work per request beyond building the answer: no sleeps unless a
//! reply asks for a delay.
//!
//! The wire format copies vLLM's: a role-only first chunk, content split into
//! word-sized chunks (one chunk per "token"), a finish chunk with `delta: {}`,
//! a usage chunk with `choices: []` when `stream_options.include_usage` is
//! set, then `data: [DONE]`.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use futures::Stream;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Builds the reply to a request from its JSON body.
pub type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// A way to fail a request, for testing retries and error handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and an OpenAI-style JSON error body.
    Status(u16),
    /// Like `Status`, with this `error.message` (e.g. llama.cpp's context
    /// length message, to check it reaches the user).
    StatusMessage(u16, String),
    /// Answer with this status, a `Retry-After: <secs>` header and a JSON
    /// error body.
    RetryAfter(u16, u64),
    /// HTTP 200 whose body is `{"error": {...}}` (for a streaming request:
    /// one SSE event carrying the error, then `[DONE]`).
    ErrorBody,
    /// HTTP 200 with a body that is not JSON (for a streaming request: an
    /// event stream whose data is not JSON).
    Garbage,
    /// Never answer (until the server is dropped).
    Hang,
    /// Streaming: the role chunk and one content chunk, then the body ends
    /// with no finish_reason and no `[DONE]`. Non-streaming: a JSON body cut
    /// in the middle.
    CutStream,
}

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The visible answer.
    pub content: String,
    /// Reasoning, sent as `reasoning_content` (or inside `<think>` in the
    /// content, see [`FakeOptions::think_in_content`]).
    pub reasoning: Option<String>,
    /// `finish_reason` to report (`"stop"` by default).
    pub finish_reason: String,
    /// Wait this long before answering (time to first byte).
    pub delay: Duration,
    /// Streaming only: wait this long between chunks (inter-token latency).
    pub chunk_delay: Duration,
    /// Fail instead of answering.
    pub fault: Option<Fault>,
    /// `(prompt_tokens, completion_tokens)` to report. `None`: estimated as
    /// the number of words of the prompt and the number of chunks sent.
    pub usage: Option<(u64, u64)>,
    /// Send this JSON body as it is (non-streaming), instead of one built
    /// from the fields above: for answers the fake does not model, such as
    /// echoed prompt log-probabilities ([`echo_logprobs`]).
    pub raw: Option<Value>,
}

impl Reply {
    /// A plain answer: `finish_reason: "stop"`, no delay, no fault.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            reasoning: None,
            finish_reason: "stop".into(),
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            fault: None,
            usage: None,
            raw: None,
        }
    }

    /// A reply that fails with `fault`.
    pub fn fault(fault: Fault) -> Self {
        Self {
            fault: Some(fault),
            ..Self::text("")
        }
    }

    /// Adds reasoning.
    pub fn with_reasoning(mut self, reasoning: impl Into<String>) -> Self {
        self.reasoning = Some(reasoning.into());
        self
    }

    /// Sets `finish_reason` (e.g. `"length"`).
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = reason.into();
        self
    }

    /// Sets the delay before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the delay between streamed chunks.
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Sets the reported token counts.
    pub fn with_usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }
}

/// How the fake behaves.
#[derive(Clone)]
pub struct FakeOptions {
    /// Ids served by `GET /v1/models`.
    pub models: Vec<String>,
    /// Answers every generation request.
    pub responder: Responder,
    /// The first `fail_first_n` generation requests, counted globally in
    /// arrival order across both endpoints (not per request body), get
    /// `fail_with` instead of the responder's reply. With one request at a
    /// time, that makes "fails twice, then succeeds" exact.
    pub fail_first_n: usize,
    /// The fault for the first `fail_first_n` requests.
    pub fail_with: Fault,
    /// Send reasoning inside `<think>...</think>` at the start of the
    /// content, as servers without a reasoning parser do, instead of as
    /// `reasoning_content`.
    pub think_in_content: bool,
    /// If set, generation and model requests without
    /// `Authorization: Bearer <key>` get a 401.
    pub api_key: Option<String>,
    /// Report `usage` (non-stream always; stream when asked by
    /// `stream_options.include_usage`). Off: like llama-cpp-python, which
    /// never streams usage.
    pub send_usage: bool,
}

impl Default for FakeOptions {
    /// Serves `fake-model` and answers `The answer is 42.` to everything.
    fn default() -> Self {
        Self {
            models: vec!["fake-model".into()],
            responder: Arc::new(|_| Reply::text("The answer is 42.")),
            fail_first_n: 0,
            fail_with: Fault::Status(500),
            think_in_content: false,
            api_key: None,
            send_usage: true,
        }
    }
}

impl FakeOptions {
    /// Default options with this responder.
    pub fn responding(responder: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        Self {
            responder: Arc::new(responder),
            ..Self::default()
        }
    }
}

impl fmt::Debug for FakeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOptions")
            .field("models", &self.models)
            .field("fail_first_n", &self.fail_first_n)
            .field("fail_with", &self.fail_with)
            .field("think_in_content", &self.think_in_content)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("send_usage", &self.send_usage)
            .finish_non_exhaustive()
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// URL path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The JSON body (`null` for `GET` or a body that is not JSON).
    pub body: Value,
    /// Whether an `Authorization` header was present.
    pub had_auth_header: bool,
    /// Its value, e.g. `Bearer sk-test`.
    pub authorization: Option<String>,
}

/// The prompt of a request body as one string: the chat messages' contents
/// joined with newlines, or the completions `prompt`. Handy in responders
/// that answer by looking at the question.
pub fn prompt_text(body: &Value) -> String {
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        let parts: Vec<&str> = messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect();
        return parts.join("\n");
    }
    body.get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The fake's tokens of `text`: each run of spaces joins the word after it
/// (`" word"`), and every newline is a token of its own; `(char offset,
/// token)` pairs.
pub fn fake_tokens(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, c) in text.chars().enumerate() {
        let word_before = cur.chars().last().is_some_and(|l| l != ' ');
        if (c == '\n' || (c == ' ' && word_before)) && !cur.is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
        if cur.is_empty() {
            start = i;
        }
        if c == '\n' {
            out.push((i, "\n".into()));
            continue;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

/// A completions answer with the prompt echoed and scored, as vLLM sends
/// it for `echo: true, logprobs: 1, max_tokens: 1`: for each prompt (one,
/// or a list), `tokens`, `token_logprobs` (`null` for the first),
/// `top_logprobs` and `text_offset` over [`fake_tokens`] of the prompt,
/// then one generated token `"!"`. `logprob(prompt, offset, token)` scores
/// each prompt token; the top-1 alternative is each token itself unless
/// `logprob` is below -5 (then `" the"` at -0.1: not greedy).
///
/// Token-id prompts (a list of ids, or a list of such lists) are echoed
/// one entry per id: the token is the id in decimal, its offset its
/// position, and `prompt` the ids joined by commas.
pub fn echo_logprobs(body: &Value, logprob: impl Fn(&str, usize, &str) -> f64) -> Reply {
    let ids = |v: &Value| -> Option<Vec<u64>> { v.as_array()?.iter().map(Value::as_u64).collect() };
    // Each prompt as its text and its (offset, token) list.
    let as_ids = |ids: Vec<u64>| {
        let text = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let toks: Vec<(usize, String)> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| (k, id.to_string()))
            .collect();
        (text, toks)
    };
    let as_text = |s: &str| (s.to_string(), fake_tokens(s));
    let prompts: Vec<(String, Vec<(usize, String)>)> = match body.get("prompt") {
        Some(Value::String(s)) => vec![as_text(s)],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(as_text).collect()
        }
        Some(v @ Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_u64) => {
            vec![as_ids(ids(v).unwrap_or_default())]
        }
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(|p| ids(p).is_some()) => {
            a.iter().filter_map(ids).map(as_ids).collect()
        }
        _ => {
            return Reply::fault(Fault::StatusMessage(
                400,
                "prompt must be text or token ids".into(),
            ));
        }
    };
    let mut n_prompt = 0;
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, (p, toks))| {
            n_prompt += toks.len();
            let mut tokens: Vec<Value> = Vec::with_capacity(toks.len() + 1);
            let mut lps: Vec<Value> = Vec::with_capacity(toks.len() + 1);
            let mut tops: Vec<Value> = Vec::with_capacity(toks.len() + 1);
            let mut offsets: Vec<Value> = Vec::with_capacity(toks.len() + 1);
            for (k, (off, t)) in toks.iter().enumerate() {
                tokens.push(json!(t));
                offsets.push(json!(off));
                if k == 0 {
                    lps.push(Value::Null);
                    tops.push(Value::Null);
                    continue;
                }
                let lp = logprob(p, *off, t);
                lps.push(json!(lp));
                let mut top = serde_json::Map::new();
                top.insert(t.clone(), json!(lp));
                if lp < -5.0 {
                    top.insert(" the".into(), json!(-0.1));
                }
                tops.push(Value::Object(top));
            }
            tokens.push(json!("!"));
            lps.push(json!(-1.0));
            tops.push(json!({"!": -1.0}));
            offsets.push(json!(p.chars().count()));
            json!({"index": i, "text": format!("{p}!"), "finish_reason": "length", "logprobs": {
                "tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}})
        })
        .collect();
    let n = choices.len();
    Reply {
        raw: Some(json!({
            "id": "cmpl-fake-echo", "object": "text_completion", "created": 0,
            "model": body.get("model").cloned().unwrap_or(Value::Null),
            "choices": choices,
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n, "total_tokens": n_prompt + n},
        })),
        ..Reply::text("")
    }
}

/// The toy model behind [`llama_cpp_python_echo`]: the log-probability of
/// `token` as the next token after the first `k + 1` prompt tokens (the
/// logits row after token `k`). Its top-1 token there is `x{k}` at -0.25,
/// which no prompt of the tests holds.
pub fn toy_logprob(k: usize, token: &str) -> f64 {
    -1.0 - 0.1 * ((k + 3 * token.len()) % 7) as f64
}

/// A completions answer shaped as llama-cpp-python 0.3's server sends it
/// for a text prompt with `logprobs` ([`fake_tokens`] of the prompt over
/// the toy model of [`toy_logprob`]), the prompt's own tokens only and the
/// first one `null`.
///
/// With `echo: true` and `shifted`, as llama-cpp-python does for a model
/// that adds no BOS: the entry of prompt token `k` is read from the logits
/// row *after* it (`toy_logprob(k, t_k)`, top-1 `x{k}`), and the echo ends
/// with the prompt (the generated token has no row left). Not `shifted`:
/// row `k - 1` scores token `k` (top-1 `x{k-1}`), still without the
/// generated token. With `echo: false`: the generated token `x{n-1}` after
/// the `n` prompt tokens, at -0.25, either way.
pub fn llama_cpp_python_echo(body: &Value, shifted: bool) -> Reply {
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return Reply::fault(Fault::StatusMessage(
            500,
            "llama-cpp-python takes one text prompt here".into(),
        ));
    };
    let toks = fake_tokens(prompt);
    let n = toks.len();
    let next = format!("x{}", n.saturating_sub(1));
    let echo = body.get("echo").and_then(Value::as_bool).unwrap_or(false);
    let logprobs = if echo {
        let mut lps = Vec::with_capacity(n);
        let mut tops = Vec::with_capacity(n);
        for (k, (_, t)) in toks.iter().enumerate() {
            if k == 0 {
                lps.push(Value::Null);
                tops.push(Value::Null);
                continue;
            }
            let row = if shifted { k } else { k - 1 };
            let lp = toy_logprob(row, t);
            lps.push(json!(lp));
            tops.push(json!({ format!("x{row}"): -0.25, t.as_str(): lp }));
        }
        json!({
            "tokens": toks.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
            "text_offset": toks.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            "token_logprobs": lps,
            "top_logprobs": tops,
        })
    } else {
        json!({
            "tokens": [next],
            "text_offset": [prompt.chars().count()],
            "token_logprobs": [-0.25],
            "top_logprobs": [{ next.as_str(): -0.25 }],
        })
    };
    let text = if echo {
        format!("{prompt}{next}")
    } else {
        next.clone()
    };
    Reply {
        raw: Some(json!({
            "id": "cmpl-fake-llama-cpp-python", "object": "text_completion", "created": 0,
            "model": body.get("model").cloned().unwrap_or(Value::Null),
            "choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": logprobs}],
            "usage": {"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1},
        })),
        ..Reply::text("")
    }
}

/// Shared by the handlers.
struct Shared {
    opts: FakeOptions,
    requests: Mutex<Vec<RecordedRequest>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Generation requests seen, for `fail_first_n`.
    generations: AtomicUsize,
    /// Becomes `true` when the [`FakeOpenAi`] is dropped; releases `Hang`.
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn record(&self, path: &str, body: Value, authorization: Option<String>) {
        let req = RecordedRequest {
            path: path.to_owned(),
            body,
            had_auth_header: authorization.is_some(),
            authorization,
        };
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(req);
    }

    /// Whether the request carries the configured key (if any is required).
    fn authorised(&self, authorization: Option<&str>) -> bool {
        match &self.opts.api_key {
            None => true,
            Some(key) => authorization.and_then(|a| a.strip_prefix("Bearer ")) == Some(key),
        }
    }
}

/// Counts a request as in flight until dropped; streaming bodies hold it
/// until the last byte is sent.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps the request counted as in flight.
struct GuardedBody {
    inner: BoxStream<'static, Result<Bytes, Infallible>>,
    _guard: InFlight,
}

impl Stream for GuardedBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// A running fake server. Dropping it stops accepting connections and
/// releases hanging requests.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for FakeOpenAi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOpenAi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeOpenAi {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test machine).
    pub async fn start(opts: FakeOptions) -> FakeOpenAi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 for the fake OpenAI server");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            opts,
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            generations: AtomicUsize::new(0),
            shutdown: rx.clone(),
        });
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(generate))
            .route("/v1/completions", post(generate))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        // Without TCP_NODELAY, small SSE writes wait for the client's delayed
        // ACK (~40 ms) and the measured inter-token latency is Nagle's.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut stop = rx;
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|&stopped| stopped).await;
        });
        tokio::spawn(async move {
            let _ = server.await;
        });
        FakeOpenAi {
            addr,
            shared,
            shutdown: tx,
        }
    }

    /// The API base, `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bare origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order (including
    /// `GET /v1/models` and rejected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests were received (same as `requests().len()`).
    pub fn request_count(&self) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The most generation requests that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Generation requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// An OpenAI-style error response.
fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}});
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"detail": "Not Found"})),
    )
        .into_response()
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let auth = authorization(&headers);
    shared.record("/v1/models", Value::Null, auth.clone());
    if !shared.authorised(auth.as_deref()) {
        return error_response(401, "Incorrect API key provided.");
    }
    let data: Vec<Value> = shared
        .opts
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "fake"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn generate(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let guard = InFlight::enter(&shared);
    let chat = uri.path().ends_with("/chat/completions");
    let auth = authorization(&headers);
    let req: Option<Value> = serde_json::from_slice(&body).ok();
    shared.record(uri.path(), req.clone().unwrap_or(Value::Null), auth.clone());
    if !shared.authorised(auth.as_deref()) {
        return error_response(401, "Incorrect API key provided.");
    }
    let Some(req) = req.filter(Value::is_object) else {
        return error_response(400, "request body is not a JSON object");
    };

    let n = shared.generations.fetch_add(1, Ordering::SeqCst);
    let mut reply = (shared.opts.responder)(&req);
    if n < shared.opts.fail_first_n {
        reply.fault = Some(shared.opts.fail_with.clone());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = shared.opts.send_usage
        && req
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);

    match &reply.fault {
        None => {}
        Some(Fault::Status(status)) => {
            return error_response(*status, &format!("fake failure: HTTP {status}"));
        }
        Some(Fault::StatusMessage(status, message)) => {
            return error_response(*status, message);
        }
        Some(Fault::RetryAfter(status, secs)) => {
            let mut resp = error_response(*status, "fake failure: slow down");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            return resp;
        }
        Some(Fault::ErrorBody) => {
            let error = json!({"error": {"message": "fake error body: the engine failed", "type": "server_error", "code": 500}});
            if stream {
                return sse(format!("data: {error}\n\ndata: [DONE]\n\n"), guard);
            }
            return axum::Json(error).into_response();
        }
        Some(Fault::Garbage) => {
            if stream {
                return sse("data: {\"choices\": [{\"delta\"\n\n".into(), guard);
            }
            return (
                [(header::CONTENT_TYPE, "text/html")],
                "<html>502 Bad Gateway</html>",
            )
                .into_response();
        }
        Some(Fault::Hang) => {
            let mut stop = shared.shutdown.clone();
            let _ = stop.wait_for(|&stopped| stopped).await;
            return error_response(503, "fake server shut down");
        }
        Some(Fault::CutStream) => {}
    }

    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model");
    if let Some(raw) = &reply.raw {
        return axum::Json(raw.clone()).into_response();
    }
    let answer = Answer::new(&shared.opts, &reply, chat, &req);
    if !stream {
        let full = answer.body(model, &reply);
        if reply.fault == Some(Fault::CutStream) {
            let mut cut = full.into_bytes();
            cut.truncate(cut.len() / 2);
            return ([(header::CONTENT_TYPE, "application/json")], cut).into_response();
        }
        return ([(header::CONTENT_TYPE, "application/json")], full).into_response();
    }
    let mut events = answer.events(model, &reply, include_usage);
    if reply.fault == Some(Fault::CutStream) {
        events.truncate(2);
    }
    if reply.chunk_delay.is_zero() {
        // One write: the fastest path, for throughput benchmarks.
        return sse(events.concat(), guard);
    }
    let delay = reply.chunk_delay;
    let chunks = stream::iter(events.into_iter().enumerate()).then(move |(i, event)| async move {
        if i > 0 {
            tokio::time::sleep(delay).await;
        }
        Ok(Bytes::from(event))
    });
    sse_stream(chunks.boxed(), guard)
}

fn sse(text: String, guard: InFlight) -> Response {
    sse_stream(
        stream::once(async move { Ok(Bytes::from(text)) }).boxed(),
        guard,
    )
}

fn sse_stream(inner: BoxStream<'static, Result<Bytes, Infallible>>, guard: InFlight) -> Response {
    let body = Body::from_stream(GuardedBody {
        inner,
        _guard: guard,
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The text to send, split the way it will be streamed.
struct Answer<'a> {
    chat: bool,
    /// Reasoning sent as `reasoning_content` chunks.
    reasoning: Vec<&'a str>,
    /// The content (with `<think>` when reasoning is inlined).
    content: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    id: String,
}

impl<'a> Answer<'a> {
    fn new(opts: &FakeOptions, reply: &'a Reply, chat: bool, req: &Value) -> Self {
        // Completions have no reasoning field, so reasoning goes inline.
        let inline = opts.think_in_content || !chat;
        let (reasoning, content) = match &reply.reasoning {
            Some(r) if inline => (
                Vec::new(),
                format!("<think>{r}</think>\n\n{}", reply.content),
            ),
            Some(r) => (words(r), reply.content.clone()),
            None => (Vec::new(), reply.content.clone()),
        };
        let sent = reasoning.len() + words(&content).len();
        let (prompt_tokens, completion_tokens) = reply.usage.unwrap_or_else(|| {
            (
                prompt_text(req).split_whitespace().count() as u64,
                sent as u64,
            )
        });
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = if chat {
            format!("chatcmpl-fake-{n}")
        } else {
            format!("cmpl-fake-{n}")
        };
        Self {
            chat,
            reasoning,
            content,
            prompt_tokens,
            completion_tokens,
            id,
        }
    }

    fn usage(&self) -> UsageOut {
        UsageOut {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.prompt_tokens + self.completion_tokens,
        }
    }

    /// The non-streaming body.
    fn body(&self, model: &str, reply: &Reply) -> String {
        let choice = if self.chat {
            let reasoning = (!self.reasoning.is_empty()).then(|| self.reasoning.concat());
            json!({"index": 0, "message": {"role": "assistant", "content": self.content, "reasoning_content": reasoning}, "logprobs": null, "finish_reason": reply.finish_reason})
        } else {
            json!({"index": 0, "text": self.content, "logprobs": null, "finish_reason": reply.finish_reason})
        };
        json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": 0,
            "model": model,
            "choices": [choice],
            "usage": self.usage(),
        })
        .to_string()
    }

    /// The SSE events, each with its `data: ` prefix and blank line.
    fn events(&self, model: &str, reply: &Reply, include_usage: bool) -> Vec<String> {
        let chunk = |choice: Option<ChoiceOut>, usage: Option<UsageOut>| -> String {
            let out = ChunkOut {
                id: &self.id,
                object: if self.chat {
                    "chat.completion.chunk"
                } else {
                    "text_completion"
                },
                created: 0,
                model,
                choices: choice.into_iter().collect(),
                usage,
            };
            // Serialising plain structs of strings and numbers cannot fail.
            format!(
                "data: {}\n\n",
                serde_json::to_string(&out).unwrap_or_default()
            )
        };
        let content = words(&self.content);
        let mut events = Vec::with_capacity(self.reasoning.len() + content.len() + 4);
        if self.chat {
            let role = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..DeltaOut::default()
            };
            events.push(chunk(Some(ChoiceOut::delta(role, None)), None));
            for piece in &self.reasoning {
                let delta = DeltaOut {
                    reasoning_content: Some(piece),
                    ..DeltaOut::default()
                };
                events.push(chunk(Some(ChoiceOut::delta(delta, None)), None));
            }
            for piece in content {
                let delta = DeltaOut {
                    content: Some(piece),
                    ..DeltaOut::default()
                };
                events.push(chunk(Some(ChoiceOut::delta(delta, None)), None));
            }
            events.push(chunk(
                Some(ChoiceOut::delta(
                    DeltaOut::default(),
                    Some(&reply.finish_reason),
                )),
                None,
            ));
        } else {
            for piece in content {
                events.push(chunk(Some(ChoiceOut::text(piece, None)), None));
            }
            events.push(chunk(
                Some(ChoiceOut::text("", Some(&reply.finish_reason))),
                None,
            ));
        }
        if include_usage {
            events.push(chunk(None, Some(self.usage())));
        }
        events.push("data: [DONE]\n\n".into());
        events
    }
}

/// Splits text into word-sized pieces that concatenate back to it: each
/// piece is a word with the whitespace before it, like tokens.
fn words(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

impl<'a> ChoiceOut<'a> {
    fn delta(delta: DeltaOut<'a>, finish_reason: Option<&'a str>) -> Self {
        Self {
            index: 0,
            delta: Some(delta),
            text: None,
            logprobs: (),
            finish_reason,
        }
    }

    fn text(text: &'a str, finish_reason: Option<&'a str>) -> Self {
        Self {
            index: 0,
            delta: None,
            text: Some(text),
            logprobs: (),
            finish_reason,
        }
    }
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize, Clone, Copy)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_concatenate_back() {
        for text in ["", "one", " The answer  is\n42. ", "é ü"] {
            assert_eq!(words(text).concat(), text);
        }
        assert_eq!(
            words("The answer is 42."),
            ["The", " answer", " is", " 42."]
        );
    }

    #[test]
    fn prompt_text_of_both_shapes() {
        let chat = json!({"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]});
        assert_eq!(prompt_text(&chat), "a\nb");
        assert_eq!(prompt_text(&json!({"prompt": "p"})), "p");
        assert_eq!(prompt_text(&json!({})), "");
    }
}
