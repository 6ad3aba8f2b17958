//! Reading OpenAI-shaped response bodies: whole JSON bodies, streamed
//! chunks, and error bodies.
//!
//! Lenient where real servers differ (llama.cpp's `content: null` role chunk,
//! a usage-only last chunk with `choices: []`, `reasoning_content` vs
//! `reasoning`, `text` for completions) and strict where a difference means
//! the answer is missing (no choices, an `error` object).

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::{ErrorKind, Failure, Usage, split_think};

/// The longest server message kept in an error, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 500;

/// A response body or a streamed chunk; both share this shape.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    /// Non-stream chat.
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    /// Streamed chat.
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    /// Completions, stream or not.
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    /// vLLM (older), DeepSeek, llama.cpp.
    #[serde(borrow, default)]
    reasoning_content: Option<Text<'a>>,
    /// vLLM (newer), OpenRouter, Ollama.
    #[serde(borrow, default)]
    reasoning: Option<Text<'a>>,
}

impl<'a> Delta<'a> {
    /// Servers that send both reasoning fields send the same text twice.
    fn reasoning(&self) -> Option<&str> {
        self.reasoning_content
            .as_ref()
            .or(self.reasoning.as_ref())
            .map(|t| t.0.as_ref())
    }
}

/// A string field, borrowed from the input when it has no escapes (serde
/// does not borrow through `Option<Cow<str>>` by itself). Also accepts an
/// array of content parts (`[{"type":"text","text":"..."}]`), joining their
/// `text`s.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                #[derive(Deserialize)]
                struct Part {
                    #[serde(default)]
                    text: Option<String>,
                }
                let mut joined = String::new();
                while let Some(part) = seq.next_element::<Part>()? {
                    joined.push_str(part.text.as_deref().unwrap_or(""));
                }
                Ok(Text(Cow::Owned(joined)))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a successful response contained, before `<think>` splitting.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// `content` / `text`, raw.
    pub content: String,
    /// `reasoning_content` / `reasoning`.
    pub reasoning: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

impl Parsed {
    /// The visible answer and all reasoning: the reasoning field first, then
    /// any `<think>` blocks found in the content.
    pub fn split(self) -> (String, Option<String>, Option<String>, Option<Usage>) {
        let (text, think) = split_think(&self.content);
        let reasoning = match (self.reasoning.filter(|r| !r.is_empty()), think) {
            (Some(field), Some(think)) => Some(format!("{field}\n\n{think}")),
            (field, think) => field.or(think),
        };
        (
            text,
            reasoning,
            self.finish_reason,
            self.usage.map(complete_usage),
        )
    }
}

/// Fills `total_tokens` when a server leaves it out.
fn complete_usage(mut u: Usage) -> Usage {
    if u.total_tokens.is_none()
        && let (Some(p), Some(c)) = (u.prompt_tokens, u.completion_tokens)
    {
        u.total_tokens = Some(p + c);
    }
    u
}

/// The first choice: index 0, or the first listed if none says its index.
fn first_choice<'b, 'a>(choices: &'b [Choice<'a>]) -> Option<&'b Choice<'a>> {
    choices.iter().find(|c| c.index.unwrap_or(0) == 0)
}

/// Parses a whole (non-stream) 200 body.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Parsed, Failure> {
    let body: Body = serde_json::from_slice(bytes).map_err(|e| not_json(bytes, &e))?;
    if let Some(err) = body.error.as_ref().filter(|e| !e.is_null()) {
        return Err(Failure::new(ErrorKind::ErrorBody, describe_error(err)));
    }
    let choices = body.choices.unwrap_or_default();
    let Some(choice) = first_choice(&choices) else {
        return Err(Failure::new(
            ErrorKind::ErrorBody,
            "response has no choices".into(),
        ));
    };
    let (content, reasoning) = match (&choice.message, &choice.text) {
        (Some(m), _) => (m.content.as_ref(), m.reasoning()),
        (None, Some(text)) => (Some(text), None),
        (None, None) => {
            return Err(Failure::new(
                ErrorKind::Decode,
                "choice has neither `message` nor `text`".into(),
            ));
        }
    };
    Ok(Parsed {
        // `content: null` is what reasoning models return when the answer
        // never started (cut off while thinking): an empty answer.
        content: content.map(|t| t.0.as_ref()).unwrap_or("").to_owned(),
        reasoning: reasoning.map(str::to_owned),
        finish_reason: choice
            .finish_reason
            .as_ref()
            .map(|t| t.0.clone().into_owned()),
        usage: body.usage,
    })
}

