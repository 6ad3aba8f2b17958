//! `bench serve`: the in-process [`Engine`] behind an OpenAI-compatible HTTP
//! server, so the same model can be measured with `bench perf` (or any
//! OpenAI client, lm-eval's `local-completions`, ...) as a vLLM or
//! llama.cpp server would be.
//!
//! Routes: `GET /v1/models` (with vLLM's `max_model_len`), `POST
//! /v1/chat/completions`, `POST /v1/completions` (non-streaming and SSE
//! streaming, with the usage chunk of `stream_options.include_usage`), `GET
//! /health` and `GET /metrics` (Prometheus text with vLLM's metric names,
//! so what `bench perf` reads from vLLM it reads from us). Every error is
//! OpenAI's `{"error": {"message", "type", "param", "code"}}` with its HTTP
//! status; no request body can panic the server.
//!
//! A streaming client that goes away drops its response body, which drops
//! the [`GenStream`] and so frees its engine slot.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::client::{Message, Prompt, Usage, split_think};
use crate::engine::Engine;
use crate::engine::gguf::EngineError;
use crate::engine::load::{LoadOptions, load_model};
use crate::engine::runner::{Chunk, GenStream};
use crate::engine::sample::GenParams;
use crate::hub::{Hub, HubConfig};

/// What `bench serve` runs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `--model`: a hub id, a `.gguf` file or a model directory.
    pub model: String,
    /// Address to bind.
    pub host: String,
    /// Port to bind (0: any free port).
    pub port: u16,
    /// The name clients use (default: `model`).
    pub served_model_name: Option<String>,
    /// Sequences decoded together at most.
    pub max_batch: usize,
    /// Hub settings (offline, cache, token).
    pub hub: HubConfig,
    /// Draw download progress bars.
    pub progress: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model could not be fetched or loaded.
    #[error("{0}")]
    Model(String),
    /// The address could not be bound or the server failed.
    #[error("{0}")]
    Io(String),
}

/// A loaded model with its listening socket, ready to [`run`](Server::run).
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("model", &self.state.name)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the model of `cfg` and binds its address.
    pub async fn bind(cfg: &ServeConfig) -> Result<Server, ServeError> {
        let hub = Hub::new(cfg.hub.clone()).map_err(|e| ServeError::Model(e.to_string()))?;
        let opts = LoadOptions {
            max_batch: cfg.max_batch.max(1),
            progress: cfg.progress,
        };
        let loaded = load_model(&cfg.model, &hub, &opts)
            .await
            .map_err(|e| ServeError::Model(e.to_string()))?;
        let engine = Engine::new(loaded).map_err(|e| ServeError::Model(e.to_string()))?;
        let name = cfg
            .served_model_name
            .clone()
            .unwrap_or_else(|| cfg.model.clone());
        Server::with_engine(engine, name, &cfg.host, cfg.port).await
    }

    /// Serves an already running `engine` as `name` on `host:port`.
    pub async fn with_engine(
        engine: Engine,
        name: String,
        host: &str,
        port: u16,
    ) -> Result<Server, ServeError> {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .map_err(|e| ServeError::Io(format!("--host {host} --port {port}: binding: {e}")))?;
        Ok(Server {
            listener,
            state: Arc::new(AppState {
                engine,
                name,
                created: unix_now(),
                metrics: Mutex::new(Metrics::default()),
            }),
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|e| ServeError::Io(format!("reading the bound address: {e}")))
    }

    /// The name clients use for the model.
    pub fn model_name(&self) -> &str {
        &self.state.name
    }

    /// Serves until `shutdown` completes, then lets in-flight responses
    /// finish and stops the engine.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        use axum::serve::ListenerExt;
        let app = router(self.state.clone());
        // One small write per streamed token: without TCP_NODELAY, Nagle's
        // algorithm and the client's delayed ACK hold chunks back ~40 ms.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| ServeError::Io(format!("serving: {e}")));
        // Blocking join of the engine thread: off the async threads.
        let state = self.state;
        let _ = tokio::task::spawn_blocking(move || state.engine.shutdown()).await;
        r
    }
}

