//! lm-evaluation-harness `multiple_choice` tasks: the loglikelihood recipe
//! constructor, the continuations of an item, and the metrics lm-eval
//! computes from the choices' log-probabilities (`acc`, `acc_norm`,
//! `acc_bytes`, TruthfulQA's `mc2`).
//!
//! A request is a context (lm-eval's `description` + few-shot examples +
//! `doc_to_text`, joined as plain text) and one continuation per choice,
//! `target_delimiter + doc_to_choice[i]`. Each few-shot example ends with
//! the text of its gold choice, as lm-eval's samplers write it for a
//! `multiple_choice` task. The scores themselves come from a server
//! (`/v1/completions` with `echo`) or the in-process engine; this module
//! only turns them into verdicts, so `rescore` recomputes every metric from
//! a run's journal.
//!
//! Facts (lm-eval 0.4.x, `api/task.py`, `api/metrics.py`,
//! `tasks/truthfulqa/utils.py`): `acc` is the argmax of the summed
//! log-probabilities; `acc_norm` divides each by the length of the
//! continuation in characters (the delimiter included: lm-eval measures
//! `len(i)` of the continuations it scored); `acc_bytes` by its UTF-8
//! bytes; ties go to the first choice (`np.argmax`). `mc2` is the
//! normalised probability mass `sum(p_true) / (sum(p_true) + sum(p_false))`
//! with the true answers the choices before the first label 0.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::lm_eval::ContextFormat;
use super::recipe::{Assembly, DocField, Extractor, Recipe, RequestKind, Scorer, ShotPolicy};
use super::{Grade, Sample};
use crate::extract;
use crate::record::LoglikelihoodRecord;

/// Where an item's choices (`doc_to_choice`) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceSource {
    /// The sample's option texts, in dataset order (ARC, HellaSwag).
    Texts,
    /// The letters `A`.. of its options (MMLU's `["A", "B", "C", "D"]`).
    Letters,
    /// The option texts put back in the dataset's order, for a benchmark
    /// whose parser shuffles them and records the `permutation` (the
    /// original index of each shown option) in the metadata: TruthfulQA
    /// MC1, whose lm-eval task keeps the true answer first.
    Unshuffled,
}

/// A metric lm-eval computes from the choices' scores; each is an
/// extractor of the recipe (its name is the metric's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlMetric {
    /// Argmax of the log-probabilities.
    Acc,
    /// Argmax of the log-probabilities over the continuations' characters.
    AccNorm,
    /// Argmax of the log-probabilities over the continuations' bytes.
    AccBytes,
    /// TruthfulQA MC2: probability mass on the true answers (named `acc`
    /// in lm-eval's `truthfulqa_mc2`).
    Mc2,
}

impl LlMetric {
    /// The name in records and reports, as lm-eval prints it.
    pub fn name(self) -> &'static str {
        match self {
            LlMetric::Acc | LlMetric::Mc2 => "acc",
            LlMetric::AccNorm => "acc_norm",
            LlMetric::AccBytes => "acc_bytes",
        }
    }
}

/// What a loglikelihood recipe asks and how it scores.
#[derive(Debug, Clone, PartialEq)]
pub struct LlSpec {
    /// `doc_to_choice`.
    pub choices: ChoiceSource,
    /// Metrics, the primary first.
    pub metrics: Vec<LlMetric>,
}

impl LlSpec {
    /// The choices' texts, in the order lm-eval scores them.
    pub fn choice_texts(&self, s: &Sample) -> Vec<String> {
        match self.choices {
            ChoiceSource::Texts => s.choices.clone(),
            ChoiceSource::Letters => extract::letters(s.choices.len())
                .iter()
                .map(char::to_string)
                .collect(),
            ChoiceSource::Unshuffled => match permutation(s) {
                Some(perm) => {
                    let mut out = vec![String::new(); s.choices.len()];
                    for (shown, &orig) in perm.iter().enumerate() {
                        out[orig] = s.choices[shown].clone();
                    }
                    out
                }
                None => s.choices.clone(),
            },
        }
    }

