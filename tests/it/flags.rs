//! Every numeric flag of every command, fed 0, -1, NaN, inf and 1e300
//! through the real binary (issue 9, items 10 and 11): a bad number is a
//! usage error (exit 2) naming the flag, never a panic (exit 101). The
//! numeric flags are found by walking clap's command tree, so a new one
//! cannot be left out of [`NUMERIC`]. No invocation reaches beyond a closed
//! port on 127.0.0.1: bad values fail during validation, and the few valid
//! ones (0 where 0 means something) point at that port or run under a time
//! limit.

use std::any::TypeId;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::CommandFactory;
use tokio::io::AsyncReadExt;

/// Every numeric flag: (subcommand, long name, whether 0 is a valid value).
const NUMERIC: &[(&str, &str, bool)] = &[
    ("eval", "concurrency", false),
    ("eval", "timeout", false),
    ("eval", "retries", true),
    ("eval", "repeats", false),
    ("perf", "parallel", false),
    ("perf", "number", false),
    ("perf", "rate", false),
    ("perf", "burstiness", false),
    ("perf", "max-concurrency", false),
    ("perf", "warmup", true),
    ("perf", "seed", true),
    ("perf", "temperature", true),
    ("perf", "max-tokens", false),
    ("perf", "min-tokens", true),
    ("perf", "min-prompt-length", false),
    ("perf", "max-prompt-length", false),
    ("perf", "prefix-length", true),
    ("perf", "timeout", false),
    ("mock-server", "port", true),
    ("mock-server", "ttft-ms", true),
    ("mock-server", "itl-ms", true),
    ("mock-server", "output-tokens", true),
    ("mock-server", "tokens-per-chunk", false),
    ("mock-server", "threads", false),
    ("serve", "port", true),
    ("serve", "max-batch", false),
    ("compare", "threshold", true),
    ("report", "max-comparisons", true),
];

/// The values every numeric flag is fed.
const VALUES: &[&str] = &["0", "-1", "NaN", "inf", "1e300"];