struct AppState {
    engine: Engine,
    name: String,
    created: u64,
    metrics: Mutex<Metrics>,
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such route").into_response()
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed for this route",
            )
            .into_response()
        })
        .with_state(state)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An error answered in OpenAI's shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }
    fn engine(e: EngineError) -> Self {
        match e {
            EngineError::Request(m) => Self::bad(m),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
    fn body(&self) -> Value {
        let kind = match self.status {
            StatusCode::NOT_FOUND => "NotFoundError",
            s if s.is_server_error() => "InternalServerError",
            _ => "BadRequestError",
        };
        json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.status.as_u16(),
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn models(State(s): State<Arc<AppState>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": [{
                "id": s.name,
                "object": "model",
                "created": s.created,
                "owned_by": "bench",
                "root": s.engine.info().source,
                "parent": null,
                "max_model_len": s.engine.max_positions(),
            }],
        }),
    )
}

/// The request body as a JSON object, and its `model` checked.
fn parse_body(s: &AppState, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::bad("the request body must be a JSON object"));
    };
    match map.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if *m == s.name => {}
        Some(other) => {
            let shown = other
                .as_str()
                .map(str::to_string)
                .unwrap_or(other.to_string());
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "The model `{shown}` does not exist; this server serves `{}`",
                    s.name
                ),
            )
            .param("model"));
        }
    }
    wants_stream(&map)?;
    // Features that change the answer and that the engine lacks: refused,
    // not silently ignored.
    if map.get("echo").is_some_and(|v| v.as_bool() == Some(true)) {
        return Err(ApiError::bad("`echo` is not supported by bench serve").param("echo"));
    }
    match map.get("logprobs") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => {
            return Err(
                ApiError::bad("`logprobs` is not supported by bench serve").param("logprobs")
            );
        }
    }
    Ok(map)
}

fn include_usage(map: &Map<String, Value>) -> bool {
    map.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn wants_stream(map: &Map<String, Value>) -> Result<bool, ApiError> {
    match map.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => {
            Err(ApiError::bad(format!("`stream` must be a boolean, got {v}")).param("stream"))
        }
    }
}

fn messages(map: &Map<String, Value>) -> Result<Vec<Message>, ApiError> {
    let bad = |m: String| ApiError::bad(m).param("messages");
    let Some(list) = map.get("messages") else {
        return Err(bad("`messages` is required".into()));
    };
    let Some(list) = list.as_array() else {
        return Err(bad("`messages` must be a list".into()));
    };
    if list.is_empty() {
        return Err(bad("`messages` must not be empty".into()));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}] needs a string `role`")))?;
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            // The list-of-parts form: text parts only.
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (p.get("type").and_then(Value::as_str), p.get("text")) {
                        (Some("text"), Some(Value::String(t))) => text.push_str(t),
                        _ => {
                            return Err(bad(format!(
                                "messages[{i}].content: only text parts are supported"
                            )));
                        }
                    }
                }
                text
            }
            Some(other) => {
                return Err(bad(format!(
                    "messages[{i}].content must be a string or a list of text parts, got {other}"
                )));
            }
        };
        out.push(Message {
            role: role.to_string(),
            content,
        });
    }
    Ok(out)
}

/// What `/v1/completions` was asked to continue.
enum CompletionPrompt {
    Text(String),
    Ids(Vec<u32>),
}

