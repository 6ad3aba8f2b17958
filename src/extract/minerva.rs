//! lm-evaluation-harness `minerva_math` grading (`lm_eval/tasks/minerva_math/utils.py`
//! at lm-eval 4e7e0d47): the answer after "Final Answer: The final answer is",
//! Lewkowycz et al.'s `normalize_final_answer`, and `is_equiv`.
//!
//! Rules reproduced (read from utils.py):
//!
//! - `get_unnormalized_answer`: append `I hope it is correct.` and take the
//!   first match of `Final Answer: The final answer is(.*?). I hope it is
//!   correct.` (no `DOTALL`: the answer is on one line; the `.` before
//!   ` I hope` is any character, so it eats the answer's full stop), trimmed;
//!   no match is `[invalidanswer]` (here `None`).
//! - `normalize_final_answer`: keep what follows the last `=`; the ten
//!   substitutions in order (`"an "`, `"a "` and every space removed, `\$`
//!   removed, `mbox` -> `text` …); the removed expressions (units, `\text{}`,
//!   `^\circ`, `,\!` …); then the regexes: inline `$…$`, `\text{}`,
//!   `\textbf{}`, `\overline{}`, `\boxed{}` unwrapped; `frac` + one
//!   non-brace character + one character -> `frac{a}{b}` (so `\frac{270}7`
//!   stays but `\frac9{19}` becomes `\frac{9}{{}19}`); `sqrt` + non-brace ->
//!   `sqrt{a}`; `$` removed; an all-digit answer once commas are gone loses
//!   its commas.
//! - The gold is `normalize_final_answer(remove_boxed(last_boxed_only_string(
//!   solution)))`.
//! - `is_equiv(a, b)`: sympy `parse_latex` on both, `simplify(a - b) == 0`;
//!   any parse failure is `False`. Here that is
//!   [`latex_eq::equivalent`] in [`Mode::Sympy`] (see its module docs for
//!   where it differs from sympy).
//!
//! - Before parsing, lm-eval 0.4.13's `is_equiv` returns `True` for two
//!   equal non-empty strings, so an interval, tuple, set or matrix (which
//!   sympy cannot parse) in the gold's own form scores 1; [`is_equiv`] does
//!   the same. (Older lm-eval releases lacked that line and scored such
//!   answers 0; `scripts/conformance/math500_equivalence.py lm-eval` runs the
//!   installed release's own code on the case table.)

use std::sync::LazyLock;

use regex::Regex;

use super::latex_eq::{self, Mode};

/// Where the rules come from (for recipes).
pub const PROVENANCE: &str = "lm-evaluation-harness@4e7e0d47 (2026-08-21): lm_eval/tasks/minerva_math/{minerva_math500.yaml,minerva_math_algebra.yaml,utils.py}";

static FINAL_ANSWER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Final Answer: The final answer is(.*?). I hope it is correct.")
        .expect("valid regex")
});

/// `get_unnormalized_answer`: the text after "Final Answer: The final answer
/// is" up to ". I hope it is correct." (`None`: lm-eval's `[invalidanswer]`).
pub fn unnormalized_answer(response: &str) -> Option<String> {
    let text = format!("{response}I hope it is correct.");
    FINAL_ANSWER
        .captures(&text)
        .map(|c| c[1].trim().to_string())
}

/// `last_boxed_only_string` then `remove_boxed`: the last `\boxed{…}` (or
/// `\fbox{…}`) content, braces counted from the command on; `\boxed x` up to
/// the next `$` when the text has `\boxed ` anywhere.
pub fn last_boxed_content(text: &str) -> Option<String> {
    if let Some(i) = text.rfind("\\boxed ") {
        // `"\\boxed " + s.split("\\boxed ")[-1].split("$")[0]`, then the
        // prefix removed.
        let tail = &text[i + "\\boxed ".len()..];
        return Some(tail.split('$').next().unwrap_or("").to_string());
    }
    let (idx, cmd) = match text.rfind("\\boxed") {
        Some(i) => (i, "\\boxed{"),
        None => (text.rfind("\\fbox")?, "\\fbox{"),
    };
    let mut depth = 0i32;
    for (i, c) in text[idx..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let boxed = &text[idx..=idx + i];
                    // remove_boxed asserts the `\boxed{` prefix: `\fbox{…}`
                    // (or `\boxed` not followed by a brace) raises in lm-eval.
                    return boxed
                        .strip_prefix("\\boxed{")
                        .filter(|_| cmd == "\\boxed{")
                        .and_then(|s| s.strip_suffix('}'))
                        .map(str::to_string);
                }
            }
            _ => {}
        }
    }
    None
}

const SUBSTITUTIONS: [(&str, &str); 10] = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
];

