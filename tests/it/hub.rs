//! Hub client against the fake hub serving `fixtures/hub/`: cache layout,
//! cache hits, offline mode, error kinds and their advice, tokens, integrity
//! and retries. Every cache lives in its own temp dir.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use bench::fake::hub::{CONVERT_FOLDER, FakeHub, FakeHubOptions, PINNED_COMMITS, fixtures_root};
use bench::hub::{CONVERT_BRANCH, Hub, HubConfig, HubError, HubFile};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

const GSM8K_TEST: &str = "main/test-00000-of-00001.parquet";

fn commit(repo: &str) -> &'static str {
    PINNED_COMMITS
        .iter()
        .find(|(r, _)| *r == repo)
        .map(|(_, c)| *c)
        .expect("pinned commit")
}

fn gsm8k(revision: &str) -> HubFile {
    HubFile::dataset("openai/gsm8k", revision, GSM8K_TEST)
}

fn config(endpoint: &str, cache: &Path) -> HubConfig {
    HubConfig {
        endpoint: endpoint.to_string(),
        token: None,
        cache_dir: cache.to_path_buf(),
        offline: false,
    }
}

fn hub(endpoint: &str, cache: &Path) -> Hub {
    Hub::new(config(endpoint, cache)).expect("hub client")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn fixture_bytes(repo: &str, path: &str) -> Vec<u8> {
    std::fs::read(fixtures_root().join("datasets").join(repo).join(path)).expect("fixture")
}

/// An endpoint where nothing listens: bind a port, then free it.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// All regular files and symlinks under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn assert_names_file(msg: &str, file: &HubFile) {
    for part in [&file.repo_id, &file.path, &file.revision] {
        assert!(msg.contains(part.as_str()), "{part:?} missing from: {msg}");
    }
}

#[tokio::test]
async fn first_fetch_lays_out_the_cache_and_second_is_a_cache_hit() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());
    let sha = commit("openai/gsm8k");
    let file = gsm8k(sha);

    let got = hub.fetch(&file).await.unwrap();
    let content = fixture_bytes("openai/gsm8k", GSM8K_TEST);
    let content_sha = sha256_hex(&content);
    assert!(!got.from_cache);
    assert_eq!(got.commit, sha);
    assert_eq!(got.sha256, content_sha);
    assert_eq!(got.size, content.len() as u64);
    assert_eq!(fake.hits("/resolve/"), 1);

    let repo = cache.path().join("datasets--openai--gsm8k");
    let snap = repo
        .join("snapshots")
        .join(sha)
        .join("main")
        .join("test-00000-of-00001.parquet");
    assert_eq!(got.local_path, snap);
    // Python's layout: a relative link from the snapshot to the blob named
    // by the ETag, which for this file is the content's sha256.
    assert!(
        std::fs::symlink_metadata(&snap)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&snap).unwrap(),
        PathBuf::from(format!("../../../blobs/{content_sha}"))
    );
    assert_eq!(std::fs::read(&snap).unwrap(), content);
    assert_eq!(
        tree(&repo),
        vec![
            format!("blobs/{content_sha}"),
            format!("snapshots/{sha}/main/test-00000-of-00001.parquet"),
        ],
        "no refs for a commit revision, no leftovers"
    );
    assert!(
        cache
            .path()
            .join(".locks/datasets--openai--gsm8k")
            .join(format!("{content_sha}.lock"))
            .exists()
    );

    let again = hub.fetch(&file).await.unwrap();
    assert!(again.from_cache);
    assert_eq!(again.local_path, snap);
    assert_eq!(again.sha256, content_sha);
    assert_eq!(
        fake.hits("/resolve/"),
        1,
        "second fetch must not touch the network"
    );
    assert_eq!(hub.cached_path(&file), Some(snap));
}

