//! The benchmark library on the real datasets (`../shared/datasets/hub`,
//! served by the fake hub as the real hub lays them out): an oracle server
//! that answers every item right, in the recipe's own format, scores 100%
//! on every benchmark and recipe; with a seeded tenth of the items answered
//! wrong it scores 90% overall and in every group, up to rounding.
//!
//! Skips loudly without the real data; `.ci/run` sets
//! `BENCH_REQUIRE_REAL_DATA=1`, which turns the skip into a failure.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use bench::benchmarks::{self, Benchmark, Recipe, Sample};
use bench::config::Limit;
use bench::eval::run_eval;
use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use tokio_util::sync::CancellationToken;

use crate::support::{self, config};

/// Repos no real data could be obtained for (gated on the hub).
const NO_REAL_DATA: &[&str] = &["Idavidrein/gpqa", "Rowan/hellaswag"];

/// `../shared/datasets/hub`, or `None` when it is not there.
fn shared_hub() -> Option<PathBuf> {
    let shared = std::env::var("BENCH_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let root = shared.join("datasets/hub");
    root.join("datasets/openai/gsm8k").is_dir().then_some(root)
}

/// Every eval item of `b` read from the real files under `root`.
fn real_samples(root: &Path, b: &Benchmark) -> Vec<Sample> {
    let mut out = Vec::new();
    for s in &b.dataset.subsets {
        let path = support::local_file(root, &b.dataset, s);
        let rows = bench::dataset::read_parquet(&path)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", b.name, path.display()));
        for (i, r) in rows.iter().enumerate() {
            out.push(
                b.sample(r, &s.name, &s.eval_split, i)
                    .unwrap_or_else(|e| panic!("{} {} row {i}: {e}", b.name, s.name)),
            );
        }
    }
    out
}

/// Finds the item a request asks about: among questions followed by all
/// their options, the one that ends latest in the request's text (few-shot
/// examples come first), the longest of those.
struct Finder {
    samples: Vec<Sample>,
    /// Pattern id -> the items asking that question (questions repeat
    /// across MMLU subjects with other options; each text is one pattern).
    by_question: Vec<Vec<usize>>,
    questions: AhoCorasick,
}

impl Finder {
    fn new(samples: Vec<Sample>) -> Self {
        let mut ids: std::collections::HashMap<&str, usize> = Default::default();
        let mut texts: Vec<&str> = Vec::new();
        let mut by_question: Vec<Vec<usize>> = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let id = *ids.entry(s.question.as_str()).or_insert_with(|| {
                texts.push(s.question.as_str());
                by_question.push(Vec::new());
                texts.len() - 1
            });
            by_question[id].push(i);
        }
        let questions = AhoCorasick::new(&texts).expect("an automaton over the questions");
        Finder {
            samples,
            by_question,
            questions,
        }
    }

    fn find(&self, body: &serde_json::Value) -> Option<usize> {
        let text = match body.get("messages").and_then(|m| m.as_array()) {
            Some(messages) => messages
                .iter()
                .filter_map(|m| m.get("content").and_then(|c| c.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            None => bench::fake::openai::prompt_text(body),
        };
        let shown = |i: usize, start: usize| {
            self.samples[i]
                .choices
                .iter()
                .all(|c| text[start..].contains(c.as_str()))
        };
        // The same options in another order (another subject's copy of
        // the item) are not the asked item's.
        let in_order = |i: usize, start: usize| {
            let mut at = start;
            self.samples[i]
                .choices
                .iter()
                .all(|c| match text[at..].find(c.as_str()) {
                    Some(p) => {
                        at += p + c.len();
                        true
                    }
                    None => false,
                })
        };
        // The asked question is followed by all its options (a question
        // found inside another, "...correct?" inside "...correct?\n" of
        // another subject, is not), and ends last (shots come before it);
        // among items sharing that text, the one whose options all follow
        // it (the longest such options), else the first.
        let mut best: Option<((bool, usize, usize), usize)> = None;
        for m in self.questions.find_overlapping_iter(&text) {
            let items = &self.by_question[m.pattern().as_usize()];
            // Short options ("1", "True") may all appear by chance: the
            // item whose shown options are longest wins.
            let pick = items
                .iter()
                .copied()
                .filter(|&i| shown(i, m.start()))
                .max_by_key(|&i| {
                    let c = &self.samples[i].choices;
                    let len: usize = c.iter().map(String::len).sum();
                    (in_order(i, m.start()), len)
                });
            let rank = (pick.is_some(), m.end(), m.len());
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, pick.unwrap_or(items[0])));
            }
        }
        best.map(|(_, i)| i)
    }
}

