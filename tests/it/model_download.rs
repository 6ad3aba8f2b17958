//! Model repository downloads (`Hub::fetch_model`) against the fake hub on
//! 127.0.0.1: the exact HF cache layout under a temp `HF_HOME`, resume of a
//! cut download with a `Range` request, corrupt files refused, gated repos,
//! offline mode, and `owner/name:file.gguf` specs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bench::fake::hub::{CutFault, FakeHub, FakeHubOptions};
use bench::hub::{
    FAKE_CACHE_MARKER, Hub, HubConfig, HubError, ModelError, ModelFetchOptions, ModelSpec,
};
use sha2::{Digest, Sha256};

const REPO: &str = "acme/tiny-model";
const WEIGHTS: &str = "model.safetensors";
/// About 1 MB, so the weights are the "large" file of the repo.
const WEIGHTS_LEN: usize = 1 << 20;

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A fake hub root holding `models/<repo>/<path>` for each file.
fn repo_root(repo: &str, files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("models").join(repo);
    for (path, data) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    root
}

/// `n` incompressible bytes, different per call (sha256 in counter mode).
fn random_bytes(n: usize) -> Vec<u8> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut data = Vec::with_capacity(n + 32);
    let mut i = 0u64;
    while data.len() < n {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(i.to_le_bytes());
        data.extend_from_slice(&h.finalize());
        i += 1;
    }
    data.truncate(n);
    data
}

/// A small safetensors-style model: the files a model needs, a large
/// weights file, and files that must not be fetched.
fn tiny_model() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "config.json",
            br#"{"architectures":["Qwen2ForCausalLM"]}"#.to_vec(),
        ),
        ("generation_config.json", br#"{"eos_token_id":2}"#.to_vec()),
        ("tokenizer.json", br#"{"version":"1.0"}"#.to_vec()),
        (
            "tokenizer_config.json",
            br#"{"chat_template":"x"}"#.to_vec(),
        ),
        (WEIGHTS, random_bytes(WEIGHTS_LEN)),
        ("README.md", b"# not needed".to_vec()),
        ("onnx/model.onnx", b"not needed either".to_vec()),
    ]
}

/// A hub config whose cache is `$HF_HOME/hub`, built the way the CLI builds
/// it (from variables).
fn config(endpoint: &str, hf_home: &Path, extra: &[(&str, &str)]) -> HubConfig {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("HF_ENDPOINT".into(), endpoint.into());
    vars.insert("HF_HOME".into(), hf_home.to_str().unwrap().into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    HubConfig::from_vars(move |k| vars.get(k).cloned())
}

fn hub(cfg: HubConfig) -> Hub {
    Hub::new(cfg).expect("hub client")
}

fn spec(s: &str) -> ModelSpec {
    ModelSpec::parse(s).expect("model spec")
}

fn opts() -> ModelFetchOptions {
    ModelFetchOptions::default()
}

/// Every file and symlink under `dir`, relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The `Range` headers of the GETs of `path` in `repo`, in order.
fn ranges_of(fake: &FakeHub, repo: &str, path: &str) -> Vec<Option<String>> {
    let url = format!("/{repo}/resolve/");
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&url) && r.path.ends_with(path))
        .map(|r| r.range)
        .collect()
}

