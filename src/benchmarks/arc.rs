//! ARC (`allenai/ai2_arc`): grade-school science multiple choice, subsets
//! `ARC-Easy` and `ARC-Challenge`.
//!
//! Options are always shown with positional letters A.. (3 to 5 options);
//! the gold letter is `labels.index(answerKey)`, so the NY Regents items with
//! digit labels `1`-`4` are graded right (a bug EvalScope had until 2026).
//!
//! The dataset plus the shared multiple-choice recipes ([`super::mcq`]) and
//! lm-eval's `arc_challenge_chat` as a [`GenerateUntil`] recipe.

use serde_json::{Map, Value, json};

use super::lm_eval::{ContextFormat, Filter, FilterStep, GenerateUntil};
use super::recipe::{DocField, Recipe, ShotPolicy};
use super::{Benchmark, Dataset, Sample, SampleFields, SubsetSource, mcq, str_field};
use crate::dataset::Row;
use crate::extract::{self, lm_eval::ExactMatch};

/// lm-eval's `arc_challenge_chat` prefill.
const ARC_CHAT_PREFIX: &str = "The best answer is";

/// Both ARC subsets, each reported apart and combined.
pub fn dataset() -> Dataset {
    Dataset::new(
        "allenai/ai2_arc",
        "210d026faf9955653af8916fad021475a3f00453",
        vec![
            SubsetSource::parquet("ARC-Easy", "ARC-Easy", "test", "train"),
            SubsetSource::parquet("ARC-Challenge", "ARC-Challenge", "test", "train"),
        ],
        to_fields,
    )
}

/// Both subsets, reported per subset and combined.
pub fn arc() -> Benchmark {
    Benchmark::new(
        "arc",
        "AI2 ARC science questions, ARC-Easy + ARC-Challenge test (2376 + 1172 items)",
        dataset(),
        recipes(),
    )
}

/// ARC-Easy only.
pub fn arc_easy() -> Benchmark {
    one_subset(
        "arc_easy",
        "AI2 ARC, ARC-Easy test only (2376 items)",
        "ARC-Easy",
    )
}

/// ARC-Challenge only.
pub fn arc_challenge() -> Benchmark {
    one_subset(
        "arc_challenge",
        "AI2 ARC, ARC-Challenge test only (1172 items)",
        "ARC-Challenge",
    )
}

fn one_subset(name: &str, summary: &str, subset: &str) -> Benchmark {
    // The subset names are this file's own constants.
    let data = dataset().only(&[subset]).expect("an ARC subset");
    Benchmark::new(name, summary, data, recipes())
}

/// ARC's recipes, the default (`native`) first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        mcq::native().with_summary("0-shot chat, positional letters A-E, last valid 'ANSWER: X'"),
        mcq::evalscope(),
        arc_challenge_chat(),
    ]
}

/// lm-eval's `arc_challenge_chat`: options A-D only, the prefill "The best
/// answer is", the stripped continuation compared with the letter ignoring
/// case and punctuation.
fn arc_challenge_chat() -> Recipe {
    let mut generation = Map::new();
    // The YAML sets no temperature: lm-eval sends the int 0.
    generation.insert("temperature".into(), json!(0));
    generation.insert("max_tokens".into(), json!(100));
    generation.insert("stop".into(), json!(["\n\n", "."]));
    generation.insert("seed".into(), json!(1234));
    GenerateUntil {
        id: "lm-eval".into(),
        summary: "lm-eval arc_challenge_chat: options A-D only, prefill 'The best answer is', exact match of the rest".into(),
        provenance: "lm-evaluation-harness@4e7e0d47 (2026-08-21): lm_eval/tasks/llama3/instruct/arc_challenge/arc_challenge_chat.yaml".into(),
        template: "lm_eval_arc_chat.jinja".into(),
        doc_to_target: DocField::Target,
        format: ContextFormat {
            gen_prefix: Some(ARC_CHAT_PREFIX.into()),
            ..ContextFormat::default()
        },
        default_few_shot: 0,
        shots: ShotPolicy::LmEvalRandom { seed: 1234 },
        pinned_zero_shot: Some("arc_challenge_chat".into()),
        generation,
        // remove_whitespace (Python's `strip()`) + take_first: the
        // continuation after the prefill is the answer.
        filters: vec![Filter {
            name: "exact-match".into(),
            steps: vec![FilterStep::RemoveWhitespace],
        }],
        metric: ExactMatch {
            regexes_to_ignore: vec![],
            ignore_case: true,
            ignore_punctuation: true,
        },
        gold: DocField::Target,
    }
    // The model continues the prefill.
    .recipe(|s: &Sample| format!(" {}", s.target))
}

/// The `choices.text`, `choices.label` lists and `answerKey` of an ARC row,
/// mapped to (options, gold letter).
pub fn parse_choices(row: &Row) -> Result<(Vec<String>, String), String> {
    let choices = row.get("choices").ok_or("column `choices` is missing")?;
    let list = |k: &str| -> Result<Vec<String>, String> {
        choices
            .get(k)
            .and_then(Value::as_array)
            .ok_or(format!("`choices.{k}` is not a list"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or(format!("`choices.{k}` holds a non-string"))
            })
            .collect()
    };
    let text = list("text")?;
    let labels = list("label")?;
    if text.len() != labels.len() || !(2..=26).contains(&text.len()) {
        return Err(format!(
            "{} option texts but {} labels",
            text.len(),
            labels.len()
        ));
    }
    let key = str_field(row, "answerKey")?;
    let gold = labels.iter().position(|l| *l == key.trim()).ok_or(format!(
        "answerKey `{key}` is not one of the labels {labels:?}"
    ))?;
    Ok((text, extract::letters(gold + 1)[gold].to_string()))
}

