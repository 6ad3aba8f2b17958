//! ARC (`allenai/ai2_arc`): grade-school science multiple choice, subsets
//! `ARC-Easy` and `ARC-Challenge`.
//!
//! Options are always shown with positional letters A.. (3 to 5 options);
//! the gold letter is `labels.index(answerKey)`, so the NY Regents items with
//! digit labels `1`-`4` are graded right (a bug EvalScope had until 2026).

use serde_json::{Map, Value, json};

use super::{
    Benchmark, DatasetSource, Mode, ModeInfo, Sample, SampleFields, ShotPolicy, SubsetSource,
};
use std::sync::LazyLock;

use super::lm_eval::{ContextFormat, assemble};
use crate::client::{ApiKind, Prompt};
use crate::dataset::Row;
use crate::extract::lm_eval::{ExactMatch, py_strip};
use crate::extract::{self, evalscope};
use crate::prompt::{PromptError, Prompts};

/// An ARC registry entry: both subsets (`arc`) or one (`arc_easy`, `arc_challenge`).
pub struct Arc {
    name: &'static str,
    summary: &'static str,
    source: &'static DatasetSource,
}

const REPO: &str = "allenai/ai2_arc";
const REVISION: &str = "210d026faf9955653af8916fad021475a3f00453";

const EASY: SubsetSource = SubsetSource {
    name: "ARC-Easy",
    eval_split: "test",
    eval_path: "ARC-Easy/test-00000-of-00001.parquet",
    fewshot_split: "train",
    fewshot_path: "ARC-Easy/train-00000-of-00001.parquet",
};
const CHALLENGE: SubsetSource = SubsetSource {
    name: "ARC-Challenge",
    eval_split: "test",
    eval_path: "ARC-Challenge/test-00000-of-00001.parquet",
    fewshot_split: "train",
    fewshot_path: "ARC-Challenge/train-00000-of-00001.parquet",
};

static BOTH: DatasetSource = DatasetSource {
    repo_id: REPO,
    revision: REVISION,
    subsets: &[EASY, CHALLENGE],
};
static EASY_ONLY: DatasetSource = DatasetSource {
    repo_id: REPO,
    revision: REVISION,
    subsets: &[EASY],
};
static CHALLENGE_ONLY: DatasetSource = DatasetSource {
    repo_id: REPO,
    revision: REVISION,
    subsets: &[CHALLENGE],
};

/// Both subsets, reported per subset and combined.
pub static ARC: Arc = Arc {
    name: "arc",
    summary: "AI2 ARC science questions, ARC-Easy + ARC-Challenge test (2376 + 1172 items)",
    source: &BOTH,
};
/// ARC-Easy only.
pub static ARC_EASY: Arc = Arc {
    name: "arc_easy",
    summary: "AI2 ARC, ARC-Easy test only (2376 items)",
    source: &EASY_ONLY,
};
/// ARC-Challenge only.
pub static ARC_CHALLENGE: Arc = Arc {
    name: "arc_challenge",
    summary: "AI2 ARC, ARC-Challenge test only (1172 items)",
    source: &CHALLENGE_ONLY,
};

static MODES: &[ModeInfo] = &[
    ModeInfo {
        mode: Mode::Native,
        summary: "0-shot chat, positional letters A-E, last valid 'ANSWER: X'",
        provenance: "bench native v1 (template after EvalScope/inspect SINGLE_ANSWER)",
        template: "mcq_answer_line.jinja",
        extractors: &["answer-line", "last-letter"],
        default_few_shot: 0,
        shots: ShotPolicy::FirstN,
        pinned_zero_shot: None,
    },
    ModeInfo {
        mode: Mode::Evalscope,
        summary: "EvalScope 1.x (unchanged in 1.14.1): SINGLE_ANSWER template, last valid ANSWER: marker, else last capital letter",
        provenance: EVALSCOPE_PROVENANCE,
        template: "mcq_evalscope.jinja",
        extractors: &["evalscope"],
        default_few_shot: 0,
        shots: ShotPolicy::FirstN,
        pinned_zero_shot: None,
    },
    ModeInfo {
        mode: Mode::LmEval,
        summary: "lm-eval arc_challenge_chat: options A-D only, prefill 'The best answer is', exact match of the rest",
        provenance: "lm-evaluation-harness@4e7e0d47 (2026-08-21): lm_eval/tasks/llama3/instruct/arc_challenge/arc_challenge_chat.yaml",
        template: "lm_eval_arc_chat.jinja",
        extractors: &["exact-match"],
        default_few_shot: 0,
        shots: ShotPolicy::LmEvalRandom { seed: 1234 },
        pinned_zero_shot: Some("arc_challenge_chat"),
    },
];

