//! Records the commit the binary is built from, for `fabrik --version`: `git rev-parse --short
//! HEAD` when the source is a git checkout with git at hand, else `unknown` (a source tarball).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let mut commit = None;
    // `.git` is a directory in a clone, a file in a worktree.
    if Path::new(".git").exists() {
        commit = git(&["rev-parse", "--short", "HEAD"]);
        // Built again when HEAD moves: a checkout changes HEAD, a commit the branch's ref.
        for name in ["HEAD", "packed-refs"] {
            if let Some(path) = git(&["rev-parse", "--git-path", name]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(path) = git(&["rev-parse", "--git-path", &branch])
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rustc-env=FABRIK_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
