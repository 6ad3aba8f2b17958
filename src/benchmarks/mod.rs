//! The benchmark registry: one trait, one file per benchmark, one line in
//! [`ALL`].
//!
//! A benchmark is a dataset (pinned hub revision, subsets), a way to turn a
//! row into a [`Sample`], and per [`Mode`] a prompt template and a list of
//! named extractors with a scorer. Everything else (fetching, requests,
//! journal, statistics, reports) is shared and lives elsewhere.
//!
//! To add a benchmark: write `src/benchmarks/<name>.rs` with a unit struct
//! implementing [`Benchmark`], add `&<name>::Struct` to [`ALL`], add a
//! template under `prompts/` if no existing one fits (and list it in
//! [`crate::prompt::EMBEDDED`]), and a few-row parquet fixture under
//! `fixtures/hub/`. The registry tests check names, modes and templates.

pub mod arc;
pub mod gsm8k;
pub mod lm_eval;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{ApiKind, Message, Prompt};
use crate::dataset::Row;
use crate::prompt::{PromptError, Prompts};

/// Every benchmark `bench` knows, in the order `bench list` shows them.
pub const ALL: &[&dyn Benchmark] = &[
    &gsm8k::Gsm8k,
    &arc::ARC,
    &arc::ARC_EASY,
    &arc::ARC_CHALLENGE,
];

/// How a benchmark is prompted and graded. Chosen per benchmark with
/// `--dataset-args '{"gsm8k": {"mode": "native"}}'`; `bench list` shows which
/// benchmark supports which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Our robust default: zero-shot chat, tolerant extraction.
    Native,
    /// EvalScope as its current release (1.14.1) runs the benchmark (prompt,
    /// few-shot, parser, scorer).
    Evalscope,
    /// EvalScope 1.12 and earlier 1.x: the Qwen-Math parser and `math_equal`
    /// that 1.13.0 replaced with Math-Verify (GSM8K only).
    Evalscope112,
    /// lm-evaluation-harness's main task for the benchmark (`gsm8k`,
    /// `arc_challenge_chat`).
    LmEval,
    /// lm-evaluation-harness `gsm8k_cot` (8 fixed chain-of-thought exemplars).
    LmEvalCot,
    /// lm-evaluation-harness `gsm8k_cot_zeroshot`.
    LmEvalCotZeroshot,
}

impl Mode {
    /// Every mode, in `bench list` order.
    pub const ALL: [Mode; 6] = [
        Mode::Native,
        Mode::Evalscope,
        Mode::Evalscope112,
        Mode::LmEval,
        Mode::LmEvalCot,
        Mode::LmEvalCotZeroshot,
    ];

    /// The name used on the command line and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Evalscope => "evalscope",
            Mode::Evalscope112 => "evalscope-1.12",
            Mode::LmEval => "lm-eval",
            Mode::LmEvalCot => "lm-eval-cot",
            Mode::LmEvalCotZeroshot => "lm-eval-cot-zeroshot",
        }
    }

    /// Parse a mode name.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a mode's few-shot examples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShotPolicy {
    /// The first k rows of the few-shot split, the same for every item
    /// (EvalScope's rule, and ours).
    FirstN,
    /// lm-evaluation-harness's default sampler: one CPython
    /// `random.Random(seed)` per subset, `sample(fewshot_split, k)` for each
    /// evaluated item in split order.
    LmEvalRandom {
        /// `fewshot_seed` (lm-eval's default 1234).
        seed: u64,
    },
    /// Fixed exemplars written into the task ([`Benchmark::fixed_shots`]).
    Fixed,
}

/// What a mode is: its template, extractors and where its rules come from.
#[derive(Debug, Clone, Copy)]
pub struct ModeInfo {
    /// The mode.
    pub mode: Mode,
    /// One line for `bench list`.
    pub summary: &'static str,
    /// Reference tool and version/commit whose rules this mode follows, or
    /// `bench` for our own.
    pub provenance: &'static str,
    /// Template name in `prompts/`.
    pub template: &'static str,
    /// Named extractors; the first is the primary verdict.
    pub extractors: &'static [&'static str],
    /// Few-shot examples used unless `few_shot` is given.
    pub default_few_shot: usize,
    /// Where few-shot examples come from.
    pub shots: ShotPolicy,
    /// The reference task whose YAML pins `num_fewshot: 0`, for modes that
    /// follow one. lm-eval then ignores `--num_fewshot` for it (with a log
    /// line saying so), and so does bench with `few_shot`.
    pub pinned_zero_shot: Option<&'static str>,
}

