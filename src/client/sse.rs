//! An incremental Server-Sent Events parser.
//!
//! Owns: turning the raw bytes of a `text/event-stream` body, in chunks cut
//! anywhere (mid-line, mid-UTF-8, between `\r` and `\n`), into events. Does
//! not own: what the event data means (JSON chunks, `[DONE]`); the client and
//! the perf tool decide that.
//!
//! Follows the WHATWG parsing rules: lines end in `\r\n`, `\n` or `\r`; lines
//! starting with `:` are comments (keep-alive pings); `data:` lines of one
//! event are joined with `\n`; one optional space after the colon is dropped;
//! an event is dispatched at a blank line and only if it had data. One
//! deliberate difference: [`SseParser::finish`] dispatches a last event that
//! the stream did not close with a blank line, because servers that end with
//! `data: [DONE]\n` and then close are common and the data is complete.
//!
//! Cost: each data line becomes a [`Bytes`] slice of the receive buffer (a
//! reference-count bump, no copy); only events with several `data:` lines
//! are copied. The buffer is reused once the events are dropped.

use bytes::{Buf, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if the server sent one (OpenAI servers do not).
    pub event: Option<Bytes>,
    /// The `data:` lines, joined with `\n`, without the trailing newline.
    pub data: Bytes,
}

impl Event {
    /// Whether this is OpenAI's end-of-stream marker, `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.as_ref() == b"[DONE]"
    }
}

/// The data lines seen so far for the event being built.
#[derive(Debug, Default)]
enum Data {
    /// No `data:` line yet.
    #[default]
    Empty,
    /// Exactly one line: a slice of the receive buffer, not copied.
    One(Bytes),
    /// Several lines, joined with `\n` (rare, so a copy is fine).
    Many(BytesMut),
}

/// Incremental SSE parser: feed it chunks with [`push`](Self::push) and
/// iterate the events that became complete.
///
/// ```
/// use bench::client::sse::SseParser;
/// let mut p = SseParser::new();
/// assert_eq!(p.push(b"data: {\"a\"").count(), 0);
/// let events: Vec<_> = p.push(b":1}\n\ndata: [DONE]\n\n").collect();
/// assert_eq!(events[0].data.as_ref(), b"{\"a\":1}");
/// assert!(events[1].is_done());
/// ```
#[derive(Debug, Default)]
pub struct SseParser {
    /// Received bytes not yet consumed as lines.
    buf: BytesMut,
    /// How far `buf` has been searched for a line end, so that a long line
    /// arriving in many small chunks is scanned once, not once per chunk.
    scanned: usize,
    /// The previous line ended in `\r`: a `\n` at the start of the next chunk
    /// belongs to it (a `\r\n` split across two chunks).
    skip_lf: bool,
    /// The end of the stream was reached: treat the tail as a last line.
    eof: bool,
    /// `event:` of the event being built.
    event: Option<Bytes>,
    /// `data:` of the event being built.
    data: Data,
}

impl SseParser {
    /// A parser with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `chunk` and returns an iterator over the events it completed.
    ///
    /// Events the iterator does not consume stay queued and come out of the
    /// next `push` or `finish`.
    pub fn push(&mut self, chunk: &[u8]) -> Events<'_> {
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            let chunk = chunk.strip_prefix(b"\n").unwrap_or(chunk);
            self.buf.extend_from_slice(chunk);
        } else {
            self.buf.extend_from_slice(chunk);
        }
        Events { parser: self }
    }

    /// Marks the end of the stream and returns the remaining events,
    /// including a last one that was not followed by a blank line.
    pub fn finish(&mut self) -> Events<'_> {
        self.eof = true;
        Events { parser: self }
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let Some(line) = self.next_line() else {
                // At the end of the stream an event still being built is
                // dispatched as if a blank line had followed.
                return if self.eof { self.dispatch() } else { None };
            };
            match line {
                Line::Blank => {
                    if let Some(event) = self.dispatch() {
                        return Some(event);
                    }
                }
                Line::Field(line) => self.field(line),
            }
        }
    }

    /// Splits the next line off the buffer, without its terminator.
    /// Comment lines are skipped here: they are neither data nor a blank
    /// line.
    fn next_line(&mut self) -> Option<Line> {
        loop {
            if self.skip_lf && !self.buf.is_empty() {
                self.skip_lf = false;
                if self.buf[0] == b'\n' {
                    self.buf.advance(1);
                }
            }
            let rest = &self.buf[self.scanned..];
            let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.scanned = self.buf.len();
                if self.eof && !self.buf.is_empty() {
                    // The stream ended inside a line: it is the last line.
                    self.scanned = 0;
                    let line = self.buf.split().freeze();
                    if line[0] == b':' {
                        continue;
                    }
                    return Some(Line::Field(line));
                }
                return None;
            };
            // `buf` always starts at the beginning of the current line.
            let end = self.scanned + i;
            self.scanned = 0;
            let terminator = self.buf[end];
            let line = if end == 0 {
                Some(Line::Blank)
            } else if self.buf[0] == b':' {
                // A comment (`: ping`): dropped without making a slice.
                self.buf.advance(end);
                None
            } else {
                Some(Line::Field(self.buf.split_to(end).freeze()))
            };
            self.buf.advance(1);
            if terminator == b'\r' {
                match self.buf.first() {
                    Some(b'\n') => self.buf.advance(1),
                    Some(_) => {}
                    // The `\n` of a `\r\n` may be in the next chunk.
                    None => self.skip_lf = true,
                }
            }
            if line.is_some() {
                return line;
            }
        }
    }

    /// Applies one `name: value` line to the event being built.
    fn field(&mut self, line: Bytes) {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let start = if line.get(colon + 1) == Some(&b' ') {
                    colon + 2
                } else {
                    colon + 1
                };
                (&line[..colon], line.slice(start..))
            }
            None => (&line[..], Bytes::new()),
        };
        match name {
            b"data" => {
                self.data = match std::mem::take(&mut self.data) {
                    Data::Empty => Data::One(value),
                    Data::One(first) => {
                        let mut joined = BytesMut::with_capacity(first.len() + 1 + value.len());
                        joined.extend_from_slice(&first);
                        joined.extend_from_slice(b"\n");
                        joined.extend_from_slice(&value);
                        Data::Many(joined)
                    }
                    Data::Many(mut joined) => {
                        joined.extend_from_slice(b"\n");
                        joined.extend_from_slice(&value);
                        Data::Many(joined)
                    }
                };
            }
            b"event" => self.event = Some(value),
            // `id` and `retry` only matter for reconnecting, which an
            // OpenAI client never does; unknown fields are ignored by spec.
            _ => {}
        }
    }

    /// Ends the event being built; returns it if it had any data.
    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let data = match std::mem::take(&mut self.data) {
            Data::Empty => return None,
            Data::One(data) => data,
            Data::Many(data) => data.freeze(),
        };
        Some(Event { event, data })
    }
}

