//! Answer extractors: pull the answer out of a model response.
//!
//! Owns the building blocks (last `\boxed{}`, last `ANSWER:` line, last
//! "answer is", last number, choice letters) and numeric normalisation. Each
//! recipe composes them into *named* extractors (see
//! [`crate::benchmarks::Recipe::extractors`]); every named extractor runs on
//! every response so the report can show how much the grading moves the score.
//! An extractor returns `None` when the response holds no answer it can find,
//! which the reports count apart from wrong answers.

pub mod evalscope;
pub mod latex_eq;
pub mod lm_eval;
pub mod math_verify;
pub mod minerva;

use std::sync::LazyLock;

use regex::Regex;

/// A number as people write it in answers: optional sign and `$`, thousands
/// commas, decimals. Every match normalises ([`normalize_number`] returns
/// `Some`; a property test checks it), which is why:
///
/// - digits are ASCII (`[0-9]`, not the regex crate's Unicode `\d`): other
///   scripts' digits do not parse as numbers, so such a match would be
///   dropped and an earlier number taken instead;
/// - the only gap allowed is one space (or no-break space) right after a
///   `$` (`$ 18`), never before the digits in general: a line break there
///   used to be swallowed into the match, which then failed to parse, so a
///   number starting a line was skipped;
/// - the minus sign must touch the number, so the `- 5` of `10 - 5` is `5`.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?(?:\$[ \u{a0}]?)?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|-?\.[0-9]+")
        .expect("valid regex")
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
/// the next `$` (as Qwen-Math parsers do) or the end of the line when no
/// brace follows.
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
        // The bare form ends at the next `$` or at the end of the line, so a
        // `\boxed` mentioned in prose does not take the rest of the response.
        let end = rest.find(['$', '\n', '\r']).unwrap_or(rest.len());
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
    if let Some(dot) = s.find('.') {
        // Trailing decimal zeros go, the integer part stays (`.0` is `0`,
        // not an empty string).
        let keep = s.trim_end_matches('0').len().max(dot + 1);
        s.truncate(keep);
        if s.ends_with('.') {
            s.pop();
        }
        // `.5` -> `0.5`, `-.0` -> `-0` (then `0` below).
        if s.is_empty() || s == "-" || s.starts_with('.') || s.starts_with("-.") {
            let at = usize::from(s.starts_with('-'));
            s.insert(at, '0');
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
            // Numbers too large for an f64 parse as infinity, and
            // `inf - inf` is NaN: those compare as written.
            (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() => {
                (a - b).abs() <= 1e-9 * b.abs().max(1.0)
            }
            _ => p == g,
        },
        _ => pred.trim() == gold.trim(),
    }
}

/// Letters `A..` for `n` options, at most `A..=Z` (datasets are checked for
/// at most 26 options; a larger `n` gets the 26 letters, not a panic).
pub fn letters(n: usize) -> Vec<char> {
    ('A'..='Z').take(n).collect()
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
    fn number_at_line_start_is_extracted() {
        // The issue's example: the number after the fence starts a line; the
        // old pattern swallowed the `\n` before it, the match failed to
        // normalise and the earlier 100 was taken.
        let response = "There are 100 students.\n```\n60% of the students enrolled.";
        assert_eq!(last_number(response).as_deref(), Some("60"));
        assert_eq!(first_number("\n60 first").as_deref(), Some("60"));
        assert_eq!(last_number("a\t7 then\r\n8").as_deref(), Some("8"));
        // `$ 18` with a space is still one number.
        assert_eq!(last_number("costs $ 18 in all").as_deref(), Some("18"));
        assert_eq!(last_number("costs $\u{a0}18").as_deref(), Some("18"));
    }

    #[test]
    fn subtraction_is_not_a_negative_number() {
        // `\s?` also sat between the minus and the digits: `10 - 5` ended in
        // the number `-5`.
        assert_eq!(last_number("It takes 3 - 5 days").as_deref(), Some("5"));
        assert_eq!(last_number("the result is -5").as_deref(), Some("-5"));
        assert_eq!(last_number("owes -$5").as_deref(), Some("-5"));
    }

    #[test]
    fn non_ascii_digits_do_not_hide_a_number() {
        // Unicode `\d` matched `١٢` (Arabic-Indic), which does not parse, so
        // the ASCII number glued to it was lost and an earlier one taken.
        assert_eq!(last_number("7 then 12١٢").as_deref(), Some("12"));
        assert_eq!(last_number("only ١٢"), None);
    }

    #[test]
    fn fraction_without_integer_part_normalises() {
        // `.0` lost all its digits (`""`), so the match was dropped.
        assert_eq!(last_number("5 or .0").as_deref(), Some("0"));
        assert_eq!(normalize_number("-.0").as_deref(), Some("0"));
        assert_eq!(normalize_number(".50").as_deref(), Some("0.5"));
        assert_eq!(normalize_number("-.25").as_deref(), Some("-0.25"));
        assert_eq!(normalize_number("."), None);
        assert_eq!(normalize_number("-"), None);
    }

    #[test]
    fn huge_equal_numbers_compare_equal() {
        // Past f64's range both sides parse as infinity, and `inf - inf` is
        // NaN, so equal answers were wrong.
        let huge = "9".repeat(400);
        assert!(numbers_equal(&huge, &huge));
        assert!(!numbers_equal(&huge, &format!("{huge}1")));
    }

    #[test]
    fn bare_boxed_stops_at_line_end() {
        // Without a brace the bare form ran to the next `$` across lines,
        // so the chain read the first number of a later paragraph.
        assert_eq!(
            last_boxed("write \\boxed\nthen 3 apples, $5").as_deref(),
            None
        );
        assert_eq!(last_boxed("\\boxed 7\nnext 9").as_deref(), Some("7"));
    }

    #[test]
    fn letters_cap_at_z() {
        // `b'A' + i as u8` overflowed (a panic in debug builds) past 190 options.
        assert_eq!(letters(300).len(), 26);
        assert_eq!(last_answer_letter("ANSWER: Z", 1000).as_deref(), Some("Z"));
        assert_eq!(last_lone_letter("so B", 1000).as_deref(), Some("B"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Every match of the number pattern normalises (to a form without
        /// whitespace that normalises to itself), in text made of the
        /// characters numbers are written with, line breaks and other
        /// scripts' digits included.
        #[test]
        fn every_number_match_normalises(text in r"[0-9,.$ \u{a0}\n\r\t%*a-z\-١٢６]{0,40}") {
            for m in NUMBER.find_iter(&text) {
                let n = normalize_number(m.as_str());
                proptest::prop_assert!(n.is_some(), "{:?} in {:?} does not normalise", m.as_str(), text);
                let n = n.unwrap();
                proptest::prop_assert!(!n.chars().any(char::is_whitespace), "{:?}", n);
                proptest::prop_assert_eq!(normalize_number(&n), Some(n.clone()));
            }
        }

        /// The same on arbitrary text.
        #[test]
        fn every_number_match_normalises_in_any_text(text in "\\PC{0,60}") {
            for m in NUMBER.find_iter(&text) {
                proptest::prop_assert!(normalize_number(m.as_str()).is_some(), "{:?}", m.as_str());
            }
        }
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