impl ModeInfo {
    /// The number of few-shot examples a run uses when `few_shot` is `asked`
    /// (`None`: not given), and a warning when the request is ignored.
    ///
    /// A mode that follows a task whose YAML pins `num_fewshot: 0`
    /// ([`ModeInfo::pinned_zero_shot`]) ignores `few_shot`, as lm-eval ignores
    /// `--num_fewshot` for that task; the warning repeats lm-eval's message.
    pub fn few_shot_for(&self, asked: Option<usize>) -> (usize, Option<String>) {
        match (asked, self.pinned_zero_shot) {
            (Some(n), Some(task)) if n > 0 => (
                0,
                Some(format!(
                    "num_fewshot has been set to 0 for {task} in its config. Manual configuration will be ignored. \
                     (mode {}: {n} examples asked, none sent, as lm-eval does)",
                    self.mode
                )),
            ),
            (Some(_), Some(_)) => (0, None),
            (Some(n), None) => (n, None),
            (None, _) => (self.default_few_shot, None),
        }
    }
}

/// One subset (hub config) of a dataset and its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubsetSource {
    /// Subset name as reported (`main`, `ARC-Easy`).
    pub name: &'static str,
    /// Split evaluated (`test`).
    pub eval_split: &'static str,
    /// Parquet path of the evaluated split inside the repo.
    pub eval_path: &'static str,
    /// Split few-shot examples are drawn from (`train`).
    pub fewshot_split: &'static str,
    /// Parquet path of the few-shot split.
    pub fewshot_path: &'static str,
}

/// Where a benchmark's data lives on the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSource {
    /// `owner/name`.
    pub repo_id: &'static str,
    /// Pinned commit sha.
    pub revision: &'static str,
    /// Subsets evaluated by default.
    pub subsets: &'static [SubsetSource],
}

/// One evaluation item, built from a dataset row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Subset name.
    pub subset: String,
    /// Split name.
    pub split: String,
    /// Row index in the split (stable key for resume and comparison).
    pub index: usize,
    /// Dataset id, when the dataset has one.
    pub id: Option<String>,
    /// The question text.
    pub question: String,
    /// Answer options (multiple choice), in dataset order.
    pub choices: Vec<String>,
    /// The gold answer as compared (`18`, `B`).
    pub target: String,
    /// The full reference solution, when the dataset has one.
    pub reference: Option<String>,
    /// Worked reasoning (the reference without its final answer line).
    pub reasoning: Option<String>,
}

impl Sample {
    /// A sample from a benchmark's fields and the item's position.
    pub fn from_fields(f: SampleFields, subset: &str, split: &str, index: usize) -> Sample {
        Sample {
            subset: subset.into(),
            split: split.into(),
            index,
            id: f.id,
            question: f.question,
            choices: f.choices,
            target: f.target,
            reference: f.reference,
            reasoning: f.reasoning,
        }
    }
}

/// The fields a benchmark extracts from a row; positional fields are added
/// by the runner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleFields {
    /// See [`Sample::id`].
    pub id: Option<String>,
    /// See [`Sample::question`].
    pub question: String,
    /// See [`Sample::choices`].
    pub choices: Vec<String>,
    /// See [`Sample::target`].
    pub target: String,
    /// See [`Sample::reference`].
    pub reference: Option<String>,
    /// See [`Sample::reasoning`].
    pub reasoning: Option<String>,
}

/// The verdict of one named extractor on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// Extractor name.
    pub extractor: String,
    /// What it extracted (`None`: no answer found).
    pub extracted: Option<String>,
    /// Whether that matches the gold answer.
    pub correct: bool,
}

/// One accuracy benchmark. See the module docs for how to add one.
pub trait Benchmark: Send + Sync {
    /// Registry name (`gsm8k`).
    fn name(&self) -> &'static str;
    /// One line for `bench list`.
    fn summary(&self) -> &'static str;
    /// Hub repository, revision and subsets.
    fn source(&self) -> &'static DatasetSource;
    /// Supported modes; the first is the default.
    fn modes(&self) -> &'static [ModeInfo];
    /// Turn a dataset row into sample fields, or say what is wrong with it.
    fn to_fields(&self, row: &Row) -> Result<SampleFields, String>;
    /// The template context for a sample (and its few-shot examples).
    fn context(&self, mode: &ModeInfo, sample: &Sample, shots: &[Sample]) -> Value;
    /// Run extractor `name` of `mode` on `response`.
    fn extract(&self, mode: Mode, name: &str, sample: &Sample, response: &str) -> Option<String>;
    /// Whether `extracted` matches the gold answer under `mode`'s scorer.
    fn is_correct(&self, mode: Mode, sample: &Sample, extracted: &str) -> bool;
    /// The request for `sample`. The default renders the mode's template
    /// with [`Benchmark::context`] and sends it as one user message (chat)
    /// or as the prompt (completions); modes that send several turns
    /// override this.
    fn prompt(
        &self,
        mode: &ModeInfo,
        sample: &Sample,
        shots: &[Sample],
        prompts: &Prompts,
        api: ApiKind,
    ) -> Result<Prompt, PromptError> {
        templated_prompt(self, mode, sample, shots, prompts, api)
    }
    /// Exemplars for [`ShotPolicy::Fixed`] modes.
    fn fixed_shots(&self, _mode: Mode) -> Vec<SampleFields> {
        vec![]
    }
    /// Generation parameters this mode sends unless overridden.
    fn generation_defaults(&self, _mode: Mode) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("temperature".into(), Value::from(0.0));
        m
    }
}

