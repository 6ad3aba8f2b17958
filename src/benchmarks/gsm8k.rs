//! GSM8K (`openai/gsm8k`, config `main`): grade-school math word problems
//! with a numeric final answer after `####`.

use serde_json::{Value, json};

use super::{
    Benchmark, DatasetSource, Mode, ModeInfo, Sample, SampleFields, SubsetSource, str_field,
};
use crate::dataset::Row;
use crate::extract;

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

static MODES: &[ModeInfo] = &[ModeInfo {
    mode: Mode::Native,
    summary: "0-shot chat, answer in \\boxed{}; last \\boxed{}, else ANSWER:, else 'answer is', else last number; numeric compare",
    provenance: "bench native v1 (prompt from EvalScope v1 gsm8k)",
    template: "gsm8k_native.jinja",
    extractors: &["answer-chain", "last-number"],
    default_few_shot: 0,
}];

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

    fn extract(&self, _mode: Mode, name: &str, _sample: &Sample, response: &str) -> Option<String> {
        match name {
            "answer-chain" => native_chain(response),
            "last-number" => extract::last_number(response),
            _ => None,
        }
    }

    fn is_correct(&self, _mode: Mode, sample: &Sample, extracted: &str) -> bool {
        extract::numbers_equal(extracted, &sample.target)
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
        Sample {
            subset: "main".into(),
            split: "test".into(),
            index: 0,
            id: None,
            question: f.question,
            choices: f.choices,
            target: f.target,
            reference: f.reference,
            reasoning: f.reasoning,
        }
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
