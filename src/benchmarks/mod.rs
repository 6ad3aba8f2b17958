//! The benchmark registry: a benchmark is a [`Dataset`] plus [`Recipe`]s.
//!
//! A [`Dataset`] says where the rows come from (hub repo, pinned revision,
//! subsets with their eval and few-shot files) and how a row becomes a
//! [`Sample`] (question, choices, target, reference, id, metadata). A
//! [`Recipe`] says how a sample is asked and graded (template, shots,
//! assembly, generation defaults, request kind, extractors, scorer); its id
//! is the mode name. Both are plain values, so a [`Registry`] can be built
//! at run time. Everything else (fetching, requests, journal, statistics,
//! reports) is shared and lives elsewhere.
//!
//! The shared recipe constructors are in [`mcq`] (multiple choice),
//! [`math`] (numeric answers) and [`lm_eval`] (lm-eval `generate_until`
//! tasks); [`gsm8k`] and [`arc`] are a dataset and a list of recipes built
//! from them. To add a benchmark: define its [`Dataset`] (a row parser and
//! its files), pick recipes, add a [`Benchmark`] to [`Registry::builtin`];
//! add a template under `prompts/` only if none fits (and list it in
//! [`crate::prompt::EMBEDDED`]), and a few-row parquet fixture under
//! `fixtures/hub/`. The registry tests then check names, recipes,
//! templates and that every extractor reads its recipe's answer format.

pub mod aime;
pub mod arc;
pub mod file;
pub mod gpqa;
pub mod gsm8k;
pub mod hellaswag;
pub mod ifeval;
pub mod lm_eval;
pub mod loglikelihood;
pub mod math;
pub mod math500;
pub mod mcq;
pub mod mmlu;
pub mod mmlu_pro;
pub mod recipe;
pub mod truthfulqa;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::Row;
pub use recipe::{
    Assembly, DocField, Extractor, Recipe, RequestKind, Scorer, ShotPolicy, context, single_turn,
};

/// One subset (hub config) of a dataset and its files.
///
/// Build it with [`SubsetSource::parquet`] (files on the dataset's revision)
/// or [`SubsetSource::convert`] (the hub's parquet convert branch); other
/// fields default (`..Default::default()`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubsetSource {
    /// Subset name as reported (`main`, `ARC-Easy`).
    pub name: String,
    /// Split evaluated (`test`).
    pub eval_split: String,
    /// Parquet path of the evaluated split inside the repo.
    pub eval_path: String,
    /// Split few-shot examples are drawn from (`train`).
    pub fewshot_split: String,
    /// Parquet path of the few-shot split.
    pub fewshot_path: String,
    /// When set, the files come from the hub's parquet convert branch
    /// ([`crate::hub::CONVERT_BRANCH`]) instead of the dataset's revision.
    pub convert: Option<ConvertSplits>,
}

/// A subset read from the hub's parquet convert branch
/// (`{config}/{split}/{nnnn}.parquet`), for repos whose `main` has no
/// parquet (jsonl only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConvertSplits {
    /// The hub config the conversion names (`default`).
    pub config: String,
    /// List each split's files with the hub's parquet listing
    /// (`GET /api/datasets/{repo}/parquet`) instead of reading only
    /// `0000.parquet`: a split of more than one file then reads them all.
    pub discover: bool,
}

impl SubsetSource {
    /// A subset whose splits live at `<dir>/<split>-00000-of-00001.parquet`,
    /// the layout the hub's parquet conversion writes.
    pub fn parquet(name: &str, dir: &str, eval_split: &str, fewshot_split: &str) -> Self {
        let path = |split: &str| format!("{dir}/{split}-00000-of-00001.parquet");
        SubsetSource {
            name: name.into(),
            eval_split: eval_split.into(),
            eval_path: path(eval_split),
            fewshot_split: fewshot_split.into(),
            fewshot_path: path(fewshot_split),
            convert: None,
        }
    }

    /// A subset read from the hub's parquet convert branch: config
    /// `config`, splits at `{config}/{split}/0000.parquet` (one file per
    /// split; see [`SubsetSource::discovered`] for more).
    pub fn convert(name: &str, config: &str, eval_split: &str, fewshot_split: &str) -> Self {
        let path = |split: &str| format!("{config}/{split}/0000.parquet");
        SubsetSource {
            name: name.into(),
            eval_split: eval_split.into(),
            eval_path: path(eval_split),
            fewshot_split: fewshot_split.into(),
            fewshot_path: path(fewshot_split),
            convert: Some(ConvertSplits {
                config: config.into(),
                discover: false,
            }),
        }
    }

