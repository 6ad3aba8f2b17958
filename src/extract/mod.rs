//! Answer extractors: pull the answer out of a model response.
//!
//! Owns the building blocks (last `\boxed{}`, last `ANSWER:` line, last
//! "answer is", last number, choice letters) and numeric normalisation. Each
//! benchmark mode composes them into *named* extractors (see
//! [`crate::benchmarks::ModeInfo::extractors`]); every named extractor runs on
//! every response so the report can show how much the grading moves the score.
//! An extractor returns `None` when the response holds no answer it can find,
//! which the reports count apart from wrong answers.

pub mod evalscope;
pub mod lm_eval;
pub mod math_verify;

use std::sync::LazyLock;

use regex::Regex;

/// A number as people write it in answers: optional sign and `$`, thousands
/// commas, decimals. Kept permissive; [`normalize_number`] cleans it.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+").expect("valid regex")
});

/// `ANSWER:` markers, case-insensitive, as EvalScope/inspect prompts ask.
static ANSWER_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)answer\s*:").expect("valid regex"));

/// "answer is" phrases ("The answer is 18", "the final answer is").
static ANSWER_IS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)answer\s+is\b").expect("valid regex"));

/// A choice letter right after an `ANSWER:` marker, allowing markdown bold and
/// brackets: `ANSWER: B`, `**Answer:** (C)`, `Answer: [D].`
static ANSWER_LETTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:answer)\s*:\s*(?:\*\*|\*)?\s*[\(\[]?\s*([A-Z])(?:[\)\]\.\*,:;!\s]|$)")
        .expect("valid regex")
});

/// A standalone capital letter.
static LONE_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Z])\b").expect("valid regex"));

/// Content of the last `\boxed{...}` (brace-balanced), or of `\boxed x` up to
/// the next `$` when no brace follows (as Qwen-Math parsers do).
pub fn last_boxed(text: &str) -> Option<String> {
    let start = text.rfind("\\boxed")? + "\\boxed".len();
    let rest = &text[start..];
    let rest_trim = rest.trim_start();
    if let Some(inner) = rest_trim.strip_prefix('{') {
        let mut depth = 1usize;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(inner[..i].trim().to_string());
                    }
                }
                _ => {}
            }
        }
        None // unbalanced: the response was probably cut off
    } else {
        let end = rest.find('$').unwrap_or(rest.len());
        let v = rest[..end].trim();
        (!v.is_empty()).then(|| v.to_string())
    }
}

/// The rest of the line after the last `ANSWER:` marker (trimmed, non-empty).
pub fn last_answer_line(text: &str) -> Option<String> {
    let m = ANSWER_MARKER.find_iter(text).last()?;
    let rest = &text[m.end()..];
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The rest of the line after the last "answer is".
pub fn last_answer_is(text: &str) -> Option<String> {
    let m = ANSWER_IS.find_iter(text).last()?;
    let rest = &text[m.end()..];
    let line = rest.lines().next().unwrap_or("").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// First number in `text`, normalised (see [`normalize_number`]).
pub fn first_number(text: &str) -> Option<String> {
    NUMBER
        .find_iter(text)
        .find_map(|m| normalize_number(m.as_str()))
}

/// Last number in `text`, normalised.
pub fn last_number(text: &str) -> Option<String> {
    let matches: Vec<_> = NUMBER.find_iter(text).collect();
    matches
        .iter()
        .rev()
        .find_map(|m| normalize_number(m.as_str()))
}

/// Canonical form of a numeric answer: strips `$`, `,`, `%`, `**`, spaces,
/// a trailing `.`, and trailing decimal zeros (`18.00` -> `18`). Returns
/// `None` when what remains is not a number.
pub fn normalize_number(raw: &str) -> Option<String> {
    let mut s: String = raw
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | '%' | '*' | ' ' | '\u{a0}'))
        .collect();
    s = s.replace("\\!", "");
    while s.ends_with('.') {
        s.pop();
    }
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    let _: f64 = s.parse().ok()?;
    Some(s)
}

