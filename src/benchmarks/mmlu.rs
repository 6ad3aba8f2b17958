//! MMLU (`cais/mmlu`, Hendrycks et al.): 57 subjects of four-option
//! multiple choice, each a hub config with splits `test` (evaluated), `dev`
//! (five few-shot examples) and `validation`.
//!
//! Each subject is a subset (its real config name), so reports give every
//! subject and the overall micro average; each item also carries its
//! `subject` and `category` (STEM, humanities, social sciences, other) as
//! metadata, and `category` is a report group. The subject -> category table
//! is the MMLU authors' `categories.py` (subject -> subcategory ->
//! category), which EvalScope's `SUBJECT_MAPPING` and simple-evals'
//! `subject2category` follow; lm-evaluation-harness's `_generate_configs.py`
//! differs on one subject (`anatomy` is `stem` there, `other` here).
//!
//! `answer` is an index 0-3 (the hub's `ClassLabel` over A-D); the gold
//! answer is its positional letter.

use serde_json::{Value, json};

use super::loglikelihood::{ChoiceSource, LlMetric, lm_eval_ll};
use super::recipe::{Recipe, ShotPolicy};
use super::{Benchmark, Dataset, SampleFields, SubsetSource, mcq, str_field};
use crate::dataset::Row;
use crate::extract;

/// The hub commit the fixtures and records name (see the shared copy's
/// README: the "Upload dataset" commit that re-added `all/auxiliary_train`).
pub const REVISION: &str = "c30699e8356da336a370243923dbaf21066bb9fe";

/// The four MMLU categories, as the authors' `categories.py` names them
/// (`other (business, health, misc.)` shortened to `other`).
pub const CATEGORIES: [&str; 4] = ["STEM", "humanities", "social sciences", "other"];

/// Every subject (the hub config name), its subcategory and its category,
/// in the hub's (alphabetical) order: the MMLU authors' `categories.py`.
pub const SUBJECTS: [(&str, &str, &str); 57] = [
    ("abstract_algebra", "math", "STEM"),
    ("anatomy", "health", "other"),
    ("astronomy", "physics", "STEM"),
    ("business_ethics", "business", "other"),
    ("clinical_knowledge", "health", "other"),
    ("college_biology", "biology", "STEM"),
    ("college_chemistry", "chemistry", "STEM"),
    ("college_computer_science", "computer science", "STEM"),
    ("college_mathematics", "math", "STEM"),
    ("college_medicine", "health", "other"),
    ("college_physics", "physics", "STEM"),
    ("computer_security", "computer science", "STEM"),
    ("conceptual_physics", "physics", "STEM"),
    ("econometrics", "economics", "social sciences"),
    ("electrical_engineering", "engineering", "STEM"),
    ("elementary_mathematics", "math", "STEM"),
    ("formal_logic", "philosophy", "humanities"),
    ("global_facts", "other", "other"),
    ("high_school_biology", "biology", "STEM"),
    ("high_school_chemistry", "chemistry", "STEM"),
    ("high_school_computer_science", "computer science", "STEM"),
    ("high_school_european_history", "history", "humanities"),
    ("high_school_geography", "geography", "social sciences"),
    (
        "high_school_government_and_politics",
        "politics",
        "social sciences",
    ),
    ("high_school_macroeconomics", "economics", "social sciences"),
    ("high_school_mathematics", "math", "STEM"),
    ("high_school_microeconomics", "economics", "social sciences"),
    ("high_school_physics", "physics", "STEM"),
    ("high_school_psychology", "psychology", "social sciences"),
    ("high_school_statistics", "math", "STEM"),
    ("high_school_us_history", "history", "humanities"),
    ("high_school_world_history", "history", "humanities"),
    ("human_aging", "health", "other"),
    ("human_sexuality", "culture", "social sciences"),
    ("international_law", "law", "humanities"),
    ("jurisprudence", "law", "humanities"),
    ("logical_fallacies", "philosophy", "humanities"),
    ("machine_learning", "computer science", "STEM"),
    ("management", "business", "other"),
    ("marketing", "business", "other"),
    ("medical_genetics", "health", "other"),
    ("miscellaneous", "other", "other"),
    ("moral_disputes", "philosophy", "humanities"),
    ("moral_scenarios", "philosophy", "humanities"),
    ("nutrition", "health", "other"),
    ("philosophy", "philosophy", "humanities"),
    ("prehistory", "history", "humanities"),
    ("professional_accounting", "other", "other"),
    ("professional_law", "law", "humanities"),
    ("professional_medicine", "health", "other"),
    ("professional_psychology", "psychology", "social sciences"),
    ("public_relations", "politics", "social sciences"),
    ("security_studies", "politics", "social sciences"),
    ("sociology", "culture", "social sciences"),
    ("us_foreign_policy", "politics", "social sciences"),
    ("virology", "health", "other"),
    ("world_religions", "philosophy", "humanities"),
];

