//! A fake Hugging Face hub on 127.0.0.1, serving files from a directory laid
//! out like the hub (`<root>/datasets/<owner>/<name>/<path>`,
//! `<root>/models/<owner>/<name>/<path>`), with the real hub's URL shapes,
//! headers and error codes.
//!
//! Used by the integration tests (on `fixtures/hub/`) and by benchmarks (on
//! the full datasets in the same layout). It can demand a token, fail the
//! first N requests with 500, serve content that does not match its ETag,
//! and redirect downloads to a "CDN" on another host name (`localhost`
//! instead of `127.0.0.1`) as the real hub does for LFS files, to check that
//! the client keeps the hub's headers and does not leak the token. For model
//! downloads it answers `Range` requests with 206, can cut a connection
//! after N bytes of a file ([`CutFault`]) and corrupt one file only, and
//! lists repos at `/api/models/{repo}/revision/{rev}` with sizes and sha256s.
//!
//! The hub's parquet convert branch: a repo folder's `_refs_convert_parquet/`
//! is served as the revision `refs/convert/parquet` (percent-encoded in the
//! URL, as the hub and its clients write it) with its own commit sha, and is
//! never part of `main`. `GET /api/datasets/{repo}/parquet[/{config}[/{split}]]`
//! lists it as the real hub does (`{config: {split: [url, ...]}}`, the urls
//! being `/api/datasets/{repo}/parquet/{config}/{split}/{n}.parquet`, which
//! redirect to the n-th file of that split on the branch).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LOCATION,
    RANGE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The commits the fake hub reports for the two datasets by default: the
/// revisions pinned in third-party repos for `openai/gsm8k` and
/// `allenai/ai2_arc`, so pinned revisions in the benchmark registry resolve.
pub const PINNED_COMMITS: &[(&str, &str)] = &[
    ("openai/gsm8k", "740312add88f781978c0658806c59bc2815b9866"),
    (
        "allenai/ai2_arc",
        "210d026faf9955653af8916fad021475a3f00453",
    ),
    (
        "HuggingFaceH4/MATH-500",
        "ff5b20257d8185524591543f8ff5993951537bb8",
    ),
    ("cais/mmlu", "c30699e8356da336a370243923dbaf21066bb9fe"),
    (
        "TIGER-Lab/MMLU-Pro",
        "b189ec765aa7ed75c8acfea42df31fdae71f97be",
    ),
    (
        "truthfulqa/truthful_qa",
        "979ec0aa226a82ec817a38ddd2f9bce1b0c8477b",
    ),
    (
        "Idavidrein/gpqa",
        "633f5ee89ab8ad4522a9f850766b73f62147ffdd",
    ),
];

/// The folder of a fake hub repo that holds its `refs/convert/parquet`
/// branch (`{config}/{split}/{nnnn}.parquet`), the layout of
/// `../shared/datasets/hub`.
pub const CONVERT_FOLDER: &str = "_refs_convert_parquet";

/// The key of [`FakeHubOptions::commits`] for a repo's convert branch:
/// `owner/name@refs/convert/parquet`.
pub fn convert_commit_key(repo_id: &str) -> String {
    format!("{repo_id}@{}", crate::hub::CONVERT_BRANCH)
}

/// `<crate>/fixtures/hub`: the small GSM8K and ARC files the tests use.
pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("hub")
}

