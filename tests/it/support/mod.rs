//! Shared helpers: fixture paths, a fake hub over `fixtures/hub`, a fake
//! OpenAI server that answers from the fixtures' gold answers, and configs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bench::benchmarks;
use bench::client::ClientConfig;
use bench::config::{EvalConfig, Limit, plan_benchmarks};
use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply, prompt_text};
use bench::hub::HubConfig;

/// `fixtures/hub` in this repository.
pub fn fixtures_hub() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hub")
}

/// Where a subset's eval file of `dataset` lies in a folder laid out like
/// the hub (`root/datasets/<repo>/<path>`, the convert branch's files under
/// the fake hub's convert folder).
pub fn local_file(
    root: &Path,
    dataset: &bench::benchmarks::Dataset,
    subset: &bench::benchmarks::SubsetSource,
) -> PathBuf {
    let repo = root.join("datasets").join(&dataset.repo_id);
    let repo = match subset.convert {
        Some(_) => repo.join(bench::fake::hub::CONVERT_FOLDER),
        None => repo,
    };
    repo.join(&subset.eval_path)
}

/// Commits the fake hub reports: the revisions our benchmarks pin.
pub fn pinned_commits() -> HashMap<String, String> {
    let mut m = HashMap::new();
    for b in benchmarks::registry().iter() {
        m.insert(b.dataset.repo_id.clone(), b.dataset.revision.clone());
    }
    m
}

/// A fake hub serving the fixtures at the pinned revisions.
pub async fn start_hub() -> FakeHub {
    FakeHub::start(FakeHubOptions::new(fixtures_hub())).await
}

/// question text -> gold answer, for every test fixture item of every benchmark.
pub fn gold_table() -> Vec<(String, String)> {
    gold_table_of(None)
}

/// question text -> gold answer for the fixture items of one benchmark (or
/// of all with `None`): benchmarks may share a question with different
/// golds (MMLU-Pro reuses MMLU questions with more options).
pub fn gold_table_of(benchmark: Option<&str>) -> Vec<(String, String)> {
    fixture_samples()
        .into_iter()
        .filter(|(b, _)| benchmark.is_none_or(|want| b == want))
        .map(|(_, s)| (s.question, s.target))
        .collect()
}

/// Every eval item of every registered benchmark's fixtures, with the name
/// of its benchmark.
pub fn fixture_samples() -> Vec<(String, bench::benchmarks::Sample)> {
    let mut out = Vec::new();
    for b in benchmarks::registry().iter() {
        for s in &b.dataset.subsets {
            let path = local_file(&fixtures_hub(), &b.dataset, s);
            let rows = bench::dataset::read_parquet(&path).expect("fixture parquet");
            for (i, r) in rows.iter().enumerate() {
                let sample = b.sample(r, &s.name, &s.eval_split, i).expect("fixture row");
                out.push((b.name.clone(), sample));
            }
        }
    }
    out
}

/// The gold answer for a request body: the longest known question that
/// appears in the prompt's last user message (few-shot examples come first).
pub fn gold_for(table: &[(String, String)], body: &serde_json::Value) -> Option<(String, String)> {
    let text = match body
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
    {
        Some(last) => last
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string(),
        None => prompt_text(body),
    };
    // The question of this item is the last one in the prompt.
    table
        .iter()
        .filter_map(|(q, a)| text.rfind(q.as_str()).map(|pos| (pos, q.len(), q, a)))
        .max_by_key(|(pos, len, _, _)| (*pos, *len))
        .map(|(_, _, q, a)| (q.clone(), a.clone()))
}

/// An answer in the format the native prompts ask for.
pub fn native_answer(gold: &str) -> String {
    if gold.len() == 1 && gold.chars().all(|c| c.is_ascii_uppercase()) {
        format!("Let me think about the options.\nANSWER: {gold}")
    } else {
        format!("Step by step... so the total is \\boxed{{{gold}}}.")
    }
}

/// A fake server answering every item correctly except those whose
/// question contains one of `wrong` (answered with a wrong value).
pub async fn start_oracle(wrong: Vec<String>) -> FakeOpenAi {
    start_oracle_with(gold_table(), wrong).await
}

/// [`start_oracle`] over the given gold table.
pub async fn start_oracle_with(table: Vec<(String, String)>, wrong: Vec<String>) -> FakeOpenAi {
    let table = Arc::new(table);
    FakeOpenAi::start(FakeOptions::responding(move |body| {
        match gold_for(&table, body) {
            Some((q, _)) if wrong.iter().any(|w| q.contains(w.as_str())) => {
                Reply::text("ANSWER: Z \\boxed{-99999}")
            }
            Some((_, gold)) => Reply::text(native_answer(&gold)).with_usage(50, 12),
            None => Reply::text("I cannot find the question."),
        }
    }))
    .await
}

