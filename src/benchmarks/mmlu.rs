//! MMLU (`cais/mmlu`, Hendrycks et al.): 57 subjects of four-option
//! multiple choice, each a hub config with splits `test` (evaluated), `dev`
//! (five few-shot examples) and `validation`.
//!
//! Each subject is a subset (its real config name), so reports give every
//! subject and the overall micro average; each item also carries its
//! `subject`, `category` (STEM, humanities, social sciences, other) and
//! `lm_eval_group` (stem, humanities, social sciences, other) as metadata.
//! The subject -> category table is the MMLU authors' `categories.py`
//! (subject -> subcategory -> category), which EvalScope's
//! `SUBJECT_MAPPING` and simple-evals' `subject2category` follow; it is the
//! report group of the `native` and `evalscope` recipes. lm-evaluation-
//! harness tags every subject with one of its four groups
//! (`mmlu_<subject>.yaml` `tag: mmlu_<group>_tasks`), which differ from the
//! authors' on one subject (`anatomy` is `stem` there, `other` here); the
//! `lm-eval-ll` recipe reports those groups, aggregated as lm-eval does
//! (see [`crate::record::groups_for`]).
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

/// lm-eval's four MMLU groups, by their `group_alias` (`_mmlu_<group>.yaml`).
pub const LM_EVAL_GROUPS: [&str; 4] = ["stem", "other", "social sciences", "humanities"];

/// Every subject and the lm-eval group its task is tagged with, in hub
/// order: `tag: mmlu_<group>_tasks` in lm-eval 0.4.13's
/// `tasks/mmlu/default/mmlu_<subject>.yaml`, the group written as its
/// `group_alias`.
pub const LM_EVAL_SUBJECT_GROUPS: [(&str, &str); 57] = [
    ("abstract_algebra", "stem"),
    ("anatomy", "stem"),
    ("astronomy", "stem"),
    ("business_ethics", "other"),
    ("clinical_knowledge", "other"),
    ("college_biology", "stem"),
    ("college_chemistry", "stem"),
    ("college_computer_science", "stem"),
    ("college_mathematics", "stem"),
    ("college_medicine", "other"),
    ("college_physics", "stem"),
    ("computer_security", "stem"),
    ("conceptual_physics", "stem"),
    ("econometrics", "social sciences"),
    ("electrical_engineering", "stem"),
    ("elementary_mathematics", "stem"),
    ("formal_logic", "humanities"),
    ("global_facts", "other"),
    ("high_school_biology", "stem"),
    ("high_school_chemistry", "stem"),
    ("high_school_computer_science", "stem"),
    ("high_school_european_history", "humanities"),
    ("high_school_geography", "social sciences"),
    ("high_school_government_and_politics", "social sciences"),
    ("high_school_macroeconomics", "social sciences"),
    ("high_school_mathematics", "stem"),
    ("high_school_microeconomics", "social sciences"),
    ("high_school_physics", "stem"),
    ("high_school_psychology", "social sciences"),
    ("high_school_statistics", "stem"),
    ("high_school_us_history", "humanities"),
    ("high_school_world_history", "humanities"),
    ("human_aging", "other"),
    ("human_sexuality", "social sciences"),
    ("international_law", "humanities"),
    ("jurisprudence", "humanities"),
    ("logical_fallacies", "humanities"),
    ("machine_learning", "stem"),
    ("management", "other"),
    ("marketing", "other"),
    ("medical_genetics", "other"),
    ("miscellaneous", "other"),
    ("moral_disputes", "humanities"),
    ("moral_scenarios", "humanities"),
    ("nutrition", "other"),
    ("philosophy", "humanities"),
    ("prehistory", "humanities"),
    ("professional_accounting", "other"),
    ("professional_law", "humanities"),
    ("professional_medicine", "other"),
    ("professional_psychology", "social sciences"),
    ("public_relations", "social sciences"),
    ("security_studies", "social sciences"),
    ("sociology", "social sciences"),
    ("us_foreign_policy", "social sciences"),
    ("virology", "other"),
    ("world_religions", "humanities"),
];

/// The lm-eval group a subject's task is tagged with, if it is an MMLU
/// subject.
pub fn lm_eval_group(subject: &str) -> Option<&'static str> {
    LM_EVAL_SUBJECT_GROUPS
        .iter()
        .find(|(s, _)| *s == subject)
        .map(|(_, g)| *g)
}

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

/// The metadata key of a sample's lm-eval group.
pub const LM_EVAL_GROUP_KEY: &str = "lm_eval_group";