/// A line, classified.
enum Line {
    /// An empty line: dispatches the event.
    Blank,
    /// A field line (`data: ...`, `event: ...`).
    Field(Bytes),
}

/// Iterator over the events completed so far; see [`SseParser::push`].
#[derive(Debug)]
pub struct Events<'a> {
    parser: &'a mut SseParser,
}

impl Iterator for Events<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.parser.next_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.data).into_owned())
            .collect()
    }

    /// Feeds `input` cut at every possible pair of places and checks the
    /// events are always the same.
    fn all_splits(input: &[u8]) -> Vec<String> {
        let mut whole = SseParser::new();
        let mut expected: Vec<Event> = whole.push(input).collect();
        expected.extend(whole.finish());
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut p = SseParser::new();
                let mut got: Vec<Event> = p.push(&input[..i]).collect();
                got.extend(p.push(&input[i..j]));
                got.extend(p.push(&input[j..]));
                got.extend(p.finish());
                assert_eq!(got, expected, "split at {i},{j}");
            }
        }
        data(&expected)
    }

    #[test]
    fn splits_anywhere_give_the_same_events() {
        let input = b"data: {\"a\": 1}\n\n: ping\n\ndata:{\"b\":2}\n\ndata: [DONE]\n\n";
        assert_eq!(all_splits(input), ["{\"a\": 1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn crlf_and_lone_cr_line_ends() {
        let input = b"data: one\r\n\r\ndata: two\r\rdata: three\n\n";
        assert_eq!(all_splits(input), ["one", "two", "three"]);
    }

    #[test]
    fn comments_are_skipped_and_do_not_end_an_event() {
        let input = b": ping - 2026-11-29 04:29:42\ndata: x\n: inner\ndata: y\n\n";
        assert_eq!(all_splits(input), ["x\ny"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let input = b"data: {\ndata:  \"k\": 1\ndata: }\n\n";
        // Only one space after the colon is dropped.
        assert_eq!(all_splits(input), ["{\n \"k\": 1\n}"]);
    }

    #[test]
    fn done_marker_and_event_field() {
        let mut p = SseParser::new();
        let events: Vec<Event> = p
            .push(b"event: error\ndata: {}\n\ndata: [DONE]\n\n")
            .collect();
        assert_eq!(events[0].event.as_deref(), Some(&b"error"[..]));
        assert!(!events[0].is_done());
        assert!(events[1].is_done());
        assert_eq!(events[1].event, None);
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert!(all_splits(b"\n\n\r\n: c\n\nevent: x\n\n").is_empty());
    }

    #[test]
    fn unterminated_last_event_comes_out_of_finish() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: a\n\ndata: [DONE]").count(), 1);
        let rest: Vec<Event> = p.finish().collect();
        assert_eq!(rest.len(), 1);
        assert!(rest[0].is_done());
        assert!(p.finish().next().is_none());
    }

    #[test]
    fn field_without_colon_and_without_space() {
        // `data` alone is a data line with an empty value.
        assert_eq!(all_splits(b"data\ndata:x\n\n"), ["\nx"]);
    }

    #[test]
    fn buffer_is_reused_across_many_events() {
        let mut p = SseParser::new();
        let chunk = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
        for _ in 0..10_000 {
            let n = p.push(chunk).count();
            assert_eq!(n, 1);
        }
        // Consumed events leave nothing behind.
        assert!(p.buf.is_empty());
        assert!(p.buf.capacity() < 64 * chunk.len());
    }
}
