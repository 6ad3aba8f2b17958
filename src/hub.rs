//! Hugging Face hub access: resolve, download and cache dataset (and model)
//! files in the HF cache layout shared with Python's `huggingface_hub`.
//!
//! Owns: environment handling (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HOME`,
//! `HF_HUB_CACHE`, `HF_HUB_OFFLINE`), the cache layout
//! (`<cache>/datasets--owner--name/{blobs,snapshots,refs}`), sha256
//! verification against the ETag, and error messages that say what to do.
//! Does not own: reading the files (see [`crate::dataset`]).
//!
//! This is plain HTTP with `reqwest` against the hub's real URL shapes
//! (`{endpoint}/datasets/{repo}/resolve/{revision}/{path}`), not the `hf-hub`
//! crate: `hf-hub` 1.x reads no environment variables and defaults to a
//! cache directory relative to the working directory, while 0.4/0.5 ignore
//! `HF_TOKEN`, `HF_HUB_CACHE` and offline mode and never check the sha256 of
//! what they download. Here a file cached by Python (`datasets`,
//! `huggingface_hub`) is reused as is, and a file we download is usable by
//! Python: the layout is the same
//! (`blobs/<etag>`, `snapshots/<commit>/<path>` → `../../blobs/<etag>`,
//! `refs/<branch>` holding the commit, `.locks/<repo folder>/<etag>.lock`).
//!
//! The parquet convert branch ([`CONVERT_BRANCH`]) is a revision like any
//! other: its files are fetched from
//! `resolve/refs%2Fconvert%2Fparquet/{config}/{split}/{nnnn}.parquet` and
//! cached under its own commit, and [`Hub::convert_split_files`] lists a
//! split's files with `GET {endpoint}/api/datasets/{repo}/parquet` (or, offline,
//! from the cached snapshot of the branch).
//!
//! The cache is consulted first. A revision that is a commit sha is looked up
//! directly; a branch or tag name goes through `refs/<name>`, so once it has
//! been resolved it sticks to that commit until the cache is cleared. Pin
//! commit shas for reproducible runs.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

pub mod model;

pub use model::{ModelError, ModelFetchOptions, ModelFiles, ModelSpec};

use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, LOCATION, RANGE,
};
use sha2::{Digest, Sha256};

/// The public hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The hub's parquet conversion branch: every public dataset converted to
/// parquet as `{config}/{split}/{nnnn}.parquet`, with its own commits. In a
/// URL it is one percent-encoded segment (`refs%2Fconvert%2Fparquet`); in the
/// cache its ref is `refs/refs/convert/parquet`, as `huggingface_hub` writes
/// it (`refs/<revision>`).
pub const CONVERT_BRANCH: &str = "refs/convert/parquet";

/// Attempts per download (connect errors, timeouts, 5xx and 429 are retried).
const MAX_ATTEMPTS: u32 = 3;
/// Redirect hops followed by hand (hub → CDN is one; renamed repos add one).
const MAX_REDIRECTS: usize = 10;

/// Which kind of hub repository a file lives in (they differ in URL prefix
/// and cache folder name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    /// `datasets/owner/name`
    Dataset,
    /// `owner/name`
    Model,
}

impl RepoType {
    /// `"dataset"` or `"model"`, as in messages and Python's `repo_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Dataset => "dataset",
            RepoType::Model => "model",
        }
    }

    /// The URL path prefix in front of `owner/name` (`"datasets/"` or `""`).
    fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Dataset => "datasets/",
            RepoType::Model => "",
        }
    }
}

/// One file in one repository at one revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HubFile {
    /// Repository kind.
    pub repo_type: RepoType,
    /// `owner/name`, e.g. `openai/gsm8k`.
    pub repo_id: String,
    /// A commit sha (pinned) or a branch/tag name.
    pub revision: String,
    /// Path inside the repository, e.g. `main/test-00000-of-00001.parquet`.
    pub path: String,
}

impl HubFile {
    /// A file in a dataset repository.
    pub fn dataset(repo_id: &str, revision: &str, path: &str) -> HubFile {
        HubFile {
            repo_type: RepoType::Dataset,
            repo_id: repo_id.to_string(),
            revision: revision.to_string(),
            path: path.to_string(),
        }
    }

    /// A file in a model repository (e.g. a `tokenizer.json`).
    pub fn model(repo_id: &str, revision: &str, path: &str) -> HubFile {
        HubFile {
            repo_type: RepoType::Model,
            ..HubFile::dataset(repo_id, revision, path)
        }
    }

    /// The repository's folder name in the cache, exactly as Python's
    /// `huggingface_hub` names it: `datasets--owner--name` or
    /// `models--owner--name`.
    pub fn repo_folder(&self) -> String {
        format!(
            "{}s--{}",
            self.repo_type.as_str(),
            self.repo_id.replace('/', "--")
        )
    }
}

impl fmt::Display for HubFile {
    /// `dataset openai/gsm8k, file main/test-….parquet, revision 7403…`: every
    /// error message starts with this so the user knows exactly what failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, file {}, revision {}",
            self.repo_type.as_str(),
            self.repo_id,
            self.path,
            self.revision
        )
    }
}

/// Where the hub is and how to talk to it. Built from the environment with
/// [`HubConfig::from_env`]; `Debug` never prints the token.
#[derive(Clone)]
pub struct HubConfig {
    /// Base URL, `HF_ENDPOINT` or `https://huggingface.co`.
    pub endpoint: String,
    /// Bearer token (`HF_TOKEN`, `HF_TOKEN_PATH`, `$HF_HOME/token`).
    pub token: Option<String>,
    /// The hub cache directory (`HF_HUB_CACHE`, `$HF_HOME/hub`, ...).
    pub cache_dir: PathBuf,
    /// Never touch the network (`HF_HUB_OFFLINE=1` or `--offline`).
    pub offline: bool,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token must never reach logs, run records or bug reports.
        f.debug_struct("HubConfig")
            .field("endpoint", &crate::redact::strip_userinfo(&self.endpoint))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .finish()
    }
}

impl HubConfig {
    /// Reads the process environment; see [`HubConfig::from_vars`] for the
    /// precedence rules.
    pub fn from_env() -> HubConfig {
        HubConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from a variable lookup, with the same
    /// precedence as Python's `huggingface_hub` (empty values count as unset):
    ///
    /// - endpoint: `HF_ENDPOINT` (trailing `/` trimmed), else
    ///   `https://huggingface.co`;
    /// - token: unless `HF_HUB_DISABLE_IMPLICIT_TOKEN` is true, `HF_TOKEN`,
    ///   else the file `HF_TOKEN_PATH`, else `$HF_HOME/token` (`HF_HOME`
    ///   defaulting to `$XDG_CACHE_HOME/huggingface`, then
    ///   `~/.cache/huggingface`); trimmed, empty means none;
    /// - cache: `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`,
    ///   `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`;
    /// - offline: `HF_HUB_OFFLINE` is `1`, `ON`, `YES` or `TRUE` (any case).
    ///
    /// Token files are read here (a missing or unreadable one means no
    /// token); nothing else touches the system, so tests can pass a closure
    /// over a map instead of mutating the process environment.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> HubConfig {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let home = var("HOME")
            .or_else(|| var("USERPROFILE"))
            .map(PathBuf::from);
        let path_var = |name: &str| var(name).map(|v| expand_home(&v, home.as_deref()));

        let endpoint = var("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());

        // Without HOME we cannot do better than the working directory; every
        // real system sets it, and the other variables still take priority.
        let home_cache = home
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache");
        let hf_home = path_var("HF_HOME").unwrap_or_else(|| {
            path_var("XDG_CACHE_HOME")
                .unwrap_or(home_cache)
                .join("huggingface")
        });

        let token = if var("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some_and(|v| is_truthy(&v)) {
            None
        } else {
            var("HF_TOKEN")
                .map(|t| t.trim().to_string())
                .or_else(|| {
                    let file = path_var("HF_TOKEN_PATH").unwrap_or_else(|| hf_home.join("token"));
                    std::fs::read_to_string(file)
                        .ok()
                        .map(|t| t.trim().to_string())
                })
                .filter(|t| !t.is_empty())
        };

        let cache_dir = path_var("HF_HUB_CACHE")
            .or_else(|| path_var("HUGGINGFACE_HUB_CACHE"))
            .unwrap_or_else(|| hf_home.join("hub"));

        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v));