/// An ARC row as sample fields.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let (choices, target) = parse_choices(row)?;
    Ok(SampleFields {
        id: row.get("id").and_then(Value::as_str).map(str::to_string),
        question: str_field(row, "question")?,
        choices,
        target,
        ..SampleFields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::context;
    use crate::prompt::Prompts;

    fn row(labels: &[&str], key: &str) -> Row {
        let text: Vec<String> = (0..labels.len()).map(|i| format!("opt{i}")).collect();
        serde_json::from_value(json!({
            "id": "x1", "question": "Which?", "answerKey": key,
            "choices": {"text": text, "label": labels},
        }))
        .unwrap()
    }

    #[test]
    fn digit_labels_map_to_positional_letters() {
        assert_eq!(
            parse_choices(&row(&["1", "2", "3", "4"], "3")).unwrap().1,
            "C"
        );
        assert_eq!(
            parse_choices(&row(&["A", "B", "C", "D", "E"], "E"))
                .unwrap()
                .1,
            "E"
        );
        assert_eq!(
            parse_choices(&row(&["A", "B", "C"], "B")).unwrap().0.len(),
            3
        );
        assert!(
            parse_choices(&row(&["A", "B"], "Z"))
                .unwrap_err()
                .contains("answerKey `Z`")
        );
    }

    fn arc_sample(labels: &[&str], key: &str) -> Sample {
        let f = to_fields(&row(labels, key)).unwrap();
        Sample::from_fields(f, "ARC-Easy", "test", 0)
    }

    #[test]
    fn mode_extractors_on_tricky_items() {
        let b = arc();
        let digit = arc_sample(&["1", "2", "3", "4"], "3"); // gold C
        let five = arc_sample(&["A", "B", "C", "D", "E"], "E"); // gold E
        let three = arc_sample(&["A", "B", "C"], "B"); // gold B
        let cases: &[(&str, &Sample, &str, Option<&str>, bool)] = &[
            ("native", &digit, "ANSWER: C", Some("C"), true),
            ("native", &digit, "ANSWER: 3", None, false),
            ("native", &five, "**Answer:** E", Some("E"), true),
            ("native", &three, "ANSWER: D", None, false),
            (
                "evalscope",
                &digit,
                "Thinking... ANSWER: C",
                Some("C"),
                true,
            ),
            ("evalscope", &five, "ANSWER: E", Some("E"), true),
            (
                "evalscope",
                &three,
                "ANSWER: [LETTER]... ANSWER: B",
                Some("B"),
                true,
            ),
            // lm-eval arc_challenge_chat: the continuation after the prefill
            // must be the letter alone (case and punctuation ignored).
            ("lm-eval", &digit, " C", Some("C"), true),
            ("lm-eval", &digit, " c.", Some("c."), true),
            (
                "lm-eval",
                &digit,
                "The best answer is C",
                Some("The best answer is C"),
                false,
            ),
            // E is never shown in this mode, and an E answer is still E.
            ("lm-eval", &five, " E", Some("E"), true),
            // Python's strip() also removes U+001C..U+001F (`trim` did not).
            ("lm-eval", &digit, "\u{1f} C\u{1c}", Some("C"), true),
        ];
        for (mode, s, resp, want, ok) in cases {
            let r = b.recipe(mode).unwrap();
            let g = r.grade(s, resp);
            assert_eq!(g.len(), r.extractors.len(), "{mode}: extractors");
            assert_eq!(g[0].extracted.as_deref(), *want, "{mode} {resp:?}");
            assert_eq!(g[0].correct, *ok, "{mode} {resp:?}");
        }
    }

    #[test]
    fn prompt_lists_positional_letters() {
        let b = arc();
        let f = to_fields(&row(&["1", "2", "3"], "2")).unwrap();
        let s = Sample {
            subset: "ARC-Easy".into(),
            split: "test".into(),
            index: 0,
            id: f.id,
            question: f.question,
            choices: f.choices,
            target: f.target,
            reference: None,
            reasoning: None,
            metadata: Default::default(),
        };
        let p = Prompts::load(None).unwrap();
        let out = p
            .render(&b.default_recipe().template, context(&s, &[]))
            .unwrap();
        assert!(
            out.ends_with("Which?\n\nA) opt0\nB) opt1\nC) opt2"),
            "{out}"
        );
        assert!(out.contains("is one of A,B,C."), "{out}");
        let g = b.default_recipe().grade(&s, "Reasoning... ANSWER: B");
        assert!(g[0].correct && g[1].correct);
        let g = b.default_recipe().grade(&s, "I pick B");
        assert_eq!(g[0].extracted, None);
        assert!(g[1].correct);
        // Few-shot examples come first, each ending with its answer line.
        let out = p
            .render(
                &b.default_recipe().template,
                context(&s, std::slice::from_ref(&s)),
            )
            .unwrap();
        assert!(
            out.starts_with("Here are some examples of how to answer similar questions:\n\nWhich?\nA) opt0\nB) opt1\nC) opt2\nANSWER: B\n\nAnswer the following"),
            "{out}"
        );
    }
}
