//! Regression tests for what a hostile probe found (issue 9): data loss,
//! wrong results, stale state and first-run messages. Each test is named
//! after the bug it pins down.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use bench::config::Limit;
use bench::eval::{EvalError, run_eval};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Fault, Reply};
use bench::record::RunDir;
use tokio_util::sync::CancellationToken;

use crate::support::{config, copy_runs, start_hub, start_oracle, text};

async fn bench(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    crate::support::bench_bin(args, envs).await
}

/// `o` exited with `code` and its stderr says `needle`.
fn assert_exit(o: &Output, code: i32, needle: &str) {
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{e}");
    assert!(e.contains(needle), "`{needle}` not in: {e}");
}

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = crate::support::all_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// Rewrite a JSON file of a run (`run.json`, `summary.json`) in place.
fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut m);
    std::fs::write(path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// Rewrite every record of a journal in place.
fn edit_journal(path: &Path, f: impl Fn(&mut serde_json::Value)) {
    let lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            f(&mut v);
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// One finished gsm8k run of 5 items in `dir`, answered by an oracle.
async fn one_run(hub: &str, server: &str, cache: &Path, dir: &Path) {
    let cfg = config(server, hub, cache, dir, &["gsm8k"]);
    run_eval(cfg, CancellationToken::new()).await.unwrap();
}

// ---- 1. a command never overwrites a run it did not create ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_output_onto_its_source_or_another_run_is_refused() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (run, other) = (tmp.path().join("run"), tmp.path().join("other"));
    one_run(&hub.url(), &server.url(), &cache, &run).await;
    one_run(&hub.url(), &server.url(), &cache, &other).await;
    let (before_run, before_other) = (snapshot(&run), snapshot(&other));
    let hubcfg = bench::hub::HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.clone(),
        offline: true,
    };
    let rescore = |output: Option<std::path::PathBuf>| {
        bench::rescore::rescore(bench::rescore::RescoreConfig {
            source: run.clone(),
            mode: "lm-eval".into(),
            output,
            hub: hubcfg.clone(),
        })
    };
    for target in [&run, &other] {
        let err = rescore(Some(target.clone())).await.unwrap_err().to_string();
        assert!(
            err.contains("--output") && err.contains("an eval run"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&run), before_run, "the source run was rewritten");
    assert_eq!(snapshot(&other), before_other, "another run was rewritten");
    // Its own earlier output may be redone; another mode's may not.
    let (dir, _) = rescore(None).await.unwrap();
    rescore(Some(dir.clone())).await.unwrap();
    let err = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "evalscope".into(),
        output: Some(dir),
        hub: hubcfg.clone(),
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("a rescored run"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_and_eval_never_write_into_an_existing_run_of_any_kind() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["perf-a", "eval-a"]);
    let prompts = tmp.path().join("prompts.txt");
    std::fs::write(&prompts, "hello\n").unwrap();
    let perf = |out: &Path| {
        let out = out.to_str().unwrap().to_string();
        let prompts = prompts.to_str().unwrap().to_string();
        async move {
            bench(
                &[
                    "perf",
                    "--url",
                    "http://127.0.0.1:9/v1",
                    "--model",
                    "m",
                    "--parallel",
                    "1",
                    "--number",
                    "1",
                    "--dataset",
                    "line_by_line",
                    "--dataset-path",
                    &prompts,
                    "--output",
                    &out,
                ],
                &[],
            )
            .await
        }
    };
    for (dir, holds) in [("perf-a", "a perf run"), ("eval-a", "an eval run")] {
        let d = tmp.path().join(dir);
        let before = snapshot(&d);
        let o = perf(&d).await;
        assert_exit(&o, 2, holds);
        assert_eq!(snapshot(&d), before, "{dir} was written by bench perf");
    }
    // Eval into a perf run, and into a folder of the user's own.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("report.md"), "my notes").unwrap();
    for (d, holds) in [
        (tmp.path().join("perf-a"), "a perf run"),
        (mine.clone(), "report.md"),
    ] {
        let before = snapshot(&d);
        let o = bench(
            &[
                "eval",
                "--model",
                "m",
                "--api-url",
                "http://127.0.0.1:9/v1",
                "--datasets",
                "gsm8k",
                "--output",
                d.to_str().unwrap(),
            ],
            &[],
        )
        .await;
        assert_exit(&o, 2, holds);
        assert_eq!(snapshot(&d), before);
    }
}

// ---- 2. one process per run directory ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evals_into_one_output_ask_each_item_once() {
    let hub = start_hub().await;
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("\\boxed{1}").with_delay(Duration::from_millis(20))
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let a = run_eval(
        config(&server.url(), &hub.url(), &cache, &out, &["gsm8k"]),
        CancellationToken::new(),
    );
    let b = run_eval(
        config(&server.url(), &hub.url(), &cache, &out, &["gsm8k"]),
        CancellationToken::new(),
    );
    let (ra, rb) = tokio::join!(a, b);
    let errs: Vec<String> = [ra.err(), rb.err()]
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errs.len(), 1, "exactly one of the two may run: {errs:?}");
    assert!(
        errs[0].contains("in use by another bench process")
            && errs[0].contains(&format!("pid {}", std::process::id())),
        "{}",
        errs[0]
    );
    let lines = std::fs::read_to_string(out.join("samples/gsm8k.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 5, "each item asked once");
    assert!(
        !out.join(bench::rundir::LOCK_FILE).exists(),
        "lock released"
    );
}

// ---- 3. journals: torn tails and bad lines --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_journal_tail_does_not_swallow_the_next_record() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let mut cfg = config(&server.url(), &hub.url(), &cache, &out, &["gsm8k"]);
    cfg.limit = Some(Limit::Count(3));
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    // A crash in the middle of writing a fourth record.
    let journal = out.join("samples/gsm8k.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"benchmark":"gsm8k","subset":"main","spl"#).unwrap();
    drop(f);
    let data = bench::report::load(&RunDir::new(&out)).unwrap().data;
    assert!(
        data.warnings
            .iter()
            .any(|w| w.contains("line 4: torn last line")),
        "{:?}",
        data.warnings
    );
    let cfg = config(&server.url(), &hub.url(), &cache, &out, &["gsm8k"]);
    let res = run_eval(cfg, CancellationToken::new()).await.unwrap();
    assert_eq!(res.requested, 2);
    let j = RunDir::new(&out).read_journal_checked("gsm8k").unwrap();
    assert!(j.skipped.is_empty(), "{:?}", j.skipped);
    assert_eq!(j.records.len(), 5, "no record was lost");
    assert!(res.report.warnings.is_empty(), "{:?}", res.report.warnings);
    let torn = std::fs::read_to_string(out.join("samples/gsm8k.jsonl.torn")).unwrap();
    assert!(torn.contains(r#""spl"#), "the torn bytes are kept: {torn}");
}

#[test]
fn bad_journal_line_is_reported_with_its_number_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a"]);
    let run = tmp.path().join("eval-a");
    let journal = run.join("samples/gsm8k.jsonl");
    let text = std::fs::read(&journal).unwrap();
    let n = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    // A line of bytes that are not UTF-8 between the first and second lines,
    // and a line that is JSON but not a record after them.
    let first_nl = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut bad = text[..first_nl].to_vec();
    bad.extend_from_slice(b"\xff\xfe not utf-8 \xc3\n");
    bad.extend_from_slice(&text[first_nl..]);
    bad.extend_from_slice(b"{\"benchmark\": 3}\n");
    std::fs::write(&journal, bad).unwrap();
    let data = bench::report::load(&RunDir::new(&run)).unwrap().data;
    let w = data.warnings.join("\n");
    assert!(
        w.contains("samples/gsm8k.jsonl: 2 line(s) could not be read")
            && w.contains("line 2: not UTF-8")
            && w.contains(&format!("line {}:", n + 2)),
        "{w}"
    );
    let recs = RunDir::new(&run).read_journal("gsm8k").unwrap();
    assert_eq!(recs.len(), n, "every good line is read");
    // The reports say so too.
    bench::report::rerender(&run).unwrap();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("could not be read"), "{md}");
}

// ---- 4. the CI gate and failed items ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_gate_fails_when_every_candidate_request_failed() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b"]);
    let b = tmp.path().join("eval-b");
    for f in ["gsm8k", "arc_easy"] {
        edit_journal(&b.join(format!("samples/{f}.jsonl")), |v| {
            v["verdicts"] = serde_json::json!({});
            v["extracted"] = serde_json::json!({});
            v["correct"] = serde_json::Value::Null;
            v["response"] = serde_json::Value::Null;
            v["outcome"] = "failed".into();
            v["error"] = serde_json::json!({"kind": "connect", "status": null, "message": "connection refused", "attempts": 6});
        });
    }
    let cs = bench::compare::compare_all(&[tmp.path().join("eval-a"), b.clone()]).unwrap();
    assert!(!cs[0].rows.is_empty(), "failed items are compared as wrong");
    assert!(cs[0].rows.iter().all(|r| r.acc_b == 0.0));
    assert!(
        cs[0].notes.iter().any(|n| n.contains("failed in")),
        "{:?}",
        cs[0].notes
    );
    let o = bench(
        &[
            "compare",
            tmp.path().join("eval-a").to_str().unwrap(),
            b.to_str().unwrap(),
            "--fail-on-regression",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(cs[0].candidate_all_failed, ["gsm8k", "arc_easy"]);
    // A baseline that got nothing right (a tiny model's smoke run): no
    // accuracy can fall, and the gate must still fail.
    let a = tmp.path().join("eval-a");
    for f in ["gsm8k", "arc_easy"] {
        edit_journal(&a.join(format!("samples/{f}.jsonl")), |v| {
            for (_, x) in v["verdicts"].as_object_mut().unwrap() {
                *x = false.into();
            }
            v["correct"] = false.into();
            v["outcome"] = "wrong".into();
        });
    }
    let o = bench(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--fail-on-regression",
        ],
        &[],
    )
    .await;
    assert_exit(&o, 1, "every request failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_compare_gate_fails_when_the_candidate_measured_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["perf-a", "perf-b"]);
    let b = tmp.path().join("perf-b");
    edit_json(&b.join("summary.json"), |m| {
        // Every request failed: zero successes and all-zero latencies, which
        // would read as "better" on a latency metric.
        for l in m["levels"].as_array_mut().unwrap() {
            let st = &mut l["stats"];
            let n = st["succeeded"].as_u64().unwrap() + st["failed"].as_u64().unwrap();
            st["succeeded"] = 0.into();
            st["failed"] = n.into();
            for d in ["ttft", "tpot", "itl", "e2el"] {
                if let Some(o) = st[d].as_object_mut() {
                    for (_, v) in o.iter_mut() {
                        if v.is_number() {
                            *v = 0.into();
                        }
                    }
                }
            }
        }
    });
    let o = bench(
        &[
            "compare",
            tmp.path().join("perf-a").to_str().unwrap(),
            b.to_str().unwrap(),
            "--fail-on-regression",
            "--metric",
            "p99_ttft_ms",
            "--threshold",
            "10",
        ],
        &[],
    )
    .await;
    assert_exit(&o, 1, "no request succeeded");
    let o = bench(&["report", b.to_str().unwrap()], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

// ---- 5. rescore grades against what the run used ---------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_uses_the_recorded_dataset_revision_and_checks_sha256() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = tmp.path().join("run");
    one_run(&hub.url(), &server.url(), &cache, &run).await;
    let hubcfg = bench::hub::HubConfig {
        endpoint: hub.url(),
        token: None,
        cache_dir: cache.clone(),
        offline: false,
    };
    let edit = |f: &dyn Fn(&mut serde_json::Value)| edit_json(&run.join("run.json"), f);
    let rescore = || {
        bench::rescore::rescore(bench::rescore::RescoreConfig {
            source: run.clone(),
            mode: "lm-eval".into(),
            output: Some(tmp.path().join("out")),
            hub: hubcfg.clone(),
        })
    };
    // Another sha256 than the file has: refused, naming both.
    let good = std::fs::read_to_string(run.join("run.json")).unwrap();
    edit(&|m| m["datasets"][0]["files"][0]["sha256"] = "ab".repeat(32).into());
    let err = rescore().await.unwrap_err().to_string();
    assert!(
        err.contains("but the run recorded") && err.contains(&"ab".repeat(32)),
        "{err}"
    );
    assert!(
        !tmp.path().join("out").exists(),
        "a refused rescore leaves no half-written output"
    );
    // The recorded commit of each file is the one fetched, not the
    // binary's pin (the revision alone may be a branch name).
    std::fs::write(run.join("run.json"), &good).unwrap();
    let other = "0123456789abcdef0123456789abcdef01234567";
    edit(&|m| {
        m["datasets"][0]["revision"] = other.into();
        m["datasets"][0]["commits"] = serde_json::json!({ other: other });
        m["datasets"][0]["files"][0]["commit"] = other.into();
    });
    let err = rescore().await.unwrap_err().to_string();
    assert!(err.contains(other), "{err}");
    // No provenance at all: refused.
    edit(&|m| m["datasets"] = serde_json::json!([]));
    let err = rescore().await.unwrap_err().to_string();
    assert!(err.contains("records no dataset revision"), "{err}");
    std::fs::write(run.join("run.json"), &good).unwrap();
    rescore().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_of_a_run_interrupted_before_its_second_benchmark_works() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = tmp.path().join("run");
    let cfg = config(&server.url(), &hub.url(), &cache, &run, &["gsm8k", "arc"]);
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    // As if Ctrl-C came before arc was prepared: no journal, no dataset record.
    std::fs::remove_file(run.join("samples/arc.jsonl")).unwrap();
    edit_json(&run.join("run.json"), |m| {
        m["datasets"]
            .as_array_mut()
            .unwrap()
            .retain(|d| d["benchmark"] != "arc");
        m["status"] = "interrupted".into();
    });
    let w = bench::report::load(&RunDir::new(&run))
        .unwrap()
        .data
        .warnings;
    assert!(
        !w.iter().any(|w| w.contains("missing")),
        "a benchmark never reached is not a missing journal: {w:?}"
    );
    let (_, data) = bench::rescore::rescore(bench::rescore::RescoreConfig {
        source: run.clone(),
        mode: "lm-eval".into(),
        output: None,
        hub: bench::hub::HubConfig {
            endpoint: hub.url(),
            token: None,
            cache_dir: cache.clone(),
            offline: false,
        },
    })
    .await
    .unwrap();
    assert!(
        data.results
            .iter()
            .any(|r| r.benchmark == "gsm8k" && r.stats.n == 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_onto_other_dataset_files_is_refused() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = tmp.path().join("run");
    let mut cfg = config(&server.url(), &hub.url(), &cache, &run, &["gsm8k"]);
    cfg.limit = Some(Limit::Count(2));
    run_eval(cfg, CancellationToken::new()).await.unwrap();
    // The items so far were graded against other bytes than the hub serves
    // now (another mirror, a re-uploaded file under the same revision).
    edit_json(&run.join("run.json"), |m| {
        m["datasets"][0]["files"][0]["sha256"] = "cd".repeat(32).into();
    });
    let cfg = config(&server.url(), &hub.url(), &cache, &run, &["gsm8k"]);
    let err = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gsm8k.dataset file")
            && err.contains("sha256")
            && err.contains(&"cd".repeat(32)),
        "{err}"
    );
    let lines = std::fs::read_to_string(run.join("samples/gsm8k.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 2, "nothing was asked against the other data");
}

// ---- 7. fake-hub files never share a cache with real runs ------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_hub_fixtures_never_enter_a_cache_with_real_data() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    // A cache that already holds something (a real user's cache).
    let real = tmp.path().join("real-cache");
    std::fs::create_dir_all(real.join("datasets--someone--data")).unwrap();
    let cfg = config(
        &server.url(),
        &hub.url(),
        &real,
        &tmp.path().join("r1"),
        &["gsm8k"],
    );
    let err = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bench's fake hub") && err.contains("HF_HUB_CACHE"),
        "{err}"
    );
    assert!(!real.join("datasets--openai--gsm8k").exists());
    // A fresh cache becomes the fake's own, and a real hub refuses it.
    let own = tmp.path().join("fake-cache");
    one_run(&hub.url(), &server.url(), &own, &tmp.path().join("r2")).await;
    assert!(bench::hub::is_fake_cache(&own));
    let h = bench::hub::Hub::new(bench::hub::HubConfig {
        endpoint: "https://hub.example".into(),
        token: None,
        cache_dir: own.clone(),
        offline: false,
    })
    .unwrap();
    let b = bench::benchmarks::get("gsm8k").unwrap();
    let file = bench::hub::HubFile {
        repo_type: bench::hub::RepoType::Dataset,
        repo_id: b.dataset.repo_id.clone(),
        revision: b.dataset.revision.clone(),
        path: b.dataset.subsets[0].eval_path.clone(),
    };
    let err = h.fetch(&file).await.unwrap_err().to_string();
    assert!(err.contains("fake-hub fixtures"), "{err}");
    // Offline as well: the cache alone would pass the fixtures off as real.
    for endpoint in ["https://hub.example", "http://127.example.com"] {
        let h = bench::hub::Hub::new(bench::hub::HubConfig {
            endpoint: endpoint.into(),
            token: None,
            cache_dir: own.clone(),
            offline: true,
        })
        .unwrap();
        let err = h.fetch(&file).await.unwrap_err().to_string();
        assert!(err.contains("fake-hub fixtures"), "{endpoint}: {err}");
    }
}

// ---- 12. signals and stale state -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_reports_and_marks_the_run_interrupted() {
    let hub = start_hub().await;
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("\\boxed{1}").with_delay(Duration::from_millis(250))
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "gsm8k",
            "--concurrency",
            "1",
            "--output",
            out_dir.to_str().unwrap(),
        ])
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", tmp.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let journal = out_dir.join("samples/gsm8k.jsonl");
    for _ in 0..400 {
        if std::fs::read_to_string(&journal).is_ok_and(|s| s.lines().count() >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        bench::rundir::holder(&out_dir).is_some_and(|h| h.pid == pid),
        "the running eval holds its directory"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("SIGTERM"),
        "{}",
        text(&out.stderr)
    );
    let m = RunDir::new(&out_dir).read_manifest().unwrap();
    assert_eq!(m.status, "interrupted");
    assert!(out_dir.join("report.md").is_file() && out_dir.join("report.json").is_file());
    assert!(!out_dir.join(bench::rundir::LOCK_FILE).exists());
}

#[test]
fn running_status_of_a_dead_process_shows_as_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "perf-a"]);
    for (run, file) in [("eval-a", "run.json"), ("perf-a", "summary.json")] {
        edit_json(&tmp.path().join(run).join(file), |m| {
            m["status"] = "running".into();
        });
    }
    // A lock file left by a process that is gone (nobody holds its flock).
    std::fs::write(
        tmp.path().join("eval-a").join(bench::rundir::LOCK_FILE),
        r#"{"pid":999999,"host":"h","since":"2020-01-01T00:00:00Z","command":"bench eval"}"#,
    )
    .unwrap();
    let view = bench::report::load(&RunDir::new(tmp.path().join("eval-a"))).unwrap();
    assert_eq!(view.data.manifest.status, "interrupted");
    assert!(
        view.data
            .warnings
            .iter()
            .any(|w| w.contains("no bench process holds"))
    );
    let entries = bench::site::entries(tmp.path());
    assert_eq!(entries.len(), 2);
    assert!(
        entries.iter().all(|e| e.status == "interrupted"),
        "{:?}",
        entries.iter().map(|e| &e.status).collect::<Vec<_>>()
    );
}