#[tokio::test]
async fn model_repo_downloads_into_the_exact_hf_cache_layout() {
    let files = tiny_model();
    let root = repo_root(REPO, &files);
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = tempfile::tempdir().unwrap();
    let hub = hub(config(&fake.url(), hf_home.path(), &[]));

    let got = hub.fetch_model(&spec(REPO), &opts()).await.unwrap();
    assert!(!got.from_cache);
    let commit = got.commit.clone();
    assert_eq!(commit.len(), 40);

    let repo_dir = hf_home.path().join("hub/models--acme--tiny-model");
    assert_eq!(got.snapshot_dir, repo_dir.join("snapshots").join(&commit));
    let wanted = [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        WEIGHTS,
    ];
    let mut expected: Vec<String> = vec!["refs/main".to_string()];
    for (path, data) in files.iter().filter(|(p, _)| wanted.contains(p)) {
        let sha = sha256_hex(data);
        expected.push(format!("blobs/{sha}"));
        expected.push(format!("snapshots/{commit}/{path}"));
        // Python's layout: a relative symlink to the blob named by sha256.
        let link = got.snapshot_dir.join(path);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from(format!("../../blobs/{sha}")),
            "{path}"
        );
        assert_eq!(&std::fs::read(&link).unwrap(), data, "{path}");
        assert_eq!(got.path(path), Some(link.as_path()));
        let fetched = got.files.iter().find(|f| f.file.path == *path).unwrap();
        assert_eq!(fetched.sha256, sha);
        assert_eq!(fetched.size, data.len() as u64);
    }
    expected.sort();
    assert_eq!(
        tree(&repo_dir),
        expected,
        "README and onnx/ are not fetched"
    );
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        commit
    );
    assert_eq!(
        fake.hits("/api/models/acme/tiny-model/revision/main"),
        1,
        "one listing"
    );

    // Every file was fetched at the listed commit, not at `main`.
    let resolves: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/resolve/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(resolves.len(), wanted.len());
    assert!(
        resolves
            .iter()
            .all(|p| p.starts_with(&format!("/{REPO}/resolve/{commit}/"))),
        "{resolves:?}"
    );

    // The second time, the cache alone answers.
    fake.clear_requests();
    let again = hub.fetch_model(&spec(REPO), &opts()).await.unwrap();
    assert!(again.from_cache);
    assert_eq!(again.commit, commit);
    assert_eq!(again.files.len(), wanted.len());
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn sharded_model_fetches_the_shards_its_index_names() {
    let index = br#"{"metadata":{"total_size":8},"weight_map":{
        "a.weight":"model-00001-of-00002.safetensors",
        "b.weight":"model-00002-of-00002.safetensors",
        "c.weight":"model-00002-of-00002.safetensors"}}"#;
    let root = repo_root(
        "acme/sharded",
        &[
            ("config.json", b"{}".to_vec()),
            ("model.safetensors.index.json", index.to_vec()),
            ("model-00001-of-00002.safetensors", random_bytes(1000)),
            ("model-00002-of-00002.safetensors", random_bytes(1000)),
            // A consolidated copy the index does not name (as some repos
            // ship): not fetched.
            ("consolidated.safetensors", random_bytes(2000)),
        ],
    );
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = tempfile::tempdir().unwrap();
    let got = hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec("acme/sharded"), &opts())
        .await
        .unwrap();
    let mut fetched: Vec<&str> = got.files.iter().map(|f| f.file.path.as_str()).collect();
    fetched.sort();
    assert_eq!(
        fetched,
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"
        ]
    );
    assert_eq!(fake.hits("consolidated"), 0);
}

#[tokio::test]
async fn cut_download_resumes_with_a_range_request_at_the_received_offset() {
    let files = tiny_model();
    let weights = files.iter().find(|(p, _)| *p == WEIGHTS).unwrap().1.clone();
    let root = repo_root(REPO, &files);
    // Served by the hub itself, then through the hub's redirect to a "CDN"
    // host: the Range header must reach whoever serves the bytes.
    for cdn_redirect in [false, true] {
        let mut fake_opts = FakeHubOptions::new(root.path());
        fake_opts.cdn_redirect = cdn_redirect;
        fake_opts.cut = Some(CutFault {
            path_suffix: WEIGHTS.into(),
            after: 300_000,
            times: 1,
        });
        let fake = FakeHub::start(fake_opts).await;
        let hf_home = tempfile::tempdir().unwrap();

        let got = hub(config(&fake.url(), hf_home.path(), &[]))
            .fetch_model(&spec(REPO), &opts())
            .await
            .unwrap();
        assert_eq!(
            ranges_of(&fake, REPO, WEIGHTS),
            vec![None, Some("bytes=300000-".to_string())],
            "the retry asks for the rest only (cdn_redirect: {cdn_redirect})"
        );
        if cdn_redirect {
            let cdn_ranges: Vec<Option<String>> = fake
                .requests()
                .into_iter()
                .filter(|r| r.path.starts_with("/cdn/"))
                .map(|r| r.range)
                .collect();
            assert!(
                cdn_ranges.contains(&Some("bytes=300000-".to_string())),
                "{cdn_ranges:?}"
            );
        }
        let path = got.path(WEIGHTS).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), weights);
        let blobs = tree(&got.snapshot_dir.join("../../blobs"));
        assert!(
            blobs.iter().all(|b| !b.ends_with(".incomplete")),
            "{blobs:?}"
        );
    }
}

