//! The OpenAI-compatible HTTP client shared by `bench eval` and `bench perf`.
//!
//! Owns: endpoint resolution (base URL or full endpoint), `/v1/models`
//! discovery, chat and completions requests, SSE streaming, retries with
//! exponential backoff and jitter, error classification, and splitting
//! reasoning from the visible answer. Does not own: prompts, scoring, or what
//! to do with a failed item (the caller records it and moves on).
//!
//! Layout: `endpoints` ([`resolve_endpoints`]) turns `--api-url` into URLs,
//! [`sse`] parses event streams, `parse` reads response bodies, `retry`
//! holds the retry policy, `think` splits `<think>` blocks, and this file
//! has the types and [`Client`], which ties them together.

mod endpoints;
pub mod events;
pub mod h1;
pub mod loglik;
mod parse;
mod retry;
pub mod sse;
mod think;
pub mod timed;

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use endpoints::{Endpoints, resolve_endpoints};
pub use retry::parse_retry_after;
pub use think::split_think;

use parse::{StreamState, error_message, parse_body, truncate};
use retry::{backoff, is_retryable, kind_for_status};
use sse::SseParser;

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// `POST {base}/chat/completions` with `messages`.
    Chat,
    /// `POST {base}/completions` with a plain-text `prompt`.
    Completions,
}

impl ApiKind {
    /// The name used on the command line and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Chat => "chat",
            ApiKind::Completions => "completions",
        }
    }
}

/// Why a server cannot take a run: the checks `bench eval` and `bench perf`
/// both make on `/models` before sending any work. Each message names the
/// flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server did not answer `/models`.
    #[error("cannot reach the server at {url} ({flag}): {source}")]
    Unreachable {
        /// The models URL tried (no credentials).
        url: String,
        /// The flag that gave the URL (`--api-url`, `--url`).
        flag: &'static str,
        /// Cause.
        source: RequestError,
    },
    /// The server refused the API key (HTTP 401/403).
    #[error(
        "the server at {url} refused the request (HTTP {status}): {}; the key comes from --api-key, else the OPENAI_API_KEY environment variable{}",
        if *key_sent { "it did not accept the API key sent" } else { "no API key was sent" },
        if *header_flag { " (or an Authorization --header)" } else { "" }
    )]
    Unauthorized {
        /// The models URL tried (no credentials).
        url: String,
        /// 401 or 403.
        status: u16,
        /// Whether a key was sent.
        key_sent: bool,
        /// Whether the command has `--header` (then it may carry the key).
        header_flag: bool,
    },
    /// The model is not served.
    #[error("--model `{model}` is not served by {url}; it serves: {}", served.join(", "))]
    UnknownModel {
        /// Requested model.
        model: String,
        /// Server URL (no credentials).
        url: String,
        /// What `/models` listed.
        served: Vec<String>,
    },
}

impl ServerError {
    /// The error for a failed `/models` request to `models_url` (already
    /// without credentials): refused (401/403) or unreachable.
    pub fn from_models(
        source: RequestError,
        models_url: String,
        flag: &'static str,
        key_sent: bool,
        header_flag: bool,
    ) -> Self {
        match source.status {
            Some(status @ (401 | 403)) => ServerError::Unauthorized {
                url: models_url,
                status,
                key_sent,
                header_flag,
            },
            _ => ServerError::Unreachable {
                url: models_url,
                flag,
                source,
            },
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// What is sent: chat messages or a plain-text prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    /// For [`ApiKind::Chat`].
    Messages(Vec<Message>),
    /// For [`ApiKind::Completions`].
    Text(String),
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens.
    pub completion_tokens: Option<u64>,
    /// Sum.
    pub total_tokens: Option<u64>,
}

/// A successful generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Visible answer text (reasoning removed).
    pub text: String,
    /// Reasoning text (`reasoning_content`, `reasoning`, or `<think>` blocks).
    pub reasoning: Option<String>,
    /// `stop`, `length`, ... as reported.
    pub finish_reason: Option<String>,
    /// Token counts if the server sent them.
    pub usage: Option<Usage>,
    /// How many attempts it took (1 = no retry).
    pub attempts: u32,
    /// Wall time of the successful attempt, in milliseconds.
    pub latency_ms: f64,
    /// Time to the first content byte when streaming.
    pub ttft_ms: Option<f64>,
}

/// How a request failed, for grouping and for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect / DNS failure.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx (and 408).
    Server,
    /// Other HTTP 4xx: not retried, fails the item.
    Client,
    /// HTTP 200 whose body carries an error, or no choices.
    ErrorBody,
    /// A body that is not the expected JSON / SSE.
    Decode,
    /// Stopped by Ctrl-C.
    Cancelled,
}