// ---- 13. nothing measured is not a success --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_that_selects_no_item_is_an_error() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &server.url(),
        &hub.url(),
        &tmp.path().join("cache"),
        &tmp.path().join("run"),
        &["gsm8k"],
    );
    cfg.limit = Some(Limit::Fraction(0.00001));
    cfg.limit_text = Some("0.00001".into());
    let err = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("--limit 0.00001: selects no item"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_of_a_run_without_samples_exits_nonzero() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a"]);
    let run = tmp.path().join("eval-a");
    std::fs::remove_dir_all(run.join("samples")).unwrap();
    let o = bench(&["report", run.to_str().unwrap()], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(
        e.contains("samples/gsm8k.jsonl is missing") && e.contains("nothing was measured"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_where_every_request_failed_exits_nonzero() {
    let hub = start_hub().await;
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::fault(Fault::Status(400))
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "gsm8k",
            "--limit",
            "3",
            "--output",
            out.to_str().unwrap(),
        ],
        &[
            ("HF_ENDPOINT", Path::new(&hub.url())),
            ("HF_HUB_CACHE", &tmp.path().join("cache")),
        ],
    )
    .await;
    assert_exit(&o, 3, "every one of the 3 item(s) failed");
    assert!(
        out.join("report.md").is_file(),
        "the reports are still written"
    );
}

/// A server that answers `GET /v1/models` once and then goes away for good
/// (its port then refuses connections).
async fn server_that_dies_after_models() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let body = r#"{"object":"list","data":[{"id":"fake-model","object":"model"}]}"#;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
        let _ = sock.shutdown().await;
        drop(listener);
    });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_stops_the_run_after_consecutive_connect_failures() {
    let hub = start_hub().await;
    let url = server_that_dies_after_models().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut cfg = config(
        &url,
        &hub.url(),
        &tmp.path().join("cache"),
        &out,
        &["gsm8k", "arc"],
    );
    cfg.concurrency = 1;
    cfg.client.max_retries = 1;
    cfg.limit = Some(Limit::Count(8));
    let err = run_eval(cfg, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, EvalError::ServerGone { n: 4, .. }), "{err}");
    let lines = std::fs::read_to_string(out.join("samples/gsm8k.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 4, "stopped after 4 failures, not 8 (nor arc)");
    assert!(!out.join("samples/arc.jsonl").exists());
    assert_eq!(
        RunDir::new(&out).read_manifest().unwrap().status,
        "interrupted"
    );
    assert!(out.join("report.md").is_file());
}

// ---- 14. messages a newcomer meets first -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_ignores_benchmark_order_and_accepts_a_subset() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("run");
    let run = |names: &'static [&'static str], limit: usize| {
        let mut cfg = config(&server.url(), &hub.url(), &cache, &out, names);
        cfg.limit = Some(Limit::Count(limit));
        run_eval(cfg, CancellationToken::new())
    };
    run(&["gsm8k", "arc"], 2).await.unwrap();
    let r = run(&["arc", "gsm8k"], 2).await.unwrap();
    assert_eq!(r.requested, 0, "same run in another order");
    let r = run(&["gsm8k"], 3).await.unwrap();
    assert_eq!(r.requested, 1, "a subset resumes");
    let benches: Vec<String> = r
        .report
        .manifest
        .settings
        .benchmarks
        .iter()
        .map(|b| b.benchmark.clone())
        .collect();
    assert_eq!(benches, ["gsm8k", "arc"], "arc stays in the run");
    // A changed benchmark setting is named briefly, without a JSON dump.
    let mut cfg = config(&server.url(), &hub.url(), &cache, &out, &["gsm8k"]);
    cfg.benchmarks = bench::config::plan_benchmarks(
        &["gsm8k".to_string()],
        Some(r#"{"gsm8k": {"mode": "lm-eval"}}"#),
    )
    .unwrap();
    let err = run_eval(cfg, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gsm8k.mode: was `native`, now `lm-eval`"),
        "{err}"
    );
    assert!(err.len() < 400, "{} chars: {err}", err.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_says_where_the_key_comes_from() {
    let server = FakeOpenAi::start(FakeOptions {
        api_key: Some("right-key".into()),
        ..FakeOptions::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "gsm8k",
            "--output",
            tmp.path().join("run").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains("HTTP 401")
            && e.contains("no API key was sent")
            && e.contains("--api-key")
            && e.contains("OPENAI_API_KEY"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_causes_are_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bench(
        &[
            "eval",
            "--model",
            "m",
            "--api-url",
            "http://127.0.0.1:9/v1",
            "--datasets",
            "gsm8k",
            "--retries",
            "0",
            "--output",
            tmp.path().join("run").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    let line = e.lines().find(|l| l.starts_with("error:")).unwrap();
    // Each clause of the chain appears once.
    let parts: Vec<&str> = line.split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.len() < 8 || !parts[i + 1..].iter().any(|q| q == p),
            "`{p}` repeated in {line}"
        );
    }
    assert!(line.contains("cannot reach the server"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_output_never_replaces_a_file_of_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["eval-a", "eval-b"]);
    let (a, b) = (tmp.path().join("eval-a"), tmp.path().join("eval-b"));
    let before = snapshot(&a);
    for target in [a.join("report.md"), a.join("samples/gsm8k.jsonl")] {
        let o = bench(
            &[
                "compare",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "-o",
                target.to_str().unwrap(),
            ],
            &[],
        )
        .await;
        assert_exit(&o, 2, "holds a bench run");
    }
    assert_eq!(snapshot(&a), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_names_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    copy_runs(tmp.path(), &["perf-a"]);
    let missing = tmp.path().join("nope");
    let o = bench(
        &[
            "compare",
            tmp.path().join("perf-a").to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!("{}: no such directory", missing.display())),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_run_where_every_request_failed_exits_nonzero() {
    let server = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::fault(Fault::Status(400))
    }))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.txt");
    std::fs::write(&prompts, "hello\nworld\n").unwrap();
    let out = tmp.path().join("run");
    let o = bench(
        &[
            "perf",
            "--url",
            &server.url(),
            "--model",
            "fake-model",
            "--parallel",
            "1",
            "--number",
            "3",
            "--dataset",
            "line_by_line",
            "--dataset-path",
            prompts.to_str().unwrap(),
            "--no-progress",
            "--output",
            out.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_exit(&o, 3, "nothing was measured: 0 of 3 request(s) succeeded");
    assert!(
        out.join("summary.json").is_file(),
        "the reports are still written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_server_never_answers_stops_at_once() {
    // Accepts connections and never answers: `/models` would otherwise take
    // the whole timeout times the retries.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "eval",
            "--model",
            "m",
            "--api-url",
            &format!("http://{addr}/v1"),
            "--datasets",
            "gsm8k",
            "--timeout",
            "600",
            "--output",
            out_dir.to_str().unwrap(),
        ])
        .env_remove("OPENAI_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait until the run holds its directory (it is then waiting on /models).
    for _ in 0..400 {
        if bench::rundir::holder(&out_dir).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stopped well before the 600 s timeout")
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(!out_dir.join(bench::rundir::LOCK_FILE).exists());
}