/// A wrong answer to `s` in `recipe`'s format: the right answer of another
/// item whose target the recipe judges wrong for `s`, else no answer.
fn wrong_answer(recipe: &Recipe, s: &Sample, all: &[Sample]) -> String {
    for other in all.iter().filter(|o| o.target != s.target).take(50) {
        let mut fake = s.clone();
        fake.target = other.target.clone();
        let answer = recipe.format_answer(&fake);
        if !recipe.grade(s, &answer)[0].correct {
            return answer;
        }
    }
    "I do not know.".into()
}

/// Items to answer wrong: about a tenth of every group at once. Items are
/// visited in a seeded order and taken while every group they belong to
/// (the benchmark, its subset, each metadata group) is below a tenth of its
/// size, rounded.
fn tenth_wrong(b: &Benchmark, samples: &[Sample]) -> Vec<bool> {
    let cells = |s: &Sample| -> Vec<String> {
        let mut c = vec!["all".to_string(), format!("subset={}", s.subset)];
        for (k, v) in b.dataset.group_values(s) {
            c.push(format!("{k}={v}"));
        }
        c
    };
    let mut size: HashMap<String, usize> = HashMap::new();
    for s in samples {
        for c in cells(s) {
            *size.entry(c).or_default() += 1;
        }
    }
    let target = |c: &str| (size[c] as f64 / 10.0).round() as usize;
    let mut order: Vec<usize> = (0..samples.len()).collect();
    // A fixed permutation (splitmix64 of the index), not the data order.
    order.sort_by_key(|&i| {
        let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    });
    // Items asked with the same question and options (MMLU repeats some
    // across subjects) look the same to any server: none is chosen wrong.
    let key = |s: &Sample| format!("{}\u{0}{}", s.question, s.choices.join("\u{0}"));
    let mut twins: HashMap<String, usize> = HashMap::new();
    for s in samples {
        *twins.entry(key(s)).or_default() += 1;
    }
    let mut wrong = vec![false; samples.len()];
    let mut taken: HashMap<String, usize> = HashMap::new();
    for i in order {
        if twins[&key(&samples[i])] > 1 {
            continue;
        }
        let cs = cells(&samples[i]);
        if cs
            .iter()
            .all(|c| taken.get(c).copied().unwrap_or(0) < target(c))
        {
            wrong[i] = true;
            for c in cs {
                *taken.entry(c).or_default() += 1;
            }
        }
    }
    wrong
}

async fn run(
    hub: &FakeHub,
    tmp: &Path,
    b: &Benchmark,
    recipe: &Arc<Recipe>,
    finder: Arc<Finder>,
    wrong: Arc<Vec<bool>>,
    answers: Arc<Vec<(String, String)>>,
) -> bench::eval::EvalOutput {
    let tag = if wrong_any(&answers) { "90" } else { "100" };
    let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
        match finder.find(body) {
            Some(i) if wrong[i] => Reply::text(answers[i].1.clone()),
            Some(i) => Reply::text(answers[i].0.clone()),
            None => Reply::text("I cannot find the question."),
        }
    }))
    .await;
    let out_dir = tmp.join(format!("{}-{}-{tag}", b.name, recipe.id));
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.join("cache"),
        &out_dir,
        &[&b.name],
    );
    cfg.benchmarks = bench::config::plan_benchmarks(
        std::slice::from_ref(&b.name),
        Some(&format!(r#"{{"{}": {{"mode": "{}"}}}}"#, b.name, recipe.id)),
    )
    .unwrap();
    cfg.limit = None::<Limit>;
    cfg.limit_text = None;
    cfg.concurrency = 64;
    run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", b.name, recipe.id))
}

/// The first journal line of a run not graded correct (for the message of
/// a failed check), cut to 3000 characters.
fn first_not_right(run: &Path) -> String {
    let Ok(dir) = std::fs::read_dir(run.join("samples")) else {
        return "(no journal)".into();
    };
    for f in dir.flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if v["correct"].as_bool() != Some(true) {
                return line.chars().take(3000).collect();
            }
        }
    }
    "(every line right)".into()
}