#[tokio::test]
async fn branch_revision_writes_refs_and_then_resolves_from_cache() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());
    let sha = commit("allenai/ai2_arc");
    let file = HubFile::dataset(
        "allenai/ai2_arc",
        "main",
        "ARC-Easy/test-00000-of-00001.parquet",
    );

    let got = hub.fetch(&file).await.unwrap();
    assert_eq!(got.commit, sha);
    let refs_main = cache.path().join("datasets--allenai--ai2_arc/refs/main");
    assert_eq!(std::fs::read_to_string(refs_main).unwrap(), sha);

    let again = hub.fetch(&file).await.unwrap();
    assert!(again.from_cache);
    let by_commit = hub
        .fetch(&HubFile::dataset("allenai/ai2_arc", sha, &file.path))
        .await
        .unwrap();
    assert!(by_commit.from_cache);
    assert_eq!(by_commit.local_path, got.local_path);
    assert_eq!(fake.hits("/resolve/"), 1);
}

#[tokio::test]
async fn offline_uses_the_cache() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let file = gsm8k(commit("openai/gsm8k"));
    let online = hub(&fake.url(), cache.path()).fetch(&file).await.unwrap();

    let mut cfg = config(&dead_endpoint(), cache.path());
    cfg.offline = true;
    let got = Hub::new(cfg).unwrap().fetch(&file).await.unwrap();
    assert!(got.from_cache);
    assert_eq!(got.local_path, online.local_path);
    assert_eq!(got.sha256, online.sha256);
}

