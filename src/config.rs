//! Validated configuration for `bench eval`, built once from the command
//! line (ripgrep's LowArgs -> HiArgs): every name resolved, every JSON flag
//! parsed, every error naming the flag or item at fault.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use std::sync::Arc;

use crate::benchmarks::{self, Benchmark, Recipe, Registry, SubsetSource};
use crate::client::ClientConfig;
use crate::hub::HubConfig;

/// Why `--limit`, `--datasets` or `--dataset-args` cannot be used. Each
/// message names the flag (and the benchmark, key or value) at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `--limit 0`.
    #[error("--limit must be at least 1")]
    LimitZero,
    /// `--limit` neither a count nor a fraction in (0, 1].
    #[error("--limit `{0}`: expected a count (5) or a fraction in (0, 1] (0.1)")]
    LimitSyntax(String),
    /// No benchmark named.
    #[error("--datasets: give at least one benchmark (see `bench list`)")]
    NoDatasets,
    /// `--dataset-args` is not JSON of the right shape.
    #[error("--dataset-args is not a JSON object of per-benchmark objects: {0}")]
    DatasetArgsJson(String),
    /// `--dataset-args` names a benchmark that is not run.
    #[error("--dataset-args names `{key}`, which is not in --datasets ({})", names.join(", "))]
    NotInDatasets {
        /// The key of `--dataset-args`.
        key: String,
        /// `--datasets`.
        names: Vec<String>,
    },
    /// No benchmark of that name.
    #[error(
        "--datasets: unknown benchmark `{name}`{}",
        if suggestions.is_empty() {
            " (see `bench list`)".to_string()
        } else {
            format!("; did you mean {}?", suggestions.join(" or "))
        }
    )]
    UnknownBenchmark {
        /// The name given.
        name: String,
        /// Registry names close to it.
        suggestions: Vec<String>,
    },
    /// A benchmark named twice.
    #[error("--datasets: `{0}` given twice")]
    GivenTwice(String),
    /// `--dataset-args NAME` is not an object.
    #[error("--dataset-args `{0}`: expected an object")]
    NotAnObject(String),
    /// `--dataset-args NAME.mode` is not a string.
    #[error("--dataset-args {0}.mode: expected a string")]
    ModeNotAString(String),
    /// `--dataset-args NAME.mode` names no recipe of the benchmark.
    #[error("--dataset-args {name}.mode: `{mode}` is not a mode of {name} (modes: {})", modes.join(", "))]
    UnknownMode {
        /// Benchmark.
        name: String,
        /// The mode given.
        mode: String,
        /// Its recipe ids.
        modes: Vec<String>,
    },
    /// A number out of its range ([`crate::range`] words the message).
    #[error("{0}")]
    OutOfRange(String),
    /// `--dataset-args NAME.subsets` is not a list.
    #[error("--dataset-args {name}.{key}: expected a list of subset names")]
    SubsetsNotAList {
        /// Benchmark.
        name: String,
        /// `subsets` or `subset_list`.
        key: String,
    },
    /// A subset the benchmark does not have.
    #[error("--dataset-args {name}.{key}: unknown subset `{subset}` (subsets: {})", known.join(", "))]
    UnknownSubset {
        /// Benchmark.
        name: String,
        /// `subsets` or `subset_list`.
        key: String,
        /// The subset given.
        subset: String,
        /// The benchmark's subsets.
        known: Vec<String>,
    },
    /// An empty subset list.
    #[error("--dataset-args {name}.{key}: empty list")]
    NoSubsets {
        /// Benchmark.
        name: String,
        /// `subsets` or `subset_list`.
        key: String,
    },
    /// A key `--dataset-args` does not know.
    #[error("--dataset-args {name}: unknown key `{key}` (known: mode, few_shot, subsets, repeats)")]
    UnknownKey {
        /// Benchmark.
        name: String,
        /// The key given.
        key: String,
    },
}

/// How many items to take per subset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// The first N rows.
    Count(usize),
    /// The first `floor(len * f)` rows (EvalScope's rule), 0 < f <= 1.
    Fraction(f64),
}

