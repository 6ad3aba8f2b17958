//! EvalScope 1.14.1's GSM8K grading, which delegates to Math-Verify 0.9.0:
//! the rules re-implemented in Rust for the GSM8K answer space.
//!
//! # What EvalScope 1.14.1 does
//!
//! Read in the installed packages `evalscope==1.14.1` (which pins
//! `math-verify[antlr4_13_2]==0.9.0`; that pulls `latex2sympy2_extended`
//! 1.11.0 and sympy 1.14):
//!
//! - `benchmarks/gsm8k/gsm8k_adapter.py`: `extract_answer(prediction)` from
//!   `metrics/math/parser.py`, metric `{'acc': {'numeric': True}}`.
//! - `metrics/math/parser.py`: `extract_answer` is `_parse(text, 'output')`
//!   and returns its display string. `_parse` strips the text, runs
//!   Math-Verify's `parse` with `[LatexExtractionConfig(boxed_match_priority=0),
//!   ExprExtractionConfig()]`, `extraction_mode='first_match'`,
//!   `fallback_mode='first_match'`, and appends `%` to the display when the
//!   one parsed object is a percentage whose display lost its `%`.
//! - `metrics/nlp/metrics.py` `Accuracy(numeric=True)`:
//!   `compare_answers(extracted, target).matched`. `compare_answers` parses
//!   both again as *fragments* (wrapped in `$…$` unless they start with `$`,
//!   `\(`, `\[`, `\boxed` or `\fbox`) and calls Math-Verify's `verify(gold,
//!   pred, strict=True, float_rounding=6, numeric_precision=15)`. No
//!   tolerance, no ×100 or ÷100.
//! - Math-Verify `parser.py`: the LaTeX and expression regexes and their
//!   priorities, `extract_target_from_pred` (per priority group, the match
//!   ending last is tried; in first-match mode only that one), `extract_latex`,
//!   `extract_expr`; `latex2sympy2_extended/math_normalization.py`
//!   `normalize_latex` (boxed extraction, basic LaTeX clean-up, units, nits,
//!   malformed operators); `grader.py` `sympy_expr_eq` / `sympy_numeric_eq`.
//!
//! Consequences worth knowing (each is in the tests): `\boxed{25001}` is
//! wrong for 25000; `\boxed{7} no wait \boxed{24}` extracts `7,24` (a set,
//! wrong for 24); `16 people … horse #12` extracts 16 (a bare number must
//! follow the start, a space or `=`, so `#12` is no candidate); `The answer
//! is 57500 apples.` extracts 57500 (the "answer" regex, not the whole
//! tail as the 1.12 rules did); `35.0\%` is 0.35 and wrong
//! for 35, while the integer `35\%` is right for 35; `**18**` extracts
//! `18**`, which does not parse and is wrong; `18.0000001` is wrong for 18
//! although floats are compared to 6 decimals (sympy's `Float == Integer`
//! needs the same value).
//!
//! The tests' case table was produced by the real EvalScope 1.14.1; the same
//! rules agreed with it on 3,396 generated responses (every extraction and
//! every verdict), and `scripts/conformance/run.sh` re-checks them.
//!
//! # Where this reproduction is narrower than Math-Verify
//!
//! The regexes, the match order and the LaTeX normalisation are reproduced
//! in full (with `fancy-regex`, which has Python's lookaround and
//! backtracking). The LaTeX *parser* is not: latex2sympy's ANTLR grammar and
//! sympy are replaced by `parse_latex`, which knows numbers (with
//! thousands commas), `\frac`, `\sqrt`, `+ - * / ^ \cdot \times \div`,
//! brackets, unary signs, `%`, top-level `=` chains and top-level comma
//! sets, and gives every other input (letters, functions, matrices,
//! intervals, inequalities) the value "symbolic", which never equals a
//! number. So for a GSM8K reference (an integer):
//!
//! - answers sympy would only prove equal by simplification of symbols
//!   (`x+x` vs `2x`) are out of scope, as are symbolic references;
//! - numbers beyond `i128` and irrational values are compared as `f64`;
//! - numbers side by side follow latex2sympy's mixed-number reading
//!   (`2(3)` is 5, `1 234` is 235, `-2 3` is -5, `12\,000` is 12·0) as far
//!   as it was probed; other implicit products may differ;
//! - EvalScope's 30 s isolation deadline and regex backtracking blow-ups are
//!   not reproduced: `fancy-regex` gives up after its backtrack limit and
//!   that regex then counts as not matching.

use std::borrow::Cow;
use std::sync::LazyLock;

use fancy_regex::Regex;

/// Captures over a `&str`.
type Captures<'t> = fancy_regex::Captures<'t, str>;

/// The EvalScope version, files and rules this module follows (for reports).
pub const PROVENANCE: &str = "EvalScope 1.14.1 (pins math-verify 0.9.0): benchmarks/gsm8k/gsm8k_adapter.py; \
     metrics/math/parser.py extract_answer + compare_answers (Math-Verify parse with LaTeX (boxed first) and \
     expression extraction, first_match; verify strict=True, float_rounding=6; no tolerance, no x100); \
     LaTeX parser limited to numeric answers (see src/extract/math_verify.rs)";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

/// `re.sub` with a function: every match replaced by `f(captures)`. A regex
/// that exceeds the backtrack limit leaves the text as it is.
fn sub(regex: &Regex, text: &str, f: impl Fn(&Captures) -> String) -> String {
    match regex.try_replacen(text, 0, |c: &Captures| f(c)) {
        Ok(out) => out.into_owned(),
        Err(_) => text.to_string(),
    }
}

/// Group `i` of `c`, or `""` when it did not take part.
fn group<'t>(c: &Captures<'t>, i: usize) -> &'t str {
    c.get(i).map_or("", |m| m.as_str())
}

/// Python's `str.strip()` (Unicode whitespace plus U+001C..U+001F).
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

// ---------------------------------------------------------------------------
// Extraction regexes (Math-Verify parser.py)
// ---------------------------------------------------------------------------

/// Which extractor a regex belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Latex,
    Expr,
}

