//! Property tests (proptest) on the parsers that take input from outside:
//! the SSE parser, every extractor of every benchmark mode, and the journal
//! reader. Each runs a modest number of generated cases so the module stays
//! well under a minute in a debug build; a failure prints the shrunk input.
//!
//! The perf hot path's own scanner and classification are checked against
//! the general parser and the full parse by unit tests beside them
//! (`src/client/timed.rs`), since they are private.

use std::path::Path;

use bench::benchmarks::{Sample, registry};
use bench::client::sse::SseParser;
use bench::record::{SampleRecord, read_journal_file};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- SSE ----

/// A streamed chunk as OpenAI-compatible servers send them: chat deltas
/// (role, content, reasoning), completions text, a finish chunk, or the
/// usage chunk.
fn chunk() -> impl Strategy<Value = Value> {
    let text = prop_oneof!["[a-z ]{0,12}", "\\PC{0,8}", "[\"\\\\\\n\\t{}:]{0,6}"];
    (
        0..5u8,
        text,
        prop::option::of(prop::sample::select(vec!["stop", "length"])),
    )
        .prop_map(|(kind, text, finish)| match kind {
            0 => json!({"id": "c1", "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                     "logprobs": null, "finish_reason": null}]}),
            1 => json!({"id": "c1", "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {"content": text},
                                     "finish_reason": finish}]}),
            2 => json!({"id": "c1", "choices": [{"index": 0,
                        "delta": {"reasoning_content": text}, "finish_reason": null}]}),
            3 => json!({"id": "t1", "object": "text_completion",
                        "choices": [{"index": 0, "text": text, "finish_reason": finish}]}),
            _ => json!({"id": "c1", "choices": [],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}),
        })
}

/// A whole stream and the data of the events it holds: chunks written
/// compact or pretty-printed (several `data:` lines), with or without the
/// space after `data:`, `event:`/`id:` fields, `: ping` comments, one kind of
/// line end throughout (`\n`, `\r\n`, `\r`), and `[DONE]` closed by a blank
/// line, by a line end only, or by the end of the stream.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    let event = (chunk(), any::<bool>(), any::<bool>(), 0..4u8);
    (
        prop::collection::vec(event, 0..6),
        prop::sample::select(vec!["\n", "\r\n", "\r"]),
        prop::sample::select(vec![
            "data: [DONE]\n\n",
            "data: [DONE]\n",
            "data: [DONE]",
            "",
        ]),
    )
        .prop_map(|(events, eol, end)| {
            let mut s = String::new();
            let mut want = Vec::new();
            for (value, pretty, tight, extra) in events {
                let json = if pretty {
                    serde_json::to_string_pretty(&value).unwrap()
                } else {
                    value.to_string()
                };
                match extra {
                    0 => s.push_str(&format!(": ping - 2026-12-02 13:00:00{eol}")),
                    1 => s.push_str(&format!("event: message{eol}id: 4{eol}")),
                    _ => {}
                }
                let mut data = Vec::new();
                for line in json.split('\n') {
                    s.push_str(if tight { "data:" } else { "data: " });
                    s.push_str(line);
                    s.push_str(eol);
                    // One space after the colon is dropped: without the
                    // written one, an indented line loses one of its own.
                    data.push(if tight {
                        line.strip_prefix(' ').unwrap_or(line)
                    } else {
                        line
                    });
                }
                s.push_str(eol);
                want.push(data.join("\n"));
            }
            if !end.is_empty() {
                want.push("[DONE]".into());
            }
            s.push_str(&end.replace('\n', eol));
            (s.into_bytes(), want)
        })
}

/// The data of every event, `input` fed in pieces cut at `cuts` (sorted
/// byte offsets), then `finish`.
fn events(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    let mut prev = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        out.extend(p.push(&input[prev..cut]).map(|e| e.data.to_vec()));
        prev = cut;
    }
    out.extend(p.finish().map(|e| e.data.to_vec()));
    out
}

