//! Equivalence of LaTeX answers (MATH-500): `\boxed{}` extraction, a small
//! LaTeX parser to an expression tree, and comparison by value.
//!
//! # What it does
//!
//! [`last_boxed`] takes the content of the last `\boxed{…}` or `\fbox{…}`
//! (braces nested to any depth). [`equivalent`] decides whether two answers
//! are the same mathematical object, in one of three [`Mode`]s:
//!
//! 1. The text is cleaned ([`clean`]): `$…$`, `\(…\)`, `\left`/`\right`,
//!    `\!`, `\,`, `\;`, `\displaystyle`, `\$`, degree signs (`^\circ`,
//!    `^{\circ}`, `°`) and units (`\text{ cm}`, `\mbox{ inches}^2`, a unit
//!    word at the end) go; `\dfrac`/`\tfrac` become `\frac`; `\frac43`,
//!    `\frac 59`, `\sqrt2` get their braces (TeX takes one token, so
//!    `\sqrt51` is `\sqrt{5}1`); thousands commas (`10,\!080`, `58,500`) are
//!    read as one number when the whole answer is that number.
//! 2. It is parsed ([`parse`]) to a [`Node`]: an expression (numbers, `\pi`,
//!    `e`, `i`, `\infty`, variables, `+ - * / ^`, `\cdot`, `\times`, `\div`,
//!    implicit multiplication, `\frac`, `\sqrt[n]{}`, trigonometric and log
//!    functions, `|x|`, `!`, `\pm`), a tuple `(1,2)`, an interval `(1, 3]`,
//!    a union of intervals, a set `\{1,2\}` or a bare list `1, 2`, a matrix
//!    (`pmatrix`, `bmatrix`, …), an equation `y = 2x + 3`, `x \in [a, b]`,
//!    or text (`\text{Evelyn}`). A subscript on a number is a base and is
//!    dropped (`52_8` reads 52, as Math-Verify and sympy read it).
//! 3. Two nodes are compared structurally, and expressions by value: with no
//!    free variable, both are evaluated in complex floating point; with free
//!    variables, both are evaluated at three fixed points (the same values for
//!    the same names on both sides) and must agree at each. A written decimal
//!    (`0.333333`, `37.699112`) equals a value that rounds to it at 6
//!    decimals, as Math-Verify's `float_rounding=6`; otherwise values must
//!    agree to a relative 1e-9. A parse that fails falls back to comparing the
//!    cleaned strings.
//!
//! # Modes and where they differ from the reference tools
//!
//! - [`Mode::Native`] (bench's default recipe) is lenient: `x = 2` equals
//!   `2` and `y = 2` (variable names of assignments are ignored); a list of
//!   solutions is unordered; a mixed number `4\frac{2}{3}` is 14/3; text is
//!   compared case-insensitively and `\text{(C)}` equals `C`; an equation
//!   equals the same equation multiplied by a constant
//!   (`5x - 7y + 4 = 0` vs `-5x + 7y - 4 = 0`); a percentage sign is
//!   dropped (`50\%` = 50). It is *stricter* than Math-Verify on variable
//!   case: `3R^2` is not `3r^2` (Math-Verify says it is).
//! - [`Mode::MathVerify`] (the `evalscope` recipe, applied to Math-Verify's
//!   normalised display strings, see [`super::math_verify::fragment_display`])
//!   follows Math-Verify 0.9.0's `sympy_expr_eq` where the case table
//!   exercises it: variable names compared in lower case; two assignments
//!   (`x = 1`, `y = 1`) are equal only with the same variable; a float equals
//!   an integer only with the same value (`18.0000001` is not 18).
//! - [`Mode::Sympy`] (the `lm-eval` minerva recipe) stands for sympy's
//!   `parse_latex` then `simplify(a - b) == 0` on strings already normalised by
//!   minerva's `normalize_final_answer`: only plain expressions parse (an
//!   interval, a set, a matrix, `\{`, `.5` with no leading digit fail); a
//!   comma list reads as its first item (sympy parses `1,-2` as 1); `i`, `e`
//!   and `\pm` are plain symbols; a mixed number is a product; values must
//!   agree to 1e-12 (no float rounding).
//!
//! Against sympy itself, all modes differ where numeric sampling and symbolic
//! simplification disagree: an identity sympy's `simplify` cannot prove is
//! still equal here, an expression that is undefined at all three sample
//! points is compared as text, functions of complex arguments outside `sin`,
//! `cos`, `tan`, `exp`, `log`, `sqrt` and powers are not evaluated, and
//! unevaluated objects sympy keeps (limits, sums, integrals, `\binom`) are
//! compared as cleaned text. Math-Verify's 5 s timeouts and sympy's solving of
//! relations (`x > 2` vs `(2, \infty)`) are not reproduced.

use std::sync::LazyLock;

use regex::Regex;

/// How lenient the comparison is; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// bench's own rules (lenient).
    Native,
    /// Math-Verify 0.9.0's comparison (EvalScope 1.14.1).
    MathVerify,
    /// sympy `parse_latex` + `simplify(diff) == 0` (lm-eval minerva_math).
    Sympy,
}

// ---------------------------------------------------------------------------
// \boxed{} extraction
// ---------------------------------------------------------------------------

/// Content of the last `\boxed{…}` or `\fbox{…}` in `text` (nested braces
/// balanced, content trimmed), or of `\boxed x` up to the next `$` or line
/// end. `None` when there is none or its braces never close (a cut-off
/// response).
pub fn last_boxed(text: &str) -> Option<String> {
    let b = text.rfind("\\boxed").map(|i| (i, "\\boxed".len()));
    let f = text.rfind("\\fbox").map(|i| (i, "\\fbox".len()));
    let (start, len) = match (b, f) {
        (Some(b), Some(f)) => {
            if f.0 > b.0 {
                f
            } else {
                b
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    let rest = &text[start + len..];
    let trimmed = rest.trim_start();
    if let Some(inner) = trimmed.strip_prefix('{') {
        let mut depth = 1usize;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                '\\' => {
                    escaped = !escaped;
                    continue;
                }
                // `\{` and `\}` are set braces, not grouping.
                '{' if !escaped => depth += 1,
                '}' if !escaped => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(inner[..i].trim().to_string());
                    }
                }
                _ => {}
            }
            escaped = false;
        }
        None
    } else {
        let end = rest.find(['$', '\n', '\r']).unwrap_or(rest.len());
        let v = rest[..end].trim();
        (!v.is_empty() && rest.starts_with(char::is_whitespace)).then(|| v.to_string())
    }
}