#[tokio::test]
async fn offline_without_cache_says_what_to_copy() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(&fake.url(), cache.path());
    cfg.offline = true;
    let file = gsm8k(commit("openai/gsm8k"));

    let err = Hub::new(cfg).unwrap().fetch(&file).await.unwrap_err();
    assert!(
        matches!(err, HubError::Offline { corrupt: None, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert_names_file(&msg, &file);
    assert!(msg.contains("HF_HUB_CACHE"), "{msg}");
    let target = cache.path().join("datasets--openai--gsm8k");
    assert!(msg.contains(&target.display().to_string()), "{msg}");
    assert!(
        fake.requests().is_empty(),
        "offline must not touch the network"
    );
}

#[tokio::test]
async fn unreachable_endpoint_without_cache() {
    let cache = tempfile::tempdir().unwrap();
    let endpoint = dead_endpoint();
    let file = gsm8k("main");
    let err = hub(&endpoint, cache.path()).fetch(&file).await.unwrap_err();
    assert!(matches!(err, HubError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert_names_file(&msg, &file);
    assert!(msg.contains(&endpoint), "{msg}");
    assert!(
        msg.contains("copy") && msg.contains("HF_HUB_CACHE"),
        "{msg}"
    );
    assert!(
        tree(cache.path()).is_empty(),
        "nothing written: {:?}",
        tree(cache.path())
    );
}

#[tokio::test]
async fn not_found_names_what_is_missing() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());
    let sha = commit("openai/gsm8k");

    let file = HubFile::dataset(
        "openai/gsm8k",
        sha,
        "main/validation-00000-of-00001.parquet",
    );
    let err = hub.fetch(&file).await.unwrap_err();
    match &err {
        HubError::NotFound { code, .. } => assert_eq!(code.as_deref(), Some("EntryNotFound")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let msg = err.to_string();
    assert_names_file(&msg, &file);
    assert!(msg.contains("pinned"), "{msg}");

    let other_sha = "0".repeat(40);
    let err = hub.fetch(&gsm8k(&other_sha)).await.unwrap_err();
    assert!(
        matches!(&err, HubError::NotFound { code: Some(c), .. } if c == "RevisionNotFound"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&other_sha));

    let err = hub
        .fetch(&HubFile::dataset("nobody/nothing", "main", "x.parquet"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::NotFound { code: Some(c), .. } if c == "RepoNotFound"),
        "{err:?}"
    );
    assert!(err.to_string().contains("nobody/nothing"));
    assert_eq!(fake.hits("/resolve/"), 3, "404s are not retried");
}

#[tokio::test]
async fn gated_repo_needs_the_right_token() {
    let mut opts = FakeHubOptions::fixtures();
    opts.require_token = Some("hf_right".into());
    let fake = FakeHub::start(opts).await;
    let cache = tempfile::tempdir().unwrap();
    let file = gsm8k("main");

    let err = hub(&fake.url(), cache.path())
        .fetch(&file)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Unauthorized {
                status: 401,
                token_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert_names_file(&msg, &file);
    assert!(msg.contains("set HF_TOKEN"), "{msg}");

    let mut cfg = config(&fake.url(), cache.path());
    cfg.token = Some("hf_wrong".into());
    let err = Hub::new(cfg).unwrap().fetch(&file).await.unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Unauthorized {
                status: 401,
                token_sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("token was rejected"), "{msg}");
    assert!(!msg.contains("hf_wrong") && !format!("{err:?}").contains("hf_wrong"));

    let mut cfg = config(&fake.url(), cache.path());
    cfg.token = Some("hf_right".into());
    Hub::new(cfg).unwrap().fetch(&file).await.unwrap();
    let sent: Vec<Option<String>> = fake
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(
        sent,
        vec![
            None,
            Some("Bearer hf_wrong".into()),
            Some("Bearer hf_right".into())
        ]
    );
}

#[tokio::test]
async fn cdn_redirect_keeps_hub_headers_and_drops_the_token() {
    let mut opts = FakeHubOptions::fixtures();
    opts.require_token = Some("hf_right".into());
    opts.cdn_redirect = true;
    let fake = FakeHub::start(opts).await;
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(&fake.url(), cache.path());
    cfg.token = Some("hf_right".into());
    let file = gsm8k("main");

    let got = Hub::new(cfg).unwrap().fetch(&file).await.unwrap();
    let content_sha = sha256_hex(&fixture_bytes("openai/gsm8k", GSM8K_TEST));
    // The blob is named by X-Linked-Etag, not the redirect's own ETag nor
    // the CDN's.
    assert_eq!(got.sha256, content_sha);
    assert_eq!(
        std::fs::read_link(&got.local_path).unwrap(),
        PathBuf::from(format!("../../../blobs/{content_sha}"))
    );
    assert_eq!(got.commit, commit("openai/gsm8k"));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(reqs[0].path.contains("/resolve/"));
    assert_eq!(reqs[0].authorization.as_deref(), Some("Bearer hf_right"));
    assert!(reqs[1].path.starts_with("/cdn/"));
    assert_eq!(
        reqs[1].authorization, None,
        "token must not go to another host"
    );
}

#[tokio::test]
async fn corrupted_cached_blob_is_detected_and_refetched() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());
    let file = gsm8k(commit("openai/gsm8k"));
    let first = hub.fetch(&file).await.unwrap();

    // Same length, different bytes: only hashing can tell.
    let blob = cache
        .path()
        .join("datasets--openai--gsm8k/blobs")
        .join(&first.sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();

    // Offline, the corrupt copy is reported, not served.
    let mut cfg = config(&fake.url(), cache.path());
    cfg.offline = true;
    let err = Hub::new(cfg).unwrap().fetch(&file).await.unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Offline {
                corrupt: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt") && msg.contains(&first.local_path.display().to_string()),
        "{msg}"
    );

    let again = hub.fetch(&file).await.unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(
        std::fs::read(&again.local_path).unwrap(),
        fixture_bytes("openai/gsm8k", GSM8K_TEST)
    );
    assert_eq!(fake.hits("/resolve/"), 2);
}

#[tokio::test]
async fn content_not_matching_the_etag_is_rejected() {
    let mut opts = FakeHubOptions::fixtures();
    opts.corrupt = true;
    let fake = FakeHub::start(opts).await;
    let cache = tempfile::tempdir().unwrap();
    let file = gsm8k("main");

    let err = hub(&fake.url(), cache.path())
        .fetch(&file)
        .await
        .unwrap_err();
    match &err {
        HubError::Integrity {
            expected, actual, ..
        } => {
            assert_eq!(
                expected,
                &sha256_hex(&fixture_bytes("openai/gsm8k", GSM8K_TEST))
            );
            assert_ne!(expected, actual);
        }
        other => panic!("expected Integrity, got {other:?}"),
    }
    assert_names_file(&err.to_string(), &file);
    let repo = cache.path().join("datasets--openai--gsm8k");
    assert_eq!(
        tree(&repo),
        Vec::<String>::new(),
        "no blob, snapshot, ref or temp file kept"
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mut opts = FakeHubOptions::fixtures();
    opts.fail_first = 2;
    let fake = FakeHub::start(opts).await;
    let cache = tempfile::tempdir().unwrap();
    let got = hub(&fake.url(), cache.path())
        .fetch(&gsm8k("main"))
        .await
        .unwrap();
    assert!(!got.from_cache);
    assert_eq!(fake.hits("/resolve/"), 3);

    let mut opts = FakeHubOptions::fixtures();
    opts.fail_first = 10;
    let fake = FakeHub::start(opts).await;
    let cache = tempfile::tempdir().unwrap();
    let file = gsm8k("main");
    let err = hub(&fake.url(), cache.path())
        .fetch(&file)
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::Http { status: 500, .. }), "{err:?}");
    assert_names_file(&err.to_string(), &file);
    assert_eq!(fake.hits("/resolve/"), 3, "three attempts, then give up");
}

#[tokio::test]
async fn concurrent_fetches_share_one_blob() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let a = hub(&fake.url(), cache.path());
    let b = hub(&fake.url(), cache.path());
    let file = gsm8k("main");
    let (x, y) = tokio::join!(a.fetch(&file), b.fetch(&file));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.local_path, y.local_path);
    assert_eq!(x.sha256, y.sha256);
    let blobs = tree(&cache.path().join("datasets--openai--gsm8k/blobs"));
    assert_eq!(blobs, vec![x.sha256.clone()]);
    assert_eq!(
        std::fs::read(&x.local_path).unwrap(),
        fixture_bytes("openai/gsm8k", GSM8K_TEST)
    );
}

#[tokio::test]
async fn model_repos_and_non_parquet_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("models/acme/tiny");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/tokenizer.json"), br#"{"version":"1.0"}"#).unwrap();
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());

    let got = hub
        .fetch(&HubFile::model("acme/tiny", "main", "sub/tokenizer.json"))
        .await
        .unwrap();
    assert_eq!(
        fake.requests()[0].path,
        "/acme/tiny/resolve/main/sub/tokenizer.json"
    );
    assert!(
        got.local_path
            .starts_with(cache.path().join("models--acme--tiny/snapshots"))
    );
    assert_eq!(
        std::fs::read(&got.local_path).unwrap(),
        br#"{"version":"1.0"}"#
    );

    let card = hub
        .fetch(&HubFile::dataset("openai/gsm8k", "main", "README.md"))
        .await
        .unwrap_err();
    assert!(
        matches!(card, HubError::NotFound { .. }),
        "not under this root"
    );
}