/// A request that failed after all retries (or was not retryable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}{}: {message} (after {attempts} attempt(s))", status.map(|s| format!(" HTTP {s}")).unwrap_or_default())]
pub struct RequestError {
    /// Classification.
    pub kind: ErrorKind,
    /// HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Server message or transport error text (never contains the API key).
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Client settings. `Debug` never prints the key.
#[derive(Clone)]
pub struct ClientConfig {
    /// `--api-url`: a base (`http://h:p/v1`) or a full endpoint.
    pub api_url: String,
    /// Bearer key, if any.
    pub api_key: Option<String>,
    /// Chat or completions.
    pub api: ApiKind,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry, with jitter, capped by `retry_max`.
    pub retry_base: Duration,
    /// Backoff cap.
    pub retry_max: Duration,
    /// Use SSE streaming.
    pub stream: bool,
    /// Extra request headers (`--header K: V`); values may be secrets and
    /// are never printed.
    pub headers: Vec<(String, String)>,
}

impl ClientConfig {
    /// Settings for `api_url` with the defaults: chat API, no key, 600 s per
    /// attempt, 5 retries backing off from 500 ms up to 30 s, no streaming.
    pub fn new(api_url: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            api_key: None,
            api: ApiKind::Chat,
            timeout: Duration::from_secs(600),
            max_retries: 5,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            stream: false,
            headers: Vec::new(),
        }
    }

    /// The key, if one is set and not empty (`--api-key ""` means none).
    fn key(&self) -> Option<&str> {
        self.api_key.as_deref().filter(|k| !k.is_empty())
    }

    /// The secrets these settings send: the key, the header values and the
    /// URL's userinfo.
    pub fn redactor(&self) -> crate::redact::Redactor {
        let mut r = crate::redact::Redactor::new();
        r.secret(self.key().unwrap_or_default()).url(&self.api_url);
        for (_, value) in &self.headers {
            r.secret(value);
        }
        r
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_url", &self.api_url)
            // Only whether a key is set: configs end up in logs and run files.
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api", &self.api)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .field("stream", &self.stream)
            .finish()
    }
}

/// A [`ClientConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--api-url` is not an http(s) URL.
    #[error(
        "invalid --api-url {:?}: {reason}",
        crate::redact::url_for_message(url)
    )]
    ApiUrl {
        /// The value given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key cannot be sent in a header (it is not printed).
    #[error("--api-key contains characters that are not allowed in an HTTP header")]
    ApiKey,
    /// The HTTP client could not be set up (TLS backend, system config).
    #[error("could not set up the HTTP client: {0}")]
    Http(String),
}

/// How long `list_models` waits in total: it is the "is the server up?"
/// probe, so an unreachable server must fail fast.
const MODELS_TIMEOUT: Duration = Duration::from_secs(5);

/// After `[DONE]`, how long to wait for the end of the HTTP body. Reading it
/// lets the connection go back to the pool; the wait is bounded because a
/// misbehaving server may keep the stream open.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_millis(100);

/// One failed attempt, before the retry decision.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn new(kind: ErrorKind, message: String) -> Self {
        Self {
            kind,
            status: None,
            message,
            retry_after: None,
        }
    }

    /// A transport error from reqwest, with its cause chain (the top-level
    /// message alone is just "error sending request").
    fn transport(err: &reqwest::Error) -> Self {
        // A connect timeout is a connect failure. Resets and early closes
        // while sending or reading are too: the connection failed.
        let kind = if err.is_timeout() && !err.is_connect() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connect
        };
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            // hyper repeats its inner error in its own message.
            if !message.contains(&cause_text) {
                message.push_str(": ");
                message.push_str(&cause_text);
            }
            source = cause.source();
        }
        Self::new(kind, message)
    }
}