/// One LaTeX environment alternative set, with group names prefixed by
/// `prefix` (`first_`, `next1_` …). `boxed` requires a `\boxed{…}` inside;
/// `plain` also accepts a bare `\frac{n}{m}`.
fn latex_env(prefix: &str, boxed: bool) -> String {
    let percent = format!(r"(?P<{prefix}percent>(?:\\?%|[Pp]ercent|[Pp]ercentage|[Pp]ct))");
    let base = [
        r"(?:[^$]|\$(?!\$))",
        r"(?:[^\\]|\\(?!\]))",
        r"(?:\\[$]|[^\n$])",
        r"(?:[^\\\n]|\\(?!\)))",
        r"[^\n\]\[]",
    ];
    let content: Vec<String> = base
        .iter()
        .map(|c| {
            if boxed {
                format!(r"{c}*?\\boxed\{{{c}+?\}}{c}*?")
            } else {
                format!("{c}+?")
            }
        })
        .collect();
    let mut alternatives = vec![
        format!(
            r"(?<!\\)\$\$(?P<{prefix}latexDisplayDollar>{})(?<!\\)\$\$",
            content[0]
        ),
        format!(
            r"(?<!\\)\\\[(?P<{prefix}latexDisplayBracket>{})(?<!\\)\\\]",
            content[1]
        ),
        format!(
            r"(?<!\\|\d)\$(?P<{prefix}latexInlineDollar>{})(?<!\\)\$",
            content[2]
        ),
        format!(
            r"(?<!\\)\\\((?P<{prefix}latexInlineParenthesis>{})(?<!\\)\\\)",
            content[3]
        ),
        format!(r"\s\[(?P<{prefix}latexInlineBracket>{})\]\s", content[4]),
    ];
    if !boxed {
        let n = r"-?\d+(?:[.,]\d+)?";
        alternatives.push(format!(
            r"(?P<{prefix}latexFraction>-?\\frac\{{{n}\}}\{{{n}\}})"
        ));
    }
    format!(r"(?:(?:{})\s*{percent}?)", alternatives.join("|"))
}

/// The LaTeX regexes with their priorities, in Math-Verify's list order.
fn latex_regexes() -> Vec<(Regex, u32)> {
    let next: String = (1..=5)
        .map(|i| {
            format!(
                r"(?:\s*(?:,?and|,?or|,)\s*{})?",
                latex_env(&format!("next{i}_"), false)
            )
        })
        .collect();
    let envs = format!("(?:{}{next})", latex_env("first_", false));
    let boxed_next: String = (1..=5)
        .map(|i| {
            format!(
                r"\s*(?:\s*(?:,?and|,?or|,)\s*{})?",
                latex_env(&format!("next{i}_"), true)
            )
        })
        .collect();
    let boxed = format!("{}{boxed_next}", latex_env("first_", true));
    // Every LaTeX regex is compiled with DOTALL.
    [
        (format!(r"(?i:final answer is):?\s*{envs}\.?\s?I hope"), 0),
        (format!(r"(?i:final answer.{{0,100}}?)\s+is:?\s*{envs}"), 50),
        (format!(r"(?i:answer):.{{0,50}}?{envs}"), 100),
        (format!(r"(?i:answer).{{0,50}}?{envs}"), 200),
        (envs.clone(), 300),
        (boxed, 0),
        (r"(?P<first_latexBoxed>\\boxed\{.+\})".to_string(), 0),
    ]
    .into_iter()
    .map(|(p, prio)| (re(&format!("(?s){p}")), prio))
    .collect()
}

/// The expression regexes with their priorities, in Math-Verify's order.
fn expr_regexes() -> Vec<(Regex, u32)> {
    let number = concat!(
        r"(?<!\d)(?:",
        r"(?P<integer1>-?[1-9]\d{0,2}(?:[ ,]\d{3})+)(?P<decimal1>\.\d+)?|",
        r"(?P<integer2>-?\d+)(?P<decimal2>[.,]\d+)|",
        r"(?P<decimal3>\.\d+)|",
        r"(?P<integer3>-?\d+)",
        r")(?P<percent>\s*(?:%|[Pp]ercent|\s*[Pp]ercentage|\s*[Pp]ct))?"
    );
    let ops = r"\+\-\*×/\^\(\)÷";
    let chars = format!(r"[\d\.\s{ops}]");
    let expr = format!(r"(?P<expr>-?\(?-?\d{chars}*[{ops}]{chars}+\)?)");
    let currency = "[$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₴₵₶₷₸₹₺₻₼₽₾₿]";
    let prefix = r"(?:^|\s|=)(?:\*\*)?";
    let suffix = r"(?:\*\*)?(?:\.|,|:|\s|\)|\$|$)";
    let expr_anchored = format!("(?:{prefix}{expr}{suffix})");
    let number_anchored = format!("(?:{prefix}{currency}?{number})");
    let either = format!("(?:{expr_anchored}|{number_anchored})");
    [
        (format!(r"(?i:final answer is):?\s*{either}\.?\s?I hope"), 0),
        (format!(r"(?i:final answer.{{0,100}}?)\s+is:?{either}"), 50),
        (
            format!(r"(?i:answer):(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"),
            100,
        ),
        (
            format!(r"(?i:answer)(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"),
            200,
        ),
        (expr_anchored, 300),
        (number_anchored, 300),
    ]
    .into_iter()
    .map(|(p, prio)| (re(&p), prio))
    .collect()
}

/// One extraction regex.
struct Pattern {
    regex: Regex,
    priority: u32,
    target: Target,
}

/// Every regex in priority order (stable within a priority: LaTeX first,
/// then expressions, each in list order), as `extract_target_from_pred`
/// sorts them.
static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let tagged = |list: Vec<(Regex, u32)>, target: Target| {
        list.into_iter().map(move |(regex, priority)| Pattern {
            regex,
            priority,
            target,
        })
    };
    let mut all: Vec<Pattern> = tagged(latex_regexes(), Target::Latex)
        .chain(tagged(expr_regexes(), Target::Expr))
        .collect();
    all.sort_by_key(|p| p.priority);
    all
});

// ---------------------------------------------------------------------------
// Values (the part of sympy GSM8K answers need)
// ---------------------------------------------------------------------------

/// A parsed answer, with the distinctions Math-Verify's comparison makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An atomic exact number (sympy `Integer` or `Rational`), as n/d with
    /// d > 0 and the fraction reduced.
    Exact(i128, i128),
    /// An atomic sympy `Float`.
    Float(f64),
    /// `x%` of an atomic number (latex2sympy's `x * UnevaluatedExpr(1/100)`).
    Percent(Box<Value>),
    /// A compound numeric expression (`18 \cdot 2`, `2^{3}`) and its value;
    /// `true` when a float takes part.
    Compound(f64, bool),
    /// A set or tuple of answers (`7,24`), duplicates removed.
    Set(Vec<Value>),
    /// `lhs = … = rhs`: the first left side and the last right side.
    Equation(Box<Value>, Box<Value>),
    /// Anything with symbols or outside the numeric subset: never equal to a
    /// number.
    Symbolic,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i128
}

/// An exact n/d, reduced; `None` on division by zero or overflow.
fn exact(n: i128, d: i128) -> Option<Value> {
    if d == 0 {
        return None;
    }
    let g = gcd(n, d).max(1);
    let (mut n, mut d) = (n / g, d / g);
    if d < 0 {
        n = n.checked_neg()?;
        d = d.checked_neg()?;
    }
    Some(Value::Exact(n, d))
}

