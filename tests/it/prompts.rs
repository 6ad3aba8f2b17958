//! Perf prompt sources with the fixture tokenizer (`fixtures/tokenizer/`):
//! exact-length random prompts, seeds, the shared prefix, the file readers
//! and their errors, and tokenizer loading from paths and from a fake hub
//! (online, then offline from the cache), and the `bench perf` flags -> prompts
//! adapter.

use std::path::{Path, PathBuf};

use bench::client::{ApiKind, Message, Prompt};
use bench::fake::hub::{FakeHub, FakeHubOptions};
use bench::hub::{Hub, HubConfig};
use bench::perf::prompts::{
    PromptError, PromptSpec, RandomSpec, RandomVocab, Tokenizer, count_tokens, load_prompts,
    load_tokenizer, load_tokenizer_blocking, random_prompts, random_prompts_with, read_jsonl,
    read_line_by_line, read_sharegpt, workload,
};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizer/tokenizer.json")
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_file(fixture_path()).expect("fixture tokenizer loads")
}

fn spec(min_len: u32, max_len: u32, prefix_len: u32, seed: u64) -> RandomSpec {
    RandomSpec {
        min_len,
        max_len,
        prefix_len,
        seed,
    }
}

fn text(p: &Prompt) -> &str {
    match p {
        Prompt::Text(t) => t,
        Prompt::Messages(_) => panic!("expected text, got messages"),
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write test file");
    path
}

#[test]
fn random_prompts_hit_exact_lengths() {
    let tok = tokenizer();
    let vocab = RandomVocab::new(&tok).expect("vocab");
    for len in [1u32, 2, 7, 128, 1024] {
        let set = random_prompts_with(&tok, &vocab, &spec(len, len, 0, 42), 40).expect("random");
        assert_eq!(set.prompts.len(), 40);
        for p in &set.prompts {
            let t = text(&p.prompt);
            assert_eq!(
                count_tokens(&tok, t).expect("count"),
                u64::from(len),
                "len {len}: {t:?}"
            );
            assert_eq!(p.prompt_tokens, Some(u64::from(len)));
            assert_eq!(p.output_tokens, None);
            assert!(!t.contains('\u{FFFD}'), "mojibake in {t:?}");
            assert!(!t.contains("<|"), "special token text in {t:?}");
        }
        let err = set.length_error.expect("random prompts report the error");
        assert_eq!(err.prompts, 40);
        assert_eq!(err.mismatched, 0, "len {len}: {err}");
        assert_eq!(err.max_abs, 0);
        assert_eq!(err.mean_abs, 0.0);
    }
}

#[test]
fn lengths_span_the_range_and_stay_exact() {
    let tok = tokenizer();
    let set = random_prompts(&tok, &spec(10, 30, 0, 9), 300).expect("random");
    let lens: Vec<u64> = set
        .prompts
        .iter()
        .map(|p| count_tokens(&tok, text(&p.prompt)).expect("count"))
        .collect();
    assert!(lens.iter().all(|&l| (10..=30).contains(&l)));
    assert_eq!(lens.iter().min(), Some(&10));
    assert_eq!(lens.iter().max(), Some(&30));
    assert_eq!(set.length_error.expect("error").mismatched, 0);
    for (p, l) in set.prompts.iter().zip(&lens) {
        assert_eq!(p.prompt_tokens, Some(*l));
    }
}

#[test]
fn seeds_reproduce_and_differ() {
    let tok = tokenizer();
    let a = random_prompts(&tok, &spec(5, 200, 16, 7), 50).expect("a");
    let b = random_prompts(&tok, &spec(5, 200, 16, 7), 50).expect("b");
    assert_eq!(a, b);
    let c = random_prompts(&tok, &spec(5, 200, 16, 8), 50).expect("c");
    assert_ne!(a.prompts, c.prompts);
    // Prompt i does not depend on how many prompts were asked for (nor on
    // how the work was split between threads).
    let few = random_prompts(&tok, &spec(5, 200, 16, 7), 3).expect("few");
    assert_eq!(few.prompts[..], a.prompts[..3]);
}

#[test]
fn shared_prefix_is_identical_and_in_addition() {
    let tok = tokenizer();
    let prefix_len = 32;
    let set = random_prompts(&tok, &spec(1, 64, prefix_len, 3), 60).expect("random");
    let encs: Vec<Vec<u32>> = set
        .prompts
        .iter()
        .map(|p| {
            tok.encode(text(&p.prompt), false)
                .expect("encode")
                .get_ids()
                .to_vec()
        })
        .collect();
    let prefix_ids = &encs[0][..prefix_len as usize];
    let first = text(&set.prompts[0].prompt);
    for (p, ids) in set.prompts.iter().zip(&encs) {
        // Token-level identity is what a server's prefix cache sees.
        assert_eq!(&ids[..prefix_len as usize], prefix_ids);
        let body = ids.len() as u32 - prefix_len;
        assert!((1..=64).contains(&body), "body {body}");
        assert_eq!(p.prompt_tokens, Some(ids.len() as u64));
    }
    // Text-level too: the decoded prefix starts every prompt.
    let prefix_text = tok.decode(prefix_ids, false).expect("decode");
    assert!(first.starts_with(&prefix_text));
    for p in &set.prompts {
        assert!(text(&p.prompt).starts_with(&prefix_text));
    }
    assert_eq!(set.length_error.expect("error").mismatched, 0);
}

#[test]
fn random_needs_a_tokenizer() {
    let err = load_prompts(&PromptSpec::Random(spec(4, 4, 0, 0)), 2, None).expect_err("no tok");
    assert!(matches!(err, PromptError::TokenizerRequired));
    assert!(err.to_string().contains("--tokenizer-path"), "{err}");
}

#[test]
fn line_by_line_trims_skips_blank_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "p.txt",
        "\u{feff}  first prompt  \n\n   \nsecond\r\nthird\n",
    );
    let set = read_line_by_line(&path, None, None).expect("read");
    let texts: Vec<&str> = set.prompts.iter().map(|p| text(&p.prompt)).collect();
    assert_eq!(texts, ["first prompt", "second", "third"]);
    assert!(set.prompts.iter().all(|p| p.prompt_tokens.is_none()));
    assert_eq!(set.length_error, None);

    let tok = tokenizer();
    let set = read_line_by_line(&path, Some(2), Some(&tok)).expect("limit");
    assert_eq!(set.prompts.len(), 2);
    assert_eq!(
        set.prompts[0].prompt_tokens,
        Some(count_tokens(&tok, "first prompt").expect("count"))
    );

    let via_spec = load_prompts(&PromptSpec::LineByLine { path: path.clone() }, 1, None)
        .expect("load_prompts");
    assert_eq!(via_spec.prompts.len(), 1);
}