impl Limit {
    /// Parse `--limit`: an integer count, or a fraction like `0.1`.
    pub fn parse(s: &str) -> Result<Limit, ConfigError> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            return if n == 0 {
                Err(ConfigError::LimitZero)
            } else {
                Ok(Limit::Count(n))
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(Limit::Fraction(f)),
            _ => Err(ConfigError::LimitSyntax(s.to_string())),
        }
    }

    /// Items to take from a split of `len` rows.
    pub fn apply(self, len: usize) -> usize {
        match self {
            Limit::Count(n) => n.min(len),
            Limit::Fraction(f) => ((len as f64 * f).floor() as usize).min(len),
        }
    }
}

/// One benchmark as configured for this run.
#[derive(Clone)]
pub struct BenchmarkPlan {
    /// The benchmark.
    pub bench: Arc<Benchmark>,
    /// Chosen recipe (the mode).
    pub recipe: Arc<Recipe>,
    /// Few-shot examples per item.
    pub few_shot: usize,
    /// Subsets to evaluate.
    pub subsets: Vec<SubsetSource>,
    /// Samples per item (`--repeats`, `--dataset-args NAME.repeats`): each
    /// (item, repeat) pair is one request and one journal line. 1 unless
    /// asked.
    pub repeats: usize,
}

impl BenchmarkPlan {
    /// The metadata keys this plan's reports group by (the recipe's, else
    /// the dataset's).
    pub fn group_keys(&self) -> &[String] {
        self.recipe.group_keys(&self.bench.dataset)
    }

    /// A sample's value of each of [`BenchmarkPlan::group_keys`], for its
    /// journal line.
    pub fn group_values(&self, sample: &benchmarks::Sample) -> BTreeMap<String, String> {
        benchmarks::Dataset::values_of(self.group_keys(), sample)
    }
}

impl std::fmt::Debug for BenchmarkPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchmarkPlan")
            .field("bench", &self.bench.name)
            .field("mode", &self.recipe.id)
            .field("few_shot", &self.few_shot)
            .field("repeats", &self.repeats)
            .field(
                "subsets",
                &self.subsets.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Everything `bench eval` needs.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Model name sent in requests.
    pub model: String,
    /// Client settings (URL, key, API kind, timeouts, retries). With
    /// `in_process`, only the API kind (chat or completions) is used.
    pub client: ClientConfig,
    /// Run `model` in process (no `--api-url`): a hub id or a local path.
    pub in_process: bool,
    /// Benchmarks in order.
    pub benchmarks: Vec<BenchmarkPlan>,
    /// Items per subset.
    pub limit: Option<Limit>,
    /// The `--limit` text as given, for the record.
    pub limit_text: Option<String>,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Extra generation parameters (`--generation-config`), merged over each
    /// mode's defaults.
    pub generation: Map<String, Value>,
    /// Run directory.
    pub output: PathBuf,
    /// Template override directory.
    pub prompts_dir: Option<PathBuf>,
    /// Hub settings.
    pub hub: HubConfig,
    /// Show progress bars (only drawn on a terminal anyway).
    pub progress: bool,
    /// Print the results table to stdout at the end.
    pub print_table: bool,
    /// Command line for the record (already redacted).
    pub command: Vec<String>,
    /// `--tokenizer-path`: a tokenizer.json (or a directory with one) or a
    /// hub model id, for loglikelihood recipes over a server: context and
    /// continuation are then sent as token ids, as lm-eval sends them
    /// (without it: as text, the continuation found by `text_offset`).
    pub tokenizer: Option<String>,
}

/// Resolve `--datasets` names and `--dataset-args` into plans, against the
/// built-in registry.
pub fn plan_benchmarks(
    names: &[String],
    dataset_args: Option<&str>,
) -> Result<Vec<BenchmarkPlan>, ConfigError> {
    plan_benchmarks_in(benchmarks::registry(), names, dataset_args)
}

