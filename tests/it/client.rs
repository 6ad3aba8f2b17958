//! The OpenAI client against the fake server: round trips on both APIs,
//! stream and not, reasoning splitting, the retry policy per failure kind,
//! timeouts, auth and key hygiene, model listing and URL forms.
//!
//! Timing checks use wide bounds (a shared 2-core machine): they tell "waited
//! for Retry-After" from "did not wait", nothing finer.

use std::time::{Duration, Instant};

use bench::client::{
    ApiKind, Client, ClientConfig, Completion, ErrorKind, Message, Prompt, RequestError,
};
use bench::fake::openai::{FakeOpenAi, FakeOptions, Fault, Reply};
use serde_json::{Map, Value, json};

const KEY: &str = "sk-test-very-secret-key";

/// Fast retries so failure tests take milliseconds, and a timeout that
/// only matters when a test sets a shorter one.
fn config(url: &str, stream: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new(url);
    cfg.stream = stream;
    cfg.timeout = Duration::from_secs(20);
    cfg.retry_base = Duration::from_millis(5);
    cfg.retry_max = Duration::from_millis(50);
    cfg
}

fn client(cfg: ClientConfig) -> Client {
    Client::new(cfg).expect("valid client config")
}

fn chat(text: &str) -> Prompt {
    Prompt::Messages(vec![Message {
        role: "user".into(),
        content: text.into(),
    }])
}

fn text_prompt(text: &str) -> Prompt {
    Prompt::Text(text.into())
}

async fn ask(client: &Client, prompt: &Prompt) -> Result<Completion, RequestError> {
    client.generate("fake-model", prompt, &Map::new()).await
}

async fn fake_failing(n: usize, fault: Fault) -> FakeOpenAi {
    FakeOpenAi::start(FakeOptions {
        fail_first_n: n,
        fail_with: fault,
        ..FakeOptions::default()
    })
    .await
}

#[tokio::test]
async fn round_trips_on_both_apis_stream_and_not() {
    let fake = FakeOpenAi::start(FakeOptions::default()).await;
    for stream in [false, true] {
        for prompt in [chat("What is 6*7?"), text_prompt("Q: What is 6*7?\nA:")] {
            let c = ask(&client(config(&fake.url(), stream)), &prompt)
                .await
                .unwrap();
            let what = format!("stream={stream} {prompt:?}");
            assert_eq!(c.text, "The answer is 42.", "{what}");
            assert_eq!(c.reasoning, None, "{what}");
            assert_eq!(c.finish_reason.as_deref(), Some("stop"), "{what}");
            assert_eq!(c.attempts, 1);
            // The fake counts one token per word.
            let usage = c.usage.expect("usage");
            assert_eq!(
                (usage.completion_tokens, usage.total_tokens.is_some()),
                (Some(4), true)
            );
            assert!(c.latency_ms > 0.0);
            assert_eq!(c.ttft_ms.is_some(), stream, "{what}");
            if let Some(ttft) = c.ttft_ms {
                assert!(ttft <= c.latency_ms);
            }
        }
    }
    let reqs = fake.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/chat/completions",
            "/v1/completions"
        ]
    );
    assert_eq!(
        reqs[0].body["messages"],
        json!([{"role": "user", "content": "What is 6*7?"}])
    );
    assert_eq!(reqs[1].body["prompt"], "Q: What is 6*7?\nA:");
    assert!(reqs[0].body.get("stream").is_none());
    assert_eq!(reqs[2].body["stream"], true);
    assert_eq!(
        reqs[2].body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn params_are_merged_into_the_body() {
    let fake = FakeOpenAi::start(FakeOptions::default()).await;
    let params: Map<String, Value> = serde_json::from_value(json!({
        "temperature": 0.0, "max_tokens": 256, "stop": ["Question:"], "seed": 1234,
        "chat_template_kwargs": {"enable_thinking": false},
    }))
    .unwrap();
    client(config(&fake.url(), false))
        .generate("m", &chat("hi"), &params)
        .await
        .unwrap();
    let body = &fake.requests()[0].body;
    assert_eq!(body["model"], "m");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["stop"], json!(["Question:"]));
    assert_eq!(body["seed"], 1234);
    assert_eq!(body["chat_template_kwargs"]["enable_thinking"], false);
}

