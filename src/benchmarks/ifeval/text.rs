//! Text rules of the official IFEval checker that lean on Python or NLTK,
//! written out: Python's `str.strip`/`split`/`isupper`/`islower` and `\w`,
//! NLTK's `RegexpTokenizer(r"\w+")` (word count), a Punkt-like sentence
//! count and a Treebank-like word split (capital words).
//!
//! The Punkt rules here use the English model's abbreviation list and
//! sentence starters (NLTK `punkt_tab` english) but not its orthographic
//! table; README lists where that makes a count differ.

use std::sync::LazyLock;

use regex::Regex;

/// Python's `str.isspace` on one character: Unicode `White_Space` plus the
/// four separators U+001C..U+001F that Python also counts.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` (no argument).
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.split()` (no argument): runs of whitespace separate.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// Unicode titlecase letters (category Lt), which Python's `isupper` and
/// `islower` count as cased but neither upper nor lower.
fn is_titlecase(c: char) -> bool {
    matches!(c as u32,
        0x01C5 | 0x01C8 | 0x01CB | 0x01F2 | 0x1F88..=0x1F8F | 0x1F98..=0x1F9F
        | 0x1FA8..=0x1FAF | 0x1FBC | 0x1FCC | 0x1FFC)
}

/// Python's `str.isupper()`: at least one cased character, none lowercase
/// or titlecase.
pub fn py_isupper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Python's `str.islower()`: at least one cased character, none uppercase
/// or titlecase.
pub fn py_islower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// Python's `\w` for `str` patterns: letters, numbers (`isalnum`) and `_`.
/// (Rust's `\w` also takes combining marks, which Python's does not: a
/// Hindi vowel sign would join words that Python splits.)
pub const PY_WORD: &str = r"[\p{L}\p{N}_]";

/// Python's `\s` for `str` patterns (Rust's `\s` lacks U+001C..U+001F).
pub const PY_SPACE: &str = r"[\s\x1C-\x1F]";

static WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("{PY_WORD}+")).expect("static regex"));

/// `instructions_util.count_words`: the number of `\w+` runs (NLTK's
/// `RegexpTokenizer(r"\w+")`).
pub fn count_words(text: &str) -> usize {
    WORDS.find_iter(text).count()
}

/// NLTK's English Punkt model (`punkt_tab/english/abbrev_types.txt`):
/// tokens that end in a period without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    ". . ", "a.a", "a.c", "a.d", "a.g", "a.h", "a.m", "a.m.e", "a.s", "a.t", "adm", "ala", "ariz",
    "aug", "ave", "b.f", "b.v", "bros", "c", "c.i.t", "c.o.m.b", "c.v", "calif", "chg", "cie",
    "co", "col", "colo", "conn", "corp", "cos", "ct", "d", "d.c", "d.h", "d.w", "dec", "dr", "e",
    "e.f", "e.h", "e.l", "e.m", "f", "f.g", "f.j", "feb", "fla", "fri", "ft", "g", "g.d", "g.f",
    "g.k", "ga", "gen", "h", "h.c", "h.f", "h.m", "i.m.s", "ill", "inc", "j.b", "j.c", "j.j",
    "j.k", "j.p", "j.r", "jan", "jr", "k", "kan", "ky", "l", "l.a", "l.f", "l.p", "lt", "ltd", "m",
    "m.b.a", "m.d.c", "m.j", "maj", "messrs", "mg", "mich", "minn", "mr", "mrs", "ms", "n", "n.c",
    "n.d", "n.h", "n.j", "n.m", "n.v", "n.y", "nev", "nov", "oct", "ok", "okla", "ore", "p",
    "p.a.m", "p.m", "pa", "ph.d", "prof", "r", "r.a", "r.h", "r.i", "r.j", "r.k", "r.t", "rep",
    "reps", "s", "s.a", "s.a.y", "s.c", "s.g", "s.p.a", "s.s", "sen", "sep", "sept", "sr", "st",
    "sw", "t", "t.j", "tenn", "tues", "u.k", "u.n", "u.s", "u.s.a", "u.s.s.r", "v", "va", "vs",
    "vt", "w", "w.c", "w.r", "w.va", "w.w", "wash", "wed", "wis", "yr",
];

/// The English model's frequent sentence starters
/// (`punkt_tab/english/sentence_starters.txt`): a capitalised one after an
/// abbreviation starts a sentence.
const SENTENCE_STARTERS: &[&str] = &[
    "according",
    "although",
    "among",
    "both",
    "but",
    "despite",
    "even",
    "he",
    "however",
    "i",
    "if",
    "in",
    "indeed",
    "instead",
    "it",
    "many",
    "meanwhile",
    "moreover",
    "most",
    "nevertheless",
    "nonetheless",
    "nor",
    "sales",
    "separately",
    "similarly",
    "since",
    "so",
    "some",
    "the",
    "there",
    "these",
    "they",
    "this",
    "though",
    "thus",
    "under",
    "when",
    "while",
    "yet",
];

/// Characters after a sentence-end character that let Punkt consider it
/// (its `period_context` look-ahead, besides whitespace and a token).
const AFTER_TOKEN: &[char] = &[
    '?', '!', ')', '"', ';', '}', ']', '*', ':', '@', '\'', '(', '{', '[',
];

/// Whether a period-final word is a number in Punkt's sense
/// (`^-?[\.,]?\d[\d,\.-]*\.?$`).
fn is_number(w: &str) -> bool {
    static NUM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^-?[\.,]?\d[\d,\.-]*\.?$").expect("static regex"));
    NUM.is_match(w)
}

/// Whether `word` is in `list`, a sorted table (the unit test
/// `tables_are_sorted` keeps them so).
fn is_listed(list: &[&str], word: &str) -> bool {
    list.binary_search(&word).is_ok()
}

/// Whether the candidate end `word` (a whitespace-delimited run ending in
/// `.`, `?` or `!`) ends a sentence, given the word that follows.
fn ends_sentence(word: &str, next: Option<&str>) -> bool {
    // A `?` or `!` is a token of its own, always a sentence end; so is a
    // lone `.`. With more than one in a row the first one decides.
    let trimmed = word.trim_end_matches(['?', '!']);
    if trimmed.len() != word.len() {
        return true;
    }
    if word == "." {
        return true;
    }
    // Leading punctuation is split off by Punkt's word tokenizer.
    let tok = word.trim_start_matches([
        '(', '"', '`', '{', '[', ':', ';', '&', '#', '*', '@', ')', '}', ']', '-', ',', '\'',
    ]);
    if tok.is_empty() {
        return true;
    }
    // An ellipsis is not a break unless the next word is a known sentence
    // starter (the orthographic table is not modelled). Worked out only
    // when asked: most candidate ends never need it.
    let starter = || {
        let Some(n) = next else { return false };
        let n = n.trim_start_matches(['"', '\'', '(', '[', '`']);
        n.chars().next().is_some_and(char::is_uppercase)
            && is_listed(
                SENTENCE_STARTERS,
                n.to_lowercase()
                    .trim_end_matches(['.', ',', '?', '!', ';', ':']),
            )
    };
    if tok.ends_with("..") {
        return starter();
    }
    let typ = tok[..tok.len() - 1].to_lowercase();
    let last_part = typ.rsplit('-').next().unwrap_or(&typ);
    if is_listed(ABBREVIATIONS, &typ) || is_listed(ABBREVIATIONS, last_part) {
        return starter();
    }
    // An initial (`J.`) is taken for an abbreviation.
    let mut cs = typ.chars();
    if let (Some(c), None) = (cs.next(), cs.next())
        && c.is_alphabetic()
    {
        // Punkt's initial heuristic: a next token that is neither upper-
        // nor lowercase (a quote, a digit) leaves the break standing.
        let next_cased = next
            .and_then(|n| n.chars().next())
            .map(|c| c.is_uppercase() || c.is_lowercase());
        if next_cased == Some(false) {
            return true;
        }
        return starter();
    }
    // A number followed by a lowercase word continues the sentence.
    if is_number(tok) {
        let next_lower = next
            .and_then(|n| n.chars().next())
            .is_some_and(char::is_lowercase);
        return !next_lower;
    }
    true
}