impl Value {
    /// The numeric value, if it has one.
    fn to_f64(&self) -> Option<f64> {
        match self {
            Value::Exact(n, d) => Some(*n as f64 / *d as f64),
            Value::Float(x) | Value::Compound(x, _) => Some(*x),
            Value::Percent(v) => v.to_f64().map(|x| x / 100.0),
            _ => None,
        }
    }

    fn is_float(&self) -> bool {
        match self {
            Value::Float(_) => true,
            Value::Compound(_, f) => *f,
            Value::Percent(v) => v.is_float(),
            _ => false,
        }
    }

    /// `get_pct_val`: the number a percentage was written with.
    fn percent_of(&self) -> Option<&Value> {
        match self {
            Value::Percent(v) => Some(v),
            _ => None,
        }
    }

    /// `convert_to_pct`.
    fn percent(self) -> Value {
        match self {
            v @ (Value::Exact(..) | Value::Float(_)) => Value::Percent(Box::new(v)),
            other => match other.to_f64() {
                Some(x) => Value::Compound(x / 100.0, other.is_float()),
                None => Value::Symbolic,
            },
        }
    }
}

/// Round half to even at 6 decimals, as sympy's `Float.round(6)` compares.
fn round6(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

/// Math-Verify's `sympy_expr_eq(gold, pred)` for the values above
/// (`strict=True`, `float_rounding=6`).
pub fn values_equal(gold: &Value, pred: &Value) -> bool {
    match (gold, pred) {
        (Value::Symbolic, _) | (_, Value::Symbolic) => false,
        // A predicted equation is cut to its right side unless the gold is
        // one too.
        (Value::Equation(gl, gr), Value::Equation(pl, pr)) => {
            values_equal(gl, pl) && values_equal(gr, pr)
        }
        (_, Value::Equation(_, rhs)) => values_equal(gold, rhs),
        (Value::Equation(..), _) => false,
        (Value::Set(g), Value::Set(p)) => {
            g.len() == p.len() && g.iter().all(|x| p.iter().any(|y| values_equal(x, y)))
        }
        (Value::Set(g), p) => g.len() == 1 && values_equal(&g[0], p),
        (g, Value::Set(p)) => p.len() == 1 && values_equal(g, &p[0]),
        (g, p) => numeric_equal(g, p),
    }
}

/// `sympy_numeric_eq` on numbers, as it behaves under sympy 1.14: a float
/// equals an integer only when it has the same value (`18.0` == 18,
/// `18.0000001` != 18); two floats, or a float and a fraction, are rounded
/// to 6 decimals; an integer percentage equals the integer it was written
/// with (`9%` == 9); otherwise the values must be equal.
fn numeric_equal(gold: &Value, pred: &Value) -> bool {
    let atomic = |v: &Value| matches!(v, Value::Exact(..) | Value::Float(_) | Value::Percent(_));
    if gold == pred {
        return true;
    }
    let (Some(g), Some(p)) = (gold.to_f64(), pred.to_f64()) else {
        return false;
    };
    if atomic(gold) || atomic(pred) {
        let atomic_float = |v: &Value| atomic(v) && v.is_float();
        if atomic_float(gold) || atomic_float(pred) {
            // sympy's `Float == Integer` holds only for the same value, and
            // rounding an integer leaves an Integer, so a float is never
            // "close enough" to an integer; two floats (or a float and a
            // fraction) are compared rounded to 6 decimals.
            let integer = |v: &Value| matches!(v, Value::Exact(_, 1));
            if integer(gold) || integer(pred) {
                return g == p;
            }
            return round6(g) == round6(p);
        }
        let int_like = |v: &Value| matches!(v.percent_of().unwrap_or(v), Value::Exact(_, 1));
        if int_like(gold) && int_like(pred) {
            return gold.percent_of().unwrap_or(gold) == pred.percent_of().unwrap_or(pred);
        }
        if let (Value::Exact(a, b), Value::Exact(c, d)) = (gold, pred) {
            return a == c && b == d;
        }
    }
    // Evaluated values compared (sympy's doit / evalf).
    (g - p).abs() <= 1e-12 * g.abs().max(p.abs()).max(1.0)
}

// ---------------------------------------------------------------------------
// LaTeX normalisation (latex2sympy2_extended math_normalization.py)
// ---------------------------------------------------------------------------

/// How `\boxed{}` contents are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boxed {
    /// Every boxed content, joined by commas.
    All,
    /// The last one, plus earlier ones joined by a separator close by.
    Last,
}

/// `extract_boxed_content`: scanning from the right for `\boxed` / `\fbox`.
fn extract_boxed_content(text: &str, mode: Boxed) -> String {
    static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| re(r"\b(and|or)\b|,|;"));
    let chars: Vec<char> = text.chars().collect();
    // Work on char indices, as Python does.
    let rfind = |needle: &str, end: usize| -> Option<usize> {
        let n: Vec<char> = needle.chars().collect();
        (0..=end.saturating_sub(n.len()))
            .rev()
            .find(|&i| i + n.len() <= end && chars[i..i + n.len()] == n[..])
    };
    let slice = |a: usize, b: usize| -> String { chars[a..b].iter().collect() };
    let mut results: Vec<String> = Vec::new();
    let mut current = chars.len();
    let mut last_start: Option<usize> = None;
    let mut max_pos = chars.len();
    loop {
        let b = rfind("\\boxed", current);
        let f = rfind("\\fbox", current);
        let (start, cmd_len) = match (b, f) {
            (None, None) => break,
            (Some(b), Some(f)) if f > b => (f, 5),
            (Some(b), _) => (b, 6),
            (None, Some(f)) => (f, 5),
        };
        let mut next = start + cmd_len;
        while next < max_pos && chars[next].is_whitespace() {
            next += 1;
        }
        if next >= max_pos {
            break;
        }
        if chars[next] != '{' {
            if results.is_empty() {
                results.push(slice(next, chars.len()));
            }
            break;
        }
        // The matching closing brace before max_pos.
        let mut depth = 1;
        let mut close = None;
        let mut i = next;
        while i + 1 < max_pos {
            i += 1;
            if chars[i] == '{' {
                depth += 1;
            } else if chars[i] == '}' {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
        }
        let Some(close) = close else {
            if results.is_empty() {
                results.push(slice(next, chars.len()));
            }
            break;
        };
        let content = py_strip(&slice(next + 1, close)).to_string();
        if mode == Boxed::Last
            && let Some(last) = last_start
        {
            let between = slice((close + 1).min(last), last);
            let previous = results.last().cloned().unwrap_or_default();
            let near = between.chars().count() < 10;
            let separated = content != previous
                && between.chars().count() < 70
                && SEPARATOR.is_match(&between).unwrap_or(false);
            if !near && !separated {
                break;
            }
        }
        if results.last() != Some(&content) {
            results.push(content);
        }
        last_start = Some(start);
        max_pos = start;
        current = start;
    }
    if results.is_empty() {
        return text.to_string();
    }
    results.reverse();
    results.join(",")
}