/// Accumulates a streamed response, one SSE event at a time.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub parsed: Parsed,
    reasoning: String,
    /// `data: [DONE]` was seen.
    pub done: bool,
    /// Events seen, for the "ended early" message: zero means the server
    /// failed before streaming anything (llama-cpp-python does that when
    /// the prompt is too long for the context).
    events: usize,
    /// When the first content or reasoning text arrived.
    pub first_token: Option<Instant>,
}

impl StreamState {
    /// Applies one event's data.
    pub fn event(&mut self, data: &[u8]) -> Result<(), Failure> {
        self.events += 1;
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: Body = serde_json::from_slice(data).map_err(|e| not_json(data, &e))?;
        // vLLM reports errors raised mid-generation as a data event.
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            return Err(Failure::new(ErrorKind::ErrorBody, describe_error(err)));
        }
        if chunk.usage.is_some() {
            self.parsed.usage = chunk.usage;
        }
        // The usage-only last chunk has `choices: []`, which is fine here.
        let Some(choice) = chunk.choices.as_deref().and_then(first_choice) else {
            return Ok(());
        };
        let (content, reasoning) = match &choice.delta {
            Some(d) => (d.content.as_ref(), d.reasoning()),
            None => (choice.text.as_ref(), None),
        };
        let mut got_text = false;
        if let Some(content) = content.filter(|c| !c.0.is_empty()) {
            self.parsed.content.push_str(&content.0);
            got_text = true;
        }
        if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
            self.reasoning.push_str(reasoning);
            got_text = true;
        }
        if got_text && self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
        if let Some(reason) = &choice.finish_reason {
            self.parsed.finish_reason = Some(reason.0.clone().into_owned());
        }
        Ok(())
    }

    /// The stream is over: checks it was complete and returns what it held.
    pub fn finish(mut self) -> Result<Parsed, Failure> {
        if !self.done && self.parsed.finish_reason.is_none() {
            return Err(Failure::new(
                ErrorKind::Decode,
                format!(
                    "stream ended early: {} event(s), no finish_reason and no [DONE]",
                    self.events
                ),
            ));
        }
        if !self.reasoning.is_empty() {
            self.parsed.reasoning = Some(self.reasoning);
        }
        Ok(self.parsed)
    }
}

/// A Decode failure that quotes the start of what was received.
fn not_json(bytes: &[u8], err: &serde_json::Error) -> Failure {
    let text = String::from_utf8_lossy(bytes);
    Failure::new(
        ErrorKind::Decode,
        format!(
            "response is not the expected JSON ({err}): {}",
            truncate(text.trim(), 200)
        ),
    )
}

/// The human-readable part of an `error` value: `error.message`, or the
/// value itself when it is a string, or its JSON.
fn describe_error(err: &serde_json::Value) -> String {
    let text = match err {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("message").and_then(|m| m.as_str()) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => err.to_string(),
        },
        _ => err.to_string(),
    };
    truncate(&text, MAX_MESSAGE_CHARS)
}

/// The message of an error response body (any status): OpenAI's
/// `{"error":{"message":..}}`, `{"error":"..."}`, FastAPI's `{"detail":..}`,
/// a bare `{"message":..}`, or the body text itself. `None` for an empty
/// body.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["error", "detail", "message"] {
            if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
                return Some(describe_error(v));
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| truncate(text, MAX_MESSAGE_CHARS))
}