/// How the fake hub behaves.
#[derive(Debug, Clone)]
pub struct FakeHubOptions {
    /// Directory with `datasets/<owner>/<name>/…` and `models/<owner>/<name>/…`.
    pub root: PathBuf,
    /// `owner/name` → the commit sha `X-Repo-Commit` reports for `main`
    /// ([`convert_commit_key`] for the convert branch). Repos not listed get
    /// a fixed sha derived from their id (and the branch).
    pub commits: HashMap<String, String>,
    /// When set, every hub request (not the CDN) must carry
    /// `Authorization: Bearer <token>`, else 401 (missing or wrong alike).
    pub require_token: Option<String>,
    /// Gated repos: `owner/name` -> the one token with access. Requests for
    /// such a repo (the CDN aside) without `Authorization: Bearer <that
    /// token>` get the hub's 401 `GatedRepo`, as the real hub answers for a
    /// gated repo (`Idavidrein/gpqa`); other repos are served as usual.
    pub gated: HashMap<String, String>,
    /// Answer this many requests with 500 before behaving (tests retries).
    pub fail_first: usize,
    /// Serve content whose first byte is flipped, with the ETag of the real
    /// content (tests integrity checking).
    pub corrupt: bool,
    /// Answer downloads with a 302 carrying `X-Repo-Commit` and
    /// `X-Linked-Etag`, to `http://localhost:<port>/cdn/<sha256>` (another
    /// host name than the endpoint's `127.0.0.1`), like the hub's LFS
    /// redirect to its CDN.
    pub cdn_redirect: bool,
    /// Limits `corrupt` to files whose repo path ends with this.
    pub corrupt_only: Option<String>,
    /// Cuts the connection mid-body on downloads of matching files.
    pub cut: Option<CutFault>,
}

/// A connection cut mid-download: the response announces the full
/// `Content-Length`, sends `after` bytes of the body, then drops the
/// connection, as a flaky network does to a large model file.
#[derive(Debug, Clone)]
pub struct CutFault {
    /// Applies to GETs of files whose repo path ends with this.
    pub path_suffix: String,
    /// Body bytes sent before the cut.
    pub after: u64,
    /// How many responses are cut; later ones are served whole.
    pub times: usize,
}

impl FakeHubOptions {
    /// Serves `root` with [`PINNED_COMMITS`] and no faults.
    pub fn new(root: impl Into<PathBuf>) -> FakeHubOptions {
        FakeHubOptions {
            root: root.into(),
            commits: PINNED_COMMITS
                .iter()
                .map(|(repo, sha)| (repo.to_string(), sha.to_string()))
                .collect(),
            require_token: None,
            gated: HashMap::new(),
            fail_first: 0,
            corrupt: false,
            cdn_redirect: false,
            corrupt_only: None,
            cut: None,
        }
    }

    /// Serves [`fixtures_root`].
    pub fn fixtures() -> FakeHubOptions {
        FakeHubOptions::new(fixtures_root())
    }
}

impl Default for FakeHubOptions {
    fn default() -> FakeHubOptions {
        FakeHubOptions::fixtures()
    }
}

/// One request the fake hub received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request path as sent (still percent-encoded), without the query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

/// A file's sha256, valid while its size and mtime stay the same.
struct Hashed {
    len: u64,
    mtime: Option<SystemTime>,
    sha256: String,
}

struct Shared {
    opts: FakeHubOptions,
    /// `http://127.0.0.1:<port>`, the hub's own base (parquet listing urls).
    hub_base: String,
    /// `http://localhost:<port>`, the CDN base for redirects.
    cdn_base: String,
    requests: Mutex<Vec<RecordedRequest>>,
    failures_left: AtomicUsize,
    /// Cuts left to inject ([`CutFault::times`]).
    cuts_left: AtomicUsize,
    /// sha256 per file, so big files are hashed once.
    hashes: Mutex<HashMap<PathBuf, Hashed>>,
    /// sha256 → (file, path in its repo), filled when redirecting to the CDN.
    cdn: Mutex<HashMap<String, (PathBuf, String)>>,
}

/// A running fake hub; stops when dropped (or with [`FakeHub::shutdown`]).
pub struct FakeHub {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHub").field("url", &self.url).finish()
    }
}

