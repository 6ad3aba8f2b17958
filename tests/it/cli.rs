//! The `bench` binary as a user runs it.

use std::process::Output;
use std::time::Duration;

use crate::support::{all_files, start_hub, start_oracle, text};

async fn bench(args: &[&str], envs: &[(&str, &str)]) -> Output {
    crate::support::bench_bin(args, envs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_gsm8k_arc_limit_5_through_the_binary() {
    let hub = start_hub().await;
    let server = start_oracle(vec!["Janet".into()]).await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let out = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "gsm8k",
            "arc",
            "--limit",
            "5",
            "--output",
            out_dir.to_str().unwrap(),
            "--eval-batch-size",
            "3",
        ],
        &[
            ("HF_ENDPOINT", &hub.url()),
            ("HF_HUB_CACHE", cache.to_str().unwrap()),
            ("OPENAI_API_KEY", "sk-cli-secret"),
        ],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The terminal table.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("gsm8k") && l.contains("answer-chain*"))
        .expect(&stdout);
    assert!(line.contains(" 5 ") && line.contains("80.0"), "{line}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("arc") && l.contains("all") && l.contains("100.0")),
        "{stdout}"
    );
    // Files, and no key anywhere (files, stdout, stderr).
    for f in [
        "run.json",
        "report.md",
        "report.html",
        "report.json",
        "samples/gsm8k.jsonl",
        "samples/arc.jsonl",
    ] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    assert!(!stdout.contains("sk-cli-secret") && !stderr.contains("sk-cli-secret"));
    for f in all_files(&out_dir) {
        assert!(
            !std::fs::read_to_string(&f)
                .unwrap_or_default()
                .contains("sk-cli-secret"),
            "{}",
            f.display()
        );
    }
    // The HF cache layout was used.
    assert!(
        cache.join("datasets--openai--gsm8k/refs").exists()
            || cache.join("datasets--openai--gsm8k/snapshots").is_dir()
    );

    // `bench report DIR` re-renders.
    std::fs::remove_file(out_dir.join("report.html")).unwrap();
    let out = bench(&["report", out_dir.to_str().unwrap()], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.join("report.html").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_bad_input() {
    let out = bench(&["list"], &[]).await;
    let s = text(&out.stdout);
    assert!(out.status.success());
    for name in [
        "gsm8k",
        "arc",
        "arc_easy",
        "arc_challenge",
        "mode native (default)",
    ] {
        assert!(s.contains(name), "{name} missing from:\n{s}");
    }

    let base = ["eval", "--model", "m", "--api-url", "http://127.0.0.1:9/v1"];
    let cases: &[(&[&str], &str)] = &[
        (&["--datasets", "gsm8kk"], "did you mean gsm8k"),
        (&["--datasets", "gsm8k", "--limit", "abc"], "--limit"),
        (
            &["--datasets", "gsm8k", "--dataset-args", "{nope"],
            "--dataset-args",
        ),
        (
            &[
                "--datasets",
                "gsm8k",
                "--dataset-args",
                r#"{"gsm8k": {"mode": "x"}}"#,
            ],
            "gsm8k.mode",
        ),
        (
            &["--datasets", "gsm8k", "--generation-config", "[1]"],
            "--generation-config",
        ),
        (
            &["--datasets", "gsm8k", "--concurrency", "0"],
            "--concurrency",
        ),
    ];
    for (extra, want) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let out = bench(&args, &[]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected `{want}` in: {err}");
    }
    let out = bench(&["report", "/nonexistent/run"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a bench run directory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_fails_within_seconds() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let tmp = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let out = bench(
        &[
            "eval",
            "--model",
            "m",
            "--api-url",
            &dead,
            "--datasets",
            "gsm8k",
            "--output",
            tmp.path().join("r").to_str().unwrap(),
        ],
        &[("HF_HUB_CACHE", tmp.path().to_str().unwrap())],
    )
    .await;
    // Only "does not hang": one refused connection takes milliseconds, a
    // wait for the 600 s request timeout is what this rules out. 30 s
    // leaves room for starting the debug binary on a loaded machine.
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot reach the server"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_writes_reports_of_what_finished() {
    let hub = start_hub().await;
    let server = bench::fake::openai::FakeOpenAi::start(
        bench::fake::openai::FakeOptions::responding(|_| {
            bench::fake::openai::Reply::text("\\boxed{1}").with_delay(Duration::from_millis(250))
        }),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &server.url(),
            "--datasets",
            "gsm8k",
            "arc",
            "--concurrency",
            "1",
            "--output",
            out_dir.to_str().unwrap(),
        ])
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", &cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Wait until some items are journaled (up to 30 s on a loaded
    // machine), then interrupt.
    let journal = out_dir.join("samples/gsm8k.jsonl");
    for _ in 0..600 {
        if std::fs::read_to_string(&journal)
            .map(|s| s.lines().count() >= 2)
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let manifest = bench::record::RunDir::new(&out_dir)
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.status, "interrupted");
    let n = std::fs::read_to_string(&journal).unwrap().lines().count();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["results"][0]["n"], serde_json::json!(n));
    assert!(out_dir.join("report.html").is_file() && out_dir.join("report.md").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_endpoint_url_and_prompt_override() {
    let hub = start_hub().await;
    let server = start_oracle(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(
        prompts.join("gsm8k_boxed.jinja"),
        "Solve: {{ question }}\nEnd with \\boxed{}.",
    )
    .unwrap();
    let out_dir = tmp.path().join("run");
    let endpoint = format!("{}/completions", server.url());
    let out = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &endpoint,
            "--datasets",
            "gsm8k",
            "--limit",
            "2",
            "--output",
            out_dir.to_str().unwrap(),
            "--prompts",
            prompts.to_str().unwrap(),
            "--generation-config",
            r#"{"max_tokens": 64, "seed": 7, "extra_body": {"top_k": 5}}"#,
        ],
        &[
            ("HF_ENDPOINT", &hub.url()),
            ("HF_HUB_CACHE", tmp.path().join("cache").to_str().unwrap()),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gens: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/completions"))
        .collect();
    assert_eq!(gens.len(), 2);
    for r in &gens {
        // The URL named the completions endpoint, so the plain-text API was used.
        assert_eq!(r.path, "/v1/completions");
        let prompt = r.body["prompt"].as_str().unwrap();
        assert!(
            prompt.starts_with("Solve: ") && prompt.ends_with("End with \\boxed{}."),
            "{prompt}"
        );
        assert_eq!(r.body["max_tokens"], serde_json::json!(64));
        assert_eq!(r.body["seed"], serde_json::json!(7));
        assert_eq!(r.body["top_k"], serde_json::json!(5));
        assert_eq!(r.body["temperature"], serde_json::json!(0.0));
    }
    let manifest = bench::record::RunDir::new(&out_dir)
        .read_manifest()
        .unwrap();
    assert_eq!(manifest.settings.api, "completions");
    let default_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(include_bytes!(
            "../../prompts/gsm8k_boxed.jinja"
        )))
    };
    assert_ne!(
        manifest.settings.benchmarks[0].template_sha256, default_hash,
        "override recorded"
    );

    // --api that contradicts the endpoint in the URL is an error.
    let out = bench(
        &[
            "eval",
            "--model",
            "m",
            "--api-url",
            &endpoint,
            "--api",
            "chat",
            "--datasets",
            "gsm8k",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--api chat contradicts"),
        "{}",
        text(&out.stderr)
    );
}