/// A subject's category, if it is an MMLU subject.
pub fn category(subject: &str) -> Option<&'static str> {
    SUBJECTS
        .iter()
        .find(|(s, _, _)| *s == subject)
        .map(|(_, _, c)| *c)
}

/// The 57 subjects, each its own config: `test` evaluated, `dev` few-shot.
pub fn dataset() -> Dataset {
    Dataset::new(
        "cais/mmlu",
        REVISION,
        SUBJECTS
            .iter()
            .map(|(s, _, _)| SubsetSource::parquet(s, s, "test", "dev"))
            .collect(),
        to_fields,
    )
    .with_groups(&["category"])
}

/// MMLU, all 57 subjects.
pub fn mmlu() -> Benchmark {
    Benchmark::new(
        "mmlu",
        "MMLU, 57 subjects x 4 options, test (14042 items); per subject, per category and overall",
        dataset(),
        recipes(),
    )
}

/// MMLU's recipes, the default (`native`) first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        mcq::native().with_summary("0-shot chat, letters A-D, last valid 'ANSWER: X'"),
        evalscope(),
        lm_eval_ll(
            "lm-eval-ll",
            "lm-eval mmlu loglikelihood: description + 5 first dev examples + 'question\\nA. ..\\nAnswer:', choices ' A'..' D', acc; group = size-weighted mean",
            "lm_eval/tasks/mmlu/default/_default_template_yaml, mmlu_<subject>.yaml, _mmlu.yaml",
            "lm_eval_mmlu.jinja",
            Some("lm_eval_mmlu_description.jinja"),
            5,
            ShotPolicy::FirstN,
            ChoiceSource::Letters,
            vec![LlMetric::Acc],
        ),
    ]
}

/// EvalScope's `mmlu` adapter: the `SINGLE_ANSWER_COT` template, 5-shot
/// from `dev` (the first five rows of the item's subject, each ending
/// `ANSWER: X`), parsed by `parse_answers`.
fn evalscope() -> Recipe {
    mcq::evalscope()
        .with_template("mcq_evalscope_cot.jinja")
        .with_default_few_shot(5)
        .with_shots(ShotPolicy::FirstN)
        .with_summary(
            "EvalScope 1.x mmlu: 5-shot from dev, SINGLE_ANSWER_COT template, last valid ANSWER: marker, else last capital letter",
        )
        .with_provenance(format!(
            "{}; benchmarks/mmlu/mmlu_adapter.py (few_shot_num=5, train_split=dev, SINGLE_ANSWER_COT)",
            mcq::EVALSCOPE_PROVENANCE
        ))
        .with_answer_format(|s| {
            format!(
                "Let me think step by step about each option.\nANSWER: {}",
                s.target
            )
        })
}

/// An MMLU row (`question`, `subject`, `choices`, `answer`) as sample fields.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let question = str_field(row, "question")?;
    let subject = str_field(row, "subject")?;
    let category = category(&subject)
        .ok_or_else(|| format!("column `subject`: `{subject}` is not an MMLU subject"))?;
    let choices = str_list(row, "choices")?;
    if !(2..=26).contains(&choices.len()) {
        return Err(format!(
            "column `choices`: {} options, expected 2 to 26",
            choices.len()
        ));
    }
    let answer = match row.get("answer") {
        Some(Value::Number(n)) => n.as_u64().filter(|&a| (a as usize) < choices.len()),
        Some(_) => None,
        None => return Err("column `answer` is missing".into()),
    }
    .ok_or_else(|| {
        format!(
            "column `answer`: {} is not an index into the {} choices",
            row.get("answer").map(Value::to_string).unwrap_or_default(),
            choices.len()
        )
    })? as usize;
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("subject".to_string(), json!(subject));
    metadata.insert("category".to_string(), json!(category));
    Ok(SampleFields {
        question,
        target: extract::letters(answer + 1)[answer].to_string(),
        choices,
        metadata,
        ..SampleFields::default()
    })
}