const REMOVED_EXPRESSIONS: [&str; 42] = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "ft",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    "\"",
    "\\dots",
];

static INLINE_MATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(.*?)(\$)(.*?)(\$)(.*)").expect("valid regex"));
static TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\\text\{)(.*?)(\})").expect("valid regex"));
static TEXTBF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\\textbf\{)(.*?)(\})").expect("valid regex"));
static OVERLINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\\overline\{)(.*?)(\})").expect("valid regex"));
static BOXED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\\boxed\{)(.*)(\})").expect("valid regex"));
static FRAC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(frac)([^{])(.)").expect("valid regex"));
static SQRT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(sqrt)([^{])").expect("valid regex"));

/// `normalize_final_answer` (Lewkowycz et al. 2022, appendix D, as lm-eval
/// ships it).
pub fn normalize_final_answer(answer: &str) -> String {
    let mut s = answer.rsplit('=').next().unwrap_or("").to_string();
    for (before, after) in SUBSTITUTIONS {
        s = s.replace(before, after);
    }
    for expr in REMOVED_EXPRESSIONS {
        s = s.replace(expr, "");
    }
    s = INLINE_MATH
        .replace_all(&s, |c: &regex::Captures| format!("${}$", &c[3]))
        .into_owned();
    s = TEXT.replace_all(&s, "$2").into_owned();
    s = TEXTBF.replace_all(&s, "$2").into_owned();
    s = OVERLINE.replace_all(&s, "$2").into_owned();
    s = BOXED.replace_all(&s, "$2").into_owned();
    s = FRAC.replace_all(&s, "frac{$2}{$3}").into_owned();
    s = SQRT.replace_all(&s, "sqrt{$2}").into_owned();
    s = s.replace('$', "");
    let digits: String = s.chars().filter(|c| *c != ',').collect();
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        s = digits;
    }
    s
}

/// The gold answer of a MATH solution as minerva_math's `process_docs`
/// computes it (`None` when the solution has no `\boxed{…}`).
pub fn gold_answer(solution: &str) -> Option<String> {
    last_boxed_content(solution).map(|b| normalize_final_answer(&b))
}

/// The extracted, normalised answer of a response (`None`: no "Final
/// Answer" line, lm-eval's `[invalidanswer]`).
pub fn extract(response: &str) -> Option<String> {
    unnormalized_answer(response).map(|a| normalize_final_answer(&a))
}

/// `is_equiv` on two normalised answers: equal non-empty strings, else
/// symbolic equality (see the module docs).
pub fn is_equiv(pred: &str, gold: &str) -> bool {
    (!pred.is_empty() && pred == gold) || latex_eq::equivalent(gold, pred, Mode::Sympy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_quirks() {
        assert_eq!(normalize_final_answer(r"x = 5"), "5");
        assert_eq!(normalize_final_answer(r"\frac9{19}"), r"\frac{9}{{}19}");
        assert_eq!(
            normalize_final_answer(r"\frac{270}7\text{ degrees}"),
            r"\frac{270}7"
        );
        assert_eq!(normalize_final_answer(r"10,\!080"), "10080");
        assert_eq!(normalize_final_answer(r"\$32,\!348"), "32348");
        assert_eq!(normalize_final_answer(r"\text{Evelyn}"), "Evelyn");
        assert_eq!(normalize_final_answer(r"864 \mbox{ inches}^2"), "864");
        assert_eq!(normalize_final_answer(r"90^\circ"), "90");
        assert_eq!(normalize_final_answer(r"\sqrt2"), r"\sqrt{2}");
        assert_eq!(normalize_final_answer(r"\cot x"), r"\cotx");
        assert_eq!(normalize_final_answer("$5$"), "5");
    }

    #[test]
    fn final_answer_line() {
        assert_eq!(
            extract(
                "work\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."
            )
            .as_deref(),
            Some(r"\frac{1}{2}")
        );
        // The appended "I hope it is correct." (no space before it) closes
        // a line that ends in ". "; one ending in "." does not match, as in
        // Python's `re.search` on the same text.
        assert_eq!(
            extract("Final Answer: The final answer is $7$. ").as_deref(),
            Some("7")
        );
        assert_eq!(extract("Final Answer: The final answer is $7$."), None);
        assert_eq!(extract(r"so \boxed{7}"), None);
    }

    #[test]
    fn gold_from_solution() {
        assert_eq!(
            gold_answer(r"so $\boxed{\frac{\sqrt{3}}{2}}$.").as_deref(),
            Some(r"\frac{\sqrt{3}}{2}")
        );
        assert_eq!(gold_answer(r"the \boxed 5$ and"), Some("5".into()));
        assert_eq!(gold_answer(r"no box"), None);
    }
}
