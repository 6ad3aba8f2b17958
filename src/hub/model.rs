//! Model repositories: resolve `owner/name[@revision][:file.gguf]` to a
//! commit, list the repo, and download the files a model needs into the HF
//! cache (`models--owner--name/{blobs,refs,snapshots/<commit>/…}`), exactly
//! as `huggingface_hub.snapshot_download` lays them out, so Python tools and
//! bench share one copy.
//!
//! Owns: the model spec syntax, which files a model needs (config,
//! generation config, tokenizer files, safetensors weights with their index,
//! or one named GGUF file), the repo listing
//! (`GET /api/models/{repo}/revision/{rev}`), the cache-only path for offline
//! mode, and one-line errors naming the repo. Does not own: the per-file
//! download, resume, progress and sha256 checks ([`Hub::fetch_with`]), nor
//! reading the files (the in-process engine).
//!
//! Like the dataset side, the cache is consulted first: a revision that is a
//! commit sha, or a branch already resolved in `refs/`, whose snapshot holds
//! a complete model is used without any request. Otherwise the hub's listing
//! pins the commit and every file is fetched at that commit, so a push to
//! the branch mid-download cannot mix two versions.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, LOCATION};

use super::{
    FetchOptions, FetchedFile, Hub, HubError, HubFile, MAX_ATTEMPTS, MAX_REDIRECTS, cached_commit,
    is_commit_sha, parse_hub_id, percent_encode, snapshot_path, write_atomic,
};

/// The model config every safetensors model needs.
pub const CONFIG_FILE: &str = "config.json";
/// The index naming the shards of a sharded safetensors model.
pub const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
/// Files fetched when the repo has them (a tokenizer-less repo is the
/// engine's error to report, with its own wording).
pub const OPTIONAL_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// A model on the hub, as `--model` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// `owner/name`.
    pub repo_id: String,
    /// Branch, tag or commit sha (`main` when not given).
    pub revision: String,
    /// For `owner/name:file.gguf`: the one GGUF file to fetch.
    pub gguf_file: Option<String>,
}

impl ModelSpec {
    /// Parses `owner/name`, `owner/name@revision`, `owner/name:file.gguf`
    /// or `owner/name@revision:file.gguf`. `None` when `spec` is not a hub
    /// model id (a local path, for instance); the caller then says what it
    /// expected.
    pub fn parse(spec: &str) -> Option<ModelSpec> {
        // Git refs cannot contain `:`, so the first one starts the file.
        let (id, gguf_file) = match spec.split_once(':') {
            Some((id, file)) => {
                let ok = file.to_ascii_lowercase().ends_with(".gguf")
                    && file.len() > ".gguf".len()
                    && file.split('/').all(super::safe_segment);
                if !ok {
                    return None;
                }
                (id, Some(file.to_string()))
            }
            None => (spec, None),
        };
        let (repo, revision) = parse_hub_id(id)?;
        Some(ModelSpec {
            repo_id: repo.to_string(),
            revision: revision.to_string(),
            gguf_file,
        })
    }

    /// The cache folder, `models--owner--name`.
    pub fn repo_folder(&self) -> String {
        HubFile::model(&self.repo_id, &self.revision, CONFIG_FILE).repo_folder()
    }
}

impl fmt::Display for ModelSpec {
    /// The spec as the user would write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo_id)?;
        if self.revision != "main" {
            write!(f, "@{}", self.revision)?;
        }
        if let Some(file) = &self.gguf_file {
            write!(f, ":{file}")?;
        }
        Ok(())
    }
}

/// Options for [`Hub::fetch_model`].
#[derive(Debug, Clone, Default)]
pub struct ModelFetchOptions {
    /// Byte progress bars for large files (hidden when stderr is not a
    /// terminal).
    pub progress: bool,
    /// Re-hash cached files against their sha256 blob names (slow for
    /// multi-GB weights; downloads are always verified).
    pub verify_cached: bool,
}