    /// The same convert-branch subset, its split files listed by the hub's
    /// parquet listing at run time (multi-file splits). No effect on a
    /// subset read from the dataset's revision.
    pub fn discovered(mut self) -> Self {
        if let Some(c) = self.convert.as_mut() {
            c.discover = true;
        }
        self
    }

    /// The revision the subset's files are read at: the convert branch, or
    /// the dataset's `revision`.
    pub fn revision<'a>(&'a self, dataset_revision: &'a str) -> &'a str {
        match self.convert {
            Some(_) => crate::hub::CONVERT_BRANCH,
            None => dataset_revision,
        }
    }
}

/// How a dataset row becomes sample fields (or what is wrong with it).
pub type RowParser = Arc<dyn Fn(&Row) -> Result<SampleFields, String> + Send + Sync>;

/// Where a benchmark's rows come from and how they become samples.
#[derive(Clone)]
pub struct Dataset {
    /// `owner/name` on the hub.
    pub repo_id: String,
    /// A commit sha (pinned), or a branch (`main`) resolved once per run
    /// and recorded; subsets read from the convert branch use that branch
    /// instead ([`SubsetSource::convert`]).
    pub revision: String,
    /// Subsets evaluated by default, in report order.
    pub subsets: Vec<SubsetSource>,
    /// Row -> sample fields.
    pub parse: RowParser,
    /// Metadata keys the reports group items by besides the subset
    /// (`category`, `level`), in report order: each sample's value of each
    /// key is kept in its journal line, so reports need no dataset.
    pub groups: Vec<String>,
    /// When the few-shot file is missing at the pinned revision, run
    /// zero-shot with a warning (recorded in `run.json`) instead of failing:
    /// for datasets whose few-shot split is often not available (MMLU-Pro's
    /// `validation` is absent from some mirrors).
    pub fewshot_optional: bool,
}

impl Dataset {
    /// A dataset from its source and row parser.
    pub fn new(
        repo_id: &str,
        revision: &str,
        subsets: Vec<SubsetSource>,
        parse: impl Fn(&Row) -> Result<SampleFields, String> + Send + Sync + 'static,
    ) -> Self {
        Dataset {
            repo_id: repo_id.into(),
            revision: revision.into(),
            subsets,
            parse: Arc::new(parse),
            groups: Vec::new(),
            fewshot_optional: false,
        }
    }

    /// The same dataset, run zero-shot (with a recorded warning) when its
    /// few-shot file is missing ([`Dataset::fewshot_optional`]).
    pub fn with_optional_fewshot(mut self) -> Self {
        self.fewshot_optional = true;
        self
    }

    /// The same dataset, reported also by these metadata keys.
    pub fn with_groups(mut self, keys: &[&str]) -> Self {
        self.groups = keys.iter().map(|k| k.to_string()).collect();
        self
    }

    /// A sample's value of each group key it has (strings as they are,
    /// other JSON values as JSON text), for its journal line.
    pub fn group_values(&self, sample: &Sample) -> BTreeMap<String, String> {
        Self::values_of(&self.groups, sample)
    }

    /// A sample's value of each of `keys` it has, as
    /// [`Dataset::group_values`] writes them.
    pub fn values_of(keys: &[String], sample: &Sample) -> BTreeMap<String, String> {
        keys.iter()
            .filter_map(|k| {
                let v = sample.metadata.get(k)?;
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((k.clone(), v))
            })
            .collect()
    }