/// The unit words latex2sympy strips from the end of an answer, as one
/// alternation (its list, regex syntax included: `.` in `a .` is any
/// character).
const UNITS: &str = concat!(
    "integerpoint|feet|sue|digit|pound|meal|edge|student|children ticket|multiple|",
    "east|degree|mph|kmph|ft|m square| m east|sq m|deg|mile|q .|monkey|prime|ratio|",
    "profit of rs|rd|o|gm|p . m|lb|tile|per|dm|lt|gain|ab|way|west|a .|b .|c .|d .|",
    "e .|f .|g .|h .|t|h|no change|men|soldier|pie|bc|excess|st|inches|noon|cent|by|",
    "gal|kmh|c|acre|rise|a . m|th|π r 2|sq|mark|l|toy|coin|sq . m|gallon|° f|profit|",
    "minw|yr|women|am|pm|hr|cu cm|square|v â € ™|are|rupee|rounds|cubic|cc|mtr|s|ohm|",
    "number|kmph|day|hour|minute|min|second|man|woman|sec|cube|mt|sq inch|mp|∏ cm ³|",
    "hectare|more|sec|unit|cu . m|cm 2|rs .|rs|kg|g|month|km|m|cm|mm|apple|liter|",
    "loss|yard|pure|year|increase|decrease|d|less|Surface|litre|pi sq m|s .|metre|",
    "meter|inch",
);

static LEFT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\\m?left(\\\{|\{|\\\||\||\[|\(|\\rbracl|\\lgroup|\\lbrace|\\lbrack|\\vert|\\lvert|\\lceil|\\lfloor|\\vert|\\lvert|\\langle|\\llcorner|\\ulcorner)",
    )
});
static RIGHT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\\m?right(\\\}|\}|\\\||\||\]|\)|\\rbrack|\\rgroup|\\rbrace|\\rbrack|\\vert|\\rvert|\\rceil|\\rfloor|\\vert|\\rvert|\\rangle|\\lrcorner|\\urcorner)",
    )
});
static PERMUTATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"\(([a-zA-Z0-9+\-*/\\ ]+?)\)_\{([a-zA-Z0-9+\-*/\\ ]+?)\}"));
static TO_REMOVE: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"\\mathrm\{th\}|\\!\s*|\\text\s*\{\s*\}|\\\$|\$|(?<!\\)["']|\\displaystyle"#)
});
/// `to_replace_patterns`: (pattern, literal replacement), tried as one
/// alternation in this order.
const REPLACEMENTS: &[(&str, &str)] = &[
    (r"\\math(?:rm|it|bf)", r"\text"),
    (r"\\text(?:normal|bf|it|rm)", r"\text"),
    (r"\\(?:d|t|c)frac", r"\frac"),
    (r"\s\.", r" 0."),
    (r"\{\.", r"{0."),
    (r"~=", r"\approx"),
    (r"\s*\{\s*,\s*\}", r","),
    (r"(?<![a-zA-Z])(,?\s*(?:and|or))(?![a-zA-Z])", r","),
    (r"(,?\s*\\text\{\s*(?:and|or)\s*\})", r","),
    (r"(?<!\\)\\\s", r" "),
    (r"infinity", r"\infty"),
    (r",?(\\ldots)", r" "),
    (r"\s*\bpercentage\b", r"\%"),
    (r"\\text\{percentage\}", r"%"),
    (r"\s*\bpercent\b", r"\%"),
    (r"\\text\{percent\}", r"%"),
    (r"\s*\bpct\b", r"\%"),
    (r"\\text\{pct\}", r"%"),
    (r"((?<!\\)inf(?!inity))", r"\infty"),
    (r" sqrt", r"\sqrt"),
];
static REPLACE: LazyLock<Regex> = LazyLock::new(|| {
    let alternation: Vec<String> = REPLACEMENTS
        .iter()
        .enumerate()
        .map(|(i, (p, _))| format!("(?P<r{i}>{p})"))
        .collect();
    re(&alternation.join("|"))
});
static COMMAND_SLASH: LazyLock<Regex> = LazyLock::new(|| re(r"\\\\(?=[a-zA-Z])"));
static UNIT_SUPERSCRIPT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\\(?:text|mbox)\{.*?\})(\^\d|\{\^\d\})?$"));
static UNITS_RE: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(\d|\}}|\s)\s*(?:(?:{})(?:s|es)?)\s*$", UNITS)));
static MALFORMED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (re(r"\^\s?\((.*?)\)"), "^{$1}"),
        (re(r"sqrt\s?\((.*?)\)"), r"\sqrt{$1}"),
        (re(r"\\frac\s?(\d)\s?(\d+)"), r"\frac{$1}{$2}"),
        (re(r"\\log_\s?(\d)\s?(\d+)"), r"\log_{$1}{$2}"),
        (re(r"\\frac\s?\{(.*?)\}\s?(\d)"), r"\frac{$1}{$2}"),
        (re(r"\\frac\s?(\d)\s?\{(.*?)\}"), r"\frac{$1}{$2}"),
        (re(r"\\sqrt\s?(\d)"), r"\sqrt{$1}"),
    ]
});

/// Expand `$1`/`$2` in a replacement template.
fn expand(template: &str, c: &Captures) -> String {
    template
        .replace("$1", group(c, 1))
        .replace("$2", group(c, 2))
}

/// `_fix_sqrt`: `\sqrt3` → `\sqrt{3}`.
fn fix_sqrt(text: &str) -> String {
    if !text.contains("\\sqrt") {
        return text.to_string();
    }
    let mut parts = text.split("\\sqrt");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let part = part.trim_start();
        match part.chars().next() {
            Some(c) if c != '{' && c != '[' => {
                out.push_str(&format!("\\sqrt{{{c}}}{}", &part[c.len_utf8()..]));
            }
            _ => {
                out.push_str("\\sqrt");
                out.push_str(part);
            }
        }
    }
    out
}

