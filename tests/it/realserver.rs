//! A short eval against real llama.cpp servers (a tiny random-weight model
//! that answers gibberish): the point is the real protocol — its SSE quirks,
//! errors and usage. `.ci/run` starts the servers and sets
//! `BENCH_REALSERVER_URL` (llama-cpp-python), `BENCH_REALSERVER_BOS_URL`
//! (llama-cpp-python serving the same model made to add BOS,
//! `REALSERVER_BOS_MODEL`) and `BENCH_REALSERVER_NATIVE_URL` (llama-server).
//! Without them these tests say loudly that they were skipped.

use bench::record::{Outcome, RunDir};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{config, start_hub};

/// The URL in `var`, or a SKIPPED line (a failure when
/// `BENCH_REQUIRE_REALSERVER` is set, as in `.ci/run`).
fn server_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            crate::support::skip(
                test,
                &format!("real server not configured ({var} unset; .ci/run sets it up)"),
                "BENCH_REQUIRE_REALSERVER",
            );
            None
        }
    }
}

async fn short_eval(url: &str, stream: bool) {
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let mut cfg = config(
        url,
        &hub.url(),
        &tmp.path().join("cache"),
        &out_dir,
        &["gsm8k", "arc"],
    );
    cfg.model = "tiny".into();
    cfg.limit = Some(bench::config::Limit::Count(2));
    cfg.concurrency = 2;
    cfg.client.stream = stream;
    cfg.client.timeout = std::time::Duration::from_secs(60);
    // The tiny model never stops by itself: bound the answer length.
    cfg.generation.insert("max_tokens".into(), json!(24));
    let out = run(cfg).await;
    let d = &out.report;
    assert_eq!(d.manifest.served_models, vec!["tiny".to_string()]);
    for r in d.results.iter().filter(|r| r.primary && r.subset != "all") {
        assert_eq!(r.stats.n, 2, "{r:?}");
        assert_eq!(r.outcomes[&Outcome::Failed], 0, "{r:?}");
    }
    for b in ["gsm8k", "arc"] {
        for rec in RunDir::new(&out_dir).read_journal(b).unwrap() {
            assert!(rec.error.is_none(), "{rec:?}");
            assert!(
                !rec.response.as_deref().unwrap_or("").is_empty(),
                "empty response: {rec:?}"
            );
            assert_eq!(rec.finish_reason.as_deref(), Some("length"), "{rec:?}");
            if stream {
                assert!(rec.ttft_ms.is_some());
            } else {
                let u = rec.usage.expect("non-stream responses carry usage");
                assert_eq!(u.completion_tokens, Some(24));
            }
        }
    }
}