#[test]
fn line_by_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.txt");
    let err = read_line_by_line(&missing, None, None).expect_err("missing");
    let msg = err.to_string();
    assert!(
        msg.contains("--dataset-path") && msg.contains("nope.txt"),
        "{msg}"
    );

    let blank = write(dir.path(), "blank.txt", "\n  \n\n");
    let err = read_line_by_line(&blank, None, None).expect_err("blank");
    assert!(matches!(err, PromptError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("no prompts"), "{err}");

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"fine\n\xff\xfe broken\n").expect("write");
    let err = read_line_by_line(&bad, None, None).expect_err("utf8");
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn jsonl_prompt_messages_and_question() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "d.jsonl",
        concat!(
            r#"{"prompt": "Tell me a story."}"#,
            "\n\n",
            r#"{"question": " What is 2+2? ", "human_answers": ["4"]}"#,
            "\n",
            r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}"#,
            "\n",
            r#"{"prompt": "   "}"#,
            "\n",
        ),
    );
    let tok = tokenizer();
    let set = read_jsonl(&path, None, Some(&tok)).expect("read");
    assert_eq!(set.prompts.len(), 3);
    assert_eq!(set.skipped, 1);
    assert_eq!(
        set.prompts[0].prompt,
        Prompt::Text("Tell me a story.".into())
    );
    assert_eq!(set.prompts[1].prompt, Prompt::Text("What is 2+2?".into()));
    let messages = vec![
        Message {
            role: "system".into(),
            content: "Be brief.".into(),
        },
        Message {
            role: "user".into(),
            content: "Hi".into(),
        },
    ];
    assert_eq!(set.prompts[2].prompt, Prompt::Messages(messages.clone()));
    // Messages: the sum over contents, no chat template.
    let want = count_tokens(&tok, "Be brief.").expect("c") + count_tokens(&tok, "Hi").expect("c");
    assert_eq!(set.prompts[2].prompt_tokens, Some(want));
    assert_eq!(
        set.prompts[2].for_api(ApiKind::Chat).expect("chat"),
        Prompt::Messages(messages)
    );
    assert!(matches!(
        set.prompts[2].for_api(ApiKind::Completions),
        Err(PromptError::MessagesNeedChat)
    ));
    assert_eq!(
        set.prompts[0].for_api(ApiKind::Chat).expect("chat"),
        Prompt::Messages(vec![Message {
            role: "user".into(),
            content: "Tell me a story.".into()
        }])
    );

    let limited = read_jsonl(&path, Some(2), None).expect("limit");
    assert_eq!(limited.prompts.len(), 2);
}

