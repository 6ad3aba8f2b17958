//! Records the git commit the binary is built from (BENCH_GIT_SHA), so every
//! run record says exactly which code produced it. Outside a git checkout
//! the value is simply absent.

use std::process::Command;

fn main() {
    let sha = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    // Uncommitted changes are not flagged: this script reruns only when HEAD
    // moves, so a "dirty" mark would go stale.
    if let Some(sha) = sha {
        println!("cargo:rustc-env=BENCH_GIT_SHA={sha}");
    }
    // Rebuild when HEAD moves (a commit or a checkout). The paths come from
    // git itself: in a worktree `.git` is a file and HEAD lives elsewhere,
    // and a path that does not exist would make cargo rerun this script,
    // and rebuild the crate, on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for what in ["HEAD", "refs/heads"] {
        let path = Command::new("git")
            .args(["rev-parse", "--git-path", what])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string());
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
