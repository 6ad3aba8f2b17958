//! Multiple-choice recipes: options shown with positional letters `A..`,
//! the answer is a letter, compared with the gold letter ignoring case.
//!
//! A multiple-choice benchmark needs only a dataset whose rows give
//! `choices` and a gold letter (see [`super::Dataset`]); these constructors
//! supply the asking and grading. lm-eval's multiple-choice chat tasks are
//! [`super::lm_eval::GenerateUntil`] recipes.

use super::Sample;
use super::recipe::{Extractor, Recipe, Scorer};
use crate::extract::{self, evalscope};

/// Where the `evalscope` multiple-choice rules come from. The parser did
/// not change with 1.13's move to Math-Verify (which only touched math
/// scoring), and its verdicts were checked against EvalScope 1.14.1.
pub const EVALSCOPE_PROVENANCE: &str = "EvalScope 1.14.1 (verdicts checked; rules read at modelscope/evalscope fde259d2): \
     utils/multi_choices.py parse_answers (PR #1597, last valid ANSWER: marker), SINGLE_ANSWER template";

/// The letter scorer: the extracted letter equals the gold letter, case
/// and surrounding whitespace ignored.
pub fn letter_scorer() -> Scorer {
    Scorer::new("letter", |s: &Sample, e: &str| {
        e.trim().eq_ignore_ascii_case(&s.target)
    })
}

/// Our default: zero-shot (few-shot examples end with their answer line),
/// the question and lettered options, asked to end with `ANSWER: X`;
/// extractors `answer-line` (last valid `ANSWER:` letter) and `last-letter`
/// (that, else the last standalone valid capital).
pub fn native() -> Recipe {
    Recipe::generate(
        "native",
        "mcq_answer_line.jinja",
        vec![
            Extractor::new("answer-line", |s: &Sample, r: &str| {
                extract::last_answer_letter(r, s.choices.len())
            }),
            Extractor::new("last-letter", |s: &Sample, r: &str| {
                let n = s.choices.len();
                extract::last_answer_letter(r, n).or_else(|| extract::last_lone_letter(r, n))
            }),
        ],
        letter_scorer(),
        |s| format!("Let me think about the options.\nANSWER: {}", s.target),
    )
    .with_summary("0-shot chat, positional letters, last valid 'ANSWER: X'")
    .with_provenance("bench native v1 (template after EvalScope/inspect SINGLE_ANSWER)")
}

/// EvalScope's `SINGLE_ANSWER` template and `parse_answers`: the last valid
/// `ANSWER:` marker, else the last capital letter if valid.
pub fn evalscope() -> Recipe {
    Recipe::generate(
        "evalscope",
        "mcq_evalscope.jinja",
        vec![Extractor::new("evalscope", |s: &Sample, r: &str| {
            evalscope::parse_mcq_answer(r, &extract::letters(s.choices.len())).map(String::from)
        })],
        letter_scorer(),
        |s| format!("ANSWER: {}", s.target),
    )
    .with_summary("EvalScope 1.x (unchanged in 1.14.1): SINGLE_ANSWER template, last valid ANSWER: marker, else last capital letter")
    .with_provenance(EVALSCOPE_PROVENANCE)
}