/// The OpenAI-compatible client. Cheap to clone (the connection pool is
/// shared); one per run is enough.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    cfg: ClientConfig,
    endpoints: Endpoints,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not reqwest's Debug: it lists the default headers.
        f.debug_struct("Client")
            .field("cfg", &self.cfg)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Resolves the endpoints and builds the HTTP client: keep-alive pool,
    /// 5 s connect timeout, `User-Agent: bench/<version>`, and
    /// `Authorization: Bearer <key>` when a non-empty key is set.
    ///
    /// Registers the config's secrets with [`crate::redact::install`], so
    /// that every message this client (or anyone else in the process)
    /// reports has them masked, whoever built the config.
    pub fn new(cfg: ClientConfig) -> Result<Client, ConfigError> {
        crate::redact::install(&cfg.redactor());
        let endpoints = resolve_endpoints(&cfg.api_url)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = cfg.key() {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ConfigError::ApiKey)?;
            // Keeps it out of http's Debug output and HTTP/2 header tables.
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        for (name, value) in &cfg.headers {
            let name = header::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ConfigError::Http(format!(
                    "--header: `{}` is not a valid header name",
                    name.trim()
                ))
            })?;
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ConfigError::Http(format!(
                    "--header {name}: the value is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("bench/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Client {
            http,
            cfg,
            endpoints,
        })
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The resolved URLs.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `GET {base}/models`: the served model ids, in the server's order.
    ///
    /// One attempt with a 5 s limit, so a wrong URL or a server that is down
    /// is reported within seconds instead of after the retry schedule.
    pub async fn list_models(&self) -> Result<Vec<String>, RequestError> {
        Ok(self
            .served_models()
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect())
    }

    /// [`Client::list_models`] with each model's context length where the
    /// server states it.
    pub async fn served_models(&self) -> Result<Vec<ServedModel>, RequestError> {
        let attempt = async {
            let resp = self
                .http
                .get(&self.endpoints.models)
                .send()
                .await
                .map_err(|e| Failure::transport(&e))?;
            if !resp.status().is_success() {
                return Err(status_failure(resp).await);
            }
            let body = resp.bytes().await.map_err(|e| Failure::transport(&e))?;
            parse_models(&body)
        };
        let limit = MODELS_TIMEOUT.min(self.cfg.timeout);
        let result = tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    ErrorKind::Timeout,
                    format!("no answer within {limit:?}"),
                ))
            });
        result.map_err(|f| self.request_error(f, 1))
    }

    /// The JSON body [`generate`](Self::generate) sends: `params` (sampling
    /// settings and extra keys) at the top level, plus `model` and
    /// `messages` or `prompt`, which win over params of the same name, plus
    /// the streaming keys, which follow `cfg.stream` whatever params say.
    /// Public so that callers can log or hash the exact request.
    pub fn request_body(
        &self,
        model: &str,
        prompt: &Prompt,
        params: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut body = params.clone();
        body.insert("model".into(), Value::String(model.to_owned()));
        match prompt {
            Prompt::Messages(messages) => {
                let messages = messages
                    .iter()
                    .map(|m| {
                        let mut o = Map::new();
                        o.insert("role".into(), Value::String(m.role.clone()));
                        o.insert("content".into(), Value::String(m.content.clone()));
                        Value::Object(o)
                    })
                    .collect();
                body.insert("messages".into(), Value::Array(messages));
            }
            Prompt::Text(text) => {
                body.insert("prompt".into(), Value::String(text.clone()));
            }
        }
        if self.cfg.stream {
            body.insert("stream".into(), Value::Bool(true));
            // Merge rather than replace, in case the caller set other
            // stream options.
            let options = body
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if !options.is_object() {
                *options = Value::Object(Map::new());
            }
            if let Value::Object(options) = options {
                options.insert("include_usage".into(), Value::Bool(true));
            }
        } else {
            // vLLM rejects `stream_options` unless streaming.
            body.remove("stream");
            body.remove("stream_options");
        }
        body
    }

    /// Sends one generation request, retrying transient failures.
    ///
    /// The endpoint follows the prompt: [`Prompt::Messages`] goes to chat
    /// completions, [`Prompt::Text`] to completions. Streams when
    /// `cfg.stream` is set. The per-attempt timeout covers the whole attempt,
    /// including reading the stream.
    ///
    /// Dropping the future (Ctrl-C) is safe: it owns everything it started,
    /// so the in-flight request is aborted and nothing is left running.
    pub async fn generate(
        &self,
        model: &str,
        prompt: &Prompt,
        params: &Map<String, Value>,
    ) -> Result<Completion, RequestError> {
        let url = match prompt {
            Prompt::Messages(_) => &self.endpoints.chat,
            Prompt::Text(_) => &self.endpoints.completions,
        };
        // Serialised once; every attempt sends the same bytes.
        let body = Bytes::from(Value::Object(self.request_body(model, prompt, params)).to_string());
        let max_attempts = self.cfg.max_retries.saturating_add(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = self.attempt(url, body.clone());
            let result = tokio::time::timeout(self.cfg.timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        ErrorKind::Timeout,
                        format!(
                            "no complete response within the {:?} per-attempt timeout",
                            self.cfg.timeout
                        ),
                    ))
                });
            let failure = match result {
                Ok(mut completion) => {
                    completion.attempts = attempts;
                    return Ok(completion);
                }
                Err(failure) => failure,
            };
            if !is_retryable(failure.kind) || attempts >= max_attempts {
                return Err(self.request_error(failure, attempts));
            }
            let delay = match failure.retry_after {
                Some(asked) => asked.min(self.cfg.retry_max),
                None => backoff(attempts - 1, self.cfg.retry_base, self.cfg.retry_max),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: send, check the status, read the body or stream.
    async fn attempt(&self, url: &str, body: Bytes) -> Result<Completion, Failure> {
        let accept = if self.cfg.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let sent = Instant::now();
        let mut resp = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transport(&e))?;
        if !resp.status().is_success() {
            return Err(status_failure(resp).await);
        }
        // Decide by what came back, not by what was asked: some servers
        // ignore `stream` and answer with one JSON body.
        let is_sse = is_event_stream(resp.headers());
        let (parsed, first_token, end) = if is_sse {
            let mut parser = SseParser::new();
            let mut state = StreamState::default();
            'read: while let Some(chunk) = resp.chunk().await.map_err(|e| Failure::transport(&e))? {
                for event in parser.push(&chunk) {
                    state.event(&event.data)?;
                    if state.done {
                        break 'read;
                    }
                }
            }
            if !state.done {
                for event in parser.finish() {
                    state.event(&event.data)?;
                }
            }
            let end = Instant::now();
            if state.done {
                // Errors here do not matter: the answer is complete.
                let drain = async { while let Ok(Some(_)) = resp.chunk().await {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
            }
            let first_token = state.first_token;
            (state.finish()?, first_token, end)
        } else {
            let bytes = resp.bytes().await.map_err(|e| Failure::transport(&e))?;
            (parse_body(&bytes)?, None, Instant::now())
        };
        let (text, reasoning, finish_reason, usage) = parsed.split();
        Ok(Completion {
            text,
            reasoning,
            finish_reason,
            usage,
            attempts: 1,
            latency_ms: ms(end.duration_since(sent)),
            ttft_ms: first_token.map(|t| ms(t.duration_since(sent))),
        })
    }

    /// The final error for the caller, with every secret scrubbed from the
    /// message in case the server echoed one ("Incorrect API key: sk-...")
    /// or a transport error named a URL with userinfo.
    fn request_error(&self, failure: Failure, attempts: u32) -> RequestError {
        RequestError {
            kind: failure.kind,
            status: failure.status,
            message: crate::redact::scrub(&failure.message),
            attempts,
        }
    }
}