/// A model's files, present in the local cache.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// What was asked for.
    pub spec: ModelSpec,
    /// The commit the revision resolved to.
    pub commit: String,
    /// `<cache>/models--owner--name/snapshots/<commit>`: a Hugging Face
    /// model directory for a safetensors model.
    pub snapshot_dir: PathBuf,
    /// Every file fetched, with its sha256 and size (for the run record).
    pub files: Vec<FetchedFile>,
    /// True when nothing was requested from the network.
    pub from_cache: bool,
}

impl ModelFiles {
    /// The local path of `path_in_repo`, if it was fetched.
    pub fn path(&self, path_in_repo: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.file.path == path_in_repo)
            .map(|f| f.local_path.as_path())
    }

    /// The GGUF file, for a `:file.gguf` spec.
    pub fn gguf(&self) -> Option<&Path> {
        self.spec.gguf_file.as_deref().and_then(|f| self.path(f))
    }
}

/// Why a model could not be had. Each message is one line naming the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The spec is not `owner/name[@revision][:file.gguf]`.
    #[error(
        "--model {spec:?} is not a hub model id: expected owner/name, owner/name@revision or \
         owner/name[@revision]:file.gguf"
    )]
    Spec {
        /// What was given.
        spec: String,
    },
    /// 401/403: gated or private, and no (valid) token.
    #[error("{}", gated_message(spec, *status, *token_sent))]
    Gated {
        /// The model.
        spec: ModelSpec,
        /// 401 or 403.
        status: u16,
        /// Whether a token was sent.
        token_sent: bool,
    },
    /// The repo or revision does not exist.
    #[error(
        "model {spec}: {}",
        if code.as_deref() == Some("RevisionNotFound") {
            format!("revision {} does not exist in {}", spec.revision, spec.repo_id)
        } else {
            format!("the hub has no model repository {} (or it is private: set HF_TOKEN)", spec.repo_id)
        }
    )]
    NotFound {
        /// The model.
        spec: ModelSpec,
        /// The hub's `X-Error-Code`.
        code: Option<String>,
    },
    /// The repo lacks files a model needs.
    #[error("model {spec} (commit {commit}): {reason}")]
    Incomplete {
        /// The model.
        spec: ModelSpec,
        /// The commit listed.
        commit: String,
        /// What is missing, and what there is instead.
        reason: String,
    },
    /// Offline mode, and the cache does not hold the whole model.
    #[error(
        "model {spec}: offline mode is on (HF_HUB_OFFLINE or --offline) and the cache {} lacks {}; \
         run once with network access (or copy that folder from a machine that has it)",
        repo_dir.display(),
        missing.join(", ")
    )]
    Offline {
        /// The model.
        spec: ModelSpec,
        /// `<cache>/models--owner--name`.
        repo_dir: PathBuf,
        /// What is missing (`refs/main`, `config.json`, …).
        missing: Vec<String>,
    },
    /// The listing request failed (network, 5xx, unreadable answer).
    #[error("model {spec}: cannot list the repository at {endpoint}: {reason}")]
    Listing {
        /// The model.
        spec: ModelSpec,
        /// The endpoint (without credentials).
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// One file failed (its message names the file).
    #[error(transparent)]
    File(#[from] HubError),
}

fn gated_message(spec: &ModelSpec, status: u16, token_sent: bool) -> String {
    if token_sent {
        format!(
            "model {spec}: the hub answered HTTP {status}: the token (from HF_TOKEN, \
             HF_TOKEN_PATH or $HF_HOME/token) has no access to {}; accept the repo's terms on \
             its hub page with the token's account",
            spec.repo_id
        )
    } else {
        format!(
            "model {spec}: the hub answered HTTP {status}: {} is gated or private; set HF_TOKEN \
             to a token whose account has access (or run `huggingface-cli login`)",
            spec.repo_id
        )
    }
}

/// One file in the hub's listing.
#[derive(Debug, Clone, serde::Deserialize)]
struct Sibling {
    rfilename: String,
    /// The git blob id: the ETag (and blob name) of a non-LFS file.
    #[serde(default, rename = "blobId")]
    blob_id: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct LfsInfo {
    sha256: String,
}

impl Sibling {
    /// The name the file's blob gets in the cache: the sha256 for LFS
    /// files, the git blob id otherwise (what the resolve ETag carries).
    fn etag(&self) -> Option<String> {
        self.lfs
            .as_ref()
            .map(|l| l.sha256.to_ascii_lowercase())
            .or_else(|| self.blob_id.clone())
    }
}

/// The listing: commit and files.
#[derive(Debug, Clone, serde::Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

/// The top-level `*.safetensors` files of a listing or snapshot.
fn root_safetensors<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = names
        .filter(|n| !n.contains('/') && n.ends_with(".safetensors"))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// The shard file names in a `model.safetensors.index.json`.
fn index_shards(index: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(index).map_err(|e| format!("{SAFETENSORS_INDEX}: {e}"))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| format!("{SAFETENSORS_INDEX} has no weight_map object"))?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(format!("{SAFETENSORS_INDEX} names no shard"));
    }
    if let Some(bad) = shards
        .iter()
        .find(|s| !s.split('/').all(super::safe_segment))
    {
        return Err(format!(
            "{SAFETENSORS_INDEX} names an unsafe shard path {bad:?}"
        ));
    }
    Ok(shards)
}