#[test]
fn jsonl_bad_line_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "bad.jsonl",
        "{\"prompt\": \"ok\"}\n\n{\"prompt\": \"unterminated}\n",
    );
    let err = read_jsonl(&path, None, None).expect_err("bad json");
    let msg = err.to_string();
    assert!(matches!(err, PromptError::Line { line: 3, .. }), "{msg}");
    assert!(
        msg.contains("--dataset-path") && msg.contains("bad.jsonl") && msg.contains("line 3"),
        "{msg}"
    );
    assert!(msg.contains("invalid JSON"), "{msg}");

    let path = write(dir.path(), "nokey.jsonl", "{\"text\": \"x\"}\n");
    let err = read_jsonl(&path, None, None).expect_err("no prompt key");
    let msg = err.to_string();
    assert!(msg.contains("line 1") && msg.contains("`prompt`"), "{msg}");
}

const SHAREGPT: &str = r#"[
  {"id": "a", "conversations": [
    {"from": "human", "value": "What is the capital of France?"},
    {"from": "gpt", "value": "The capital of France is Paris, a large city."},
    {"from": "human", "value": "And Spain?"},
    {"from": "gpt", "value": "Madrid."}
  ]},
  {"id": "b", "conversations": [{"from": "gpt", "value": "no human turn"}]},
  {"id": "c", "conversations": [
    {"from": "system", "value": "You are helpful."},
    {"from": "human", "value": "Only a question"}
  ]},
  {"id": "d", "conversations": []}
]"#;

#[test]
fn sharegpt_first_turns_and_output_lengths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "sg.json", SHAREGPT);
    let tok = tokenizer();
    let set = read_sharegpt(&path, None, Some(&tok)).expect("read");
    assert_eq!(set.prompts.len(), 2);
    assert_eq!(set.skipped, 2);
    assert_eq!(
        set.prompts[0].prompt,
        Prompt::Text("What is the capital of France?".into())
    );
    let out = count_tokens(&tok, "The capital of France is Paris, a large city.").expect("c");
    assert_eq!(set.prompts[0].output_tokens, Some(out as u32));
    assert_eq!(
        set.prompts[0].prompt_tokens,
        Some(count_tokens(&tok, "What is the capital of France?").expect("c"))
    );
    assert_eq!(
        set.prompts[1].prompt,
        Prompt::Text("Only a question".into())
    );
    assert_eq!(set.prompts[1].output_tokens, None);

    // Without a tokenizer: prompts, no counts.
    let plain = read_sharegpt(&path, Some(1), None).expect("limit");
    assert_eq!(plain.prompts.len(), 1);
    assert_eq!(plain.prompts[0].output_tokens, None);

    // The same entries one per line (JSONL) read the same.
    let value: serde_json::Value = serde_json::from_str(SHAREGPT).expect("json");
    let lines: Vec<String> = value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.to_string())
        .collect();
    let jl = write(dir.path(), "sg.jsonl", &lines.join("\n"));
    let set2 = read_sharegpt(&jl, None, Some(&tok)).expect("jsonl");
    assert_eq!(set2, set);
}

#[test]
fn sharegpt_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "broken.json",
        "[\n  {\"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]},\n  {\"conversations\": 5}\n]",
    );
    let err = read_sharegpt(&path, None, None).expect_err("bad entry");
    let msg = err.to_string();
    assert!(
        msg.contains("--dataset-path") && msg.contains("broken.json"),
        "{msg}"
    );
    assert!(msg.contains("line 3"), "{msg}");

    // Line numbers stay true after more blank lines than one read buffer.
    let padded = format!("{}[{{\"conversations\": 5}}]", "\n".repeat(20_000));
    let path = write(dir.path(), "padded.json", &padded);
    let err = read_sharegpt(&path, None, None).expect_err("bad entry after blanks");
    assert!(err.to_string().contains("line 20001 "), "{err}");

    let path = write(dir.path(), "trunc.json", "[{\"conversations\": [");
    let err = read_sharegpt(&path, None, None).expect_err("truncated");
    assert!(err.to_string().contains("invalid ShareGPT JSON"), "{err}");

    let path = write(
        dir.path(),
        "bad.jsonl",
        "{\"conversations\": []}\nnot json\n",
    );
    let err = read_sharegpt(&path, None, None).expect_err("bad jsonl");
    assert!(matches!(err, PromptError::Line { line: 2, .. }), "{err}");

    let path = write(dir.path(), "empty.json", "  \n");
    let err = read_sharegpt(&path, None, None).expect_err("empty");
    assert!(matches!(err, PromptError::Empty { .. }), "{err}");
}