#[tokio::test]
async fn stream_without_usage_support_still_completes() {
    // llama-cpp-python ignores include_usage.
    let fake = FakeOpenAi::start(FakeOptions {
        send_usage: false,
        ..FakeOptions::default()
    })
    .await;
    let c = ask(&client(config(&fake.url(), true)), &chat("q"))
        .await
        .unwrap();
    assert_eq!((c.text.as_str(), c.usage), ("The answer is 42.", None));
}

#[tokio::test]
async fn reasoning_content_is_kept_apart() {
    let fake = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("The answer is 42.").with_reasoning("6 times 7 is 42.")
    }))
    .await;
    for stream in [false, true] {
        let c = ask(&client(config(&fake.url(), stream)), &chat("q"))
            .await
            .unwrap();
        assert_eq!(c.text, "The answer is 42.", "stream={stream}");
        assert_eq!(
            c.reasoning.as_deref(),
            Some("6 times 7 is 42."),
            "stream={stream}"
        );
    }
}

#[tokio::test]
async fn think_blocks_in_content_are_split() {
    let fake = FakeOpenAi::start(FakeOptions {
        think_in_content: true,
        ..FakeOptions::responding(|_| Reply::text("The answer is 42.").with_reasoning("6 times 7."))
    })
    .await;
    for stream in [false, true] {
        // Completions always inline reasoning as <think>.
        for prompt in [chat("q"), text_prompt("q")] {
            let c = ask(&client(config(&fake.url(), stream)), &prompt)
                .await
                .unwrap();
            assert_eq!(c.text, "The answer is 42.", "stream={stream} {prompt:?}");
            assert_eq!(c.reasoning.as_deref(), Some("6 times 7."));
        }
    }
}

#[tokio::test]
async fn truncated_thinking_leaves_an_empty_answer() {
    let fake = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("<think>Let me compute 6 times").with_finish_reason("length")
    }))
    .await;
    for stream in [false, true] {
        let c = ask(&client(config(&fake.url(), stream)), &chat("q"))
            .await
            .unwrap();
        assert_eq!(c.text, "");
        assert_eq!(c.reasoning.as_deref(), Some("Let me compute 6 times"));
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
    }
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after() {
    let fake = fake_failing(1, Fault::RetryAfter(429, 1)).await;
    let mut cfg = config(&fake.url(), false);
    cfg.retry_max = Duration::from_secs(60);
    let start = Instant::now();
    let c = ask(&client(cfg), &chat("q")).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(c.attempts, 2);
    // Backoff alone would be ~5 ms; Retry-After asks for 1 s. The upper
    // bound only rules out waiting for the 60 s cap, with room for a
    // loaded machine.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
}

