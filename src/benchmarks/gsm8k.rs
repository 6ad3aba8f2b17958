//! GSM8K (`openai/gsm8k`, config `main`): grade-school math word problems
//! with a numeric final answer after `####`.

use serde_json::{Map, Value, json};

use super::{
    Benchmark, DatasetSource, Mode, ModeInfo, Sample, SampleFields, ShotPolicy, SubsetSource,
    str_field,
};
use std::sync::LazyLock;

use regex::Regex;

use super::lm_eval::{DEFAULT_FORMAT, assemble};
use crate::client::{ApiKind, Prompt};
use crate::dataset::Row;
use crate::extract::lm_eval::{ExactMatch, GroupSelect, PyRegex, regex_filter};
use crate::extract::{self, evalscope};
use crate::prompt::{PromptError, Prompts};

/// The GSM8K benchmark.
pub struct Gsm8k;

static SOURCE: DatasetSource = DatasetSource {
    repo_id: "openai/gsm8k",
    revision: "740312add88f781978c0658806c59bc2815b9866",
    subsets: &[SubsetSource {
        name: "main",
        eval_split: "test",
        eval_path: "main/test-00000-of-00001.parquet",
        fewshot_split: "train",
        fewshot_path: "main/train-00000-of-00001.parquet",
    }],
};

static MODES: &[ModeInfo] = &[
    ModeInfo {
        mode: Mode::Native,
        summary: "0-shot chat, answer in \\boxed{}; last \\boxed{}, else ANSWER:, else 'answer is', else last number; numeric compare",
        provenance: "bench native v1 (prompt from EvalScope v1 gsm8k)",
        template: "gsm8k_boxed.jinja",
        extractors: &["answer-chain", "last-number"],
        default_few_shot: 0,
        shots: ShotPolicy::FirstN,
    },
    ModeInfo {
        mode: Mode::Evalscope,
        summary: "EvalScope v1: 4-shot (train rows 0-3), \\boxed{} prompt, Qwen-Math extraction chain, math_equal",
        provenance: crate::extract::evalscope::PROVENANCE,
        template: "gsm8k_boxed.jinja",
        extractors: &["evalscope"],
        default_few_shot: 4,
        shots: ShotPolicy::FirstN,
    },
    ModeInfo {
        mode: Mode::LmEval,
        summary: "lm-eval gsm8k: 5-shot drawn by Random(1234), \"Question: ...\\nAnswer:\", strict-match and flexible-extract",
        provenance: LM_EVAL_PROVENANCE,
        template: "lm_eval_gsm8k.jinja",
        extractors: &["strict-match", "flexible-extract"],
        default_few_shot: 5,
        shots: ShotPolicy::LmEvalRandom { seed: 1234 },
    },
    ModeInfo {
        mode: Mode::LmEvalCot,
        summary: "lm-eval gsm8k_cot: 8 fixed chain-of-thought exemplars, \"Q: ...\\nA:\", strict 'The answer is N.'",
        provenance: LM_EVAL_PROVENANCE,
        template: "lm_eval_gsm8k_cot.jinja",
        extractors: &["strict-match", "flexible-extract"],
        default_few_shot: 8,
        shots: ShotPolicy::Fixed,
    },
    ModeInfo {
        mode: Mode::LmEvalCotZeroshot,
        summary: "lm-eval gsm8k_cot_zeroshot: \"Q: ...\\nA: Let's think step by step.\", strict 'The answer is N.'",
        provenance: LM_EVAL_PROVENANCE,
        template: "lm_eval_gsm8k_cot_zeroshot.jinja",
        extractors: &["strict-match", "flexible-extract"],
        default_few_shot: 0,
        shots: ShotPolicy::FirstN,
    },
];

/// Where the `lm-eval*` rules come from.
const LM_EVAL_PROVENANCE: &str = "lm-evaluation-harness@4e7e0d47 (2026-08-21): lm_eval/tasks/gsm8k/{gsm8k,gsm8k-cot,gsm8k-cot-zeroshot}.yaml";

