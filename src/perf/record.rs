//! One observation per request (`requests.jsonl`): the raw timeline that every
//! perf metric is derived from. Times are microseconds from a monotonic
//! clock (`Instant`), taken when bytes are read from the socket, relative to
//! the start of the level (`*_us` without suffix) or to the send time
//! (`EventRecord::t_us`).

use serde::{Deserialize, Serialize};

use crate::client::ErrorKind;
// The event types live with the client that times them (perf reads them,
// the client does not depend on perf); re-exported since every perf
// record holds them.
pub use crate::client::events::{EventKind, EventRecord};

/// The timeline and outcome of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Index of the level in the sweep.
    pub level: usize,
    /// Request number within the level (dispatch order).
    pub index: u64,
    /// Warmup requests are recorded but excluded from statistics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
    /// When the request was due (open-loop runs), µs from level start.
    pub scheduled_us: Option<u64>,
    /// When it was sent, µs from level start.
    pub sent_us: u64,
    /// Response headers received, µs after send.
    pub headers_us: Option<u64>,
    /// Every event with its arrival time (streaming, `--record events`
    /// only; empty otherwise).
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// How many events the response had, when `events` was left out
    /// (`--record requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_count: Option<u64>,
    /// First generated token (streaming), µs after send; with `events` it
    /// repeats the first token-bearing event's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_us: Option<u64>,
    /// Last generated token (streaming) or full body (non-streaming), µs after send.
    pub last_token_us: Option<u64>,
    /// Stream closed / body complete, µs after send.
    pub end_us: Option<u64>,
    /// Prompt tokens: server usage, else the prompt source's count.
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens the prompt source intended (exact-length prompts).
    pub expected_prompt_tokens: Option<u64>,
    /// Output tokens from the server's usage.
    pub completion_tokens: Option<u64>,
    /// Output tokens counted by a tokenizer on the whole text (fallback).
    pub client_completion_tokens: Option<u64>,
    /// Number of SSE events that carried tokens.
    pub token_events: u64,
    /// Bytes of generated text.
    pub output_chars: u64,
    /// `finish_reason` of the response.
    pub finish_reason: Option<String>,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Failure kind, when the request failed.
    pub error_kind: Option<ErrorKind>,
    /// Failure message (server text or transport error; never a key).
    pub error: Option<String>,
}

impl RequestRecord {
    /// Whether the request succeeded.
    pub fn ok(&self) -> bool {
        self.error_kind.is_none()
    }

    /// Output tokens: server usage, else client tokenizer, else token events.
    pub fn output_tokens(&self) -> u64 {
        self.completion_tokens
            .or(self.client_completion_tokens)
            .unwrap_or(self.token_events)
    }

    /// Time of the first token-bearing event, µs after send (from the
    /// events when recorded, else from `first_token_us`).
    pub fn first_token_us(&self) -> Option<u64> {
        self.events
            .iter()
            .find(|e| e.kind.has_tokens())
            .map(|e| e.t_us)
            .or(self.first_token_us)
    }

    /// Whether the response was streamed (it had events).
    pub fn streamed(&self) -> bool {
        !self.events.is_empty() || self.event_count.is_some_and(|n| n > 0)
    }

    /// Leave the events out, keeping what the per-request metrics need
    /// (`--record requests`).
    pub fn drop_events(&mut self) {
        if !self.events.is_empty() {
            self.event_count = Some(self.events.len() as u64);
            self.first_token_us = self.first_token_us();
            self.events = Vec::new();
        }
    }
}

/// How much of each request `requests.jsonl` keeps (`--record`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordLevel {
    /// One line per request with every SSE event's arrival time and kind
    /// (about 25 bytes per event).
    Events,
    /// One line per request: times (send, headers, first and last token,
    /// end), token counts, status and error; no events.
    #[default]
    Requests,
    /// No `requests.jsonl`: the summary and reports only.
    None,
}

impl RecordLevel {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordLevel::Events => "events",
            RecordLevel::Requests => "requests",
            RecordLevel::None => "none",
        }
    }
}