    /// The gold choice's index in [`LlSpec::choice_texts`] order (`None`:
    /// the target is not one of the options).
    pub fn gold(&self, s: &Sample) -> Option<usize> {
        let shown = letter_index(&s.target)?;
        match self.choices {
            ChoiceSource::Unshuffled => match permutation(s) {
                Some(perm) => perm.get(shown).copied(),
                None => Some(shown),
            },
            _ => Some(shown),
        }
    }

    /// The few-shot answer of `s` (lm-eval: `doc_to_choice[doc_to_target]`).
    pub fn gold_text(&self, s: &Sample) -> String {
        self.gold(s)
            .and_then(|g| self.choice_texts(s).get(g).cloned())
            .unwrap_or_default()
    }

    /// Every metric on one item's scores, primary first, with the scores
    /// of metrics that are not a plain verdict (`mc2`).
    pub fn grade(&self, s: &Sample, ll: &LoglikelihoodRecord) -> (Vec<Grade>, Vec<(String, f64)>) {
        let gold = self.gold(s);
        let mut scores = Vec::new();
        let grades = self
            .metrics
            .iter()
            .map(|m| {
                let name = m.name().to_string();
                match m {
                    LlMetric::Mc2 => {
                        let p = mc2(s, ll);
                        if let Some(p) = p {
                            scores.push((name.clone(), p));
                        }
                        Grade {
                            extractor: name,
                            extracted: p.map(|p| format!("{p:.6}")),
                            correct: p.is_some_and(|p| p > 0.5),
                        }
                    }
                    _ => {
                        let pick = argmax(ll, *m);
                        Grade {
                            extractor: name,
                            extracted: pick.map(letter),
                            correct: pick.is_some() && pick == gold,
                        }
                    }
                }
            })
            .collect();
        (grades, scores)
    }
}

impl LlSpec {
    /// Set a record's verdicts, scores and loglikelihoods from `ll` (the
    /// runner and `rescore` both grade this way).
    pub fn apply(
        &self,
        sample: &Sample,
        rec: &mut crate::record::SampleRecord,
        ll: LoglikelihoodRecord,
    ) {
        let (grades, scores) = self.grade(sample, &ll);
        rec.set_grades(&grades);
        rec.scores = scores.into_iter().collect();
        rec.loglikelihood = Some(ll);
    }
}

/// The letter of option `i` (`A`.. then past `Z` as `[` etc. never
/// happens: no benchmark has more than 26 options).
fn letter(i: usize) -> String {
    char::from(b'A' + (i.min(25)) as u8).to_string()
}

/// `A` -> 0 .. `Z` -> 25.
fn letter_index(t: &str) -> Option<usize> {
    let mut cs = t.chars();
    let c = cs.next()?;
    (cs.next().is_none() && c.is_ascii_uppercase()).then(|| (c as u8 - b'A') as usize)
}

fn permutation(s: &Sample) -> Option<Vec<usize>> {
    let perm: Vec<usize> = s
        .metadata
        .get("permutation")?
        .as_array()?
        .iter()
        .map(|v| v.as_u64().map(|u| u as usize))
        .collect::<Option<_>>()?;
    (perm.len() == s.choices.len() && perm.iter().all(|&p| p < perm.len())).then_some(perm)
}

