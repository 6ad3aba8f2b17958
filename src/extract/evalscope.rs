//! EvalScope v1 answer extraction and scoring, re-implemented rule for rule
//! so that `evalscope:*` modes grade exactly as EvalScope does.
//!
//! # Sources
//!
//! Read in `modelscope/evalscope`. The shared research notes pin HEAD
//! `fde259d2` (2026-08-22). The source index gives one commit per stored file
//! version, not the HEAD it belongs to, so these are the versions read:
//!
//! - `evalscope/metrics/math/parser.py` at `1138594b` and `ad6afc49`. They
//!   differ only in how the matrix branch of `math_equal` slices its tags, and
//!   both slices have the same length. Functions: `extract_answer`,
//!   `strip_answer_string` (with `_fix_fracs`, `_fix_a_slash_b`, `_fix_sqrt`,
//!   `convert_word_number`), `math_equal`, `numeric_equal`, `parse_digits`,
//!   `choice_answer_clean`, `str_to_pmatrix`. This is the Qwen2.5-Math lineage.
//! - `evalscope/benchmarks/gsm8k/gsm8k_adapter.py`: the adapter calls
//!   `extract_answer(prediction)`, and its metric is `{'acc': {'numeric': True}}`.
//! - `evalscope/metrics/nlp/metrics.py`, `Accuracy` with `numeric`: it scores
//!   `math_equal(prediction, strip_answer_string(reference))`, where
//!   `math_equal` keeps its defaults `include_percentage=True` and
//!   `is_close=True`.
//! - `evalscope/utils/multi_choices.py` at `1617436c`: `parse_answers` after
//!   PR #1597 (the last valid marker wins), `_last_labelled_answer`,
//!   `_label_prefix` and `_fallback_parse_answer`. Also
//!   `evalscope/api/benchmark/adapters/multi_choice_adapter.py`, whose
//!   `extract_answer` joins the parsed set sorted (`''` when it is empty).
//! - `word2number` 1.1 (`w2n.word_to_num`). `strip_answer_string` runs it on
//!   `\text{word}` and on the whole answer.
//!
//! These are the math rules of EvalScope 1.0 to 1.12 (checked against the
//! 1.12.0 wheel: same `parser.py` functions, `numeric_equal` with
//! `rel_tol=1e-4`, the `Accuracy(numeric)` metric calling `math_equal` on
//! `strip_answer_string(reference)`), and the `evalscope-1.12` GSM8K mode
//! uses them. EvalScope 1.13.0 replaced them with Math-Verify; the
//! `evalscope` mode follows that ([`crate::extract::math_verify`]). The
//! multiple-choice parser here is unchanged in 1.14.1 and still serves the
//! ARC `evalscope` mode.
//!
//! # Python semantics this code reproduces
//!
//! - `str.strip()`/`split()`/`\s` treat U+001C..U+001F as whitespace, unlike
//!   Rust's `char::is_whitespace` (`py_is_space`). `int()` and `float()` do
//!   not, so an integer list that `\s` accepted can still fail `int()`, and
//!   EvalScope then prints `-1,-1`.
//! - `\d`, `int()` and `float()` accept every Unicode decimal digit, so `１８`
//!   (full-width) is the number 18 (`digit_value`).
//! - `float()` accepts `_` between digits and `inf`/`nan`. `str(float)` is
//!   Python's `repr` (`py_float_repr`).
//! - `int()` has arbitrary precision. The integer-list sort compares digit
//!   strings, so no big-integer crate is needed.
//!
//! # Left out
//!
//! - **The sympy branch of `math_equal`**: `symbolic_equal`, built on
//!   `parse_latex`, `parse_expr`, `latex2sympy`, `simplify` and `N`. It is
//!   replaced by `simple_numeric_equal`, which compares only plain numbers
//!   and `\frac{n}{m}` of plain numbers. For those inputs `symbolic_equal`
//!   reduces to `isclose(rel_tol=1e-4)`, so `\frac{1}{2}` still matches `0.5`.
//!   Anything else that only sympy would call equal is wrong here: `2x` vs
//!   `x+x`, `\sqrt{4}` vs `2`, `3 \cdot 6` vs `18`, and the equation branch
//!   where both sides contain one `=`. For GSM8K, whose references are plain
//!   integers, this matters only for predictions written as such expressions.
//! - Python's `re` `\w` and `\b` are approximated by Unicode letters,
//!   numbers and `_`. They differ from Python only on rare combining marks.
//! - `parse_answers_zh` (`答案：`) and multiple-answer questions: ARC and GSM8K
//!   use neither.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::{Captures, NoExpand, Regex};

/// The EvalScope version, files and rules the `evalscope-1.12` GSM8K mode
/// follows (for reports).
pub const PROVENANCE: &str = "EvalScope 1.0-1.12 (1.12.0 is the last release before Math-Verify; rules read at \
     modelscope/evalscope fde259d2): metrics/math/parser.py extract_answer, strip_answer_string, math_equal \
     (Qwen2.5-Math rules, rel_tol 1e-4, x100 and /100; sympy branch only for plain numbers and \\frac); \
     word2number 1.1";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

// ---------------------------------------------------------------------------
// Python string semantics
// ---------------------------------------------------------------------------

/// Python's `str.isspace()` for one character: Unicode White_Space plus the
/// ASCII separators U+001C..U+001F, which Python also counts as whitespace.
fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}

/// Python's `\w` for one character (letters, numbers, underscore).
fn py_is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A single Unicode decimal digit (general category Nd), which is what Python
/// `re`'s `\d` and `int()`/`float()` accept.
static ND_DIGIT: LazyLock<Regex> = LazyLock::new(|| re(r"^\d$"));

fn is_nd(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && ND_DIGIT.is_match(c.encode_utf8(&mut [0; 4])))
}

/// The value of a Unicode decimal digit. Unicode guarantees that Nd digits
/// come in contiguous runs 0..9, so a maximal stretch of Nd code points starts
/// at a zero and the value is the distance from that start, mod 10.
fn digit_value(c: char) -> Option<u32> {
    if let Some(d) = c.to_digit(10) {
        return Some(d);
    }
    if !is_nd(c) {
        return None;
    }
    let mut cp = c as u32;
    let mut offset = 0;
    while cp > 0 && char::from_u32(cp - 1).is_some_and(is_nd) {
        cp -= 1;
        offset += 1;
    }
    Some(offset % 10)
}