/// Where the `evalscope` ARC rules come from. The multiple-choice parser did
/// not change with 1.13's move to Math-Verify (which only touched math
/// scoring), and its verdicts were checked against EvalScope 1.14.1.
const EVALSCOPE_PROVENANCE: &str = "EvalScope 1.14.1 (verdicts checked; rules read at modelscope/evalscope fde259d2): \
     utils/multi_choices.py parse_answers (PR #1597, last valid ANSWER: marker), SINGLE_ANSWER template";

/// lm-eval's `arc_challenge_chat` prefill.
const ARC_CHAT_PREFIX: &str = "The best answer is";

/// `arc_challenge_chat`'s metric: exact match ignoring case and punctuation.
static ARC_CHAT_MATCH: LazyLock<ExactMatch> = LazyLock::new(|| ExactMatch {
    regexes_to_ignore: vec![],
    ignore_case: true,
    ignore_punctuation: true,
});

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
    let key = super::str_field(row, "answerKey")?;
    let gold = labels.iter().position(|l| *l == key.trim()).ok_or(format!(
        "answerKey `{key}` is not one of the labels {labels:?}"
    ))?;
    Ok((text, extract::letters(gold + 1)[gold].to_string()))
}

impl Benchmark for Arc {
    fn name(&self) -> &'static str {
        self.name
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn source(&self) -> &'static DatasetSource {
        self.source
    }

    fn modes(&self) -> &'static [ModeInfo] {
        MODES
    }

    fn to_fields(&self, row: &Row) -> Result<SampleFields, String> {
        let (choices, target) = parse_choices(row)?;
        Ok(SampleFields {
            id: row.get("id").and_then(Value::as_str).map(str::to_string),
            question: super::str_field(row, "question")?,
            choices,
            target,
            reference: None,
            reasoning: None,
        })
    }

    fn context(&self, _mode: &ModeInfo, sample: &Sample, shots: &[Sample]) -> Value {
        let opts = |s: &Sample| -> Vec<Value> {
            s.choices
                .iter()
                .zip(extract::letters(s.choices.len()))
                .map(|(t, l)| json!({"letter": l.to_string(), "text": t}))
                .collect()
        };
        json!({
            "question": sample.question,
            "choices": opts(sample),
            "texts": sample.choices,
            "letters": extract::letters(sample.choices.len()).iter().map(char::to_string).collect::<Vec<_>>(),
            "shots": shots.iter().map(|s| json!({
                "question": s.question, "choices": opts(s), "texts": s.choices, "target": s.target,
            })).collect::<Vec<_>>(),
        })
    }

    fn prompt(
        &self,
        mode: &ModeInfo,
        sample: &Sample,
        shots: &[Sample],
        prompts: &Prompts,
        api: ApiKind,
    ) -> Result<Prompt, PromptError> {
        if mode.mode != Mode::LmEval {
            return super::templated_prompt(self, mode, sample, shots, prompts, api);
        }
        let text = |s: &Sample| prompts.render(mode.template, self.context(mode, s, &[]));
        let pairs = shots
            .iter()
            .map(|s| Ok((text(s)?, format!("{ARC_CHAT_PREFIX} {}", s.target))))
            .collect::<Result<Vec<_>, PromptError>>()?;
        let fmt = ContextFormat {
            target_delimiter: " ",
            fewshot_delimiter: "\n\n",
            gen_prefix: Some(ARC_CHAT_PREFIX),
        };
        Ok(assemble(&fmt, &pairs, &text(sample)?, api))
    }

    fn extract(&self, mode: Mode, name: &str, sample: &Sample, response: &str) -> Option<String> {
        let n = sample.choices.len();
        match (mode, name) {
            (Mode::Native, "answer-line") => extract::last_answer_letter(response, n),
            (Mode::Native, "last-letter") => extract::last_answer_letter(response, n)
                .or_else(|| extract::last_lone_letter(response, n)),
            (Mode::Evalscope, "evalscope") => {
                evalscope::parse_mcq_answer(response, &extract::letters(n)).map(String::from)
            }
            // remove_whitespace (Python's `strip()`) + take_first: the
            // continuation after the prefill is the answer.
            (Mode::LmEval, "exact-match") => Some(py_strip(response).to_string()),
            _ => None,
        }
    }

    fn is_correct(&self, mode: Mode, sample: &Sample, extracted: &str) -> bool {
        match mode {
            Mode::LmEval => ARC_CHAT_MATCH.matches(extracted, &sample.target),
            _ => extracted.trim().eq_ignore_ascii_case(&sample.target),
        }
    }

    fn generation_defaults(&self, mode: Mode) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("temperature".into(), json!(0.0));
        if mode == Mode::LmEval {
            // The YAML sets no temperature: lm-eval sends the int 0.
            m.insert("temperature".into(), json!(0));
            m.insert("max_tokens".into(), json!(100));
            m.insert("stop".into(), json!(["\n\n", "."]));
            m.insert("seed".into(), json!(1234));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let f = ARC.to_fields(&row(labels, key)).unwrap();
        Sample::from_fields(f, "ARC-Easy", "test", 0)
    }

    #[test]
    fn mode_extractors_on_tricky_items() {
        let b: &dyn Benchmark = &ARC;
        let digit = arc_sample(&["1", "2", "3", "4"], "3"); // gold C
        let five = arc_sample(&["A", "B", "C", "D", "E"], "E"); // gold E
        let three = arc_sample(&["A", "B", "C"], "B"); // gold B
        let cases: &[(Mode, &Sample, &str, Option<&str>, bool)] = &[
            (Mode::Native, &digit, "ANSWER: C", Some("C"), true),
            (Mode::Native, &digit, "ANSWER: 3", None, false),
            (Mode::Native, &five, "**Answer:** E", Some("E"), true),
            (Mode::Native, &three, "ANSWER: D", None, false),
            (
                Mode::Evalscope,
                &digit,
                "Thinking... ANSWER: C",
                Some("C"),
                true,
            ),
            (Mode::Evalscope, &five, "ANSWER: E", Some("E"), true),
            (
                Mode::Evalscope,
                &three,
                "ANSWER: [LETTER]... ANSWER: B",
                Some("B"),
                true,
            ),
            // lm-eval arc_challenge_chat: the continuation after the prefill
            // must be the letter alone (case and punctuation ignored).
            (Mode::LmEval, &digit, " C", Some("C"), true),
            (Mode::LmEval, &digit, " c.", Some("c."), true),
            (
                Mode::LmEval,
                &digit,
                "The best answer is C",
                Some("The best answer is C"),
                false,
            ),
            // E is never shown in this mode, and an E answer is still E.
            (Mode::LmEval, &five, " E", Some("E"), true),
            // Python's strip() also removes U+001C..U+001F (`trim` did not).
            (Mode::LmEval, &digit, "\u{1f} C\u{1c}", Some("C"), true),
        ];
        for (mode, s, resp, want, ok) in cases {
            let g = b.grade(b.mode_info(*mode).unwrap(), s, resp);
            assert_eq!(g[0].extracted.as_deref(), *want, "{mode} {resp:?}");
            assert_eq!(g[0].correct, *ok, "{mode} {resp:?}");
        }
    }

    #[test]
    fn prompt_lists_positional_letters() {
        let b: &dyn Benchmark = &ARC;
        let f = b.to_fields(&row(&["1", "2", "3"], "2")).unwrap();
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
        };
        let p = Prompts::load(None).unwrap();
        let out = p
            .render(
                b.default_mode().template,
                b.context(b.default_mode(), &s, &[]),
            )
            .unwrap();
        assert!(
            out.ends_with("Which?\n\nA) opt0\nB) opt1\nC) opt2"),
            "{out}"
        );
        assert!(out.contains("is one of A,B,C."), "{out}");
        let g = b.grade(b.default_mode(), &s, "Reasoning... ANSWER: B");
        assert!(g[0].correct && g[1].correct);
        let g = b.grade(b.default_mode(), &s, "I pick B");
        assert_eq!(g[0].extracted, None);
        assert!(g[1].correct);
        // Few-shot examples come first, each ending with its answer line.
        let out = p
            .render(
                b.default_mode().template,
                b.context(b.default_mode(), &s, std::slice::from_ref(&s)),
            )
            .unwrap();
        assert!(
            out.starts_with("Here are some examples of how to answer similar questions:\n\nWhich?\nA) opt0\nB) opt1\nC) opt2\nANSWER: B\n\nAnswer the following"),
            "{out}"
        );
    }
}
