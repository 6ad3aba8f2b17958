//! IFEval (`google/IFEval`, 541 prompts): does the response follow each
//! verifiable instruction of its prompt (word, sentence and paragraph
//! counts, keywords, case, formats, ...)?
//!
//! Grading is the official checker's (google-research
//! `instruction_following_eval`, as lm-eval 0.4.13 ships it): one
//! [`instructions::Instruction`] per instruction id, built from the row's
//! `kwargs` at load time (an unknown id or a bad argument fails the row),
//! checked on the response (**strict**) and, for **loose**, on eight
//! variants of it (as is, `*` removed, first line, last line or both
//! removed, each also without `*`), followed when any variant follows.
//!
//! The recipe has two extractors, `strict` (primary) and `loose`; each
//! "extracts" the per-instruction verdicts as a checklist
//! ([`crate::record::checklist_text`]: `pass id; fail id`) and is correct
//! when every instruction passed: the prompt-level accuracy. The
//! instruction-level accuracy and the per-kind table are computed from the
//! stored checklists ([`crate::record::instructions_for`]), so reports and
//! comparisons need no regrading, and `bench rescore` regrades from the
//! stored response (langdetect is seeded, so grading is deterministic).

pub mod instructions;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};

use super::recipe::{Extractor, Recipe, Scorer};
use super::{Benchmark, Dataset, Sample, SampleFields, SubsetSource, str_field};
use crate::dataset::Row;
use crate::record::{checklist_passed, checklist_text};
use instructions::Instruction;
use text::py_strip;

/// Hub repo.
pub const REPO: &str = "google/IFEval";

/// `main` at "Update README.md" (the data from `44e38fe`); the rows are
/// read from the parquet convert branch, `main` holding only jsonl.
pub const MAIN_COMMIT: &str = "966cd89545d6b6acfd7638bc708b98261ca58e84";

/// What lm-eval 0.4.13's `ifeval.yaml` follows.
pub const PROVENANCE: &str = "google-research instruction_following_eval (evaluation_lib.py, instructions.py, instructions_util.py) as copied in lm-eval 0.4.13 lm_eval/tasks/ifeval; langdetect seeded 0";

/// The `default` config's `train` split (the only one), from the convert
/// branch.
pub fn dataset() -> Dataset {
    Dataset::new(
        REPO,
        MAIN_COMMIT,
        vec![SubsetSource::convert(
            "default", "default", "train", "train",
        )],
        to_fields,
    )
}

/// The IFEval benchmark.
pub fn ifeval() -> Benchmark {
    Benchmark::new(
        "ifeval",
        "IFEval (541 prompts, 25 instruction kinds): prompt- and instruction-level accuracy, strict and loose, graded as the official checker",
        dataset(),
        vec![recipe()],
    )
}

/// The one recipe: the prompt as the only user message, lm-eval's
/// generation settings (greedy, up to 1280 tokens).
pub fn recipe() -> Recipe {
    let mut r = Recipe::generate(
        "native",
        "ifeval.jinja",
        vec![
            Extractor::new("strict", |s: &Sample, resp: &str| {
                Some(checklist_text(&verdicts(s, resp, Mode::Strict)))
            }),
            Extractor::new("loose", |s: &Sample, resp: &str| {
                Some(checklist_text(&verdicts(s, resp, Mode::Loose)))
            }),
        ],
        Scorer::new("every instruction followed", |_: &Sample, x: &str| {
            checklist_passed(x)
        }),
        follow_all,
    )
    .with_summary("0-shot, the prompt alone; strict (primary) and loose verdicts per instruction")
    .with_provenance(PROVENANCE);
    r.generation.insert("max_tokens".into(), json!(1280));
    r
}