#[tokio::test]
async fn fake_hub_speaks_head_range_and_api() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/datasets/openai/gsm8k/resolve/main/{GSM8K_TEST}",
        fake.url()
    );
    let content = fixture_bytes("openai/gsm8k", GSM8K_TEST);
    let sha = commit("openai/gsm8k");

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let h = head.headers();
    assert_eq!(h["x-repo-commit"], sha);
    assert_eq!(
        h["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256_hex(&content))
    );
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        content.len().to_string()
    );
    assert_eq!(h["accept-ranges"], "bytes");

    let part = client
        .get(&url)
        .header("Range", "bytes=4-7")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 4-7/{}", content.len())
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &content[4..8]);

    let info: serde_json::Value = client
        .get(format!(
            "{}/api/datasets/openai/gsm8k/revision/{sha}",
            fake.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], "openai/gsm8k");
    assert_eq!(info["sha"], sha);
    let files: Vec<&str> = info["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rfilename"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        vec![
            "README.md",
            "main/test-00000-of-00001.parquet",
            "main/train-00000-of-00001.parquet"
        ]
    );

    let missing = client
        .get(format!(
            "{}/datasets/openai/gsm8k/resolve/main/nope.parquet",
            fake.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-error-code"], "EntryNotFound");
}

/// Reads a fetched parquet file whole.
fn read_parquet(path: &Path) -> (arrow::datatypes::SchemaRef, arrow::array::RecordBatch) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<_> = builder.build().unwrap().collect::<Result<_, _>>().unwrap();
    let batch = arrow::compute::concat_batches(&schema, &batches).unwrap();
    (schema, batch)
}

