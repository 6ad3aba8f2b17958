//! `bench eval` with no server: `--model` names a model that bench fetches
//! from the (fake) hub and runs in process, through the same request path,
//! journals and reports as a served model.
//!
//! The model is a tiny random-weight llama GGUF written by the realserver
//! script (its answers are gibberish, so the verdicts are wrong answers;
//! what is checked is that every item was asked and answered in process, and
//! that the record says how).

use std::path::Path;

use bench::fake::hub::{FakeHub, FakeHubOptions, fixtures_root};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{bench_bin, text, tiny_gguf};

const REPO: &str = "acme/tiny-gguf";

/// A fake hub root serving the dataset fixtures and `models/<repo>/<file>`.
fn hub_root(model: &Path, file_name: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        fixtures_root().join("datasets"),
        root.path().join("datasets"),
    )
    .unwrap();
    let dir = root.path().join("models").join(REPO);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(model, dir.join(file_name)).unwrap();
    root
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_without_api_url_runs_a_hub_model_in_process() {
    let test = "eval_without_api_url_runs_a_hub_model_in_process";
    let work = tempfile::tempdir().unwrap();
    let Some(model) = tiny_gguf(test, work.path(), "tiny.gguf", &[]) else {
        return;
    };
    let root = hub_root(&model, "tiny.gguf");
    let hub = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = work.path().join("hf");
    let out = work.path().join("run");
    let spec = format!("{REPO}:tiny.gguf");
    let o = bench_bin(
        &[
            "eval",
            "--model",
            &spec,
            "--datasets",
            "gsm8k",
            "arc",
            "--limit",
            "3",
            "--generation-config",
            r#"{"max_tokens": 24}"#,
            "--output",
            out.to_str().unwrap(),
            "--no-progress",
        ],
        &[
            ("HF_ENDPOINT", hub.url()),
            ("HF_HOME", hf_home.display().to_string()),
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );

    // The model went into the shared cache in the hub layout.
    let blobs = hf_home.join("hub/models--acme--tiny-gguf/blobs");
    let sha = hex::encode(Sha256::digest(std::fs::read(&model).unwrap()));
    assert!(
        blobs.join(&sha).is_file(),
        "no blob {sha} in {}",
        blobs.display()
    );

    // The record says the model ran in process, from which file.
    let run = read_json(&out.join("run.json"));
    assert_eq!(run["settings"]["api_base"], "in-process");
    assert_eq!(run["status"], "complete");
    let engine = &run["engine"];
    assert_eq!(engine["engine"], "candle", "{engine}");
    assert_eq!(engine["format"], "gguf");
    assert_eq!(engine["architecture"], "llama");
    assert_eq!(engine["source"], spec.as_str());
    assert_eq!(engine["revision"], "main");
    assert_eq!(engine["commit"].as_str().unwrap().len(), 40);
    let files = engine["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "tiny.gguf" && f["sha256"] == sha.as_str()),
        "{engine}"
    );
    assert!(engine["threads"].as_u64().unwrap() >= 1);
    assert!(
        engine["dtype"].as_str().unwrap().contains("F32"),
        "{engine}"
    );

    // Every item was asked and answered by the model (24 tokens each).
    for (bench, items) in [("gsm8k", 3), ("arc", 6)] {
        let journal = std::fs::read_to_string(out.join(format!("samples/{bench}.jsonl"))).unwrap();
        let lines: Vec<Value> = journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), items, "{bench}: {journal}");
        for l in &lines {
            assert!(l.get("error").is_none_or(Value::is_null), "{bench}: {l}");
            assert_eq!(l["finish_reason"], "length", "{bench}: {l}");
            assert_eq!(l["usage"]["completion_tokens"], 24, "{bench}: {l}");
            assert!(l["usage"]["prompt_tokens"].as_u64().unwrap() > 10, "{l}");
            assert!(!l["response"].as_str().unwrap().is_empty(), "{l}");
        }
    }
    for f in ["report.md", "report.html", "report.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("in-process"), "{report}");

    // A second run from the cache asks the hub nothing about files it has
    // (offline works) and resumes nothing new.
    let o = bench_bin(
        &[
            "eval",
            "--model",
            &spec,
            "--datasets",
            "gsm8k",
            "--limit",
            "3",
            "--generation-config",
            r#"{"max_tokens": 24}"#,
            "--output",
            work.path().join("run2").to_str().unwrap(),
            "--no-progress",
            "--offline",
        ],
        &[
            ("HF_ENDPOINT", hub.url()),
            ("HF_HOME", hf_home.display().to_string()),
        ],
    )
    .await;
    assert!(o.status.success(), "offline rerun: {}", text(&o.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_without_api_url_names_a_model_that_is_neither_a_path_nor_a_hub_id() {
    let work = tempfile::tempdir().unwrap();
    let o = bench_bin(
        &[
            "eval",
            "--model",
            "./no/such/model.gguf",
            "--datasets",
            "gsm8k",
            "--output",
            work.path().join("run").to_str().unwrap(),
        ],
        &[("HF_HUB_OFFLINE", "1")],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("./no/such/model.gguf"), "{err}");
    assert!(err.contains("--api-url"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The engine's request path on the tiny model: stop strings cut the text
/// (and never show part of one), `max_tokens` and the default cap end with
/// `length`, a seed gives one output, and concurrent requests (decoded in
/// one batch) answer exactly what each answers alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_requests_stop_sample_and_batch_like_a_server() {
    use bench::client::{Message, Prompt};
    use bench::engine::Engine;
    use bench::engine::load::{LoadOptions, load_path};
    use serde_json::json;

    let test = "engine_requests_stop_sample_and_batch_like_a_server";
    let work = tempfile::tempdir().unwrap();
    let Some(model) = tiny_gguf(test, work.path(), "tiny.gguf", &["--ctx", "256"]) else {
        return;
    };
    let loaded = load_path(
        "tiny.gguf",
        &model,
        None,
        &LoadOptions {
            max_batch: 4,
            progress: false,
        },
    )
    .unwrap();
    let engine = std::sync::Arc::new(Engine::new(loaded).unwrap());
    let params = |v: Value| v.as_object().unwrap().clone();
    let chat = |q: &str| {
        Prompt::Messages(vec![Message {
            role: "user".into(),
            content: q.into(),
        }])
    };

    // Greedy, 40 tokens.
    let full = engine
        .generate(
            &chat("Tell me a story."),
            &params(json!({"max_tokens": 40})),
        )
        .await
        .unwrap();
    assert_eq!(full.finish_reason.as_deref(), Some("length"));
    assert_eq!(full.usage.unwrap().completion_tokens, Some(40));
    assert!(full.text.len() > 20, "{full:?}");

    // A stop string taken from the middle of that answer ends it there.
    let cut = full.text.len() / 2;
    let mut at = cut;
    while !full.text.is_char_boundary(at) {
        at += 1;
    }
    let stop: String = full.text[at..].chars().take(3).collect();
    let first = full.text.find(&stop).unwrap();
    let stopped = engine
        .generate(
            &chat("Tell me a story."),
            &params(json!({"max_tokens": 40, "stop": [stop]})),
        )
        .await
        .unwrap();
    assert_eq!(stopped.finish_reason.as_deref(), Some("stop"));
    assert_eq!(stopped.text, full.text[..first]);
    assert!(stopped.usage.unwrap().completion_tokens.unwrap() < 40);

    // No max_tokens: the context (256) bounds the answer.
    let open = engine
        .generate(&Prompt::Text("Once upon a time".into()), &params(json!({})))
        .await
        .unwrap();
    let u = open.usage.unwrap();
    assert_eq!(open.finish_reason.as_deref(), Some("length"));
    assert_eq!(u.prompt_tokens.unwrap() + u.completion_tokens.unwrap(), 256);

    // One seed, one output; sampling differs from greedy somewhere.
    let sampled = params(json!({"max_tokens": 30, "temperature": 1.0, "seed": 7}));
    let a = engine.generate(&chat("Hi"), &sampled).await.unwrap();
    let b = engine.generate(&chat("Hi"), &sampled).await.unwrap();
    assert_eq!(a.text, b.text);

    // Eight concurrent requests (batch 4) answer what each answers alone.
    let prompts: Vec<String> = (0..8)
        .map(|i| format!("Question {i}: what is {i} + {i}?"))
        .collect();
    let mut alone = Vec::new();
    for p in &prompts {
        let c = engine
            .generate(&chat(p), &params(json!({"max_tokens": 24})))
            .await
            .unwrap();
        alone.push(c.text);
    }
    let together = futures::future::join_all(prompts.iter().map(|p| {
        let engine = engine.clone();
        let p = p.clone();
        async move {
            engine
                .generate(&chat(&p), &params(json!({"max_tokens": 24})))
                .await
                .unwrap()
                .text
        }
    }))
    .await;
    assert_eq!(together, alone);

    // Bad requests are refused by name, before any work.
    for (v, key) in [
        (json!({"max_tokens": 100000}), "context"),
        (json!({"presence_penalty": 1}), "presence_penalty"),
    ] {
        let e = engine.generate(&chat("x"), &params(v)).await.unwrap_err();
        assert!(e.message.contains(key), "{e}");
    }
}

/// Issue 14: an empty loglikelihood context is lm-eval's
/// `prefix_token_id` (BOS, else EOS): the engine scores each continuation
/// after that one token, as computed here token by token with the model
/// loaded on its own (the tiny GGUF adds no BOS, so nothing else is
/// there); a continuation starting with that token has it as its context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_empty_loglikelihood_context_is_lm_evals_prefix_token() {
    use bench::engine::Engine;
    use bench::engine::generate::logprob_of;
    use bench::engine::gguf::GgufModel;
    use bench::engine::load::{LoadOptions, load_path};

    let test = "engine_empty_loglikelihood_context_is_lm_evals_prefix_token";
    let work = tempfile::tempdir().unwrap();
    let Some(model) = tiny_gguf(test, work.path(), "tiny.gguf", &["--ctx", "256"]) else {
        return;
    };
    let mut reference = GgufModel::load(&model).unwrap();
    assert!(!reference.meta.add_bos_token);
    let prefix = reference
        .meta
        .bos_token_id
        .expect("the tiny GGUF names a BOS");
    let bos_text = reference.decode(&[prefix]).unwrap();
    let conts = [
        " the cat sat".to_string(),
        "Hello".to_string(),
        format!("{bos_text} and more"),
    ];
    let mut want = Vec::new();
    for c in &conts {
        let mut ids = reference.encode(c).unwrap();
        let mut ctx = vec![prefix];
        if ids.first() == Some(&prefix) {
            ctx = vec![ids.remove(0)];
        }
        reference.clear_kv_cache();
        let mut logits = reference.forward(&ctx, 0).unwrap();
        let mut sum = 0.0f64;
        for (k, &t) in ids.iter().enumerate() {
            sum += logprob_of(&logits, t).unwrap() as f64;
            logits = reference.forward(&[t], ctx.len() + k).unwrap();
        }
        want.push((sum, ids.len()));
    }
    // The third continuation starts with the BOS token itself.
    assert_eq!(want[2].1 + 1, reference.encode(&conts[2]).unwrap().len());
    let loaded = load_path(
        "tiny.gguf",
        &model,
        None,
        &LoadOptions {
            max_batch: 4,
            progress: false,
        },
    )
    .unwrap();
    let engine = Engine::new(loaded).unwrap();
    let got = engine.loglikelihoods("", &conts).await.unwrap();
    for ((g, (w, n)), c) in got.iter().zip(&want).zip(&conts) {
        assert_eq!(g.tokens, *n, "{c:?}");
        assert!(
            (g.logprob - w).abs() < 1e-3,
            "{c:?}: engine {} vs {w}",
            g.logprob
        );
    }
}