    /// The same data restricted to the named subsets (in that order), or
    /// the first unknown name.
    pub fn only(&self, names: &[&str]) -> Result<Dataset, String> {
        let subsets = names
            .iter()
            .map(|n| {
                self.subset(n)
                    .cloned()
                    .ok_or_else(|| format!("unknown subset `{n}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset {
            subsets,
            ..self.clone()
        })
    }

    /// Every revision the subsets read, each once, in subset order (the
    /// dataset's own, the convert branch).
    pub fn revisions(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.subsets {
            let r = s.revision(&self.revision);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    /// `pinned <sha>` when every revision read is a commit sha, else
    /// `resolved <branch>, ...` (looked up once per run and recorded), as
    /// `bench list` shows it.
    pub fn pin_status(&self) -> String {
        let revs = self.revisions();
        let branches: Vec<&str> = revs
            .iter()
            .copied()
            .filter(|r| !crate::hub::is_commit_sha(r))
            .collect();
        if branches.is_empty() {
            let shas: Vec<&str> = revs.iter().map(|r| &r[..12.min(r.len())]).collect();
            format!("pinned {}", shas.join(", "))
        } else {
            format!(
                "resolved {} (its commit recorded in run.json)",
                branches.join(", ")
            )
        }
    }

    /// A subset by name.
    pub fn subset(&self, name: &str) -> Option<&SubsetSource> {
        self.subsets.iter().find(|s| s.name == name)
    }

    /// Sample fields of a row.
    pub fn fields(&self, row: &Row) -> Result<SampleFields, String> {
        (self.parse)(row)
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("repo_id", &self.repo_id)
            .field("revision", &self.revision)
            .field("subsets", &self.subsets)
            .field("groups", &self.groups)
            .field("fewshot_optional", &self.fewshot_optional)
            .finish_non_exhaustive()
    }
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
    /// Free-form fields for grouping and templates (`subject`, `level`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
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
            metadata: f.metadata,
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
    /// See [`Sample::metadata`].
    pub metadata: BTreeMap<String, Value>,
}

/// The verdict of one named extractor on one response (defined with the
/// record it fills, so `record` needs nothing from this module).
pub use crate::record::Grade;

/// One accuracy benchmark: a dataset and the recipes it can be run with.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// Registry name (`gsm8k`).
    pub name: String,
    /// One line for `bench list`.
    pub summary: String,
    /// Where the rows come from.
    pub dataset: Dataset,
    /// Supported recipes (modes); the first is the default.
    pub recipes: Vec<Arc<Recipe>>,
    /// The benchmark file it was read from (text, sha256, template), for
    /// benchmarks defined in TOML ([`mod@file`]); kept in the run record.
    pub file: Option<Arc<crate::record::BenchmarkFileRecord>>,
}

impl Benchmark {
    /// A benchmark from its parts.
    pub fn new(name: &str, summary: &str, dataset: Dataset, recipes: Vec<Recipe>) -> Self {
        Benchmark {
            name: name.into(),
            summary: summary.into(),
            dataset,
            recipes: recipes.into_iter().map(Arc::new).collect(),
            file: None,
        }
    }

    /// The recipe with this id (mode name), if the benchmark has it.
    pub fn recipe(&self, id: &str) -> Option<&Arc<Recipe>> {
        self.recipes.iter().find(|r| r.id == id)
    }

    /// The default recipe.
    ///
    /// # Panics
    /// On a benchmark with no recipe, which [`Registry::add`] refuses.
    pub fn default_recipe(&self) -> &Arc<Recipe> {
        &self.recipes[0]
    }

    /// Recipe ids, default first.
    pub fn recipe_ids(&self) -> Vec<&str> {
        self.recipes.iter().map(|r| r.id.as_str()).collect()
    }

    /// The sample of row `index` of `subset`'s split `split`.
    pub fn sample(
        &self,
        row: &Row,
        subset: &str,
        split: &str,
        index: usize,
    ) -> Result<Sample, String> {
        let f = self.dataset.fields(row)?;
        Ok(Sample::from_fields(f, subset, split, index))
    }
}

/// The benchmarks a run can name, built at run time.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    benchmarks: Vec<Arc<Benchmark>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The benchmarks shipped with bench, in `bench list` order.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        for b in [
            gsm8k::gsm8k(),
            arc::arc(),
            arc::arc_easy(),
            arc::arc_challenge(),
            aime::aime24(),
            aime::aime25(),
            math500::math_500(),
            mmlu::mmlu(),
            mmlu_pro::mmlu_pro(),
            truthfulqa::truthfulqa_mc1(),
            gpqa::gpqa_diamond(),
            truthfulqa::truthfulqa_mc2(),
            hellaswag::hellaswag(),
            ifeval::ifeval(),
        ] {
            // The built-in definitions are checked by the registry tests.
            r.add(b).expect("built-in benchmarks are valid");
        }
        r
    }

    /// Add a benchmark; refused when its name is taken, it has no recipe,
    /// two recipes share an id, or a recipe has no extractor.
    pub fn add(&mut self, b: Benchmark) -> Result<(), String> {
        if self.get(&b.name).is_some() {
            return Err(format!("benchmark `{}` is defined twice", b.name));
        }
        if b.recipes.is_empty() {
            return Err(format!("benchmark `{}` has no recipe", b.name));
        }
        for (i, r) in b.recipes.iter().enumerate() {
            if b.recipes[..i].iter().any(|o| o.id == r.id) {
                return Err(format!("benchmark `{}`: recipe `{}` twice", b.name, r.id));
            }
            if r.extractors.is_empty() {
                return Err(format!(
                    "benchmark `{}`: recipe `{}` has no extractor",
                    b.name, r.id
                ));
            }
        }
        self.benchmarks.push(Arc::new(b));
        Ok(())
    }