/// An eval config against the given servers, with an isolated cache.
pub fn config(
    api_url: &str,
    hub_url: &str,
    cache: &Path,
    output: &Path,
    datasets: &[&str],
) -> EvalConfig {
    let names: Vec<String> = datasets.iter().map(|s| s.to_string()).collect();
    let mut client = ClientConfig::new(api_url);
    client.retry_base = std::time::Duration::from_millis(10);
    client.retry_max = std::time::Duration::from_millis(50);
    EvalConfig {
        model: "fake-model".into(),
        client,
        in_process: false,
        benchmarks: plan_benchmarks(&names, None).expect("plans"),
        limit: Some(Limit::Count(5)),
        limit_text: Some("5".into()),
        concurrency: 4,
        generation: Default::default(),
        output: output.to_path_buf(),
        prompts_dir: None,
        hub: HubConfig {
            endpoint: hub_url.into(),
            token: None,
            cache_dir: cache.to_path_buf(),
            offline: false,
        },
        progress: false,
        print_table: false,
        command: vec![],
        tokenizer: None,
    }
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// Copy the fixed run records `fixtures/runs/<name>` into `to/<name>`.
pub fn copy_runs(to: &Path, names: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
    for n in names {
        for f in all_files(&src.join(n)) {
            let dst = to.join(n).join(f.strip_prefix(src.join(n)).unwrap());
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(&f, dst).unwrap();
        }
    }
}

/// Report a test that cannot run here: with `require` set in the
/// environment (as `.ci/run` sets it) this fails the test; otherwise it
/// writes `SKIPPED <test>: <reason>` straight to the process's stderr, which
/// a plain `cargo test` shows (libtest captures `eprintln!` of passing
/// tests, not direct writes).
pub fn skip(test: &str, reason: &str, require: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os(require).is_none(),
        "{test}: {require} is set, so this test may not skip: {reason}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (set {require}=1 to make this a failure)"
    );
}

/// Run the `bench` binary with `args` and extra `envs`, without the
/// caller's API key, hub token or API URL, and wait (at most 120 s).
pub async fn bench_bin<V: AsRef<std::ffi::OsStr>>(
    args: &[&str],
    envs: &[(&str, V)],
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("HF_TOKEN")
        .env_remove("BENCH_API_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("bench finished in time")
        .expect("bench runs")
}

/// Bytes of an output stream as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a tiny random-weight llama GGUF with the realserver script
/// (`$BENCH_SHARED_DIR/realserver/make_tiny_gguf.py`, run by the python of
/// `$REALSERVER_VENV`, default `~/.cache/bench/realserver`, which has numpy
/// and gguf) at `dir/name`, with extra script `args` (`--f16`, `--ctx N`,
/// `--eos-logit X`, sizes). Without the venv or the script: a SKIPPED line
/// (a failure under `BENCH_REQUIRE_REALSERVER=1`, as in `.ci/run`) and `None`.
pub fn tiny_gguf(test: &str, dir: &Path, name: &str, args: &[&str]) -> Option<PathBuf> {
    const REQUIRE: &str = "BENCH_REQUIRE_REALSERVER";
    let venv = std::env::var_os("REALSERVER_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/bench/realserver"))
        });
    let python = venv.map(|v| v.join("bin/python")).filter(|p| p.is_file());
    let shared = std::env::var_os("BENCH_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"));
    let script = shared.join("realserver/make_tiny_gguf.py");
    let (Some(python), true) = (python, script.is_file()) else {
        skip(
            test,
            &format!(
                "no realserver python (REALSERVER_VENV; shared/realserver/setup.sh makes it) or no {}",
                script.display()
            ),
            REQUIRE,
        );
        return None;
    };
    let file = dir.join(name);
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&file)
        .args(args)
        .output()
        .expect("run make_tiny_gguf.py");
    assert!(
        out.status.success(),
        "make_tiny_gguf.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(file)
}

/// Whether a recipe scores choices by log-probability (lm-eval's
/// `multiple_choice`): it has no generated answer for an oracle to write,
/// so the generic oracle tests leave it to `tests/it/loglikelihood.rs`.
pub fn scores_loglikelihood(r: &bench::benchmarks::Recipe) -> bool {
    matches!(r.request, bench::benchmarks::RequestKind::Loglikelihood(_))
}
