//! `bench serve` on a tiny random GGUF: the OpenAI shapes (plain and
//! streamed), errors, `/metrics`, disconnects, and `bench perf` against it.

use std::time::Duration;

use bench::client::{ClientConfig, Prompt};
use bench::hub::HubConfig;
use bench::perf::driver::{PerfConfig, WorkItem, run_perf};
use bench::perf::run::{Load, Stop};
use bench::serve::{ServeConfig, Server};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A running server and what stops it.
struct Running {
    base: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

async fn start(test: &str, max_batch: usize, gguf_args: &[&str]) -> Option<Running> {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::support::tiny_gguf(test, dir.path(), "tiny.gguf", gguf_args)?;
    let mut hub = HubConfig::from_env();
    hub.offline = true;
    let cfg = ServeConfig {
        model: file.to_string_lossy().into_owned(),
        host: "127.0.0.1".into(),
        port: 0,
        served_model_name: Some("tiny".into()),
        max_batch,
        hub,
        progress: false,
    };
    let server = Server::bind(&cfg).await.unwrap();
    let addr = server.local_addr().unwrap();
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let task = tokio::spawn(async move {
        server
            .run(async move { s2.cancelled().await })
            .await
            .unwrap();
    });
    Some(Running {
        base: format!("http://{addr}"),
        stop,
        task,
        _dir: dir,
    })
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

/// The `data:` payloads of an SSE body, `[DONE]` included.
async fn post_stream(base: &str, path: &str, body: &Value) -> Vec<String> {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = r.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_string()
        })
        .collect()
}