impl Hub {
    /// Makes the model `spec` available in the local cache: for a GGUF spec
    /// the one named file, else `config.json`, the safetensors weights (the
    /// shards that `model.safetensors.index.json` names when the repo has
    /// one, else every top-level `*.safetensors`) and, when present,
    /// `generation_config.json`, `tokenizer.json` and
    /// `tokenizer_config.json`. Large files show a byte progress bar; a
    /// download cut by the network resumes with a `Range` request; every
    /// download is checked against its sha256.
    pub async fn fetch_model(
        &self,
        spec: &ModelSpec,
        opts: &ModelFetchOptions,
    ) -> Result<ModelFiles, ModelError> {
        let probe = HubFile::model(&spec.repo_id, &spec.revision, CONFIG_FILE);
        super::validate(&probe).map_err(|_| ModelError::Spec {
            spec: spec.to_string(),
        })?;
        let repo_dir = self.cfg.repo_dir(&probe);
        let cached = self.cached_model(spec, &repo_dir, opts).await;
        match cached {
            Ok(found) => return Ok(found),
            Err(missing) if self.cfg.offline => {
                return Err(ModelError::Offline {
                    spec: spec.clone(),
                    repo_dir,
                    missing,
                });
            }
            Err(_) => {}
        }

        let info = self.model_info(spec).await?;
        let commit = info.sha.to_ascii_lowercase();
        if !is_commit_sha(&commit) {
            return Err(ModelError::Listing {
                spec: spec.clone(),
                endpoint: self.shown_endpoint(),
                reason: format!("the listing's sha {:?} is not a commit sha", info.sha),
            });
        }
        let incomplete = |reason: String| ModelError::Incomplete {
            spec: spec.clone(),
            commit: commit.clone(),
            reason,
        };
        let listed = |name: &str| info.siblings.iter().find(|s| s.rfilename == name);
        let mut files = Vec::new();
        let fetch = async |name: &str| -> Result<FetchedFile, ModelError> {
            let file = HubFile::model(&spec.repo_id, &commit, name);
            let file_opts = FetchOptions {
                progress: opts.progress,
                expected_etag: listed(name).and_then(Sibling::etag),
                verify_cached: opts.verify_cached,
            };
            self.fetch_with(&file, &file_opts)
                .await
                .map_err(|e| model_error(spec, e))
        };

        if let Some(gguf) = &spec.gguf_file {
            if listed(gguf).is_none() {
                let ggufs: Vec<&str> = info
                    .siblings
                    .iter()
                    .map(|s| s.rfilename.as_str())
                    .filter(|n| n.to_ascii_lowercase().ends_with(".gguf"))
                    .collect();
                return Err(incomplete(format!(
                    "the repo has no file {gguf}; its GGUF files: {}",
                    list_or_none(&ggufs)
                )));
            }
            files.push(fetch(gguf).await?);
        } else {
            if listed(CONFIG_FILE).is_none() {
                return Err(incomplete(format!(
                    "the repo has no {CONFIG_FILE}, so it is not a Hugging Face model directory{}",
                    gguf_hint(&info.siblings, spec)
                )));
            }
            files.push(fetch(CONFIG_FILE).await?);
            for name in OPTIONAL_FILES {
                if listed(name).is_some() {
                    files.push(fetch(name).await?);
                }
            }
            let shards = if listed(SAFETENSORS_INDEX).is_some() {
                let index = fetch(SAFETENSORS_INDEX).await?;
                let index_path = index.local_path.clone();
                files.push(index);
                let index = index_path;
                let bytes = std::fs::read(&index).map_err(|source| {
                    ModelError::File(HubError::Io {
                        file: Box::new(HubFile::model(&spec.repo_id, &commit, SAFETENSORS_INDEX)),
                        path: index.clone(),
                        source,
                    })
                })?;
                let shards = index_shards(&bytes).map_err(&incomplete)?;
                if let Some(missing) = shards.iter().find(|s| listed(s).is_none()) {
                    return Err(incomplete(format!(
                        "{SAFETENSORS_INDEX} names {missing}, which the repo does not have"
                    )));
                }
                shards
            } else {
                root_safetensors(info.siblings.iter().map(|s| s.rfilename.as_str()))
            };
            if shards.is_empty() {
                return Err(incomplete(format!(
                    "the repo has no *.safetensors weights (.bin/.pt weights are not \
                     supported){}",
                    gguf_hint(&info.siblings, spec)
                )));
            }
            for shard in &shards {
                files.push(fetch(shard).await?);
            }
        }
        // Files were fetched at the commit; record what the branch or tag
        // pointed to, as snapshot_download does.
        if !spec.revision.eq_ignore_ascii_case(&commit) {
            let ref_path = repo_dir.join("refs").join(&spec.revision);
            write_atomic(&ref_path, commit.as_bytes()).map_err(|source| {
                ModelError::File(HubError::Io {
                    file: Box::new(probe.clone()),
                    path: ref_path.clone(),
                    source,
                })
            })?;
        }
        let from_cache = files.iter().all(|f| f.from_cache);
        Ok(ModelFiles {
            spec: spec.clone(),
            snapshot_dir: repo_dir.join("snapshots").join(&commit),
            commit,
            files,
            from_cache,
        })
    }