#[tokio::test]
async fn fetched_fixtures_have_the_hub_schemas() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());

    let test = hub.fetch(&gsm8k("main")).await.unwrap();
    let (schema, batch) = read_parquet(&test.local_path);
    assert_eq!(batch.num_rows(), 8);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["question", "answer"]);
    assert!(
        schema
            .fields()
            .iter()
            .all(|f| f.data_type() == &DataType::Utf8 && f.is_nullable())
    );
    let answers = batch.column(1).as_string::<i32>();
    assert!(
        answers.value(6).ends_with("#### 2,125"),
        "{}",
        answers.value(6)
    );
    assert!(
        answers.value(7).ends_with("#### -10"),
        "{}",
        answers.value(7)
    );

    let train = hub
        .fetch(&HubFile::dataset(
            "openai/gsm8k",
            "main",
            "main/train-00000-of-00001.parquet",
        ))
        .await
        .unwrap();
    assert_eq!(read_parquet(&train.local_path).1.num_rows(), 12);

    for (path, rows) in [
        ("ARC-Easy/test-00000-of-00001.parquet", 6),
        ("ARC-Easy/train-00000-of-00001.parquet", 6),
        ("ARC-Easy/validation-00000-of-00001.parquet", 6),
        ("ARC-Challenge/test-00000-of-00001.parquet", 7),
        ("ARC-Challenge/train-00000-of-00001.parquet", 6),
        ("ARC-Challenge/validation-00000-of-00001.parquet", 6),
    ] {
        let got = hub
            .fetch(&HubFile::dataset("allenai/ai2_arc", "main", path))
            .await
            .unwrap();
        let (schema, batch) = read_parquet(&got.local_path);
        assert_eq!(batch.num_rows(), rows, "{path}");
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "question", "choices", "answerKey"], "{path}");
        let DataType::Struct(inner) = schema.field(2).data_type() else {
            panic!("choices is not a struct in {path}: {schema:?}");
        };
        let inner: Vec<(&str, &DataType)> = inner
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(inner.len(), 2);
        for ((name, dt), want) in inner.iter().zip(["text", "label"]) {
            assert_eq!(*name, want);
            let DataType::List(item) = dt else {
                panic!("{path}: choices.{name} is {dt:?}");
            };
            assert_eq!(item.data_type(), &DataType::Utf8);
            assert_eq!(item.name(), "element", "pyarrow's compliant list item name");
        }
    }

    // The special rows named in fixtures/README.md.
    let easy = hub
        .fetch(&HubFile::dataset(
            "allenai/ai2_arc",
            "main",
            "ARC-Easy/test-00000-of-00001.parquet",
        ))
        .await
        .unwrap();
    let (_, batch) = read_parquet(&easy.local_path);
    let labels = batch
        .column(2)
        .as_struct()
        .column_by_name("label")
        .unwrap()
        .as_list::<i32>();
    let label_row = |i: usize| -> Vec<String> {
        let l = labels.value(i);
        let l = l.as_string::<i32>();
        (0..l.len()).map(|j| l.value(j).to_string()).collect()
    };
    let keys = batch.column(3).as_string::<i32>();
    assert_eq!(label_row(3), ["1", "2", "3", "4"]);
    assert_eq!(keys.value(3), "2");
    assert_eq!(label_row(4).len(), 3);
    assert_eq!(label_row(5), ["A", "B", "C", "D", "E"]);
    assert_eq!(keys.value(5), "E");
}

// The hub's parquet convert branch (`refs/convert/parquet`), as
// `math-ai/aime25` has it: `main` holds jsonl only, the parquet is on the
// branch, under its own commit.

const AIME25: &str = "math-ai/aime25";
const AIME25_TEST: &str = "default/test/0000.parquet";

fn aime25_convert() -> HubFile {
    HubFile::dataset(AIME25, CONVERT_BRANCH, AIME25_TEST)
}