// ---------------------------------------------------------------------------
// Cleaning
// ---------------------------------------------------------------------------

/// Unit words dropped after a number (singular; a plural `s` is allowed).
const UNITS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "meter",
    "metre",
    "inch",
    "inche",
    "foot",
    "feet",
    "ft",
    "yard",
    "mile",
    "mph",
    "unit",
    "degree",
    "deg",
    "radian",
    "second",
    "sec",
    "minute",
    "min",
    "hour",
    "hr",
    "day",
    "week",
    "month",
    "year",
    "dollar",
    "cent",
    "pound",
    "lb",
    "ounce",
    "oz",
    "gram",
    "g",
    "kg",
    "liter",
    "litre",
    "ml",
    "gallon",
    "square",
    "sq",
    "cubic",
    "point",
    "people",
    "person",
    "student",
    "way",
    "integer",
    "digit",
    "time",
    "page",
    "mile per hour",
    "kilometer",
    "centimeter",
    "millimeter",
    "block",
    "coin",
    "marble",
    "book",
    "card",
];

static UNIT_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(?:text|mbox|mathrm|textbf|textrm|textnormal)\s*\{\s*([A-Za-z][A-Za-z .]*?)\s*\}(?:\s*\^\s*\{?[23]\}?)?\s*$")
        .expect("valid regex")
});
static UNIT_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([0-9}a-zA-Z)])\s+([A-Za-z][A-Za-z ]*?)(?:\^\{?[23]\}?)?\s*$")
        .expect("valid regex")
});
static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$").expect("valid regex")
});

fn is_unit(word: &str) -> bool {
    let w = word.trim().trim_end_matches('.').to_lowercase();
    let w = w.trim();
    UNITS
        .iter()
        .any(|u| w == *u || w.strip_suffix('s') == Some(u) || w.strip_suffix("es") == Some(u))
}

/// Strip one pair of math delimiters around the whole answer.
fn strip_delimiters(s: &str) -> &str {
    let s = s.trim();
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if s.len() >= open.len() + close.len()
            && let Some(inner) = s.strip_prefix(open).and_then(|x| x.strip_suffix(close))
        {
            return inner.trim();
        }
    }
    s
}