/// Resolve `--datasets` names and `--dataset-args` into plans, against
/// `registry`, each with one sample per item unless `--dataset-args` says
/// otherwise.
pub fn plan_benchmarks_in(
    registry: &Registry,
    names: &[String],
    dataset_args: Option<&str>,
) -> Result<Vec<BenchmarkPlan>, ConfigError> {
    plan_benchmarks_with(registry, names, dataset_args, 1)
}

/// As [`plan_benchmarks_in`], with `repeats` samples per item for every
/// benchmark whose `--dataset-args` sets no `repeats` of its own
/// (`--repeats`).
pub fn plan_benchmarks_with(
    registry: &Registry,
    names: &[String],
    dataset_args: Option<&str>,
    repeats: usize,
) -> Result<Vec<BenchmarkPlan>, ConfigError> {
    crate::range::limits::REPEATS
        .check(repeats as u64)
        .map_err(|e| ConfigError::OutOfRange(format!("--repeats: {e}")))?;
    if names.is_empty() {
        return Err(ConfigError::NoDatasets);
    }
    let args: BTreeMap<String, Value> = match dataset_args {
        None => BTreeMap::new(),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| ConfigError::DatasetArgsJson(e.to_string()))?
        }
    };
    for key in args.keys() {
        if !names.contains(key) {
            return Err(ConfigError::NotInDatasets {
                key: key.clone(),
                names: names.to_vec(),
            });
        }
    }
    let mut plans: Vec<BenchmarkPlan> = Vec::new();
    for name in names {
        let bench = registry
            .get(name)
            .ok_or_else(|| ConfigError::UnknownBenchmark {
                name: name.clone(),
                suggestions: registry.suggest(name),
            })?;
        if plans.iter().any(|p| p.bench.name == bench.name) {
            return Err(ConfigError::GivenTwice(name.clone()));
        }
        let mut recipe = bench.default_recipe().clone();
        let mut few_shot = None;
        let mut bench_repeats = repeats;
        let mut subsets: Vec<SubsetSource> = bench.dataset.subsets.clone();
        if let Some(v) = args.get(name) {
            let obj = v
                .as_object()
                .ok_or_else(|| ConfigError::NotAnObject(name.clone()))?;
            for (k, v) in obj {
                match k.as_str() {
                    "mode" => {
                        let m = v
                            .as_str()
                            .ok_or_else(|| ConfigError::ModeNotAString(name.clone()))?;
                        let parsed = bench.recipe(m).ok_or_else(|| ConfigError::UnknownMode {
                            name: name.clone(),
                            mode: m.to_string(),
                            modes: bench.recipe_ids().iter().map(|r| r.to_string()).collect(),
                        })?;
                        recipe = parsed.clone();
                    }
                    "few_shot" | "few_shot_num" => {
                        let n = crate::range::limits::FEW_SHOT
                            .json(&format!("--dataset-args {name}.{k}"), v)
                            .map_err(ConfigError::OutOfRange)?;
                        // FEW_SHOT.max fits any usize.
                        few_shot = Some(usize::try_from(n).unwrap_or(usize::MAX));
                    }
                    "repeats" | "n" => {
                        let n = crate::range::limits::REPEATS
                            .json(&format!("--dataset-args {name}.{k}"), v)
                            .map_err(ConfigError::OutOfRange)?;
                        // REPEATS.max fits any usize.
                        bench_repeats = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                    "subsets" | "subset_list" => {
                        let list = v.as_array().ok_or_else(|| ConfigError::SubsetsNotAList {
                            name: name.clone(),
                            key: k.clone(),
                        })?;
                        let mut chosen = Vec::new();
                        for s in list {
                            let s = s.as_str().unwrap_or_default();
                            let found = bench.dataset.subset(s).ok_or_else(|| {
                                ConfigError::UnknownSubset {
                                    name: name.clone(),
                                    key: k.clone(),
                                    subset: s.to_string(),
                                    known: bench
                                        .dataset
                                        .subsets
                                        .iter()
                                        .map(|x| x.name.clone())
                                        .collect(),
                                }
                            })?;
                            chosen.push(found.clone());
                        }
                        if chosen.is_empty() {
                            return Err(ConfigError::NoSubsets {
                                name: name.clone(),
                                key: k.clone(),
                            });
                        }
                        subsets = chosen;
                    }
                    other => {
                        return Err(ConfigError::UnknownKey {
                            name: name.clone(),
                            key: other.to_string(),
                        });
                    }
                }
            }
        }
        let (few_shot, ignored) = recipe.few_shot_for(few_shot);
        if let Some(warning) = ignored {
            eprintln!("warning: --dataset-args {name}.few_shot: {warning}");
        }
        plans.push(BenchmarkPlan {
            bench,
            recipe,
            few_shot,
            subsets,
            repeats: bench_repeats,
        });
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(Limit::parse("5").unwrap(), Limit::Count(5));
        assert_eq!(Limit::parse("0.5").unwrap().apply(7), 3);
        assert_eq!(Limit::parse("1.0").unwrap().apply(7), 7);
        assert_eq!(Limit::Count(10).apply(3), 3);
        assert!(Limit::parse("0").is_err());
        assert_eq!(
            Limit::parse("1.5").unwrap_err(),
            ConfigError::LimitSyntax("1.5".into())
        );
        assert!(
            Limit::parse("1.5")
                .unwrap_err()
                .to_string()
                .contains("--limit")
        );
        assert_eq!(Limit::parse("0").unwrap_err(), ConfigError::LimitZero);
        assert!(Limit::parse("abc").is_err());
    }

    #[test]
    fn dataset_args() {
        let names = vec!["gsm8k".to_string(), "arc".to_string()];
        let p = plan_benchmarks(&names, Some(r#"{"gsm8k": {"mode": "native", "few_shot": 2}, "arc": {"subset_list": ["ARC-Easy"]}}"#)).unwrap();
        assert_eq!(p[0].few_shot, 2);
        assert_eq!(p[1].subsets.len(), 1);
        let e = plan_benchmarks(&names, Some(r#"{"gsm8k": {"mode": "bogus"}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gsm8k.mode") && e.contains("native"), "{e}");
        for bad in ["-1", "1e300", "1.5", "101", "18446744073709551615", "\"3\""] {
            let args = format!(r#"{{"gsm8k": {{"few_shot": {bad}}}}}"#);
            let e = plan_benchmarks(&names, Some(&args))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("--dataset-args gsm8k.few_shot: must be a whole number"),
                "{e}"
            );
        }
        // Repeats: the run-wide default, overridden per benchmark (`n` too).
        let reg = benchmarks::registry();
        let p = plan_benchmarks_with(reg, &names, Some(r#"{"arc": {"repeats": 8}}"#), 3).unwrap();
        assert_eq!((p[0].repeats, p[1].repeats), (3, 8));
        let p = plan_benchmarks_with(reg, &names, Some(r#"{"gsm8k": {"n": 2}}"#), 1).unwrap();
        assert_eq!((p[0].repeats, p[1].repeats), (2, 1));
        assert_eq!(plan_benchmarks(&names, None).unwrap()[0].repeats, 1);
        let e = plan_benchmarks_with(reg, &names, None, 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--repeats: must be a whole number"), "{e}");
        for bad in ["0", "-1", "2.5", "10001", "\"4\""] {
            let args = format!(r#"{{"gsm8k": {{"repeats": {bad}}}}}"#);
            let e = plan_benchmarks(&names, Some(&args))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("--dataset-args gsm8k.repeats: must be a whole number"),
                "{e}"
            );
        }
        let e = plan_benchmarks(&names, Some(r#"{"gsm8k": {"shots": 2}}"#)).unwrap_err();
        assert!(matches!(&e, ConfigError::UnknownKey { key, .. } if key == "shots"));
        let e = e.to_string();
        assert!(e.contains("unknown key `shots`"), "{e}");
        let e = plan_benchmarks(&["gsm8kk".to_string()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean gsm8k"), "{e}");
        assert!(
            plan_benchmarks(&names, Some("{"))
                .unwrap_err()
                .to_string()
                .contains("--dataset-args")
        );
    }
}