fn completion_prompt(map: &Map<String, Value>) -> Result<CompletionPrompt, ApiError> {
    let bad = |m: &str| ApiError::bad(m.to_string()).param("prompt");
    let ids = |items: &[Value]| -> Option<Vec<u32>> {
        items
            .iter()
            .map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect()
    };
    match map.get("prompt") {
        None => Err(bad("`prompt` is required")),
        Some(Value::String(s)) => Ok(CompletionPrompt::Text(s.clone())),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(s)] => Ok(CompletionPrompt::Text(s.clone())),
            [Value::Array(inner)] => ids(inner)
                .map(CompletionPrompt::Ids)
                .ok_or_else(|| bad("`prompt` token ids must be non-negative integers")),
            [] => Err(bad("`prompt` must not be empty")),
            [Value::Number(_), ..] => ids(items)
                .map(CompletionPrompt::Ids)
                .ok_or_else(|| bad("`prompt` token ids must be non-negative integers")),
            _ => Err(bad(
                "`prompt` must be a string, a list of one string, or token ids: bench serve answers one prompt per request",
            )),
        },
        Some(_) => Err(bad("`prompt` must be a string or a list of one string")),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Text,
}

async fn chat(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = || -> Result<(Map<String, Value>, GenStream), ApiError> {
        let map = parse_body(&s, &body)?;
        let msgs = messages(&map)?;
        let stream = s
            .engine
            .start(&Prompt::Messages(msgs), &map)
            .map_err(ApiError::engine)?;
        Ok((map, stream))
    };
    match run() {
        Ok((map, stream)) => respond(s, map, stream, Kind::Chat).await,
        Err(e) => e.into_response(),
    }
}

async fn completions(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = || -> Result<(Map<String, Value>, GenStream), ApiError> {
        let map = parse_body(&s, &body)?;
        let stream = match completion_prompt(&map)? {
            CompletionPrompt::Text(t) => s.engine.start(&Prompt::Text(t), &map),
            CompletionPrompt::Ids(ids) => {
                let params = GenParams::from_openai(&map).map_err(ApiError::bad)?;
                s.engine.start_ids(ids, params)
            }
        }
        .map_err(ApiError::engine)?;
        Ok((map, stream))
    };
    match run() {
        Ok((map, stream)) => respond(s, map, stream, Kind::Text).await,
        Err(e) => e.into_response(),
    }
}

async fn respond(
    s: Arc<AppState>,
    map: Map<String, Value>,
    stream: GenStream,
    kind: Kind,
) -> Response {
    // Checked by `parse_body` already.
    let stream_mode = wants_stream(&map).unwrap_or(false);
    let id = request_id(kind);
    if stream_mode {
        return sse(s, stream, kind, id, include_usage(&map));
    }
    let mut stream = stream;
    let mut text = String::new();
    let mut end = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(Chunk::Text(t)) => text.push_str(&t),
            Ok(Chunk::End {
                finish_reason,
                usage,
            }) => end = Some((finish_reason, usage)),
            Err(e) => return ApiError::engine(e).into_response(),
        }
    }
    let Some((finish_reason, usage)) = end else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the engine ended the request without an answer",
        )
        .into_response();
    };
    s.record(&stream, finish_reason, &usage);
    let choice = match kind {
        Kind::Chat => {
            let (content, reasoning) = split_think(&text);
            let mut message = json!({"role": "assistant", "content": content});
            if let Some(r) = reasoning {
                message["reasoning_content"] = Value::String(r);
            }
            json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason})
        }
        Kind::Text => {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason})
        }
    };
    json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "object": if kind == Kind::Chat { "chat.completion" } else { "text_completion" },
            "created": unix_now(),
            "model": s.name,
            "choices": [choice],
            "usage": usage_json(&usage),
        }),
    )
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    })
}

fn request_id(kind: Kind) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = if kind == Kind::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    format!("{prefix}-{:x}{:08x}", unix_now(), n)
}

/// Where a streamed response is.
enum Phase {
    Running,
    Usage(Usage),
    Done,
    Over,
}

struct SseState {
    app: Arc<AppState>,
    stream: GenStream,
    kind: Kind,
    id: String,
    created: u64,
    include_usage: bool,
    first: bool,
    phase: Phase,
}

