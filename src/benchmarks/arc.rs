//! ARC (`allenai/ai2_arc`): grade-school science multiple choice, subsets
//! `ARC-Easy` and `ARC-Challenge`.
//!
//! Options are always shown with positional letters A.. (3 to 5 options);
//! the gold letter is `labels.index(answerKey)`, so the NY Regents items with
//! digit labels `1`-`4` are graded right (a bug EvalScope had until 2026).
//!
//! The dataset is defined as a benchmark file, `benchmarks/builtin/arc.toml`
//! (embedded, read by [`super::file::builtin`]: repo, revision, subsets, the
//! column mapping with `answer_format = "label"`); this module keeps its
//! recipes, the shared multiple-choice ones ([`super::mcq`]) and lm-eval's
//! `arc_challenge_chat` as a [`GenerateUntil`] recipe, which the file names
//! as the recipe set `arc`.

use serde_json::{Map, json};

use super::lm_eval::{ContextFormat, Filter, FilterStep, GenerateUntil};
use super::loglikelihood::{ChoiceSource, LlMetric, lm_eval_ll};
use super::recipe::{DocField, Recipe, ShotPolicy};
use super::{Benchmark, Dataset, Sample, mcq};
use crate::extract::lm_eval::ExactMatch;

/// lm-eval's `arc_challenge_chat` prefill.
const ARC_CHAT_PREFIX: &str = "The best answer is";

/// Where the definition lives in the repository (as errors name it).
pub const FILE_PATH: &str = "benchmarks/builtin/arc.toml";

/// The definition of `arc`: data, subsets and column mapping.
pub const FILE: &str = include_str!("../../benchmarks/builtin/arc.toml");

/// Both ARC subsets, each reported apart and combined.
pub fn dataset() -> Dataset {
    arc().dataset
}

/// Both subsets, reported per subset and combined.
pub fn arc() -> Benchmark {
    // The embedded file is checked by the file module's unit tests: an
    // error here is a bug in bench, not in any input.
    super::file::builtin(FILE_PATH, FILE).expect("benchmarks/builtin/arc.toml is valid")
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
        arc_ll("lm-eval-ll", vec![LlMetric::Acc, LlMetric::AccNorm]),
        arc_ll("lm-eval-ll-norm", vec![LlMetric::AccNorm, LlMetric::Acc]),
    ]
}

/// lm-eval's `arc_easy` / `arc_challenge`: loglikelihood of `" " + text`
/// of each option after `Question: ...\nAnswer:`; 0-shot (the Open LLM
/// Leaderboard's arc_challenge is `few_shot=25`, drawn from train by
/// lm-eval's seeded sampler). `lm-eval-ll-norm` is the same run with
/// `acc_norm` first.
fn arc_ll(id: &str, metrics: Vec<LlMetric>) -> Recipe {
    let primary = metrics[0].name();
    lm_eval_ll(
        id,
        &format!(
            "lm-eval arc_easy/arc_challenge loglikelihood: 'Question: ...\\nAnswer:' + ' <option>', {primary} first; 0-shot, few_shot=25 for the leaderboard"
        ),
        "lm_eval/tasks/arc/arc_easy.yaml, arc_challenge.yaml",
        "lm_eval_arc.jinja",
        None,
        0,
        ShotPolicy::LmEvalRandom { seed: 1234 },
        ChoiceSource::Texts,
        metrics,
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::{SampleFields, SubsetSource, context};
    use crate::dataset::Row;
    use crate::prompt::Prompts;

    fn row(labels: &[&str], key: &str) -> Row {
        let text: Vec<String> = (0..labels.len()).map(|i| format!("opt{i}")).collect();
        serde_json::from_value(json!({
            "id": "x1", "question": "Which?", "answerKey": key,
            "choices": {"text": text, "label": labels},
        }))
        .unwrap()
    }

    /// The row parser of the embedded file.
    fn to_fields(row: &Row) -> Result<SampleFields, String> {
        dataset().fields(row)
    }

    #[test]
    fn digit_labels_map_to_positional_letters() {
        let f = to_fields(&row(&["1", "2", "3", "4"], "3")).unwrap();
        assert_eq!((f.target.as_str(), f.id.as_deref()), ("C", Some("x1")));
        assert_eq!(f.choices, ["opt0", "opt1", "opt2", "opt3"]);
        assert_eq!(f.question, "Which?");
        assert!(f.metadata.is_empty() && f.reasoning.is_none() && f.reference.is_none());
        let f = to_fields(&row(&["A", "B", "C", "D", "E"], "E")).unwrap();
        assert_eq!(f.target, "E");
        assert_eq!(
            to_fields(&row(&["A", "B", "C"], "B"))
                .unwrap()
                .choices
                .len(),
            3
        );
        let e = to_fields(&row(&["A", "B"], "Z")).unwrap_err();
        assert!(
            e.starts_with("benchmarks/builtin/arc.toml:")
                && e.contains("columns.answer: `Z` is not one of the labels"),
            "{e}"
        );
    }

    /// The definition is bench's own: no file record in runs, the recipes'
    /// provenance as they give it, both subsets at the pinned commit.
    #[test]
    fn the_embedded_file_defines_arc() {
        let b = arc();
        assert!(b.file.is_none());
        assert_eq!(
            b.recipe_ids(),
            [
                "native",
                "evalscope",
                "lm-eval",
                "lm-eval-ll",
                "lm-eval-ll-norm"
            ]
        );
        for (r, want) in b.recipes.iter().zip(recipes()) {
            assert_eq!(
                (&r.provenance, &r.summary),
                (&want.provenance, &want.summary)
            );
        }
        let d = &b.dataset;
        assert_eq!(
            (d.repo_id.as_str(), d.revision.as_str()),
            (
                "allenai/ai2_arc",
                "210d026faf9955653af8916fad021475a3f00453"
            )
        );
        assert_eq!(
            d.subsets,
            [
                SubsetSource::parquet("ARC-Easy", "ARC-Easy", "test", "train"),
                SubsetSource::parquet("ARC-Challenge", "ARC-Challenge", "test", "train"),
            ]
        );
        assert!(d.groups.is_empty() && !d.fewshot_optional);
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
