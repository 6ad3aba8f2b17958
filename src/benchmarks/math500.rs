//! MATH-500 (`HuggingFaceH4/MATH-500`, test, 500 items): competition maths
//! with LaTeX answers (`\frac{14}{3}`, `(3,4]`, `\text{Evelyn}`, `90^\circ`,
//! matrices), reported per `level` (1-5) and `subject` (7 subjects).
//!
//! The hub's `main` has only `test.jsonl`; the parquet bench reads is the
//! hub's conversion on `refs/convert/parquet` (`default/test/0000.parquet`).
//!
//! Recipes:
//! - `native`: EvalScope's 0-shot `\boxed{}` prompt; the last `\boxed{}` (or
//!   `\fbox{}`), else the "final answer is" / `ANSWER:` line; compared with
//!   [`latex_eq::equivalent`] in [`Mode::Native`] (lenient where Math-Verify
//!   is strict; the module docs list where).
//! - `evalscope`: EvalScope 1.14.1's `math_500` adapter: the same prompt,
//!   Math-Verify's extraction ([`math_verify::extract_answer`]) and both
//!   sides' normalised display strings compared in [`Mode::MathVerify`].
//! - `lm-eval`: lm-eval's `minerva_math500`: "Problem:\n…\n\nSolution:", 4
//!   fixed exemplars, stop at "Problem:", the "Final Answer: The final answer
//!   is … I hope it is correct." line, minerva's normalisation and
//!   `is_equiv` ([`minerva`]).

use serde_json::{Map, Value, json};

use super::lm_eval::ContextFormat;
use super::recipe::{Assembly, DocField, Extractor, Recipe, Scorer, ShotPolicy};
use super::{Benchmark, Dataset, Sample, SampleFields, SubsetSource, str_field};
use crate::dataset::Row;
use crate::extract::latex_eq::{self, Mode};
use crate::extract::{self, math_verify, minerva};

/// The hub repository.
pub const REPO: &str = "HuggingFaceH4/MATH-500";

/// `main` (README + test.jsonl) as of 2024-11-15.
pub const MAIN_COMMIT: &str = "ff5b20257d8185524591543f8ff5993951537bb8";

/// The prompt of the native and EvalScope recipes (EvalScope's `math_500`
/// `prompt_template` is GSM8K's: `{question}\nPlease reason step by step,
/// and put your final answer within \boxed{}.`).
const BOXED: &str = "gsm8k_boxed.jinja";

/// EvalScope's math_500 adapter, read at modelscope/evalscope fde259d2.
const EVALSCOPE_PROVENANCE: &str = "EvalScope 1.14.1: benchmarks/math_500/math_500_adapter.py (0-shot, \
     prompt '{question}\\nPlease reason step by step, and put your final answer within \\boxed{}.', \
     metric acc numeric via metrics/math/parser.py extract_answer + compare_answers, Math-Verify 0.9.0); \
     comparison by src/extract/latex_eq.rs in Math-Verify mode";

/// The MATH-500 data: one subset (`default`), the test split evaluated (it
/// is the only split, so few-shot examples, when asked for, come from it).
pub fn dataset() -> Dataset {
    Dataset::new(
        REPO,
        MAIN_COMMIT,
        vec![SubsetSource::convert("default", "default", "test", "test")],
        to_fields,
    )
    .with_groups(&["level", "subject"])
}

/// The MATH-500 benchmark.
pub fn math_500() -> Benchmark {
    Benchmark::new(
        "math_500",
        "MATH-500 competition maths, LaTeX answers (HuggingFaceH4/MATH-500 test, 500 items; per level and subject)",
        dataset(),
        recipes(),
    )
}

/// A MATH-500 row (`problem`, `solution`, `answer`, `subject`, `level`,
/// `unique_id`) as sample fields.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let question = str_field(row, "problem")?;
    let solution = str_field(row, "solution")?;
    let answer = str_field(row, "answer")?;
    if answer.trim().is_empty() {
        return Err("column `answer` is empty".into());
    }
    let subject = str_field(row, "subject")?;
    let level = match row.get("level") {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.clone(),
        Some(other) => return Err(format!("column `level` is not an integer: {other}")),
        None => return Err("column `level` is missing".into()),
    };
    let mut metadata = Map::new();
    metadata.insert("level".into(), Value::Number(level));
    metadata.insert("subject".into(), Value::String(subject));
    Ok(SampleFields {
        id: row
            .get("unique_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        question,
        target: answer,
        reasoning: Some(solution.clone()),
        reference: Some(solution),
        metadata: metadata.into_iter().collect(),
        ..SampleFields::default()
    })
}

/// MATH-500's recipes, the default (`native`) first.
pub fn recipes() -> Vec<Recipe> {
    vec![native(), evalscope(), lm_eval()]
}