fn sorted_cuts(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    at.sort_unstable();
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Real streams give their chunks back, and the same events whether the
    /// stream comes whole, cut at any single byte boundary, or cut in many
    /// places.
    #[test]
    fn sse_events_do_not_depend_on_how_the_stream_is_cut(
        (input, want) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
    ) {
        let whole = events(&input, &[]);
        let data: Vec<String> = whole.iter().map(|d| String::from_utf8(d.clone()).unwrap()).collect();
        prop_assert_eq!(&data, &want);
        for cut in 0..=input.len() {
            prop_assert_eq!(&events(&input, &[cut]), &whole, "cut at {}", cut);
        }
        prop_assert_eq!(&events(&input, &sorted_cuts(input.len(), &cuts)), &whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes: no panic, the same events however they are cut, and
    /// no event data holds a `\r` (it always ends a line).
    #[test]
    fn sse_parser_takes_any_bytes(
        input in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(
                prop::sample::select(vec![
                    &b"data:"[..], b"data: ", b"data", b"event: x", b":", b"\n", b"\r", b"\r\n",
                    b" ", b"x", b"[DONE]", b"\xff", b"\xe2\x82",
                ]),
                0..40,
            )
            .prop_map(|v| v.concat()),
        ],
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = events(&input, &[]);
        prop_assert!(whole.iter().all(|d| !d.contains(&b'\r')), "{:?}", whole);
        prop_assert_eq!(events(&input, &sorted_cuts(input.len(), &cuts)), whole);
    }
}

// --------------------------------------------------------- extractors ----

/// Responses that stress extractors: arbitrary text, and soups of the
/// markers, numbers and LaTeX they look for (unbalanced `\boxed{`, huge
/// numbers, other scripts' digits, control characters).
fn response() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "\\boxed{",
        "\\boxed ",
        "{",
        "}",
        "$",
        "ANSWER:",
        "Answer: ",
        "answer is ",
        "The answer is ",
        "#### ",
        "**",
        "(A)",
        "[B]",
        "C",
        "D.",
        "E",
        "-",
        ".",
        ",",
        "0",
        "1",
        "18",
        "1,234",
        "99999999999999999999999999999999999999",
        "1e999",
        "%",
        "\n",
        "\r\n",
        " ",
        "\t",
        "\u{a0}",
        "\u{1c}",
        "\u{0}",
        "١٢",
        "６",
        "½",
        "²",
        "√",
        "π",
        "∞",
        "é",
        "\\frac{1}{2}",
        "\\dfrac",
        "\\sqrt",
        "\\sqrt2",
        "\\!",
        "\\left(",
        "\\right)",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "&",
        "\\\\",
        "\\text{",
        "x",
        "=",
        "/",
        "^",
        "_",
        "(",
        ")",
        "[",
        "]",
        "<|im_end|>",
        "</think>",
        "three",
        "hundred",
    ]);
    prop_oneof![
        3 => prop::collection::vec(piece, 0..60).prop_map(|v| v.concat()),
        2 => "\\PC{0,120}",
        1 => any::<String>(),
    ]
}

/// Text nested or repeated far beyond what a model writes.
fn extreme() -> impl Strategy<Value = String> {
    (0..5u8, 1..3000usize).prop_map(|(kind, n)| match kind {
        0 => format!("\\boxed{{{}1{}", "{".repeat(n), "}".repeat(n / 2)),
        1 => format!("{}1{}", "\\boxed{".repeat(n), "}".repeat(n)),
        2 => "9".repeat(n * 10),
        3 => format!("ANSWER: {}", "(".repeat(n)),
        _ => "\\frac{".repeat(n),
    })
}

/// Every mode of every benchmark on `response`: `grade` runs each named
/// extractor and the scorer on what it extracted.
fn grade_everywhere(response: &str, gold: &str, options: usize) -> usize {
    let mut graded = 0;
    for b in registry().iter() {
        for mode in &b.recipes {
            let sample = Sample {
                subset: "s".into(),
                split: "test".into(),
                index: 0,
                id: None,
                question: "Q?".into(),
                choices: (0..options).map(|i| format!("option {i}")).collect(),
                target: gold.into(),
                reference: Some(format!("steps\n#### {gold}")),
                reasoning: Some("steps".into()),
                metadata: Default::default(),
            };
            let grades = mode.grade(&sample, response);
            assert_eq!(grades.len(), mode.extractors.len());
            graded += grades.len();
        }
    }
    graded
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No extractor or scorer panics on any response, whatever the gold
    /// answer and the number of options (journals can hold more than the
    /// 26 a dataset row may have).
    #[test]
    fn extractors_take_any_response(
        response in response(),
        gold in prop_oneof![Just("18".to_string()), Just("B".to_string()), response()],
        options in 0..40usize,
    ) {
        prop_assert!(grade_everywhere(&response, &gold, options) > 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Nor on deep nesting and huge numbers.
    #[test]
    fn extractors_take_extreme_nesting_and_huge_numbers(response in extreme()) {
        prop_assert!(grade_everywhere(&response, "18", 4) > 0);
    }
}

// ------------------------------------------------------ journal reader ----

/// Valid journal lines (the fixture run's gsm8k journal) and their records.
fn fixture_lines() -> Vec<(String, SampleRecord)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/eval-a/samples/gsm8k.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| (l.to_string(), serde_json::from_str(l).unwrap()))
        .collect()
}

/// One piece of a journal file: a valid line, a valid line cut short (a
/// torn write), or garbage (arbitrary bytes, possibly not UTF-8).
#[derive(Debug, Clone)]
enum Piece {
    Line(usize),
    Torn(usize, prop::sample::Index),
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => any::<usize>().prop_map(Piece::Line),
        1 => (any::<usize>(), any::<prop::sample::Index>()).prop_map(|(i, c)| Piece::Torn(i, c)),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Garbage),
    ]
}