    /// The model from the cache alone, or what is missing for it.
    async fn cached_model(
        &self,
        spec: &ModelSpec,
        repo_dir: &Path,
        opts: &ModelFetchOptions,
    ) -> Result<ModelFiles, Vec<String>> {
        let Some(commit) = cached_commit(repo_dir, &spec.revision) else {
            return Err(vec![format!(
                "refs/{} (the revision was never resolved here)",
                spec.revision
            )]);
        };
        let snap_dir = repo_dir.join("snapshots").join(&commit);
        let has = |name: &str| snapshot_path(repo_dir, &commit, name).is_file();
        let mut wanted: Vec<String> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let mut required = |name: &str| {
            if has(name) {
                wanted.push(name.to_string());
            } else {
                missing.push(format!("snapshots/{commit}/{name}"));
            }
        };
        if let Some(gguf) = &spec.gguf_file {
            required(gguf);
        } else {
            required(CONFIG_FILE);
            let shards = if has(SAFETENSORS_INDEX) {
                required(SAFETENSORS_INDEX);
                let index = snapshot_path(repo_dir, &commit, SAFETENSORS_INDEX);
                std::fs::read(&index)
                    .map_err(|e| e.to_string())
                    .and_then(|b| index_shards(&b))
                    .map_err(|e| vec![format!("a readable {SAFETENSORS_INDEX} ({e})")])?
            } else {
                let names: Vec<String> = std::fs::read_dir(&snap_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect();
                root_safetensors(names.iter().map(String::as_str))
            };
            if shards.is_empty() {
                required("*.safetensors");
            }
            for shard in &shards {
                required(shard);
            }
            // Optional: a repo without them is complete, and the download
            // fetched whichever the repo has.
            wanted.extend(
                OPTIONAL_FILES
                    .iter()
                    .filter(|name| has(name))
                    .map(|name| name.to_string()),
            );
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut files = Vec::new();
        for name in &wanted {
            let file = HubFile::model(&spec.repo_id, &commit, name);
            let fetch_opts = FetchOptions {
                progress: false,
                expected_etag: None,
                verify_cached: opts.verify_cached,
            };
            // A hit never touches the network; a corrupt cached file is
            // reported (offline) or fetched again (online) by fetch_with.
            match self.fetch_with(&file, &fetch_opts).await {
                Ok(got) => files.push(got),
                Err(e) => return Err(vec![format!("snapshots/{commit}/{name} ({e})")]),
            }
        }
        Ok(ModelFiles {
            spec: spec.clone(),
            commit,
            snapshot_dir: snap_dir,
            from_cache: files.iter().all(|f| f.from_cache),
            files,
        })
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` (what
    /// `huggingface_hub.model_info(files_metadata=True)` asks), with the
    /// token, same-origin redirects (renamed repos) and retries for network
    /// errors, 5xx and 429.
    async fn model_info(&self, spec: &ModelSpec) -> Result<RepoInfo, ModelError> {
        let start = format!(
            "{}/api/models/{}/revision/{}?blobs=true",
            self.cfg.endpoint,
            percent_encode(&spec.repo_id, true),
            percent_encode(&spec.revision, false)
        );
        let listing_err = |reason: String| ModelError::Listing {
            spec: spec.clone(),
            endpoint: self.shown_endpoint(),
            reason,
        };
        let mut attempt = 1;
        loop {
            let result = self.model_info_once(spec, &start).await;
            match result {
                Err((_, true)) if attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
                    attempt += 1;
                }
                Err((err, _)) => return Err(err),
                Ok(resp) => {
                    let body = resp
                        .bytes()
                        .await
                        .map_err(|e| listing_err(format!("reading the answer: {e}")))?;
                    return serde_json::from_slice(&body).map_err(|e| {
                        listing_err(format!("the answer is not a model listing: {e}"))
                    });
                }
            }
        }
    }

    /// One listing request; the error says whether to retry.
    async fn model_info_once(
        &self,
        spec: &ModelSpec,
        start: &str,
    ) -> Result<reqwest::Response, (ModelError, bool)> {
        let listing_err = |reason: String, retry: bool| {
            (
                ModelError::Listing {
                    spec: spec.clone(),
                    endpoint: self.shown_endpoint(),
                    reason,
                },
                retry,
            )
        };
        let mut url = reqwest::Url::parse(start)
            .map_err(|e| listing_err(format!("cannot build a URL from HF_ENDPOINT: {e}"), false))?;
        let origin = url.origin();
        for _ in 0..MAX_REDIRECTS {
            let mut req = self.client.get(url.clone());
            if let Some(token) = &self.cfg.token {
                req = req.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let resp = req.send().await.map_err(|e| {
                let mut reason = e.to_string();
                let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&e);
                while let Some(c) = cause {
                    reason = format!("{reason}: {c}");
                    cause = c.source();
                }
                listing_err(reason, true)
            })?;
            let status = resp.status();
            if status.is_redirection()
                && let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .filter(|next| next.origin() == origin)
            {
                url = next;
                continue;
            }
            let code = resp
                .headers()
                .get("x-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return match status.as_u16() {
                200 => Ok(resp),
                401 | 404 if code.as_deref() == Some("RepoNotFound") => Err((
                    ModelError::NotFound {
                        spec: spec.clone(),
                        code,
                    },
                    false,
                )),
                401 | 403 => Err((
                    ModelError::Gated {
                        spec: spec.clone(),
                        status: status.as_u16(),
                        token_sent: self.cfg.token.is_some(),
                    },
                    false,
                )),
                404 => Err((
                    ModelError::NotFound {
                        spec: spec.clone(),
                        code,
                    },
                    false,
                )),
                s => Err(listing_err(
                    format!("HTTP {s}"),
                    status.is_server_error() || s == 429,
                )),
            };
        }
        Err(listing_err(
            format!("more than {MAX_REDIRECTS} redirects"),
            false,
        ))
    }
}

/// A gated repo answers the listing but 401s on the files: report it as the
/// model's, in one line.
fn model_error(spec: &ModelSpec, e: HubError) -> ModelError {
    match e {
        HubError::Unauthorized {
            status, token_sent, ..
        } => ModelError::Gated {
            spec: spec.clone(),
            status,
            token_sent,
        },
        other => ModelError::File(other),
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// For a repo of GGUF files named without a file: say how to name one.
fn gguf_hint(siblings: &[Sibling], spec: &ModelSpec) -> String {
    let ggufs: Vec<&str> = siblings
        .iter()
        .map(|s| s.rfilename.as_str())
        .filter(|n| n.to_ascii_lowercase().ends_with(".gguf"))
        .collect();
    match ggufs.first() {
        Some(first) => format!(
            "; it has GGUF files ({}): name one, e.g. {}:{first}",
            ggufs.join(", "),
            ModelSpec {
                gguf_file: None,
                ..spec.clone()
            }
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let s = ModelSpec::parse("Qwen/Qwen2.5-0.5B-Instruct").unwrap();
        assert_eq!(
            (s.repo_id.as_str(), s.revision.as_str(), s.gguf_file),
            ("Qwen/Qwen2.5-0.5B-Instruct", "main", None)
        );
        let s = ModelSpec::parse("Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q8_0.gguf")
            .unwrap();
        assert_eq!(s.repo_id, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
        assert_eq!(
            s.gguf_file.as_deref(),
            Some("qwen2.5-0.5b-instruct-q8_0.gguf")
        );
        let s = ModelSpec::parse("a/b@v1.0:sub/x.GGUF").unwrap();
        assert_eq!(s.revision, "v1.0");
        assert_eq!(s.gguf_file.as_deref(), Some("sub/x.GGUF"));
        assert_eq!(s.to_string(), "a/b@v1.0:sub/x.GGUF");
        for bad in [
            "./model",
            "/abs/path",
            "a/b/c",
            "a/b:x.bin",
            "a/b:.gguf",
            "a/b:../x.gguf",
            "a/b@:x.gguf",
            "a",
        ] {
            assert_eq!(ModelSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn index_shards_are_deduplicated_and_safe() {
        let idx = br#"{"metadata":{},"weight_map":{"a":"m-2.safetensors","b":"m-1.safetensors","c":"m-1.safetensors"}}"#;
        assert_eq!(
            index_shards(idx).unwrap(),
            vec!["m-1.safetensors", "m-2.safetensors"]
        );
        assert!(index_shards(br#"{"weight_map":{"a":"../x"}}"#).is_err());
        assert!(index_shards(br#"{"weight_map":{}}"#).is_err());
        assert!(index_shards(b"nope").is_err());
    }

    #[test]
    fn messages_are_one_line_and_name_the_repo() {
        let spec = ModelSpec::parse("meta-llama/Llama-3.2-1B").unwrap();
        for token_sent in [false, true] {
            let msg = ModelError::Gated {
                spec: spec.clone(),
                status: 401,
                token_sent,
            }
            .to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.contains("meta-llama/Llama-3.2-1B"), "{msg}");
            assert_eq!(msg.contains("set HF_TOKEN"), !token_sent, "{msg}");
        }
    }
}