#[test]
fn sharegpt_limit_skips_the_rest_unparsed() {
    // A limit stops converting; the rest only has to be valid JSON.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("[");
    for i in 0..500 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"conversations": [{{"from": "human", "value": "q{i}"}}, {{"from": "gpt", "value": "a{i}"}}], "extra": {{"nested": [1, 2, 3]}}}}"#
        ));
    }
    body.push(']');
    let path = write(dir.path(), "big.json", &body);
    let set = read_sharegpt(&path, Some(3), None).expect("read");
    let texts: Vec<&str> = set.prompts.iter().map(|p| text(&p.prompt)).collect();
    assert_eq!(texts, ["q0", "q1", "q2"]);
}

#[tokio::test]
async fn tokenizer_from_file_and_directory() {
    let hub = Hub::new(HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: tempfile::tempdir().expect("tempdir").path().to_path_buf(),
        offline: true,
    })
    .expect("hub");
    let file = fixture_path();
    let from_file = load_tokenizer(file.to_str().expect("utf8 path"), &hub)
        .await
        .expect("file");
    let dir = file.parent().expect("dir");
    let from_dir = load_tokenizer(dir.to_str().expect("utf8 path"), &hub)
        .await
        .expect("dir");
    assert_eq!(
        from_file.get_vocab_size(true),
        from_dir.get_vocab_size(true)
    );

    // A directory without tokenizer.json.
    let empty = tempfile::tempdir().expect("tempdir");
    let err = load_tokenizer(empty.path().to_str().expect("utf8"), &hub)
        .await
        .expect_err("no tokenizer.json");
    let msg = err.to_string();
    assert!(
        msg.contains("--tokenizer-path") && msg.contains("tokenizer.json"),
        "{msg}"
    );

    // A file that is not a tokenizer.
    let junk = write(empty.path(), "tokenizer.json", "{\"not\": \"a tokenizer\"}");
    let err = load_tokenizer(junk.to_str().expect("utf8"), &hub)
        .await
        .expect_err("junk");
    let msg = err.to_string();
    assert!(
        msg.contains("--tokenizer-path") && msg.contains("cannot load"),
        "{msg}"
    );

    // Neither a path nor a hub id.
    let err = load_tokenizer("./no/such/dir", &hub)
        .await
        .expect_err("missing");
    assert!(
        matches!(err, PromptError::TokenizerNotFound { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("--tokenizer-path ./no/such/dir"),
        "{err}"
    );
}

/// A fake hub root with the fixture tokenizer as model `acme/tiny-chat`.
fn model_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let repo = root.path().join("models/acme/tiny-chat");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::copy(fixture_path(), repo.join("tokenizer.json")).expect("copy");
    root
}

#[tokio::test]
async fn tokenizer_from_hub_then_offline_from_cache() {
    let root = model_root();
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let config = |offline| HubConfig {
        endpoint: fake.url(),
        token: None,
        cache_dir: cache.path().to_path_buf(),
        offline,
    };
    let expected = tokenizer().get_vocab_size(true);

    let online = Hub::new(config(false)).expect("hub");
    let tok = load_tokenizer("acme/tiny-chat", &online)
        .await
        .expect("fetch from hub");
    assert_eq!(tok.get_vocab_size(true), expected);
    assert_eq!(fake.hits("/acme/tiny-chat/resolve/main/tokenizer.json"), 1);
    assert!(
        cache
            .path()
            .join("models--acme--tiny-chat/refs/main")
            .is_file(),
        "hub cache layout"
    );

    // Offline: served from the cache, no request made.
    fake.clear_requests();
    let offline = Hub::new(config(true)).expect("hub");
    let tok = load_tokenizer("acme/tiny-chat", &offline)
        .await
        .expect("offline from cache");
    assert_eq!(tok.get_vocab_size(true), expected);
    assert!(fake.requests().is_empty());

    // Offline and not cached: the hub's offline error, behind the flag.
    let err = load_tokenizer("acme/other-model", &offline)
        .await
        .expect_err("not cached");
    let msg = err.to_string();
    assert!(
        msg.contains("--tokenizer-path acme/other-model") && msg.contains("tokenizer.json"),
        "{msg}"
    );

    // A repo that does not exist on the hub.
    let err = load_tokenizer("acme/missing", &online)
        .await
        .expect_err("missing repo");
    assert!(matches!(err, PromptError::TokenizerHub { .. }), "{err}");

    // A revision: the fake hub knows `main` and the repo's commit sha.
    let commit = std::fs::read_to_string(cache.path().join("models--acme--tiny-chat/refs/main"))
        .expect("refs/main");
    let pinned = format!("acme/tiny-chat@{}", commit.trim());
    let tok = load_tokenizer(&pinned, &online).await.expect("pinned");
    assert_eq!(tok.get_vocab_size(true), expected);
    let err = load_tokenizer("acme/tiny-chat@v9", &online)
        .await
        .expect_err("unknown revision");
    assert!(err.to_string().contains("v9"), "{err}");
}