/// Cuts `s` to `max` characters, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Result<Parsed, Failure> {
        parse_body(s.as_bytes())
    }

    #[test]
    fn chat_body_with_usage() {
        let p = body(
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 42."},"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}},"timings":{}}"#,
        )
        .unwrap();
        assert_eq!(p.content, "The answer is 42.");
        assert_eq!(p.finish_reason.as_deref(), Some("stop"));
        assert_eq!(p.usage.unwrap().total_tokens, Some(18));
    }

    #[test]
    fn null_content_with_reasoning() {
        let p = body(
            r#"{"choices": [{"message": {"content": null, "reasoning_content": "hmm"}, "finish_reason": "length"}]}"#,
        )
        .unwrap();
        assert_eq!(
            (p.content.as_str(), p.reasoning.as_deref()),
            ("", Some("hmm"))
        );
        let p = body(r#"{"choices":[{"message":{"content":"a","reasoning":"r"}}]}"#).unwrap();
        assert_eq!(p.reasoning.as_deref(), Some("r"));
    }

    #[test]
    fn completions_body_and_escapes() {
        let p =
            body(r#"{"choices":[{"text":" line\n\"two\"","finish_reason":"length"}]}"#).unwrap();
        assert_eq!(p.content, " line\n\"two\"");
    }

    #[test]
    fn content_parts_are_joined() {
        let p = body(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"4"},{"type":"text","text":"2"}]}}]}"#,
        )
        .unwrap();
        assert_eq!(p.content, "42");
    }

    #[test]
    fn error_bodies_are_detected() {
        for (text, kind, msg) in [
            (
                r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
                ErrorKind::ErrorBody,
                "overloaded",
            ),
            (r#"{"error":"boom"}"#, ErrorKind::ErrorBody, "boom"),
            (r#"{"choices":null}"#, ErrorKind::ErrorBody, "no choices"),
            (r#"{"choices":[]}"#, ErrorKind::ErrorBody, "no choices"),
            (r#"{"id":"x"}"#, ErrorKind::ErrorBody, "no choices"),
            (
                "Internal Server Error",
                ErrorKind::Decode,
                "Internal Server Error",
            ),
            (r#"{"choices":[{"index":0}]}"#, ErrorKind::Decode, "neither"),
        ] {
            let f = body(text).unwrap_err();
            assert_eq!(f.kind, kind, "{text}");
            assert!(f.message.contains(msg), "{text}: {}", f.message);
        }
        // `"error": null` is not an error.
        assert!(body(r#"{"error":null,"choices":[{"text":"x"}]}"#).is_ok());
    }

    #[test]
    fn error_messages_of_error_statuses() {
        let native = br#"{"error":{"code":400,"message":"request (3600 tokens) exceeds the available context size (2048 tokens), try increasing it","type":"exceed_context_size_error"}}"#;
        assert!(
            error_message(native)
                .unwrap()
                .starts_with("request (3600 tokens) exceeds")
        );
        assert_eq!(
            error_message(br#"{"detail":"Not Found"}"#).unwrap(),
            "Not Found"
        );
        assert_eq!(
            error_message(b"Internal Server Error\n").unwrap(),
            "Internal Server Error"
        );
        assert_eq!(error_message(b""), None);
        let long = "x".repeat(2000);
        assert_eq!(
            error_message(long.as_bytes()).unwrap().chars().count(),
            MAX_MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn stream_llama_cpp_python_style() {
        let mut s = StreamState::default();
        for e in [
            r#"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}"#,
            r#"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "The"}, "finish_reason": null}]}"#,
            r#"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": " end"}, "finish_reason": null}]}"#,
            r#"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}"#,
            "[DONE]",
        ] {
            s.event(e.as_bytes()).unwrap();
        }
        assert!(s.first_token.is_some());
        let p = s.finish().unwrap();
        assert_eq!(p.content, "The end");
        assert_eq!(p.finish_reason.as_deref(), Some("length"));
        assert_eq!(p.usage, None);
    }

    #[test]
    fn stream_llama_server_style_with_usage_chunk() {
        let mut s = StreamState::default();
        for e in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"42"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":2,"total_tokens":15}}"#,
        ] {
            s.event(e.as_bytes()).unwrap();
        }
        // No [DONE], but a finish_reason: complete.
        let p = s.finish().unwrap();
        assert_eq!(
            (p.content.as_str(), p.reasoning.as_deref()),
            ("42", Some("think"))
        );
        assert_eq!(p.usage.unwrap().completion_tokens, Some(2));
    }

    #[test]
    fn stream_cut_short_is_an_error() {
        let mut s = StreamState::default();
        s.event(br#"{"choices":[{"delta":{"content":"4"}}]}"#)
            .unwrap();
        let f = s.finish().unwrap_err();
        assert_eq!(f.kind, ErrorKind::Decode);
        assert!(f.message.contains("ended early"));
    }

    #[test]
    fn stream_error_event() {
        let mut s = StreamState::default();
        let f = s
            .event(br#"{"error":{"message":"engine died"}}"#)
            .unwrap_err();
        assert_eq!(
            (f.kind, f.message.as_str()),
            (ErrorKind::ErrorBody, "engine died")
        );
    }

    #[test]
    fn split_combines_field_and_think_reasoning() {
        let p = Parsed {
            content: "<think>b</think> 42".into(),
            reasoning: Some("a".into()),
            ..Parsed::default()
        };
        let (text, reasoning, _, _) = p.split();
        assert_eq!(
            (text.as_str(), reasoning.as_deref()),
            ("42", Some("a\n\nb"))
        );
    }
}
