//! A recipe: how a [`Sample`] is asked and graded, as a value.
//!
//! A recipe owns the template, the few-shot policy, the prompt assembly
//! (one turn, or lm-eval's few-shot turns with an optional prefill), the
//! generation defaults, the request kind, the extractors (each a name and a
//! function: nothing is looked up by name at grading time) and the scorer.
//! Its id is the mode name users give in `--dataset-args` and records store
//! (`native`, `lm-eval`).
//!
//! It does not own where rows come from ([`super::Dataset`]) nor the
//! reusable building blocks, which live in the shared constructors
//! ([`super::mcq`], [`super::math`], [`super::lm_eval`]) and in
//! [`crate::extract`].

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::lm_eval::{ContextFormat, assemble};
use super::loglikelihood::LlSpec;
use super::{Grade, Sample, SampleFields};
use crate::client::{ApiKind, Message, Prompt};
use crate::extract;
use crate::prompt::{PromptError, Prompts};

/// Where a recipe's few-shot examples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ShotPolicy {
    /// The first k rows of the few-shot split, the same for every item
    /// (EvalScope's rule, and ours).
    FirstN,
    /// The first k rows of the few-shot split whose metadata value of `key`
    /// equals the item's (MMLU-Pro: the CoT examples of the item's
    /// category, as its authors and EvalScope pick them).
    FirstNSame {
        /// The metadata key compared (`category`).
        key: String,
    },
    /// lm-evaluation-harness's default sampler: one CPython
    /// `random.Random(seed)` per subset, `sample(fewshot_split, k)` for each
    /// evaluated item in split order.
    LmEvalRandom {
        /// `fewshot_seed` (lm-eval's default 1234).
        seed: u64,
    },
    /// Exemplars written into the recipe (lm-eval's `gsm8k_cot`), not drawn
    /// from the dataset.
    Fixed(Vec<SampleFields>),
}

/// What a request asks the model for.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestKind {
    /// Generate text, then extract the answer from it.
    Generate,
    /// Score each choice's continuation after the context by its
    /// log-probability (lm-eval's `multiple_choice` output type); the
    /// metrics read those scores, not generated text.
    Loglikelihood(LlSpec),
}

impl RequestKind {
    /// The loglikelihood settings, for a loglikelihood recipe.
    pub fn loglikelihood(&self) -> Option<&LlSpec> {
        match self {
            RequestKind::Generate => None,
            RequestKind::Loglikelihood(spec) => Some(spec),
        }
    }
}

/// Which field of a few-shot sample is its answer (lm-eval's `doc_to_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocField {
    /// [`Sample::target`] (`18`, `B`).
    Target,
    /// [`Sample::reference`], the full solution (else the target).
    Reference,
    /// [`Sample::reasoning`] (else empty).
    Reasoning,
    /// The text of the gold option (`choices[index of target]`): the
    /// few-shot answer of an lm-eval `multiple_choice` task.
    GoldChoice,
}

impl DocField {
    /// The field's text in `s`.
    pub fn of(self, s: &Sample) -> String {
        match self {
            DocField::Target => s.target.clone(),
            DocField::Reference => s.reference.clone().unwrap_or_else(|| s.target.clone()),
            DocField::Reasoning => s.reasoning.clone().unwrap_or_default(),
            DocField::GoldChoice => {
                let mut cs = s.target.chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) if c.is_ascii_uppercase() => s
                        .choices
                        .get((c as u8 - b'A') as usize)
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                }
            }
        }
    }
}

/// How the rendered template becomes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembly {
    /// The template renders the whole prompt, few-shot examples included,
    /// sent as one user message (chat) or as the prompt (completions).
    SingleTurn,
    /// lm-evaluation-harness: the template is `doc_to_text`, each few-shot
    /// example adds `doc_to_target`; joined as plain text (completions) or
    /// user/assistant turns (chat), with an optional prefill
    /// ([`super::lm_eval::assemble`]).
    LmEval {
        /// Delimiters and prefill.
        format: ContextFormat,
        /// The few-shot answer.
        doc_to_target: DocField,
    },
}

/// An extractor's function: the answer in a response to a sample, if any.
pub type ExtractFn = Arc<dyn Fn(&Sample, &str) -> Option<String> + Send + Sync>;

/// A scorer's function: whether an extracted answer is right for a sample.
pub type ScoreFn = Arc<dyn Fn(&Sample, &str) -> bool + Send + Sync>;

/// A named way of pulling the answer out of a response.
#[derive(Clone)]
pub struct Extractor {
    /// Name in records and reports (`answer-chain`, `strict-match`).
    pub name: String,
    run: ExtractFn,
}

impl Extractor {
    /// An extractor from its name and function (`None`: no answer found).
    pub fn new(
        name: impl Into<String>,
        run: impl Fn(&Sample, &str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            run: Arc::new(run),
        }
    }

    /// Run it on `response` to `sample`.
    pub fn extract(&self, sample: &Sample, response: &str) -> Option<String> {
        (self.run)(sample, response)
    }
}

impl fmt::Debug for Extractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extractor({})", self.name)
    }
}