impl SseState {
    fn chunk(&self, delta: Option<&str>, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => {
                let mut d = Map::new();
                if self.first {
                    d.insert("role".into(), "assistant".into());
                }
                if let Some(t) = delta {
                    d.insert("content".into(), t.into());
                }
                json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.app.name,
                    "choices": [{"index": 0, "delta": d, "logprobs": null, "finish_reason": finish}],
                })
            }
            Kind::Text => json!({
                "id": self.id, "object": "text_completion", "created": self.created,
                "model": self.app.name,
                "choices": [{"index": 0, "text": delta.unwrap_or(""), "logprobs": null, "finish_reason": finish}],
            }),
        }
    }

    fn usage_chunk(&self, u: &Usage) -> Value {
        json!({
            "id": self.id,
            "object": if self.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created, "model": self.app.name,
            "choices": [], "usage": usage_json(u),
        })
    }

    async fn next_event(&mut self) -> Option<String> {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Over => None,
            Phase::Done => Some("data: [DONE]\n\n".into()),
            Phase::Usage(u) => {
                self.phase = Phase::Done;
                Some(data(&self.usage_chunk(&u)))
            }
            Phase::Running => match self.stream.next().await {
                Some(Ok(Chunk::Text(t))) => {
                    let v = self.chunk(Some(&t), None);
                    self.first = false;
                    self.phase = Phase::Running;
                    Some(data(&v))
                }
                Some(Ok(Chunk::End {
                    finish_reason,
                    usage,
                })) => {
                    self.app.record(&self.stream, finish_reason, &usage);
                    let v = self.chunk(self.first.then_some(""), Some(finish_reason));
                    self.phase = if self.include_usage {
                        Phase::Usage(usage)
                    } else {
                        Phase::Done
                    };
                    Some(data(&v))
                }
                // An engine failure mid-stream: the error object as an
                // event (as vLLM does), then [DONE].
                Some(Err(e)) => {
                    self.phase = Phase::Done;
                    Some(data(&ApiError::engine(e).body()))
                }
                None => {
                    self.phase = Phase::Done;
                    Some(data(
                        &ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the engine ended the request without an answer",
                        )
                        .body(),
                    ))
                }
            },
        }
    }
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn sse(s: Arc<AppState>, stream: GenStream, kind: Kind, id: String, usage: bool) -> Response {
    let st = SseState {
        app: s,
        stream,
        kind,
        id,
        created: unix_now(),
        include_usage: usage,
        first: true,
        phase: Phase::Running,
    };
    let body = futures::stream::unfold(st, |mut st| async move {
        st.next_event()
            .await
            .map(|e| (Ok::<_, Infallible>(Bytes::from(e)), st))
    });
    let mut r = Response::new(Body::from_stream(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// vLLM's bucket bounds (`vllm/v1/metrics/loggers.py`).
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const TOKEN_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const REQUEST_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }
    fn observe_n(&mut self, x: f64, n: u64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if x <= *b {
                *c += n;
            }
        }
        self.sum += x * n as f64;
        self.count += n;
    }
    fn write(&self, out: &mut String, name: &str, help: &str, label: &str) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            out.push_str(&format!("{name}_bucket{{{label},le=\"{b:?}\"}} {c}\n"));
        }
        out.push_str(&format!(
            "{name}_bucket{{{label},le=\"+Inf\"}} {}\n{name}_sum{{{label}}} {}\n{name}_count{{{label}}} {}\n",
            self.count, self.sum, self.count
        ));
    }
}

struct Metrics {
    ttft: Histogram,
    e2e: Histogram,
    queue: Histogram,
    tpot: Histogram,
    itl: Histogram,
    prompt_tokens: u64,
    generation_tokens: u64,
    success: std::collections::BTreeMap<&'static str, u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            ttft: Histogram::new(TTFT_BUCKETS),
            e2e: Histogram::new(REQUEST_BUCKETS),
            queue: Histogram::new(REQUEST_BUCKETS),
            tpot: Histogram::new(TOKEN_BUCKETS),
            itl: Histogram::new(TOKEN_BUCKETS),
            prompt_tokens: 0,
            generation_tokens: 0,
            success: [("stop", 0), ("length", 0)].into_iter().collect(),
        }
    }
}