        HubConfig {
            endpoint,
            token,
            cache_dir,
            offline,
        }
    }

    /// `<cache_dir>/datasets--owner--name` (or `models--…`) for `file`.
    pub fn repo_dir(&self, file: &HubFile) -> PathBuf {
        self.cache_dir.join(file.repo_folder())
    }
}

/// `1`, `ON`, `YES`, `TRUE` in any case, as Python's `_is_true`.
fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// Expands a leading `~` like Python's `os.path.expanduser`, which the hub
/// library applies to every path variable.
fn expand_home(value: &str, home: Option<&Path>) -> PathBuf {
    match (value.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.to_path_buf(),
        (Some(rest), Some(home)) if rest.starts_with('/') || rest.starts_with('\\') => {
            home.join(&rest[1..])
        }
        _ => PathBuf::from(value),
    }
}

/// Why a hub file could not be had. Every message names the repository,
/// the file and the revision (via [`HubFile`]'s `Display`) and says what to
/// do; none ever contains the token.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Offline mode is on and the file is not cached (or its cached copy is
    /// corrupt and cannot be fetched again).
    #[error("{}", offline_message(file, cache_dir, corrupt.as_deref()))]
    Offline {
        /// The file asked for.
        file: Box<HubFile>,
        /// The cache directory that was searched.
        cache_dir: PathBuf,
        /// The cached copy whose sha256 did not match, if that was the cause.
        corrupt: Option<PathBuf>,
    },
    /// The hub could not be reached (connection refused, DNS, timeout,
    /// connection lost mid-download) and the file is not cached.
    #[error(
        "{file}: cannot reach the hub at {endpoint} ({reason}) and the file is not in the \
         local cache {cache}. Check the network and HF_ENDPOINT; or {advice}",
        cache = cache_dir.display(),
        advice = copy_advice(file, cache_dir)
    )]
    Unreachable {
        /// The file asked for.
        file: Box<HubFile>,
        /// The endpoint that was tried.
        endpoint: String,
        /// The cache directory that was searched.
        cache_dir: PathBuf,
        /// What went wrong, from the HTTP client.
        reason: String,
    },
    /// The hub answered 401 or 403.
    #[error("{}", unauthorized_message(file, *status, *token_sent))]
    Unauthorized {
        /// The file asked for.
        file: Box<HubFile>,
        /// 401 or 403.
        status: u16,
        /// Whether an `Authorization` header was sent.
        token_sent: bool,
    },
    /// The hub answered 404 (or 401 with `X-Error-Code: RepoNotFound`).
    #[error("{}", not_found_message(file, code.as_deref()))]
    NotFound {
        /// The file asked for.
        file: Box<HubFile>,
        /// The hub's `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
        /// `EntryNotFound`), when it sent one.
        code: Option<String>,
    },
    /// Any other unexpected HTTP status (after retries for 5xx and 429).
    #[error(
        "{file}: the hub at {endpoint} answered HTTP {status}{}",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Http {
        /// The file asked for.
        file: Box<HubFile>,
        /// The endpoint that answered.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The hub's `X-Error-Message`, when it sent one.
        message: Option<String>,
    },
    /// The downloaded content does not hash to the sha256 the hub announced.
    /// Nothing was cached.
    #[error(
        "{file}: the downloaded content has sha256 {actual} but the hub announced {expected}; \
         the download was corrupted or altered on the way and was not cached. Retry; if it \
         persists, check any proxy or mirror in HF_ENDPOINT"
    )]
    Integrity {
        /// The file asked for.
        file: Box<HubFile>,
        /// The sha256 from the hub's ETag.
        expected: String,
        /// The sha256 of what arrived.
        actual: String,
    },
    /// bench's fake hub answered, and the cache holds other data: its
    /// fixtures would later pass for the real dataset.
    #[error(
        "{file}: the hub at this HF_ENDPOINT is bench's fake hub (fixtures), and the cache {} holds other data; give the fake its own cache (HF_HUB_CACHE=<empty dir>) so its few rows never pass for the real dataset", cache_dir.display()
    )]
    FakeHubSharedCache {
        /// The file asked for.
        file: Box<HubFile>,
        /// The cache.
        cache_dir: PathBuf,
    },
    /// The cache is a fake hub's, and the endpoint is a real hub.
    #[error(
        "the cache {} holds bench's fake-hub fixtures (it has a {FAKE_CACHE_MARKER} file), so it is not used with the hub at {endpoint}; set HF_HUB_CACHE to another directory", cache_dir.display()
    )]
    FakeCacheForRealHub {
        /// The cache.
        cache_dir: PathBuf,
        /// The hub endpoint.
        endpoint: String,
    },
    /// The hub's answer lacked something we need (commit, ETag) or carried
    /// a value that is unsafe as a file name.
    #[error("{file}: unexpected answer from the hub at {endpoint}: {reason}")]
    BadResponse {
        /// The file asked for.
        file: Box<HubFile>,
        /// The endpoint that answered.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// The repo id, revision or path cannot name a hub file (empty, `..`,
    /// backslash, ...).
    #[error("{file}: invalid hub file reference: {reason}")]
    InvalidFile {
        /// The file asked for.
        file: Box<HubFile>,
        /// What was wrong.
        reason: String,
    },
    /// Reading or writing the cache failed.
    #[error("{file}: cache I/O error on {}", path.display())]
    Io {
        /// The file asked for.
        file: Box<HubFile>,
        /// The cache path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The hub's parquet listing has no such config/split.
    #[error(
        "{file}: the hub's parquet listing (GET /api/datasets/{}/parquet) has no split {} (it lists: {known})",
        file.repo_id,
        file.path
    )]
    NoConvertedSplit {
        /// The repo, branch and `config/split` asked for.
        file: Box<HubFile>,
        /// The `config/split`s it lists.
        known: String,
    },
    /// The HTTP client could not be built (TLS initialisation).
    #[error("cannot set up the HTTP client for the hub: {reason}")]
    Client {
        /// The client builder's error.
        reason: String,
    },
}

/// How to get a file onto a machine without hub access.
fn copy_advice(file: &HubFile, cache_dir: &Path) -> String {
    let folder = file.repo_folder();
    format!(
        "run the same command on a machine with access to the hub, then copy <cache dir>/{folder} \
         from there (its HF_HUB_CACHE, by default ~/.cache/huggingface/hub) to this machine's {}, \
         or point HF_HUB_CACHE at a copy of that cache",
        cache_dir.join(&folder).display()
    )
}

fn offline_message(file: &HubFile, cache_dir: &Path, corrupt: Option<&Path>) -> String {
    let what = match corrupt {
        Some(path) => format!(
            "the cached copy {} is corrupt (its sha256 does not match its blob name)",
            path.display()
        ),
        None => format!("the file is not in the local cache {}", cache_dir.display()),
    };
    format!(
        "{file}: {what} and offline mode is on (HF_HUB_OFFLINE or --offline), so it cannot be \
         downloaded. Turn offline mode off, or {}",
        copy_advice(file, cache_dir)
    )
}

fn unauthorized_message(file: &HubFile, status: u16, token_sent: bool) -> String {
    if token_sent {
        format!(
            "{file}: the hub answered HTTP {status}: the token was rejected or has no access to \
             this repo (it came from HF_TOKEN, HF_TOKEN_PATH or $HF_HOME/token); for a gated \
             repo, accept its terms on the hub page with the token's account"
        )
    } else {
        format!(
            "{file}: the hub answered HTTP {status}: the repo is gated or private: set HF_TOKEN \
             to a token with access (or log in with `huggingface-cli login`)"
        )
    }
}

