//! Who may write into a run directory: what a directory already holds
//! ([`inspect`]), whether a command may take it ([`claim`]), and the
//! exclusive lock that keeps two processes out of one run ([`RunLock`]).
//!
//! The rule: a command never overwrites a run it did not create or is not
//! resuming, and resuming is only for the same kind of run. `bench eval`
//! resumes an eval run; `bench perf` and `bench rescore` only ever write a
//! fresh directory (rescore may redo its own earlier output of the same
//! source). A directory that holds files but no run is refused too, so an
//! `--output` pointed at a folder of one's own never gets a `report.md`
//! written over something else.
//!
//! The lock is `bench.lock` in the run directory: the holder's pid, host and
//! start time, and an advisory `flock` on the file. The kernel drops the
//! `flock` when the holder dies however it dies (SIGKILL included), so a lock
//! file left behind by a dead process is stale by definition and is taken
//! over with a note. Does not own the run's files themselves
//! ([`crate::record`], [`crate::perf::summary`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = "bench.lock";

/// What a directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Missing, empty, or only what an aborted start of bench leaves (an
    /// empty `samples/`, a lock file).
    Empty,
    /// An eval run (`run.json` of kind `eval`, not rescored).
    Eval,
    /// A rescored run and the directory it was rescored from.
    Rescore {
        /// `rescored_from.dir` as recorded.
        source: String,
        /// The mode of its first benchmark (what it was re-graded with).
        mode: String,
    },
    /// A perf run (`summary.json`).
    Perf,
    /// Files that are not a bench run (the first few names).
    Foreign(Vec<String>),
}

impl Found {
    /// A phrase for messages: "an eval run", "a perf run", ...
    pub fn describe(&self) -> String {
        match self {
            Found::Empty => "nothing".into(),
            Found::Eval => "an eval run".into(),
            Found::Rescore { source, .. } => format!("a rescored run (of {source})"),
            Found::Perf => "a perf run".into(),
            Found::Foreign(names) => {
                format!("files that are not a bench run ({})", names.join(", "))
            }
        }
    }
}

/// What the command wants to do with the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent<'a> {
    /// `bench eval`: create, or resume an eval run.
    Eval,
    /// `bench perf`: create only.
    Perf,
    /// `bench rescore` of `source` with `mode`: create, or redo the same
    /// rescore of the same source.
    Rescore {
        /// The run being re-graded (as given on the command line).
        source: &'a Path,
        /// Mode name.
        mode: &'a str,
    },
}

/// Why a directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The directory holds something this command must not overwrite.
    #[error("{flag} {dir}: it holds {found}, which {command} would overwrite; {hint}")]
    Occupied {
        /// The flag that named the directory.
        flag: &'static str,
        /// Directory.
        dir: String,
        /// What it holds.
        found: String,
        /// `bench perf` etc.
        command: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// Another process holds the lock.
    #[error(
        "{dir} is in use by another bench process (pid {pid} on {host}, since {since}{what}); wait for it to finish or use another --output"
    )]
    Locked {
        /// Directory.
        dir: String,
        /// Holder's pid.
        pid: u32,
        /// Holder's host.
        host: String,
        /// When it took the lock.
        since: String,
        /// `: bench eval` and the like.
        what: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClaimError + '_ {
    move |source| ClaimError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `dir` holds (a missing directory is [`Found::Empty`]).
pub fn inspect(dir: &Path) -> std::io::Result<Found> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Empty),
        Err(e) => return Err(e),
    };
    let manifest = dir.join("run.json");
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest)?;
        // Only the fields that tell the kind; a manifest that does not parse
        // at all is still a run (of another version, or damaged) and is
        // never overwritten.
        #[derive(Deserialize)]
        struct Head {
            #[serde(default)]
            kind: String,
            #[serde(default)]
            rescored_from: Option<serde_json::Value>,
            #[serde(default)]
            settings: Option<serde_json::Value>,
        }
        let head: Head = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", manifest.display()),
            )
        })?;
        if let Some(src) = head.rescored_from {
            let source = src
                .get("dir")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            let mode = head
                .settings
                .as_ref()
                .and_then(|s| s.pointer("/benchmarks/0/mode"))
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_string();
            return Ok(Found::Rescore { source, mode });
        }
        if head.kind == "eval" || head.kind.is_empty() {
            return Ok(Found::Eval);
        }
        return Ok(Found::Foreign(vec![format!(
            "run.json of kind `{}`",
            head.kind
        )]));
    }
    if dir.join("summary.json").is_file() {
        return Ok(Found::Perf);
    }
    let mut names = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == LOCK_FILE {
            continue;
        }
        // An empty samples/ is what an eval that failed before its first
        // answer leaves; it holds nothing to lose.
        if name == "samples"
            && e.file_type()?.is_dir()
            && std::fs::read_dir(e.path())?.next().is_none()
        {
            continue;
        }
        names.push(name);
    }
    if names.is_empty() {
        return Ok(Found::Empty);
    }
    names.sort();
    names.truncate(3);
    Ok(Found::Foreign(names))
}