impl AppState {
    /// Counts a finished request.
    fn record(&self, stream: &GenStream, finish_reason: &'static str, usage: &Usage) {
        let t = stream.timing();
        let now = Instant::now();
        let Ok(mut m) = self.metrics.lock() else {
            return;
        };
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        m.e2e.observe_n(secs(t.submitted, now), 1);
        if let Some(started) = t.started {
            m.queue.observe_n(secs(t.submitted, started), 1);
        }
        if let Some(first) = t.first_token {
            m.ttft.observe_n(secs(t.submitted, first), 1);
        }
        let generated = usage.completion_tokens.unwrap_or(0);
        if let (Some(first), Some(last)) = (t.first_token, t.finished)
            && generated > 1
        {
            // The engine reports only the first and last token times: the
            // mean gap stands for each of the request's gaps (so the ITL
            // sum and count are exact, its buckets approximate).
            let gap = secs(first, last) / (generated - 1) as f64;
            m.tpot.observe_n(gap, 1);
            m.itl.observe_n(gap, generated - 1);
        }
        m.prompt_tokens += usage.prompt_tokens.unwrap_or(0);
        m.generation_tokens += generated;
        *m.success.entry(finish_reason).or_default() += 1;
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let (running, waiting) = s.engine.load();
    let label = format!("model_name=\"{}\"", prom_escape(&s.name));
    let mut out = String::new();
    out.push_str(&format!(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{label}}} {running}\n"
    ));
    out.push_str(&format!(
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{{label}}} {waiting}\n"
    ));
    if let Ok(m) = s.metrics.lock() {
        out.push_str(&format!(
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{{{label}}} {}\n",
            m.prompt_tokens
        ));
        out.push_str(&format!(
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total{{{label}}} {}\n",
            m.generation_tokens
        ));
        out.push_str("# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\n");
        for (reason, n) in &m.success {
            out.push_str(&format!(
                "vllm:request_success_total{{{label},finished_reason=\"{reason}\"}} {n}\n"
            ));
        }
        m.ttft.write(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &label,
        );
        m.e2e.write(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            &label,
        );
        m.queue.write(
            &mut out,
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            &label,
        );
        m.tpot.write(
            &mut out,
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            &label,
        );
        m.itl.write(
            &mut out,
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &label,
        );
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

fn prom_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(TOKEN_BUCKETS);
        h.observe_n(0.02, 3);
        h.observe_n(1.5, 1);
        assert_eq!(h.counts[0], 0);
        assert_eq!(h.counts[1], 3);
        assert_eq!(*h.counts.last().unwrap(), 4);
        assert_eq!(h.count, 4);
        assert!((h.sum - 1.56).abs() < 1e-9);
    }

    #[test]
    fn completion_prompt_shapes() {
        let p = |v: Value| {
            let mut m = Map::new();
            m.insert("prompt".into(), v);
            completion_prompt(&m)
        };
        assert!(matches!(p(json!("hi")), Ok(CompletionPrompt::Text(t)) if t == "hi"));
        assert!(matches!(p(json!(["hi"])), Ok(CompletionPrompt::Text(t)) if t == "hi"));
        assert!(matches!(p(json!([1, 2])), Ok(CompletionPrompt::Ids(v)) if v == [1, 2]));
        assert!(matches!(p(json!([[3]])), Ok(CompletionPrompt::Ids(v)) if v == [3]));
        assert!(p(json!(["a", "b"])).is_err());
        assert!(p(json!([-1])).is_err());
        assert!(p(json!(5)).is_err());
    }
}