impl dyn Benchmark + '_ {
    /// The mode's description, if this benchmark supports it.
    pub fn mode_info(&self, mode: Mode) -> Option<&'static ModeInfo> {
        self.modes().iter().find(|m| m.mode == mode)
    }

    /// The default mode.
    pub fn default_mode(&self) -> &'static ModeInfo {
        &self.modes()[0]
    }

    /// Every extractor of `mode` on `response`, in order (primary first).
    pub fn grade(&self, mode: &ModeInfo, sample: &Sample, response: &str) -> Vec<Grade> {
        mode.extractors
            .iter()
            .map(|name| {
                let extracted = self.extract(mode.mode, name, sample, response);
                let correct = extracted
                    .as_deref()
                    .is_some_and(|e| self.is_correct(mode.mode, sample, e));
                Grade {
                    extractor: name.to_string(),
                    extracted,
                    correct,
                }
            })
            .collect()
    }
}

/// The mode's template rendered with [`Benchmark::context`], as one turn:
/// the default [`Benchmark::prompt`], and what overriding benchmarks call for
/// their single-turn modes.
pub fn templated_prompt<B: Benchmark + ?Sized>(
    bench: &B,
    mode: &ModeInfo,
    sample: &Sample,
    shots: &[Sample],
    prompts: &Prompts,
    api: ApiKind,
) -> Result<Prompt, PromptError> {
    let text = prompts.render(mode.template, bench.context(mode, sample, shots))?;
    Ok(single_turn(text, api))
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

/// Look a benchmark up by name.
pub fn get(name: &str) -> Option<&'static dyn Benchmark> {
    ALL.iter().copied().find(|b| b.name() == name)
}

/// Registry names closest to `name` (for "did you mean").
pub fn suggest(name: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = ALL
        .iter()
        .map(|b| (edit_distance(&name.to_lowercase(), b.name()), b.name()))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3) || n.contains(&name.to_lowercase()))
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, n)| n).take(3).collect()
}

/// Levenshtein distance (names are short, so the simple DP is fine).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Read a string field from a row.
pub(crate) fn str_field(row: &Row, key: &str) -> Result<String, String> {
    match row.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("column `{key}` is not a string: {other}")),
        None => Err(format!("column `{key}` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_templates_exist() {
        let prompts = Prompts::load(None).unwrap();
        let mut names: Vec<_> = ALL.iter().map(|b| b.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "duplicate benchmark names");
        for b in ALL {
            assert!(!b.modes().is_empty(), "{} has no mode", b.name());
            for m in b.modes() {
                assert!(
                    prompts.has(m.template),
                    "{}: template {} missing",
                    b.name(),
                    m.template
                );
                assert!(
                    !m.extractors.is_empty(),
                    "{} {}: no extractor",
                    b.name(),
                    m.mode
                );
            }
            assert_eq!(
                b.source().revision.len(),
                40,
                "{}: revision must be a commit sha",
                b.name()
            );
        }
    }

    /// Issue 9 item 19: lm-eval ignores `--num_fewshot` for tasks whose YAML
    /// sets `num_fewshot: 0` (`gsm8k_cot_zeroshot`, `arc_challenge_chat`) and
    /// logs that it does; bench did send the shots.
    #[test]
    fn few_shot_is_ignored_for_tasks_pinned_to_zero_shot() {
        for (bench, task) in [
            ("gsm8k", "gsm8k_cot_zeroshot"),
            ("arc_challenge", "arc_challenge_chat"),
        ] {
            let b = get(bench).unwrap();
            let m = b
                .modes()
                .iter()
                .find(|m| m.pinned_zero_shot == Some(task))
                .unwrap();
            let (n, warning) = m.few_shot_for(Some(2));
            assert_eq!(n, 0, "{task}");
            let warning = warning.unwrap();
            assert!(
                warning.starts_with(&format!(
                    "num_fewshot has been set to 0 for {task} in its config. Manual configuration will be ignored."
                )),
                "{warning}"
            );
            assert_eq!(m.few_shot_for(None), (0, None));
            assert_eq!(m.few_shot_for(Some(0)), (0, None));
            // lm-eval's default sampler, should the task ever draw shots.
            assert_eq!(m.shots, ShotPolicy::LmEvalRandom { seed: 1234 });
        }
        // Other modes take the number asked.
        let gsm8k = get("gsm8k").unwrap();
        let lm = gsm8k.mode_info(Mode::LmEval).unwrap();
        assert_eq!(lm.few_shot_for(Some(2)), (2, None));
        assert_eq!(lm.few_shot_for(None), (5, None));
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(suggest("gsm8"), vec!["gsm8k"]);
        assert!(suggest("arc_chalenge").contains(&"arc_challenge"));
        assert!(suggest("zzzzzzzzzzzz").is_empty());
    }
}