/// The chosen index under `m` (the first of equal maxima, as `np.argmax`);
/// `None` with no choice.
pub fn argmax(ll: &LoglikelihoodRecord, m: LlMetric) -> Option<usize> {
    let value = |c: &crate::record::ChoiceRecord| match m {
        LlMetric::AccNorm => c.logprob / c.chars.max(1) as f64,
        LlMetric::AccBytes => c.logprob / c.bytes.max(1) as f64,
        _ => c.logprob,
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in ll.choices.iter().enumerate() {
        let v = value(c);
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// lm-eval's `process_results_mc2`: the true answers are the choices before
/// the first label 0 (metadata `labels`); `None` without labels.
pub fn mc2(s: &Sample, ll: &LoglikelihoodRecord) -> Option<f64> {
    let labels = s.metadata.get("labels")?.as_array()?;
    let split = labels.iter().position(|l| l.as_i64() == Some(0))?;
    if ll.choices.len() != labels.len() {
        return None;
    }
    // exp of each log-probability, as lm-eval (no max-shift: its numbers).
    let p: Vec<f64> = ll.choices.iter().map(|c| c.logprob.exp()).collect();
    let total: f64 = p.iter().sum();
    if total == 0.0 || !total.is_finite() {
        return None;
    }
    Some(p[..split].iter().sum::<f64>() / total)
}

/// An lm-eval `multiple_choice` task, as a recipe.
#[derive(Debug, Clone)]
pub struct MultipleChoice {
    /// The mode id (`lm-eval-ll`).
    pub id: String,
    /// One line for `bench list`.
    pub summary: String,
    /// Task YAML and lm-eval version.
    pub provenance: String,
    /// `doc_to_text` template in `prompts/`.
    pub template: String,
    /// `description` template in `prompts/`, rendered per item.
    pub description: Option<String>,
    /// `num_fewshot`.
    pub default_few_shot: usize,
    /// The sampler.
    pub shots: ShotPolicy,
    /// `doc_to_choice` and metrics.
    pub spec: LlSpec,
}

impl MultipleChoice {
    /// The recipe.
    pub fn recipe(self) -> Recipe {
        let MultipleChoice {
            id,
            summary,
            provenance,
            template,
            description,
            default_few_shot,
            shots,
            spec,
        } = self;
        // lm-eval's loglikelihood payload (`local-completions`).
        let mut generation = Map::new();
        generation.insert("temperature".into(), json!(0));
        generation.insert("max_tokens".into(), json!(1));
        generation.insert("logprobs".into(), json!(1));
        generation.insert("seed".into(), json!(1234));
        generation.insert("echo".into(), json!(true));
        // Generated text never scores here: the metrics read the choices'
        // log-probabilities ([`LlSpec::grade`]).
        let extractors = spec
            .metrics
            .iter()
            .map(|m| Extractor::new(m.name(), |_, _| None))
            .collect();
        let gold_spec = spec.clone();
        // The few-shot answer: the gold choice as `doc_to_choice` has it.
        let doc_to_target = match spec.choices {
            ChoiceSource::Letters => DocField::Target,
            _ => DocField::GoldChoice,
        };
        Recipe {
            id,
            summary,
            provenance,
            template,
            default_few_shot,
            shots,
            pinned_zero_shot: None,
            assembly: Assembly::LmEval {
                format: ContextFormat {
                    description,
                    ..ContextFormat::default()
                },
                doc_to_target,
            },
            generation,
            request: RequestKind::Loglikelihood(spec),
            extractors,
            scorer: Scorer::new("argmax loglikelihood", move |s, e| {
                gold_spec.gold(s).map(letter).as_deref() == Some(e)
            }),
            answer_format: Arc::new(|s: &Sample| s.target.clone()),
            groups: None,
        }
    }
}

/// The continuations of `s`: lm-eval's target delimiter before each
/// choice.
pub fn continuations(spec: &LlSpec, s: &Sample, target_delimiter: &str) -> Vec<String> {
    spec.choice_texts(s)
        .into_iter()
        .map(|c| format!("{target_delimiter}{c}"))
        .collect()
}

/// Metadata value as a string list (for parsers).
pub fn labels_value(labels: &[i64]) -> Value {
    Value::Array(labels.iter().map(|l| json!(l)).collect())
}

/// lm-eval's version these recipes follow.
pub const PROVENANCE: &str =
    "lm-evaluation-harness 0.4.x (local-completions loglikelihood, api/task.py multiple_choice)";

/// A loglikelihood recipe: `id`, `doc_to_text` template, few-shot default
/// and sampler, choices and metrics.
#[allow(clippy::too_many_arguments)]
pub fn lm_eval_ll(
    id: &str,
    summary: &str,
    task_yaml: &str,
    template: &str,
    description: Option<&str>,
    default_few_shot: usize,
    shots: ShotPolicy,
    choices: ChoiceSource,
    metrics: Vec<LlMetric>,
) -> Recipe {
    MultipleChoice {
        id: id.into(),
        summary: summary.into(),
        provenance: format!("{PROVENANCE}: {task_yaml}"),
        template: template.into(),
        description: description.map(str::to_string),
        default_few_shot,
        shots,
        spec: LlSpec { choices, metrics },
    }
    .recipe()
}
