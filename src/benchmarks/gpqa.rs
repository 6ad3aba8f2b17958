//! GPQA Diamond (`Idavidrein/gpqa`, config `gpqa_diamond`, 198 questions):
//! graduate-level biology, physics and chemistry, four options. The repo is
//! gated: downloads need `HF_TOKEN` from an account that accepted its terms,
//! and a 401 says so.
//!
//! The hub repo holds CSV files (`gpqa_diamond.csv` on `main`); the parquet
//! is the hub's conversion, `gpqa_diamond/train/0000.parquet` on the
//! `refs/convert/parquet` branch, which is what bench reads.
//!
//! The row gives the correct answer and three distractors as columns, so
//! the options must be ordered by a rule. Both recipes use EvalScope's
//! (`gpqa_adapter.py` `_process_input`): the stripped texts
//! `[Incorrect Answer 1, 2, 3, Correct Answer]` shuffled by
//! `random.Random(s)` with `s` the first 8 bytes (big-endian) of sha256 of
//! the stripped question, so the order depends on the item alone (not on
//! row order, unlike simple-evals' one `Random(0)` drawing a permutation
//! per row in file order). Each sample records `shuffle_seed` and
//! `permutation` (the source column of each shown option: 0-2 the
//! incorrect answers, 3 the correct one) in its metadata, with `Subdomain`
//! and `High-level domain` (a report group).

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::recipe::Recipe;
use super::{Benchmark, Dataset, SampleFields, SubsetSource, mcq, str_field};
use crate::dataset::Row;
use crate::extract::{self, lm_eval::py_strip};
use crate::pyrandom::PyRandom;

/// The option columns, in the order EvalScope shuffles them.
pub const OPTION_COLUMNS: [&str; 4] = [
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Correct Answer",
];

/// EvalScope's per-question seed: the first 8 bytes (big-endian) of sha256
/// of the stripped question.
pub fn question_seed(question: &str) -> u64 {
    let digest = Sha256::digest(py_strip(question).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The hub's `main` commit of `Idavidrein/gpqa`. The rows are read from
/// the convert branch (resolved once per run and recorded in `run.json`),
/// since `main` holds only CSV.
pub const REVISION: &str = "633f5ee89ab8ad4522a9f850766b73f62147ffdd";

/// The `gpqa_diamond` config's only split, `train`, from the convert
/// branch, reported per `High-level domain`.
pub fn dataset() -> Dataset {
    Dataset::new(
        "Idavidrein/gpqa",
        REVISION,
        vec![SubsetSource::convert(
            "gpqa_diamond",
            "gpqa_diamond",
            "train",
            "train",
        )],
        to_fields,
    )
    .with_groups(&["High-level domain"])
}

/// GPQA Diamond.
pub fn gpqa_diamond() -> Benchmark {
    Benchmark::new(
        "gpqa_diamond",
        "GPQA Diamond (gated: needs HF_TOKEN), 198 items, 4 options shuffled per item (EvalScope's rule, seed recorded); per domain",
        dataset(),
        recipes(),
    )
}

/// GPQA's recipes, the default (`native`) first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        mcq::native().with_summary(
            "0-shot chat, options shuffled per item (EvalScope's rule), last valid 'ANSWER: X'",
        ),
        mcq::evalscope()
            .with_template("mcq_evalscope_cot.jinja")
            .with_summary(
                "EvalScope 1.x gpqa_diamond: 0-shot SINGLE_ANSWER_COT, options shuffled by sha256(question), last valid ANSWER: marker",
            )
            .with_provenance(format!(
                "{}; benchmarks/gpqa/gpqa_adapter.py (few_shot_num=0, SINGLE_ANSWER_COT, _process_input shuffle)",
                mcq::EVALSCOPE_PROVENANCE
            ))
            .with_answer_format(|s| {
                format!("Reasoning through each option.\nANSWER: {}", s.target)
            }),
    ]
}

/// A GPQA row as sample fields, options shuffled.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let question = str_field(row, "Question")?;
    let texts: Vec<String> = OPTION_COLUMNS
        .iter()
        .map(|c| str_field(row, c).map(|t| py_strip(&t).to_string()))
        .collect::<Result<_, _>>()?;
    let seed = question_seed(&question);
    let mut perm: Vec<usize> = (0..texts.len()).collect();
    PyRandom::new(seed).shuffle(&mut perm);
    let choices: Vec<String> = perm.iter().map(|&i| texts[i].clone()).collect();
    // `choices.index(correct)`: the first option with the correct text.
    let at = choices
        .iter()
        .position(|c| *c == texts[3])
        .ok_or("column `Correct Answer`: not among the shuffled options")?;
    let mut metadata = BTreeMap::new();
    metadata.insert("shuffle_seed".to_string(), json!(seed));
    metadata.insert("permutation".to_string(), json!(perm));
    for key in ["Subdomain", "High-level domain"] {
        metadata.insert(key.to_string(), json!(str_field(row, key)?));
    }
    Ok(SampleFields {
        id: Some(str_field(row, "Record ID")?),
        question,
        choices,
        target: extract::letters(at + 1)[at].to_string(),
        metadata,
        ..SampleFields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn good() -> Value {
        json!({
            "Question": "What is X?", "Correct Answer": " ok ", "Incorrect Answer 1": "i1",
            "Incorrect Answer 2": "i2", "Incorrect Answer 3": "i3", "Record ID": "rec1",
            "Subdomain": "Physics (general)", "High-level domain": "Physics",
        })
    }

    fn row(v: Value) -> Row {
        serde_json::from_value(v).unwrap()
    }

    /// The seed and order were computed with CPython 3 (`hashlib`,
    /// `random.Random(seed).shuffle`) on EvalScope's formula.
    #[test]
    fn shuffle_matches_evalscope() {
        let f = to_fields(&row(good())).unwrap();
        assert_eq!(f.metadata["shuffle_seed"], json!(12799445389300361902u64));
        assert_eq!(f.choices, ["ok", "i1", "i3", "i2"]);
        assert_eq!(f.metadata["permutation"], json!([3, 0, 2, 1]));
        assert_eq!(f.target, "A");
        assert_eq!(f.id.as_deref(), Some("rec1"));
        assert_eq!(f.metadata["High-level domain"], "Physics");
    }

    #[test]
    fn bad_rows_name_the_column() {
        for key in OPTION_COLUMNS
            .iter()
            .chain(&["Question", "Record ID", "High-level domain"])
        {
            let mut v = good();
            v[key] = Value::Null;
            let e = to_fields(&row(v)).unwrap_err();
            assert_eq!(e, format!("column `{key}` is not a string: null"));
            let mut v = good();
            v.as_object_mut().unwrap().remove(*key);
            let e = to_fields(&row(v)).unwrap_err();
            assert_eq!(e, format!("column `{key}` is missing"));
        }
    }
}