#[tokio::test]
async fn fake_hub_serves_the_convert_branch_apart_from_main() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let client = reqwest::Client::new();
    let base = fake.url();
    let content = std::fs::read(
        fixtures_root()
            .join("datasets")
            .join(AIME25)
            .join(CONVERT_FOLDER)
            .join(AIME25_TEST),
    )
    .unwrap();

    // The branch, percent-encoded as huggingface_hub writes it.
    let url = format!("{base}/datasets/{AIME25}/resolve/refs%2Fconvert%2Fparquet/{AIME25_TEST}");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let convert_commit = resp.headers()["x-repo-commit"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &content[..]);
    // Its own commit, not main's.
    let main_info: serde_json::Value = client
        .get(format!("{base}/api/datasets/{AIME25}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let main_commit = main_info["sha"].as_str().unwrap();
    assert_eq!(convert_commit.len(), 40);
    assert_ne!(convert_commit, main_commit);
    // By commit too.
    let by_sha = format!("{base}/datasets/{AIME25}/resolve/{convert_commit}/{AIME25_TEST}");
    assert_eq!(client.get(&by_sha).send().await.unwrap().status(), 200);

    // The branch's folder is not part of main: not served, not listed.
    for path in [
        format!("{CONVERT_FOLDER}/{AIME25_TEST}"),
        AIME25_TEST.to_string(),
    ] {
        let r = client
            .get(format!("{base}/datasets/{AIME25}/resolve/main/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on main");
        assert_eq!(r.headers()["x-error-code"], "EntryNotFound");
    }
    let siblings: Vec<&str> = main_info["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rfilename"].as_str().unwrap())
        .collect();
    assert!(
        siblings.iter().all(|f| !f.contains(CONVERT_FOLDER)),
        "{siblings:?}"
    );
    // A repo without a convert folder has no such revision.
    let r = client
        .get(format!(
            "{base}/datasets/openai/gsm8k/resolve/refs%2Fconvert%2Fparquet/{GSM8K_TEST}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-error-code"], "RevisionNotFound");

    // The listing, in the real hub's shape: {config: {split: [url]}}.
    let listing: serde_json::Value = client
        .get(format!("{base}/api/datasets/{AIME25}/parquet"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_url = format!("{base}/api/datasets/{AIME25}/parquet/default/test/0.parquet");
    assert_eq!(
        listing,
        serde_json::json!({ "default": { "test": [file_url.clone()] } })
    );
    let per_split: serde_json::Value = client
        .get(format!("{base}/api/datasets/{AIME25}/parquet/default/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(per_split, serde_json::json!([file_url.clone()]));
    // The listed url redirects to the file on the branch.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(&file_url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"].to_str().unwrap(), url);
    let r = client
        .get(format!("{base}/api/datasets/openai/gsm8k/parquet"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn client_fetches_the_convert_branch_and_reuses_it_offline() {
    let fake = FakeHub::start(FakeHubOptions::fixtures()).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());

    let files = hub
        .convert_split_files(AIME25, "default", "test")
        .await
        .unwrap();
    assert_eq!(files, vec![AIME25_TEST.to_string()]);
    assert_eq!(fake.hits("/api/datasets/math-ai/aime25/parquet"), 1);

    let got = hub.fetch(&aime25_convert()).await.unwrap();
    assert!(!got.from_cache);
    assert_eq!(fake.hits("/resolve/refs%2Fconvert%2Fparquet/"), 1);
    // huggingface_hub's layout: refs/<revision>, so the branch's ref is
    // refs/refs/convert/parquet, holding the branch's own commit.
    let repo_dir = cache.path().join("datasets--math-ai--aime25");
    let branch_ref = repo_dir.join("refs/refs/convert/parquet");
    assert_eq!(std::fs::read_to_string(&branch_ref).unwrap(), got.commit);
    assert_eq!(
        got.local_path,
        repo_dir
            .join("snapshots")
            .join(&got.commit)
            .join("default/test/0000.parquet")
    );
    assert!(!repo_dir.join("refs/main").exists(), "main was never asked");
    let rows = bench::dataset::read_parquet(&got.local_path).unwrap();
    assert!(!rows.is_empty());

    // Offline: the listing comes from the cached snapshot, the file from
    // the cache, under the same commit.
    let mut cfg = config(&dead_endpoint(), cache.path());
    cfg.offline = true;
    let offline = Hub::new(cfg).unwrap();
    assert_eq!(
        offline
            .convert_split_files(AIME25, "default", "test")
            .await
            .unwrap(),
        files
    );
    let again = offline.fetch(&aime25_convert()).await.unwrap();
    assert!(again.from_cache);
    assert_eq!(again.commit, got.commit);
    assert_eq!(again.sha256, got.sha256);
    // And a hub that is gone falls back to the cache for the listing too.
    let gone = Hub::new(config(&dead_endpoint(), cache.path())).unwrap();
    assert_eq!(
        gone.convert_split_files(AIME25, "default", "test")
            .await
            .unwrap(),
        files
    );

    // Offline with an empty cache: says so, naming the repo and branch.
    let empty = tempfile::tempdir().unwrap();
    let mut cfg = config(&dead_endpoint(), empty.path());
    cfg.offline = true;
    let err = Hub::new(cfg)
        .unwrap()
        .convert_split_files(AIME25, "default", "test")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, HubError::Offline { .. })
            && msg.contains(AIME25)
            && msg.contains(CONVERT_BRANCH),
        "{msg}"
    );
    // A split the listing does not have names what it has.
    let err = hub
        .convert_split_files(AIME25, "default", "train")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("default/train") && msg.contains("default/test"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_split_of_several_files_is_listed_in_order() {
    // A repo with a two-file split on its convert branch.
    let root = tempfile::tempdir().unwrap();
    let fixture = fixtures_root()
        .join("datasets")
        .join(AIME25)
        .join(CONVERT_FOLDER)
        .join(AIME25_TEST);
    let split_dir = root
        .path()
        .join("datasets/o/big")
        .join(CONVERT_FOLDER)
        .join("default/train");
    std::fs::create_dir_all(&split_dir).unwrap();
    for name in ["0001.parquet", "0000.parquet"] {
        std::fs::copy(&fixture, split_dir.join(name)).unwrap();
    }
    std::fs::write(root.path().join("datasets/o/big/data.jsonl"), "{}\n").unwrap();
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake.url(), cache.path());
    let files = hub
        .convert_split_files("o/big", "default", "train")
        .await
        .unwrap();
    assert_eq!(
        files,
        vec!["default/train/0000.parquet", "default/train/0001.parquet"]
    );
    for f in &files {
        let got = hub
            .fetch(&HubFile::dataset("o/big", CONVERT_BRANCH, f))
            .await
            .unwrap();
        assert_eq!(got.file.path, *f);
    }
}

#[test]
fn listing_urls_map_to_branch_paths() {
    use bench::hub::convert_path_of_url;
    assert_eq!(
        convert_path_of_url(
            "https://hub.example/api/datasets/o/n/parquet/default/test/0.parquet",
            "default",
            "test"
        )
        .as_deref(),
        Some("default/test/0000.parquet")
    );
    assert_eq!(
        convert_path_of_url(
            "https://hub.example/api/datasets/o/n/parquet/default/test/12.parquet",
            "default",
            "test"
        )
        .as_deref(),
        Some("default/test/0012.parquet")
    );
    // The datasets-server form: a resolve url on the branch.
    assert_eq!(
        convert_path_of_url(
            "https://hub.example/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/My%20Config/test/0003.parquet",
            "My Config",
            "test"
        )
        .as_deref(),
        Some("My Config/test/0003.parquet")
    );
    // Another split's url, or not a parquet url: refused.
    assert_eq!(
        convert_path_of_url(
            "https://hub.example/api/datasets/o/n/parquet/default/train/0.parquet",
            "default",
            "test"
        ),
        None
    );
    assert_eq!(
        convert_path_of_url(
            "https://hub.example/datasets/o/n/resolve/main/x.parquet",
            "default",
            "test"
        ),
        None
    );
}