/// `_fix_fracs`: `\frac12` → `\frac{1}{2}`, `\frac1{2}` → `\frac{1}{2}`.
fn fix_fracs(text: &str) -> String {
    let mut parts = text.split("\\frac");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let part = part.trim_start();
        out.push_str("\\frac");
        let chars: Vec<char> = part.chars().collect();
        if chars.first() == Some(&'{') {
            out.push_str(part);
        } else if chars.len() < 2 {
            return text.to_string();
        } else {
            let (a, b) = (chars[0], chars[1]);
            let rest: String = chars[2..].iter().collect();
            if b != '{' {
                out.push_str(&format!("{{{a}}}{{{b}}}{rest}"));
            } else {
                out.push_str(&format!("{{{a}}}{b}{rest}"));
            }
        }
    }
    out
}

/// `_fix_a_slash_b`: `3/4` → `\frac{3}{4}` for plain integers.
fn fix_a_slash_b(text: &str) -> String {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() != 2 {
        return text.to_string();
    }
    // `int()` then `"{}/{}".format(a, b) == text`: canonical integers only.
    let canonical = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && s != "-0"
    };
    if canonical(parts[0]) && canonical(parts[1]) {
        format!("\\frac{{{}}}{{{}}}", parts[0], parts[1])
    } else {
        text.to_string()
    }
}

/// `normalize_latex` with Math-Verify's extraction config (basic LaTeX,
/// units, malformed operators, nits; no equation splitting).
fn normalize_latex(text: &str, boxed: Boxed) -> String {
    let mut text = extract_boxed_content(text, boxed);
    // basic_latex
    text = text
        .replace(r"\mathrm{T}", "T")
        .replace(r"\mathrm{d}", "d")
        .replace(r"{\rm d}", "d")
        .replace(r"\left[\begin{matrix}", r"\begin{bmatrix}")
        .replace(r"\end{matrix}\right]", r"\end{bmatrix}");
    text = sub(&LEFT, &text, |c| group(c, 1).to_string());
    text = sub(&RIGHT, &text, |c| group(c, 1).to_string());
    text = sub(&PERMUTATION, &text, |c| {
        format!(
            "\\frac{{({a})!}}{{(({a})-({b}))!}}",
            a = group(c, 1),
            b = group(c, 2)
        )
    });
    text = sub(&TO_REMOVE, &text, |_| String::new());
    text = sub(&REPLACE, &text, |c| {
        (0..REPLACEMENTS.len())
            .find(|i| c.name(&format!("r{i}")).is_some())
            .map_or(String::new(), |i| REPLACEMENTS[i].1.to_string())
    });
    text = text.replace(['\n', '\t'], " ");
    if !text.contains("matrix") {
        text = sub(&COMMAND_SLASH, &text, |_| "\\".to_string());
    }
    // units
    let stripped = sub(&UNIT_SUPERSCRIPT, &text, |_| String::new());
    let stripped = py_strip(&stripped);
    if !stripped.is_empty() && stripped != text {
        text = stripped.to_string();
    }
    for _ in 0..2 {
        let t = sub(&UNITS_RE, &text, |c| group(c, 1).to_string());
        if !t.is_empty() && t != text {
            text = t;
        }
    }
    // nits
    if text.starts_with('.') {
        text = format!("0{text}");
    }
    if text == "0.5" {
        text = r"\frac{1}{2}".to_string();
    }
    // malformed operators
    for (regex, template) in MALFORMED.iter() {
        text = sub(regex, &text, |c| expand(template, c));
    }
    text = text.replace(" sqrt", "\\sqrt");
    text = fix_sqrt(&text);
    text = fix_fracs(&text);
    text = fix_a_slash_b(&text);
    py_strip(&text).to_string()
}

// ---------------------------------------------------------------------------
// LaTeX parsing (a numeric subset of latex2sympy)
// ---------------------------------------------------------------------------

/// A token of the numeric LaTeX subset.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A number as written (thousands commas allowed in groups of three).
    Num(String),
    Op(char),
    Open(char),
    Close(char),
    Comma,
    Eq,
    Percent,
    /// `\frac`, `\sqrt`, `\cdot` …
    Command(String),
    /// A letter or anything else outside the subset.
    Other,
}

fn tokenize(text: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            // Thousands groups: `,ddd` not followed by another digit.
            while i + 3 < chars.len()
                && chars[i] == ','
                && chars[i + 1..=i + 3].iter().all(|d| d.is_ascii_digit())
                && !chars.get(i + 4).is_some_and(|d| d.is_ascii_digit())
            {
                i += 4;
            }
            if i < chars.len() && chars[i] == '.' {
                if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    // `18.` does not parse in latex2sympy.
                    return None;
                }
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '\\' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                // `\%`, `\{`, `\,` …
                let &next = chars.get(i)?;
                i += 1;
                out.push(match next {
                    '%' => Tok::Percent,
                    '{' => Tok::Open('{'),
                    '}' => Tok::Close('}'),
                    ',' | ';' | ' ' | '!' | ':' => continue,
                    _ => Tok::Other,
                });
            } else {
                let name: String = chars[start..i].iter().collect();
                out.push(match name.as_str() {
                    "cdot" | "times" | "ast" => Tok::Op('*'),
                    "div" => Tok::Op(':'),
                    "left" | "right" | "quad" | "qquad" => continue,
                    _ => Tok::Command(name),
                });
            }
        } else {
            i += 1;
            out.push(match c {
                '+' | '-' | '*' | '/' | '^' => Tok::Op(c),
                '×' | '·' => Tok::Op('*'),
                '÷' => Tok::Op(':'),
                '(' | '[' | '{' => Tok::Open(c),
                ')' | ']' | '}' => Tok::Close(c),
                ',' => Tok::Comma,
                '=' => Tok::Eq,
                '%' => Tok::Percent,
                _ => Tok::Other,
            });
        }
    }
    Some(out)
}

struct LatexParser {
    toks: Vec<Tok>,
    pos: usize,
    /// Nesting of [`LatexParser::unary`], which every recursive path goes
    /// through; bounded so a response of thousands of nested braces or
    /// minus signs cannot overflow the stack (latex2sympy raises a
    /// RecursionError there, which Math-Verify treats as no parse).
    depth: usize,
}

/// Deepest nesting the parser follows before giving up on the input.
const MAX_DEPTH: usize = 200;

/// latex2sympy raises on this input (as opposed to parsing it to a symbol).
#[derive(Debug)]
struct ParseErr;

type PResult = Result<Value, ParseErr>;

fn num_value(text: &str) -> Option<Value> {
    let plain = text.replace(',', "");
    if plain.contains('.') {
        let x: f64 = plain.parse().ok()?;
        Some(Value::Float(x))
    } else {
        let n: i128 = plain.parse().ok()?;
        Some(Value::Exact(n, 1))
    }
}

