//! Benchmarks defined in TOML files (`--benchmark-file`): the two shipped
//! examples end to end, the TOML ARC-Easy against the built-in one, bad
//! files, and a file-defined run reported, re-graded and compared after the
//! file is gone.

use std::path::{Path, PathBuf};

use bench::benchmarks::{self, Benchmark, Sample, file};
use bench::config::plan_benchmarks_in;
use bench::eval::run_eval;
use bench::fake::openai::{FakeOpenAi, FakeOptions, Reply};
use tokio_util::sync::CancellationToken;

use crate::support::{self, bench_bin, config, fixtures_hub, start_hub, text};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benchmarks/examples")
}

/// Every fixture item of `b`'s eval splits.
fn samples(b: &Benchmark) -> Vec<Sample> {
    let mut out = Vec::new();
    for s in &b.dataset.subsets {
        let path = fixtures_hub()
            .join("datasets")
            .join(&b.dataset.repo_id)
            .join(&s.eval_path);
        let rows = bench::dataset::read_parquet(&path).expect("fixture parquet");
        for (i, r) in rows.iter().enumerate() {
            out.push(b.sample(r, &s.name, &s.eval_split, i).expect("fixture row"));
        }
    }
    out
}

/// A server answering every item right in `mode`'s format of `b`.
async fn oracle(b: &Benchmark, mode: &str) -> FakeOpenAi {
    let recipe = b.recipe(mode).unwrap().clone();
    let items = samples(b);
    FakeOpenAi::start(FakeOptions::responding(move |body| {
        let text = body.to_string();
        let found = items
            .iter()
            .filter_map(|s| {
                let q = serde_json::to_string(&s.question).unwrap();
                text.rfind(q.trim_matches('"')).map(|p| (p, s))
            })
            .max_by_key(|(p, s)| (*p, s.question.len()));
        match found {
            Some((_, s)) => Reply::text(recipe.format_answer(s)),
            None => Reply::text("I cannot find the question."),
        }
    }))
    .await
}