fn not_found_message(file: &HubFile, code: Option<&str>) -> String {
    let pinned = is_commit_sha(&file.revision);
    match code {
        Some("RepoNotFound") => format!(
            "{file}: the hub has no {} repository {} (or it is private and no valid token was \
             sent: set HF_TOKEN)",
            file.repo_type.as_str(),
            file.repo_id
        ),
        Some("RevisionNotFound") => format!(
            "{file}: revision {} does not exist in {}{}",
            file.revision,
            file.repo_id,
            if pinned {
                "; it is a pinned commit sha, so the pin is wrong or the repo's history was \
                 rewritten"
            } else {
                ""
            }
        ),
        Some("EntryNotFound") => format!(
            "{file}: no file {} in {} at revision {}{}",
            file.path,
            file.repo_id,
            file.revision,
            if pinned {
                "; the revision is a pinned commit sha, so the file must exist in that exact \
                 commit (it may only have been added or renamed later)"
            } else {
                ""
            }
        ),
        _ => format!(
            "{file}: not found on the hub (HTTP 404): the repository, the revision or the file \
             does not exist{}",
            if pinned {
                " (the revision is a pinned commit sha)"
            } else {
                ""
            }
        ),
    }
}

/// `owner/name[@revision]` → `(owner/name, revision or "main")`, or `None`
/// when `spec` is not a hub model id (a path, an empty part, a name with
/// characters the hub does not allow). Shared by `--tokenizer-path` and
/// `--model`.
pub fn parse_hub_id(spec: &str) -> Option<(&str, &str)> {
    let (repo, revision) = match spec.split_once('@') {
        Some((repo, rev)) if !rev.is_empty() && !rev.contains(char::is_whitespace) => (repo, rev),
        Some(_) => return None,
        None => (spec, "main"),
    };
    let (owner, name) = repo.split_once('/')?;
    let part_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part_ok(owner) && part_ok(name)).then_some((repo, revision))
}

/// A 40-hex git commit sha (what `X-Repo-Commit` carries and what pins use).
pub fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A 64-hex sha256, which is what the hub's ETag is for LFS/Xet files.
fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Normalises an ETag header value: drops a weak `W/` prefix and quotes.
fn normalize_etag(raw: &str) -> String {
    let raw = raw.trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    raw.trim_matches('"').to_string()
}