/// MMLU's recipes, the default (`native`) first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        mcq::native().with_summary("0-shot chat, letters A-D, last valid 'ANSWER: X'"),
        evalscope(),
        lm_eval_ll(
            "lm-eval-ll",
            "lm-eval mmlu loglikelihood: description + 5 first dev examples + 'question\\nA. ..\\nAnswer:', choices ' A'..' D', acc; groups stem/other/social sciences/humanities and mmlu = size-weighted means, pooled_sample_stderr over subjects",
            "lm_eval/tasks/mmlu/default/_default_template_yaml, mmlu_<subject>.yaml, _mmlu.yaml",
            "lm_eval_mmlu.jinja",
            Some("lm_eval_mmlu_description.jinja"),
            5,
            ShotPolicy::FirstN,
            ChoiceSource::Letters,
            vec![LlMetric::Acc],
        )
        // lm-eval's groups, not the authors' categories: this recipe's
        // report is the one compared with lm-eval's `mmlu` table.
        .with_groups(&[LM_EVAL_GROUP_KEY]),
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
    let not_mmlu = || format!("column `subject`: `{subject}` is not an MMLU subject");
    let category = category(&subject).ok_or_else(not_mmlu)?;
    let group = lm_eval_group(&subject).ok_or_else(not_mmlu)?;
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
    metadata.insert(LM_EVAL_GROUP_KEY.to_string(), json!(group));
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

    /// lm-eval 0.4.13's tag of every subject, written out from
    /// `tasks/mmlu/default/mmlu_<subject>.yaml` (`tag: mmlu_<group>_tasks`)
    /// as a list per group, independently of [`LM_EVAL_SUBJECT_GROUPS`].
    const YAML_TAGS: [(&str, &[&str]); 4] = [
        (
            "stem",
            &[
                "abstract_algebra",
                "anatomy",
                "astronomy",
                "college_biology",
                "college_chemistry",
                "college_computer_science",
                "college_mathematics",
                "college_physics",
                "computer_security",
                "conceptual_physics",
                "electrical_engineering",
                "elementary_mathematics",
                "high_school_biology",
                "high_school_chemistry",
                "high_school_computer_science",
                "high_school_mathematics",
                "high_school_physics",
                "high_school_statistics",
                "machine_learning",
            ],
        ),
        (
            "other",
            &[
                "business_ethics",
                "clinical_knowledge",
                "college_medicine",
                "global_facts",
                "human_aging",
                "management",
                "marketing",
                "medical_genetics",
                "miscellaneous",
                "nutrition",
                "professional_accounting",
                "professional_medicine",
                "virology",
            ],
        ),
        (
            "social sciences",
            &[
                "econometrics",
                "high_school_geography",
                "high_school_government_and_politics",
                "high_school_macroeconomics",
                "high_school_microeconomics",
                "high_school_psychology",
                "human_sexuality",
                "professional_psychology",
                "public_relations",
                "security_studies",
                "sociology",
                "us_foreign_policy",
            ],
        ),
        (
            "humanities",
            &[
                "formal_logic",
                "high_school_european_history",
                "high_school_us_history",
                "high_school_world_history",
                "international_law",
                "jurisprudence",
                "logical_fallacies",
                "moral_disputes",
                "moral_scenarios",
                "philosophy",
                "prehistory",
                "professional_law",
                "world_religions",
            ],
        ),
    ];

    #[test]
    fn every_subject_maps_to_the_group_lm_eval_tags_it_with() {
        let listed: usize = YAML_TAGS.iter().map(|(_, s)| s.len()).sum();
        assert_eq!(listed, 57);
        for (group, subjects) in YAML_TAGS {
            assert!(LM_EVAL_GROUPS.contains(&group), "{group}");
            for s in subjects {
                assert_eq!(lm_eval_group(s), Some(group), "{s}");
            }
        }
        // Same subjects, same (hub) order as the authors' table.
        let ours: Vec<&str> = LM_EVAL_SUBJECT_GROUPS.iter().map(|s| s.0).collect();
        let authors: Vec<&str> = SUBJECTS.iter().map(|s| s.0).collect();
        assert_eq!(ours, authors);
        // The one subject where lm-eval and the authors disagree.
        assert_eq!(lm_eval_group("anatomy"), Some("stem"));
        assert_eq!(category("anatomy"), Some("other"));
        let differ: Vec<&str> = SUBJECTS
            .iter()
            .filter(|(s, _, c)| !c.eq_ignore_ascii_case(lm_eval_group(s).unwrap()))
            .map(|s| s.0)
            .collect();
        assert_eq!(differ, ["anatomy"]);
    }

    #[test]
    fn only_the_lm_eval_recipe_reports_lm_eval_groups() {
        let b = mmlu();
        for r in &b.recipes {
            let keys = r.group_keys(&b.dataset);
            if r.id == "lm-eval-ll" {
                assert_eq!(keys, ["lm_eval_group"]);
            } else {
                assert_eq!(keys, ["category"], "{}", r.id);
            }
        }
    }

    #[test]
    fn answer_index_is_the_gold_letter_and_metadata_names_subject_and_category() {
        let f = to_fields(&row(good())).unwrap();
        assert_eq!(f.target, "D");
        assert_eq!(f.choices.len(), 4);
        assert_eq!(f.metadata["subject"], "anatomy");
        assert_eq!(f.metadata["category"], "other");
        assert_eq!(f.metadata["lm_eval_group"], "stem");
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