/// Whether a response is an SSE stream (decided by what came back, not by
/// what was asked: some servers ignore `stream`).
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A non-2xx response as a failure: its class, the server's message, and
/// `Retry-After`.
async fn status_failure(resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = resp.bytes().await.unwrap_or_default();
    let message = error_message(&body)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
    Failure {
        kind: kind_for_status(status.as_u16()),
        status: Some(status.as_u16()),
        message,
        retry_after,
    }
}

/// A model as `/models` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    /// The id requests name.
    pub id: String,
    /// Longest prompt plus output the server takes, in tokens, when it says
    /// (vLLM's and SGLang's `max_model_len`).
    pub max_model_len: Option<u64>,
}

/// Models from a `/models` body: OpenAI's `data[].id`, or, failing that,
/// the Ollama-style `models[].model`/`name` that llama-server also sends.
fn parse_models(body: &[u8]) -> Result<Vec<ServedModel>, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        Failure::new(
            ErrorKind::Decode,
            format!("/models is not JSON ({e}): {}", truncate(text.trim(), 200)),
        )
    })?;
    let ids = |list: &Value, keys: &[&str]| -> Option<Vec<ServedModel>> {
        let list = list.as_array()?;
        Some(
            list.iter()
                .filter_map(|m| {
                    let id = keys.iter().find_map(|k| m.get(k)?.as_str())?;
                    Some(ServedModel {
                        id: id.to_owned(),
                        max_model_len: m.get("max_model_len").and_then(Value::as_u64),
                    })
                })
                .collect(),
        )
    };
    value
        .get("data")
        .and_then(|d| ids(d, &["id"]))
        .or_else(|| value.get("models").and_then(|m| ids(m, &["model", "name"])))
        .ok_or_else(|| Failure::new(ErrorKind::Decode, "/models has no `data` list".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_key() {
        let mut cfg = ClientConfig::new("http://h/v1");
        cfg.api_key = Some("sk-secret-123".into());
        let text = format!("{cfg:?}");
        assert!(!text.contains("sk-secret-123"), "{text}");
        assert!(text.contains("<redacted>"));
        let client = Client::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("sk-secret-123"));
    }

    #[test]
    fn defaults() {
        let cfg = ClientConfig::new("http://h");
        assert_eq!(cfg.api, ApiKind::Chat);
        assert_eq!(cfg.timeout, Duration::from_secs(600));
        assert_eq!((cfg.max_retries, cfg.stream), (5, false));
        assert_eq!(cfg.retry_base, Duration::from_millis(500));
        assert_eq!(cfg.retry_max, Duration::from_secs(30));
    }

    #[test]
    fn bad_key_and_bad_url_are_config_errors() {
        let mut cfg = ClientConfig::new("http://h");
        cfg.api_key = Some("bad\nkey".into());
        let err = Client::new(cfg).unwrap_err();
        assert_eq!(err, ConfigError::ApiKey);
        assert!(!err.to_string().contains("bad\nkey"));
        assert!(matches!(
            Client::new(ClientConfig::new("h:1")),
            Err(ConfigError::ApiUrl { .. })
        ));
    }

    #[test]
    fn request_body_merges_params_and_owns_stream_keys() {
        let mut cfg = ClientConfig::new("http://h");
        let params: Map<String, Value> = serde_json::from_str(
            r#"{"temperature":0,"max_tokens":16,"stop":["\n"],"stream":true,"stream_options":{"x":1},"model":"ignored"}"#,
        )
        .unwrap();
        let prompt = Prompt::Messages(vec![Message {
            role: "user".into(),
            content: "hi".into(),
        }]);
        let body = Client::new(cfg.clone())
            .unwrap()
            .request_body("m", &prompt, &params);
        assert_eq!(body["model"], "m");
        assert_eq!(body["max_tokens"], 16);
        assert_eq!(body["messages"][0]["content"], "hi");
        assert!(!body.contains_key("stream") && !body.contains_key("stream_options"));

        cfg.stream = true;
        let body = Client::new(cfg)
            .unwrap()
            .request_body("m", &Prompt::Text("p".into()), &params);
        assert_eq!(body["prompt"], "p");
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["stream_options"],
            serde_json::json!({"x":1,"include_usage":true})
        );
    }

    #[test]
    fn models_lists() {
        let openai = br#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b"}]}"#;
        let ids = |m: Vec<ServedModel>| m.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(parse_models(openai).unwrap()), ["a", "b"]);
        let native = br#"{"models":[{"name":"tiny","model":"tiny"}],"object":"list","data":[{"id":"tiny","meta":{}}]}"#;
        assert_eq!(ids(parse_models(native).unwrap()), ["tiny"]);
        let ollama = br#"{"models":[{"name":"llama3:8b"}]}"#;
        assert_eq!(ids(parse_models(ollama).unwrap()), ["llama3:8b"]);
        let vllm =
            br#"{"object":"list","data":[{"id":"q","object":"model","max_model_len":32768}]}"#;
        assert_eq!(
            parse_models(vllm).unwrap(),
            [ServedModel {
                id: "q".into(),
                max_model_len: Some(32768)
            }]
        );
        assert_eq!(parse_models(b"<html>").unwrap_err().kind, ErrorKind::Decode);
        assert_eq!(
            parse_models(br#"{"x":1}"#).unwrap_err().kind,
            ErrorKind::Decode
        );
    }
}