/// Numeric equality of two answers after [`normalize_number`], with a tiny
/// relative tolerance for float formatting (`0.1+0.2`); falls back to string
/// equality when either side is not a number.
pub fn numbers_equal(pred: &str, gold: &str) -> bool {
    match (normalize_number(pred), normalize_number(gold)) {
        (Some(p), Some(g)) => match (p.parse::<f64>(), g.parse::<f64>()) {
            (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            _ => p == g,
        },
        _ => pred.trim() == gold.trim(),
    }
}

/// Letters `A..` for `n` options.
pub fn letters(n: usize) -> Vec<char> {
    (0..n).map(|i| (b'A' + i as u8) as char).collect()
}

/// The letter after the last `ANSWER:` marker that is one of the first
/// `n_options` letters (markers naming an invalid letter are skipped, so an
/// echoed `ANSWER: [LETTER]` placeholder does not win).
pub fn last_answer_letter(text: &str, n_options: usize) -> Option<String> {
    let allowed = letters(n_options);
    ANSWER_LETTER
        .captures_iter(text)
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().chars().next()))
        .filter(|c| allowed.contains(c))
        .last()
        .map(String::from)
}

/// The last standalone capital letter that is a valid option (EvalScope's
/// fallback when no marker is found).
pub fn last_lone_letter(text: &str, n_options: usize) -> Option<String> {
    let allowed = letters(n_options);
    LONE_LETTER
        .captures_iter(text)
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().chars().next()))
        .filter(|c| allowed.contains(c))
        .last()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed() {
        assert_eq!(
            last_boxed(r"so \boxed{12} then \boxed{18}").as_deref(),
            Some("18")
        );
        assert_eq!(
            last_boxed(r"\boxed{\frac{1}{2}}").as_deref(),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed(r"$\boxed 7$").as_deref(), Some("7"));
        assert_eq!(last_boxed(r"\boxed{12"), None);
        assert_eq!(last_boxed("no box"), None);
    }

    #[test]
    fn answer_lines() {
        assert_eq!(
            last_answer_line("ANSWER: 3\nwait\nAnswer: 18 apples").as_deref(),
            Some("18 apples")
        );
        assert_eq!(last_answer_is("The answer is 18.").as_deref(), Some("18."));
        assert_eq!(last_answer_line("ANSWER:"), None);
    }

    #[test]
    fn numbers() {
        for (raw, want) in [
            ("$18.00", Some("18")),
            ("1,200", Some("1200")),
            ("**18**", Some("18")),
            ("-5", Some("-5")),
            ("50%", Some("50")),
            ("18.", Some("18")),
            ("0.50", Some("0.5")),
            ("abc", None),
        ] {
            assert_eq!(normalize_number(raw).as_deref(), want, "{raw}");
        }
        assert_eq!(
            last_number("I had 3 apples, then 1,234.50 dollars.").as_deref(),
            Some("1234.5")
        );
        assert_eq!(first_number("$18 per day, or 36").as_deref(), Some("18"));
        assert_eq!(last_number("-7 is the result").as_deref(), Some("-7"));
        assert!(numbers_equal("18.0", "18"));
        assert!(numbers_equal("$1,200", "1200"));
        assert!(!numbers_equal("12346", "12345"));
    }

    #[test]
    fn letters_after_marker() {
        assert_eq!(last_answer_letter("ANSWER: B", 4).as_deref(), Some("B"));
        assert_eq!(
            last_answer_letter("**Answer:** (C)", 4).as_deref(),
            Some("C")
        );
        // The echoed placeholder `[LETTER]` is not a valid option and is skipped.
        assert_eq!(
            last_answer_letter("format 'ANSWER: [LETTER]'... ANSWER: D", 4).as_deref(),
            Some("D")
        );
        // E is valid only with five options.
        assert_eq!(last_answer_letter("ANSWER: E", 4), None);
        assert_eq!(last_answer_letter("ANSWER: E", 5).as_deref(), Some("E"));
        // Prose after the marker is not a letter.
        assert_eq!(last_answer_letter("Answer: a chemical change", 4), None);
        assert_eq!(
            last_lone_letter("I think B, no, C is right", 3).as_deref(),
            Some("C")
        );
    }
}