impl FakeHub {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test machine).
    pub async fn start(opts: FakeHubOptions) -> FakeHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake hub: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("fake hub: bound socket has no address")
            .port();
        let shared = Arc::new(Shared {
            failures_left: AtomicUsize::new(opts.fail_first),
            cuts_left: AtomicUsize::new(opts.cut.as_ref().map_or(0, |c| c.times)),
            opts,
            hub_base: format!("http://127.0.0.1:{port}"),
            cdn_base: format!("http://localhost:{port}"),
            requests: Mutex::new(Vec::new()),
            hashes: Mutex::new(HashMap::new()),
            cdn: Mutex::new(HashMap::new()),
        });
        // One fallback handler parses the path itself: the hub's model routes
        // (`/{owner}/{name}/resolve/…`) overlap every other route shape.
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeHub {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (use as `HF_ENDPOINT`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests had a path containing `path_substring`.
    pub fn hits(&self, path_substring: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.contains(path_substring))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.shared.requests.lock() {
            r.clear();
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A header value from text we built ourselves (hex, digits, URLs); never
/// fails in practice, and a placeholder beats a panic in a server task.
fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A hub-style error: status plus `X-Error-Code` / `X-Error-Message`.
fn hub_error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(code) = code {
        headers.insert(HeaderName::from_static("x-error-code"), hv(code));
    }
    headers.insert(HeaderName::from_static("x-error-message"), hv(message));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "error": message }).to_string();
    (status, headers, body).into_response()
}

/// Percent-decodes one path segment (invalid escapes are kept as is).
fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::util::percent_decode_bytes(s)).into_owned()
}

fn derived_commit(repo_type: &str, repo_id: &str) -> String {
    let digest = Sha256::digest(format!("fake-hub:{repo_type}/{repo_id}").as_bytes());
    hex::encode(digest)[..40].to_string()
}

impl Shared {
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap) {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        if let Ok(mut r) = self.requests.lock() {
            r.push(RecordedRequest {
                method: method.to_string(),
                path: uri.path().to_string(),
                authorization: text(AUTHORIZATION),
                range: text(RANGE),
            });
        }
    }

    fn commit_of(&self, repo_type: &str, repo_id: &str) -> String {
        self.opts
            .commits
            .get(repo_id)
            .cloned()
            .unwrap_or_else(|| derived_commit(repo_type, repo_id))
    }

    /// The convert branch's commit: its own, never `main`'s.
    fn convert_commit_of(&self, repo_type: &str, repo_id: &str) -> String {
        let key = convert_commit_key(repo_id);
        self.opts
            .commits
            .get(&key)
            .cloned()
            .unwrap_or_else(|| derived_commit(repo_type, &key))
    }

    /// Content and sha256 of `path` (sha memoised by size and mtime).
    fn read(&self, path: &Path) -> io::Result<(Vec<u8>, String)> {
        let meta = std::fs::metadata(path)?;
        let key = (meta.len(), meta.modified().ok());
        let data = std::fs::read(path)?;
        if let Ok(h) = self.hashes.lock()
            && let Some(hashed) = h.get(path)
            && (hashed.len, hashed.mtime) == key
        {
            return Ok((data, hashed.sha256.clone()));
        }
        let sha = hex::encode(Sha256::digest(&data));
        if let Ok(mut h) = self.hashes.lock() {
            h.insert(
                path.to_path_buf(),
                Hashed {
                    len: key.0,
                    mtime: key.1,
                    sha256: sha.clone(),
                },
            );
        }
        Ok((data, sha))
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers);
    if shared
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return hub_error(StatusCode::INTERNAL_SERVER_ERROR, None, "injected failure");
    }
    if method != Method::GET && method != Method::HEAD {
        return hub_error(StatusCode::METHOD_NOT_ALLOWED, None, "only GET and HEAD");
    }
    let segs: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["cdn", sha] => serve_cdn(&shared, &method, &headers, sha),
        ["api", "datasets", owner, name, "parquet", rest @ ..] => {
            match authorized(&shared, &headers, owner, name) {
                Some(denied) => denied,
                None => parquet_api(&shared, owner, name, rest),
            }
        }
        [
            "api",
            kind @ ("datasets" | "models"),
            owner,
            name,
            rest @ ..,
        ] => {
            let rev = match rest {
                [] => Some("main"),
                ["revision", rev] => Some(*rev),
                _ => None,
            };
            match (rev, authorized(&shared, &headers, owner, name)) {
                (_, Some(denied)) => denied,
                (Some(rev), None) => api_info(&shared, kind, owner, name, rev),
                (None, None) => hub_error(StatusCode::NOT_FOUND, None, "no such API route"),
            }
        }
        ["datasets", owner, name, "resolve", rev, path @ ..] if !path.is_empty() => {
            let repo = RepoRef {
                kind: "datasets",
                owner,
                name,
                rev,
            };
            resolve(&shared, &method, &headers, repo, path)
        }
        [owner, name, "resolve", rev, path @ ..] if !path.is_empty() => {
            let repo = RepoRef {
                kind: "models",
                owner,
                name,
                rev,
            };
            resolve(&shared, &method, &headers, repo, path)
        }
        _ => hub_error(StatusCode::NOT_FOUND, None, "no such route"),
    }
}