/// Lock `dir` (creating it) and check that `intent` may write there.
/// Returns the lock (held until dropped) and what the directory held.
pub fn claim(dir: &Path, intent: Intent<'_>) -> Result<(RunLock, Found), ClaimError> {
    // Checked before the lock too, so a directory that is refused never gets
    // a lock file (nor is created).
    check(dir, intent, &inspect(dir).map_err(io_err(dir))?)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock = RunLock::acquire(dir, intent.command())?;
    // Again under the lock: another process may have written it meanwhile.
    let found = inspect(dir).map_err(io_err(dir))?;
    check(dir, intent, &found)?;
    Ok((lock, found))
}

/// Whether `intent` may write into a directory holding `found`.
fn check(dir: &Path, intent: Intent<'_>, found: &Found) -> Result<(), ClaimError> {
    let occupied = |command, hint| ClaimError::Occupied {
        flag: "--output",
        dir: dir.display().to_string(),
        found: found.describe(),
        command,
        hint,
    };
    match (intent, found) {
        (_, Found::Empty) | (Intent::Eval, Found::Eval) => Ok(()),
        (Intent::Eval, _) => Err(occupied(
            "bench eval",
            "bench eval only resumes eval runs it made; use another --output",
        )),
        (Intent::Perf, _) => Err(occupied(
            "bench perf",
            "a perf run is never resumed or replaced; use another --output",
        )),
        (Intent::Rescore { source, mode }, Found::Rescore { source: s, mode: m })
            if same_dir(Path::new(s), source) && m == mode =>
        {
            Ok(())
        }
        (Intent::Rescore { .. }, _) => Err(occupied(
            "bench rescore",
            "rescore writes a new directory (or redoes its own output of the same run and mode); use another --output",
        )),
    }
}

impl Intent<'_> {
    fn command(&self) -> &'static str {
        match self {
            Intent::Eval => "bench eval",
            Intent::Perf => "bench perf",
            Intent::Rescore { .. } => "bench rescore",
        }
    }
}

/// Whether two paths name the same directory (by canonical path when both
/// exist).
pub fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// What the lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// RFC 3339 time the lock was taken.
    pub since: String,
    /// `bench eval` and the like.
    pub command: String,
}

/// An exclusive lock on a run directory, released (and its file removed)
/// when dropped; the kernel releases it if the process dies first.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: File,
    /// The stale holder this lock replaced, if any (already reported).
    pub took_over: Option<LockInfo>,
}

impl RunLock {
    /// Take the lock on `dir` (which must exist) for `command`.
    pub fn acquire(dir: &Path, command: &str) -> Result<RunLock, ClaimError> {
        let path = dir.join(LOCK_FILE);
        // Retry when the file we locked was removed (and maybe recreated by
        // someone else) between our open and our flock: then we hold a lock
        // on a file nobody else will look at.
        for _ in 0..16 {
            let mut opts = OpenOptions::new();
            opts.read(true).write(true).create(true).truncate(false);
            // Never follow a link planted as bench.lock: we truncate it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.custom_flags(libc::O_NOFOLLOW);
            }
            let mut file = opts.open(&path).map_err(io_err(&path))?;
            if !lock_with_patience(&file).map_err(io_err(&path))? {
                let info = read_info(&mut file);
                return Err(ClaimError::Locked {
                    dir: dir.display().to_string(),
                    pid: info.as_ref().map_or(0, |i| i.pid),
                    host: info.as_ref().map_or_else(|| "?".into(), |i| i.host.clone()),
                    since: info
                        .as_ref()
                        .map_or_else(|| "?".into(), |i| i.since.clone()),
                    what: info
                        .as_ref()
                        .map_or_else(String::new, |i| format!(": {}", i.command)),
                });
            }
            if !same_file(&file, &path) {
                continue;
            }
            // A lock file nobody holds belongs to a process that is gone.
            let took_over = read_info(&mut file);
            if let Some(old) = &took_over {
                eprintln!(
                    "note: {}: took over a stale lock of pid {} on {} (since {}; that process is gone)",
                    dir.display(),
                    old.pid,
                    old.host,
                    old.since
                );
            }
            let info = LockInfo {
                pid: std::process::id(),
                host: hostname(),
                since: crate::util::now_rfc3339(),
                command: command.to_string(),
            };
            let bytes = serde_json::to_vec(&info).unwrap_or_default();
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| file.write_all(&bytes))
                .and_then(|_| file.flush())
                .map_err(io_err(&path))?;
            return Ok(RunLock {
                path,
                file,
                took_over,
            });
        }
        Err(ClaimError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("the lock file kept changing under us"),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove while still holding the flock, so a newcomer either opens
        // the old file and fails to lock it... or sees it gone; the inode
        // check in `acquire` handles the file being replaced in between.
        let _ = std::fs::remove_file(&self.path);
        let _ = &self.file;
    }
}