/// lm-eval's `strict-match` for `gsm8k`: the first `#### N`.
static STRICT_HASHES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"#### (\-?[0-9\.\,]+)").expect("valid regex"));
/// lm-eval's `strict-match` for the CoT tasks; the final `.` is any character.
static STRICT_ANSWER_IS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"The answer is (\-?[0-9\.\,]+).").expect("valid regex"));
/// lm-eval's `flexible-extract`: the last number-like token.
static FLEXIBLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)").expect("valid regex"));
/// lm-eval gsm8k's `exact_match` settings.
static EXACT_MATCH: LazyLock<ExactMatch> = LazyLock::new(|| ExactMatch {
    regexes_to_ignore: [",", r"\$", r"(?s).*#### ", r"\.$"]
        .iter()
        .map(|p| PyRegex::new(p).expect("valid regex"))
        .collect(),
    ignore_case: true,
    ignore_punctuation: false,
});

/// The 8 chain-of-thought exemplars of lm-eval's `gsm8k_cot` (Wei et al.),
/// as (question, answer) pairs.
pub const COT_EXEMPLARS: [(&str, &str); 8] = [
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
    ),
];

/// Split a GSM8K solution into (reasoning, final answer) at the last `####`.
pub fn split_solution(answer: &str) -> (String, String) {
    match answer.rfind("####") {
        Some(i) => (
            answer[..i].trim().to_string(),
            answer[i + 4..].trim().to_string(),
        ),
        None => (answer.trim().to_string(), String::new()),
    }
}

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