#[tokio::test]
async fn interrupted_run_leaves_incomplete_blob_and_next_run_resumes_it() {
    let files = tiny_model();
    let weights = files.iter().find(|(p, _)| *p == WEIGHTS).unwrap().1.clone();
    let sha = sha256_hex(&weights);
    let root = repo_root(REPO, &files);
    let mut fake_opts = FakeHubOptions::new(root.path());
    // Every attempt of the first run is cut after 300,000 more bytes.
    fake_opts.cut = Some(CutFault {
        path_suffix: WEIGHTS.into(),
        after: 300_000,
        times: 3,
    });
    let fake = FakeHub::start(fake_opts).await;
    let hf_home = tempfile::tempdir().unwrap();
    let hub = hub(config(&fake.url(), hf_home.path(), &[]));

    let err = hub.fetch_model(&spec(REPO), &opts()).await.unwrap_err();
    assert!(
        matches!(err, ModelError::File(HubError::Unreachable { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(WEIGHTS), "{err}");
    let partial = hf_home
        .path()
        .join("hub/models--acme--tiny-model/blobs")
        .join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 900_000);
    assert_eq!(
        ranges_of(&fake, REPO, WEIGHTS),
        vec![
            None,
            Some("bytes=300000-".to_string()),
            Some("bytes=600000-".to_string())
        ]
    );

    // A new run knows the blob name from the listing and resumes at once.
    fake.clear_requests();
    let got = hub.fetch_model(&spec(REPO), &opts()).await.unwrap();
    assert_eq!(
        ranges_of(&fake, REPO, WEIGHTS),
        vec![Some("bytes=900000-".to_string())]
    );
    assert_eq!(std::fs::read(got.path(WEIGHTS).unwrap()).unwrap(), weights);
    assert!(!partial.exists());
}

#[tokio::test]
async fn corrupt_weights_are_refused_naming_the_file() {
    let files = tiny_model();
    let weights_sha = sha256_hex(&files.iter().find(|(p, _)| *p == WEIGHTS).unwrap().1);
    let root = repo_root(REPO, &files);
    let mut fake_opts = FakeHubOptions::new(root.path());
    fake_opts.corrupt = true;
    fake_opts.corrupt_only = Some(WEIGHTS.into());
    let fake = FakeHub::start(fake_opts).await;
    let hf_home = tempfile::tempdir().unwrap();

    let err = hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec(REPO), &opts())
        .await
        .unwrap_err();
    match &err {
        ModelError::File(HubError::Integrity { expected, .. }) => {
            assert_eq!(expected, &weights_sha)
        }
        other => panic!("expected an integrity error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(REPO) && msg.contains(WEIGHTS), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // Neither the bad blob nor a partial file nor a link to it is kept.
    let repo_dir = hf_home.path().join("hub/models--acme--tiny-model");
    let kept = tree(&repo_dir);
    assert!(
        kept.iter()
            .all(|f| !f.contains(&weights_sha) && !f.ends_with(WEIGHTS)),
        "{kept:?}"
    );
}

#[tokio::test]
async fn gated_model_without_token_says_to_set_hf_token() {
    let root = repo_root("acme/gated", &tiny_model());
    let mut fake_opts = FakeHubOptions::new(root.path());
    fake_opts.require_token = Some("hf_granted".into());
    let fake = FakeHub::start(fake_opts).await;
    let hf_home = tempfile::tempdir().unwrap();

    let err = hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec("acme/gated"), &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Gated {
                status: 401,
                token_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        msg.contains("acme/gated") && msg.contains("set HF_TOKEN"),
        "{msg}"
    );

    let err = hub(config(
        &fake.url(),
        hf_home.path(),
        &[("HF_TOKEN", "hf_wrong_secret")],
    ))
    .fetch_model(&spec("acme/gated"), &opts())
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Gated {
                token_sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hf_wrong_secret"));
    assert!(!format!("{err:?}").contains("hf_wrong_secret"));

    // The token file under HF_HOME is used too, sent as a bearer token.
    std::fs::write(hf_home.path().join("token"), "hf_granted\n").unwrap();
    fake.clear_requests();
    hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec("acme/gated"), &opts())
        .await
        .unwrap();
    let reqs = fake.requests();
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer hf_granted")),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn offline_model_comes_from_the_cache_and_names_what_is_missing() {
    let root = repo_root(REPO, &tiny_model());
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = tempfile::tempdir().unwrap();
    let offline = || {
        hub(config(
            &fake.url(),
            hf_home.path(),
            &[("HF_HUB_OFFLINE", "1")],
        ))
    };

    let err = offline()
        .fetch_model(&spec(REPO), &opts())
        .await
        .unwrap_err();
    let ModelError::Offline { missing, .. } = &err else {
        panic!("expected Offline, got {err:?}");
    };
    assert_eq!(missing.len(), 1);
    assert!(missing[0].starts_with("refs/main"), "{missing:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(REPO) && msg.contains("HF_HUB_OFFLINE") && msg.contains("refs/main"),
        "{msg}"
    );
    assert!(fake.requests().is_empty(), "offline sends nothing");

    let online = hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec(REPO), &opts())
        .await
        .unwrap();
    fake.clear_requests();
    let cached = offline().fetch_model(&spec(REPO), &opts()).await.unwrap();
    assert!(cached.from_cache);
    assert_eq!(cached.commit, online.commit);
    assert_eq!(cached.snapshot_dir, online.snapshot_dir);
    assert_eq!(cached.files.len(), online.files.len());
    for f in &online.files {
        let c = cached
            .files
            .iter()
            .find(|c| c.file.path == f.file.path)
            .unwrap();
        assert_eq!((c.sha256.as_str(), c.size), (f.sha256.as_str(), f.size));
    }
    // A pinned commit works offline too.
    let pinned = format!("{REPO}@{}", online.commit);
    assert!(
        offline()
            .fetch_model(&spec(&pinned), &opts())
            .await
            .unwrap()
            .from_cache
    );
    assert!(fake.requests().is_empty());

    // Files lost from the snapshot are named.
    std::fs::remove_file(online.snapshot_dir.join("config.json")).unwrap();
    std::fs::remove_file(online.snapshot_dir.join(WEIGHTS)).unwrap();
    let err = offline()
        .fetch_model(&spec(REPO), &opts())
        .await
        .unwrap_err();
    let ModelError::Offline { missing, .. } = &err else {
        panic!("expected Offline, got {err:?}");
    };
    assert_eq!(
        missing,
        &[
            format!("snapshots/{}/config.json", online.commit),
            format!("snapshots/{}/*.safetensors", online.commit),
        ]
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn gguf_spec_fetches_only_that_file() {
    let q8 = random_bytes(50_000);
    let root = repo_root(
        "acme/tiny-GGUF",
        &[
            ("tiny-q8_0.gguf", q8.clone()),
            ("tiny-f16.gguf", random_bytes(90_000)),
            ("README.md", b"# gguf".to_vec()),
        ],
    );
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = tempfile::tempdir().unwrap();
    let hub = hub(config(&fake.url(), hf_home.path(), &[]));

    let got = hub
        .fetch_model(&spec("acme/tiny-GGUF:tiny-q8_0.gguf"), &opts())
        .await
        .unwrap();
    assert_eq!(std::fs::read(got.gguf().unwrap()).unwrap(), q8);
    let resolves: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/resolve/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(resolves.len(), 1, "{resolves:?}");
    assert!(resolves[0].ends_with("/tiny-q8_0.gguf"));
    let repo_dir = hf_home.path().join("hub/models--acme--tiny-GGUF");
    assert_eq!(
        tree(&repo_dir),
        vec![
            format!("blobs/{}", sha256_hex(&q8)),
            "refs/main".to_string(),
            format!("snapshots/{}/tiny-q8_0.gguf", got.commit),
        ]
    );

    // A file the repo lacks: the message lists the ones it has.
    let err = hub
        .fetch_model(&spec("acme/tiny-GGUF:tiny-q4_k_m.gguf"), &opts())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no file tiny-q4_k_m.gguf")
            && msg.contains("tiny-f16.gguf")
            && msg.contains("tiny-q8_0.gguf"),
        "{msg}"
    );
    // No file named for a GGUF-only repo: say how to name one.
    let err = hub
        .fetch_model(&spec("acme/tiny-GGUF"), &opts())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("acme/tiny-GGUF:tiny-f16.gguf"), "{msg}");
}

#[tokio::test]
async fn partial_file_longer_than_the_file_is_discarded_and_downloaded_again() {
    let files = tiny_model();
    let weights = files.iter().find(|(p, _)| *p == WEIGHTS).unwrap().1.clone();
    let sha = sha256_hex(&weights);
    let root = repo_root(REPO, &files);
    let fake = FakeHub::start(FakeHubOptions::new(root.path())).await;
    let hf_home = tempfile::tempdir().unwrap();
    // A leftover from some other tool: longer than the real file. (The
    // marker says this pre-filled cache is a fake hub's, as the first
    // download into an empty one would have written.)
    let blobs = hf_home.path().join("hub/models--acme--tiny-model/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(hf_home.path().join("hub").join(FAKE_CACHE_MARKER), "").unwrap();
    std::fs::write(
        blobs.join(format!("{sha}.incomplete")),
        vec![7u8; WEIGHTS_LEN + 10],
    )
    .unwrap();

    let got = hub(config(&fake.url(), hf_home.path(), &[]))
        .fetch_model(&spec(REPO), &opts())
        .await
        .unwrap();
    assert_eq!(
        ranges_of(&fake, REPO, WEIGHTS),
        vec![Some(format!("bytes={}-", WEIGHTS_LEN + 10)), None],
        "416 for the resume, then the whole file"
    );
    assert_eq!(std::fs::read(got.path(WEIGHTS).unwrap()).unwrap(), weights);
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
}