/// Python `float(text)`: surrounding whitespace, Unicode digits, `_` between
/// digits, `inf`/`infinity`/`nan` in any case. `None` where Python raises.
///
/// Unlike `str.strip()`, `float()` and `int()` do not treat U+001C..U+001F as
/// whitespace, so this trims with Rust's notion of whitespace, which matches.
fn py_float(text: &str) -> Option<f64> {
    static LITERAL: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"^[+-]?(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?$",
        )
    });
    static SPECIAL: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[+-]?(?:inf|infinity|nan)$"));
    let mut ascii = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            ascii.push(char::from_digit(digit_value(c)?, 10)?);
        }
    }
    if !LITERAL.is_match(&ascii) && !SPECIAL.is_match(&ascii) {
        return None;
    }
    ascii.replace('_', "").parse().ok()
}

/// Python's `repr(float)`: the shortest round-trip digits, in positional form
/// when the decimal exponent is in -4..16, otherwise `1e+16` style.
fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` also prints the shortest round-trip digits: "-1.25e3".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // `decpt` as in CPython's float formatting: value = 0.DIGITS * 10^decpt.
    let decpt = exp + 1;
    let n = digits.len() as i32;
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = decpt - 1;
        format!(
            "{first}{frac}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.abs()
        )
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// Python `int(piece)` for a piece already known to be `\s*-?\d+\s*`, as a
/// sign and a digit string without leading zeros (`-0` becomes `0`). `None`
/// where `int()` raises: it does not strip U+001C..U+001F, although `re`'s
/// `\s` matched them.
fn py_int(piece: &str) -> Option<(bool, String)> {
    let t = piece.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let ascii: String = digits
        .chars()
        .map(|c| digit_value(c).and_then(|d| char::from_digit(d, 10)))
        .collect::<Option<_>>()?;
    let trimmed = ascii.trim_start_matches('0');
    let canonical = if trimmed.is_empty() { "0" } else { trimmed };
    Some((negative && canonical != "0", canonical.to_string()))
}

/// Numeric order of two [`py_int`] results.
fn cmp_py_int(a: &(bool, String), b: &(bool, String)) -> Ordering {
    let magnitude = |s: &String, t: &String| s.len().cmp(&t.len()).then_with(|| s.cmp(t));
    match (a.0, b.0) {
        (false, false) => magnitude(&a.1, &b.1),
        (true, true) => magnitude(&b.1, &a.1),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// Python `math.isclose(a, b, rel_tol=rel_tol)` (abs_tol 0).
fn py_isclose(a: f64, b: f64, rel_tol: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (b - a).abs();
    diff <= (rel_tol * b).abs() || diff <= (rel_tol * a).abs()
}

// ---------------------------------------------------------------------------
// word2number 1.1
// ---------------------------------------------------------------------------

/// `american_number_system` without `point`, which is handled apart.
const NUMBER_WORDS: [(&str, i128); 32] = [
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("hundred", 100),
    ("thousand", 1_000),
    ("million", 1_000_000),
    ("billion", 1_000_000_000),
];

fn word_value(word: &str) -> Option<i128> {
    NUMBER_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
}

/// w2n's `number_formation`: combines up to four word values the way the
/// library does. Five or more use only the first value, an empty list raises
/// (`None`).
fn number_formation(words: &[&str]) -> Option<i128> {
    let n: Vec<i128> = words.iter().map(|w| word_value(w)).collect::<Option<_>>()?;
    Some(match n.len() {
        0 => return None,
        4 => n[0] * n[1] + n[2] + n[3],
        3 => n[0] * n[1] + n[2],
        2 if n.contains(&100) => n[0] * n[1],
        2 => n[0] + n[1],
        _ => n[0],
    })
}

/// `str(w2n.word_to_num(text))`, or `None` where the library raises.
///
/// The library keeps only the words it knows and ignores the rest. So
/// "18 apples and five pears" gives 5, and a lone "point" gives 0. EvalScope
/// runs it on whole answers, so these quirks reach the scores.
fn word_to_num(text: &str) -> Option<String> {
    let sentence = text.replace('-', " ").to_lowercase();
    // `isdigit()` then `int()`: an all-digit string is read as an integer.
    if !sentence.is_empty() && sentence.chars().all(is_nd) {
        return py_int(&sentence).map(|(_, digits)| digits);
    }
    let clean: Vec<&str> = sentence
        .split(py_is_space)
        .filter(|w| *w == "point" || word_value(w).is_some())
        .collect();
    if clean.is_empty() {
        return None;
    }
    let count = |w: &str| clean.iter().filter(|&&x| x == w).count();
    if ["thousand", "million", "billion", "point"]
        .iter()
        .any(|w| count(w) > 1)
    {
        return None;
    }
    let (ints, decimals) = match clean.iter().position(|w| *w == "point") {
        Some(p) => (&clean[..p], &clean[p + 1..]),
        None => (&clean[..], &clean[..0]),
    };
    // Indices as the library keeps them, with -1 for "absent".
    let index = |w: &str| ints.iter().position(|x| *x == w).map_or(-1, |i| i as i64);
    let (b, m, t) = (index("billion"), index("million"), index("thousand"));
    if (t > -1 && (t < m || t < b)) || (m > -1 && m < b) {
        return None;
    }
    let last = ints.len() as i64 - 1;
    let slice = |from: i64, to: i64| &ints[from as usize..to as usize];
    let mut total: i128 = 0;
    if ints.len() == 1 {
        total += word_value(ints[0])?;
    } else if ints.len() > 1 {
        if b > -1 {
            total += number_formation(slice(0, b))? * 1_000_000_000;
        }
        if m > -1 {
            let from = if b > -1 { b + 1 } else { 0 };
            total += number_formation(slice(from, m))? * 1_000_000;
        }
        if t > -1 {
            let from = if m > -1 {
                m + 1
            } else if b > -1 {
                b + 1
            } else {
                0
            };
            total += number_formation(slice(from, t))? * 1_000;
        }
        // The tail after the last multiplier word. When "thousand" ends the
        // list, the library falls through to the million branch and counts
        // words again. That is a w2n bug, kept on purpose.
        let hundreds = if t > -1 && t != last {
            number_formation(slice(t + 1, last + 1))?
        } else if m > -1 && m != last {
            number_formation(slice(m + 1, last + 1))?
        } else if b > -1 && b != last {
            number_formation(slice(b + 1, last + 1))?
        } else if t == -1 && m == -1 && b == -1 {
            number_formation(ints)?
        } else {
            0
        };
        total += hundreds;
    }
    if !decimals.is_empty() {
        // `get_decimal_sum`: digit words only, else the int 0 (no float).
        let digits: Option<String> = decimals
            .iter()
            .map(|w| match word_value(w) {
                Some(v @ 0..=9) => char::from_digit(v as u32, 10),
                _ => None,
            })
            .collect();
        if let Some(digits) = digits {
            let fraction: f64 = format!("0.{digits}").parse().expect("digit string");
            return Some(py_float_repr(total as f64 + fraction));
        }
    }
    Some(total.to_string())
}

/// EvalScope's `convert_word_number`: the number the words spell, else the
/// text unchanged.
fn convert_word_number(text: &str) -> String {
    word_to_num(text).unwrap_or_else(|| text.to_string())
}

// ---------------------------------------------------------------------------
// strip_answer_string
// ---------------------------------------------------------------------------

static ARRAY_BEGIN: LazyLock<Regex> = LazyLock::new(|| re(r"\\begin\{array\}\{.*?\}"));
static TEXT_WORD: LazyLock<Regex> = LazyLock::new(|| re(r"\\text\{([a-zA-Z]+)\}"));
static SQUARED_UNIT: LazyLock<Regex> = LazyLock::new(|| re(r"(cm|inches)\}\^2"));
/// From the first `\text{` to a closing brace that ends the string.
static TEXT_AT_END: LazyLock<Regex> = LazyLock::new(|| re(r"\\text\{.*?\}$"));
static TEXT_ANY: LazyLock<Regex> = LazyLock::new(|| re(r"\\text\{(.*?)\}"));
static MBOX: LazyLock<Regex> = LazyLock::new(|| re(r"\\mbox\{.*?\}"));
static DEC_ZERO_THEN_NONDIGIT: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+)\.0*([^\d])"));
static DEC_ZERO_AT_END: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+)\.0*$"));
static SQRT_BARE: LazyLock<Regex> = LazyLock::new(|| re(r"\\sqrt([\p{L}\p{N}_]+)"));
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[\s\x1C-\x1F]*-?\d{1,3}(?:,\d{3})+(?:\.\d+)?[\s\x1C-\x1F]*$"));
static INT_LIST: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[\s\x1C-\x1F]*-?\d+[\s\x1C-\x1F]*,)*[\s\x1C-\x1F]*-?\d+[\s\x1C-\x1F]*$")
});

/// `_fix_fracs`: `\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}`.
/// A `\frac` with fewer than two characters after it returns the input as is.
fn fix_fracs(s: &str) -> String {
    let mut pieces = s.split(r"\frac");
    let mut out = pieces.next().unwrap_or_default().to_string();
    for piece in pieces {
        out.push_str(r"\frac");
        if piece.starts_with('{') {
            out.push_str(piece);
            continue;
        }
        let mut chars = piece.chars();
        let (Some(a), Some(b)) = (chars.next(), chars.next()) else {
            return s.to_string();
        };
        let rest = chars.as_str();
        if b == '{' {
            out.push_str(&format!("{{{a}}}{b}{rest}"));
        } else {
            out.push_str(&format!("{{{a}}}{{{b}}}{rest}"));
        }
    }
    out
}

/// The string `str(int(p))` gives back unchanged: what `_fix_a_slash_b`'s
/// round-trip assertion accepts.
fn is_canonical_int(p: &str) -> bool {
    static CANONICAL: LazyLock<Regex> = LazyLock::new(|| re(r"^-?(?:0|[1-9][0-9]*)$"));
    CANONICAL.is_match(p) && p != "-0"
}

/// `_fix_a_slash_b`: `3/4` → `\frac{3}{4}` when both sides are integers
/// written canonically (or contain `sqrt`), otherwise unchanged.
fn fix_a_slash_b(s: &str) -> String {
    let parts: Vec<&str> = s.split('/').collect();
    let side_ok = |p: &str| p.contains("sqrt") || is_canonical_int(p);
    match parts.as_slice() {
        &[a, b] if side_ok(a) && side_ok(b) => format!(r"\frac{{{a}}}{{{b}}}"),
        _ => s.to_string(),
    }
}

/// EvalScope's `re.sub(r'\\(?=\-?\d+(\\|\)|,|\]|$))', '', s)`: drop a
/// backslash that comes right before an integer ending at `\`, `)`, `,`, `]`
/// or the end. The `regex` crate has no look-ahead, so this scans the text.
fn remove_backslash_before_int(s: &str) -> String {
    let ends_an_int = |rest: &str| {
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let end = rest
            .char_indices()
            .find(|(_, c)| !is_nd(*c))
            .map_or(rest.len(), |(i, _)| i);
        end > 0
            && rest[end..]
                .chars()
                .next()
                .is_none_or(|c| matches!(c, '\\' | ')' | ',' | ']'))
    };
    s.char_indices()
        .filter(|&(i, c)| !(c == '\\' && ends_an_int(&s[i + 1..])))
        .map(|(_, c)| c)
        .collect()
}

/// Sorts a comma-separated list of integers numerically and prints each one
/// back as Python `str(int)` does. If any `int()` fails, EvalScope
/// substitutes the list `-1,-1`.
fn sort_int_list(s: &str) -> String {
    let Some(mut items) = s.split(',').map(py_int).collect::<Option<Vec<_>>>() else {
        return "-1,-1".to_string();
    };
    items.sort_by(cmp_py_int);
    items
        .iter()
        .map(|(neg, d)| if *neg { format!("-{d}") } else { d.clone() })
        .collect::<Vec<_>>()
        .join(",")
}

/// EvalScope's `strip_answer_string`: LaTeX normalisation applied to the
/// extracted prediction and to the reference before comparing.
///
/// Steps, in EvalScope's order: trim, drop newlines and trailing dots, `\!`;
/// matrices to `pmatrix`; `tfrac`/`dfrac` to `frac`; `\left`/`\right`;
/// `\text{five}` to `5`; a trailing `\text{unit}`; `^\circ`; `$` and `\$`;
/// the whole string through word2number; `\text{x}` to `x`; `x=`-style
/// prefixes; `%`; `inf`; the substring `and` (yes, anywhere); quotes;
/// `12.000` to `12`; a short `k=` prefix; `\sqrt2`; spaces; `\frac12`; `a/b`;
/// `\` before integers; `th grade`; thousands commas; and finally a list of
/// integers is sorted (so a lone integer is printed canonically: `007` → `7`).
pub fn strip_answer_string(input: &str) -> String {
    let mut s = py_strip(input).replace('\n', "");
    s = s.trim_end_matches('.').replace(r"\!", "");
    s = ARRAY_BEGIN
        .replace_all(&s, NoExpand(r"\begin{pmatrix}"))
        .into_owned();
    s = s
        .replace(r"\end{array}", r"\end{pmatrix}")
        .replace("bmatrix", "pmatrix")
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace(r"\neq", r"\ne")
        .replace(r"\leq", r"\le")
        .replace(r"\geq", r"\ge")
        .replace(r"\left", "")
        .replace(r"\right", "")
        .replace(r"\{", "{")
        .replace(r"\}", "}");
    // `\text{five}` → `5`, but `\text{dollars}` stays for the unit step.
    s = TEXT_WORD
        .replace_all(&s, |c: &Captures| {
            let word = c[1].to_lowercase();
            let number = convert_word_number(&word);
            if number == word {
                c[0].to_string()
            } else {
                number
            }
        })
        .into_owned();
    s = SQUARED_UNIT.replace_all(&s, "${1}}").into_owned();
    // A trailing unit is dropped unless nothing would be left.
    let without_unit = py_strip(&TEXT_AT_END.replace_all(&s, "")).to_string();
    if !without_unit.is_empty() && without_unit != s {
        s = without_unit;
    }
    s = s
        .replace(r"^{\circ}", "")
        .replace(r"^\circ", "")
        .replace(r"\$", "")
        .replace('$', "")
        .replace(r"\(", "")
        .replace(r"\)", "");
    // Quirk: the whole answer goes through word2number, so any number word in
    // it replaces the answer ("18 or nineteen" → "19", "007" → "7").
    s = convert_word_number(&s);
    s = TEXT_ANY.replace_all(&s, "${1}").into_owned();
    for key in [
        "x=", "y=", "z=", r"x\in", r"y\in", r"z\in", r"x\to", r"y\to", r"z\to",
    ] {
        s = s.replace(key, "");
    }
    s = s
        .replace(r"\emptyset", "{}")
        .replace(r"(-\infty,\infty)", r"\mathbb{R}")
        .replace(r"\%", "")
        .replace('%', "")
        .replace(" .", " 0.")
        .replace("{.", "{0.");
    // EvalScope then unwraps `{x}`/`(x)`/`[x]` only when the whole string
    // `isalnum()`, which a bracketed string never is: a no-op, omitted.
    s = s.replace("infinity", r"\infty");
    if !s.contains(r"\infty") {
        s = s.replace("inf", r"\infty");
    }
    s = s
        .replace(r"+\inity", r"\infty")
        .replace("and", "")
        .replace(r"\mathbf", "");
    s = MBOX.replace_all(&s, "").into_owned();
    s = s.replace(['\'', '"'], "");
    if s.contains('j') && !s.contains('i') {
        s = s.replace('j', "i");
    }
    s = DEC_ZERO_THEN_NONDIGIT
        .replace_all(&s, "${1}${2}")
        .into_owned();
    s = DEC_ZERO_AT_END.replace_all(&s, "${1}").into_owned();
    if s.is_empty() {
        return s;
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    // "k=5" → "5" when the left side has at most two characters.
    if let Some((lhs, rhs)) = s.split_once('=')
        && !rhs.contains('=')
        && lhs.chars().count() <= 2
    {
        s = rhs.to_string();
    }
    s = SQRT_BARE
        .replace_all(&s, |c: &Captures| format!(r"\sqrt{{{}}}", &c[1]))
        .into_owned();
    s = s.replace(' ', "");
    s = fix_fracs(&s);
    s = fix_a_slash_b(&s);
    s = remove_backslash_before_int(&s);
    if let Some(stem) = s.strip_suffix("thgrade") {
        s = stem.to_string();
    }
    if THOUSANDS.is_match(&s) {
        s = s.replace(',', "");
    }
    if INT_LIST.is_match(&s) {
        s = sort_int_list(&s);
    }
    s
}

// ---------------------------------------------------------------------------
// extract_answer
// ---------------------------------------------------------------------------

/// Text after the last occurrence of `marker`. None of the markers used here
/// can overlap itself, so this equals Python's `split(marker)[-1]`.
fn after_last<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.rfind(marker).map(|i| &text[i + marker.len()..])
}

/// What `extract_answer` keeps of a `boxed{…`: up to the brace that closes the
/// first one, or everything if it never closes (a truncated response).
fn brace_content(inner: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &inner[..i];
                }
            }
            _ => {}
        }
    }
    inner
}

/// EvalScope v1's GSM8K extraction (`evalscope.metrics.math.parser.extract_answer`),
/// the Qwen2.5-Math chain. The first rule that applies wins, even if what it
/// yields is not a number:
///
/// 1. remove `ки` (the Math-Shepherd step tag);
/// 2. minerva: text between the first `final answer is $` and `$. I hope`;
/// 3. after the **last** `boxed`: the brace-balanced `{…}`, or text up to the
///    first `$` if no brace follows;
/// 4. after the last `he answer is`, then after the last `final answer is`;
/// 5. after the first `答案是`, up to a blank line;
/// 6. after the last `ANSWER:` (case-sensitive);
/// 7. the last match of `-?\d*\.?\d+` in the text with commas removed.
///
/// Then newlines (with the whitespace after them) are removed, along with one
/// leading `:`, one trailing `.` and one trailing `/`, and the result goes
/// through [`strip_answer_string`]. `""` means no answer.
pub fn extract_answer(pred: &str) -> String {
    static LAST_NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"-?\d*\.?\d+"));
    static NEWLINE_RUN: LazyLock<Regex> = LazyLock::new(|| re(r"\n[\s\x1C-\x1F]*"));

    let text = pred.replace("ки", "");
    let picked: String = if text.contains("final answer is $") && text.contains("$. I hope") {
        let after = text.split_once("final answer is $").map_or("", |(_, a)| a);
        let until = after.split_once("$. I hope").map_or(after, |(u, _)| u);
        py_strip(until).to_string()
    } else if let Some(after) = after_last(&text, "boxed") {
        if after.is_empty() {
            // EvalScope returns here, skipping the post-processing.
            return String::new();
        }
        match after.strip_prefix('{') {
            Some(inner) => brace_content(inner).to_string(),
            None => py_strip(after.split('$').next().unwrap_or_default()).to_string(),
        }
    } else if let Some(after) = after_last(&text, "he answer is") {
        // "he answer is" also catches "The answer is" and "the answer is".
        py_strip(after).to_string()
    } else if let Some(after) = after_last(&text, "final answer is") {
        py_strip(after).to_string()
    } else if let Some((_, after)) = text.split_once("答案是") {
        // `split('答案是')[1]`: only up to a second `答案是`, if any.
        let segment = after.split("答案是").next().unwrap_or_default();
        let first_para = py_strip(segment).split("\n\n").next().unwrap_or_default();
        py_strip(first_para).to_string()
    } else if let Some(after) = after_last(&text, "ANSWER:") {
        py_strip(after).to_string()
    } else {
        let no_commas = text.replace(',', "");
        LAST_NUMBER
            .find_iter(&no_commas)
            .last()
            .map_or_else(String::new, |m| m.as_str().to_string())
    };

    let mut p = NEWLINE_RUN.replace_all(&picked, "").into_owned();
    if p.starts_with(':') {
        p.remove(0);
    }
    if p.ends_with('.') {
        p.pop();
    }
    if p.ends_with('/') {
        p.pop();
    }
    strip_answer_string(&p)
}

// ---------------------------------------------------------------------------
// math_equal
// ---------------------------------------------------------------------------

/// EvalScope's `parse_digits`: `float()` after removing commas, else a
/// trailing `%` (or `\%`) divides by 100.
fn parse_digits(num: &str) -> Option<f64> {
    let num = num.replace(',', "");
    if let Some(v) = py_float(&num) {
        return Some(v);
    }
    let stem = num.strip_suffix('%')?;
    let stem = stem.strip_suffix('\\').unwrap_or(stem);
    py_float(stem).map(|v| v / 100.0)
}

/// EvalScope's `choice_answer_clean`: the last standalone A–E in the upper-cased
/// text, else the text itself stripped of dots.
fn choice_answer_clean(pred: &str) -> String {
    let p = pred
        .trim_matches('\n')
        .trim_end_matches('.')
        .trim_end_matches('/')
        .trim_matches(' ')
        .trim_start_matches(':');
    let upper: Vec<char> = p.to_uppercase().chars().collect();
    // `\b(A|B|C|D|E)\b` with Python's notion of a word character.
    let standalone = (0..upper.len()).rev().find(|&i| {
        matches!(upper[i], 'A'..='E')
            && (i == 0 || !py_is_word(upper[i - 1]))
            && upper.get(i + 1).is_none_or(|c| !py_is_word(*c))
    });
    let picked = match standalone {
        Some(i) => upper[i].to_string(),
        None => py_strip(p).trim_matches('.').to_string(),
    };
    picked
        .trim_end_matches('.')
        .trim_end_matches('/')
        .to_string()
}

/// `str_to_pmatrix`: every `{…,…}` group becomes a one-row `pmatrix`.
fn str_to_pmatrix(input: &str) -> String {
    static SET: LazyLock<Regex> = LazyLock::new(|| re(r"\{.*,.*\}"));
    SET.find_iter(py_strip(input))
        .map(|m| {
            let inner = m.as_str().trim_matches(['{', '}']).replace(',', "\\");
            format!(r"\begin{{pmatrix}}{inner}\end{{pmatrix}}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const MATRIX_BEGINS: [&str; 2] = [r"\begin{pmatrix}", r"\begin{bmatrix}"];
const MATRIX_ENDS: [&str; 2] = [r"\end{pmatrix}", r"\end{bmatrix}"];

/// The rows of a `pmatrix`/`bmatrix` string, or `None` if it is not one.
fn matrix_rows(s: &str) -> Option<Vec<&str>> {
    let begins = MATRIX_BEGINS.iter().any(|b| s.starts_with(b));
    let ends = MATRIX_ENDS.iter().any(|e| s.ends_with(e));
    if !begins || !ends {
        return None;
    }
    // Both tag spellings have the same length, so fixed offsets are exact.
    let body = &s[MATRIX_BEGINS[0].len()..s.len() - MATRIX_ENDS[0].len()];
    Some(
        body.split(r"\\")
            .map(py_strip)
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// A plain number or `\frac{n}{m}` of plain numbers, with an optional sign:
/// the inputs for which [`simple_numeric_equal`] can stand in for sympy.
fn simple_latex_number(s: &str) -> Option<f64> {
    static FRAC: LazyLock<Regex> =
        LazyLock::new(|| re(r"^(-?)\\frac\{(-?[0-9]+(?:\.[0-9]+)?)\}\{(-?[0-9]+(?:\.[0-9]+)?)\}$"));
    static PLAIN: LazyLock<Regex> = LazyLock::new(|| re(r"^-?[0-9]+(?:\.[0-9]+)?$"));
    let s = py_strip(s);
    if PLAIN.is_match(s) {
        return s.parse().ok();
    }
    let c = FRAC.captures(s)?;
    let (num, den): (f64, f64) = (c[2].parse().ok()?, c[3].parse().ok()?);
    if den == 0.0 {
        return None; // sympy gives `zoo`; nothing here compares equal to it
    }
    let v = num / den;
    Some(if c[1].is_empty() { v } else { -v })
}

/// Stand-in for EvalScope's sympy-based `symbolic_equal`, limited to
/// [`simple_latex_number`] inputs. For two numbers, `symbolic_equal` comes
/// down to exact equality or `isclose(rel_tol=1e-4)`, which is what this
/// checks. Everything else counts as not equal here; sympy might say
/// otherwise (see the module docs).
fn simple_numeric_equal(a: &str, b: &str) -> bool {
    match (simple_latex_number(a), simple_latex_number(b)) {
        (Some(x), Some(y)) => py_isclose(y, x, 1e-4),
        _ => false,
    }
}

/// The string-level part of `math_equal` that comes after the numeric check:
/// bracket-insensitive equality, tuples element by element, matrices cell by
/// cell, a one-sided `k=` prefix, then the sympy stand-in.
fn structural_equal(prediction: &str, reference: &str) -> bool {
    static BRACKETED: LazyLock<Regex> = LazyLock::new(|| re(r"^[\(\[].+[\)\]]"));
    let prediction = py_strip(prediction);
    let mut reference = py_strip(reference).to_string();
    if prediction.contains("pmatrix") && !reference.contains("pmatrix") {
        reference = str_to_pmatrix(&reference);
    }
    let reference = reference.as_str();

    let brackets: &[char] = &['[', ']', '(', ')'];
    let unwrap =
        (prediction.starts_with('[') && prediction.ends_with(']') && !reference.starts_with('('))
            || (prediction.starts_with('(')
                && prediction.ends_with(')')
                && !reference.starts_with('['));
    let (p, r) = if unwrap {
        (
            prediction.trim_matches(brackets),
            reference.trim_matches(brackets),
        )
    } else {
        (prediction, reference)
    };
    let drop_brackets = |s: &str| s.replace(['{', '}', '(', ')'], "").to_lowercase();
    let (p, r) = (drop_brackets(p), drop_brackets(r));
    if p == r {
        return true;
    }

    // "[a, b]" vs "(c, d)": element-wise. The regex is a prefix match, and
    // Python's `[1:-1]` drops the last character whatever it is.
    if BRACKETED.is_match(prediction) && BRACKETED.is_match(reference) {
        let inner = |s: &str| {
            let mut cs = s.chars();
            cs.next();
            cs.next_back();
            cs.as_str().to_string()
        };
        let (pi, ri) = (inner(prediction), inner(reference));
        let (pp, rp): (Vec<&str>, Vec<&str>) = (pi.split(',').collect(), ri.split(',').collect());
        if pp.len() == rp.len() && pp.iter().zip(&rp).all(|(a, b)| math_equal(a, b)) {
            return true;
        }
    }

    if let (Some(pl), Some(rl)) = (matrix_rows(prediction), matrix_rows(reference)) {
        let rows_equal = pl.len() == rl.len()
            && pl.iter().zip(&rl).all(|(pr, rr)| {
                let (pc, rc): (Vec<&str>, Vec<&str>) =
                    (pr.split('&').collect(), rr.split('&').collect());
                pc.len() == rc.len() && pc.iter().zip(&rc).all(|(a, b)| math_equal(a, b))
            });
        if rows_equal {
            return true;
        }
    }

    let (pe, re_count) = (
        prediction.matches('=').count(),
        reference.matches('=').count(),
    );
    let lhs_short = |s: &str| {
        s.split('=')
            .next()
            .is_some_and(|l| py_strip(l).chars().count() <= 2)
    };
    let rhs = |s: &str| s.split('=').nth(1).unwrap_or_default().to_string();
    if pe == 1 && re_count == 1 {
        // Both are equations: EvalScope only compares them with sympy
        // (left out), and skips the one-sided branches below.
    } else if pe == 1 && lhs_short(prediction) && re_count == 0 {
        if math_equal(&rhs(prediction), reference) {
            return true;
        }
    } else if re_count == 1
        && lhs_short(reference)
        && pe == 0
        && math_equal(prediction, &rhs(reference))
    {
        return true;
    }

    simple_numeric_equal(prediction, reference)
}

/// EvalScope's `math_equal(prediction, reference)` with its defaults
/// (`include_percentage=True`, `is_close=True`), minus sympy.
///
/// In order:
/// 1. trimmed, case-insensitive string equality;
/// 2. for a reference `A`–`E`, the choice letter found in the prediction;
/// 3. if both sides parse as numbers (commas removed; a trailing `%` divides
///    by 100), the prediction must be within `isclose(rel_tol=1e-4)` of
///    reference/100, reference or reference×100. The answer is final either
///    way: numbers never reach the symbolic branch;
/// 4. otherwise the string-level structure checks and a numeric stand-in for
///    the sympy comparison (see the module docs).
///
/// Quirks that follow from step 3 and are kept on purpose: `1800` and `0.18`
/// both count as correct for `18`. So does `12346` for `12345`, because the
/// tolerance is relative.
pub fn math_equal(pred: &str, reference: &str) -> bool {
    if py_strip(pred).to_lowercase() == py_strip(reference).to_lowercase() {
        return true;
    }
    if ["A", "B", "C", "D", "E"].contains(&reference) && choice_answer_clean(pred) == reference {
        return true;
    }
    if let (Some(p), Some(r)) = (parse_digits(pred), parse_digits(reference)) {
        // `numeric_equal(prediction, item)` is `isclose(item, prediction)`.
        return [r / 100.0, r, r * 100.0]
            .into_iter()
            .any(|item| py_isclose(item, p, 1e-4));
    }
    if pred.is_empty() {
        return false;
    }
    structural_equal(pred, reference)
}

/// How EvalScope's GSM8K `acc` (numeric) scores one sample:
/// `math_equal(extract_answer(completion), strip_answer_string(target))`.
pub fn gsm8k_correct(completion: &str, target: &str) -> bool {
    math_equal(&extract_answer(completion), &strip_answer_string(target))
}

// ---------------------------------------------------------------------------
// Multiple choice (parse_answers, single answer)
// ---------------------------------------------------------------------------

/// `(?i)ANSWER\s*:\s*\**\s*`: the marker alone, so a greedy label cannot
/// swallow the next marker.
static ANSWER_MARKER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)ANSWER[\s\x1C-\x1F]*:[\s\x1C-\x1F]*\**[\s\x1C-\x1F]*"));
/// `(A)`, `[A]`, `（A）`, `【A, C】` right after the marker. Only label-shaped
/// content counts, so an echoed `[LETTER]` placeholder does not match.
static BRACKETED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^[\(\[（【][\s\x1C-\x1F]*([A-Za-z\d](?:[\s\x1C-\x1F]*[,，][\s\x1C-\x1F]*[A-Za-z\d])*)[\s\x1C-\x1F]*[\)\]）】]",
    )
});
/// A bare label run right after the marker: `B`, `A, C`, `B, not C`.
static PLAIN_LABEL: LazyLock<Regex> = LazyLock::new(|| re(r"^([A-Za-z\d][A-Za-z\d ,]*)"));
static LABEL_TOKEN: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Za-z\d]+"));

/// `_label_prefix`: the leading part of a capture made only of tokens whose
/// every character is an allowed label. `B, not C` → `B`; `BAD` with options
/// A–D → `BAD` (every letter is allowed), which the single-answer check then
/// rejects.
fn label_prefix<'a>(capture: &'a str, letters: &[char]) -> &'a str {
    let mut end = 0;
    for token in LABEL_TOKEN.find_iter(capture) {
        if !token.as_str().chars().all(|c| letters.contains(&c)) {
            break;
        }
        end = token.end();
    }
    &capture[..end]
}

/// `_last_labelled_answer`: scanning markers from the last one back, the first
/// whose label (bracketed, else plain) has a non-empty allowed prefix.
fn last_labelled_answer<'a>(text: &'a str, letters: &[char]) -> Option<&'a str> {
    let markers: Vec<_> = ANSWER_MARKER.find_iter(text).collect();
    markers.iter().rev().find_map(|marker| {
        let tail = &text[marker.end()..];
        [&*BRACKETED_LABEL, &*PLAIN_LABEL]
            .into_iter()
            .find_map(|label| {
                let capture = label.captures(tail)?.get(1)?.as_str();
                Some(label_prefix(capture, letters)).filter(|p| !p.is_empty())
            })
    })
}

/// EvalScope's single-answer multiple-choice parser (`parse_answers` after
/// PR #1597), as ARC uses it. `letters` are the labels of the sample's
/// options (`A`, `B`, … as printed in the prompt).
///
/// 1. Every `ANSWER:` marker (any case, optional spaces and `**`) is tried
///    from the last one back. After a marker, a bracketed label `(C)` / `[C]`
///    is tried first, then a plain run of letters, digits, spaces and commas.
///    The run is cut to its leading allowed-label tokens. The first marker
///    that leaves a non-empty prefix decides.
/// 2. If no marker does, the fallback is the **last uppercase character** of
///    the whole response, if it is an option. Otherwise there is no answer.
///    The search does not go on past that character: a trailing "I" blocks
///    it.
/// 3. A marker's prefix must be exactly one allowed letter. `A, B` or `AB`
///    means no answer, and the fallback is **not** tried then.
///
/// Labels are matched case-sensitively. `answer: (c)` yields nothing from the
/// marker and falls back to the last uppercase letter, so `Answer: (c)` is
/// read as `A` (from "Answer").
pub fn parse_mcq_answer(response: &str, letters: &[char]) -> Option<char> {
    let Some(matched) = last_labelled_answer(response, letters) else {
        let last_upper = response.chars().rev().find(|c| c.is_uppercase())?;
        return letters.contains(&last_upper).then_some(last_upper);
    };
    let matched = py_strip(matched).trim_end_matches('.');
    let mut chars = matched.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if letters.contains(&c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABCD: &[char] = &['A', 'B', 'C', 'D'];

    #[test]
    fn extract_answer_cases() {
        let cases: &[(&str, &str)] = &[
            // boxed: the last one, brace-balanced
            (r"First \boxed{12}, finally \boxed{18}.", "18"),
            (r"so \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
            (r"\boxed{\dfrac{3}{4}}", r"\frac{3}{4}"),
            (r"$\boxed 7$", "7"),
            (r"truncated \boxed{12", "12"),
            (r"\boxed{\$18.00}", "18"),
            (r"\boxed{1,234}", "1234"),
            (r"\boxed{70,\!000}", "70000"),
            (r"\boxed{-5}", "-5"),
            (r"\boxed{18 \text{ dollars}}", "18"),
            (r"\boxed{18\%}", "18"),
            (r"\boxed{007}", "7"),
            (r"\boxed{3/4}", r"\frac{3}{4}"),
            // "boxed" at the very end: EvalScope returns "" at once.
            ("the word boxed", ""),
            // phrases
            ("The answer is 18.", "18"),
            ("So the answer is **18**.", "**18**"),
            ("The final answer is $18$. I hope it is correct.", "18"),
            ("Therefore the final answer is 42", "42"),
            ("答案是 18\n\n解释", "18"),
            ("ANSWER: 18", "18"),
            ("ANSWER: $1,234.50", "1234.50"),
            // "Answer:" is not the case-sensitive "ANSWER:": last number.
            ("Answer: 18 apples, or 20", "20"),
            // last number over the comma-free text
            ("**18**", "18"),
            ("I had 3 apples and 1,234 pears", "1234"),
            ("The temperature fell to -7 degrees", "-7"),
            ("costs .5 dollars", "0.5"),
            ("18.00", "18"),
            ("It costs $18.00", "18"),
            ("no number here", ""),
            ("", ""),
            // word2number over the whole phrase answer
            ("The answer is five.", "5"),
            ("The answer is 18 or nineteen", "19"),
            // The Math-Shepherd tag is dropped before anything else.
            ("The answer is 1ки8", "18"),
            // one leading ':' and one trailing '.' go
            ("The answer is: 18.", "18"),
        ];
        for (input, want) in cases {
            assert_eq!(extract_answer(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn strip_answer_string_cases() {
        let cases: &[(&str, &str)] = &[
            ("18", "18"),
            ("  18.  ", "18"),
            ("18.000", "18"),
            ("18.50", "18.50"),
            ("$18", "18"),
            ("$18.00", "18"),
            (r"\$18", "18"),
            ("1,234", "1234"),
            ("-1,234,567.89", "-1234567.89"),
            ("3, 1, 2", "1,2,3"),
            ("x=5", "5"),
            ("k = 5", "5"),
            (r"90^\circ", "90"),
            (r"50\%", "50"),
            (r"\text{five}", "5"),
            (r"18 \text{cm}^2", "18"),
            (r"\tfrac12", r"\frac{1}{2}"),
            (r"\sqrt2", r"\sqrt{2}"),
            ("5th grade", "5"),
            ("007", "7"),
            ("-0", "0"),
            (".5", "0.5"),
            ("infinity", r"\infty"),
            ("1 and 2", "12"), // "and" goes before the spaces do
            ("two point five", "2.5"),
            ("one million two thousand", "1003002"),
            ("eight nineteen billion", "27000000000"),
            // w2n raises on "thousand ten" (empty multiplier), then "and"
            // is cut out of "thousand".
            ("thousand ten", "thousten"),
            ("１８", "18"),
            // `re`'s `\s` accepts U+001C but `int()` rejects it: EvalScope's
            // fallback list is printed instead.
            ("12346\u{1c}and", "-1,-1"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(strip_answer_string(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn math_equal_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("18", "18", true),
            ("18.0", "18", true),
            ("1,800", "1800", true),
            ("-5", "-5", true),
            ("-5", "5", false),
            // ×100 / ÷100 quirk
            ("1800", "18", true),
            ("0.18", "18", true),
            ("18%", "0.18", true),
            ("180", "18", false),
            // rel_tol 1e-4 quirk
            ("12346", "12345", true),
            ("12347", "12345", false),
            ("17.999", "18", true),
            ("17.99", "18", false),
            // sympy stand-in: plain numbers and \frac
            (r"\frac{1}{2}", "0.5", true),
            (r"\frac{36}{2}", "18", true),
            (r"-\frac{1}{2}", "-0.5", true),
            (r"\frac{1}{3}", "0.3", false),
            // not numbers on both sides
            ("**18**", "18", false),
            ("", "18", false),
            ("", "", true),
            ("abc", "ABC", true),
            // structure
            ("(1, 2)", "[1,2]", true),
            ("x=18", "18", true),
            ("B", "B", true),
            ("the answer is (b)", "B", true),
        ];
        for (pred, reference, want) in cases {
            assert_eq!(
                math_equal(pred, reference),
                *want,
                "{pred:?} vs {reference:?}"
            );
        }
    }

    #[test]
    fn gsm8k_end_to_end() {
        assert!(gsm8k_correct(r"... so she makes \boxed{18} dollars.", "18"));
        assert!(gsm8k_correct(r"\boxed{\$1,234.00}", "1,234"));
        assert!(gsm8k_correct("The answer is 18%", "0.18"));
        assert!(gsm8k_correct("ANSWER: 1800", "18"));
        assert!(gsm8k_correct(r"\boxed{\frac{1}{2}}", "0.5"));
        assert!(gsm8k_correct("The answer is -3.", "-3"));
        assert!(!gsm8k_correct("So the answer is **18**.", "18"));
        assert!(!gsm8k_correct("I cannot solve this.", "18"));
    }

    #[test]
    fn parse_mcq_cases() {
        let cases: &[(&str, Option<char>)] = &[
            ("ANSWER: B", Some('B')),
            ("ANSWER: B.", Some('B')),
            ("answer:c", None), // "c" is not an option, and no uppercase letter for the fallback
            ("answer: (c)", None),
            // The fallback finds 'A' in "Answer" itself.
            ("Answer: (c)", Some('A')),
            ("ANSWER: (C)", Some('C')),
            ("ANSWER: [D]", Some('D')),
            ("**ANSWER:** D", Some('D')),
            // The colon must follow "Answer" directly: no marker, fallback finds D.
            ("**Answer**: D", Some('D')),
            // The echoed placeholder is skipped for a later real answer...
            (
                "Format: 'ANSWER: [LETTER]'. Thinking... ANSWER: C",
                Some('C'),
            ),
            // ...and for an earlier one when the placeholder comes last.
            ("ANSWER: C\nI was asked for 'ANSWER: [LETTER]'", Some('C')),
            // The last valid marker wins.
            ("ANSWER: A\nWait, no.\nANSWER: D", Some('D')),
            ("ANSWER: A, B", None),
            ("ANSWER: AB", None),
            ("ANSWER: B, not C", Some('B')),
            // Every letter of "BAD" is an option, so it is kept and rejected.
            ("ANSWER: BAD", None),
            // No marker: last uppercase character, if it is an option.
            ("I think the right one is C", Some('C')),
            ("C is right, I think", None),
            // Letter outside the options.
            ("ANSWER: E", None),
            ("nothing at all", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mcq_answer(input, ABCD), *want, "input {input:?}");
        }
        assert_eq!(
            parse_mcq_answer("ANSWER: E", &['A', 'B', 'C', 'D', 'E']),
            Some('E')
        );
        assert_eq!(parse_mcq_answer("ANSWER: E", &['A', 'B', 'C']), None);
    }

    #[test]
    fn python_helpers() {
        assert_eq!(py_float_repr(2.5), "2.5");
        assert_eq!(py_float_repr(18.0), "18.0");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1e15), "1000000000000000.0");
        assert_eq!(py_float_repr(0.0001), "0.0001");
        assert_eq!(py_float_repr(0.00001), "1e-05");
        assert_eq!(py_float("1_000.5"), Some(1000.5));
        assert_eq!(py_float(" -2e3 "), Some(-2000.0));
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float("٣"), Some(3.0));
        assert_eq!(digit_value('𝟘'), Some(0));
        assert_eq!(digit_value('𝟗'), Some(9));
        assert!(py_isclose(12345.0, 12346.0, 1e-4));
    }
}