impl Benchmark for Gsm8k {
    fn name(&self) -> &'static str {
        "gsm8k"
    }

    fn summary(&self) -> &'static str {
        "GSM8K grade-school math (openai/gsm8k main, test split, 1319 items)"
    }

    fn source(&self) -> &'static DatasetSource {
        &SOURCE
    }

    fn modes(&self) -> &'static [ModeInfo] {
        MODES
    }

    fn to_fields(&self, row: &Row) -> Result<SampleFields, String> {
        let question = str_field(row, "question")?;
        let answer = str_field(row, "answer")?;
        let (reasoning, target) = split_solution(&answer);
        if target.is_empty() {
            return Err("`answer` has no `####` final answer".into());
        }
        Ok(SampleFields {
            id: None,
            question,
            choices: vec![],
            target,
            reference: Some(answer),
            reasoning: Some(reasoning),
        })
    }

    fn context(&self, _mode: &ModeInfo, sample: &Sample, shots: &[Sample]) -> Value {
        json!({
            "question": sample.question,
            "shots": shots.iter().map(|s| json!({
                "question": s.question,
                "reasoning": s.reasoning,
                "target": s.target,
                "reference": s.reference,
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
        match mode.mode {
            Mode::Native | Mode::Evalscope => {
                super::templated_prompt(self, mode, sample, shots, prompts, api)
            }
            Mode::LmEval | Mode::LmEvalCot | Mode::LmEvalCotZeroshot => {
                // doc_to_text from the template; doc_to_target is the full
                // solution for `gsm8k`, the final answer for `gsm8k_cot`.
                let text =
                    |s: &Sample| prompts.render(mode.template, json!({"question": s.question}));
                let pairs = shots
                    .iter()
                    .map(|s| {
                        let target = match mode.mode {
                            Mode::LmEval => s.reference.clone().unwrap_or_default(),
                            _ => s.reasoning.clone().unwrap_or_default(),
                        };
                        Ok((text(s)?, target))
                    })
                    .collect::<Result<Vec<_>, PromptError>>()?;
                Ok(assemble(&DEFAULT_FORMAT, &pairs, &text(sample)?, api))
            }
        }
    }

    fn fixed_shots(&self, mode: Mode) -> Vec<SampleFields> {
        if mode != Mode::LmEvalCot {
            return vec![];
        }
        COT_EXEMPLARS
            .iter()
            .map(|(q, a)| SampleFields {
                id: None,
                question: q.to_string(),
                choices: vec![],
                // The exemplar's answer is its whole text; `reasoning` holds it
                // as doc_to_target renders it.
                target: a
                    .rsplit("The answer is ")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('.')
                    .to_string(),
                reference: Some(a.to_string()),
                reasoning: Some(a.to_string()),
            })
            .collect()
    }

    fn extract(&self, mode: Mode, name: &str, _sample: &Sample, response: &str) -> Option<String> {
        match (mode, name) {
            (Mode::Native, "answer-chain") => native_chain(response),
            (Mode::Native, "last-number") => extract::last_number(response),
            (Mode::Evalscope, "evalscope") => Some(evalscope::extract_answer(response)),
            (Mode::LmEval, "strict-match") => {
                regex_filter(&STRICT_HASHES, response, GroupSelect::First)
            }
            (Mode::LmEvalCot | Mode::LmEvalCotZeroshot, "strict-match") => {
                regex_filter(&STRICT_ANSWER_IS, response, GroupSelect::First)
            }
            (Mode::LmEval | Mode::LmEvalCot | Mode::LmEvalCotZeroshot, "flexible-extract") => {
                regex_filter(&FLEXIBLE, response, GroupSelect::Last)
            }
            _ => None,
        }
    }

    fn is_correct(&self, mode: Mode, sample: &Sample, extracted: &str) -> bool {
        match mode {
            Mode::Native => extract::numbers_equal(extracted, &sample.target),
            Mode::Evalscope => {
                evalscope::math_equal(extracted, &evalscope::strip_answer_string(&sample.target))
            }
            // `gsm8k` and `gsm8k_cot_zeroshot` compare with the full solution
            // (its `#### ` prefix is one of the ignored regexes); `gsm8k_cot`
            // with the final answer.
            Mode::LmEval | Mode::LmEvalCotZeroshot => EXACT_MATCH.matches(
                extracted,
                sample.reference.as_deref().unwrap_or(&sample.target),
            ),
            Mode::LmEvalCot => EXACT_MATCH.matches(extracted, &sample.target),
        }
    }

    fn generation_defaults(&self, mode: Mode) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("temperature".into(), json!(0.0));
        match mode {
            Mode::Native | Mode::Evalscope => {}
            Mode::LmEval => {
                m.insert("max_tokens".into(), json!(256));
                m.insert("stop".into(), json!(["Question:", "</s>", "<|im_end|>"]));
                m.insert("seed".into(), json!(1234));
            }
            Mode::LmEvalCot | Mode::LmEvalCotZeroshot => {
                // These YAMLs set no temperature: lm-eval then sends the int 0.
                m.insert("temperature".into(), json!(0));
                m.insert("max_tokens".into(), json!(256));
                m.insert("stop".into(), json!(["Q:", "</s>", "<|im_end|>"]));
                m.insert("seed".into(), json!(1234));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Prompts;

    fn sample(q: &str, a: &str) -> Sample {
        let f = Gsm8k
            .to_fields(&serde_json::from_value(json!({"question": q, "answer": a})).unwrap())
            .unwrap();
        Sample::from_fields(f, "main", "test", 0)
    }

    /// (response, expected extraction per extractor, expected verdict per extractor).
    type Case<'a> = (&'a str, [Option<&'a str>; 2], [bool; 2]);

    fn check(mode: Mode, gold_answer: &str, cases: &[Case]) {
        let b: &dyn Benchmark = &Gsm8k;
        let m = b.mode_info(mode).unwrap();
        let s = sample("Q?", gold_answer);
        for (resp, want, ok) in cases {
            let g = b.grade(m, &s, resp);
            for (i, grade) in g.iter().enumerate() {
                assert_eq!(
                    grade.extracted.as_deref(),
                    want[i],
                    "{mode} {} on {resp:?}",
                    grade.extractor
                );
                assert_eq!(
                    grade.correct, ok[i],
                    "{mode} {} on {resp:?}",
                    grade.extractor
                );
            }
        }
    }

    #[test]
    fn lm_eval_gsm8k_extractors() {
        let gold = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18";
        check(
            Mode::LmEval,
            gold,
            &[
                (
                    "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
                    [Some("18"), Some("18")],
                    [true, true],
                ),
                // Several `####`: strict takes the first, flexible the last number.
                ("#### 17\n#### 18", [Some("17"), Some("18")], [false, true]),
                ("**Answer:** $18.00", [None, Some("$18.00")], [false, false]),
                ("The answer is $18.", [None, Some("$18.")], [false, true]),
                ("#### 1,8", [Some("1,8"), Some("1,8")], [true, true]),
                ("#### -3", [Some("-3"), Some("-3")], [false, false]),
                ("no idea", [None, None], [false, false]),
            ],
        );
        check(
            Mode::LmEval,
            "x\n#### -3",
            &[("#### -3", [Some("-3"), Some("-3")], [true, true])],
        );
    }

    #[test]
    fn lm_eval_cot_extractors() {
        // gsm8k_cot compares with the final answer; the strict regex's last
        // `.` is any character, so a number at the very end loses a digit.
        check(
            Mode::LmEvalCot,
            "x\n#### 18",
            &[
                (
                    "So 18 in all. The answer is 18.",
                    [Some("18"), Some("18.")],
                    [true, true],
                ),
                ("The answer is 18", [Some("1"), Some("18")], [false, true]),
                (
                    "The answer is 18 dollars.",
                    [Some("18"), Some("18")],
                    [true, true],
                ),
                ("The answer is $18.", [None, Some("$18.")], [false, true]),
            ],
        );
        // gsm8k_cot_zeroshot compares with the full solution (its `#### ` is ignored).
        check(
            Mode::LmEvalCotZeroshot,
            "a\n#### 1,200",
            &[(
                "The answer is 1,200.",
                [Some("1,200"), Some("1,200.")],
                [true, true],
            )],
        );
    }

    #[test]
    fn evalscope_extractor_and_quirks() {
        let b: &dyn Benchmark = &Gsm8k;
        let m = b.mode_info(Mode::Evalscope).unwrap();
        let s = sample("Q?", "x\n#### 18");
        for (resp, ok) in [
            (r"so \boxed{18}", true),
            ("ANSWER: 18", true),
            ("The answer is $18.00.", true),
            // math_equal accepts ref*100 and ref/100 and a relative 1e-4.
            (r"\boxed{1800}", true),
            (r"\boxed{0.18}", true),
            (r"\boxed{17}", false),
        ] {
            assert_eq!(b.grade(m, &s, resp)[0].correct, ok, "{resp}");
        }
        let s = sample("Q?", "x\n#### 12345");
        assert!(
            b.grade(m, &s, r"\boxed{12346}")[0].correct,
            "EvalScope's rel_tol 1e-4 quirk"
        );
    }

    #[test]
    fn target_after_last_hashes() {
        let s = sample("Q?", "a <<1+1=2>>2\n#### 1,200");
        assert_eq!(s.target, "1,200");
        assert_eq!(s.reasoning.as_deref(), Some("a <<1+1=2>>2"));
    }

    #[test]
    fn chain_and_scoring() {
        let s = sample("Q?", "x\n#### 1,200");
        let b: &dyn Benchmark = &Gsm8k;
        let m = b.default_mode();
        for (resp, want, ok) in [
            (r"so \boxed{1200}", Some("1200"), true),
            (r"\boxed{\$1,200.00}", Some("1200"), true),
            ("ANSWER: $1,200 in total", Some("1200"), true),
            ("Thus the answer is **1200**.", Some("1200"), true),
            ("First 3 then 1199", Some("1199"), false),
            ("I don't know", None, false),
        ] {
            let g = b.grade(m, &s, resp);
            assert_eq!(g[0].extracted.as_deref(), want, "{resp}");
            assert_eq!(g[0].correct, ok, "{resp}");
        }
    }

    #[test]
    fn native_prompt_exact() {
        let b: &dyn Benchmark = &Gsm8k;
        let p = Prompts::load(None).unwrap();
        let s = sample("How many?", "r\n#### 3");
        let out = p
            .render(
                b.default_mode().template,
                b.context(b.default_mode(), &s, &[]),
            )
            .unwrap();
        assert_eq!(
            out,
            "How many?\nPlease reason step by step, and put your final answer within \\boxed{}."
        );
        let shot = sample("Q1?", "step\n#### 5");
        let out = p
            .render(
                b.default_mode().template,
                b.context(b.default_mode(), &s, &[shot]),
            )
            .unwrap();
        assert_eq!(
            out,
            "Here are some examples of how to solve similar problems:\n\nQ1?\n\nReasoning:\nstep\n\nANSWER: \\boxed{5}\n\nHow many?\nPlease reason step by step, and put your final answer within \\boxed{}."
        );
    }
}
