//! The multiple-choice library benchmarks (MMLU, MMLU-Pro, TruthfulQA MC1,
//! GPQA Diamond): their real files parse completely, MMLU-Pro runs
//! zero-shot (recorded) when its few-shot split is missing, and GPQA's gated
//! repo asks for HF_TOKEN and gets it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bench::benchmarks;
use bench::client::ApiKind;
use bench::config::Limit;
use bench::eval::run_eval;
use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use tokio_util::sync::CancellationToken;

use crate::support::config;

/// The shared real-data hub folder, or `None` after saying the test skips.
fn real_root(test: &str, repo: &str) -> Option<PathBuf> {
    let shared = std::env::var("BENCH_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let root = shared.join("datasets/hub");
    if root.join("datasets").join(repo).is_dir() {
        Some(root)
    } else {
        crate::support::skip(
            test,
            &format!(
                "no real {repo} at {} (set BENCH_SHARED_DIR)",
                root.display()
            ),
            "BENCH_REQUIRE_REAL_DATA",
        );
        None
    }
}

/// Every row of every subset of `name` in the real files, as samples;
/// a row that does not parse fails with its file and index.
fn real_samples(root: &Path, name: &str) -> Vec<benchmarks::Sample> {
    let b = benchmarks::get(name).unwrap();
    let mut out = Vec::new();
    for s in &b.dataset.subsets {
        let path = root
            .join("datasets")
            .join(&b.dataset.repo_id)
            .join(&s.eval_path);
        let rows = bench::dataset::read_parquet(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (i, r) in rows.iter().enumerate() {
            let sample = b
                .sample(r, &s.name, &s.eval_split, i)
                .unwrap_or_else(|e| panic!("{} row {i}: {e}", path.display()));
            out.push(sample);
        }
    }
    out
}

fn count_by(samples: &[benchmarks::Sample], key: &str) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for s in samples {
        let v = s.metadata[key].as_str().unwrap().to_string();
        *n.entry(v).or_insert(0) += 1;
    }
    n
}

#[test]
fn mmlu_real_test_split_parses_fully() {
    let Some(root) = real_root("mmlu_real_test_split_parses_fully", "cais/mmlu") else {
        return;
    };
    let samples = real_samples(&root, "mmlu");
    assert_eq!(samples.len(), 14042);
    // Each subject's file holds its own subject only.
    assert!(
        samples
            .iter()
            .all(|s| s.metadata["subject"] == s.subset.as_str())
    );
    assert_eq!(
        count_by(&samples, "category"),
        BTreeMap::from([
            ("STEM".to_string(), 3018),
            ("humanities".to_string(), 4705),
            ("other".to_string(), 3242),
            ("social sciences".to_string(), 3077),
        ])
    );
    // The five dev rows of every subject (the evalscope recipe's shots).
    let b = benchmarks::get("mmlu").unwrap();
    for s in &b.dataset.subsets {
        let path = root.join("datasets/cais/mmlu").join(&s.fewshot_path);
        let rows = bench::dataset::read_parquet(&path).unwrap();
        assert_eq!(rows.len(), 5, "{}", path.display());
        for (i, r) in rows.iter().enumerate() {
            b.sample(r, &s.name, "dev", i).unwrap();
        }
    }
}

#[test]
fn mmlu_pro_real_test_split_parses_fully() {
    let Some(root) = real_root(
        "mmlu_pro_real_test_split_parses_fully",
        "TIGER-Lab/MMLU-Pro",
    ) else {
        return;
    };
    let samples = real_samples(&root, "mmlu_pro");
    assert_eq!(samples.len(), 12032);
    let by = count_by(&samples, "category");
    // The hub card's table.
    for (c, n) in [
        ("math", 1351),
        ("physics", 1299),
        ("chemistry", 1132),
        ("law", 1101),
        ("engineering", 969),
        ("other", 924),
        ("economics", 844),
        ("health", 818),
        ("psychology", 798),
        ("business", 789),
        ("biology", 717),
        ("philosophy", 499),
        ("computer science", 410),
        ("history", 381),
    ] {
        assert_eq!(by.get(c), Some(&n), "{c}");
    }
    assert_eq!(by.len(), benchmarks::mmlu_pro::CATEGORIES.len());
    // question_id 3983: `answer` C wins over `answer_index` 1.
    let q = samples
        .iter()
        .find(|s| s.id.as_deref() == Some("3983"))
        .unwrap();
    assert_eq!(
        (q.target.as_str(), &q.metadata["answer_index"]),
        ("C", &serde_json::json!(1))
    );
}

#[test]
fn truthfulqa_real_validation_parses_fully() {
    let Some(root) = real_root(
        "truthfulqa_real_validation_parses_fully",
        "truthfulqa/truthful_qa",
    ) else {
        return;
    };
    let samples = real_samples(&root, "truthfulqa_mc1");
    assert_eq!(samples.len(), 817);
    // The true answer is first in the data; after the shuffle it is spread
    // over the letters (A is no longer the answer to everything).
    let mut at: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &samples {
        *at.entry(s.target.as_str()).or_insert(0) += 1;
        let perm = s.metadata["permutation"].as_array().unwrap();
        let gold = perm.iter().position(|v| v == 0).unwrap();
        assert_eq!(
            bench::extract::letters(gold + 1)[gold].to_string(),
            s.target
        );
    }
    assert!(at["A"] < 817 / 2, "{at:?}");
    assert!(at.len() >= 4, "{at:?}");
}

/// The validation split is absent (as in the fixtures and the shared
/// copy): the run goes zero-shot, says so on stderr and in run.json, and
/// still grades every item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmlu_pro_without_validation_runs_zero_shot_and_records_it() {
    let hub = FakeHub::start(FakeHubOptions::fixtures()).await;
    let tmp = tempfile::tempdir().unwrap();
    let samples: Vec<benchmarks::Sample> = crate::support::fixture_samples()
        .into_iter()
        .filter(|(n, _)| n == "mmlu_pro")
        .map(|(_, s)| s)
        .collect();
    for mode in ["tiger-lab", "evalscope"] {
        let recipe = benchmarks::get("mmlu_pro")
            .unwrap()
            .recipe(mode)
            .unwrap()
            .clone();
        let m = samples.clone();
        let r = recipe.clone();
        let server = FakeOpenAi::start(FakeOptions::responding(move |body| {
            let text = bench::fake::openai::prompt_text(body);
            match m
                .iter()
                .filter(|s| text.contains(&s.question))
                .max_by_key(|s| s.question.len())
            {
                Some(s) => Reply::text(r.format_answer(s)),
                None => Reply::text("?"),
            }
        }))
        .await;
        let out_dir = tmp.path().join(mode);
        let mut cfg = config(
            &server.url(),
            &hub.url(),
            &tmp.path().join("cache"),
            &out_dir,
            &["mmlu_pro"],
        );
        cfg.benchmarks = bench::config::plan_benchmarks(
            &["mmlu_pro".to_string()],
            Some(&format!(r#"{{"mmlu_pro": {{"mode": "{mode}"}}}}"#)),
        )
        .unwrap();
        cfg.client.api = ApiKind::Chat;
        cfg.limit = Some(Limit::Count(5));
        let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
        let all = out
            .report
            .results
            .iter()
            .find(|r| r.primary && r.subset == "default")
            .unwrap();
        assert_eq!((all.stats.n, all.stats.accuracy), (5, 1.0), "{mode}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
        let d = &manifest["datasets"][0];
        let note = d["notes"][0].as_str().unwrap();
        assert!(
            note.contains("few-shot split `validation` (data/validation-00000-of-00001.parquet) is not in TIGER-Lab/MMLU-Pro@")
                && note.ends_with("ran 0-shot instead of 5-shot"),
            "{note}"
        );
        // Only the test file was read.
        assert_eq!(d["files"].as_array().unwrap().len(), 1, "{d}");
    }
}

/// A benchmark without the optional flag still fails on a missing
/// few-shot file, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_few_shot_file_is_an_error_elsewhere() {
    let hub = FakeHub::start(FakeHubOptions::fixtures()).await;
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeOpenAi::start(FakeOptions::responding(|_| Reply::text("ANSWER: A"))).await;
    let mut b = (*benchmarks::get("mmlu_pro").unwrap()).clone();
    b.name = "mmlu_pro_strict".into();
    b.dataset.fewshot_optional = false;
    let mut reg = benchmarks::Registry::builtin();
    reg.add(b).unwrap();
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &tmp.path().join("out"),
        &["gsm8k"],
    );
    cfg.benchmarks = bench::config::plan_benchmarks_in(
        &reg,
        &["mmlu_pro_strict".to_string()],
        Some(r#"{"mmlu_pro_strict": {"mode": "tiger-lab"}}"#),
    )
    .unwrap();
    cfg.limit = Some(Limit::Count(1));
    let e = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("data/validation-00000-of-00001.parquet"), "{e}");
}

/// GPQA's repo is gated: the fake hub answers 401 for it (only) without its
/// token. Without HF_TOKEN the run fails with one line naming HF_TOKEN and
/// the repo; with it, the token goes out as `Authorization: Bearer` and the
/// run grades every fixture item, and the token is in no output and no
/// file (run directory, cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpqa_gated_repo_needs_hf_token_and_never_records_it() {
    const TOKEN: &str = "hf_GPQATOKEN9137";
    const REPO: &str = "Idavidrein/gpqa";
    let mut opts = FakeHubOptions::fixtures();
    opts.gated.insert(REPO.into(), TOKEN.into());
    let hub = FakeHub::start(opts).await;
    let server = crate::support::start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    // An empty HF_HOME: no token file of the machine's user is read.
    let home = tmp.path().join("hf_home");
    std::fs::create_dir_all(&home).unwrap();
    let cache = tmp.path().join("cache");
    let run = |out: &str, token: Option<&str>| {
        let out = tmp.path().join(out);
        let mut envs = vec![
            ("HF_ENDPOINT", hub.url()),
            ("HF_HOME", home.display().to_string()),
            ("HF_HUB_CACHE", cache.display().to_string()),
        ];
        if let Some(t) = token {
            envs.push(("HF_TOKEN", t.to_string()));
        }
        let url = server.url();
        async move {
            let args = [
                "eval",
                "--model",
                "fake-model",
                "--api-url",
                &url,
                "--datasets",
                "gpqa_diamond",
                "--no-progress",
                "--output",
                out.to_str().unwrap(),
            ];
            crate::support::bench_bin(&args, &envs).await
        }
    };

    let denied = run("denied", None).await;
    let stderr = crate::support::text(&denied.stderr);
    assert!(!denied.status.success(), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    for part in ["HF_TOKEN", REPO, "401"] {
        assert!(errors[0].contains(part), "{part} in {}", errors[0]);
    }
    assert!(
        hub.requests().iter().all(|r| r.authorization.is_none()),
        "no token to send"
    );
    hub.clear_requests();

    let granted = run("granted", Some(TOKEN)).await;
    let stdout = crate::support::text(&granted.stdout);
    let stderr = crate::support::text(&granted.stderr);
    assert!(granted.status.success(), "{stderr}");
    let reqs = hub.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert!(r.path.contains(REPO), "{}", r.path);
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{}",
            r.path
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("granted/report.json")).unwrap())
            .unwrap();
    let row = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["primary"] == true && r["subset"] == "gpqa_diamond")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        (row["n"].as_u64(), row["accuracy"].as_f64()),
        (Some(4), Some(1.0)),
        "{row}"
    );

    // The token is nowhere: not in the outputs, not in any file written.
    for (what, s) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!s.contains(TOKEN), "token in {what}: {s}");
    }
    let files = crate::support::all_files(tmp.path());
    assert!(files.iter().any(|f| f.ends_with("run.json")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "token in {}",
            f.display()
        );
    }
}