    /// Every benchmark, in `bench list` order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Benchmark>> {
        self.benchmarks.iter()
    }

    /// Look a benchmark up by name.
    pub fn get(&self, name: &str) -> Option<Arc<Benchmark>> {
        self.benchmarks.iter().find(|b| b.name == name).cloned()
    }

    /// Every recipe id of any benchmark, each once, in registry order.
    pub fn recipe_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in self.benchmarks.iter().flat_map(|b| b.recipe_ids()) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
        out
    }

    /// Registry names closest to `name` (for "did you mean").
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let name = name.to_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .benchmarks
            .iter()
            .map(|b| (edit_distance(&name, &b.name), b.name.as_str()))
            .filter(|(d, n)| *d <= 3.max(n.len() / 3) || n.contains(&name))
            .collect();
        scored.sort();
        scored
            .into_iter()
            .map(|(_, n)| n.to_string())
            .take(3)
            .collect()
    }
}

/// The built-in registry, built on first use.
pub fn registry() -> &'static Registry {
    static BUILTIN: LazyLock<Registry> = LazyLock::new(Registry::builtin);
    &BUILTIN
}

/// Look a built-in benchmark up by name.
pub fn get(name: &str) -> Option<Arc<Benchmark>> {
    registry().get(name)
}

/// Built-in names closest to `name` (for "did you mean").
pub fn suggest(name: &str) -> Vec<String> {
    registry().suggest(name)
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

/// Read a string field from a row (a row parser's most common step).
pub fn str_field(row: &Row, key: &str) -> Result<String, String> {
    match row.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("column `{key}` is not a string: {other}")),
        None => Err(format!("column `{key}` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Prompts;

    #[test]
    fn names_unique_and_templates_exist() {
        let prompts = Prompts::load(None).unwrap();
        let reg = registry();
        let mut names: Vec<_> = reg.iter().map(|b| b.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), reg.iter().count(), "duplicate benchmark names");
        for b in reg.iter() {
            assert!(!b.recipes.is_empty(), "{} has no recipe", b.name);
            for r in &b.recipes {
                assert!(
                    prompts.has(&r.template),
                    "{}: template {} missing",
                    b.name,
                    r.template
                );
                assert!(
                    !r.extractors.is_empty(),
                    "{} {}: no extractor",
                    b.name,
                    r.id
                );
                assert!(!r.summary.is_empty(), "{} {}: no summary", b.name, r.id);
            }
            // A commit sha, or a branch resolved at run time: `main` or
            // the convert branch (nothing else is meant to float).
            for r in b.dataset.revisions() {
                assert!(
                    crate::hub::is_commit_sha(r) || r == "main" || r == crate::hub::CONVERT_BRANCH,
                    "{}: revision {r} must be a commit sha, main or the convert branch",
                    b.name
                );
            }
        }
    }

    #[test]
    fn registry_refuses_bad_entries() {
        let mut reg = Registry::builtin();
        let gsm8k = get("gsm8k").unwrap();
        let e = reg.add((*gsm8k).clone()).unwrap_err();
        assert!(e.contains("`gsm8k` is defined twice"), "{e}");
        let mut b = (*gsm8k).clone();
        b.name = "gsm8k_twice".into();
        b.recipes.push(b.recipes[0].clone());
        assert!(reg.add(b).unwrap_err().contains("recipe `native` twice"));
        let mut b = (*gsm8k).clone();
        b.name = "gsm8k_none".into();
        b.recipes.clear();
        assert!(reg.add(b).unwrap_err().contains("no recipe"));
        let mut b = (*gsm8k).clone();
        b.name = "gsm8k_blind".into();
        let mut r = (*b.recipes[0]).clone();
        r.extractors.clear();
        b.recipes = vec![Arc::new(r)];
        assert!(reg.add(b).unwrap_err().contains("no extractor"));
        // A new name is taken, and found.
        let mut b = (*gsm8k).clone();
        b.name = "gsm8k_copy".into();
        reg.add(b).unwrap();
        assert!(reg.get("gsm8k_copy").is_some());
        assert!(registry().get("gsm8k_copy").is_none());
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
                .recipes
                .iter()
                .find(|m| m.pinned_zero_shot.as_deref() == Some(task))
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
        // Other recipes take the number asked.
        let gsm8k = get("gsm8k").unwrap();
        let lm = gsm8k.recipe("lm-eval").unwrap();
        assert_eq!(lm.few_shot_for(Some(2)), (2, None));
        assert_eq!(lm.few_shot_for(None), (5, None));
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(suggest("gsm8"), vec!["gsm8k"]);
        assert!(suggest("arc_chalenge").contains(&"arc_challenge".to_string()));
        assert!(suggest("zzzzzzzzzzzz").is_empty());
    }

    /// Every extractor of every recipe reads the answer written in that
    /// recipe's own format ([`Recipe::format_answer`]), and the scorer takes
    /// it, on the fixture rows of every subset: a recipe whose extractor
    /// cannot read its own format (a wrong regex, a misnamed or missing
    /// extractor) fails here, not as a silent `no_answer` in a run.
    #[test]
    fn every_extractor_reads_its_recipe_answer_format() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hub/datasets");
        let mut checked = 0;
        for b in registry().iter() {
            for subset in &b.dataset.subsets {
                // The fake hub serves the convert branch from this folder.
                let root = fixtures.join(&b.dataset.repo_id);
                let root = match subset.convert {
                    Some(_) => root.join("_refs_convert_parquet"),
                    None => root,
                };
                let path = root.join(&subset.eval_path);
                let rows = crate::dataset::read_parquet(&path).unwrap();
                assert!(!rows.is_empty(), "{}", path.display());
                for (i, row) in rows.iter().enumerate().take(3) {
                    let s = b.sample(row, &subset.name, &subset.eval_split, i).unwrap();
                    for r in &b.recipes {
                        // A loglikelihood recipe grades scores, not text:
                        // the gold choice scoring highest is right under
                        // every metric, the others scoring higher is not.
                        if let Some(spec) = r.request.loglikelihood() {
                            let gold = spec.gold(&s).expect("a gold choice");
                            let conts = loglikelihood::continuations(spec, &s, " ");
                            let ll = |best: usize| crate::record::LoglikelihoodRecord {
                                context: String::new(),
                                boundary: crate::record::Boundary::TextOffset,
                                requests: 1,
                                choices: conts
                                    .iter()
                                    .enumerate()
                                    .map(|(i, c)| crate::record::ChoiceRecord {
                                        continuation: c.clone(),
                                        logprob: if i == best { -0.01 } else { -50.0 },
                                        tokens: 1,
                                        bytes: c.len(),
                                        chars: c.chars().count(),
                                        is_greedy: i == best,
                                    })
                                    .collect(),
                            };
                            let (grades, _) = spec.grade(&s, &ll(gold));
                            for g in &grades {
                                assert!(
                                    g.correct,
                                    "{} {} {}: gold not right",
                                    b.name, r.id, g.extractor
                                );
                                checked += 1;
                            }
                            let other = if gold + 1 == conts.len() {
                                0
                            } else {
                                conts.len() - 1
                            };
                            let (grades, _) = spec.grade(&s, &ll(other));
                            assert!(!grades[0].correct, "{} {}", b.name, r.id);
                            continue;
                        }
                        let response = r.format_answer(&s);
                        let grades = r.grade(&s, &response);
                        assert_eq!(grades.len(), r.extractors.len());
                        for g in grades {
                            let what = format!("{} {} {}: {response:?}", b.name, r.id, g.extractor);
                            assert!(g.extracted.is_some(), "{what}: no answer");
                            assert!(g.correct, "{what}: {:?} judged wrong", g.extracted);
                            checked += 1;
                        }
                        // And a response with no answer in it is no answer
                        // for the recipe's primary extractor (or wrong). No
                        // capital letter in it: EvalScope's fallback reads
                        // "I do not know." as answer I, right on MMLU-Pro
                        // items whose gold is I.
                        let none = r.grade(&s, "no idea, sorry.");
                        assert!(!none[0].correct, "{} {}", b.name, r.id);
                    }
                }
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn recipe_ids_in_registry_order() {
        assert_eq!(
            registry().recipe_ids(),
            [
                "native",
                "evalscope",
                "evalscope-1.12",
                "lm-eval",
                "lm-eval-cot",
                "lm-eval-cot-zeroshot",
                "lm-eval-ll",
                "lm-eval-ll-norm",
                "tiger-lab"
            ]
        );
    }
}
