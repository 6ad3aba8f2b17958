//! Numeric-answer maths recipes: the answer is a number (or a LaTeX
//! expression of one), compared by value.
//!
//! The constructors take the template (its wording is the benchmark's) and
//! leave the summary and default shots to the benchmark; the extraction and
//! comparison rules are shared.

use super::Sample;
use super::recipe::{Extractor, Recipe, Scorer};
use crate::extract::{self, evalscope, math_verify};

/// The native extraction chain: the last `\boxed{}`, else the last `ANSWER:`
/// line, else the last "answer is", else the last number in the text. The
/// first rule that yields a number wins.
pub fn native_chain(response: &str) -> Option<String> {
    let segment_rules: [fn(&str) -> Option<String>; 3] = [
        extract::last_boxed,
        extract::last_answer_line,
        extract::last_answer_is,
    ];
    segment_rules
        .iter()
        .filter_map(|rule| rule(response))
        .find_map(|seg| extract::first_number(&seg))
        .or_else(|| extract::last_number(response))
}

/// A right answer as the `\boxed{}` prompts ask for it.
fn boxed_answer(s: &Sample) -> String {
    format!("Step by step... so the total is \\boxed{{{}}}.", s.target)
}

/// Our default: extractors `answer-chain` ([`native_chain`]) and
/// `last-number`, numeric comparison ignoring `$`, `,`, `%`, trailing zeros.
pub fn native(template: &str) -> Recipe {
    Recipe::generate(
        "native",
        template,
        vec![
            Extractor::new("answer-chain", |_: &Sample, r: &str| native_chain(r)),
            Extractor::new("last-number", |_: &Sample, r: &str| extract::last_number(r)),
        ],
        Scorer::new("numeric", |s: &Sample, e: &str| {
            extract::numbers_equal(e, &s.target)
        }),
        boxed_answer,
    )
}

/// EvalScope 1.14.1: Math-Verify extraction and exact comparison by value.
pub fn evalscope(template: &str) -> Recipe {
    Recipe::generate(
        "evalscope",
        template,
        // An empty display string is "no answer"; EvalScope scores it 0 too.
        vec![Extractor::new("evalscope", |_: &Sample, r: &str| {
            Some(math_verify::extract_answer(r)).filter(|s| !s.is_empty())
        })],
        Scorer::new("math-verify", |s: &Sample, e: &str| {
            math_verify::compare_answers(e, &s.target)
        }),
        boxed_answer,
    )
    .with_provenance(math_verify::PROVENANCE)
}

/// EvalScope 1.0-1.12: the Qwen-Math extraction chain and `math_equal`
/// (rel_tol 1e-4, x100 and /100 accepted).
pub fn evalscope_1_12(template: &str) -> Recipe {
    Recipe::generate(
        "evalscope-1.12",
        template,
        vec![Extractor::new("evalscope-1.12", |_: &Sample, r: &str| {
            Some(evalscope::extract_answer(r))
        })],
        Scorer::new("math_equal", |s: &Sample, e: &str| {
            evalscope::math_equal(e, &evalscope::strip_answer_string(&s.target))
        }),
        boxed_answer,
    )
    .with_provenance(evalscope::PROVENANCE)
}