/// Both examples, every mode, end to end against the fake hub: 100%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_examples_score_100_percent_in_every_mode() {
    let registry = file::registry_with(&[examples()]).unwrap();
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut runs = 0;
    for name in ["sciq", "arc_easy_file"] {
        let b = registry.get(name).unwrap();
        assert!(b.file.is_some(), "{name} comes from a file");
        for mode in b.recipe_ids() {
            let server = oracle(&b, mode).await;
            let out_dir = tmp.path().join(format!("{name}-{mode}"));
            let mut cfg = config(
                &server.url(),
                &hub.url(),
                &tmp.path().join("cache"),
                &out_dir,
                &["gsm8k"],
            );
            cfg.limit = None;
            cfg.benchmarks = plan_benchmarks_in(
                &registry,
                &[name.to_string()],
                Some(&format!(r#"{{"{name}": {{"mode": "{mode}"}}}}"#)),
            )
            .unwrap();
            let out = run_eval(cfg, CancellationToken::new()).await.unwrap();
            let n = samples(&b).len() as u64;
            let rows: Vec<_> = out.report.results.iter().filter(|r| r.primary).collect();
            assert!(!rows.is_empty());
            for r in rows {
                assert_eq!(
                    (r.stats.n, r.stats.accuracy),
                    (n, 1.0),
                    "{name} {mode} {}",
                    r.subset
                );
            }
            // The record keeps the file (and its template) whole.
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
            let kept = &manifest["benchmark_files"][0];
            assert_eq!(kept["benchmark"], name);
            let content = std::fs::read_to_string(examples().join(format!(
                "{}.toml",
                if name == "sciq" { "sciq" } else { "arc_easy" }
            )))
            .unwrap();
            assert_eq!(kept["content"], content.as_str());
            assert_eq!(kept["sha256"], file::sha256(&content).as_str());
            if name == "sciq" {
                let t = std::fs::read_to_string(examples().join("sciq.jinja")).unwrap();
                assert_eq!(kept["template"]["content"], t.as_str());
                if mode == "native" {
                    let journal =
                        std::fs::read_to_string(out_dir.join("samples/sciq.jsonl")).unwrap();
                    assert!(journal.contains("Answer the following science question"));
                }
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 4, "sciq and arc_easy_file, native and evalscope each");
}

/// The TOML ARC-Easy gives the built-in `arc_easy`'s samples and grades.
#[test]
fn toml_arc_easy_matches_the_built_in() {
    let toml = file::load_file(&examples().join("arc_easy.toml")).unwrap();
    let builtin = benchmarks::get("arc_easy").unwrap();
    assert_eq!(toml.dataset.repo_id, builtin.dataset.repo_id);
    assert_eq!(toml.dataset.revision, builtin.dataset.revision);
    assert_eq!(toml.dataset.subsets, builtin.dataset.subsets);
    let (a, b) = (samples(&toml), samples(&builtin));
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "question, options, gold letter, id and metadata");
    // Digit labels and five options are among them.
    assert!(a.iter().any(|s| s.choices.len() == 5 && s.target == "E"));
    for mode in ["native", "evalscope"] {
        let (r1, r2) = (toml.recipe(mode).unwrap(), builtin.recipe(mode).unwrap());
        assert_eq!(r1.template, r2.template);
        for s in &a {
            let mut responses: Vec<String> = ["A", "B", "C", "D", "E", "3", "Z"]
                .iter()
                .flat_map(|l| {
                    [
                        format!("ANSWER: {l}"),
                        format!("so it is {l}."),
                        l.to_string(),
                    ]
                })
                .collect();
            responses.push(r2.format_answer(s));
            responses.push("ANSWER: [LETTER] ... I pick B".into());
            for resp in responses {
                assert_eq!(r1.grade(s, &resp), r2.grade(s, &resp), "{mode} {resp:?}");
            }
        }
    }
}

/// `bench list --benchmark-file` shows the files' benchmarks; a folder
/// gives every `*.toml` in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_file_benchmarks() {
    let dir = examples();
    let out = bench_bin::<&str>(&["list", "--benchmark-file", dir.to_str().unwrap()], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for want in [
        "sciq ",
        "arc_easy_file",
        "file: ",
        "data: allenai/sciq (default) resolved main",
        "gsm8k",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    let one = dir.join("sciq.toml");
    let out = bench_bin::<&str>(&["list", "--benchmark-file", one.to_str().unwrap()], &[]).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("sciq ") && !stdout.contains("arc_easy_file"));
}

/// A bad file: one line naming the file, the line and the key; exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_with_file_key_and_line() {
    let hub = start_hub().await;
    let server = support::start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(examples().join("arc_easy.toml")).unwrap();
    let line_of = |text: &str, needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    let regex_step = "[[preprocess]]\nfield = \"question\"\npattern = \"(unclosed\"\n\n[recipe]";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown key",
            good.replace("id = \"id\"", "id = \"id\"\nanswer_colum = \"x\""),
            "answer_colum",
            "unknown field `answer_colum`",
        ),
        (
            "wrong type",
            good.replace("question = \"question\"", "question = 3"),
            "question = 3",
            "columns.question: invalid type: integer `3`, expected a string",
        ),
        (
            "bad regex",
            good.replace("[recipe]", regex_step),
            "(unclosed",
            "preprocess[0].pattern: bad regex",
        ),
        (
            "unknown recipe",
            good.replace("multiple_choice", "multiple_choise"),
            "multiple_choise",
            "recipe.type: unknown variant `multiple_choise`",
        ),
        (
            "built-in name",
            good.replace("arc_easy_file", "arc_easy"),
            "name = \"arc_easy\"",
            "name: `arc_easy`: a built-in benchmark has this name",
        ),
        (
            "missing column",
            good.replace("question = \"question\"", "question = \"questoin\""),
            "questoin",
            "columns.question: no column `questoin` in the data (columns: ",
        ),
    ];
    for (what, content, needle, message) in cases {
        let path = tmp.path().join(format!("{}.toml", what.replace(' ', "_")));
        std::fs::write(&path, &content).unwrap();
        let out = bench_bin(
            &[
                "eval",
                "--model",
                "fake-model",
                "--api-url",
                &server.url(),
                "--benchmark-file",
                path.to_str().unwrap(),
                "--datasets",
                "arc_easy_file",
                "--limit",
                "2",
                "--no-progress",
                "--output",
                tmp.path().join(what).to_str().unwrap(),
            ],
            &[
                ("HF_ENDPOINT", hub.url()),
                (
                    "HF_HUB_CACHE",
                    tmp.path().join("cache").display().to_string(),
                ),
            ],
        )
        .await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{what}: {stderr}"));
        let at = format!("{}:{}: ", path.display(), line_of(&content, needle));
        assert!(line.contains(&at), "{what}: {at} in {line}");
        assert!(line.contains(message), "{what}: {message} in {line}");
        if what == "missing column" {
            // The real columns, struct fields included.
            for c in [
                "answerKey",
                "choices.label",
                "choices.text",
                "id",
                "question",
            ] {
                assert!(line.contains(c), "{c} in {line}");
            }
        }
    }
}