/// `None` when the request may proceed, else the 401 to send: every repo
/// needs [`FakeHubOptions::require_token`] when set, a gated repo
/// ([`FakeHubOptions::gated`]) its own token.
fn authorized(shared: &Shared, headers: &HeaderMap, owner: &str, name: &str) -> Option<Response> {
    let sent = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let has = |token: &String| sent == Some(format!("Bearer {token}").as_str());
    let repo_token = shared.opts.gated.get(&format!("{owner}/{name}"));
    let ok = shared.opts.require_token.as_ref().is_none_or(has) && repo_token.is_none_or(has);
    if ok {
        return None;
    }
    // The hub's wording for a gated repo without (valid) credentials.
    Some(hub_error(
        StatusCode::UNAUTHORIZED,
        Some("GatedRepo"),
        &format!(
            "Access to {owner}/{name} is restricted. You must have access to it and be \
             authenticated to access it. Please log in."
        ),
    ))
}

/// A repository revision resolved to the folder that holds its files.
struct Resolved {
    /// The revision's root folder (the repo folder, or its
    /// [`CONVERT_FOLDER`] for the convert branch).
    dir: PathBuf,
    /// The commit `X-Repo-Commit` reports.
    commit: String,
    /// Whether this is the convert branch.
    convert: bool,
}

/// Resolves the repo directory and revision (`main`, its commit, or the
/// convert branch and its commit when the repo has a [`CONVERT_FOLDER`]),
/// or the hub's 404.
#[expect(
    clippy::result_large_err,
    reason = "the error is the response to send; boxing it buys nothing here"
)]
fn repo_and_commit(
    shared: &Shared,
    kind: &str,
    owner: &str,
    name: &str,
    rev: &str,
) -> Result<Resolved, Response> {
    let repo_id = format!("{owner}/{name}");
    let unsafe_seg = |s: &str| s.is_empty() || s == "." || s == ".." || s.contains('\\');
    let repo_dir = shared.opts.root.join(kind).join(owner).join(name);
    if unsafe_seg(owner) || unsafe_seg(name) || !repo_dir.is_dir() {
        return Err(hub_error(
            StatusCode::NOT_FOUND,
            Some("RepoNotFound"),
            &format!("Repository Not Found for url: {repo_id}"),
        ));
    }
    let repo_type = kind.trim_end_matches('s');
    let commit = shared.commit_of(repo_type, &repo_id);
    let convert_dir = repo_dir.join(CONVERT_FOLDER);
    if rev == "main" || rev.eq_ignore_ascii_case(&commit) {
        Ok(Resolved {
            dir: repo_dir,
            commit,
            convert: false,
        })
    } else if convert_dir.is_dir()
        && let convert_commit = shared.convert_commit_of(repo_type, &repo_id)
        && (rev == crate::hub::CONVERT_BRANCH || rev.eq_ignore_ascii_case(&convert_commit))
    {
        Ok(Resolved {
            dir: convert_dir,
            commit: convert_commit,
            convert: true,
        })
    } else {
        Err(hub_error(
            StatusCode::NOT_FOUND,
            Some("RevisionNotFound"),
            &format!("Invalid rev id: {rev}"),
        ))
    }
}

/// A repository at a revision, as named by a resolve URL.
struct RepoRef<'a> {
    /// `datasets` or `models` (the folder under the root).
    kind: &'a str,
    owner: &'a str,
    name: &'a str,
    rev: &'a str,
}

