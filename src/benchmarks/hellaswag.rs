//! HellaSwag (`Rowan/hellaswag`): pick the most plausible ending of an
//! ActivityNet or WikiHow context, four endings each; validation split
//! (10,042 items) evaluated, few-shot examples from `train`.
//!
//! Rows are cleaned as lm-eval's `hellaswag/utils.py` does
//! (`process_docs`): the query is
//! `preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`
//! and each ending `preprocess(ending)`, where
//! `preprocess` strips, turns `" [title]"` into `". "`, drops every
//! `[...]` (WikiHow's `[header]`, `[step]` artifacts) and folds double
//! spaces once. The repo keeps a loading script on `main`, so the rows are
//! read from the hub's parquet conversion.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::loglikelihood::{ChoiceSource, LlMetric, lm_eval_ll};
use super::recipe::{Recipe, ShotPolicy};
use super::{Benchmark, Dataset, SampleFields, SubsetSource, str_field};
use crate::dataset::Row;
use crate::extract;

/// HellaSwag, validation.
pub fn hellaswag() -> Benchmark {
    Benchmark::new(
        "hellaswag",
        "HellaSwag, validation (10042 items x 4 endings), lm-eval's cleanup; loglikelihood only (needs prompt logprobs)",
        dataset(),
        recipes(),
    )
}

/// The convert branch's `default` config: validation evaluated, train for
/// few-shot examples (several files: listed at run time).
pub fn dataset() -> Dataset {
    Dataset::new(
        "Rowan/hellaswag",
        "main",
        vec![SubsetSource::convert("default", "default", "validation", "train").discovered()],
        to_fields,
    )
}

/// lm-eval's `hellaswag`: acc and acc_norm (`lm-eval-ll-norm` puts
/// acc_norm first, the number the Open LLM Leaderboard quoted); 10-shot by
/// default, as the leaderboard ran it.
pub fn recipes() -> Vec<Recipe> {
    let recipe = |id: &str, metrics: Vec<LlMetric>| {
        lm_eval_ll(
            id,
            &format!(
                "lm-eval hellaswag loglikelihood: cleaned '<activity>: <context>' + ' <ending>', {} first; 10-shot from train (seed 1234)",
                metrics[0].name()
            ),
            "lm_eval/tasks/hellaswag/hellaswag.yaml, utils.py",
            "lm_eval_query.jinja",
            None,
            10,
            ShotPolicy::LmEvalRandom { seed: 1234 },
            ChoiceSource::Texts,
            metrics,
        )
    };
    vec![
        recipe("lm-eval-ll", vec![LlMetric::Acc, LlMetric::AccNorm]),
        recipe("lm-eval-ll-norm", vec![LlMetric::AccNorm, LlMetric::Acc]),
    ]
}

/// lm-eval's `preprocess`.
pub fn preprocess(text: &str) -> String {
    static BRACKETS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[.*?\]").expect("a constant pattern"));
    let t = extract::lm_eval::py_strip(text).replace(" [title]", ". ");
    let t = BRACKETS.replace_all(&t, "");
    t.replace("  ", " ")
}

/// Python's `str.capitalize()`: the first character upper-cased (title
/// case), the rest lower-cased.
pub fn py_capitalize(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(first) => first
            .to_uppercase()
            .chain(cs.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// A row as sample fields: the cleaned query and endings, the gold letter.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let activity = str_field(row, "activity_label")?;
    let ctx_a = str_field(row, "ctx_a")?;
    let ctx_b = str_field(row, "ctx_b")?;
    let endings = super::mmlu::str_list(row, "endings")?;
    if !(2..=26).contains(&endings.len()) {
        return Err(format!(
            "column `endings`: {} endings (2 to 26 expected)",
            endings.len()
        ));
    }
    let label = match row.get("label") {
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        _ => None,
    }
    .filter(|&l| l < endings.len())
    .ok_or_else(|| {
        format!(
            "column `label`: {:?} is not an ending's index",
            row.get("label")
        )
    })?;
    let ctx = format!("{ctx_a} {}", py_capitalize(&ctx_b));
    Ok(SampleFields {
        id: row.get("ind").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        question: preprocess(&format!("{activity}: {ctx}")),
        choices: endings.iter().map(|e| preprocess(e)).collect(),
        target: extract::letters(label + 1)[label].to_string(),
        ..SampleFields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand from lm-eval's `preprocess`: strip, `" [title]"` ->
    /// `". "`, brackets removed, each "  " folded once (so "   " stays "  ").
    #[test]
    fn preprocess_as_lm_eval() {
        assert_eq!(
            preprocess(" Home: [header] How to clean [title] Wipe it.  Then   dry. "),
            "Home: How to clean. Wipe it. Then  dry."
        );
        assert_eq!(py_capitalize("then THE man"), "Then the man");
        assert_eq!(py_capitalize(""), "");
    }
}