/// Arithmetic on values; exact stays exact, anything else becomes a
/// compound value. `atomic` results (sympy evaluates them at once) stay
/// atomic.
fn arith(op: char, a: &Value, b: &Value, atomic: bool) -> Value {
    if matches!(a, Value::Symbolic) || matches!(b, Value::Symbolic) {
        return Value::Symbolic;
    }
    if let (Value::Exact(n1, d1), Value::Exact(n2, d2)) = (a, b) {
        let r = match op {
            '+' | '-' => {
                let sign = if op == '+' { 1 } else { -1 };
                n1.checked_mul(*d2)
                    .zip(n2.checked_mul(*d1).and_then(|x| x.checked_mul(sign)))
                    .and_then(|(x, y)| x.checked_add(y))
                    .zip(d1.checked_mul(*d2))
                    .and_then(|(n, d)| exact(n, d))
            }
            '*' => n1
                .checked_mul(*n2)
                .zip(d1.checked_mul(*d2))
                .and_then(|(n, d)| exact(n, d)),
            '/' | ':' => n1
                .checked_mul(*d2)
                .zip(d1.checked_mul(*n2))
                .and_then(|(n, d)| exact(n, d)),
            '^' if *d2 == 1 && (0..=64).contains(n2) => {
                let e = *n2 as u32;
                n1.checked_pow(e)
                    .zip(d1.checked_pow(e))
                    .and_then(|(n, d)| exact(n, d))
            }
            _ => None,
        };
        if let Some(v) = r {
            return if atomic {
                v
            } else {
                Value::Compound(v.to_f64().unwrap_or(f64::NAN), false)
            };
        }
    }
    let (Some(x), Some(y)) = (a.to_f64(), b.to_f64()) else {
        return Value::Symbolic;
    };
    let v = match op {
        '+' => x + y,
        '-' => x - y,
        '*' => x * y,
        '/' | ':' => x / y,
        '^' => x.powf(y),
        _ => return Value::Symbolic,
    };
    if !v.is_finite() {
        return Value::Symbolic;
    }
    let float = a.is_float() || b.is_float();
    if atomic && float {
        Value::Float(v)
    } else {
        Value::Compound(v, float)
    }
}

impl LatexParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// A top-level answer: comma-separated items, each an `=` chain.
    fn answer(&mut self) -> PResult {
        let mut items = vec![self.relation()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            items.push(self.relation()?);
        }
        if self.pos != self.toks.len() {
            return Err(ParseErr);
        }
        if items.len() == 1 {
            return Ok(items.pop().expect("one item"));
        }
        let mut set: Vec<Value> = Vec::new();
        for v in items {
            if !set.contains(&v) {
                set.push(v);
            }
        }
        Ok(Value::Set(set))
    }

    fn relation(&mut self) -> PResult {
        let first = self.sum()?;
        let mut last = None;
        while self.peek() == Some(&Tok::Eq) {
            self.pos += 1;
            last = Some(self.sum()?);
        }
        Ok(match last {
            Some(rhs) => Value::Equation(Box::new(first), Box::new(rhs)),
            None => first,
        })
    }

    fn sum(&mut self) -> PResult {
        let mut acc = self.product()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.product()?;
            acc = arith(op, &acc, &rhs, false);
        }
        Ok(acc)
    }

    fn product(&mut self) -> PResult {
        let mut acc = self.juxtaposed()?;
        while let Some(Tok::Op(op @ ('*' | '/' | ':'))) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.juxtaposed()?;
            // `\div` and `/` evaluate at once in latex2sympy; `\cdot` and
            // `\times` stay products.
            acc = arith(op, &acc, &rhs, op != '*');
        }
        Ok(acc)
    }

    /// Factors written side by side, which bind tighter than `\cdot`
    /// (`2 \cdot 3 4` is 2·7). Two exact numbers are a mixed number
    /// (`2 3` is 5, `-2 3` is -5, `2(3)` is 5) unless the second is 0
    /// (`12 000` is 12·0); with a float they multiply; anything with a
    /// symbol is symbolic.
    fn juxtaposed(&mut self) -> PResult {
        let mut acc = self.unary()?;
        while let Some(Tok::Num(_) | Tok::Open('(' | '[') | Tok::Command(_) | Tok::Other) =
            self.peek()
        {
            let rhs = self.unary()?;
            acc = match (&acc, &rhs) {
                (Value::Exact(..), Value::Exact(0, _)) => arith('*', &acc, &rhs, false),
                (Value::Exact(n, _), Value::Exact(..)) => {
                    arith(if *n < 0 { '-' } else { '+' }, &acc, &rhs, true)
                }
                _ if acc.to_f64().is_some() && rhs.to_f64().is_some() => {
                    arith('*', &acc, &rhs, false)
                }
                _ => Value::Symbolic,
            };
        }
        Ok(acc)
    }

    fn unary(&mut self) -> PResult {
        if self.depth >= MAX_DEPTH {
            return Err(ParseErr);
        }
        self.depth += 1;
        let v = self.unary_inner();
        self.depth -= 1;
        v
    }

    fn unary_inner(&mut self) -> PResult {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(match self.unary()? {
                    Value::Exact(n, d) => Value::Exact(n.checked_neg().ok_or(ParseErr)?, d),
                    Value::Float(x) => Value::Float(-x),
                    Value::Compound(x, f) => Value::Compound(-x, f),
                    // `-18\%` is `-1*18*(1/100)`: no longer an atomic percentage.
                    Value::Percent(v) => {
                        Value::Compound(-v.to_f64().unwrap_or(0.0) / 100.0, v.is_float())
                    }
                    _ => Value::Symbolic,
                })
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> PResult {
        let base = self.postfix()?;
        if self.peek() == Some(&Tok::Op('^')) {
            self.pos += 1;
            let exp = self.postfix()?;
            return Ok(arith('^', &base, &exp, false));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> PResult {
        let mut value = self.primary()?;
        while self.peek() == Some(&Tok::Percent) {
            self.pos += 1;
            value = value.percent();
        }
        Ok(value)
    }

    /// `{…}` as a group (after `\frac`, `^`, `\sqrt`), or a single number.
    fn braced(&mut self) -> PResult {
        match self.next() {
            Some(Tok::Open('{')) => {
                let inner = self.sum()?;
                match self.next() {
                    Some(Tok::Close('}')) => Ok(inner),
                    _ => Err(ParseErr),
                }
            }
            Some(Tok::Num(n)) => num_value(&n).ok_or(ParseErr),
            _ => Err(ParseErr),
        }
    }

    fn primary(&mut self) -> PResult {
        let at_start = self.pos == 0;
        match self.next() {
            Some(Tok::Num(n)) => Ok(num_value(&n).unwrap_or(Value::Symbolic)),
            Some(Tok::Open(open)) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let inner = self.sum()?;
                match self.next() {
                    Some(Tok::Close(c)) if c == close => {}
                    _ => return Err(ParseErr),
                }
                // latex2sympy reads a whole answer in braces, `{18}`, as a set.
                if open == '{' && at_start && self.pos == self.toks.len() {
                    return Ok(Value::Set(vec![inner]));
                }
                Ok(inner)
            }
            Some(Tok::Command(name)) => match name.as_str() {
                "frac" => {
                    let num = self.braced()?;
                    let den = self.braced()?;
                    Ok(arith('/', &num, &den, true))
                }
                "sqrt" => {
                    let inner = self.braced()?;
                    Ok(match inner.to_f64() {
                        Some(x) if x >= 0.0 => Value::Compound(x.sqrt(), inner.is_float()),
                        _ => Value::Symbolic,
                    })
                }
                "text" | "mbox" | "mathrm" => {
                    // `\text{18}` is the number 18; other text is a symbol.
                    Ok(match self.group_tokens()?.as_slice() {
                        [Tok::Num(n)] => num_value(n).unwrap_or(Value::Symbolic),
                        _ => Value::Symbolic,
                    })
                }
                _ => Ok(Value::Symbolic),
            },
            Some(Tok::Other) => Ok(Value::Symbolic),
            _ => Err(ParseErr),
        }
    }

    /// Skip a `{…}` group, returning the tokens inside.
    fn group_tokens(&mut self) -> Result<Vec<Tok>, ParseErr> {
        if self.next() != Some(Tok::Open('{')) {
            return Err(ParseErr);
        }
        let start = self.pos;
        let mut depth = 1;
        while depth > 0 {
            match self.next() {
                Some(Tok::Open('{')) => depth += 1,
                Some(Tok::Close('}')) => depth -= 1,
                Some(_) => {}
                None => return Err(ParseErr),
            }
        }
        Ok(self.toks[start..self.pos - 1].to_vec())
    }
}

/// latex2sympy on a normalised string, for the numeric subset: `Ok(value)`
/// (possibly [`Value::Symbolic`]) or `Err` where latex2sympy raises.
fn parse_latex(latex: &str) -> Option<Value> {
    let toks = tokenize(latex)?;
    if toks.is_empty() {
        return None;
    }
    let mut p = LatexParser {
        toks,
        pos: 0,
        depth: 0,
    };
    p.answer().ok()
}

/// sympy `parse_expr(expr, evaluate=False)` on an expression match
/// (`3+4`, `2.5*2`): Python arithmetic with `^` already turned into `**`.
fn parse_python_expr(expr: &str) -> Option<Value> {
    // Python syntax: `**` is power; a leading zero (`007`) is a syntax
    // error; `×`/`÷` are not operators.
    let text = expr.replace('\n', " ").replace('^', "**");
    let mut latexish = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '*' && chars.get(i + 1) == Some(&'*') {
            latexish.push('^');
            i += 2;
            continue;
        }
        if !(c.is_ascii_digit() || " .+-*/()".contains(c)) {
            return None;
        }
        latexish.push(c);
        i += 1;
    }
    // Reject Python syntax errors the subset parser would accept.
    static BAD: LazyLock<Regex> =
        LazyLock::new(|| re(r"(?<![\d.])0\d|\d\s+\d|\)\s*[\d(]|\d\s*\(|[+\-*/^]\s*$|\.\s*$"));
    if BAD.is_match(&latexish).unwrap_or(true) {
        return None;
    }
    let toks = tokenize(&latexish)?;
    if toks.iter().any(|t| matches!(t, Tok::Comma)) {
        return None;
    }
    let mut p = LatexParser {
        toks,
        pos: 0,
        depth: 0,
    };
    let v = p.sum().ok()?;
    if p.pos != p.toks.len() {
        return None;
    }
    // evaluate=False keeps every operation unevaluated: only a bare
    // (bracketed) number stays atomic.
    let compound =
        text.contains(['+', '*', '/']) || text.trim_start().trim_start_matches('-').contains('-');
    Some(if compound {
        Value::Compound(v.to_f64()?, v.is_float())
    } else {
        v
    })
}