fn resolve(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    repo: RepoRef<'_>,
    path: &[&str],
) -> Response {
    let RepoRef {
        kind,
        owner,
        name,
        rev,
    } = repo;
    if let Some(denied) = authorized(shared, headers, owner, name) {
        return denied;
    }
    let Resolved {
        dir: repo_dir,
        commit,
        convert,
    } = match repo_and_commit(shared, kind, owner, name, rev) {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let entry_missing = || {
        hub_error(
            StatusCode::NOT_FOUND,
            Some("EntryNotFound"),
            &format!("{} does not exist on \"{rev}\"", path.join("/")),
        )
    };
    if path
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('\\'))
        // The convert branch's folder is not part of `main`.
        || (!convert && path.first() == Some(&CONVERT_FOLDER))
    {
        return entry_missing();
    }
    let mut file = repo_dir;
    file.extend(path);
    if !file.is_file() {
        return entry_missing();
    }
    let (data, sha) = match shared.read(&file) {
        Ok(found) => found,
        Err(e) => return hub_error(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
    };
    let mut extra = HeaderMap::new();
    extra.insert(HeaderName::from_static("x-repo-commit"), hv(&commit));
    // Says "fixtures, not the real dataset": bench's hub client then keeps
    // these files out of any cache that holds real data.
    extra.insert(
        HeaderName::from_static(crate::hub::FAKE_HUB_HEADER),
        hv("fixtures"),
    );
    if shared.opts.cdn_redirect {
        if let Ok(mut cdn) = shared.cdn.lock() {
            cdn.insert(sha.clone(), (file, path.join("/")));
        }
        extra.insert(
            HeaderName::from_static("x-linked-etag"),
            hv(&format!("\"{sha}\"")),
        );
        extra.insert(
            HeaderName::from_static("x-linked-size"),
            hv(&data.len().to_string()),
        );
        // The real hub's own ETag on the redirect is the git oid of the LFS
        // pointer, not the content hash: clients must prefer X-Linked-Etag.
        extra.insert(ETAG, hv(&format!("\"pointer-{}\"", &sha[..16])));
        extra.insert(LOCATION, hv(&format!("{}/cdn/{sha}", shared.cdn_base)));
        return (StatusCode::FOUND, extra, Body::empty()).into_response();
    }
    extra.insert(ETAG, hv(&format!("\"{sha}\"")));
    serve_bytes(shared, method, headers, data, extra, &path.join("/"))
}

fn serve_cdn(shared: &Shared, method: &Method, headers: &HeaderMap, sha: &str) -> Response {
    let file = shared.cdn.lock().ok().and_then(|cdn| cdn.get(sha).cloned());
    let Some((file, repo_path)) = file else {
        return hub_error(StatusCode::NOT_FOUND, None, "no such object");
    };
    match shared.read(&file) {
        Ok((data, sha)) => {
            let mut extra = HeaderMap::new();
            // A storage ETag unrelated to the sha256, as S3/CloudFront send.
            extra.insert(ETAG, hv(&format!("\"cdn-{}\"", &sha[..16])));
            serve_bytes(shared, method, headers, data, extra, &repo_path)
        }
        Err(e) => hub_error(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
    }
}

/// 200 (or 206 for `Range: bytes=a-b`) with `Content-Length` and
/// `Accept-Ranges`, applying the `corrupt` and `cut` faults to the file at
/// `repo_path`.
fn serve_bytes(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    mut data: Vec<u8>,
    mut out: HeaderMap,
    repo_path: &str,
) -> Response {
    let corrupt_this = shared
        .opts
        .corrupt_only
        .as_deref()
        .is_none_or(|suffix| repo_path.ends_with(suffix));
    if shared.opts.corrupt
        && corrupt_this
        && let Some(first) = data.first_mut()
    {
        *first ^= 0xff;
    }
    let total = data.len() as u64;
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let range = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, total));
    let (status, body) = match range {
        None => (StatusCode::OK, data),
        Some(Some((start, end))) => {
            out.insert(CONTENT_RANGE, hv(&format!("bytes {start}-{end}/{total}")));
            (
                StatusCode::PARTIAL_CONTENT,
                data[start as usize..=end as usize].to_vec(),
            )
        }
        Some(None) => {
            out.insert(CONTENT_RANGE, hv(&format!("bytes */{total}")));
            return (StatusCode::RANGE_NOT_SATISFIABLE, out, Body::empty()).into_response();
        }
    };
    out.insert(CONTENT_LENGTH, hv(&body.len().to_string()));
    if *method == Method::HEAD {
        return (status, out, Body::empty()).into_response();
    }
    if let Some(cut) = &shared.opts.cut
        && repo_path.ends_with(&cut.path_suffix)
        && (cut.after as usize) < body.len()
        && shared
            .cuts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        // The announced length stays the full one; the body stream fails
        // after `after` bytes, and hyper drops the connection.
        // The pause lets hyper flush the bytes before the error aborts the
        // connection, so the client really holds `after` bytes.
        use futures::StreamExt as _;
        let sent = bytes::Bytes::copy_from_slice(&body[..cut.after as usize]);
        let stream =
            futures::stream::iter([Ok::<_, io::Error>(sent)]).chain(futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "fake hub: injected connection cut",
                ))
            }));
        return (status, out, Body::from_stream(stream)).into_response();
    }
    (status, out, Body::from(body)).into_response()
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range into an
/// inclusive `(start, end)`; `None` when unsatisfiable or malformed.
fn parse_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.checked_sub(n.min(total))?, total.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, total.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(total.checked_sub(1)?),
        ),
    };
    (start <= end && end < total).then_some((start, end))
}