#[tokio::test]
async fn retry_after_is_capped_by_retry_max() {
    let fake = fake_failing(1, Fault::RetryAfter(503, 120)).await;
    let start = Instant::now();
    let c = ask(&client(config(&fake.url(), false)), &chat("q"))
        .await
        .unwrap();
    assert_eq!(c.attempts, 2);
    // Capped at 50 ms instead of the asked 120 s; 30 s is room for load.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = fake_failing(2, Fault::Status(500)).await;
    let c = ask(&client(config(&fake.url(), false)), &chat("q"))
        .await
        .unwrap();
    assert_eq!((c.attempts, c.text.as_str()), (3, "The answer is 42."));
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn retries_give_up_with_the_last_error() {
    let fake = fake_failing(usize::MAX, Fault::Status(503)).await;
    let mut cfg = config(&fake.url(), false);
    cfg.max_retries = 2;
    let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status, err.attempts),
        (ErrorKind::Server, Some(503), 3)
    );
    assert!(err.message.contains("fake failure: HTTP 503"), "{err}");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_server_message() {
    let message =
        "This model's maximum context length is 2048 tokens, however you requested 3605 tokens";
    let fake = fake_failing(usize::MAX, Fault::StatusMessage(400, message.into())).await;
    for stream in [false, true] {
        let err = ask(&client(config(&fake.url(), stream)), &chat("q"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.status, err.attempts),
            (ErrorKind::Client, Some(400), 1)
        );
        assert_eq!(err.message, message);
        assert!(err.to_string().contains("maximum context length"), "{err}");
    }
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn error_body_with_status_200_is_retried() {
    for stream in [false, true] {
        let fake = fake_failing(2, Fault::ErrorBody).await;
        let c = ask(&client(config(&fake.url(), stream)), &chat("q"))
            .await
            .unwrap();
        assert_eq!(
            (c.attempts, c.text.as_str()),
            (3, "The answer is 42."),
            "stream={stream}"
        );
    }
    let fake = fake_failing(usize::MAX, Fault::ErrorBody).await;
    let mut cfg = config(&fake.url(), true);
    cfg.max_retries = 1;
    let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
    assert_eq!((err.kind, err.attempts), (ErrorKind::ErrorBody, 2));
    assert!(err.message.contains("the engine failed"), "{err}");
}

#[tokio::test]
async fn garbage_is_a_decode_error_after_retries() {
    let fake = fake_failing(usize::MAX, Fault::Garbage).await;
    for stream in [false, true] {
        let mut cfg = config(&fake.url(), stream);
        cfg.max_retries = 2;
        let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
        assert_eq!(
            (err.kind, err.status, err.attempts),
            (ErrorKind::Decode, None, 3),
            "{err}"
        );
    }
    assert_eq!(fake.request_count(), 6);
}

#[tokio::test]
async fn hang_times_out_per_attempt() {
    let fake = fake_failing(usize::MAX, Fault::Hang).await;
    let mut cfg = config(&fake.url(), true);
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 1;
    let start = Instant::now();
    let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
    let took = start.elapsed();
    assert_eq!((err.kind, err.attempts), (ErrorKind::Timeout, 2), "{err}");
    // Two attempts of 200 ms plus a short backoff; the upper bound only
    // says the hanging server did not hold the client (room for load).
    assert!(took >= Duration::from_millis(380), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn timeout_covers_reading_the_stream() {
    // Headers come at once, chunks every 100 ms: 8 chunks cannot fit in
    // a 250 ms attempt.
    let fake = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("one two three four").with_chunk_delay(Duration::from_millis(100))
    }))
    .await;
    let mut cfg = config(&fake.url(), true);
    cfg.timeout = Duration::from_millis(250);
    cfg.max_retries = 0;
    let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn cut_stream_is_an_error_and_is_retried() {
    let fake = fake_failing(usize::MAX, Fault::CutStream).await;
    for stream in [true, false] {
        let mut cfg = config(&fake.url(), stream);
        cfg.max_retries = 1;
        let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
        assert_eq!(
            (err.kind, err.attempts),
            (ErrorKind::Decode, 2),
            "stream={stream}: {err}"
        );
        if stream {
            assert!(err.message.contains("ended early"), "{err}");
        }
    }
    let fake = fake_failing(1, Fault::CutStream).await;
    let c = ask(&client(config(&fake.url(), true)), &chat("q"))
        .await
        .unwrap();
    assert_eq!((c.attempts, c.text.as_str()), (2, "The answer is 42."));
}

#[tokio::test]
async fn ttft_and_latency_follow_the_server_delays() {
    let fake = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("a b c d")
            .with_delay(Duration::from_millis(100))
            .with_chunk_delay(Duration::from_millis(30))
    }))
    .await;
    let c = ask(&client(config(&fake.url(), true)), &chat("q"))
        .await
        .unwrap();
    let ttft = c.ttft_ms.unwrap();
    assert_eq!(c.text, "a b c d");
    assert!(ttft >= 95.0, "ttft {ttft}");
    // Role chunk, then "a": the first content chunk is one delay in; then
    // " b", " c", " d", finish, usage and [DONE] follow.
    assert!(
        c.latency_ms - ttft >= 100.0,
        "ttft {ttft} latency {}",
        c.latency_ms
    );
}

#[tokio::test]
async fn api_key_is_sent_and_never_shown() {
    let fake = FakeOpenAi::start(FakeOptions {
        api_key: Some(KEY.into()),
        ..FakeOptions::default()
    })
    .await;
    let mut cfg = config(&fake.url(), false);
    cfg.api_key = Some(KEY.into());
    assert!(!format!("{cfg:?}").contains(KEY));
    let keyed = client(cfg.clone());
    assert!(!format!("{keyed:?}").contains(KEY));
    ask(&keyed, &chat("q")).await.unwrap();
    let req = &fake.requests()[0];
    assert!(req.had_auth_header);
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );

    // Without the key: 401, not retried.
    let err = ask(&client(config(&fake.url(), false)), &chat("q"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.status, err.attempts),
        (ErrorKind::Client, Some(401), 1)
    );
    assert!(!fake.requests()[1].had_auth_header);

    // A server that echoes the key in its error: scrubbed.
    let echo = fake_failing(
        usize::MAX,
        Fault::StatusMessage(401, format!("Incorrect API key provided: {KEY}")),
    )
    .await;
    cfg.api_url = echo.url();
    let err = ask(&client(cfg), &chat("q")).await.unwrap_err();
    for shown in [err.to_string(), format!("{err:?}"), err.message.clone()] {
        assert!(!shown.contains(KEY), "{shown}");
    }
    assert!(err.message.contains("Incorrect API key provided"));
}