// ---------------------------------------------------------------------------
// Extraction (extract_target_from_pred, first_match)
// ---------------------------------------------------------------------------

/// The non-empty text of the first group whose name starts with `prefix`.
fn first_named<'t>(regex: &Regex, c: &Captures<'t>, prefix: &str) -> Option<(&'t str, String)> {
    regex.capture_names().flatten().find_map(|name| {
        if !name.starts_with(prefix) {
            return None;
        }
        c.name(name)
            .filter(|m| !m.as_str().is_empty())
            .map(|m| (m.as_str(), name.to_string()))
    })
}

/// `extract_latex`: (parsed value or `None`, normalised display).
fn extract_latex(regex: &Regex, c: &Captures) -> (Option<Value>, String) {
    let mut groups = Vec::new();
    if let Some(g) = first_named(regex, c, "first_latex") {
        groups.push(g);
    }
    for i in 1..=5 {
        if let Some(g) = first_named(regex, c, &format!("next{i}_latex")) {
            groups.push(g);
        }
    }
    if groups.is_empty() {
        return (None, String::new());
    }
    let mut values = Vec::new();
    let mut strings = Vec::new();
    for (latex, name) in &groups {
        let (prefix, kind) = name.split_once('_').unwrap_or((name.as_str(), ""));
        let is_percent = c
            .name(&format!("{prefix}_percent"))
            .is_some_and(|m| !m.as_str().is_empty());
        let boxed = if kind == "latexBoxed" {
            Boxed::Last
        } else {
            Boxed::All
        };
        let normalized = normalize_latex(latex, boxed);
        let parsed = parse_latex(&normalized).map(|v| if is_percent { v.percent() } else { v });
        strings.push(normalized);
        values.push(parsed);
    }
    if values.len() > 1 && values.iter().all(Option::is_some) {
        let mut set: Vec<Value> = Vec::new();
        for v in values.into_iter().flatten() {
            let items = match v {
                Value::Set(items) => items,
                other => vec![other],
            };
            for item in items {
                if !set.contains(&item) {
                    set.push(item);
                }
            }
        }
        return (Some(Value::Set(set)), strings.join(" and "));
    }
    (values.swap_remove(0), strings.swap_remove(0))
}