fn wrong_any(answers: &[(String, String)]) -> bool {
    answers.iter().any(|(_, w)| !w.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_scores_100_and_a_seeded_tenth_wrong_scores_90_on_real_data() {
    let test = "oracle_scores_100_and_a_seeded_tenth_wrong_scores_90_on_real_data";
    let Some(root) = shared_hub() else {
        support::skip(
            test,
            "no real datasets beside the repository",
            "BENCH_REQUIRE_REAL_DATA",
        );
        return;
    };
    let mut opts = FakeHubOptions::new(&root);
    // The pinned revisions resolve; a branch (`main`) gets the fake
    // hub's own commit for the repo.
    for b in benchmarks::registry().iter() {
        let rev = &b.dataset.revision;
        if rev.len() == 40 && rev.bytes().all(|c| c.is_ascii_hexdigit()) {
            opts.commits.insert(b.dataset.repo_id.clone(), rev.clone());
        }
    }
    let hub = FakeHub::start(opts).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = BTreeMap::new();
    for b in benchmarks::registry().iter() {
        if !root.join("datasets").join(&b.dataset.repo_id).is_dir() {
            assert!(
                NO_REAL_DATA.contains(&b.dataset.repo_id.as_str()),
                "{}: no real data for {}",
                b.name,
                b.dataset.repo_id
            );
            eprintln!(
                "{test}: {} has no real data here (gated, or not copied), fixtures only",
                b.name
            );
            continue;
        }
        if b.name == "ifeval" {
            // No response can be written to follow every instruction of
            // every prompt (languages, word and sentence counts that clash
            // with other instructions): tests/it/ifeval.rs checks the real
            // data its own way.
            eprintln!("{test}: ifeval is checked in tests/it/ifeval.rs");
            continue;
        }
        if crate::support::scores_loglikelihood(&b.recipes[0]) {
            eprintln!(
                "{test}: {} scores log-probabilities: tests/it/loglikelihood.rs",
                b.name
            );
            continue;
        }
        let samples = real_samples(&root, b);
        let n = samples.len() as u64;
        let finder = Arc::new(Finder::new(samples.clone()));
        for (k, recipe) in b.recipes.iter().enumerate() {
            if crate::support::scores_loglikelihood(recipe) {
                continue;
            }
            let right: Vec<String> = samples.iter().map(|s| recipe.format_answer(s)).collect();
            let answers: Vec<(String, String)> =
                right.iter().map(|r| (r.clone(), String::new())).collect();
            let none = Arc::new(vec![false; samples.len()]);
            let out = run(
                &hub,
                tmp.path(),
                b,
                recipe,
                finder.clone(),
                none,
                Arc::new(answers),
            )
            .await;
            for r in out.report.results.iter().filter(|r| r.primary) {
                assert_eq!(
                    (r.stats.correct, r.stats.accuracy),
                    (r.stats.n, 1.0),
                    "{} {} {}: the oracle is not 100%; first item not right: {}",
                    b.name,
                    recipe.id,
                    r.subset,
                    first_not_right(&tmp.path().join(format!("{}-{}-100", b.name, recipe.id)))
                );
            }
            let all: u64 = out
                .report
                .results
                .iter()
                .filter(|r| r.primary && r.subset != "all")
                .map(|r| r.stats.n)
                .sum();
            assert_eq!(all, n, "{} {}: every item", b.name, recipe.id);
            // A tenth wrong, with the default recipe.
            if k != 0 {
                continue;
            }
            let wrong = tenth_wrong(b, &samples);
            let answers: Vec<(String, String)> = samples
                .iter()
                .zip(&right)
                .zip(&wrong)
                .map(|((s, r), &w)| {
                    let bad = if w {
                        wrong_answer(recipe, s, &samples)
                    } else {
                        String::new()
                    };
                    (r.clone(), bad)
                })
                .collect();
            let n_wrong = wrong.iter().filter(|w| **w).count() as u64;
            assert_eq!(n_wrong, (n as f64 / 10.0).round() as u64, "{}", b.name);
            let out = run(
                &hub,
                tmp.path(),
                b,
                recipe,
                finder.clone(),
                Arc::new(wrong.clone()),
                Arc::new(answers),
            )
            .await;
            let overall: (u64, u64) = out
                .report
                .results
                .iter()
                .filter(|r| r.primary && r.subset != "all")
                .fold((0, 0), |(c, t), r| (c + r.stats.correct, t + r.stats.n));
            assert_eq!(overall, (n - n_wrong, n), "{}: 90% overall", b.name);
            // Every group: the wrong items the test chose, no other.
            for g in &out.report.groups {
                for row in &g.rows {
                    let members: Vec<usize> = (0..samples.len())
                        .filter(|&i| {
                            let s = &samples[i];
                            if g.key == "subset" {
                                s.subset == row.value
                            } else {
                                bench::benchmarks::Dataset::values_of(
                                    recipe.group_keys(&b.dataset),
                                    s,
                                )
                                .get(&g.key)
                                    == Some(&row.value)
                            }
                        })
                        .collect();
                    let w = members.iter().filter(|&&i| wrong[i]).count() as u64;
                    let size = members.len() as u64;
                    assert_eq!(
                        (row.stats.n, row.stats.correct),
                        (size, size - w),
                        "{} by {} = {}",
                        b.name,
                        g.key,
                        row.value
                    );
                    // Within one item of a tenth; two where twins (never
                    // chosen wrong) leave fewer items to pick from.
                    let tenth = size as f64 / 10.0;
                    assert!(
                        (w as f64 - tenth).abs() <= 2.0,
                        "{} by {} = {}: {w} wrong of {size}",
                        b.name,
                        g.key,
                        row.value
                    );
                }
            }
            checked.insert(b.name.clone(), (n, out.report.groups.len()));
        }
    }
    eprintln!("{test}: checked {checked:?}");
    assert!(checked.contains_key("gsm8k") && checked.contains_key("arc"));
}