/// A run of a file-defined benchmark is reported, re-graded and compared
/// after the file is deleted; a resume with a changed file is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_defined_run_outlives_its_file() {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    // The example and its template, copied where the test may delete them.
    let dir = tmp.path().join("defs");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["sciq.toml", "sciq.jinja"] {
        std::fs::copy(examples().join(f), dir.join(f)).unwrap();
    }
    let toml = dir.join("sciq.toml");
    let registry = file::registry_with(std::slice::from_ref(&toml)).unwrap();
    let b = registry.get("sciq").unwrap();
    let server = oracle(&b, "native").await;
    let env = [
        ("HF_ENDPOINT", hub.url()),
        (
            "HF_HUB_CACHE",
            tmp.path().join("cache").display().to_string(),
        ),
    ];
    let run = |out: &'static str| {
        let (toml, url, out_dir) = (
            toml.display().to_string(),
            server.url(),
            tmp.path().join(out).display().to_string(),
        );
        let env = env.clone();
        async move {
            bench_bin(
                &[
                    "eval",
                    "--model",
                    "fake-model",
                    "--api-url",
                    &url,
                    "--benchmark-file",
                    &toml,
                    "--datasets",
                    "sciq",
                    "--no-progress",
                    "--output",
                    &out_dir,
                ],
                &env,
            )
            .await
        }
    };
    for out in ["a", "b"] {
        let o = run(out).await;
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    // A changed file cannot resume the run: the sha256 change is named.
    let changed = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("max_tokens = 1024", "max_tokens = 2048");
    std::fs::write(&toml, changed).unwrap();
    let o = run("a").await;
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("sciq.benchmark file") && stderr.contains("sha256"),
        "{stderr}"
    );

    // Without the file: report, rescore, compare.
    std::fs::remove_dir_all(&dir).unwrap();
    let a = tmp.path().join("a");
    let b_dir = tmp.path().join("b");
    let o = bench_bin::<&str>(&["report", a.to_str().unwrap()], &[]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("sciq"), "{}", text(&o.stdout));
    let o = bench_bin(
        &["rescore", a.to_str().unwrap(), "--mode", "evalscope"],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("rescore-evalscope/report.json")).unwrap())
            .unwrap();
    let rows = report["results"].as_array().unwrap();
    // The native answers end with `ANSWER: X`, which EvalScope reads too.
    assert!(
        rows.iter()
            .any(|r| r["mode"] == "evalscope" && r["primary"] == true && r["accuracy"] == 1.0),
        "{report}"
    );
    let o = bench_bin::<&str>(
        &["compare", a.to_str().unwrap(), b_dir.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("sciq"), "{}", text(&o.stdout));
}