/// Whether an extracted answer matches the sample's gold answer.
#[derive(Clone)]
pub struct Scorer {
    /// What it compares, for humans (`numeric`, `exact_match`).
    pub name: String,
    run: ScoreFn,
}

impl Scorer {
    /// A scorer from its description and function.
    pub fn new(
        name: impl Into<String>,
        run: impl Fn(&Sample, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            run: Arc::new(run),
        }
    }

    /// Whether `extracted` is right for `sample`.
    pub fn is_correct(&self, sample: &Sample, extracted: &str) -> bool {
        (self.run)(sample, extracted)
    }
}

impl fmt::Debug for Scorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scorer({})", self.name)
    }
}

/// A function writing the response a model that follows the recipe's
/// prompt gives when it is right: the recipe's own target format. Tests use
/// it to answer every recipe in its format; it is never used to grade.
pub type AnswerFormat = Arc<dyn Fn(&Sample) -> String + Send + Sync>;

/// How a sample is asked and graded. See the module docs.
#[derive(Clone)]
pub struct Recipe {
    /// The mode name (`native`, `lm-eval-cot`), unique within a benchmark.
    pub id: String,
    /// One line for `bench list`.
    pub summary: String,
    /// Reference tool and version/commit whose rules this recipe follows,
    /// or `bench` for our own.
    pub provenance: String,
    /// Template name in `prompts/`.
    pub template: String,
    /// Few-shot examples used unless `few_shot` is given.
    pub default_few_shot: usize,
    /// Where few-shot examples come from.
    pub shots: ShotPolicy,
    /// The reference task whose YAML pins `num_fewshot: 0`, for recipes that
    /// follow one. lm-eval then ignores `--num_fewshot` for it (with a log
    /// line saying so), and so does bench with `few_shot`.
    pub pinned_zero_shot: Option<String>,
    /// How the rendered template becomes a request.
    pub assembly: Assembly,
    /// Generation parameters sent unless overridden (their JSON types
    /// matter: lm-eval sends `temperature: 0`, EvalScope `0.0`).
    pub generation: Map<String, Value>,
    /// What the request asks for.
    pub request: RequestKind,
    /// Extractors, the primary first; every one runs on every response.
    pub extractors: Vec<Extractor>,
    /// Compares an extracted answer with the gold answer.
    pub scorer: Scorer,
    /// A right answer in this recipe's format ([`AnswerFormat`]).
    pub answer_format: AnswerFormat,
    /// Metadata keys this recipe's reports group items by, in place of the
    /// dataset's [`Dataset::groups`](super::Dataset::groups) (`None`: the
    /// dataset's): MMLU's `lm-eval-ll` reports lm-eval's groups, not the
    /// MMLU authors' categories.
    pub groups: Option<Vec<String>>,
}

impl fmt::Debug for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipe")
            .field("id", &self.id)
            .field("template", &self.template)
            .field("shots", &self.shots)
            .field("assembly", &self.assembly)
            .field("request", &self.request)
            .field("extractors", &self.extractors)
            .field("scorer", &self.scorer)
            .finish_non_exhaustive()
    }
}

impl Recipe {
    /// A single-turn, zero-shot `Generate` recipe at temperature 0.0: the
    /// starting point of the shared constructors, which then set what
    /// differs.
    pub fn generate(
        id: impl Into<String>,
        template: impl Into<String>,
        extractors: Vec<Extractor>,
        scorer: Scorer,
        answer_format: impl Fn(&Sample) -> String + Send + Sync + 'static,
    ) -> Self {
        let mut generation = Map::new();
        generation.insert("temperature".into(), json!(0.0));
        Recipe {
            id: id.into(),
            summary: String::new(),
            provenance: "bench".into(),
            template: template.into(),
            default_few_shot: 0,
            shots: ShotPolicy::FirstN,
            pinned_zero_shot: None,
            assembly: Assembly::SingleTurn,
            generation,
            request: RequestKind::Generate,
            extractors,
            scorer,
            answer_format: Arc::new(answer_format),
            groups: None,
        }
    }

    /// Reporting by these metadata keys instead of the dataset's groups.
    pub fn with_groups(mut self, keys: &[&str]) -> Self {
        self.groups = Some(keys.iter().map(|k| k.to_string()).collect());
        self
    }

    /// The metadata keys this recipe's reports group by: its own, else the
    /// dataset's.
    pub fn group_keys<'a>(&'a self, dataset: &'a super::Dataset) -> &'a [String] {
        self.groups.as_deref().unwrap_or(&dataset.groups)
    }

    /// With another id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// With another `bench list` line.
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// With another provenance.
    pub fn with_provenance(mut self, provenance: impl Into<String>) -> Self {
        self.provenance = provenance.into();
        self
    }

    /// With another template.
    pub fn with_template(mut self, template: impl Into<String>) -> Self {
        self.template = template.into();
        self
    }

    /// With another default number of few-shot examples.
    pub fn with_default_few_shot(mut self, n: usize) -> Self {
        self.default_few_shot = n;
        self
    }