/// `GET /api/{datasets,models}/{owner}/{name}[/revision/{rev}]`.
fn api_info(shared: &Shared, kind: &str, owner: &str, name: &str, rev: &str) -> Response {
    let Resolved {
        dir: repo_dir,
        commit,
        ..
    } = match repo_and_commit(shared, kind, owner, name, rev) {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let mut files = Vec::new();
    list_files(&repo_dir, "", &mut files);
    files.sort();
    let body = serde_json::json!({
        "id": format!("{owner}/{name}"),
        "sha": commit,
        "private": false,
        // What `?blobs=true` adds on the real hub. Every file here is
        // served as an LFS file (its ETag is the sha256), so the listing
        // says so too; `blobId` stands in for the git oid.
        "siblings": files
            .iter()
            .map(|f| {
                let mut path = repo_dir.clone();
                path.extend(f.split('/'));
                match shared.read(&path) {
                    Ok((data, sha)) => serde_json::json!({
                        "rfilename": f,
                        "size": data.len(),
                        "blobId": &sha[..40],
                        "lfs": { "sha256": sha, "size": data.len(), "pointerSize": 134 },
                    }),
                    Err(_) => serde_json::json!({ "rfilename": f }),
                }
            })
            .collect::<Vec<_>>(),
    });
    axum::Json(body).into_response()
}

/// The files of each split of each config on the convert branch:
/// `config -> split -> [file name]`, names sorted (the hub numbers them
/// `0000.parquet`, `0001.parquet`, ...).
fn convert_tree(
    convert_dir: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>> {
    let dirs = |p: &Path| -> Vec<(String, PathBuf)> {
        let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        v.sort();
        v
    };
    let mut tree = std::collections::BTreeMap::new();
    for (config, cdir) in dirs(convert_dir) {
        let mut splits = std::collections::BTreeMap::new();
        for (split, sdir) in dirs(&cdir) {
            let mut files: Vec<String> = std::fs::read_dir(&sdir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".parquet"))
                .collect();
            files.sort();
            if !files.is_empty() {
                splits.insert(split, files);
            }
        }
        if !splits.is_empty() {
            tree.insert(config, splits);
        }
    }
    tree
}

/// `GET /api/datasets/{repo}/parquet[/{config}[/{split}[/{n}.parquet]]]`:
/// the real hub's parquet listing of the convert branch
/// (`{config: {split: [url]}}`, `{split: [url]}`, `[url]`), and for one
/// file url a redirect to that file on the branch.
fn parquet_api(shared: &Shared, owner: &str, name: &str, rest: &[&str]) -> Response {
    let resolved =
        match repo_and_commit(shared, "datasets", owner, name, crate::hub::CONVERT_BRANCH) {
            Ok(r) => r,
            Err(_) => {
                // No conversion: the repo is unknown, or its folder has no
                // convert branch (the real hub converts every public dataset;
                // the fixtures only where `main` has no parquet).
                let repo_dir = shared.opts.root.join("datasets").join(owner).join(name);
                let (code, msg) = if repo_dir.is_dir() {
                    (None, format!("no parquet conversion of {owner}/{name}"))
                } else {
                    (
                        Some("RepoNotFound"),
                        format!("Repository Not Found for url: {owner}/{name}"),
                    )
                };
                return hub_error(StatusCode::NOT_FOUND, code, &msg);
            }
        };
    let tree = convert_tree(&resolved.dir);
    let url = |config: &str, split: &str, n: usize| {
        format!(
            "{}/api/datasets/{owner}/{name}/parquet/{}/{}/{n}.parquet",
            shared.hub_base,
            crate::hub::percent_encode(config, false),
            crate::hub::percent_encode(split, false)
        )
    };
    let urls = |config: &str, split: &str, files: &[String]| -> Vec<String> {
        (0..files.len()).map(|n| url(config, split, n)).collect()
    };
    let missing = |what: String| hub_error(StatusCode::NOT_FOUND, None, &what);
    match rest {
        [] => {
            let body: serde_json::Map<String, serde_json::Value> = tree
                .iter()
                .map(|(config, splits)| {
                    let s: serde_json::Map<String, serde_json::Value> = splits
                        .iter()
                        .map(|(split, files)| {
                            (split.clone(), serde_json::json!(urls(config, split, files)))
                        })
                        .collect();
                    (config.clone(), serde_json::Value::Object(s))
                })
                .collect();
            axum::Json(body).into_response()
        }
        [config] => match tree.get(*config) {
            Some(splits) => {
                let body: serde_json::Map<String, serde_json::Value> = splits
                    .iter()
                    .map(|(split, files)| {
                        (split.clone(), serde_json::json!(urls(config, split, files)))
                    })
                    .collect();
                axum::Json(body).into_response()
            }
            None => missing(format!("no config {config} in the parquet conversion")),
        },
        [config, split] => match tree.get(*config).and_then(|s| s.get(*split)) {
            Some(files) => axum::Json(urls(config, split, files)).into_response(),
            None => missing(format!(
                "no split {config}/{split} in the parquet conversion"
            )),
        },
        [config, split, file] => {
            let n = file
                .strip_suffix(".parquet")
                .and_then(|n| n.parse::<usize>().ok());
            let target = n.and_then(|n| tree.get(*config)?.get(*split)?.get(n));
            match target {
                Some(target) => {
                    let location = format!(
                        "{}/datasets/{owner}/{name}/resolve/{}/{}/{}/{}",
                        shared.hub_base,
                        crate::hub::percent_encode(crate::hub::CONVERT_BRANCH, false),
                        crate::hub::percent_encode(config, false),
                        crate::hub::percent_encode(split, false),
                        crate::hub::percent_encode(target, false)
                    );
                    let mut headers = HeaderMap::new();
                    headers.insert(LOCATION, hv(&location));
                    (StatusCode::FOUND, headers, Body::empty()).into_response()
                }
                None => missing(format!(
                    "no file {config}/{split}/{file} in the parquet conversion"
                )),
            }
        }
        _ => missing("no such API route".into()),
    }
}

/// Collects files under `dir` as `/`-joined paths relative to the repo.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if prefix.is_empty() && rel == CONVERT_FOLDER {
            // Another branch, not a folder of this one.
            continue;
        }
        if path.is_dir() {
            list_files(&path, &rel, out);
        } else if path.is_file() {
            out.push(rel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(parse_range("bytes=2-", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=5-100", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }

    #[test]
    fn decoding() {
        assert_eq!(
            percent_decode("refs%2Fconvert%2Fparquet"),
            "refs/convert/parquet"
        );
        assert_eq!(percent_decode("a%20b%"), "a b%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn derived_commits_are_shas() {
        let c = derived_commit("dataset", "x/y");
        assert_eq!(c.len(), 40);
        assert_eq!(c, derived_commit("dataset", "x/y"));
    }
}
