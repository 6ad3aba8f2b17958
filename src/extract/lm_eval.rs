//! lm-evaluation-harness's answer filters and `exact_match`, reproduced with
//! their quirks (see `research/eval-harnesses.md` §2.1, §2.2, §6):
//!
//! - the `regex` filter runs `re.findall`, picks `matches[group_select]`
//!   (0 = first, -1 = last), takes the first non-empty group of a tuple
//!   match, strips it, and falls back to `"[invalid]"`;
//! - `exact_match` applies each of `regexes_to_ignore` with `re.sub` to
//!   *both* prediction and reference, in order, then lowercases
//!   (`ignore_case`) and deletes `string.punctuation` (`ignore_punctuation`).
//!
//! Python and the `regex` crate agree on these patterns (leftmost-first,
//! greedy, `.` not matching `\n`) except for `$`: Python's also matches
//! just before a final `\n` (`re.sub(r"\.$", "", "18.\n")` is `"18\n"`),
//! the crate's only at the very end. [`PyRegex`] emulates Python there.

use regex::Regex;

/// lm-eval's fallback when a regex filter finds nothing.
pub const INVALID: &str = "[invalid]";

/// Python's `str.strip()` with no argument, which lm-eval's filters call
/// (`regex`, `remove_whitespace`): Unicode White_Space plus the separators
/// U+001C..U+001F, which Python also counts as whitespace and Rust's
/// `trim` keeps.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Which match a regex filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSelect {
    /// `group_select: 0` (the default).
    First,
    /// `group_select: -1`.
    Last,
}

/// `RegexFilter.apply` on one response: `None` where lm-eval would return
/// [`INVALID`].
pub fn regex_filter(re: &Regex, response: &str, select: GroupSelect) -> Option<String> {
    let matches: Vec<String> = re
        .captures_iter(response)
        .map(|c| {
            if c.len() == 1 {
                // No groups: findall returns the whole match.
                c.get(0).map_or("", |m| m.as_str()).to_string()
            } else {
                // One group: the group (possibly empty); several: the tuple, of
                // which lm-eval keeps the first non-empty element.
                (1..c.len())
                    .filter_map(|i| c.get(i).map(|m| m.as_str()))
                    .find(|s| !s.is_empty() || c.len() == 2)
                    .unwrap_or("")
                    .to_string()
            }
        })
        .collect();
    let picked = match select {
        GroupSelect::First => matches.first(),
        GroupSelect::Last => matches.last(),
    }?;
    if picked.is_empty() && re.captures_len() > 2 {
        // A tuple with every group empty: lm-eval falls back.
        return None;
    }
    Some(py_strip(picked).to_string())
}

/// A pattern used with Python's `re.sub`, with Python's meaning of a final
/// `$` (end of text, or before a newline that ends the text).
#[derive(Debug, Clone)]
pub struct PyRegex {
    re: Regex,
    /// The pattern ends with an unescaped `$`.
    ends_with_dollar: bool,
}

impl PyRegex {
    /// Compile `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let ends_with_dollar = pattern.ends_with('$') && !pattern.ends_with("\\$");
        Ok(Self {
            re: Regex::new(pattern)?,
            ends_with_dollar,
        })
    }

    /// `re.sub(pattern, "", text)`.
    pub fn remove(&self, text: &str) -> String {
        match text.strip_suffix('\n') {
            // Python's `$` can match before this last newline, ours cannot:
            // substitute on the text without it, then put it back. Every other
            // match position is the same either way.
            Some(body) if self.ends_with_dollar => {
                let mut out = self.re.replace_all(body, "").into_owned();
                out.push('\n');
                out
            }
            _ => self.re.replace_all(text, "").into_owned(),
        }
    }
}

/// Options of lm-eval's `exact_match` metric.
#[derive(Debug, Clone, Default)]
pub struct ExactMatch {
    /// Applied with `re.sub(r, "", x)` to both sides, in order.
    pub regexes_to_ignore: Vec<PyRegex>,
    /// Lowercase both sides.
    pub ignore_case: bool,
    /// Delete ASCII punctuation (`string.punctuation`) from both sides.
    pub ignore_punctuation: bool,
}