/// Punkt's `_realign_boundaries`: closing quotes and brackets that open
/// the next sentence (`["')\]}]+?(?:\s+|(?=--)|$)`) belong to the one
/// before, so `He left."` is one sentence, not one and a lone `"`.
/// Returns where the next sentence starts.
fn realign(text: &str, at: usize) -> usize {
    let rest = &text[at..];
    let run = rest
        .bytes()
        .take_while(|b| matches!(b, b'"' | b'\'' | b')' | b']' | b'}'))
        .count();
    if run == 0 {
        return at;
    }
    let after = &rest[run..];
    let space = after.len() - after.trim_start_matches(char::is_whitespace).len();
    if after.is_empty() || space > 0 || after.starts_with("--") {
        at + run + space
    } else {
        at
    }
}

/// `instructions_util.count_sentences`: the number of sentences NLTK's
/// English Punkt tokenizer finds, approximated (see the module docs).
pub fn count_sentences(text: &str) -> usize {
    let chunks: Vec<(usize, &str)> = text
        .split_inclusive(char::is_whitespace)
        .scan(0usize, |pos, piece| {
            let start = *pos;
            *pos += piece.len();
            Some((start, piece))
        })
        .map(|(s, p)| (s, p.trim_end_matches(char::is_whitespace)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let mut count = 0;
    let mut last_break = 0usize;
    for (i, &(start, chunk)) in chunks.iter().enumerate() {
        let next = chunks.get(i + 1).map(|(_, w)| *w);
        // The longest prefix of the chunk ending in [.?!] whose next
        // character is whitespace (with a token after it) or one of
        // Punkt's after-token characters.
        let mut end = None;
        for (j, c) in chunk.char_indices().rev() {
            if !matches!(c, '.' | '?' | '!') {
                continue;
            }
            let after = chunk[j + c.len_utf8()..].chars().next();
            let ok = match after {
                Some(a) => AFTER_TOKEN.contains(&a),
                None => next.is_some(),
            };
            if ok {
                end = Some(j + c.len_utf8());
                break;
            }
        }
        let Some(end) = end else { continue };
        let word = &chunk[..end];
        let after_is_token = end == chunk.len();
        let brk = if after_is_token {
            ends_sentence(word, next)
        } else {
            // The context is the word plus one punctuation character: a
            // break when the word is one, whatever follows.
            ends_sentence(word, Some(&chunk[end..]))
        };
        if brk {
            if !text[last_break..start + end].trim().is_empty() {
                count += 1;
            }
            last_break = realign(
                text,
                if after_is_token {
                    next.map_or(start + end, |_| chunks[i + 1].0)
                } else {
                    start + end
                },
            );
        }
    }
    if !text[last_break..].trim_end().is_empty() {
        count += 1;
    }
    count
}

/// `text` split at runs of the separators `word_pieces` splits at: what
/// the regex `[\s\x1C-\x1F;@#$%&?!()\[\]{}<>"*,:`]+|\.\.+|--+` matches
/// (`\s` is Unicode's White_Space, as `char::is_whitespace`), written out
/// because it runs on every response. Empty pieces are left out.
fn split_pieces(text: &str) -> impl Iterator<Item = &str> {
    let is_sep = |c: char| {
        c.is_whitespace()
            || ('\x1C'..='\x1F').contains(&c)
            || matches!(
                c,
                ';' | '@'
                    | '#'
                    | '$'
                    | '%'
                    | '&'
                    | '?'
                    | '!'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '<'
                    | '>'
                    | '"'
                    | '*'
                    | ','
                    | ':'
                    | '`'
            )
    };
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while let Some(c) = text[i..].chars().next() {
        let run = if is_sep(c) {
            c.len_utf8()
        } else if (c == '.' || c == '-') && bytes.get(i + 1) == Some(&(c as u8)) {
            bytes[i..].iter().take_while(|&&b| b == c as u8).count()
        } else {
            0
        };
        if run > 0 {
            if start < i {
                pieces.push(&text[start..i]);
            }
            i += run;
            start = i;
        } else {
            i += c.len_utf8();
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces.into_iter()
}

/// Pieces of `nltk.word_tokenize` that can hold letters: whitespace and
/// the punctuation NLTK's Treebank tokenizer splits off separate words,
/// and the contractions it splits (`n't`, `'s`, `'ll`, `cannot`, `gonna`)
/// are split too, so `DON'T` is two capital words as NLTK counts it.
pub fn word_pieces(text: &str) -> Vec<&str> {
    static CONTRACTION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(.*[^'])('s|'m|'d|'ll|'re|'ve|n't)$|^(can)(not)$|^(gon)(na)$|^(got)(ta)$|^(gim)(me)$|^(lem)(me)$|^(wan)(na)$")
            .expect("static regex")
    });
    let mut out = Vec::new();
    for piece in split_pieces(text) {
        // Only a piece with an apostrophe, or of the length of `cannot`,
        // `gonna` and the like, can be a contraction: skip the regex else.
        if !piece.contains('\'') && !matches!(piece.len(), 5 | 6) {
            out.push(piece);
            continue;
        }
        match CONTRACTION.captures(piece) {
            Some(c) => {
                let groups: Vec<&str> = c.iter().skip(1).flatten().map(|m| m.as_str()).collect();
                out.extend(groups);
            }
            None => out.push(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_rules() {
        assert_eq!(py_strip("\u{1c} a \n"), "a");
        assert!(py_isupper("HELLO 1"));
        assert!(!py_isupper("123"));
        assert!(!py_isupper("HELLo"));
        assert!(py_islower("hello 1"));
        assert!(!py_islower("Hello"));
        assert_eq!(count_words("Hello, world! it's 2 o'clock_now"), 7);
    }

    #[test]
    fn sentences() {
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("   "), 0);
        assert_eq!(count_sentences("One."), 1);
        assert_eq!(count_sentences("One. Two! Three? Four"), 4);
        assert_eq!(count_sentences("Mr. Smith went home. He slept."), 2);
        assert_eq!(count_sentences("It costs 3.5 dollars. Cheap."), 2);
        assert_eq!(count_sentences("He said \"stop.\" Then left."), 2);
        assert_eq!(count_sentences("Wait... what"), 1);
    }

    /// Regression: a quoted answer (`"... spirits."`) counted its closing
    /// quote as one more sentence; Punkt realigns it onto the last one.
    /// Expected counts are NLTK 3.10's English Punkt's.
    #[test]
    fn closing_quote_after_the_last_period_is_no_sentence() {
        assert_eq!(count_sentences("\"One. Two.\""), 2);
        assert_eq!(count_sentences("(One. Two.) Three."), 3);
        assert_eq!(count_sentences("He said \"stop.\"x"), 2);
        assert_eq!(count_sentences("a. \" b"), 2);
        assert_eq!(count_sentences("x.\"--y"), 2);
        // An initial before a quote ends its sentence; `c.` is in the
        // abbreviation list, so a digit after it does not.
        assert_eq!(count_sentences("a. \"b\" c. 5 d"), 2);
        assert_eq!(count_sentences("J. Smith came."), 1);
    }

    #[test]
    fn tables_are_sorted() {
        for t in [ABBREVIATIONS, SENTENCE_STARTERS] {
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{:?}", &t[..3]);
        }
        assert!(is_listed(ABBREVIATIONS, "mr") && !is_listed(ABBREVIATIONS, "mister"));
    }

    #[test]
    fn hand_split_equals_the_regex() {
        let re = Regex::new(r#"[\s\x1C-\x1F;@#$%&?!()\[\]{}<>"*,:`]+|\.\.+|--+"#).unwrap();
        for t in [
            "",
            "a",
            "I DON'T KNOW.",
            "WAIT...WHAT--now-then. a.b ..x.. y--",
            "\u{1c}x\u{a0}y\u{2003}z (USA) [a]{b}<c>\"d\"*e*,f:g`h` 1.5 -- é.è",
            "...---...",
        ] {
            let want: Vec<&str> = re.split(t).filter(|p| !p.is_empty()).collect();
            assert_eq!(split_pieces(t).collect::<Vec<_>>(), want, "{t:?}");
        }
    }

    #[test]
    fn capital_words() {
        let up = |t: &str| word_pieces(t).into_iter().filter(|w| py_isupper(w)).count();
        assert_eq!(up("I DON'T KNOW."), 4);
        assert_eq!(up("(USA) and U.S.A. vs usa"), 2);
        assert_eq!(up("WAIT...WHAT"), 2);
    }
}
