//! No secret reaches a file, a report or an output stream: distinctive
//! secrets are planted in every secret-bearing input (API key flag in both
//! forms and env, `--header` in both forms, URL userinfo of the server and
//! of `HF_ENDPOINT`, `HF_TOKEN`), the server echoes the ones it was sent in
//! its error messages, and every command that writes something runs,
//! including failing ones. Then every file under the test directory (run directories, HF
//! cache, compare outputs, index) and every stdout/stderr is searched.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Fault, Reply};

use crate::support::{all_files, fixtures_hub, gold_for, gold_table, native_answer};

const KEY: &str = "SECRETKEY123";
const ENV_KEY: &str = "ENVKEY2468";
const HEADER: &str = "HDRSECRET456";
const HEADER_EQ: &str = "HDRSECRET457";
const URL_PASS: &str = "URLPASS789";
const HF_TOKEN: &str = "HFTOKEN000";
const HUB_PASS: &str = "HUBPASS321";
const ALL: [&str; 7] = [
    KEY, ENV_KEY, HEADER, HEADER_EQ, URL_PASS, HF_TOKEN, HUB_PASS,
];

/// A fake server answering gold answers, except items about Janet and
/// prompts saying ECHO: those fail with an error message that echoes
/// `secrets` (what an invocation gave it), as servers echo a bad key.
async fn echo_server(secrets: &[&str]) -> FakeOpenAi {
    let message = format!("echo: {}", secrets.join(" "));
    let table = std::sync::Arc::new(gold_table());
    FakeOpenAi::start(FakeOptions::responding(move |body| {
        let echo = || Reply::fault(Fault::StatusMessage(400, message.clone()));
        if body.to_string().contains("ECHO") {
            return echo();
        }
        match gold_for(&table, body) {
            Some((q, _)) if q.contains("Janet") => echo(),
            Some((_, gold)) => Reply::text(native_answer(&gold)).with_usage(50, 12),
            None => Reply::text("The answer is 42."),
        }
    }))
    .await
}

/// `http://benchuser:URLPASS789@127.0.0.1:PORT/v1` for a server URL.
fn with_userinfo(url: &str, user: &str, pass: &str) -> String {
    url.replacen("http://", &format!("http://{user}:{pass}@"), 1)
}

/// One invocation of the binary with a clean environment plus `envs`.
async fn bench(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.args(args);
    for var in [
        "OPENAI_API_KEY",
        "HF_TOKEN",
        "HF_TOKEN_PATH",
        "HF_ENDPOINT",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "BENCH_API_URL",
    ] {
        cmd.env_remove(var);
    }
    // No token file of the machine's user is read.
    cmd.env("HF_HOME", home);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("bench finished in time")
        .expect("bench runs")
}

/// The outputs seen so far, checked at the end.
#[derive(Default)]
struct Streams(Vec<(String, String)>);