#[tokio::test]
async fn blocking_loader_works_inside_a_runtime() {
    let root = model_root();
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let config = HubConfig {
        endpoint: fake.url(),
        token: None,
        cache_dir: cache.path().to_path_buf(),
        offline: false,
    };
    // The fake hub runs on this runtime, so the blocking call must not
    // block it: run it on a blocking thread as the CLI's sync code would.
    let tok =
        tokio::task::spawn_blocking(move || load_tokenizer_blocking("acme/tiny-chat", &config))
            .await
            .expect("join")
            .expect("blocking fetch");
    assert_eq!(tok.get_vocab_size(true), tokenizer().get_vocab_size(true));
}

/// `bench perf` flags parsed by the binary's clap tree, as the prompt
/// options [`workload`] takes.
fn perf_args(extra: &[&str]) -> bench::perf::prompts::WorkloadOptions {
    use clap::Parser;
    let mut argv = vec![
        "bench",
        "perf",
        "--url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ];
    argv.extend_from_slice(extra);
    match crate::bench_cli::Cli::try_parse_from(argv)
        .expect("flags parse")
        .command
    {
        crate::bench_cli::Command::Perf(a) => a.workload_options(),
        other => panic!("expected perf, got {other:?}"),
    }
}

fn offline_hub() -> HubConfig {
    HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: std::env::temp_dir().join("bench-prompts-test-no-cache"),
        offline: true,
    }
}

#[test]
fn workload_from_flags() {
    let tok = fixture_path();
    let a = perf_args(&[
        "--dataset",
        "random",
        "--tokenizer-path",
        tok.to_str().expect("utf8"),
        "--min-prompt-length",
        "20",
        "--max-prompt-length",
        "40",
        "--prefix-length",
        "8",
        "--seed",
        "5",
    ]);
    let w = workload(&a, &offline_hub(), 25).expect("workload");
    assert_eq!(w.items.len(), 25);
    for item in &w.items {
        let n = item.prompt_tokens.expect("exact count");
        assert!((28..=48).contains(&n), "{n}");
    }
    let counter = w.counter.as_ref().expect("tokenizer counter");
    assert_eq!(counter("Natalia sold clips"), Some(3));
    assert!(
        w.label.contains("random") && w.label.contains("0 mismatched"),
        "{}",
        w.label
    );
    assert_eq!(w.length_error.expect("error").mismatched, 0);

    // File datasets need --dataset-path; random needs a tokenizer.
    let err =
        workload(&perf_args(&["--dataset", "sharegpt"]), &offline_hub(), 5).expect_err("no path");
    assert!(err.to_string().contains("--dataset-path"), "{err}");
    let err =
        workload(&perf_args(&["--dataset", "random"]), &offline_hub(), 5).expect_err("no tok");
    assert!(err.to_string().contains("--tokenizer-path"), "{err}");

    // A JSONL file without a tokenizer: prompts, no counts, no counter.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "q.jsonl",
        "{\"question\": \"a\"}\n{\"prompt\": \"b\"}\n",
    );
    let a = perf_args(&[
        "--dataset",
        "openqa",
        "--dataset-path",
        path.to_str().expect("utf8"),
    ]);
    let w = workload(&a, &offline_hub(), 10).expect("jsonl workload");
    assert_eq!(w.items.len(), 2);
    assert!(w.counter.is_none());
    assert!(w.items.iter().all(|i| i.prompt_tokens.is_none()));

    // A hub id that is not cached, offline: the hub's error behind the flag.
    let a = perf_args(&["--dataset", "random", "--tokenizer-path", "acme/not-cached"]);
    let err = workload(&a, &offline_hub(), 5).expect_err("offline miss");
    assert!(
        err.to_string().contains("--tokenizer-path acme/not-cached"),
        "{err}"
    );
}