/// A right answer as the `\boxed{}` prompt asks for it.
fn boxed_answer(s: &Sample) -> String {
    format!(
        "We work it out step by step.\nSo the final answer is $\\boxed{{{}}}$.",
        s.target
    )
}

/// The "final answer is …" or `ANSWER:` line, math delimiters and a final
/// full stop removed.
fn answer_line(response: &str) -> Option<String> {
    let line = extract::last_answer_is(response).or_else(|| extract::last_answer_line(response))?;
    let line = line.trim().trim_end_matches('.').trim();
    let line = line.strip_prefix(':').unwrap_or(line).trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Our default: last `\boxed{}` / `\fbox{}`, else the answer line; lenient
/// LaTeX equivalence.
pub fn native() -> Recipe {
    Recipe::generate(
        "native",
        BOXED,
        vec![
            Extractor::new("answer-chain", |_: &Sample, r: &str| {
                latex_eq::last_boxed(r).or_else(|| answer_line(r))
            }),
            Extractor::new("last-boxed", |_: &Sample, r: &str| latex_eq::last_boxed(r)),
        ],
        Scorer::new("latex-equivalent", |s: &Sample, e: &str| {
            latex_eq::equivalent(&s.target, e, Mode::Native)
        }),
        boxed_answer,
    )
    .with_summary("0-shot chat, answer in \\boxed{}; last \\boxed{}/\\fbox{} (nested braces), else the 'final answer is' line; LaTeX expressions compared by value (lenient)")
    .with_provenance("bench native v1 (prompt from EvalScope math_500; src/extract/latex_eq.rs)")
}

/// EvalScope 1.14.1's `math_500`.
pub fn evalscope() -> Recipe {
    Recipe::generate(
        "evalscope",
        BOXED,
        vec![Extractor::new("evalscope", |_: &Sample, r: &str| {
            Some(math_verify::extract_answer(r)).filter(|s| !s.is_empty())
        })],
        Scorer::new("math-verify", |s: &Sample, e: &str| {
            let gold = math_verify::fragment_display(&s.target);
            let pred = math_verify::fragment_display(e);
            !gold.is_empty()
                && !pred.is_empty()
                && latex_eq::equivalent(&gold, &pred, Mode::MathVerify)
        }),
        boxed_answer,
    )
    .with_summary("EvalScope 1.14.1: 0-shot \\boxed{} prompt, Math-Verify extraction (boxed first, first match), Math-Verify comparison (strict, floats to 6 decimals)")
    .with_provenance(EVALSCOPE_PROVENANCE)
}

/// The four exemplars of lm-eval's `minerva_math` (`list_fewshot_samples`),
/// as (problem, solution, answer).
pub const MINERVA_EXEMPLARS: [(&str, &str, &str); 4] = [
    (
        "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct.",
        "[2,5)",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct.",
        "24",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct.",
        "16",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
        "-\\frac{2}{3}",
    ),
];

/// The minerva gold of a sample: its solution's last `\boxed{}`, normalised
/// (the `answer` column when the solution has none).
fn minerva_gold(s: &Sample) -> String {
    s.reference
        .as_deref()
        .and_then(minerva::gold_answer)
        .unwrap_or_else(|| minerva::normalize_final_answer(&s.target))
}

/// lm-eval's `minerva_math500`.
pub fn lm_eval() -> Recipe {
    let mut generation = Map::new();
    // The YAML's `temperature: 0` (an int) and `until: ["Problem:"]`;
    // `max_gen_toks` is lm-eval's default 256, `seed` its API default.
    generation.insert("temperature".into(), json!(0));
    generation.insert("max_tokens".into(), json!(256));
    generation.insert("stop".into(), json!(["Problem:"]));
    generation.insert("seed".into(), json!(1234));
    let exemplars = MINERVA_EXEMPLARS
        .iter()
        .map(|(q, sol, a)| SampleFields {
            question: q.to_string(),
            target: a.to_string(),
            reference: Some(sol.to_string()),
            reasoning: Some(sol.to_string()),
            ..SampleFields::default()
        })
        .collect();
    let mut r = Recipe::generate(
        "lm-eval",
        "lm_eval_minerva_math.jinja",
        vec![Extractor::new("minerva", |_: &Sample, r: &str| {
            minerva::extract(r)
        })],
        Scorer::new("minerva-is-equiv", |s: &Sample, e: &str| {
            minerva::is_equiv(e, &minerva_gold(s))
        }),
        |s: &Sample| {
            let boxed = s
                .reference
                .as_deref()
                .and_then(minerva::last_boxed_content)
                .unwrap_or_else(|| s.target.clone());
            format!(
                " We compute it.\nFinal Answer: The final answer is ${boxed}$. I hope it is correct."
            )
        },
    )
    .with_summary("lm-eval minerva_math500: 4 fixed exemplars, \"Problem:\\n...\\n\\nSolution:\", 'Final Answer: The final answer is X. I hope it is correct.', minerva normalize_final_answer + sympy-style is_equiv")
    .with_provenance(minerva::PROVENANCE)
    .with_default_few_shot(4);
    r.shots = ShotPolicy::Fixed(exemplars);
    r.assembly = Assembly::LmEval {
        format: ContextFormat::default(),
        doc_to_target: DocField::Reference,
    };
    r.generation = generation;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(answer: &str, solution: &str) -> Sample {
        let row = serde_json::from_value(json!({
            "problem": "Q?", "solution": solution, "answer": answer,
            "subject": "Algebra", "level": 3, "unique_id": "test/algebra/1.json",
        }))
        .unwrap();
        Sample::from_fields(to_fields(&row).unwrap(), "default", "test", 0)
    }

    /// (gold, answer, evalscope, native, lm-eval, note) rows of the case table.
    fn cases() -> Vec<[String; 6]> {
        include_str!("../../fixtures/math500/equivalence_cases.tsv")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 6, "{l:?}");
                std::array::from_fn(|i| f[i].to_string())
            })
            .collect()
    }

    #[test]
    fn case_table_has_sixty_pairs_both_ways() {
        let c = cases();
        assert!(c.len() >= 60, "{} rows", c.len());
        for col in 2..=4 {
            assert!(c.iter().any(|r| r[col] == "1") && c.iter().any(|r| r[col] == "0"));
        }
    }

    /// Every row of the case table, each recipe on the response its prompt
    /// asks for.
    #[test]
    fn case_table_verdicts() {
        let recipes = [(2, evalscope()), (3, native()), (4, lm_eval())];
        let mut failures = Vec::new();
        for row in cases() {
            let [gold, answer, ..] = &row;
            let s = sample(gold, &format!("so $\\boxed{{{gold}}}$."));
            for (col, recipe) in &recipes {
                let response = if recipe.id == "lm-eval" {
                    format!(
                        "So.\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
                    )
                } else {
                    format!("The answer is $\\boxed{{{answer}}}$.")
                };
                let got = recipe.grade(&s, &response)[0].correct;
                if got != (row[*col] == "1") {
                    failures.push(format!(
                        "{}: gold {gold:?} answer {answer:?}: want {}, got {got} ({})",
                        recipe.id, row[*col], row[5]
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn native_extraction_nested_and_last() {
        let r = native();
        let s = sample(r"\frac{\sqrt{3}}{2}", r"\boxed{\frac{\sqrt{3}}{2}}");
        let g = r.grade(&s, r"first \boxed{1} then $\boxed{\frac{\sqrt{3}}{2}}$");
        assert_eq!(g[0].extracted.as_deref(), Some(r"\frac{\sqrt{3}}{2}"));
        assert!(g[0].correct && g[1].correct);
        let g = r.grade(&s, r"The final answer is $\frac{\sqrt3}{2}$.");
        assert_eq!(g[0].extracted.as_deref(), Some(r"$\frac{\sqrt3}{2}$"));
        assert!(g[0].correct);
        assert_eq!(g[1].extracted, None);
        // A cut-off box is no answer.
        assert_eq!(r.grade(&s, r"\boxed{\frac{1}{2}")[1].extracted, None);
    }

    #[test]
    fn fields_and_groups() {
        let s = sample("5", r"so \boxed{5}");
        assert_eq!(s.metadata["level"], json!(3));
        assert_eq!(s.metadata["subject"], json!("Algebra"));
        assert_eq!(s.id.as_deref(), Some("test/algebra/1.json"));
        let g = dataset().group_values(&s);
        assert_eq!(g["level"], "3");
        assert_eq!(g["subject"], "Algebra");
        let bad = serde_json::from_value(
            json!({"problem": "q", "solution": "s", "answer": "1", "subject": "A", "level": "x"}),
        )
        .unwrap();
        assert!(to_fields(&bad).unwrap_err().contains("level"));
    }

    #[test]
    fn lm_eval_prompt_and_gold() {
        let r = lm_eval();
        let p = crate::prompt::Prompts::load(None).unwrap();
        let s = sample("5", r"It is $\boxed{5}$.");
        let text = p
            .render(&r.template, super::super::context(&s, &[]))
            .unwrap();
        assert_eq!(text, "Problem:\nQ?\n\nSolution:");
        assert_eq!(minerva_gold(&s), "5");
        assert_eq!(r.default_few_shot, 4);
        assert!(matches!(&r.shots, ShotPolicy::Fixed(v) if v.len() == 4));
    }
}