/// `extract_expr`: a number (commas and spaces of the integer part dropped,
/// leading zeros dropped, a decimal comma read as a point) or an expression.
fn extract_expr(regex: &Regex, c: &Captures) -> (Option<Value>, String) {
    let integer = first_named(regex, c, "integer").map_or("", |(s, _)| s);
    let decimal = first_named(regex, c, "decimal").map_or("", |(s, _)| s);
    let percent = c.name("percent").is_some_and(|m| !m.as_str().is_empty());
    if !integer.is_empty() || !decimal.is_empty() {
        let mut int: String = integer.chars().filter(|c| *c != ',' && *c != ' ').collect();
        int = int.trim_start_matches('0').to_string();
        if int.is_empty() {
            int = "0".into();
        }
        let number = format!("{int}{}", decimal.replace(',', "."));
        let value = num_value(&number).map(|v| if percent { v.percent() } else { v });
        return (value, number);
    }
    let expr = c.name("expr").map_or("", |m| m.as_str());
    if expr.is_empty() {
        return (None, String::new());
    }
    (parse_python_expr(expr), expr.to_string())
}

/// Math-Verify `parse(text, [Latex(boxed first), Expr], first_match,
/// first_match)`: (the parsed value, if any; the fallback display string).
fn mv_parse(text: &str) -> (Option<Value>, String) {
    for group in PATTERNS.chunk_by(|a, b| a.priority == b.priority) {
        // The match ending last wins; among those, the one starting first;
        // ties keep the earlier pattern.
        let mut best: Option<(usize, usize, &Pattern, Captures)> = None;
        for pattern in group {
            for c in pattern.regex.captures_iter(text) {
                // Past the backtrack limit: the rest of this regex's matches
                // are lost (see the module docs).
                let Ok(c) = c else { break };
                let m = c.get(0).expect("group 0");
                let (start, end) = (m.start(), m.end());
                let better = match &best {
                    None => true,
                    Some((e, s, ..)) => end > *e || (end == *e && start < *s),
                };
                if better {
                    best = Some((end, start, pattern, c));
                }
            }
        }
        // First-match mode: only the best match is tried, parsed or not.
        if let Some((_, _, pattern, c)) = best {
            return match pattern.target {
                Target::Latex => extract_latex(&pattern.regex, &c),
                Target::Expr => extract_expr(&pattern.regex, &c),
            };
        }
    }
    (None, String::new())
}

static SCIENTIFIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+$"));

/// EvalScope's `_parse(text, mode)`: the parsed value and the display string.
fn es_parse(text: &str, fragment: bool) -> (Option<Value>, String) {
    let text = py_strip(text);
    if text.is_empty() {
        return (None, String::new());
    }
    let scientific = SCIENTIFIC.is_match(text).unwrap_or(false);
    let mut input: Cow<str> = Cow::Borrowed(text);
    if scientific {
        input = Cow::Owned(format!("${}$", text.replace('e', "E")));
    }
    let wrapped = ["$", "\\(", "\\[", "\\boxed", "\\fbox"]
        .iter()
        .any(|p| input.starts_with(p));
    if fragment && !wrapped {
        input = Cow::Owned(format!("${input}$"));
    }
    let (value, mut display) = mv_parse(&input);
    if scientific {
        display = text.to_string();
    }
    if let Some(v) = &value
        && !display.contains('%')
        && v.percent_of().is_some()
    {
        display.push('%');
    }
    (value, display)
}

/// EvalScope 1.14.1's `extract_answer(completion)` for GSM8K: the display
/// string of the first match Math-Verify tries (`""` when nothing matches).
pub fn extract_answer(completion: &str) -> String {
    es_parse(completion, false).1
}

/// EvalScope 1.14.1's `compare_answers(prediction, reference).matched`, with
/// both sides parsed as fragments.
pub fn compare_answers(prediction: &str, reference: &str) -> bool {
    let (Some(gold), _) = es_parse(reference, true) else {
        return false;
    };
    let (Some(pred), _) = es_parse(prediction, true) else {
        return false;
    };
    values_equal(&gold, &pred)
}

/// The display string Math-Verify gives `text` parsed as a fragment (wrapped
/// in `$…$` unless delimited already), as EvalScope's `compare_answers`
/// parses both sides: the normalised LaTeX (`normalize_latex`: boxed
/// content, units, `\left`, `0.5` -> `\frac{1}{2}` …) of the first match.
/// Empty when nothing matches. The MATH-500 recipe compares these with
/// [`super::latex_eq`], whose parser covers what this module's numeric one
/// does not.
pub fn fragment_display(text: &str) -> String {
    es_parse(text, true).1
}

/// How EvalScope 1.14.1's GSM8K `acc` scores one sample.
pub fn gsm8k_correct(completion: &str, target: &str) -> bool {
    compare_answers(&extract_answer(completion), target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_cases() {
        assert_eq!(
            normalize_latex(r"\boxed{7} no wait \boxed{24}", Boxed::All),
            "7,24"
        );
        assert_eq!(normalize_latex(r"18 \text{ dollars}", Boxed::All), "18");
        assert_eq!(normalize_latex(".5", Boxed::All), r"\frac{1}{2}");
        assert_eq!(normalize_latex("3/4", Boxed::All), r"\frac{3}{4}");
        assert_eq!(normalize_latex(r"\dfrac12", Boxed::All), r"\frac{1}{2}");
        assert_eq!(normalize_latex(r"\$18", Boxed::All), "18");
    }

    #[test]
    fn deep_nesting_is_no_parse_not_a_stack_overflow() {
        let deep = format!("{}1{}", "{".repeat(5000), "}".repeat(5000));
        assert_eq!(parse_latex(&deep), None);
        let minus = format!("{}1", "-".repeat(5000));
        assert_eq!(parse_latex(&minus), None);
        assert!(!gsm8k_correct(&format!("\\boxed{{{deep}}}"), "1"));
    }

    #[test]
    fn latex_values() {
        assert_eq!(parse_latex("1,234"), Some(Value::Exact(1234, 1)));
        assert_eq!(
            parse_latex("7,24"),
            Some(Value::Set(vec![Value::Exact(7, 1), Value::Exact(24, 1)]))
        );
        assert_eq!(parse_latex("18."), None);
        assert_eq!(parse_latex(r"\frac{36}{2}"), Some(Value::Exact(18, 1)));
        assert_eq!(parse_latex(r"18 \div 2"), Some(Value::Exact(9, 1)));
        // latex2sympy's mixed numbers (values probed with latex2sympy2_extended 1.11).
        assert_eq!(parse_latex("2(3)"), Some(Value::Exact(5, 1)));
        assert_eq!(parse_latex("-2 3"), Some(Value::Exact(-5, 1)));
        assert_eq!(parse_latex(r"12\,5"), Some(Value::Exact(17, 1)));
        assert_eq!(parse_latex(r"12\,000"), Some(Value::Compound(0.0, false)));
        assert_eq!(
            parse_latex(r"2 \cdot 3 4"),
            Some(Value::Compound(14.0, false))
        );
        assert_eq!(
            parse_latex(r"35.0\%"),
            Some(Value::Percent(Box::new(Value::Float(35.0))))
        );
    }
}