impl Streams {
    fn keep(&mut self, what: &str, o: &Output) -> (String, String) {
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        self.0.push((format!("{what}: stdout"), out.clone()));
        self.0.push((format!("{what}: stderr"), err.clone()));
        (out, err)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_every_input_reach_no_file_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let home = root.join("hf_home");
    let cache = root.join("cache");
    let runs = root.join("runs");
    std::fs::create_dir_all(&home).unwrap();
    let cache_s = cache.to_str().unwrap().to_owned();
    let mut streams = Streams::default();

    let hub = FakeHub::start(FakeHubOptions::new(fixtures_hub())).await;
    let server = echo_server(&[KEY, URL_PASS, HF_TOKEN]).await;
    let api_url = with_userinfo(&server.url(), "benchuser", URL_PASS);
    let hub_with_pass = with_userinfo(&hub.url(), "hubuser", HUB_PASS);

    // 1. eval: key by flag, URL userinfo, HF token; one item fails with the echo.
    let run = runs.join("eval");
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &api_url,
            "--api-key",
            KEY,
            "--datasets",
            "gsm8k",
            "--limit",
            "5",
            "--output",
            run.to_str().unwrap(),
            "--no-progress",
        ],
        &[
            ("HF_ENDPOINT", &hub.url()),
            ("HF_HUB_CACHE", &cache_s),
            ("HF_TOKEN", HF_TOKEN),
        ],
        &home,
    )
    .await;
    let (_, err) = streams.keep("eval", &o);
    assert!(o.status.success(), "{err}");
    // The secrets were really used: the server got the URL's credentials as
    // basic auth, the hub got the token.
    assert!(
        server.requests().iter().all(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))),
        "URL userinfo not sent"
    );
    assert!(
        hub.requests()
            .iter()
            .any(|r| r.authorization.as_deref() == Some("Bearer HFTOKEN000")),
        "HF token not sent"
    );
    // What the record keeps instead.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    let command: Vec<&str> = manifest["command"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        command.windows(2).any(|w| w == ["--api-key", "***"]),
        "{command:?}"
    );
    let base = manifest["settings"]["api_base"].as_str().unwrap();
    assert!(base.starts_with("http://***@127.0.0.1:"), "{base}");
    let journal = std::fs::read_to_string(run.join("samples/gsm8k.jsonl")).unwrap();
    assert!(
        journal.contains("echo: *** ***"),
        "the echo failure: {journal}"
    );

    // 2. eval failing with 401 (`--api-key=` form, the key also in the env).
    let locked = FakeOpenAi::start(FakeOptions {
        api_key: Some("the-right-key".into()),
        ..FakeOptions::default()
    })
    .await;
    let locked_url = with_userinfo(&locked.url(), "benchuser", URL_PASS);
    let key_eq = format!("--api-key={KEY}");
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &locked_url,
            &key_eq,
            "--datasets",
            "gsm8k",
            "--output",
            runs.join("eval-401").to_str().unwrap(),
        ],
        &[("OPENAI_API_KEY", ENV_KEY), ("HF_TOKEN", HF_TOKEN)],
        &home,
    )
    .await;
    let (_, err) = streams.keep("eval 401", &o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("401") && err.contains("http://***@127.0.0.1:"),
        "{err}"
    );

    // 3. eval against an unreachable URL with userinfo, the key from the env.
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &format!("http://benchuser:{URL_PASS}@127.0.0.1:1/v1"),
            "--datasets",
            "gsm8k",
            "--output",
            runs.join("eval-unreachable").to_str().unwrap(),
        ],
        &[("OPENAI_API_KEY", ENV_KEY)],
        &home,
    )
    .await;
    let (_, err) = streams.keep("eval unreachable", &o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach the server at http://***@127.0.0.1:1"),
        "{err}"
    );

    // 4. eval whose hub (with userinfo) is unreachable, into an empty cache.
    let dead_hub = format!("http://hubuser:{HUB_PASS}@127.0.0.1:1");
    let o = bench(
        &[
            "eval",
            "--model",
            "fake-model",
            "--api-url",
            &api_url,
            "--datasets",
            "gsm8k",
            "--output",
            runs.join("eval-no-hub").to_str().unwrap(),
        ],
        &[
            ("HF_ENDPOINT", &dead_hub),
            ("HF_HUB_CACHE", root.join("cache-empty").to_str().unwrap()),
            ("HF_TOKEN", HF_TOKEN),
            ("OPENAI_API_KEY", ENV_KEY),
        ],
        &home,
    )
    .await;
    let (_, err) = streams.keep("eval no hub", &o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach the hub at http://***@127.0.0.1:1"),
        "{err}"
    );

    // 5. perf: key by `--api-key=`, headers in both forms, URL userinfo; one
    // prompt fails with the echo.
    let prompts = root.join("prompts.txt");
    std::fs::write(
        &prompts,
        "Say hello\nECHO this back\nCount to three\nName a colour\n",
    )
    .unwrap();
    let header = format!("Authorization: Bearer {HEADER}");
    let header_eq = format!("--header=X-Custom: {HEADER_EQ}");
    let perf_args = |out: &Path| -> Vec<String> {
        [
            "perf",
            "--url",
            &api_url,
            "--model",
            "fake-model",
            "--parallel",
            "1",
            "--number",
            "4",
            "--dataset",
            "line_by_line",
            "--dataset-path",
            prompts.to_str().unwrap(),
            "--max-tokens",
            "8",
            "--no-progress",
            "--output",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let perf_server = echo_server(&[KEY, HEADER, HEADER_EQ, URL_PASS, HF_TOKEN]).await;
    let perf_url = with_userinfo(&perf_server.url(), "benchuser", URL_PASS);
    let mut args = perf_args(&runs.join("perf-a"));
    args[2] = perf_url;
    args.extend([
        key_eq.clone(),
        "--header".into(),
        header.clone(),
        header_eq.clone(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bench(&args, &[("HF_TOKEN", HF_TOKEN)], &home).await;
    let (_, err) = streams.keep("perf a", &o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        perf_server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count(),
        4
    );
    let summary = std::fs::read_to_string(runs.join("perf-a/summary.json")).unwrap();
    assert!(summary.contains("\"Authorization: ***\""), "{summary}");
    assert!(summary.contains("\"--header=X-Custom: ***\""), "{summary}");
    assert!(summary.contains("\"--api-key=***\""), "{summary}");
    let requests = std::fs::read_to_string(runs.join("perf-a/requests.jsonl")).unwrap();
    assert!(
        requests.contains("echo: *** ***"),
        "the echo failure: {requests}"
    );

    // A second perf run (key from the env) to compare with.
    let perf_server_b = echo_server(&[ENV_KEY, URL_PASS]).await;
    let mut args = perf_args(&runs.join("perf-b"));
    args[2] = with_userinfo(&perf_server_b.url(), "benchuser", URL_PASS);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bench(&args, &[("OPENAI_API_KEY", ENV_KEY)], &home).await;
    let (_, err) = streams.keep("perf b", &o);
    assert!(o.status.success(), "{err}");

    // 6. perf failing with 401, every secret input given.
    let mut args = perf_args(&runs.join("perf-401"));
    args[2] = locked_url.clone();
    args.extend([
        key_eq.clone(),
        "--header".into(),
        header.clone(),
        header_eq.clone(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bench(&args, &[("HF_TOKEN", HF_TOKEN)], &home).await;
    let (_, err) = streams.keep("perf 401", &o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("401"), "{err}");

    // 7. rescore, report, index and compare, with the secrets in the env.
    let env: [(&str, &str); 4] = [
        ("OPENAI_API_KEY", ENV_KEY),
        ("HF_TOKEN", HF_TOKEN),
        ("HF_ENDPOINT", &hub_with_pass),
        ("HF_HUB_CACHE", &cache_s),
    ];
    let rescored = runs.join("eval-rescored");
    let o = bench(
        &[
            "rescore",
            run.to_str().unwrap(),
            "--mode",
            "evalscope",
            "--output",
            rescored.to_str().unwrap(),
        ],
        &env,
        &home,
    )
    .await;
    let (_, err) = streams.keep("rescore", &o);
    assert!(o.status.success(), "{err}");
    for dir in [&run, &runs.join("perf-a")] {
        let o = bench(&["report", dir.to_str().unwrap()], &env, &home).await;
        let (_, err) = streams.keep("report", &o);
        assert!(o.status.success(), "{err}");
    }
    let o = bench(&["report", "--index", runs.to_str().unwrap()], &env, &home).await;
    let (_, err) = streams.keep("report --index", &o);
    assert!(o.status.success(), "{err}");
    for (a, b) in [
        (&run, &rescored),
        (&runs.join("perf-a"), &runs.join("perf-b")),
    ] {
        for format in ["md", "html", "json"] {
            let out = root.join(format!(
                "compare-{}.{format}",
                b.file_name().unwrap().to_str().unwrap()
            ));
            let o = bench(
                &[
                    "compare",
                    a.to_str().unwrap(),
                    b.to_str().unwrap(),
                    "--format",
                    format,
                    "-o",
                    out.to_str().unwrap(),
                ],
                &env,
                &home,
            )
            .await;
            let (_, err) = streams.keep("compare", &o);
            assert!(o.status.success(), "{err}");
            assert!(out.is_file());
        }
        let o = bench(
            &["compare", a.to_str().unwrap(), b.to_str().unwrap()],
            &env,
            &home,
        )
        .await;
        let (out, err) = streams.keep("compare to stdout", &o);
        assert!(o.status.success() && out.contains("bench compare"), "{err}");
    }

    // Every file (run directories, HF cache, compare outputs, index pages)
    // and every output stream: no secret, in any of its forms.
    let files = all_files(root);
    assert!(
        files.iter().any(|f| f.starts_with(&cache)),
        "the HF cache was used"
    );
    for f in [
        "runs/eval/report.md",
        "runs/eval-rescored/run.json",
        "runs/perf-a/report.html",
        "runs/index.html",
        "compare-eval-rescored.md",
        "compare-perf-b.html",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for s in ALL {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} in {}",
                f.display()
            );
        }
    }
    for (what, text) in &streams.0 {
        for s in ALL {
            assert!(!text.contains(s), "{s} in {what}:\n{text}");
        }
    }
}