fn read(bytes: &[u8]) -> std::io::Result<Vec<SampleRecord>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gsm8k.jsonl");
    std::fs::write(&path, bytes).unwrap();
    read_journal_file(&path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes: the reader returns (records or an error), never
    /// panics, and invents no record.
    #[test]
    fn journal_reader_fuzz_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(records) = read(&bytes) {
            prop_assert!(records.len() <= bytes.iter().filter(|b| **b == b'\n').count() + 1);
        }
    }

    /// Valid lines mixed with torn lines and garbage, `\n` or `\r\n` line
    /// ends, with or without a final newline: no panic, and every record
    /// returned is one of the valid lines written.
    #[test]
    fn journal_reader_fuzz_mixed_lines(
        pieces in prop::collection::vec(piece(), 0..20),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let lines = fixture_lines();
        let mut bytes = Vec::new();
        let mut written = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            match p {
                Piece::Line(n) => {
                    let (text, rec) = &lines[n % lines.len()];
                    bytes.extend_from_slice(text.as_bytes());
                    written.push(rec.clone());
                }
                Piece::Torn(n, cut) => {
                    let text = lines[n % lines.len()].0.as_bytes();
                    // Never the whole line: that would be a valid one.
                    bytes.extend_from_slice(&text[..cut.index(text.len())]);
                }
                Piece::Garbage(g) => bytes.extend(g.iter().filter(|b| **b != b'\n')),
            }
        }
        if final_newline {
            bytes.push(b'\n');
        }
        if let Ok(records) = read(&bytes) {
            for r in &records {
                prop_assert!(written.contains(r), "invented record {:?}", r.key());
            }
        }
    }
}

/// A journal built from `pieces`, and for each piece its line number and
/// whether it is a bad (non-blank, unreadable) line.
fn journal_bytes(pieces: &[Piece], crlf: bool, final_newline: bool) -> (Vec<u8>, Vec<usize>) {
    let lines = fixture_lines();
    let mut bytes = Vec::new();
    let mut bad = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        let content: Vec<u8> = match p {
            Piece::Line(n) => lines[n % lines.len()].0.as_bytes().to_vec(),
            Piece::Torn(n, cut) => {
                let text = lines[n % lines.len()].0.as_bytes();
                text[..cut.index(text.len())].to_vec()
            }
            Piece::Garbage(g) => g.iter().copied().filter(|b| *b != b'\n').collect(),
        };
        let blank = content.iter().all(u8::is_ascii_whitespace);
        if !matches!(p, Piece::Line(_)) && !blank {
            bad.push(i + 1);
        }
        bytes.extend_from_slice(&content);
    }
    if final_newline {
        bytes.push(b'\n');
    }
    (bytes, bad)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every unreadable line is reported with its own line number, and
    /// every good line around it is still read (issue 9: one bad line used to
    /// make the whole journal unreadable, and any bad line was dropped
    /// without a word).
    #[test]
    fn journal_reader_fuzz_reports_each_bad_line_and_reads_the_rest(
        pieces in prop::collection::vec(piece(), 0..20),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let lines = fixture_lines();
        let (bytes, bad) = journal_bytes(&pieces, crlf, final_newline);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gsm8k.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let j = bench::record::read_journal_checked(&path).unwrap();
        let skipped: Vec<usize> = j.skipped.iter().map(|s| s.line).collect();
        prop_assert_eq!(&skipped, &bad);
        let want: std::collections::BTreeSet<_> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Line(n) => Some(lines[n % lines.len()].1.key()),
                _ => None,
            })
            .collect();
        let got: std::collections::BTreeSet<_> = j.records.iter().map(|r| r.key()).collect();
        prop_assert_eq!(got, want);
    }

    /// After `repair_tail`, a record appended to any journal is read back:
    /// a torn last line can no longer swallow it.
    #[test]
    fn journal_reader_fuzz_append_after_repair_is_never_lost(
        pieces in prop::collection::vec(piece(), 0..12),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
        extra in any::<usize>(),
    ) {
        let lines = fixture_lines();
        let (bytes, _) = journal_bytes(&pieces, crlf, final_newline);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gsm8k.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        bench::record::repair_tail(&path).unwrap();
        let (line, rec) = &lines[extra % lines.len()];
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
        drop(f);
        let j = bench::record::read_journal_checked(&path).unwrap();
        prop_assert!(j.records.iter().any(|r| r == rec), "appended record lost");
        prop_assert!(
            j.skipped.iter().all(|s| !s.reason.contains("torn")),
            "a torn line is left after repair: {:?}",
            j.skipped
        );
    }
}

/// The reader's contract on a clean file, which fuzzing must not hide: one
/// record per item, the last line for an item winning.
#[test]
fn journal_reader_fuzz_clean_file_baseline() {
    let lines = fixture_lines();
    let mut text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    // The first line again, as a retried item would be journaled.
    text.push_str(&lines[0].0);
    text.push('\n');
    let records = read(text.as_bytes()).unwrap();
    let keys: std::collections::BTreeSet<_> = lines.iter().map(|(_, r)| r.key()).collect();
    assert_eq!(records.len(), keys.len());
    for (_, r) in &lines {
        assert!(records.contains(r), "{:?} missing", r.key());
    }
}