async fn run(cfg: bench::config::EvalConfig) -> bench::eval::EvalOutput {
    bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect("eval against the real server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_llama_cpp_python_server() {
    let Some(url) = server_url("BENCH_REALSERVER_URL", "real_llama_cpp_python_server") else {
        return;
    };
    short_eval(&url, false).await;
    short_eval(&url, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_llama_server_native() {
    let Some(url) = server_url("BENCH_REALSERVER_NATIVE_URL", "real_llama_server_native") else {
        return;
    };
    short_eval(&url, false).await;
    short_eval(&url, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_context_overflow_fails_the_item_only() {
    let Some(url) = server_url(
        "BENCH_REALSERVER_URL",
        "real_server_context_overflow_fails_the_item_only",
    ) else {
        return;
    };
    // A prompt longer than the 2048-token context: a 400 that must fail only
    // this request, at once, with the server's message.
    let client = bench::client::Client::new(bench::client::ClientConfig::new(&url)).unwrap();
    let long = "word ".repeat(6000);
    let prompt = bench::client::Prompt::Messages(vec![bench::client::Message {
        role: "user".into(),
        content: long,
    }]);
    let mut params = serde_json::Map::new();
    params.insert("max_tokens".into(), json!(4));
    let err = client.generate("tiny", &prompt, &params).await.unwrap_err();
    assert_eq!(err.status, Some(400), "{err}");
    assert_eq!(err.attempts, 1);
    assert!(err.message.contains("context"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_servers_in_compat_modes() {
    for var in ["BENCH_REALSERVER_URL", "BENCH_REALSERVER_NATIVE_URL"] {
        let Some(url) = server_url(var, "real_servers_in_compat_modes") else {
            continue;
        };
        for (api, args) in [
            // Plain-text 5-shot prompt over /v1/completions; the assistant
            // prefill of arc_challenge_chat over chat.
            (
                bench::client::ApiKind::Completions,
                r#"{"gsm8k": {"mode": "lm-eval"}, "arc": {"mode": "evalscope"}}"#,
            ),
            (
                bench::client::ApiKind::Chat,
                r#"{"gsm8k": {"mode": "lm-eval-cot"}, "arc": {"mode": "lm-eval"}}"#,
            ),
        ] {
            let hub = start_hub().await;
            let tmp = tempfile::tempdir().unwrap();
            let out_dir = tmp.path().join("run");
            let mut cfg = config(
                &url,
                &hub.url(),
                &tmp.path().join("cache"),
                &out_dir,
                &["gsm8k", "arc"],
            );
            cfg.benchmarks =
                bench::config::plan_benchmarks(&["gsm8k".into(), "arc".into()], Some(args))
                    .unwrap();
            cfg.model = "tiny".into();
            cfg.limit = Some(bench::config::Limit::Count(1));
            cfg.client.api = api;
            cfg.generation.insert("max_tokens".into(), json!(16));
            let out = run(cfg).await;
            for r in out.report.results.iter().filter(|r| r.primary) {
                assert_eq!(r.outcomes[&Outcome::Failed], 0, "{var} {args}: {r:?}");
            }
            for b in ["gsm8k", "arc"] {
                for rec in RunDir::new(&out_dir).read_journal(b).unwrap() {
                    assert!(rec.error.is_none(), "{var} {args}: {rec:?}");
                }
            }
        }
    }
}

/// A short perf sweep against each real server: the real SSE framing
/// (Python-spaced JSON, keep-alive comments, usage or no usage), the real
/// tokenizer count, and llama-server's own `/metrics` beside ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_servers_perf_sweep() {
    use bench::perf::driver::{PerfConfig, WorkItem, run_perf};
    use bench::perf::run::{Load, Stop};
    for var in ["BENCH_REALSERVER_URL", "BENCH_REALSERVER_NATIVE_URL"] {
        let Some(url) = server_url(var, "real_servers_perf_sweep") else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let mut client = bench::client::ClientConfig::new(&url);
        client.stream = true;
        client.timeout = std::time::Duration::from_secs(60);
        let cfg = PerfConfig {
            model: "tiny".into(),
            client,
            levels: vec![
                (Load::Concurrency { concurrency: 1 }, Stop::Count(4)),
                (Load::Concurrency { concurrency: 4 }, Stop::Count(8)),
                (
                    Load::Rate {
                        rate: 20.0,
                        burstiness: 1.0,
                        max_concurrency: Some(4),
                    },
                    Stop::Count(8),
                ),
            ],
            prompts: (0..8)
                .map(|i| WorkItem {
                    prompt: bench::client::Prompt::Text(format!(
                        "Tell me about the number {i} and the sea."
                    )),
                    prompt_tokens: None,
                    output_tokens: None,
                })
                .collect(),
            dataset_label: "test".into(),
            max_tokens: Some(32),
            min_tokens: None,
            temperature: Some(0.0),
            extra: serde_json::from_str(r#"{"ignore_eos": true}"#).unwrap(),
            warmup: 1,
            seed: 0,
            slo: None,
            output: tmp.path().join("run"),
            count_tokens: None,
            record: bench::perf::record::RecordLevel::Events,
            progress: false,
            print: false,
            command: vec![],
        };
        let out = run_perf(cfg, CancellationToken::new())
            .await
            .expect("perf against the real server");
        for l in &out.summary.levels {
            let s = &l.stats;
            assert_eq!(s.failed, 0, "{var} {}: {:?}", l.label, s.errors);
            assert!(s.ttft.n > 0 && s.ttft.mean > 0.0, "{var} {}", l.label);
            assert!(s.tpot.mean > 0.0 && s.itl.n > 0, "{var} {}", l.label);
            // The tiny model never stops early: 32 tokens each.
            assert_eq!(
                s.total_output_tokens,
                32 * s.succeeded,
                "{var} {}: {:?}",
                l.label,
                s.output_token_source
            );
        }
        if var == "BENCH_REALSERVER_NATIVE_URL" {
            // llama-server streams usage, and with --metrics shows its own view.
            let l = &out.summary.levels[1];
            assert_eq!(l.stats.output_token_source.usage, l.stats.succeeded);
            let srv = l
                .server
                .as_ref()
                .expect("llama-server /metrics scraped (start it with --metrics)");
            assert!(
                srv.deltas
                    .get("llamacpp:tokens_predicted_total")
                    .copied()
                    .unwrap_or(0.0)
                    >= 32.0 * 8.0,
                "{srv:?}"
            );
        } else {
            // llama-cpp-python streams no usage: counted by token chunks.
            assert_eq!(
                out.summary.levels[0].stats.output_token_source.token_events,
                4
            );
        }
    }
}

/// The GGUF the BOS-adding llama-cpp-python server of `.ci/run` serves
/// (`$REALSERVER_BOS_MODEL`, made by `scripts/realserver/gguf_add_bos.py`).
fn served_bos_gguf() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(std::env::var_os("REALSERVER_BOS_MODEL")?);
    path.is_file().then_some(path)
}

/// Issue 14: llama-cpp-python echoes the prompt with its log-probabilities;
/// the per-choice scores bench reads from it (text prompts, continuation by
/// `text_offset`) equal the in-process engine's from the same GGUF within
/// 1e-3, and so do the verdicts. The model adds BOS: without it
/// llama-cpp-python's echo is one token late (see
/// `real_llama_cpp_python_echo_one_token_late_without_bos_is_refused`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loglikelihood_over_llama_cpp_python_equals_the_engine() {
    let test = "loglikelihood_over_llama_cpp_python_equals_the_engine";
    let Some(url) = server_url("BENCH_REALSERVER_BOS_URL", test) else {
        return;
    };
    let Some(gguf) = served_bos_gguf() else {
        crate::support::skip(
            test,
            "the served GGUF is not found (REALSERVER_BOS_MODEL)",
            "BENCH_REQUIRE_REALSERVER",
        );
        return;
    };
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let args = r#"{"arc_easy": {"mode": "lm-eval-ll"}, "truthfulqa_mc2": {"mode": "lm-eval-ll"}}"#;
    let names = ["arc_easy".to_string(), "truthfulqa_mc2".to_string()];
    let setup = |dir: &str, api: &str| {
        let mut cfg = config(
            api,
            &hub.url(),
            &tmp.path().join("cache"),
            &tmp.path().join(dir),
            &["arc_easy", "truthfulqa_mc2"],
        );
        cfg.benchmarks = bench::config::plan_benchmarks(&names, Some(args)).unwrap();
        cfg.limit = Some(bench::config::Limit::Count(3));
        cfg.concurrency = 1;
        cfg.client.timeout = std::time::Duration::from_secs(120);
        cfg
    };
    let mut server = setup("server", &url);
    server.model = "tiny".into();
    run(server).await;
    let mut local = setup("local", "http://127.0.0.1:9/v1");
    local.in_process = true;
    local.model = gguf.display().to_string();
    run(local).await;
    let mut compared = 0;
    for b in &names {
        let a = RunDir::new(tmp.path().join("server"))
            .read_journal(b)
            .unwrap();
        let e = RunDir::new(tmp.path().join("local"))
            .read_journal(b)
            .unwrap();
        assert_eq!(a.len(), 3, "{b}");
        for ra in &a {
            let re = e
                .iter()
                .find(|r| r.key() == ra.key())
                .expect("the same item in process");
            let (la, le) = (
                ra.loglikelihood.as_ref().unwrap(),
                re.loglikelihood.as_ref().unwrap(),
            );
            assert_eq!(la.boundary, bench::record::Boundary::TextOffset);
            assert_eq!(le.boundary, bench::record::Boundary::Engine);
            assert_eq!(la.context, le.context);
            for (ca, ce) in la.choices.iter().zip(&le.choices) {
                assert_eq!(ca.continuation, ce.continuation);
                assert_eq!(ca.tokens, ce.tokens, "{b} {}: {ca:?} vs {ce:?}", ra.label());
                assert!(
                    (ca.logprob - ce.logprob).abs() < 1e-3,
                    "{b} {}: server {ca:?} vs engine {ce:?}",
                    ra.label()
                );
                compared += 1;
            }
            assert_eq!(ra.verdicts, re.verdicts, "{b} {}", ra.label());
        }
    }
    assert!(compared >= 12);
}

/// Regression (issue 14): llama-cpp-python 0.3's `_create_completion`
/// pairs `logits_to_logprobs(self._scores)[0:]` with the prompt tokens
/// after dropping a leading BOS, so for a model that adds no BOS (the tiny
/// GGUF: `tokenizer.ggml.add_bos_token` false) each prompt token is scored
/// by the logits row after it: ARC-Easy test#0 read -221.36 where the
/// engine gives -242.38. bench finds this at the first item and stops with
/// one error instead of journaling wrong scores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_llama_cpp_python_echo_one_token_late_without_bos_is_refused() {
    let test = "real_llama_cpp_python_echo_one_token_late_without_bos_is_refused";
    let Some(url) = server_url("BENCH_REALSERVER_URL", test) else {
        return;
    };
    let hub = start_hub().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &url,
        &hub.url(),
        &tmp.path().join("cache"),
        &tmp.path().join("run"),
        &["arc_easy"],
    );
    cfg.benchmarks = bench::config::plan_benchmarks(
        &["arc_easy".into()],
        Some(r#"{"arc_easy": {"mode": "lm-eval-ll"}}"#),
    )
    .unwrap();
    cfg.model = "tiny".into();
    cfg.limit = Some(bench::config::Limit::Count(2));
    cfg.concurrency = 1;
    cfg.client.timeout = std::time::Duration::from_secs(120);
    let e = bench::eval::run_eval(cfg, CancellationToken::new())
        .await
        .expect_err("a one-token-late echo is refused")
        .to_string();
    assert!(
        e.contains("echoes prompt log-probabilities shifted by one token"),
        "{e}"
    );
    assert!(
        RunDir::new(tmp.path().join("run"))
            .read_journal("arc_easy")
            .unwrap_or_default()
            .is_empty()
    );
}
