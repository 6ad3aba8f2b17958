//! AIME 2024 (`HuggingFaceH4/aime_2024`, split `train`) and AIME 2025
//! (`math-ai/aime25`, split `test`): 30 competition problems each, every
//! answer an integer 0-999.
//!
//! `aime24`'s repo has parquet on `main` (no known hub commit: `main` is
//! resolved once per run and recorded); `aime25`'s `main` holds only
//! `test.jsonl`, so its rows come from the hub's parquet convert branch
//! ([`SubsetSource::convert`]). Two recipes from [`super::math`]: `native`
//! (boxed prompt, numeric compare) and `evalscope` (EvalScope's AIME prompt,
//! Math-Verify extraction and comparison). Models are often sampled several
//! times per problem here: see `--repeats`.

use serde_json::Value;

use super::{Benchmark, Dataset, Recipe, SampleFields, SubsetSource, math, str_field};
use crate::dataset::Row;

/// EvalScope's AIME adapter (the same prompt for aime24/25/26).
const EVALSCOPE_PROMPT: &str =
    "evalscope@fde259d2 evalscope/benchmarks/aime/aime_adapter.py PROMPT_TEMPLATE";

/// The AIME 2024 data: `default`, split `train` (the only one).
pub fn dataset_2024() -> Dataset {
    Dataset::new(
        "HuggingFaceH4/aime_2024",
        "main",
        vec![SubsetSource::parquet("default", "data", "train", "train")],
        to_fields,
    )
}

/// The AIME 2025 data: `default`, split `test`, from the convert branch.
pub fn dataset_2025() -> Dataset {
    Dataset::new(
        "math-ai/aime25",
        "main",
        vec![SubsetSource::convert("default", "default", "test", "test").discovered()],
        to_fields,
    )
}

/// `aime24`.
pub fn aime24() -> Benchmark {
    Benchmark::new(
        "aime24",
        "AIME 2024 I+II (HuggingFaceH4/aime_2024, train split, 30 items, integer answers 0-999)",
        dataset_2024(),
        recipes(),
    )
}

/// `aime25`.
pub fn aime25() -> Benchmark {
    Benchmark::new(
        "aime25",
        "AIME 2025 I+II (math-ai/aime25, test split from the parquet convert branch, 30 items, integer answers 0-999)",
        dataset_2025(),
        recipes(),
    )
}

/// The AIME recipes, `native` first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        math::native("aime_boxed.jinja")
            .with_summary("0-shot, answer in \\boxed{}; last \\boxed{}, else ANSWER:, else 'answer is', else last number; numeric compare (025 = 25)")
            .with_provenance("bench native v1"),
        math::evalscope("aime_evalscope.jinja")
            .with_summary("EvalScope: 0-shot, its AIME prompt (\\boxed{} asked twice), Math-Verify extraction and comparison")
            .with_provenance(format!(
                "{}; prompt {EVALSCOPE_PROMPT}",
                crate::extract::math_verify::PROVENANCE
            )),
    ]
}

/// A row: `problem`, `answer` (integer text, leading zeros in aime_2024:
/// `025`), `id` (int in 2024, string in 2025), `solution` (2024 only).
/// The target is the integer without leading zeros, so `25` and `025` both
/// match it.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let question = str_field(row, "problem")?;
    let raw = match row.get("answer") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("column `answer` is not an integer: {other}")),
        None => return Err("column `answer` is missing".into()),
    };
    let n: u32 = raw
        .parse()
        .map_err(|_| format!("column `answer` is not an integer 0-999: {raw:?}"))?;
    if n > 999 {
        return Err(format!("column `answer` is not an integer 0-999: {raw:?}"));
    }
    let id = match row.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let reference = match row.get("solution") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Ok(SampleFields {
        id,
        question,
        target: n.to_string(),
        reference,
        ..SampleFields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_integers_without_leading_zeros() {
        let row = |answer: Value| -> Row {
            serde_json::json!({"problem": "p", "answer": answer, "id": 60})
                .as_object()
                .unwrap()
                .clone()
        };
        let f = to_fields(&row("025".into())).unwrap();
        assert_eq!((f.target.as_str(), f.id.as_deref()), ("25", Some("60")));
        assert_eq!(to_fields(&row("0".into())).unwrap().target, "0");
        assert_eq!(to_fields(&row(Value::from(999))).unwrap().target, "999");
        for bad in ["1000", "-1", "3/4", ""] {
            let e = to_fields(&row(bad.into())).unwrap_err();
            assert!(e.contains("0-999"), "{bad}: {e}");
        }
    }

    #[test]
    fn sources() {
        assert_eq!(aime24().dataset.revisions(), ["main"]);
        assert_eq!(aime25().dataset.revisions(), [crate::hub::CONVERT_BRANCH]);
        assert!(
            aime25()
                .dataset
                .pin_status()
                .starts_with("resolved refs/convert/parquet")
        );
    }
}