impl ExactMatch {
    /// Normalise one side.
    pub fn normalize(&self, s: &str) -> String {
        let mut s = s.to_string();
        for re in &self.regexes_to_ignore {
            s = re.remove(&s);
        }
        if self.ignore_case {
            s = s.to_lowercase();
        }
        if self.ignore_punctuation {
            s.retain(|c| !c.is_ascii_punctuation());
        }
        s
    }

    /// Whether prediction and reference are equal after normalisation.
    pub fn matches(&self, pred: &str, reference: &str) -> bool {
        self.normalize(pred) == self.normalize(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap()
    }

    #[test]
    fn strict_and_flexible_gsm8k() {
        let strict = re(r"#### (\-?[0-9\.\,]+)");
        let flex = re(r"(-?[$0-9.,]{2,})|(-?[0-9]+)");
        let r = "She sells 16 - 3 - 4 = 9 eggs.\n#### 18\n#### 20";
        assert_eq!(
            regex_filter(&strict, r, GroupSelect::First).as_deref(),
            Some("18")
        );
        assert_eq!(
            regex_filter(&flex, r, GroupSelect::Last).as_deref(),
            Some("20")
        );
        assert_eq!(
            regex_filter(&strict, "The answer is 18.", GroupSelect::First),
            None
        );
        // Flexible keeps `$18.00` with its `$`; the second alternative catches single digits.
        assert_eq!(
            regex_filter(&flex, "costs $18.00", GroupSelect::Last).as_deref(),
            Some("$18.00")
        );
        assert_eq!(
            regex_filter(&flex, "it is 7", GroupSelect::Last).as_deref(),
            Some("7")
        );
        assert_eq!(regex_filter(&flex, "no digits", GroupSelect::Last), None);
    }

    #[test]
    fn cot_strict_dot_is_any_char() {
        // lm-eval's `The answer is (\-?[0-9\.\,]+).`: the last `.` is any
        // character, so a number at the very end loses its last digit to it.
        let strict = re(r"The answer is (\-?[0-9\.\,]+).");
        assert_eq!(
            regex_filter(&strict, "The answer is 18.", GroupSelect::First).as_deref(),
            Some("18")
        );
        assert_eq!(
            regex_filter(&strict, "The answer is 18", GroupSelect::First).as_deref(),
            Some("1")
        );
        assert_eq!(
            regex_filter(&strict, "The answer is 1", GroupSelect::First),
            None
        );
    }

    #[test]
    fn python_strip_removes_ascii_separators() {
        // `str.strip()` removes U+001C..U+001F, Rust's `trim` does not: a
        // response framed by them matched in lm-eval and not here.
        assert_eq!(py_strip("\u{1f} B\u{1c}\n"), "B");
        assert_eq!(py_strip("\u{a0}\u{3000}x\u{85}"), "x");
        assert_eq!(
            py_strip("\u{1b}x"),
            "\u{1b}x",
            "ESC is not whitespace in Python"
        );
    }

    #[test]
    fn exact_match_gsm8k_rules() {
        let em = ExactMatch {
            regexes_to_ignore: [",", r"\$", r"(?s).*#### ", r"\.$"]
                .iter()
                .map(|p| PyRegex::new(p).unwrap())
                .collect(),
            ignore_case: true,
            ignore_punctuation: false,
        };
        let reference = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18";
        assert!(em.matches("18", reference));
        assert!(em.matches("$18.", reference));
        assert!(em.matches("1,8", reference), "commas vanish everywhere");
        assert!(!em.matches("18.00", reference));
        assert!(!em.matches(INVALID, reference));
        // Python's `$` matches before a final newline: "18.\n" -> "18\n".
        assert_eq!(PyRegex::new(r"\.$").unwrap().remove("18.\n"), "18\n");
        assert_eq!(PyRegex::new(r"\.$").unwrap().remove("18."), "18");
        assert_eq!(PyRegex::new(r"\$").unwrap().remove("$5\n"), "5\n");
        let em = ExactMatch {
            regexes_to_ignore: vec![],
            ignore_case: true,
            ignore_punctuation: true,
        };
        assert!(em.matches("B.", "b"));
        assert!(!em.matches("B is right", "B"));
    }
}
