//! Small helpers every part of bench uses: the tool's identity in records,
//! the time stamp format, and atomic file writes. A leaf: imports nothing
//! from the crate, so any module may use it without making a cycle.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The tool that wrote a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `bench`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git commit the binary was built from, when known.
    pub git_sha: Option<String>,
}

impl ToolInfo {
    /// This binary.
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_sha: option_env!("BENCH_GIT_SHA").map(str::to_string),
        }
    }
}

/// Write a file via a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp~");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
    }
    std::fs::rename(&tmp, path)
}

/// Current UTC time as RFC 3339.
pub fn now_rfc3339() -> String {
    // Whole seconds: enough for a run record, and easier to read.
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

/// `%XX` sequences decoded to their bytes; an invalid escape (`%zz`, `%+1`,
/// a `%` near the end) is kept as is. The inverse of the hub's percent
/// encoding, shared by the fake hub (request paths) and the redactor (URL
/// passwords).
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