fn assert_error(status: u16, v: &Value, want: u16, mentions: &str) {
    assert_eq!(status, want, "{v}");
    let e = &v["error"];
    let msg = e["message"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(msg.contains(mentions), "{msg:?} lacks {mentions:?}");
    assert!(
        e["type"].is_string() && e.get("param").is_some() && e["code"] == json!(want),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shapes_streaming_and_errors() {
    let Some(srv) = start("serve_shapes_streaming_and_errors", 4, &[]).await else {
        return;
    };
    let base = srv.base.clone();
    let http = reqwest::Client::new();

    let models: Value = http
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny");
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(models["data"][0]["max_model_len"], 2048);
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Chat, plain.
    let chat = json!({"model": "tiny", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 12});
    let (st, v) = post(&base, "/v1/chat/completions", &chat).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "tiny");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 0);
    let c = &v["choices"][0];
    assert_eq!(c["index"], 0);
    assert_eq!(c["message"]["role"], "assistant");
    assert!(c["logprobs"].is_null());
    assert_eq!(c["finish_reason"], "length", "max_tokens ends it: {v}");
    let chat_text = c["message"]["content"].as_str().unwrap().to_string();
    assert!(!chat_text.is_empty());
    assert_eq!(v["usage"]["completion_tokens"], 12);
    let p = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(p > 0);
    assert_eq!(v["usage"]["total_tokens"], p + 12);

    // Chat, streamed: same text, role first, no usage unless asked.
    let mut body = chat.clone();
    body["stream"] = json!(true);
    let events = post_stream(&base, "/v1/chat/completions", &body).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut streamed = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c.get("usage").is_none(), "usage not asked for: {c}");
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(t);
        }
    }
    assert_eq!(streamed, chat_text);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );

    // Completions, plain and streamed with the usage chunk.
    let comp = json!({"model": "tiny", "prompt": "The capital of", "max_tokens": 10});
    let (st, v) = post(&base, "/v1/completions", &comp).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(v["usage"]["completion_tokens"], 10);
    let mut body = comp.clone();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = post_stream(&base, "/v1/completions", &body).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], v["usage"]);
    let streamed: String = chunks[..chunks.len() - 1]
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(streamed, text);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );

    // The lm-eval local-completions shape: a list of one prompt, stop list,
    // seed, no model check issues; and token ids.
    let (st, v) = post(
        &base,
        "/v1/completions",
        &json!({"model": "tiny", "prompt": ["The capital of"], "max_tokens": 10, "temperature": 0.0, "stop": ["\n\n"], "seed": 1234}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let lm_text = v["choices"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(lm_text), "{lm_text:?} vs {text:?}");
    let (st, v) = post(
        &base,
        "/v1/completions",
        &json!({"prompt": [5, 6, 7], "max_tokens": 3}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 3);

    // A stop string cuts the text before it, finish_reason stop.
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= 4 {
        let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
        let want = &text[..text.find(&stop).unwrap()];
        let mut body = comp.clone();
        body["stop"] = json!([stop]);
        let (st, v) = post(&base, "/v1/completions", &body).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["choices"][0]["text"], want);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }

    // Errors.
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.unwrap(), 400, "JSON");
    let (st, v) = post(&base, "/v1/chat/completions", &json!({"model": "tiny"})).await;
    assert_error(st, &v, 400, "messages");
    let (st, v) = post(
        &base,
        "/v1/chat/completions",
        &json!({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_error(st, &v, 404, "tiny");
    let (st, v) = post(&base, "/v1/completions", &json!({"prompt": "x", "n": 2})).await;
    assert_error(st, &v, 400, "`n`");
    let (st, v) = post(
        &base,
        "/v1/completions",
        &json!({"prompt": "x", "temperature": -1}),
    )
    .await;
    assert_error(st, &v, 400, "temperature");
    let (st, v) = post(
        &base,
        "/v1/completions",
        &json!({"prompt": "x", "max_tokens": 5000}),
    )
    .await;
    assert_error(st, &v, 400, "context");
    let long = "word ".repeat(3000);
    let (st, v) = post(
        &base,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": long}], "stream": true}),
    )
    .await;
    assert_error(st, &v, 400, "context");
    let r = http.get(format!("{base}/v1/nothing")).send().await.unwrap();
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.unwrap(), 404, "route");
    let r = http
        .get(format!("{base}/v1/completions"))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.unwrap(), 405, "method");

    // /metrics: vLLM's names, counters that moved, parseable by perf.
    let m = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = bench::perf::server_metrics::parse(&m);
    assert!(sample["vllm:request_success_total"] >= 6.0, "{m}");
    assert!(sample["vllm:generation_tokens_total"] >= 12.0 + 12.0 + 10.0 + 10.0);
    assert!(sample["vllm:time_to_first_token_seconds_count"] >= 6.0);
    assert!(sample["vllm:e2e_request_latency_seconds_sum"] > 0.0);
    // (A request cut by a stop string leaves its slot at the engine's next
    // step, so the running gauge may still count it for a moment.)
    assert!(sample["vllm:num_requests_running"] <= 1.0, "{m}");
    for name in [
        "vllm:time_per_output_token_seconds_count",
        "vllm:inter_token_latency_seconds_count",
        "vllm:request_queue_time_seconds_count",
        "vllm:prompt_tokens_total",
        "vllm:num_requests_waiting",
    ] {
        assert!(sample.contains_key(name), "{name} missing: {m}");
    }
    assert!(
        m.contains("vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"}")
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_disconnect_frees_the_slot_and_concurrent_requests_finish() {
    let test = "serve_disconnect_frees_the_slot_and_concurrent_requests_finish";
    let Some(srv) = start(test, 1, &["--ctx", "8192"]).await else {
        return;
    };
    let base = srv.base.clone();
    let http = reqwest::Client::new();
    // One slot: a long streamed request, abandoned after its first chunk.
    let mut r = http
        .post(format!("{base}/v1/completions"))
        .json(&json!({"prompt": "once", "max_tokens": 8000, "stream": true}))
        .send()
        .await
        .unwrap();
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    // The slot comes free long before 8000 tokens could be generated.
    let freed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let m = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let s = bench::perf::server_metrics::parse(&m);
            if s["vllm:num_requests_running"] == 0.0 && s["vllm:num_requests_waiting"] == 0.0 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the abandoned request's slot is freed");
    assert_eq!(
        freed["vllm:request_success_total"], 0.0,
        "abandoned is no success"
    );
    // Then several at once through the one slot: all finish.
    let reqs = (0..4).map(|i| {
        let base = base.clone();
        async move {
            post(
                &base,
                "/v1/chat/completions",
                &json!({"messages": [{"role": "user", "content": format!("q{i}")}], "max_tokens": 6}),
            )
            .await
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(reqs))
        .await
        .expect("requests finish");
    for (st, v) in out {
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 6);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_under_bench_perf() {
    let Some(srv) = start("serve_under_bench_perf", 2, &[]).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("perf");
    let mut client = ClientConfig::new(format!("{}/v1", srv.base));
    client.stream = true;
    client.timeout = Duration::from_secs(60);
    let cfg = PerfConfig {
        model: "tiny".into(),
        client,
        levels: vec![(Load::Concurrency { concurrency: 2 }, Stop::Count(8))],
        prompts: (0..8)
            .map(|i| WorkItem {
                prompt: Prompt::Text(format!("hello number {i}")),
                prompt_tokens: None,
                output_tokens: None,
            })
            .collect(),
        dataset_label: "test".into(),
        max_tokens: Some(16),
        min_tokens: None,
        temperature: None,
        extra: Default::default(),
        warmup: 0,
        seed: 1,
        slo: None,
        output: out.clone(),
        count_tokens: None,
        record: bench::perf::record::RecordLevel::Events,
        progress: false,
        print: false,
        command: vec![],
    };
    let res = run_perf(cfg, CancellationToken::new()).await.unwrap();
    let l = &res.summary.levels[0];
    let s = &l.stats;
    assert_eq!(
        (s.total, s.succeeded, s.failed),
        (8, 8, 0),
        "{:?}",
        s.errors
    );
    assert_eq!(s.total_output_tokens, 8 * 16);
    assert_eq!(s.ttft.n, 8);
    assert!(s.ttft.mean > 0.0);
    // The server's own view, scraped from our /metrics as from vLLM's.
    let server = l.server.as_ref().expect("/metrics scraped");
    assert_eq!(server.deltas["vllm:request_success_total"], 8.0);
    assert_eq!(server.deltas["vllm:generation_tokens_total"], 128.0);
    assert!(server.derived.contains_key("vllm mean TTFT ms (server)"));
    srv.stop().await;
}