    /// With another answer format ([`Recipe::format_answer`]).
    pub fn with_answer_format(
        mut self,
        answer_format: impl Fn(&Sample) -> String + Send + Sync + 'static,
    ) -> Self {
        self.answer_format = Arc::new(answer_format);
        self
    }

    /// With another few-shot policy.
    pub fn with_shots(mut self, shots: ShotPolicy) -> Self {
        self.shots = shots;
        self
    }

    /// With another scorer (extractors kept).
    pub fn with_scorer(mut self, scorer: Scorer) -> Self {
        self.scorer = scorer;
        self
    }

    /// The primary extractor's name (what `correct` in a record follows).
    pub fn primary(&self) -> &str {
        self.extractors.first().map_or("", |e| e.name.as_str())
    }

    /// Extractor names, primary first.
    pub fn extractor_names(&self) -> Vec<String> {
        self.extractors.iter().map(|e| e.name.clone()).collect()
    }

    /// A right answer to `sample` in this recipe's format.
    pub fn format_answer(&self, sample: &Sample) -> String {
        (self.answer_format)(sample)
    }

    /// The number of few-shot examples a run uses when `few_shot` is `asked`
    /// (`None`: not given), and a warning when the request is ignored.
    ///
    /// A recipe that follows a task whose YAML pins `num_fewshot: 0`
    /// ([`Recipe::pinned_zero_shot`]) ignores `few_shot`, as lm-eval ignores
    /// `--num_fewshot` for that task; the warning repeats lm-eval's message.
    pub fn few_shot_for(&self, asked: Option<usize>) -> (usize, Option<String>) {
        match (asked, self.pinned_zero_shot.as_deref()) {
            (Some(n), Some(task)) if n > 0 => (
                0,
                Some(format!(
                    "num_fewshot has been set to 0 for {task} in its config. Manual configuration will be ignored. \
                     (mode {}: {n} examples asked, none sent, as lm-eval does)",
                    self.id
                )),
            ),
            (Some(_), Some(_)) => (0, None),
            (Some(n), None) => (n, None),
            (None, _) => (self.default_few_shot, None),
        }
    }

    /// The request for `sample` with its few-shot examples.
    pub fn prompt(
        &self,
        sample: &Sample,
        shots: &[Sample],
        prompts: &Prompts,
        api: ApiKind,
    ) -> Result<Prompt, PromptError> {
        match &self.assembly {
            Assembly::SingleTurn => {
                let text = prompts.render(&self.template, context(sample, shots))?;
                Ok(single_turn(text, api))
            }
            Assembly::LmEval {
                format,
                doc_to_target,
            } => {
                let text = |s: &Sample| prompts.render(&self.template, context(s, &[]));
                // lm-eval's samplers start each few-shot answer with the
                // prefill and the target delimiter, as the model's answer
                // to the item will.
                let prefix = format
                    .gen_prefix
                    .as_ref()
                    .map(|p| format!("{p}{}", format.target_delimiter))
                    .unwrap_or_default();
                let pairs = shots
                    .iter()
                    .map(|s| Ok((text(s)?, format!("{prefix}{}", doc_to_target.of(s)))))
                    .collect::<Result<Vec<_>, PromptError>>()?;
                let prompt = assemble(format, &pairs, &text(sample)?, api);
                // lm-eval's `description` opens the plain-text context.
                match (&format.description, prompt) {
                    (Some(name), Prompt::Text(t)) => {
                        let d = prompts.render(name, context(sample, &[]))?;
                        Ok(Prompt::Text(format!("{d}{t}")))
                    }
                    (_, p) => Ok(p),
                }
            }
        }
    }

    /// Every extractor on `response`, in order (primary first), each scored.
    pub fn grade(&self, sample: &Sample, response: &str) -> Vec<Grade> {
        self.extractors
            .iter()
            .map(|e| {
                let extracted = e.extract(sample, response);
                let correct = extracted
                    .as_deref()
                    .is_some_and(|x| self.scorer.is_correct(sample, x));
                Grade {
                    extractor: e.name.clone(),
                    extracted,
                    correct,
                }
            })
            .collect()
    }
}

/// What every template sees: the item's question, its options (as
/// `choices` of `{letter, text}`, plain `texts`, and `letters`) and
/// metadata, and the same for each few-shot example plus its answers
/// (`target`, `reasoning`, `reference`). The item's own answers are left
/// out, so no template can show them by mistake.
pub fn context(sample: &Sample, shots: &[Sample]) -> Value {
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
        "metadata": sample.metadata,
        "shots": shots.iter().map(|s| json!({
            "question": s.question,
            "choices": opts(s),
            "texts": s.choices,
            "target": s.target,
            "reasoning": s.reasoning,
            "reference": s.reference,
            "metadata": s.metadata,
        })).collect::<Vec<_>>(),
    })
}

/// One user message (chat) or the plain prompt (completions).
pub fn single_turn(text: String, api: ApiKind) -> Prompt {
    match api {
        ApiKind::Chat => Prompt::Messages(vec![Message {
            role: "user".into(),
            content: text,
        }]),
        ApiKind::Completions => Prompt::Text(text),
    }
}
