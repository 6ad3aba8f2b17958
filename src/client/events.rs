//! What a timed streaming request observes of each SSE event: when it
//! arrived and what it carried. Written by [`super::timed`], kept in perf's
//! `requests.jsonl` records.

use serde::{Deserialize, Serialize};

/// What an SSE event carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Only `role` (or an empty delta): no generated token.
    #[default]
    Role,
    /// Reasoning text (`reasoning_content` / `reasoning`): generated tokens.
    Reasoning,
    /// Answer text (or tool-call deltas): generated tokens.
    Content,
    /// A usage-only chunk (`choices: []`).
    Usage,
    /// Anything else that carries no token (finish-only chunk, comments are not recorded).
    Empty,
}

impl EventKind {
    /// Whether the event carries generated tokens (TTFT counts the first such event).
    pub fn has_tokens(self) -> bool {
        matches!(self, EventKind::Reasoning | EventKind::Content)
    }
}

/// One SSE event of a streamed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Arrival, microseconds after the request was sent (time of the socket
    /// read that delivered the event's last byte).
    pub t_us: u64,
    /// What it carried.
    pub kind: EventKind,
    /// Tokens it carried when known (server continuous usage deltas); 0 when
    /// unknown, in which case stats assume one token per token-bearing event
    /// unless the request's total says otherwise.
    pub tokens: u32,
}