/// A row: `key`, `prompt`, `instruction_id_list`, `kwargs` (one struct
/// per instruction, absent arguments null). Every instruction is built
/// here, so a row the checker cannot grade fails at load.
pub fn to_fields(row: &Row) -> Result<SampleFields, String> {
    let prompt = str_field(row, "prompt")?;
    let key = row.get("key").cloned().unwrap_or(Value::Null);
    let ids: Vec<String> = match row.get("instruction_id_list") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("column `instruction_id_list` holds a non-string: {v}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "column `instruction_id_list` is not a list: {other}"
            ));
        }
        None => return Err("column `instruction_id_list` is missing".into()),
    };
    let kwargs: Vec<Map<String, Value>> = match row.get("kwargs") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m.clone()),
                Value::Null => Ok(Map::new()),
                other => Err(format!("column `kwargs` holds a non-struct: {other}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("column `kwargs` is not a list: {other}")),
        None => return Err("column `kwargs` is missing".into()),
    };
    if ids.len() != kwargs.len() {
        return Err(format!(
            "{} instruction ids but {} kwargs",
            ids.len(),
            kwargs.len()
        ));
    }
    if ids.is_empty() {
        return Err("no instruction".into());
    }
    // Null arguments dropped: the record keeps what the checker reads.
    let kwargs: Vec<Map<String, Value>> = kwargs
        .into_iter()
        .map(|m| m.into_iter().filter(|(_, v)| !v.is_null()).collect())
        .collect();
    for (id, k) in ids.iter().zip(&kwargs) {
        instructions::build(id, k).map_err(|e| format!("key {key}: {e}"))?;
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("key".into(), key.clone());
    metadata.insert("instruction_id_list".into(), json!(ids));
    metadata.insert("kwargs".into(), json!(kwargs));
    Ok(SampleFields {
        id: Some(match &key {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        question: prompt,
        target: ids.join(", "),
        metadata,
        ..Default::default()
    })
}

/// Strict or loose grading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The response as it is (`test_instruction_following_strict`).
    Strict,
    /// Any of eight variants (`test_instruction_following_loose`).
    Loose,
}

/// A sample's instructions (id, built checker or why not), in order.
pub type Built = Arc<Vec<(String, Result<Box<dyn Instruction>, String>)>>;

/// A sample's instructions, built from its metadata once per distinct
/// (ids, kwargs) and kept: both extractors and every regrade reuse them
/// (the keyword patterns are compiled once).
pub fn sample_instructions(s: &Sample) -> Built {
    static CACHE: LazyLock<Mutex<HashMap<String, Built>>> = LazyLock::new(Default::default);
    let ids = s
        .metadata
        .get("instruction_id_list")
        .cloned()
        .unwrap_or(Value::Null);
    let kwargs = s.metadata.get("kwargs").cloned().unwrap_or(Value::Null);
    let key = format!("{ids}\u{0}{kwargs}");
    if let Some(b) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return b;
    }
    let ids: Vec<String> = serde_json::from_value(ids).unwrap_or_default();
    let kwargs: Vec<Map<String, Value>> = serde_json::from_value(kwargs).unwrap_or_default();
    let built: Built = Arc::new(
        ids.into_iter()
            .enumerate()
            .map(|(i, id)| {
                let k = kwargs.get(i).cloned().unwrap_or_default();
                let b = instructions::build(&id, &k);
                (id, b)
            })
            .collect(),
    );
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, built.clone());
    }
    built
}

/// The loose variants of `response`, in evaluation_lib's order: as is,
/// `*` removed, first line removed, last line removed, both, and the last
/// three without `*` (the removals strip the rest).
pub fn loose_variants(response: &str) -> Vec<String> {
    let lines: Vec<&str> = response.split('\n').collect();
    let join = |ls: &[&str]| py_strip(&ls.join("\n")).to_string();
    let n = lines.len();
    let remove_first = join(&lines[1.min(n)..]);
    let remove_last = join(&lines[..n.saturating_sub(1)]);
    let remove_both = if n >= 2 {
        join(&lines[1..n - 1])
    } else {
        String::new()
    };
    vec![
        response.to_string(),
        response.replace('*', ""),
        remove_first.clone(),
        remove_last.clone(),
        remove_both.clone(),
        remove_first.replace('*', ""),
        remove_last.replace('*', ""),
        remove_both.replace('*', ""),
    ]
}

/// Whether `response` follows `ins`, as evaluation_lib asks: an empty
/// (whitespace) response follows nothing.
fn follows(ins: &dyn Instruction, response: &str) -> bool {
    !py_strip(response).is_empty() && ins.check(response)
}

/// Whether `response` follows instruction `id` with `kwargs` (a JSON
/// object) under the strict rule; an error names a bad id or argument.
pub fn follows_instruction(id: &str, kwargs: &Value, response: &str) -> Result<bool, String> {
    let k = match kwargs {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => return Err(format!("kwargs is not an object: {other}")),
    };
    let ins = instructions::build(id, &k)?;
    Ok(follows(ins.as_ref(), response))
}

/// Per-instruction verdicts of `response` to `sample` (id, followed), in
/// the prompt's order. An instruction that cannot be built (a record from
/// another version) is not followed.
pub fn verdicts(sample: &Sample, response: &str, mode: Mode) -> Vec<(String, bool)> {
    let built = sample_instructions(sample);
    let variants = match mode {
        Mode::Strict => vec![response.to_string()],
        Mode::Loose => {
            let mut v = loose_variants(response);
            // A repeated variant has the same verdict: check it once. At
            // most 8 variants, so comparing beats hashing each ~2 KB text.
            let mut i = 0;
            while i < v.len() {
                if v[..i].contains(&v[i]) {
                    v.remove(i);
                } else {
                    i += 1;
                }
            }
            v
        }
    };
    built
        .iter()
        .map(|(id, ins)| {
            let ok = ins
                .as_ref()
                .is_ok_and(|ins| variants.iter().any(|v| follows(ins.as_ref(), v)));
            (id.clone(), ok)
        })
        .collect()
}

/// A response that follows every instruction of `sample` whose kind can
/// write one ([`Instruction::follow`]), from a plain English sentence:
/// the recipe's answer format.
pub fn follow_all(sample: &Sample) -> String {
    let mut r = String::from("This is a short answer about the topic");
    for (_, ins) in sample_instructions(sample).iter() {
        if let Ok(ins) = ins {
            r = ins.follow(r);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_variants_follow_evaluation_lib() {
        let v = loose_variants("Sure:\n*a* b\nbye");
        assert_eq!(
            v,
            [
                "Sure:\n*a* b\nbye",
                "Sure:\na b\nbye",
                "*a* b\nbye",
                "Sure:\n*a* b",
                "*a* b",
                "a b\nbye",
                "Sure:\na b",
                "a b",
            ]
        );
        // One line: removing a line leaves nothing.
        assert_eq!(loose_variants("x")[2..5], ["", "", ""]);
    }
}