/// Flags that carry numbers inside text or JSON (clap sees a string, so the
/// tree walk cannot find them): (subcommand, flag, value, valid?).
const IN_TEXT: &[(&str, &str, &str, bool)] = &[
    ("eval", "limit", "0", false),
    ("eval", "limit", "-1", false),
    ("eval", "limit", "NaN", false),
    ("eval", "limit", "inf", false),
    ("eval", "limit", "1e300", false),
    ("eval", "generation-config", r#"{"n": 0}"#, false),
    ("eval", "generation-config", r#"{"n": 1e300}"#, false),
    ("perf", "duration", "0", false),
    ("perf", "duration", "-1", false),
    ("perf", "duration", "NaN", false),
    ("perf", "duration", "inf", false),
    ("perf", "duration", "1e300", false),
    ("perf", "duration", "1e300s", false),
    ("perf", "duration", "1e300ms", false),
    ("perf", "duration", "-1h", false),
    ("perf", "slo", "ttft=0", true),
    ("perf", "slo", "ttft=-1", false),
    ("perf", "slo", "ttft=NaN", false),
    ("perf", "slo", "tpot=inf", false),
    ("perf", "slo", "e2el=1e300", false),
    ("perf", "slo", "e2el=1e300s", false),
    ("eval", "generation-config", r#"{"timeout": 0}"#, false),
    ("eval", "generation-config", r#"{"timeout": -1}"#, false),
    ("eval", "generation-config", r#"{"timeout": NaN}"#, false),
    (
        "eval",
        "generation-config",
        r#"{"timeout": Infinity}"#,
        false,
    ),
    ("eval", "generation-config", r#"{"timeout": 1e300}"#, false),
    ("eval", "generation-config", r#"{"timeout": 1e30}"#, false),
    ("eval", "generation-config", r#"{"timeout": 1e400}"#, false),
    ("eval", "generation-config", r#"{"retries": 0}"#, true),
    ("eval", "generation-config", r#"{"retries": -1}"#, false),
    ("eval", "generation-config", r#"{"retries": NaN}"#, false),
    ("eval", "generation-config", r#"{"retries": 1e300}"#, false),
    (
        "eval",
        "generation-config",
        r#"{"retries": 18446744073709551615}"#,
        false,
    ),
    (
        "eval",
        "dataset-args",
        r#"{"gsm8k": {"few_shot": 0}}"#,
        true,
    ),
    (
        "eval",
        "dataset-args",
        r#"{"gsm8k": {"few_shot": -1}}"#,
        false,
    ),
    (
        "eval",
        "dataset-args",
        r#"{"gsm8k": {"few_shot": NaN}}"#,
        false,
    ),
    (
        "eval",
        "dataset-args",
        r#"{"gsm8k": {"few_shot": 1e300}}"#,
        false,
    ),
    (
        "eval",
        "dataset-args",
        r#"{"gsm8k": {"few_shot": 18446744073709551615}}"#,
        false,
    ),
    // Request parameters go to the server as given (it judges them); only
    // what JSON cannot hold is refused here.
    ("perf", "extra-args", r#"{"top_p": 0}"#, true),
    ("perf", "extra-args", r#"{"top_p": NaN}"#, false),
    ("perf", "extra-args", r#"{"top_p": 1e400}"#, false),
];

/// The value types clap parses into for a numeric flag.
fn is_numeric(t: &clap::builder::ValueParser) -> bool {
    let id = t.type_id();
    [
        TypeId::of::<f64>(),
        TypeId::of::<f32>(),
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
        TypeId::of::<Duration>(),
    ]
    .into_iter()
    .any(|t| id == t)
}

#[test]
fn the_table_lists_every_numeric_flag_of_every_command() {
    let cli = crate::bench_cli::Cli::command();
    let mut found = BTreeSet::new();
    for sub in cli.get_subcommands() {
        for arg in sub.get_arguments() {
            if is_numeric(arg.get_value_parser()) {
                let long = arg.get_long().unwrap_or_else(|| {
                    panic!(
                        "{} {}: positional numbers are not expected",
                        sub.get_name(),
                        arg.get_id()
                    )
                });
                found.insert((sub.get_name().to_string(), long.to_string()));
            }
        }
    }
    let listed: BTreeSet<_> = NUMERIC
        .iter()
        .map(|(c, f, _)| (c.to_string(), f.to_string()))
        .collect();
    assert_eq!(
        found, listed,
        "NUMERIC must list exactly the numeric flags clap knows (left: clap, right: the table)"
    );
}

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// What one run of the binary did.
struct Run {
    /// Exit code; `None` when it was still running at the time limit (then killed).
    code: Option<i32>,
    stderr: String,
}

/// Runs `bench args` with a scratch environment (no key, hub offline and
/// pointed at a closed port, empty caches), killing it after `limit`.
async fn run(args: &[String], scratch: &Path, port: u16, limit: Duration) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("HF_TOKEN")
        .env_remove("BENCH_API_URL")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("HF_HUB_CACHE", scratch.join("hub-cache"))
        .env("HF_HOME", scratch.join("hf-home"))
        .current_dir(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("bench starts");
    let mut err = child.stderr.take().expect("stderr");
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        s
    });
    let code = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => Some(status.expect("wait").code().expect("exited, not signalled")),
        Err(_) => {
            child.kill().await.expect("kill");
            None
        }
    };
    let stderr = reader.await.expect("stderr reader");
    Run { code, stderr }
}

/// The arguments of `command` that make a run fail safely once past
/// validation (a closed port, missing run directories, an empty folder),
/// without `skip` (the flag under test, when the base sets it).
fn base(command: &str, scratch: &Path, port: u16, skip: &str) -> Vec<String> {
    let url = format!("http://127.0.0.1:{port}/v1");
    let s = |p: &str| scratch.join(p).to_string_lossy().into_owned();
    match command {
        "eval" => vec![
            "eval".into(),
            "--model".into(),
            "m".into(),
            "--api-url".into(),
            url,
            "--datasets".into(),
            "gsm8k".into(),
            "--output".into(),
            s("eval-run"),
            "--no-progress".into(),
        ],
        "perf" => vec![
            "perf".into(),
            "--url".into(),
            url,
            "--model".into(),
            "m".into(),
            "--output".into(),
            s("perf-run"),
            "--no-progress".into(),
        ],
        "mock-server" if skip != "port" => vec!["mock-server".into(), "--port".into(), "0".into()],
        "mock-server" => vec!["mock-server".into()],
        // A model file that does not exist: fails after validation, before binding.
        "serve" => vec![
            "serve".into(),
            "--model".into(),
            s("no-such-model.gguf"),
            "--offline".into(),
        ],
        "compare" => vec!["compare".into(), s("no-run-a"), s("no-run-b")],
        "report" => {
            let dir = scratch.join("empty-folder");
            std::fs::create_dir_all(&dir).expect("mkdir");
            vec!["report".into(), s("empty-folder"), "--index".into()]
        }
        other => panic!("no base arguments for {other}"),
    }
}

/// Whether a run with a valid value went on to the step after validation
/// that the base arguments make fail (or, for the mock server and the
/// index, succeed): proof that the value was taken.
fn past_validation(command: &str, r: &Run) -> bool {
    match command {
        // The closed port.
        "eval" => r.stderr.contains("cannot reach the server"),
        // Random prompts without --tokenizer-path, checked before the network.
        "perf" => r.stderr.contains("--dataset random needs a tokenizer"),
        "compare" => {
            r.stderr.contains("is not a bench run directory")
                || r.stderr.contains("no such directory")
        }
        // The missing model file, looked for after validation.
        "serve" => r.stderr.contains("no-such-model.gguf"),
        // An index of an empty folder is written.
        "report" => r.code == Some(0),
        // Serving until killed at the time limit.
        "mock-server" => r.code.is_none(),
        other => panic!("no expectation for {other}"),
    }
}

/// Checks one (command, flag, value) run. A refused value exits 2 with the
/// flag in the message; an accepted one may fail later (nothing listens)
/// but not with a range error; neither panics.
async fn check(command: &str, flag: &str, value: &str, valid: bool, scratch: PathBuf) -> String {
    let port = closed_port();
    let mut args = base(command, &scratch, port, flag);
    args.push(format!("--{flag}={value}"));
    // A started mock server runs until killed; everything else ends alone.
    let limit = Duration::from_secs(if command == "mock-server" { 3 } else { 60 });
    let r = run(&args, &scratch, port, limit).await;
    let what = format!("bench {command} --{flag}={value}");
    let mut problems = Vec::new();
    if r.stderr.contains("panicked") || r.code == Some(101) {
        problems.push("panicked".to_string());
    }
    if valid {
        if r.stderr.contains(&format!("--{flag}")) && r.stderr.contains("must be") {
            problems.push("refused a valid value".to_string());
        }
        if !past_validation(command, &r) {
            problems.push(format!(
                "did not get past validation as expected (exit {:?})",
                r.code
            ));
        }
    } else {
        if r.code != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", r.code));
        }
        if !r.stderr.contains(&format!("--{flag}")) {
            problems.push("the message does not name the flag".to_string());
        }
    }
    if problems.is_empty() {
        String::new()
    } else {
        format!(
            "{what}: {}\nstderr: {}\n",
            problems.join("; "),
            r.stderr.trim()
        )
    }
}

/// Runs `cases` a few at a time; returns every failure's description.
async fn check_all(cases: Vec<(&'static str, &'static str, String, bool)>) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(tokio::sync::Semaphore::new(6));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (command, flag, value, valid)) in cases.into_iter().enumerate() {
        let scratch = tmp.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&scratch).expect("mkdir");
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            check(command, flag, &value, valid, scratch).await
        });
    }
    let mut failures = String::new();
    while let Some(r) = tasks.join_next().await {
        failures.push_str(&r.expect("case task"));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_numeric_flag_refuses_zero_negative_nan_inf_and_1e300_by_name() {
    let mut cases = Vec::new();
    for &(command, flag, zero_ok) in NUMERIC {
        for &v in VALUES {
            cases.push((command, flag, v.to_string(), v == "0" && zero_ok));
        }
    }
    let failures = check_all(cases).await;
    assert!(failures.is_empty(), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_inside_text_and_json_flags_are_range_checked_by_name() {
    let cases = IN_TEXT
        .iter()
        .map(|&(c, f, v, ok)| (c, f, v.to_string(), ok))
        .collect();
    let failures = check_all(cases).await;
    assert!(failures.is_empty(), "{failures}");
}

/// One refused invocation: exit 2, the flag and the range in the message.
async fn refused(args: &[&str], flag: &str, range: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = closed_port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("PORT", &port.to_string()))
        .collect();
    let r = run(&args, tmp.path(), port, Duration::from_secs(60)).await;
    assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.stderr.contains(flag) && r.stderr.contains(range),
        "{args:?}: expected {flag} and `{range}` in: {}",
        r.stderr
    );
}

#[tokio::test]
async fn timeout_1e30_is_a_usage_error_not_a_duration_panic() {
    let common = ["--model", "m", "--no-progress"];
    let mut eval = vec![
        "eval",
        "--api-url",
        "http://127.0.0.1:PORT/v1",
        "--datasets",
        "gsm8k",
    ];
    eval.extend(common);
    let mut a = eval.clone();
    a.extend(["--timeout", "1e30"]);
    refused(&a, "--timeout", "between 0.001 and 86400 (got 1e30)").await;
    let mut a = eval.clone();
    a.extend(["--generation-config", r#"{"timeout": 1e30}"#]);
    refused(&a, "--generation-config timeout", "between 0.001 and 86400").await;
    let mut perf = vec![
        "perf",
        "--url",
        "http://127.0.0.1:PORT/v1",
        "--timeout",
        "1e30",
    ];
    perf.extend(common);
    refused(&perf, "--timeout", "between 0.001 and 86400 (got 1e30)").await;
}

#[tokio::test]
async fn mock_server_ttft_1e300_is_a_usage_error_not_a_duration_panic() {
    refused(
        &["mock-server", "--port", "0", "--ttft-ms", "1e300"],
        "--ttft-ms",
        "between 0 and 3600000 (got 1e300)",
    )
    .await;
}

#[tokio::test]
async fn perf_rate_1e_minus_300_is_a_usage_error_not_a_duration_panic() {
    refused(
        &[
            "perf",
            "--url",
            "http://127.0.0.1:PORT/v1",
            "--model",
            "m",
            "--rate",
            "1e-300",
        ],
        "--rate",
        "between 0.001 and 1000000 (got 1e-300)",
    )
    .await;
    // Each flag is fine alone; together the level would schedule 6e11
    // arrivals up front.
    refused(
        &[
            "perf",
            "--url",
            "http://127.0.0.1:PORT/v1",
            "--model",
            "m",
            "--rate",
            "1000000",
            "--duration",
            "168h",
        ],
        "--rate 1000000 with --duration 168h",
        "more than the 10000000",
    )
    .await;
}

fn fixture_tokenizer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizer/tokenizer.json")
}

/// `bench perf` against the closed port with `--tokenizer-path tok`, then `extra`.
fn perf_with<'a>(tok: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "perf",
        "--url",
        "http://127.0.0.1:PORT/v1",
        "--model",
        "m",
        "--no-progress",
        "--tokenizer-path",
        tok,
    ];
    a.extend_from_slice(extra);
    a
}

#[tokio::test]
async fn hundred_million_token_prompts_are_refused_before_any_allocation() {
    // Issue 9 item 11: this grew to 6.8 GB in 16 s with no output.
    let tok = fixture_tokenizer();
    let tok = tok.to_str().expect("utf8");
    let started = std::time::Instant::now();
    refused(
        &perf_with(
            tok,
            &[
                "--min-prompt-length",
                "100000000",
                "--max-prompt-length",
                "100000000",
            ],
        ),
        "--min-prompt-length",
        "between 1 and 1048576 (got 100000000)",
    )
    .await;
    // Each length within the cap, the sum beyond it.
    refused(
        &perf_with(
            tok,
            &[
                "--prefix-length",
                "1048576",
                "--min-prompt-length",
                "1",
                "--max-prompt-length",
                "1",
            ],
        ),
        "--prefix-length 1048576 + --max-prompt-length 1",
        "more than the 1048576 a random prompt may have",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refusing took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn prompts_longer_than_the_tokenizer_model_max_length_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture_tokenizer(), dir.path().join("tokenizer.json")).expect("copy");
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"model_max_length": 512, "tokenizer_class": "GPT2Tokenizer"}"#,
    )
    .expect("write");
    let as_dir = dir.path().to_str().expect("utf8").to_string();
    let as_file = format!("{as_dir}/tokenizer.json");
    for tok in [&as_dir, &as_file] {
        let lengths = [
            "--min-prompt-length",
            "100",
            "--max-prompt-length",
            "400",
            "--prefix-length",
            "200",
        ];
        refused(
            &perf_with(tok, &lengths),
            "--prefix-length 200 + --max-prompt-length 400 = 600 tokens",
            "longer than the model takes (512 tokens: model_max_length in",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_longer_than_the_server_max_model_len_are_refused_before_sending() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A server that states its context, as vLLM's /v1/models does, and
    // counts every other request.
    let others = Arc::new(AtomicUsize::new(0));
    let counted = others.clone();
    let app = axum::Router::new()
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"object": "list", "data": [
                    {"id": "m", "object": "model", "max_model_len": 512}
                ]}))
            }),
        )
        .fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NOT_FOUND
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let tmp = tempfile::tempdir().expect("tempdir");
    let tok = fixture_tokenizer();
    let url = format!("http://{addr}/v1");
    let args: Vec<String> = [
        "perf",
        "--url",
        &url,
        "--model",
        "m",
        "--no-progress",
        "--tokenizer-path",
        tok.to_str().expect("utf8"),
        "--min-prompt-length",
        "400",
        "--max-prompt-length",
        "400",
        "--max-tokens",
        "200",
        "--number",
        "2",
        "--output",
        tmp.path().join("run").to_str().expect("utf8"),
    ]
    .map(String::from)
    .to_vec();
    let r = run(&args, tmp.path(), closed_port(), Duration::from_secs(120)).await;
    server.abort();
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "the longest prompt is 400 tokens + 200 output tokens (--max-tokens) = 600, \
             more than the server's max_model_len 512 for m"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(others.load(Ordering::SeqCst), 0, "a request was sent");
}

#[test]
fn random_prompts_beyond_the_memory_budget_are_fewer_and_reused() {
    use bench::perf::prompts::workload_within;
    use clap::Parser;
    let tok = fixture_tokenizer();
    let argv = [
        "bench",
        "perf",
        "--url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--tokenizer-path",
        tok.to_str().expect("utf8"),
        "--min-prompt-length",
        "40",
        "--max-prompt-length",
        "40",
    ];
    let a = match crate::bench_cli::Cli::try_parse_from(argv)
        .expect("flags parse")
        .command
    {
        crate::bench_cli::Command::Perf(a) => a.workload_options(),
        other => panic!("expected perf, got {other:?}"),
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let hub = bench::hub::HubConfig {
        endpoint: format!("http://127.0.0.1:{}", closed_port()),
        token: None,
        cache_dir: cache.path().to_path_buf(),
        offline: true,
    };
    // Room for ten prompts of 40 tokens (each counted with 64 for its request).
    let budget = 10 * (40 + 64);
    let w = workload_within(&a, &hub, 100, budget).expect("workload");
    assert_eq!(w.items.len(), 10);
    assert!(w.items.iter().all(|i| i.prompt_tokens == Some(40)));
    let note = w.note.as_deref().expect("a note says prompts are reused");
    assert!(
        note.starts_with(
            "10 distinct random prompts of up to 40 tokens, reused in order for 100 requests"
        ),
        "{note}"
    );
    assert!(w.label.contains(note), "{}", w.label);
    // Within the budget: one prompt per request, no note.
    let w = workload_within(&a, &hub, 10, budget).expect("workload");
    assert_eq!(w.items.len(), 10);
    assert_eq!(w.note, None);
}

/// Runs the binary with `args` (nothing listens anywhere: each of these
/// must fail while parsing) and returns its exit code and stderr.
fn usage_error(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("BENCH_API_URL")
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run bench");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts a usage error (exit 2) that quotes `bad` and lists every one
/// of `valid`.
fn assert_lists(args: &[&str], bad: &str, valid: &[&str]) {
    let (code, err) = usage_error(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert!(err.contains(&format!("'{bad}'")), "{args:?}: {err}");
    for v in valid {
        assert!(err.contains(v), "{args:?}: `{v}` not listed: {err}");
    }
}

#[test]
fn format_htm_is_a_usage_error_listing_the_formats() {
    // Before it was checked, `--format htm` rendered markdown.
    assert_lists(
        &["compare", "a", "b", "--format", "htm"],
        "htm",
        &["md", "html", "json"],
    );
}

#[test]
fn metric_typo_is_a_usage_error_listing_the_metrics() {
    let keys: Vec<&str> = bench::compare::PERF_METRICS.iter().map(|m| m.key).collect();
    assert!(keys.contains(&"output_throughput"));
    assert_lists(
        &["compare", "a", "b", "--metric", "output_througput"],
        "output_througput",
        &keys,
    );
}

/// `bench perf` aimed at a closed port, followed by `extra`: for flags that
/// must fail before any request.
fn perf_to_nowhere<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["perf", "--url", "http://127.0.0.1:9/v1", "--model", "m"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn perf_api_typo_is_a_usage_error_listing_the_apis() {
    assert_lists(
        &perf_to_nowhere(&["--api", "chatt"]),
        "chatt",
        &["openai", "chat", "completions"],
    );
}

#[test]
fn perf_dataset_typo_is_a_usage_error_listing_the_datasets() {
    assert_lists(
        &perf_to_nowhere(&["--dataset", "flickr8k"]),
        "flickr8k",
        &["random", "line_by_line", "openqa", "custom", "sharegpt"],
    );
    // The alternative spellings are accepted (then the missing file is the error).
    let (code, err) = usage_error(&perf_to_nowhere(&["--dataset", "share_gpt_en"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--dataset share_gpt_en reads a file"), "{err}");
}

#[test]
fn rescore_mode_typo_is_a_usage_error_listing_the_registry_modes() {
    let modes = bench::benchmarks::registry().recipe_ids();
    assert!(modes.len() > 1);
    let modes: Vec<&str> = modes.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) = usage_error(&[
        "rescore",
        dir.path().to_str().expect("utf8"),
        "--mode",
        "lmeval",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown mode `lmeval`"), "{err}");
    // Checked while parsing (clap's wording), before the run directory
    // (empty here, so not a run) is read.
    assert!(err.contains("invalid value 'lmeval' for '--mode"), "{err}");
    assert!(!err.contains("run.json"), "{err}");
    for m in modes {
        assert!(err.contains(m), "`{m}` not listed: {err}");
    }
}

#[test]
fn eval_api_typo_is_a_usage_error_listing_the_apis() {
    assert_lists(
        &[
            "eval",
            "--model",
            "m",
            "--api-url",
            "http://127.0.0.1:9/v1",
            "--datasets",
            "gsm8k",
            "--api",
            "complete",
        ],
        "complete",
        &["chat", "completions"],
    );
}