/// The relative symlink target from `snapshots/<commit>/<path>` to
/// `blobs/<etag>`: `../../blobs/<etag>` plus one `../` per directory in
/// `path`, as Python's `huggingface_hub` creates it (so the cache folder can
/// be moved or copied as a whole).
pub fn blob_link_target(path_in_repo: &str, etag: &str) -> PathBuf {
    let depth = path_in_repo.split('/').filter(|c| !c.is_empty()).count();
    let mut target = PathBuf::new();
    // One `..` per component of `<commit>/<path>` except the file itself,
    // plus one to leave `snapshots`.
    for _ in 0..depth + 1 {
        target.push("..");
    }
    target.push("blobs");
    target.push(etag);
    target
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/`
/// when `keep_slash`), like Python's `urllib.parse.quote`.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path segment that is safe to join under the cache directory.
fn safe_segment(seg: &str) -> bool {
    !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0', ':'])
}

/// Checks that `file` cannot escape the cache directory or build a bogus URL.
fn validate(file: &HubFile) -> Result<(), String> {
    let repo_parts: Vec<&str> = file.repo_id.split('/').collect();
    if repo_parts.len() > 2 || !repo_parts.iter().all(|p| safe_segment(p)) {
        return Err(format!(
            "repo id {:?} must be `owner/name` (or a bare legacy model name)",
            file.repo_id
        ));
    }
    if !file.revision.split('/').all(safe_segment) {
        return Err(format!(
            "revision {:?} is not a valid git revision",
            file.revision
        ));
    }
    if file.path.starts_with('/') || !file.path.split('/').all(safe_segment) {
        return Err(format!(
            "path {:?} must be relative to the repository root, without `.`/`..` or empty parts",
            file.path
        ));
    }
    Ok(())
}

/// A value from the hub that becomes a file name (ETag → blob, commit →
/// snapshot folder) must not be able to escape the cache.
fn safe_file_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A memoised hash: valid while the file keeps this size and mtime.
struct HashEntry {
    len: u64,
    mtime: Option<SystemTime>,
    sha256: String,
}

/// Process-wide memo of content hashes, keyed by path and invalidated by
/// size or mtime change, so a multi-megabyte cached file is hashed once per
/// process rather than on every fetch.
fn hash_memo() -> &'static Mutex<HashMap<PathBuf, HashEntry>> {
    static MEMO: OnceLock<Mutex<HashMap<PathBuf, HashEntry>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// sha256 (hex) and size of the file at `path`, reading it in blocks.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// [`hash_file`] through the process-wide memo, off the async threads.
async fn hash_file_memo(path: &Path) -> io::Result<(String, u64)> {
    let meta = std::fs::metadata(path)?;
    let key = (meta.len(), meta.modified().ok());
    if let Ok(memo) = hash_memo().lock()
        && let Some(entry) = memo.get(path)
        && (entry.len, entry.mtime) == key
    {
        return Ok((entry.sha256.clone(), entry.len));
    }
    let owned = path.to_path_buf();
    let (sha, size) = tokio::task::spawn_blocking(move || hash_file(&owned))
        .await
        .map_err(io::Error::other)??;
    remember_hash(path, &sha);
    Ok((sha, size))
}

/// Records that `path` (as it is now on disk) hashes to `sha`.
fn remember_hash(path: &Path, sha: &str) {
    if let Ok(meta) = std::fs::metadata(path)
        && let Ok(mut memo) = hash_memo().lock()
    {
        memo.insert(
            path.to_path_buf(),
            HashEntry {
                len: meta.len(),
                mtime: meta.modified().ok(),
                sha256: sha.to_string(),
            },
        );
    }
}

fn forget_hash(path: &Path) {
    if let Ok(mut memo) = hash_memo().lock() {
        memo.remove(path);
    }
}

/// What the cache holds for a file.
enum CacheLookup {
    Hit(FetchedFile),
    /// Not there (or a dangling link).
    Miss,
    /// There but its content does not match its blob name; when online the
    /// blob and link have already been removed.
    Corrupt(PathBuf),
}

/// The hub's metadata for one file, read from the hub's own responses
/// (never the CDN's, whose ETag is something else).
#[derive(Default)]
struct HubMeta {
    commit: Option<String>,
    etag: Option<String>,
    /// The answer came from bench's fake hub ([`FAKE_HUB_HEADER`]).
    fake: bool,
}

/// Response header by which bench's fake hub says it serves fixtures.
pub const FAKE_HUB_HEADER: &str = "x-bench-fake-hub";

/// File in a cache directory that marks it as holding fake-hub fixtures.
/// The fake hub serves its few-row fixtures under the real pinned commits,
/// so a cache shared with real runs would later serve those rows as the real
/// dataset; the marker keeps the two apart.
pub const FAKE_CACHE_MARKER: &str = "BENCH_FAKE_HUB_CACHE";

/// Whether `cache_dir` is marked as a fake-hub cache.
pub fn is_fake_cache(cache_dir: &Path) -> bool {
    cache_dir.join(FAKE_CACHE_MARKER).is_file()
}

/// Whether a hub endpoint is on this machine (fakes and local mirrors).
fn is_loopback_endpoint(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A failed download attempt, and whether trying again may help.
struct AttemptError {
    error: HubError,
    retry: bool,
}

impl AttemptError {
    fn fatal(error: HubError) -> AttemptError {
        AttemptError {
            error,
            retry: false,
        }
    }
}

/// Removes a temporary file unless told the file was moved into place, so a
/// failed or cancelled download leaves no `.incomplete` behind.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A client for the hub's file-download endpoint, writing into the HF cache.
#[derive(Debug, Clone)]
pub struct Hub {
    cfg: HubConfig,
    client: reqwest::Client,
}

impl Hub {
    /// Builds the HTTP client (user agent `bench/<version>`, no automatic
    /// redirects: they are followed by hand so the hub's headers are kept
    /// and the token never goes to another host).
    pub fn new(cfg: HubConfig) -> Result<Hub, HubError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("bench/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| HubError::Client {
                reason: e.to_string(),
            })?;
        // Whoever built the config: messages anywhere mask the token and
        // the endpoint's credentials.
        let mut secrets = crate::redact::Redactor::new();
        secrets
            .secret(cfg.token.as_deref().unwrap_or_default())
            .url(&cfg.endpoint);
        crate::redact::install(&secrets);
        Ok(Hub { cfg, client })
    }

    /// The configuration this hub was built with.
    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// The snapshot path of `file` if the cache has it, without network and
    /// without checking its content (use [`Hub::fetch`] for that).
    pub fn cached_path(&self, file: &HubFile) -> Option<PathBuf> {
        validate(file).ok()?;
        let repo_dir = self.cfg.repo_dir(file);
        let commit = cached_commit(&repo_dir, &file.revision)?;
        let snap = snapshot_path(&repo_dir, &commit, &file.path);
        snap.is_file().then_some(snap)
    }

    /// The files of split `split` of config `config` on the parquet convert
    /// branch ([`CONVERT_BRANCH`]), as paths in that branch, in order (a
    /// large split has several: `0000.parquet`, `0001.parquet`, ...).
    ///
    /// Asks `GET {endpoint}/api/datasets/{repo}/parquet`, whose answer is
    /// `{config: {split: [url, ...]}}`; a url is either the hub's API form
    /// `.../parquet/{config}/{split}/{n}.parquet` (file `{config}/{split}/{n:04}.parquet`,
    /// the name the conversion gives the n-th file) or a resolve url on the
    /// branch (its path taken as is). Offline, or when the hub cannot be
    /// reached, the split's files in the cached snapshot of the branch are
    /// used, so a run that worked once works again without network.
    pub async fn convert_split_files(
        &self,
        repo_id: &str,
        config: &str,
        split: &str,
    ) -> Result<Vec<String>, HubError> {
        let file = HubFile::dataset(repo_id, CONVERT_BRANCH, &format!("{config}/{split}"));
        validate(&file).map_err(|reason| HubError::InvalidFile {
            file: Box::new(file.clone()),
            reason,
        })?;
        let cached = || self.cached_convert_files(&file, config, split);
        if self.cfg.offline {
            return cached().ok_or_else(|| HubError::Offline {
                file: Box::new(file.clone()),
                cache_dir: self.cfg.cache_dir.clone(),
                corrupt: None,
            });
        }
        let listing = match self.parquet_listing(&file).await {
            Ok(listing) => listing,
            Err(HubError::Unreachable { .. }) if let Some(found) = cached() => return Ok(found),
            Err(e) => return Err(e),
        };
        let urls = listing
            .get(config)
            .and_then(|splits| splits.get(split))
            .filter(|urls| !urls.is_empty())
            .ok_or_else(|| {
                let known: Vec<String> = listing
                    .iter()
                    .flat_map(|(c, splits)| splits.keys().map(move |s| format!("{c}/{s}")))
                    .collect();
                HubError::NoConvertedSplit {
                    file: Box::new(file.clone()),
                    known: if known.is_empty() {
                        "nothing".into()
                    } else {
                        known.join(", ")
                    },
                }
            })?;
        urls.iter()
            .map(|url| {
                convert_path_of_url(url, config, split).ok_or_else(|| HubError::BadResponse {
                    file: Box::new(file.clone()),
                    endpoint: self.shown_endpoint(),
                    reason: format!("the parquet listing names a file url that is not on the convert branch: {url}"),
                })
            })
            .collect()
    }

    /// `GET {endpoint}/api/datasets/{repo}/parquet`, retried like a
    /// download; `file` names the request in errors.
    async fn parquet_listing(&self, file: &HubFile) -> Result<ParquetListing, HubError> {
        let url = format!(
            "{}/api/datasets/{}/parquet",
            self.cfg.endpoint,
            percent_encode(&file.repo_id, true)
        );
        let mut attempt = 1;
        loop {
            let result = async {
                let mut req = self.client.get(&url);
                let token_sent = self.cfg.token.is_some();
                if let Some(token) = &self.cfg.token {
                    req = req.header(AUTHORIZATION, format!("Bearer {token}"));
                }
                let resp = req.send().await.map_err(|e| self.network_error(file, &e))?;
                self.check_status(file, &resp, token_sent)?;
                let body = resp
                    .text()
                    .await
                    .map_err(|e| self.network_error(file, &e))?;
                serde_json::from_str::<ParquetListing>(&body).map_err(|e| {
                    AttemptError::fatal(HubError::BadResponse {
                        file: Box::new(file.clone()),
                        endpoint: self.shown_endpoint(),
                        reason: format!(
                            "the parquet listing is not {{config: {{split: [url]}}}}: {e}"
                        ),
                    })
                })
            }
            .await;
            match result {
                Ok(listing) => return Ok(listing),
                Err(e) if e.retry && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    /// The split's parquet files in the cached snapshot of the convert
    /// branch (the commit its ref points to), sorted; `None` when there are
    /// none.
    fn cached_convert_files(
        &self,
        file: &HubFile,
        config: &str,
        split: &str,
    ) -> Option<Vec<String>> {
        let repo_dir = self.cfg.repo_dir(file);
        let commit = cached_commit(&repo_dir, CONVERT_BRANCH)?;
        let dir = snapshot_path(&repo_dir, &commit, &format!("{config}/{split}"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        names.sort();
        (!names.is_empty()).then(|| {
            names
                .into_iter()
                .map(|n| format!("{config}/{split}/{n}"))
                .collect()
        })
    }

    /// Makes `file` available in the local cache and returns where it is.
    ///
    /// The cache is tried first (content verified against the blob name when
    /// that is a sha256); on a miss, and unless offline, the file is
    /// downloaded from `{endpoint}/[datasets/]{repo}/resolve/{revision}/{path}`
    /// with up to 3 attempts, verified, and laid out as Python's
    /// `huggingface_hub` does.
    pub async fn fetch(&self, file: &HubFile) -> Result<FetchedFile, HubError> {
        self.fetch_with(file, &FetchOptions::default()).await
    }

    /// [`Hub::fetch`] with options: a byte progress bar, the blob name
    /// expected from a repo listing (so a download interrupted in an earlier
    /// run resumes on the first request), and whether a cache hit is
    /// re-hashed.
    ///
    /// Downloads go to `blobs/<etag>.incomplete`. A download cut by the
    /// network keeps that file, and the next attempt (the retry here, or a
    /// later run) asks for the rest with `Range: bytes=<size>-`, as
    /// `huggingface_hub` does; the sha256 covers the whole file either way.
    pub async fn fetch_with(
        &self,
        file: &HubFile,
        opts: &FetchOptions,
    ) -> Result<FetchedFile, HubError> {
        validate(file).map_err(|reason| HubError::InvalidFile {
            file: Box::new(file.clone()),
            reason,
        })?;
        let repo_dir = self.cfg.repo_dir(file);
        // Offline too: the cache alone would then pass fixture rows off as
        // the real dataset of the configured (real) hub.
        if is_fake_cache(&self.cfg.cache_dir) && !is_loopback_endpoint(&self.cfg.endpoint) {
            return Err(HubError::FakeCacheForRealHub {
                cache_dir: self.cfg.cache_dir.clone(),
                endpoint: self.shown_endpoint(),
            });
        }
        match self
            .lookup_cache(file, &repo_dir, opts.verify_cached)
            .await?
        {
            CacheLookup::Hit(found) => return Ok(found),
            CacheLookup::Corrupt(path) if self.cfg.offline => {
                return Err(HubError::Offline {
                    file: Box::new(file.clone()),
                    cache_dir: self.cfg.cache_dir.clone(),
                    corrupt: Some(path),
                });
            }
            CacheLookup::Corrupt(_) | CacheLookup::Miss => {}
        }
        if self.cfg.offline {
            return Err(HubError::Offline {
                file: Box::new(file.clone()),
                cache_dir: self.cfg.cache_dir.clone(),
                corrupt: None,
            });
        }

        // The blob name (ETag) of the file, once known: it names the
        // `.incomplete` file a retry resumes from.
        let mut etag_hint = opts.expected_etag.clone();
        let mut attempt = 1;
        loop {
            match self.download(file, &repo_dir, opts, &mut etag_hint).await {
                Ok(fetched) => return Ok(fetched),
                Err(e) if e.retry && attempt < MAX_ATTEMPTS => {
                    // 250 ms, 500 ms: enough for a restarting proxy or a
                    // brief 503, short enough not to stall a test suite.
                    tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    async fn lookup_cache(
        &self,
        file: &HubFile,
        repo_dir: &Path,
        verify: bool,
    ) -> Result<CacheLookup, HubError> {
        let Some(commit) = cached_commit(repo_dir, &file.revision) else {
            return Ok(CacheLookup::Miss);
        };
        let snap = snapshot_path(repo_dir, &commit, &file.path);
        // `is_file` follows the link, so a dangling link counts as a miss.
        if !snap.is_file() {
            return Ok(CacheLookup::Miss);
        }
        let io_err = |path: &Path, source| HubError::Io {
            file: Box::new(file.clone()),
            path: path.to_path_buf(),
            source,
        };
        // The blob name is the ETag; for LFS files it is the sha256 of the
        // content, which is the only integrity check the cache allows. A
        // copied snapshot (no symlink support) has no blob name to check.
        let blob = std::fs::read_link(&snap).ok().and_then(|target| {
            let name = target.file_name()?.to_str()?.to_string();
            Some((repo_dir.join("blobs").join(&name), name))
        });
        let real = blob.as_ref().map_or(snap.clone(), |(path, _)| path.clone());
        // Unverified hits (multi-GB model weights, as Python treats every
        // hit): the blob name is the sha256 for LFS files; anything else is
        // small enough to hash.
        if !verify
            && let Some((_, etag)) = &blob
            && is_sha256(etag)
        {
            let size = std::fs::metadata(&real)
                .map_err(|e| io_err(&real, e))?
                .len();
            return Ok(CacheLookup::Hit(FetchedFile {
                file: file.clone(),
                local_path: snap,
                commit,
                sha256: etag.to_ascii_lowercase(),
                size,
                from_cache: true,
            }));
        }
        let (sha, size) = hash_file_memo(&real).await.map_err(|e| io_err(&real, e))?;
        if let Some((blob_path, etag)) = &blob
            && is_sha256(etag)
            && !etag.eq_ignore_ascii_case(&sha)
        {
            forget_hash(blob_path);
            if !self.cfg.offline {
                // Remove both so the download below starts clean; Python
                // would otherwise keep serving the bad blob too.
                let _ = std::fs::remove_file(blob_path);
                let _ = std::fs::remove_file(&snap);
            }
            return Ok(CacheLookup::Corrupt(snap));
        }
        Ok(CacheLookup::Hit(FetchedFile {
            file: file.clone(),
            local_path: snap,
            commit,
            sha256: sha,
            size,
            from_cache: true,
        }))
    }

    /// The endpoint as error messages show it: without `user:pass@`.
    fn shown_endpoint(&self) -> String {
        crate::redact::strip_userinfo(&self.cfg.endpoint)
    }

    /// Files from the fake hub go only into a cache marked for them: an
    /// empty (or new) cache gets the marker, one holding anything else is
    /// refused.
    fn claim_fake_cache(&self, file: &HubFile) -> Result<(), AttemptError> {
        let dir = &self.cfg.cache_dir;
        if is_fake_cache(dir) {
            return Ok(());
        }
        let empty = match std::fs::read_dir(dir) {
            Ok(mut d) => d.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(_) => false,
        };
        if !empty {
            return Err(AttemptError::fatal(HubError::FakeHubSharedCache {
                file: Box::new(file.clone()),
                cache_dir: dir.clone(),
            }));
        }
        std::fs::create_dir_all(dir)
            .and_then(|_| {
                std::fs::write(
                    dir.join(FAKE_CACHE_MARKER),
                    "This cache holds bench's fake-hub fixtures (a few rows per dataset under the real \
                     commit shas). bench refuses to use it for a hub that is not on this machine.\n",
                )
            })
            .map_err(|e| {
                AttemptError::fatal(HubError::FakeHubSharedCache {
                    file: Box::new(file.clone()),
                    cache_dir: PathBuf::from(format!("{} ({e})", dir.display())),
                })
            })
    }

    /// The resolve URL for `file` on the configured endpoint.
    fn resolve_url(&self, file: &HubFile) -> String {
        format!(
            "{}/{}{}/resolve/{}/{}",
            self.cfg.endpoint,
            file.repo_type.url_prefix(),
            percent_encode(&file.repo_id, true),
            percent_encode(&file.revision, false),
            percent_encode(&file.path, true)
        )
    }

    /// One download attempt: request, lock, stream to a temp blob while
    /// hashing, verify, move into place, link the snapshot, write the ref.
    async fn download(
        &self,
        file: &HubFile,
        repo_dir: &Path,
        opts: &FetchOptions,
        etag_hint: &mut Option<String>,
    ) -> Result<FetchedFile, AttemptError> {
        // A partial blob left by an earlier attempt: ask for the rest only.
        let hinted = etag_hint.clone().filter(|e| safe_file_name(e));
        let resume_from = hinted.as_ref().and_then(|etag| {
            let partial = repo_dir.join("blobs").join(format!("{etag}.incomplete"));
            std::fs::metadata(partial)
                .ok()
                .map(|m| m.len())
                .filter(|n| *n > 0)
        });
        let (mut resp, meta, token_sent) = self.request(file, resume_from).await?;
        if meta.etag.is_some() {
            etag_hint.clone_from(&meta.etag);
        }
        let retry_fresh = |reason: String| AttemptError {
            error: HubError::BadResponse {
                file: Box::new(file.clone()),
                endpoint: self.shown_endpoint(),
                reason,
            },
            retry: true,
        };
        if let (Some(from), Some(etag)) = (resume_from, &hinted)
            && resp.status() == reqwest::StatusCode::RANGE_NOT_SATISFIABLE
        {
            // The partial file is as long as the file or longer: start over.
            let _ = std::fs::remove_file(repo_dir.join("blobs").join(format!("{etag}.incomplete")));
            return Err(retry_fresh(format!(
                "cannot resume the download at byte {from} (HTTP 416)"
            )));
        }
        self.check_status(file, &resp, token_sent)?;
        if let Some(from) = resume_from
            && meta.etag.as_deref() != hinted.as_deref()
        {
            // The file changed on the hub since the partial download; the
            // next attempt looks for a partial file of the new version.
            return Err(retry_fresh(format!(
                "the file changed on the hub while resuming at byte {from}"
            )));
        }

        let bad = |reason: String| {
            AttemptError::fatal(HubError::BadResponse {
                file: Box::new(file.clone()),
                endpoint: self.shown_endpoint(),
                reason,
            })
        };
        if meta.fake {
            self.claim_fake_cache(file)?;
        }
        let commit = match meta.commit {
            Some(c) => c,
            // A mirror may omit X-Repo-Commit; a pinned sha is its own commit.
            None if is_commit_sha(&file.revision) => file.revision.to_ascii_lowercase(),
            None => return Err(bad("no X-Repo-Commit header to resolve the revision".into())),
        };
        if !is_commit_sha(&commit) {
            return Err(bad(format!("X-Repo-Commit {commit:?} is not a commit sha")));
        }
        let Some(etag) = meta.etag else {
            return Err(bad("no ETag or X-Linked-Etag header".into()));
        };
        if !safe_file_name(&etag) {
            return Err(bad(format!("ETag {etag:?} cannot be used as a blob name")));
        }

        let io = |path: &Path, source: io::Error| {
            AttemptError::fatal(HubError::Io {
                file: Box::new(file.clone()),
                path: path.to_path_buf(),
                source,
            })
        };
        let blobs = repo_dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(|e| io(&blobs, e))?;
        let lock_path = self
            .cfg
            .cache_dir
            .join(".locks")
            .join(file.repo_folder())
            .join(format!("{etag}.lock"));
        // Held until the end of this function (the OS releases it if the
        // process dies, so there is no stale lock to clean up).
        let _lock = lock_file(&lock_path).await.map_err(|e| io(&lock_path, e))?;

        let blob = blobs.join(&etag);
        let mut have_blob = false;
        if blob.is_file() {
            // Another process (or an earlier run whose link went missing)
            // already stored it; keep it only if it is intact.
            let (sha, _) = hash_file_memo(&blob).await.map_err(|e| io(&blob, e))?;
            have_blob = !is_sha256(&etag) || etag.eq_ignore_ascii_case(&sha);
        }
        let (sha256, size) = if have_blob {
            drop(resp);
            hash_file_memo(&blob).await.map_err(|e| io(&blob, e))?
        } else {
            let resume =
                resume_from.filter(|_| resp.status() == reqwest::StatusCode::PARTIAL_CONTENT);
            self.stream_to_blob(file, &mut resp, &blobs, &etag, resume, opts.progress)
                .await?
        };

        let snap = snapshot_path(repo_dir, &commit, &file.path);
        link_snapshot(&snap, &blob, &blob_link_target(&file.path, &etag))
            .map_err(|e| io(&snap, e))?;
        if !file.revision.eq_ignore_ascii_case(&commit) {
            let ref_path = repo_dir.join("refs").join(&file.revision);
            write_atomic(&ref_path, commit.as_bytes()).map_err(|e| io(&ref_path, e))?;
        }
        Ok(FetchedFile {
            file: file.clone(),
            local_path: snap,
            commit,
            sha256,
            size,
            from_cache: false,
        })
    }

    /// GETs the resolve URL, following redirects by hand: the hub's own
    /// answers (same origin as the endpoint) carry the commit and the
    /// ETag/X-Linked-Etag, while a CDN answer carries only content, and the
    /// token is sent to the endpoint's origin only.
    async fn request(
        &self,
        file: &HubFile,
        range_from: Option<u64>,
    ) -> Result<(reqwest::Response, HubMeta, bool), AttemptError> {
        let start = self.resolve_url(file);
        let mut url = reqwest::Url::parse(&start).map_err(|e| {
            AttemptError::fatal(HubError::BadResponse {
                file: Box::new(file.clone()),
                endpoint: self.shown_endpoint(),
                reason: format!("cannot build a URL from HF_ENDPOINT: {e}"),
            })
        })?;
        let hub_origin = url.origin();
        let mut meta = HubMeta::default();
        for _ in 0..MAX_REDIRECTS {
            let from_hub = url.origin() == hub_origin;
            let mut req = self.client.get(url.clone());
            let token_sent = from_hub && self.cfg.token.is_some();
            if let (true, Some(token)) = (from_hub, &self.cfg.token) {
                req = req.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            // On every hop: the CDN serves the bytes.
            if let Some(from) = range_from {
                req = req.header(RANGE, format!("bytes={from}-"));
            }
            let resp = req.send().await.map_err(|e| self.network_error(file, &e))?;
            if from_hub {
                read_meta(resp.headers(), &mut meta);
            }
            if resp.status().is_redirection()
                && let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
            {
                url = next;
                continue;
            }
            return Ok((resp, meta, token_sent));
        }
        Err(AttemptError::fatal(HubError::BadResponse {
            file: Box::new(file.clone()),
            endpoint: self.shown_endpoint(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }

    /// Maps a transport error; all of these may be transient.
    fn network_error(&self, file: &HubFile, e: &reqwest::Error) -> AttemptError {
        // `Display` of a reqwest error names the URL, which never holds the
        // token; add the innermost cause (e.g. "Connection refused").
        let mut reason = e.to_string();
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut last = None;
        while let Some(c) = cause {
            last = Some(c.to_string());
            cause = c.source();
        }
        if let Some(last) = last {
            reason = format!("{reason}: {last}");
        }
        AttemptError {
            error: HubError::Unreachable {
                file: Box::new(file.clone()),
                endpoint: self.shown_endpoint(),
                cache_dir: self.cfg.cache_dir.clone(),
                reason,
            },
            retry: true,
        }
    }

    fn check_status(
        &self,
        file: &HubFile,
        resp: &reqwest::Response,
        token_sent: bool,
    ) -> Result<(), AttemptError> {
        let status = resp.status();
        if status == reqwest::StatusCode::OK || status == reqwest::StatusCode::PARTIAL_CONTENT {
            return Ok(());
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = header("x-error-code");
        let file = Box::new(file.clone());
        let error = match status.as_u16() {
            // The hub hides private repos behind 401 RepoNotFound.
            401 | 404 if code.as_deref() == Some("RepoNotFound") => {
                HubError::NotFound { file, code }
            }
            401 | 403 => HubError::Unauthorized {
                file,
                status: status.as_u16(),
                token_sent,
            },
            404 => HubError::NotFound { file, code },
            s => {
                return Err(AttemptError {
                    error: HubError::Http {
                        file,
                        endpoint: self.shown_endpoint(),
                        status: s,
                        message: header("x-error-message"),
                    },
                    retry: status.is_server_error() || s == 429,
                });
            }
        };
        Err(AttemptError::fatal(error))
    }

    /// Streams the body into `blobs/<etag>.incomplete` while hashing (after
    /// the `resume` bytes already there, for a 206 answer to a `Range`
    /// request), checks length and sha256, then renames it to
    /// `blobs/<etag>`. A network failure keeps the partial file for the next
    /// attempt; a sha256 mismatch removes it.
    async fn stream_to_blob(
        &self,
        file: &HubFile,
        resp: &mut reqwest::Response,
        blobs: &Path,
        etag: &str,
        resume: Option<u64>,
        progress: bool,
    ) -> Result<(String, u64), AttemptError> {
        let tmp = blobs.join(format!("{etag}.incomplete"));
        let blob = blobs.join(etag);
        let io = |path: &Path, source: io::Error| {
            AttemptError::fatal(HubError::Io {
                file: Box::new(file.clone()),
                path: path.to_path_buf(),
                source,
            })
        };
        let cut = |reason: String| AttemptError {
            error: HubError::Unreachable {
                file: Box::new(file.clone()),
                endpoint: self.shown_endpoint(),
                cache_dir: self.cfg.cache_dir.clone(),
                reason,
            },
            retry: true,
        };
        let body_len = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut out = match resume {
            Some(from) => {
                // The server must continue exactly where the file ends.
                let range_start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let on_disk = std::fs::metadata(&tmp).map(|m| m.len()).ok();
                if range_start != Some(from) || on_disk != Some(from) {
                    return Err(cut(format!(
                        "resume at byte {from} answered with Content-Range start {range_start:?}                          while the partial file has {on_disk:?} bytes"
                    )));
                }
                let mut f = std::fs::File::open(&tmp).map_err(|e| io(&tmp, e))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f.read(&mut buf).map_err(|e| io(&tmp, e))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    size += n as u64;
                }
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&tmp)
                    .map_err(|e| io(&tmp, e))?
            }
            None => std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?,
        };
        let expected_len = body_len.map(|n| n + size);
        let mut guard = TempGuard(Some(tmp.clone()));
        let bar = byte_progress_bar(progress, &file.path, expected_len, size);
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived: the next attempt resumes from it.
                    let _ = out.flush();
                    guard.0 = None;
                    bar.abandon();
                    return Err(self.network_error(file, &e));
                }
            };
            hasher.update(&chunk);
            // Chunks are small (tens of KB); a blocking write of that size
            // is cheaper than a round trip through the blocking pool.
            out.write_all(&chunk).map_err(|e| io(&tmp, e))?;
            size += chunk.len() as u64;
            bar.set_position(size);
        }
        out.flush().map_err(|e| io(&tmp, e))?;
        drop(out);
        bar.finish_and_clear();
        if let Some(expected) = expected_len
            && expected != size
        {
            if size < expected {
                guard.0 = None;
            }
            return Err(cut(format!(
                "connection closed after {size} of {expected} bytes"
            )));
        }
        let sha = hex::encode(hasher.finalize());
        if is_sha256(etag) && !etag.eq_ignore_ascii_case(&sha) {
            return Err(AttemptError::fatal(HubError::Integrity {
                file: Box::new(file.clone()),
                expected: etag.to_ascii_lowercase(),
                actual: sha,
            }));
        }
        std::fs::rename(&tmp, &blob).map_err(|e| io(&blob, e))?;
        guard.0 = None;
        remember_hash(&blob, &sha);
        Ok((sha, size))
    }
}

/// Files at least this large get a byte progress bar (smaller ones finish
/// before a bar would be readable).
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

/// A bytes/rate bar on stderr for one download, or a hidden one when
/// progress is off, the size is unknown or small, or stderr is not a
/// terminal (indicatif draws nothing there).
fn byte_progress_bar(
    enabled: bool,
    path: &str,
    total: Option<u64>,
    done: u64,
) -> indicatif::ProgressBar {
    let Some(total) = total.filter(|t| enabled && *t >= PROGRESS_MIN_BYTES) else {
        return indicatif::ProgressBar::hidden();
    };
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec:>12} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    bar.set_prefix(name.to_string());
    bar.set_position(done);
    bar
}

/// Reads the hub's metadata headers into `meta`; a later hub response (after
/// a relative redirect) overrides an earlier one, as in Python.
fn read_meta(headers: &HeaderMap, meta: &mut HubMeta) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(commit) = get("x-repo-commit") {
        meta.commit = Some(commit.to_ascii_lowercase());
    }
    if get(FAKE_HUB_HEADER).is_some() {
        meta.fake = true;
    }
    // X-Linked-Etag is the LFS sha256 on the hub's redirect to the CDN; a
    // plain ETag is the hub's own for files it serves itself.
    if let Some(etag) = get("x-linked-etag").or_else(|| get(ETAG.as_str())) {
        meta.etag = Some(normalize_etag(etag));
    }
}

/// The commit a revision points to in the cache: itself when it is a sha,
/// else the content of `refs/<revision>`.
fn cached_commit(repo_dir: &Path, revision: &str) -> Option<String> {
    if is_commit_sha(revision) {
        return Some(revision.to_ascii_lowercase());
    }
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision)).ok()?;
    let commit = commit.trim();
    is_commit_sha(commit).then(|| commit.to_ascii_lowercase())
}

/// `<repo_dir>/snapshots/<commit>/<path>` with `/` mapped to the platform's
/// separator.
fn snapshot_path(repo_dir: &Path, commit: &str, path: &str) -> PathBuf {
    let mut p = repo_dir.join("snapshots").join(commit);
    p.extend(path.split('/'));
    p
}

/// Points `snap` at the blob with a relative symlink (copying the blob where
/// symlinks are not allowed, as Python does on Windows without developer
/// mode). Built under a temporary name and renamed so that a reader never
/// sees a half-made link.
fn link_snapshot(snap: &Path, blob: &Path, target: &Path) -> io::Result<()> {
    let parent = snap
        .parent()
        .ok_or_else(|| io::Error::other("snapshot path has no parent"))?;
    std::fs::create_dir_all(parent)?;
    let name = snap
        .file_name()
        .ok_or_else(|| io::Error::other("snapshot path has no file name"))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut guard = TempGuard(Some(tmp.clone()));
    if make_symlink(target, &tmp).is_err() {
        std::fs::copy(blob, &tmp)?;
    }
    std::fs::rename(&tmp, snap)?;
    guard.0 = None;
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn make_symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::other("symlinks are not supported here"))
}

/// Writes `contents` to `path` via a temporary file and a rename.
fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    std::fs::create_dir_all(parent)?;
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut guard = TempGuard(Some(tmp.clone()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    guard.0 = None;
    Ok(())
}

/// Takes an exclusive OS lock on `path` (created if needed), polling so the
/// async runtime is not blocked. Filesystems without lock support (some
/// network mounts) proceed unlocked rather than failing the run.
async fn lock_file(path: &Path) -> io::Result<Option<std::fs::File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                return Ok(None);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// The hub's parquet listing: config -> split -> file urls.
pub type ParquetListing =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>;

/// The convert-branch path of a url from the parquet listing of
/// `config`/`split`: a resolve url on the branch gives its path; the hub's
/// API form `.../parquet/{config}/{split}/{n}.parquet` gives
/// `{config}/{split}/{n:04}.parquet`.
pub fn convert_path_of_url(url: &str, config: &str, split: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let segs: Vec<String> = parsed
        .path_segments()?
        .map(|s| String::from_utf8_lossy(&crate::util::percent_decode_bytes(s)).into_owned())
        .collect();
    if let Some(i) = segs.iter().position(|s| s == "resolve")
        && segs.get(i + 1).map(String::as_str) == Some(CONVERT_BRANCH)
    {
        let path = segs[i + 2..].join("/");
        return (!path.is_empty()).then_some(path);
    }
    match segs.as_slice() {
        [.., p, c, s, file] if p == "parquet" && c == config && s == split => {
            let n: u32 = file.strip_suffix(".parquet")?.parse().ok()?;
            Some(format!("{config}/{split}/{n:04}.parquet"))
        }
        _ => None,
    }
}

/// How [`Hub::fetch_with`] fetches one file.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Show a byte progress bar on stderr for a large download (hidden
    /// anyway when stderr is not a terminal).
    pub progress: bool,
    /// The file's blob name (ETag) from a repo listing, when known: a
    /// `blobs/<etag>.incomplete` left by an interrupted run is then resumed
    /// on the first request.
    pub expected_etag: Option<String>,
    /// Re-hash a cached file against its blob name. On for dataset files
    /// (cheap, and the only check a copied cache gets); off for model
    /// weights, whose downloads are verified once, as Python does.
    pub verify_cached: bool,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            progress: false,
            expected_etag: None,
            verify_cached: true,
        }
    }
}

/// A file present in the local cache after [`Hub::fetch`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchedFile {
    /// The file that was asked for.
    pub file: HubFile,
    /// `<cache>/<repo folder>/snapshots/<commit>/<path>`.
    pub local_path: PathBuf,
    /// The commit the revision resolved to.
    pub commit: String,
    /// sha256 of the content (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// True when no network request was needed.
    pub from_cache: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_use_home() {
        let cfg = HubConfig::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(cfg.endpoint, "https://huggingface.co");
        assert_eq!(
            cfg.cache_dir,
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        assert!(!cfg.offline);
    }

    #[test]
    fn cache_precedence() {
        let all = [
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HF_HOME", "/hfhome"),
            ("HUGGINGFACE_HUB_CACHE", "/legacy"),
            ("HF_HUB_CACHE", "/hubcache"),
        ];
        let cache = |n: usize| HubConfig::from_vars(vars(&all[..n])).cache_dir;
        assert_eq!(cache(5), PathBuf::from("/hubcache"));
        assert_eq!(cache(4), PathBuf::from("/legacy"));
        assert_eq!(cache(3), PathBuf::from("/hfhome/hub"));
        assert_eq!(cache(2), PathBuf::from("/xdg/huggingface/hub"));
        assert_eq!(cache(1), PathBuf::from("/home/u/.cache/huggingface/hub"));
        // Empty counts as unset; `~` expands.
        let cfg = HubConfig::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("HF_HUB_CACHE", ""),
            ("HF_HOME", "~/hf"),
        ]));
        assert_eq!(cfg.cache_dir, PathBuf::from("/home/u/hf/hub"));
    }

    #[test]
    fn endpoint_and_offline() {
        let cfg = HubConfig::from_vars(vars(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "yes"),
        ]));
        assert_eq!(cfg.endpoint, "http://127.0.0.1:9");
        assert!(cfg.offline);
        for (v, want) in [
            ("1", true),
            ("ON", true),
            ("True", true),
            ("0", false),
            ("no", false),
        ] {
            let cfg = HubConfig::from_vars(vars(&[("HF_HUB_OFFLINE", v)]));
            assert_eq!(cfg.offline, want, "HF_HUB_OFFLINE={v}");
        }
    }

    #[test]
    fn token_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let hf_home = dir.path().join("hf");
        std::fs::create_dir_all(&hf_home).unwrap();
        std::fs::write(hf_home.join("token"), "  from-home-file\n").unwrap();
        let token_path = dir.path().join("tok");
        std::fs::write(&token_path, "from-token-path\n").unwrap();
        let hf_home_s = hf_home.to_str().unwrap();
        let token_path_s = token_path.to_str().unwrap();

        let token = |pairs: &[(&str, &str)]| HubConfig::from_vars(vars(pairs)).token;
        assert_eq!(
            token(&[
                ("HF_HOME", hf_home_s),
                ("HF_TOKEN_PATH", token_path_s),
                ("HF_TOKEN", " env ")
            ]),
            Some("env".into())
        );
        assert_eq!(
            token(&[("HF_HOME", hf_home_s), ("HF_TOKEN_PATH", token_path_s)]),
            Some("from-token-path".into())
        );
        assert_eq!(
            token(&[("HF_HOME", hf_home_s)]),
            Some("from-home-file".into())
        );
        // XDG_CACHE_HOME stands in for HF_HOME when that is unset.
        assert_eq!(
            token(&[("XDG_CACHE_HOME", dir.path().to_str().unwrap())]),
            None,
            "no <xdg>/huggingface/token file"
        );
        assert_eq!(
            token(&[
                ("HF_HOME", hf_home_s),
                ("HF_TOKEN", "env"),
                ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
            ]),
            None
        );
        std::fs::write(hf_home.join("token"), "\n").unwrap();
        assert_eq!(
            token(&[("HF_HOME", hf_home_s)]),
            None,
            "empty file is no token"
        );
        assert_eq!(token(&[("HF_HOME", hf_home_s), ("HF_TOKEN", "  ")]), None);
    }

    #[test]
    fn debug_redacts_token() {
        let cfg = HubConfig::from_vars(vars(&[("HF_TOKEN", "hf_secret123"), ("HOME", "/h")]));
        let dbg = format!("{cfg:?}");
        assert!(dbg.contains(r#"token: Some("***")"#), "{dbg}");
        assert!(!dbg.contains("hf_secret123"), "{dbg}");
        let hub = Hub::new(cfg).unwrap();
        assert!(!format!("{hub:?}").contains("hf_secret123"));
    }

    #[test]
    fn repo_folder_names() {
        let f = HubFile::dataset("openai/gsm8k", "main", "main/test-00000-of-00001.parquet");
        assert_eq!(f.repo_folder(), "datasets--openai--gsm8k");
        let m = HubFile::model("Qwen/Qwen3-0.6B", "main", "tokenizer.json");
        assert_eq!(m.repo_folder(), "models--Qwen--Qwen3-0.6B");
        assert_eq!(
            HubFile::model("gpt2", "main", "x").repo_folder(),
            "models--gpt2"
        );
    }

    #[test]
    fn symlink_targets() {
        assert_eq!(
            blob_link_target("README.md", "abc"),
            PathBuf::from("../../blobs/abc")
        );
        assert_eq!(
            blob_link_target("main/test-00000-of-00001.parquet", "abc"),
            PathBuf::from("../../../blobs/abc")
        );
        assert_eq!(
            blob_link_target("a/b/c.json", "abc"),
            PathBuf::from("../../../../blobs/abc")
        );
        // The target resolves from the snapshot file's directory to the blob.
        let repo = Path::new("/c/datasets--o--n");
        let snap = snapshot_path(repo, &"0".repeat(40), "a/b/c.json");
        let resolved = snap
            .parent()
            .unwrap()
            .join(blob_link_target("a/b/c.json", "e"));
        let mut norm = PathBuf::new();
        for c in resolved.components() {
            match c {
                std::path::Component::ParentDir => {
                    norm.pop();
                }
                c => norm.push(c),
            }
        }
        assert_eq!(norm, repo.join("blobs").join("e"));
    }

    #[test]
    fn urls_are_encoded() {
        let mut cfg = HubConfig::from_vars(vars(&[("HOME", "/h")]));
        cfg.endpoint = "http://hub".into();
        let hub = Hub::new(cfg).unwrap();
        let f = HubFile::dataset(
            "allenai/ai2_arc",
            "refs/convert/parquet",
            "ARC-Easy/a b.parquet",
        );
        assert_eq!(
            hub.resolve_url(&f),
            "http://hub/datasets/allenai/ai2_arc/resolve/refs%2Fconvert%2Fparquet/ARC-Easy/a%20b.parquet"
        );
        let m = HubFile::model("Qwen/Qwen3-0.6B", "main", "tokenizer.json");
        assert_eq!(
            hub.resolve_url(&m),
            "http://hub/Qwen/Qwen3-0.6B/resolve/main/tokenizer.json"
        );
    }

    #[test]
    fn progress_bar_only_for_large_downloads_when_enabled() {
        let big = Some(PROGRESS_MIN_BYTES);
        assert!(byte_progress_bar(false, "model.safetensors", big, 0).is_hidden());
        assert!(byte_progress_bar(true, "config.json", Some(10), 0).is_hidden());
        assert!(byte_progress_bar(true, "x.gguf", None, 0).is_hidden());
        // Enabled and large: a real bar (drawn only if stderr is a
        // terminal), starting at the resumed offset.
        let bar = byte_progress_bar(true, "sub/model.safetensors", big, 5);
        assert_eq!(bar.length(), big);
        assert_eq!(bar.position(), 5);
        assert_eq!(bar.prefix(), "model.safetensors");
    }

    #[test]
    fn etags_and_validation() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert!(safe_file_name("0123abcdef"));
        assert!(!safe_file_name("../x"));
        assert!(!safe_file_name(""));
        let ok = HubFile::dataset("openai/gsm8k", "main", "main/x.parquet");
        assert!(validate(&ok).is_ok());
        for bad in [
            HubFile::dataset("openai/../x", "main", "a"),
            HubFile::dataset("a/b/c", "main", "a"),
            HubFile::dataset("openai/gsm8k", "..", "a"),
            HubFile::dataset("openai/gsm8k", "main", "../a"),
            HubFile::dataset("openai/gsm8k", "main", "/etc/passwd"),
            HubFile::dataset("openai/gsm8k", "main", "a//b"),
        ] {
            assert!(validate(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_name_the_file_and_never_the_token() {
        let f = HubFile::dataset("openai/gsm8k", "main", "main/test-00000-of-00001.parquet");
        let err = HubError::Offline {
            file: Box::new(f.clone()),
            cache_dir: PathBuf::from("/c"),
            corrupt: None,
        };
        let msg = err.to_string();
        for part in [
            "openai/gsm8k",
            "main/test-00000-of-00001.parquet",
            "revision main",
            "HF_HUB_CACHE",
            "/c/datasets--openai--gsm8k",
        ] {
            assert!(msg.contains(part), "{part} missing in {msg}");
        }
        let err = HubError::NotFound {
            file: Box::new(HubFile::dataset(
                "openai/gsm8k",
                &"a".repeat(40),
                "x.parquet",
            )),
            code: Some("EntryNotFound".into()),
        };
        let msg = err.to_string();
        assert!(
            msg.contains("no file x.parquet") && msg.contains("pinned"),
            "{msg}"
        );
    }
}