/// Who holds `dir`'s lock now: `Some` only while a live process holds it.
pub fn holder(dir: &Path) -> Option<LockInfo> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    // A shared lock we can take means no one holds the exclusive one.
    match try_flock(&file, false) {
        Ok(true) => None,
        Ok(false) => Some(read_info(&mut file).unwrap_or(LockInfo {
            pid: 0,
            host: "?".into(),
            since: "?".into(),
            command: "?".into(),
        })),
        Err(_) => None,
    }
}

/// For a run whose record says `running`: `Some(note)` when no process
/// holds its lock (it was killed or crashed), so it must be shown as
/// interrupted; `None` when it is really running, or not `running`.
pub fn stale_running(dir: &Path, status: &str) -> Option<String> {
    if status != "running" || holder(dir).is_some() {
        return None;
    }
    Some(
        "the record says `running`, but no bench process holds this run (it was killed or crashed): shown as interrupted; run the same command again to resume an eval"
            .into(),
    )
}

fn read_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The exclusive lock, tried a few times over ~100 ms: [`holder`] (run by
/// `bench report`, the index, compare) holds a shared lock for an instant
/// to probe, and must not make a claim fail.
fn lock_with_patience(file: &File) -> std::io::Result<bool> {
    for _ in 0..5 {
        if try_flock(file, true)? {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(false)
}

/// Non-blocking `flock`: `Ok(false)` when another process holds it.
#[cfg(unix)]
fn try_flock(file: &File, exclusive: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(not(unix))]
fn try_flock(_file: &File, _exclusive: bool) -> std::io::Result<bool> {
    Ok(true)
}

/// Whether `file` is still the file at `path` (same device and inode).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_one_dir_is_refused_and_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(d.path(), "bench eval").unwrap();
        let err = RunLock::acquire(d.path(), "bench eval").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("bench eval"), "{msg}");
        assert!(holder(d.path()).is_some());
        drop(first);
        assert!(!d.path().join(LOCK_FILE).exists());
        assert!(holder(d.path()).is_none());
        RunLock::acquire(d.path(), "bench eval").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn lock_file_planted_as_a_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&victim, run.join(LOCK_FILE)).unwrap();
        assert!(RunLock::acquire(&run, "bench eval").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn stale_lock_file_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let stale = LockInfo {
            pid: 999_999,
            host: "h".into(),
            since: "2020-01-01T00:00:00Z".into(),
            command: "bench eval".into(),
        };
        std::fs::write(
            d.path().join(LOCK_FILE),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        assert!(holder(d.path()).is_none(), "nobody holds a stale lock");
        let lock = RunLock::acquire(d.path(), "bench eval").unwrap();
        assert_eq!(lock.took_over, Some(stale));
    }

    #[test]
    fn foreign_files_are_not_a_run() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(inspect(d.path()).unwrap(), Found::Empty);
        std::fs::create_dir(d.path().join("samples")).unwrap();
        assert_eq!(inspect(d.path()).unwrap(), Found::Empty);
        std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
        assert_eq!(
            inspect(d.path()).unwrap(),
            Found::Foreign(vec!["notes.txt".into()])
        );
        let err = claim(d.path(), Intent::Eval).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt") && err.contains("--output"),
            "{err}"
        );
    }

    #[test]
    fn perf_never_takes_an_existing_run() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("summary.json"), "{}").unwrap();
        let err = claim(d.path(), Intent::Perf).unwrap_err().to_string();
        assert!(err.contains("a perf run"), "{err}");
        let err = claim(d.path(), Intent::Eval).unwrap_err().to_string();
        assert!(err.contains("a perf run"), "{err}");
    }
}