/// A list-of-strings column.
pub fn str_list(row: &Row, key: &str) -> Result<Vec<String>, String> {
    row.get(key)
        .ok_or_else(|| format!("column `{key}` is missing"))?
        .as_array()
        .ok_or_else(|| format!("column `{key}` is not a list"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("column `{key}` holds a non-string: {v}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::{Sample, context};
    use crate::prompt::Prompts;

    fn row(v: Value) -> Row {
        serde_json::from_value(v).unwrap()
    }

    fn good() -> Value {
        json!({"question": "Q?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 3})
    }

    #[test]
    fn subjects_are_the_57_configs_in_hub_order_with_four_categories() {
        assert_eq!(SUBJECTS.len(), 57);
        let mut sorted: Vec<&str> = SUBJECTS.iter().map(|s| s.0).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, SUBJECTS.iter().map(|s| s.0).collect::<Vec<_>>());
        for c in CATEGORIES {
            assert!(SUBJECTS.iter().any(|s| s.2 == c), "{c}");
        }
        assert!(SUBJECTS.iter().all(|s| CATEGORIES.contains(&s.2)));
        // The authors' counts: 18 STEM, 13 humanities, 12 social sciences, 14 other.
        let n = |c: &str| SUBJECTS.iter().filter(|s| s.2 == c).count();
        assert_eq!(
            (n("STEM"), n("humanities"), n("social sciences"), n("other")),
            (18, 13, 12, 14)
        );
    }

    #[test]
    fn answer_index_is_the_gold_letter_and_metadata_names_subject_and_category() {
        let f = to_fields(&row(good())).unwrap();
        assert_eq!(f.target, "D");
        assert_eq!(f.choices.len(), 4);
        assert_eq!(f.metadata["subject"], "anatomy");
        assert_eq!(f.metadata["category"], "other");
        let mut r = good();
        r["answer"] = json!(0);
        r["subject"] = json!("college_physics");
        let f = to_fields(&row(r)).unwrap();
        assert_eq!(
            (f.target.as_str(), &f.metadata["category"]),
            ("A", &json!("STEM"))
        );
    }

    #[test]
    fn bad_rows_name_the_column() {
        let cases: [(&str, Value, &str); 7] = [
            ("answer", json!(4), "column `answer`: 4 is not an index"),
            ("answer", json!(-1), "column `answer`: -1 is not an index"),
            (
                "answer",
                json!("B"),
                "column `answer`: \"B\" is not an index",
            ),
            ("choices", json!("abcd"), "column `choices` is not a list"),
            (
                "choices",
                json!(["a", 2]),
                "column `choices` holds a non-string",
            ),
            (
                "subject",
                json!("astrology"),
                "column `subject`: `astrology` is not an MMLU subject",
            ),
            ("question", json!(null), "column `question` is not a string"),
        ];
        for (key, value, want) in cases {
            let mut r = good();
            r[key] = value;
            let e = to_fields(&row(r)).unwrap_err();
            assert!(e.starts_with(want), "{key}: {e}");
        }
        let mut r = good();
        r.as_object_mut().unwrap().remove("answer");
        assert_eq!(
            to_fields(&row(r)).unwrap_err(),
            "column `answer` is missing"
        );
    }

    #[test]
    fn evalscope_prompt_is_five_shot_cot() {
        let b = mmlu();
        let r = b.recipe("evalscope").unwrap();
        assert_eq!(r.default_few_shot, 5);
        let s = Sample::from_fields(to_fields(&row(good())).unwrap(), "anatomy", "test", 0);
        let p = Prompts::load(None).unwrap();
        let out = p
            .render(&r.template, context(&s, &[s.clone(), s.clone()]))
            .unwrap();
        assert_eq!(
            out,
            "Here are some examples of how to answer similar questions:\n\n\
             Q?\nA) a\nB) b\nC) c\nD) d\nANSWER: D\n\n\
             Q?\nA) a\nB) b\nC) c\nD) d\nANSWER: D\n\n\
             Answer the following multiple choice question. The last line of your response should be of the following format: \
             'ANSWER: [LETTER]' (without quotes) where [LETTER] is one of A,B,C,D. Think step by step before answering.\n\n\
             Q?\n\nA) a\nB) b\nC) c\nD) d"
        );
        let zero = p.render(&r.template, context(&s, &[])).unwrap();
        assert!(zero.starts_with("Answer the following"), "{zero}");
        // EvalScope's parser: the last valid marker, else the last capital.
        let g = r.grade(&s, "A is wrong, B too.\nANSWER: D");
        assert!(g[0].correct);
        assert!(!r.grade(&s, "ANSWER: E")[0].correct);
    }
}