/// `\frac43` -> `\frac{4}{3}`, `\frac 59` -> `\frac{5}{9}`, `\frac9{19}` ->
/// `\frac{9}{19}`: an unbraced argument is one character, as in TeX.
fn brace_fracs(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find("\\frac") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        for _ in 0..2 {
            let t = rest.trim_start();
            match t.chars().next() {
                Some('{') | None => {
                    // A braced argument: copy it as it is.
                    if let Some(end) = group_end(t) {
                        out.push_str(&t[..end]);
                        rest = &t[end..];
                    } else {
                        break;
                    }
                }
                Some('\\') => break,
                Some(c) => {
                    out.push('{');
                    out.push(c);
                    out.push('}');
                    rest = &t[c.len_utf8()..];
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// `\sqrt2` -> `\sqrt{2}` (one character, as in TeX).
fn brace_sqrts(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find("\\sqrt") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let t = rest.trim_start();
        match t.chars().next() {
            Some(c) if c.is_ascii_alphanumeric() => {
                out.push('{');
                out.push(c);
                out.push('}');
                rest = &t[c.len_utf8()..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// Byte index just past the `{…}` group `s` starts with.
fn group_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The cleaned form of an answer (see the module docs, step 1).
pub fn clean(answer: &str) -> String {
    let mut s = strip_delimiters(answer).to_string();
    if let Some(inner) = last_boxed(&s).filter(|_| s.trim_start().starts_with("\\boxed")) {
        s = inner;
    }
    for (from, to) in [
        ("\\displaystyle", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\mbox", "\\text"),
        ("\\textbf", "\\text"),
        ("\\textrm", "\\text"),
        ("\\textnormal", "\\text"),
        ("\\mathrm", "\\text"),
        ("\\operatorname", "\\text"),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("{}^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("°", ""),
        ("\\$", ""),
        ("{,}", ","),
        (",\\!", ","),
        ("\\!", ""),
        ("\\,", " "),
        ("\\;", " "),
        ("\\:", " "),
        ("\\quad", " "),
        ("\\qquad", " "),
        ("~", " "),
        ("\\lbrace", "\\{"),
        ("\\rbrace", "\\}"),
    ] {
        s = s.replace(from, to);
    }
    // `\left.` leaves a lone `.` only in `\left. … \right|`, rare in answers.
    s = s.replace('$', "");
    let mut s = s.trim().trim_end_matches('.').trim().to_string();
    // Units: `\text{ cm}^2` or a unit word after the value.
    for _ in 0..2 {
        if let Some(c) = UNIT_TEXT.captures(&s)
            && is_unit(&c[1])
        {
            let start = c.get(0).map_or(0, |m| m.start());
            if !s[..start].trim().is_empty() {
                s = s[..start].trim().to_string();
            }
        }
        if let Some(c) = UNIT_WORD.captures(&s)
            && is_unit(&c[2])
        {
            let end = c.get(1).map_or(0, |m| m.end());
            s = s[..end].trim().to_string();
        }
    }
    s = brace_fracs(&s);
    s = brace_sqrts(&s);
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if THOUSANDS.is_match(&compact) {
        return compact.replace(',', "");
    }
    s.trim().to_string()
}

/// The cleaned answer without spaces and `\text{}` wrappers, for comparing
/// answers as strings.
fn canonical(s: &str) -> String {
    static TEXT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\\text\{([^{}]*)\}").expect("valid regex"));
    let s = clean(s);
    let s = TEXT.replace_all(&s, "$1");
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A number as written (`12`, `3.5`, `.5`).
    Num(String),
    /// A one-letter variable (or a Greek letter's name).
    Letter(String),
    /// A command, without its backslash.
    Cmd(String),
    /// `\text{…}` content.
    Text(String),
    Op(char),
    Open(char),
    Close(char),
    /// `\{`
    SetOpen,
    /// `\}`
    SetClose,
    Comma,
    Eq,
    /// `&` in a matrix.
    Amp,
    /// `\\` in a matrix.
    RowSep,
    Bar,
    Bang,
    Percent,
    /// `\begin{env}`
    Begin(String),
    /// `\end{env}`
    End(String),
    Other(char),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let read_group = |i: &mut usize| -> String {
        // `{…}` at `*i` (after spaces), its content; `*i` moves past it.
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
        if chars.get(*i) != Some(&'{') {
            return String::new();
        }
        let mut depth = 0usize;
        let start = *i + 1;
        while *i < chars.len() {
            match chars[*i] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let content: String = chars[start..*i].iter().collect();
                        *i += 1;
                        return content;
                    }
                }
                _ => {}
            }
            *i += 1;
        }
        chars[start.min(chars.len())..].iter().collect()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '\\' {
            i += 1;
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                let Some(&next) = chars.get(i) else { break };
                i += 1;
                out.push(match next {
                    '{' => Tok::SetOpen,
                    '}' => Tok::SetClose,
                    '\\' => Tok::RowSep,
                    '%' => Tok::Percent,
                    '|' => Tok::Bar,
                    ',' | ';' | ':' | '!' | ' ' => continue,
                    other => Tok::Other(other),
                });
                continue;
            }
            let name: String = chars[start..i].iter().collect();
            match name.as_str() {
                "text" => out.push(Tok::Text(read_group(&mut i))),
                "begin" => out.push(Tok::Begin(read_group(&mut i))),
                "end" => out.push(Tok::End(read_group(&mut i))),
                "cdot" | "times" | "ast" => out.push(Tok::Op('*')),
                "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "displaystyle" => {}
                "div" => out.push(Tok::Op('/')),
                "vert" | "lvert" | "rvert" | "mid" => out.push(Tok::Bar),
                "langle" => out.push(Tok::Open('(')),
                "rangle" => out.push(Tok::Close(')')),
                "lfloor" | "lceil" | "rfloor" | "rceil" => {
                    // Floors and ceilings are kept as text.
                    out.push(Tok::Other('⌊'));
                }
                _ => out.push(Tok::Cmd(name)),
            }
        } else {
            i += 1;
            out.push(match c {
                'a'..='z' | 'A'..='Z' => Tok::Letter(c.to_string()),
                '+' | '-' | '*' | '/' | '^' | '_' => Tok::Op(c),
                '·' | '×' => Tok::Op('*'),
                '÷' => Tok::Op('/'),
                '−' => Tok::Op('-'),
                'π' => Tok::Cmd("pi".into()),
                '∞' => Tok::Cmd("infty".into()),
                '(' | '[' | '{' => Tok::Open(c),
                ')' | ']' | '}' => Tok::Close(c),
                ',' => Tok::Comma,
                '=' => Tok::Eq,
                '&' => Tok::Amp,
                '|' => Tok::Bar,
                '!' => Tok::Bang,
                '%' => Tok::Percent,
                other => Tok::Other(other),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Expression tree
// ---------------------------------------------------------------------------

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number; `true` when written with a decimal point.
    Num(f64, bool),
    /// A free variable.
    Var(String),
    /// `\pi`.
    Pi,
    /// Euler's number.
    E,
    /// The imaginary unit.
    I,
    /// `\infty`.
    Inf,
    /// Sum of terms.
    Add(Vec<Expr>),
    /// Product of factors.
    Mul(Vec<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Power.
    Pow(Box<Expr>, Box<Expr>),
    /// A named function of one argument (`sin`, `sqrt`, `abs`, `fact`).
    Func(String, Box<Expr>),
    /// `a \pm b`.
    PlusMinus(Box<Expr>, Box<Expr>),
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// One expression.
    Expr(Expr),
    /// `(a, b, …)`, two or more items.
    Tuple(Vec<Node>),
    /// An interval with closed ends marked `true`.
    Interval(Expr, Expr, bool, bool),
    /// `A \cup B \cup …`.
    Union(Vec<Node>),
    /// `\{a, b\}` or a bare list `a, b` (unordered).
    Set(Vec<Node>),
    /// Rows of a matrix or vector.
    Matrix(Vec<Vec<Expr>>),
    /// An equation chain `a = b = …`.
    Eq(Vec<Expr>),
    /// Text.
    Text(String),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    mode: Mode,
    depth: usize,
}

/// Deepest nesting followed before giving up (stack safety on hostile input).
const MAX_DEPTH: usize = 150;

type P<T> = Option<T>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// The whole answer.
    fn answer(&mut self) -> P<Node> {
        if let [Tok::Text(t)] = self.toks.as_slice() {
            return Some(Node::Text(t.clone()));
        }
        let mut items = vec![self.item()?];
        while self.eat(&Tok::Comma) {
            items.push(self.item()?);
        }
        if !self.at_end() {
            return None;
        }
        if items.len() == 1 {
            return items.pop();
        }
        if self.mode == Mode::Sympy {
            // sympy's parse_latex reads `1,-2` as 1.
            return Some(items.swap_remove(0));
        }
        Some(Node::Set(items))
    }

    /// One list item: a union, a set, a matrix, `x \in S`, or an equation.
    fn item(&mut self) -> P<Node> {
        // `x \in S`: the set.
        if matches!(self.peek(), Some(Tok::Letter(_)))
            && self.peek_at(1) == Some(&Tok::Cmd("in".into()))
        {
            if self.mode == Mode::Sympy {
                return None;
            }
            self.pos += 2;
        }
        let first = self.structure()?;
        if self.peek() == Some(&Tok::Cmd("cup".into())) {
            if self.mode == Mode::Sympy {
                return None;
            }
            let mut parts = vec![first];
            while self.eat(&Tok::Cmd("cup".into())) {
                parts.push(self.structure()?);
            }
            return Some(Node::Union(parts));
        }
        Some(first)
    }

    /// A bracketed structure, or an equation chain of expressions.
    fn structure(&mut self) -> P<Node> {
        match self.peek() {
            Some(Tok::Begin(env)) if env.contains("matrix") || env == "array" => {
                if self.mode == Mode::Sympy {
                    return None;
                }
                return self.matrix();
            }
            Some(Tok::SetOpen) => {
                if self.mode == Mode::Sympy {
                    return None;
                }
                self.pos += 1;
                let mut items = Vec::new();
                if !self.eat(&Tok::SetClose) {
                    loop {
                        items.push(self.relation()?);
                        if self.eat(&Tok::SetClose) {
                            break;
                        }
                        if !self.eat(&Tok::Comma) {
                            return None;
                        }
                    }
                }
                return Some(Node::Set(items));
            }
            Some(Tok::Open('(' | '[')) => {
                let save = self.pos;
                if let Some(node) = self.bracket_list() {
                    return Some(node);
                }
                self.pos = save;
            }
            Some(Tok::Text(_)) if self.toks.len() == 1 => {}
            _ => {}
        }
        self.relation()
    }

    /// `(a, b, …)` or `[a, b)`: a tuple or an interval, when a comma list
    /// fills the brackets and the item ends there.
    fn bracket_list(&mut self) -> P<Node> {
        let open = match self.bump()? {
            Tok::Open(c) => c,
            _ => return None,
        };
        let mut items = vec![self.relation()?];
        while self.eat(&Tok::Comma) {
            items.push(self.relation()?);
        }
        let close = match self.bump()? {
            Tok::Close(c @ (')' | ']')) => c,
            _ => return None,
        };
        let ends_item = match self.peek() {
            None | Some(Tok::Comma | Tok::SetClose | Tok::Close(_)) => true,
            Some(Tok::Cmd(c)) => c == "cup",
            _ => false,
        };
        if items.len() < 2 || !ends_item {
            return None;
        }
        if self.mode == Mode::Sympy {
            return None;
        }
        let interval = open == '[' || close == ']' || items.iter().any(has_inf);
        if interval && items.len() == 2 {
            let (Node::Expr(a), Node::Expr(b)) = (&items[0], &items[1]) else {
                return None;
            };
            return Some(Node::Interval(
                a.clone(),
                b.clone(),
                open == '[',
                close == ']',
            ));
        }
        if open != '(' || close != ')' {
            return None;
        }
        Some(Node::Tuple(items))
    }

    fn matrix(&mut self) -> P<Node> {
        let Some(Tok::Begin(env)) = self.bump() else {
            return None;
        };
        if env == "array" {
            // `\begin{array}{cc}`: skip the column spec.
            if self.eat(&Tok::Open('{')) {
                while !matches!(self.bump()?, Tok::Close('}')) {}
            }
        }
        let mut rows = vec![Vec::new()];
        loop {
            match self.peek()? {
                Tok::End(_) => {
                    self.pos += 1;
                    break;
                }
                Tok::RowSep => {
                    self.pos += 1;
                    rows.push(Vec::new());
                }
                Tok::Amp => self.pos += 1,
                _ => {
                    let e = self.sum()?;
                    rows.last_mut()?.push(e);
                }
            }
        }
        rows.retain(|r| !r.is_empty());
        Some(Node::Matrix(rows))
    }

    fn relation(&mut self) -> P<Node> {
        let first = self.sum()?;
        if self.peek() != Some(&Tok::Eq) {
            return Some(Node::Expr(first));
        }
        if self.mode == Mode::Sympy {
            return None;
        }
        let mut chain = vec![first];
        while self.eat(&Tok::Eq) {
            chain.push(self.sum()?);
        }
        Some(Node::Eq(chain))
    }

    fn sum(&mut self) -> P<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let r = self.sum_inner();
        self.depth -= 1;
        r
    }

    fn sum_inner(&mut self) -> P<Expr> {
        let mut terms = vec![self.term()?];
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    terms.push(self.term()?);
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    terms.push(Expr::Neg(Box::new(self.term()?)));
                }
                Some(Tok::Cmd(c)) if (c == "pm" || c == "mp") && self.mode != Mode::Sympy => {
                    let minus_first = c == "mp";
                    self.pos += 1;
                    let rhs = self.term()?;
                    let lhs = add(std::mem::take(&mut terms));
                    let rhs = if minus_first {
                        Expr::Neg(Box::new(rhs))
                    } else {
                        rhs
                    };
                    terms = vec![Expr::PlusMinus(Box::new(lhs), Box::new(rhs))];
                }
                _ => break,
            }
        }
        Some(add(terms))
    }

    fn term(&mut self) -> P<Expr> {
        let mut factors = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    factors.push(self.unary()?);
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    let den = self.unary()?;
                    let num = mul(std::mem::take(&mut factors));
                    factors = vec![Expr::Div(Box::new(num), Box::new(den))];
                }
                Some(t) if starts_factor(t, self.mode) => {
                    let f = self.power()?;
                    // A mixed number: an integer then a fraction of integers.
                    if self.mode != Mode::Sympy
                        && factors.len() == 1
                        && let (Some(Expr::Num(n, false)), Expr::Div(a, b)) = (factors.first(), &f)
                        && matches!(**a, Expr::Num(_, false))
                        && matches!(**b, Expr::Num(_, false))
                        && n.fract() == 0.0
                    {
                        let whole = factors.pop()?;
                        factors.push(Expr::Add(vec![whole, f]));
                        continue;
                    }
                    factors.push(f);
                }
                _ => break,
            }
        }
        Some(mul(factors))
    }

    fn unary(&mut self) -> P<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let r = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.unary().map(|e| Expr::Neg(Box::new(e)))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> P<Expr> {
        let base = self.postfix()?;
        if self.eat(&Tok::Op('^')) {
            let exp = self.exponent()?;
            let mut e = Expr::Pow(Box::new(base), Box::new(exp));
            while self.eat(&Tok::Bang) {
                e = Expr::Func("fact".into(), Box::new(e));
            }
            return Some(e);
        }
        Some(base)
    }

    /// An exponent: a `{…}` group, or one token (`x^2`, `x^-1` reads -1).
    fn exponent(&mut self) -> P<Expr> {
        match self.peek()? {
            Tok::Open('{') => self.atom(),
            Tok::Op('-') => {
                self.pos += 1;
                Some(Expr::Neg(Box::new(self.exponent()?)))
            }
            Tok::Num(n) => {
                // `x^23` in TeX is x^2 3; take the first digit.
                let n = n.clone();
                let first: String = n.chars().take(1).collect();
                if n.len() > 1 && !n.contains('.') {
                    self.toks[self.pos] = Tok::Num(n[1..].to_string());
                } else {
                    self.pos += 1;
                    return number(&n);
                }
                number(&first)
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> P<Expr> {
        let mut e = self.atom()?;
        loop {
            match self.peek() {
                Some(Tok::Op('_')) => {
                    self.pos += 1;
                    let sub = self.subscript()?;
                    e = match e {
                        // A base subscript (`52_8`) is dropped.
                        Expr::Num(..) => e,
                        Expr::Var(v) => Expr::Var(format!("{v}_{sub}")),
                        _ => return None,
                    };
                }
                Some(Tok::Bang) => {
                    self.pos += 1;
                    e = Expr::Func("fact".into(), Box::new(e));
                }
                Some(Tok::Percent) if self.mode != Mode::Sympy => {
                    self.pos += 1;
                    if self.mode == Mode::MathVerify {
                        e = Expr::Div(Box::new(e), Box::new(Expr::Num(100.0, false)));
                    }
                }
                _ => return Some(e),
            }
        }
    }

    /// A subscript's text (`8`, `{10}`, `n`).
    fn subscript(&mut self) -> P<String> {
        match self.bump()? {
            Tok::Num(n) => Some(n),
            Tok::Letter(l) => Some(l),
            Tok::Open('{') => {
                let mut s = String::new();
                loop {
                    match self.bump()? {
                        Tok::Close('}') => return Some(s),
                        Tok::Num(n) | Tok::Letter(n) => s.push_str(&n),
                        Tok::Op(c) => s.push(c),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// A `{…}` group or a single atom (arguments of `\frac`, `\sqrt`).
    fn arg(&mut self) -> P<Expr> {
        self.atom()
    }

    fn atom(&mut self) -> P<Expr> {
        let tok = self.bump()?;
        match tok {
            Tok::Num(n) => {
                if self.mode == Mode::Sympy && n.starts_with('.') {
                    return None;
                }
                number(&n)
            }
            Tok::Letter(l) => Some(match (l.as_str(), self.mode) {
                ("i", Mode::Native | Mode::MathVerify) => Expr::I,
                ("e", Mode::Native | Mode::MathVerify) => Expr::E,
                _ if self.mode == Mode::MathVerify => Expr::Var(l.to_lowercase()),
                _ => Expr::Var(l),
            }),
            Tok::Open(c) => {
                let close = match c {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let inner = self.sum()?;
                match self.bump()? {
                    Tok::Close(x) if x == close => Some(inner),
                    _ => None,
                }
            }
            Tok::Bar => {
                let inner = self.sum()?;
                match self.bump()? {
                    Tok::Bar => Some(Expr::Func("abs".into(), Box::new(inner))),
                    _ => None,
                }
            }
            Tok::Text(t) => {
                // `\text{18}` is a number; a word is a variable of that name.
                let t = t.trim().to_string();
                if let Some(n) = number(&t) {
                    return Some(n);
                }
                if self.mode == Mode::Sympy || t.is_empty() {
                    return None;
                }
                Some(Expr::Var(t.to_lowercase()))
            }
            Tok::Cmd(name) => self.command(&name),
            _ => None,
        }
    }

    fn command(&mut self, name: &str) -> P<Expr> {
        match name {
            "frac" | "over" => {
                let num = self.arg()?;
                let den = self.arg()?;
                Some(Expr::Div(Box::new(num), Box::new(den)))
            }
            "sqrt" => {
                let mut index = None;
                if self.eat(&Tok::Open('[')) {
                    let i = self.sum()?;
                    if !self.eat(&Tok::Close(']')) {
                        return None;
                    }
                    index = Some(i);
                }
                let radicand = self.arg()?;
                Some(match index {
                    None => Expr::Func("sqrt".into(), Box::new(radicand)),
                    Some(i) => Expr::Pow(
                        Box::new(radicand),
                        Box::new(Expr::Div(Box::new(Expr::Num(1.0, false)), Box::new(i))),
                    ),
                })
            }
            "pi" => Some(Expr::Pi),
            "infty" | "infin" => Some(Expr::Inf),
            "exp" => self.function("exp"),
            "sin" | "cos" | "tan" | "cot" | "sec" | "csc" | "arcsin" | "arccos" | "arctan"
            | "sinh" | "cosh" | "tanh" | "ln" | "log" => self.function(name),
            "binom" | "dbinom" | "tbinom" => {
                let n = self.arg()?;
                let k = self.arg()?;
                // n! / (k! (n-k)!)
                let fact = |e: Expr| Expr::Func("fact".into(), Box::new(e));
                Some(Expr::Div(
                    Box::new(fact(n.clone())),
                    Box::new(Expr::Mul(vec![
                        fact(k.clone()),
                        fact(Expr::Add(vec![n, Expr::Neg(Box::new(k))])),
                    ])),
                ))
            }
            "alpha" | "beta" | "gamma" | "delta" | "theta" | "lambda" | "mu" | "phi" | "omega"
            | "sigma" | "tau" | "rho" | "epsilon" | "varepsilon" | "varphi" | "psi" | "chi"
            | "eta" | "zeta" | "nu" | "xi" | "kappa" => Some(Expr::Var(name.to_string())),
            "mathbf" | "boldsymbol" | "vec" | "overline" | "hat" | "bar" => {
                // A decorated symbol: a variable of its own.
                let inner = self.arg()?;
                Some(Expr::Var(format!("{name}({inner:?})")))
            }
            _ if self.mode == Mode::Sympy => {
                // parse_latex reads an unknown command glued to letters
                // (`\cotx`) as one symbol.
                Some(Expr::Var(format!("\\{name}")))
            }
            _ => None,
        }
    }

    /// `\sin x`, `\sin(x)`, `\sin^2 x`, `\log_2 8`.
    fn function(&mut self, name: &str) -> P<Expr> {
        let mut base = None;
        if name == "log" && self.eat(&Tok::Op('_')) {
            base = Some(self.exponent()?);
        }
        let mut power = None;
        if self.eat(&Tok::Op('^')) {
            power = Some(self.exponent()?);
        }
        let arg = match self.peek()? {
            Tok::Open(_) => self.atom()?,
            _ => self.power()?,
        };
        let mut f = Expr::Func(name.into(), Box::new(arg));
        if let Some(b) = base {
            f = Expr::Div(Box::new(f), Box::new(Expr::Func("ln".into(), Box::new(b))));
        }
        if let Some(p) = power {
            f = Expr::Pow(Box::new(f), Box::new(p));
        }
        Some(f)
    }
}

/// Whether `t` starts a factor multiplied by juxtaposition.
fn starts_factor(t: &Tok, mode: Mode) -> bool {
    match t {
        Tok::Num(_) | Tok::Letter(_) | Tok::Open('(' | '{') | Tok::Text(_) | Tok::Bar => true,
        // sympy reads `1\pm\sqrt{19}` as a product with the symbol `pm`.
        Tok::Cmd(c) if c == "pm" || c == "mp" => mode == Mode::Sympy,
        Tok::Cmd(c) => !matches!(
            c.as_str(),
            "cup"
                | "in"
                | "to"
                | "le"
                | "ge"
                | "leq"
                | "geq"
                | "neq"
                | "lt"
                | "gt"
                | "cap"
                | "setminus"
        ),
        _ => false,
    }
}

fn number(s: &str) -> Option<Expr> {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let x: f64 = s.parse().ok()?;
    Some(Expr::Num(x, s.contains('.')))
}

fn add(mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        Expr::Add(terms)
    }
}

fn mul(mut factors: Vec<Expr>) -> Expr {
    if factors.len() == 1 {
        factors.pop().expect("one factor")
    } else {
        Expr::Mul(factors)
    }
}

fn has_inf(n: &Node) -> bool {
    fn e(x: &Expr) -> bool {
        match x {
            Expr::Inf => true,
            Expr::Neg(a) => e(a),
            _ => false,
        }
    }
    matches!(n, Node::Expr(x) if e(x))
}

/// Parse a cleaned answer (`None`: not in the supported grammar).
pub fn parse(cleaned: &str, mode: Mode) -> Option<Node> {
    let toks = tokenize(cleaned);
    if toks.is_empty() {
        return None;
    }
    let mut p = Parser {
        toks,
        pos: 0,
        mode,
        depth: 0,
    };
    p.answer()
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
struct C {
    re: f64,
    im: f64,
}

impl C {
    const fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }
    fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    fn neg(self) -> C {
        C {
            re: -self.re,
            im: -self.im,
        }
    }
    fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn div(self, o: C) -> C {
        let d = o.re * o.re + o.im * o.im;
        C {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }
    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn is_real(self) -> bool {
        self.im.abs() <= 1e-12 * self.re.abs().max(1.0)
    }
    fn ln(self) -> C {
        C {
            re: self.abs().ln(),
            im: self.im.atan2(self.re),
        }
    }
    fn exp(self) -> C {
        let r = self.re.exp();
        C {
            re: r * self.im.cos(),
            im: r * self.im.sin(),
        }
    }
    fn pow(self, e: C) -> C {
        if e.im == 0.0 && e.re.fract() == 0.0 && e.re.abs() <= 64.0 {
            let n = e.re as i32;
            let mut acc = C::real(1.0);
            for _ in 0..n.unsigned_abs() {
                acc = acc.mul(self);
            }
            return if n < 0 { C::real(1.0).div(acc) } else { acc };
        }
        if self.is_real() && self.re > 0.0 && e.is_real() {
            return C::real(self.re.powf(e.re));
        }
        if self.is_real() && self.re < 0.0 && e.is_real() {
            // A real odd root of a negative number (`(-8)^{1/3}` is -2), as
            // people mean it in answers.
            let inv = 1.0 / e.re;
            if (inv.round() - inv).abs() < 1e-9 && (inv.round() as i64) % 2 != 0 {
                return C::real(-(-self.re).powf(e.re));
            }
        }
        if self.abs() == 0.0 {
            return C::real(0.0);
        }
        e.mul(self.ln()).exp()
    }
    fn sin(self) -> C {
        C {
            re: self.re.sin() * self.im.cosh(),
            im: self.re.cos() * self.im.sinh(),
        }
    }
    fn cos(self) -> C {
        C {
            re: self.re.cos() * self.im.cosh(),
            im: -self.re.sin() * self.im.sinh(),
        }
    }
}

fn factorial(x: f64) -> f64 {
    if x < 0.0 || x.fract() != 0.0 || x > 170.0 {
        return f64::NAN;
    }
    (1..=x as u64).fold(1.0, |a, k| a * k as f64)
}

/// The value of `e` with `vars` bound (`None`: names not bound).
fn eval(e: &Expr, vars: &dyn Fn(&str) -> f64) -> C {
    match e {
        Expr::Num(x, _) => C::real(*x),
        Expr::Var(v) => C::real(vars(v)),
        Expr::Pi => C::real(std::f64::consts::PI),
        Expr::E => C::real(std::f64::consts::E),
        Expr::I => C { re: 0.0, im: 1.0 },
        Expr::Inf => C::real(f64::INFINITY),
        Expr::Add(ts) => ts.iter().fold(C::real(0.0), |a, t| a.add(eval(t, vars))),
        Expr::Mul(fs) => fs.iter().fold(C::real(1.0), |a, f| a.mul(eval(f, vars))),
        Expr::Neg(a) => eval(a, vars).neg(),
        Expr::Div(a, b) => eval(a, vars).div(eval(b, vars)),
        Expr::Pow(a, b) => eval(a, vars).pow(eval(b, vars)),
        Expr::PlusMinus(a, b) => eval(a, vars).add(eval(b, vars)),
        Expr::Func(f, a) => {
            let x = eval(a, vars);
            let real = |g: fn(f64) -> f64| {
                if x.is_real() {
                    C::real(g(x.re))
                } else {
                    C::real(f64::NAN)
                }
            };
            match f.as_str() {
                "sqrt" => x.pow(C::real(0.5)),
                "abs" => C::real(x.abs()),
                "fact" => real(factorial),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.sin().div(x.cos()),
                "cot" => x.cos().div(x.sin()),
                "sec" => C::real(1.0).div(x.cos()),
                "csc" => C::real(1.0).div(x.sin()),
                "exp" => x.exp(),
                "ln" | "log" => x.ln(),
                "arcsin" => real(f64::asin),
                "arccos" => real(f64::acos),
                "arctan" => real(f64::atan),
                "sinh" => real(f64::sinh),
                "cosh" => real(f64::cosh),
                "tanh" => real(f64::tanh),
                _ => C::real(f64::NAN),
            }
        }
    }
}

fn collect_vars(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Var(v) if !out.contains(v) => out.push(v.clone()),
        Expr::Var(_) => {}
        Expr::Add(xs) | Expr::Mul(xs) => xs.iter().for_each(|x| collect_vars(x, out)),
        Expr::Neg(a) | Expr::Func(_, a) => collect_vars(a, out),
        Expr::Div(a, b) | Expr::Pow(a, b) | Expr::PlusMinus(a, b) => {
            collect_vars(a, out);
            collect_vars(b, out);
        }
        _ => {}
    }
}

/// `±∞` when `e` is written as an infinity.
fn infinity(e: &Expr) -> Option<i8> {
    match e {
        Expr::Inf => Some(1),
        Expr::Neg(a) => infinity(a).map(|s| -s),
        _ => None,
    }
}

/// A written decimal, possibly negated (Math-Verify's atomic `Float`).
fn float_literal(e: &Expr) -> bool {
    match e {
        Expr::Num(_, f) => *f,
        Expr::Neg(a) => float_literal(a),
        _ => false,
    }
}

fn int_literal(e: &Expr) -> bool {
    match e {
        Expr::Num(_, f) => !*f,
        Expr::Neg(a) => int_literal(a),
        _ => false,
    }
}

/// The value at sample point `p` of variable number `k`.
fn sample_value(k: usize, p: usize) -> f64 {
    // Irrational-looking, distinct, away from the poles of tan/log at 0.
    const BASE: [f64; 3] = [0.7316, 1.2893, 2.0561];
    BASE[p % 3] + 0.3719 * k as f64 + 0.0137 * (k * k) as f64
}

/// Whether two numbers are equal under `mode`'s tolerance.
fn close(a: C, b: C, float_side: bool, mode: Mode) -> bool {
    let one = |x: f64, y: f64| {
        if x.is_nan() || y.is_nan() {
            return false;
        }
        if x == y {
            return true;
        }
        if float_side && mode != Mode::Sympy {
            let r = |v: f64| (v * 1e6).round_ties_even() / 1e6;
            return r(x) == r(y);
        }
        let tol = if mode == Mode::Sympy { 1e-12 } else { 1e-9 };
        (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0)
    };
    one(a.re, b.re) && one(a.im, b.im)
}

/// Value equality of two expressions (free variables sampled).
pub fn expr_equal(a: &Expr, b: &Expr, mode: Mode) -> bool {
    if let (Some(x), Some(y)) = (infinity(a), infinity(b)) {
        return x == y;
    }
    if infinity(a).is_some() || infinity(b).is_some() {
        return false;
    }
    if mode == Mode::MathVerify
        && ((int_literal(a) && float_literal(b)) || (float_literal(a) && int_literal(b)))
    {
        // sympy's Float == Integer holds only for the same value.
        let (x, y) = (eval(a, &|_| 0.0), eval(b, &|_| 0.0));
        return x == y;
    }
    let float_side = float_literal(a) || float_literal(b);
    let mut vars = Vec::new();
    collect_vars(a, &mut vars);
    collect_vars(b, &mut vars);
    let points = if vars.is_empty() { 1 } else { 3 };
    let mut compared = 0;
    for p in 0..points {
        let bind = |name: &str| {
            let k = vars.iter().position(|v| v == name).unwrap_or(0);
            sample_value(k, p)
        };
        let (x, y) = (eval(a, &bind), eval(b, &bind));
        let finite = |c: C| c.re.is_finite() && c.im.is_finite();
        if !finite(x) || !finite(y) {
            if finite(x) != finite(y) {
                return false;
            }
            continue;
        }
        if !close(x, y, float_side, mode) {
            return false;
        }
        compared += 1;
    }
    compared > 0
}

/// `lhs = rhs` chains: `x = …` with a single variable on the left.
fn assignment(n: &Node) -> Option<(&Expr, &Expr)> {
    match n {
        Node::Eq(chain) if chain.len() >= 2 => match &chain[0] {
            v @ Expr::Var(_) => Some((v, chain.last()?)),
            _ => None,
        },
        _ => None,
    }
}

/// Structural and value equality of two parsed answers.
pub fn nodes_equal(gold: &Node, pred: &Node, mode: Mode) -> bool {
    // Equations and assignments.
    match (gold, pred) {
        (Node::Eq(g), Node::Eq(p)) => {
            if let (Some((gv, gr)), Some((pv, pr))) = (assignment(gold), assignment(pred)) {
                if mode == Mode::MathVerify && gv != pv {
                    return false;
                }
                return expr_equal(gr, pr, mode);
            }
            return equations_equal(g, p, mode);
        }
        (Node::Eq(_), _) => {
            return match assignment(gold) {
                Some((_, rhs)) => nodes_equal(&Node::Expr(rhs.clone()), pred, mode),
                None => false,
            };
        }
        (_, Node::Eq(chain)) => {
            // A predicted equation is cut to its last right side.
            let last = chain.last().cloned().map(Node::Expr);
            return last.is_some_and(|l| nodes_equal(gold, &l, mode));
        }
        _ => {}
    }
    match (gold, pred) {
        (Node::Expr(a), Node::Expr(b)) => {
            let (ga, pb) = (expand_pm(a), expand_pm(b));
            if ga.len() > 1 || pb.len() > 1 {
                return multiset_equal(
                    &ga.into_iter().map(Node::Expr).collect::<Vec<_>>(),
                    &pb.into_iter().map(Node::Expr).collect::<Vec<_>>(),
                    mode,
                );
            }
            expr_equal(a, b, mode)
        }
        (Node::Text(a), Node::Text(b)) => text_key(a) == text_key(b),
        (Node::Text(a), Node::Expr(Expr::Var(b))) | (Node::Expr(Expr::Var(b)), Node::Text(a)) => {
            text_key(a) == text_key(b)
        }
        (Node::Tuple(a), Node::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| nodes_equal(x, y, mode))
        }
        (Node::Interval(a1, b1, l1, r1), Node::Interval(a2, b2, l2, r2)) => {
            l1 == l2 && r1 == r2 && expr_equal(a1, a2, mode) && expr_equal(b1, b2, mode)
        }
        // `(1,2)` is an open interval as much as a pair.
        (Node::Interval(a, b, false, false), Node::Tuple(t))
        | (Node::Tuple(t), Node::Interval(a, b, false, false)) => {
            t.len() == 2
                && nodes_equal(&Node::Expr(a.clone()), &t[0], mode)
                && nodes_equal(&Node::Expr(b.clone()), &t[1], mode)
        }
        (Node::Union(a), Node::Union(b)) => multiset_equal(a, b, mode),
        (Node::Set(a), Node::Set(b)) => multiset_equal(&flatten_pm(a), &flatten_pm(b), mode),
        (Node::Set(a), other) | (other, Node::Set(a)) => {
            let items = flatten_pm(a);
            let others = flatten_pm(std::slice::from_ref(other));
            multiset_equal(&items, &others, mode)
        }
        (Node::Matrix(a), Node::Matrix(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(r, s)| {
                    r.len() == s.len() && r.iter().zip(s).all(|(x, y)| expr_equal(x, y, mode))
                })
        }
        _ => false,
    }
}

/// Two equations are the same when `lhs - rhs` of one is a constant
/// nonzero multiple of the other's (native); Math-Verify compares each side.
fn equations_equal(g: &[Expr], p: &[Expr], mode: Mode) -> bool {
    if g.len() != 2 || p.len() != 2 {
        return g.len() == p.len() && g.iter().zip(p).all(|(a, b)| expr_equal(a, b, mode));
    }
    let diff = |c: &[Expr]| Expr::Add(vec![c[0].clone(), Expr::Neg(Box::new(c[1].clone()))]);
    let (dg, dp) = (diff(g), diff(p));
    let mut vars = Vec::new();
    collect_vars(&dg, &mut vars);
    collect_vars(&dp, &mut vars);
    let mut ratio: Option<C> = None;
    for pt in 0..3 {
        let bind = |name: &str| sample_value(vars.iter().position(|v| v == name).unwrap_or(0), pt);
        let (x, y) = (eval(&dg, &bind), eval(&dp, &bind));
        if y.abs() < 1e-12 || x.abs() < 1e-12 {
            if (y.abs() < 1e-12) != (x.abs() < 1e-12) {
                return false;
            }
            continue;
        }
        let r = x.div(y);
        match ratio {
            None => ratio = Some(r),
            Some(r0) if !close(r0, r, false, mode) => return false,
            _ => {}
        }
    }
    true
}

/// `a \pm b` as its two values (each `\pm` doubles the list).
fn expand_pm(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::PlusMinus(a, b) => {
            let mut out = Vec::new();
            for x in expand_pm(a) {
                for y in expand_pm(b) {
                    out.push(Expr::Add(vec![x.clone(), y.clone()]));
                    out.push(Expr::Add(vec![x.clone(), Expr::Neg(Box::new(y))]));
                }
            }
            out
        }
        _ => vec![e.clone()],
    }
}

fn flatten_pm(items: &[Node]) -> Vec<Node> {
    items
        .iter()
        .flat_map(|n| match n {
            Node::Expr(e) => expand_pm(e).into_iter().map(Node::Expr).collect(),
            other => vec![other.clone()],
        })
        .collect()
}

/// Every item of `a` matched by a distinct equal item of `b`, same length.
fn multiset_equal(a: &[Node], b: &[Node], mode: Mode) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let hit = b
            .iter()
            .enumerate()
            .find(|(j, y)| !used[*j] && nodes_equal(x, y, mode))
            .map(|(j, _)| j);
        if let Some(j) = hit {
            used[j] = true;
        }
        hit.is_some()
    })
}

/// Text compared without case, spaces or brackets (`\text{(C)}` is `C`).
fn text_key(t: &str) -> String {
    t.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `pred` is the same answer as `gold` under `mode`'s rules.
pub fn equivalent(gold: &str, pred: &str, mode: Mode) -> bool {
    let (cg, cp) = (prepare(gold, mode), prepare(pred, mode));
    if cp.is_empty() || cg.is_empty() {
        return false;
    }
    if mode != Mode::Sympy && canonical(&cg) == canonical(&cp) {
        return true;
    }
    match (parse(&cg, mode), parse(&cp, mode)) {
        (Some(g), Some(p)) => nodes_equal(&g, &p, mode),
        _ => false,
    }
}

/// Whether `answer` parses in `mode` (what the real-data checks ask of every
/// gold answer).
pub fn parses(answer: &str, mode: Mode) -> bool {
    parse(&prepare(answer, mode), mode).is_some()
}

/// The text the parser sees: [`clean`]ed, or in [`Mode::Sympy`] (whose input
/// minerva has normalised already) only the one-character `\frac` and
/// `\sqrt` arguments braced, as sympy's grammar reads them.
fn prepare(answer: &str, mode: Mode) -> String {
    match mode {
        Mode::Sympy => {
            let s = answer
                .trim()
                .replace("\\dfrac", "\\frac")
                .replace("\\tfrac", "\\frac");
            brace_sqrts(&brace_fracs(&s))
        }
        _ => clean(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_nested_and_last() {
        assert_eq!(
            last_boxed(r"so \boxed{\frac{1}{2}} then \boxed{\frac{\sqrt{3}}{2}}").as_deref(),
            Some(r"\frac{\sqrt{3}}{2}")
        );
        assert_eq!(last_boxed(r"\boxed{\{1,2\}}").as_deref(), Some(r"\{1,2\}"));
        assert_eq!(last_boxed(r"\fbox{7} or \boxed{8}").as_deref(), Some("8"));
        assert_eq!(last_boxed(r"\boxed{8} or \fbox{ 7 }").as_deref(), Some("7"));
        assert_eq!(
            last_boxed(r"\boxed{\text{(C)}}").as_deref(),
            Some(r"\text{(C)}")
        );
        assert_eq!(last_boxed(r"$\boxed 5$").as_deref(), Some("5"));
        assert_eq!(last_boxed(r"\boxed{\frac{1}{2}"), None);
        assert_eq!(last_boxed("none"), None);
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean(r"10,\!080"), "10080");
        assert_eq!(clean(r"\$32,\!348"), "32348");
        assert_eq!(clean(r"5.4 \text{ cents}"), "5.4");
        assert_eq!(clean(r"864 \mbox{ inches}^2"), "864");
        assert_eq!(clean(r"90^\circ"), "90");
        assert_eq!(clean(r"\dfrac12"), r"\frac{1}{2}");
        assert_eq!(clean(r"\sqrt51"), r"\sqrt{5}1");
        assert_eq!(clean(r"\frac9{19}"), r"\frac{9}{19}");
        assert_eq!(
            clean(r"$\left( 3, \frac{\pi}{2} \right)$"),
            r"( 3, \frac{\pi}{2} )"
        );
    }

    #[test]
    fn parse_shapes() {
        let p = |s: &str| parse(&clean(s), Mode::Native).unwrap();
        assert!(matches!(p("(3,4]"), Node::Interval(_, _, false, true)));
        assert!(matches!(p("(1,2)"), Node::Tuple(_)));
        assert!(matches!(p(r"\{1,2\}"), Node::Set(_)));
        assert!(matches!(p("1, 2"), Node::Set(_)));
        assert!(matches!(p(r"(0,9) \cup (9,36)"), Node::Union(_)));
        assert!(matches!(
            p(r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
            Node::Matrix(_)
        ));
        assert!(matches!(p("y = 2x + 3"), Node::Eq(_)));
        assert!(matches!(p(r"\text{Evelyn}"), Node::Text(_)));
        assert!(matches!(p("(a+5)(b+2)"), Node::Expr(_)));
        assert!(parse(&clean("(3,4]"), Mode::Sympy).is_none());
    }

    #[test]
    fn hostile_input_does_not_overflow() {
        // Past the nesting limit the parse gives up (not equal, no stack
        // overflow); shallow nesting still parses.
        let deep = "(".repeat(5000) + "1" + &")".repeat(5000);
        assert!(!equivalent(&deep, "1", Mode::Native));
        assert!(equivalent("((((1))))", "1", Mode::Native));
        let minus = "-".repeat(10000) + "1";
        assert!(!equivalent(&minus, "1", Mode::Native));
        assert!(!equivalent("", "1", Mode::Native));
        assert!(!equivalent("1", "}", Mode::Native));
    }
}