#[tokio::test]
async fn empty_api_key_sends_no_header() {
    let fake = FakeOpenAi::start(FakeOptions::default()).await;
    let mut cfg = config(&fake.url(), false);
    cfg.api_key = Some(String::new());
    ask(&client(cfg), &chat("q")).await.unwrap();
    assert_eq!(fake.requests()[0].authorization, None);
}

#[tokio::test]
async fn lists_models() {
    let fake = FakeOpenAi::start(FakeOptions {
        models: vec!["alpha".into(), "beta".into()],
        ..FakeOptions::default()
    })
    .await;
    let models = client(config(&fake.url(), false))
        .list_models()
        .await
        .unwrap();
    assert_eq!(models, ["alpha", "beta"]);
    assert_eq!(fake.requests()[0].path, "/v1/models");
}

#[tokio::test]
async fn list_models_on_a_dead_port_fails_fast() {
    // Bind and release a port so nothing listens on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut cfg = config(&format!("http://127.0.0.1:{port}/v1"), false);
    cfg.timeout = Duration::from_secs(600);
    let start = Instant::now();
    let err = client(cfg).list_models().await.unwrap_err();
    // A refused connection, not the 600 s timeout (room for load).
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!((err.kind, err.attempts), (ErrorKind::Connect, 1), "{err}");
}

#[tokio::test]
async fn list_models_reports_http_errors() {
    let fake = FakeOpenAi::start(FakeOptions {
        api_key: Some(KEY.into()),
        ..FakeOptions::default()
    })
    .await;
    let err = client(config(&fake.url(), false))
        .list_models()
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Client, Some(401)));
}

#[tokio::test]
async fn base_url_and_full_endpoints_all_work() {
    let fake = FakeOpenAi::start(FakeOptions::default()).await;
    let base = fake.url();
    for url in [
        fake.origin(),
        base.clone(),
        format!("{base}/"),
        format!("{base}/chat/completions"),
        format!("{base}/completions"),
    ] {
        let c = client(config(&url, false));
        assert_eq!(c.endpoints().base, base, "{url}");
        assert_eq!(
            ask(&c, &chat("q")).await.unwrap().text,
            "The answer is 42.",
            "{url}"
        );
        assert_eq!(
            ask(&c, &text_prompt("q")).await.unwrap().text,
            "The answer is 42."
        );
        assert_eq!(c.list_models().await.unwrap(), ["fake-model"]);
    }
    let named = client(config(&format!("{base}/completions"), false));
    assert_eq!(named.endpoints().named, Some(ApiKind::Completions));
}

#[tokio::test]
async fn dropping_the_future_cancels_the_request() {
    let fake = fake_failing(usize::MAX, Fault::Hang).await;
    let c = client(config(&fake.url(), true));
    let prompt = chat("q");
    let cut = tokio::time::timeout(Duration::from_millis(200), ask(&c, &prompt)).await;
    assert!(cut.is_err(), "the request should still be hanging");
    assert_eq!(fake.request_count(), 1);
    // The server sees the connection close and drops its handler.
    let start = Instant::now();
    while fake.in_flight() > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test]
async fn concurrent_requests_share_the_client() {
    let fake = FakeOpenAi::start(FakeOptions::responding(|_| {
        Reply::text("The answer is 42.").with_delay(Duration::from_millis(50))
    }))
    .await;
    let c = client(config(&fake.url(), true));
    let prompt = chat("q");
    let results = futures::future::join_all((0..16).map(|_| ask(&c, &prompt))).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|c| c.text == "The answer is 42."))
    );
    assert!(
        (2..=16).contains(&fake.peak_in_flight()),
        "{}",
        fake.peak_in_flight()
    );
}
