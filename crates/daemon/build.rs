//! Build facts for `GET /version`: the source's git commit and its commit time (not the build's
//! clock, so that a build of the same commit is the same build). Empty outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    println!(
        "cargo:rustc-env=BERTH_GIT_COMMIT={}",
        git(&["rev-parse", "--short=7", "HEAD"])
    );
    println!(
        "cargo:rustc-env=BERTH_BUILD_TIME={}",
        git(&["log", "-1", "--format=%cI"])
    );
    // A new commit moves a ref (or HEAD itself, detached).
    let root = git(&["rev-parse", "--git-dir"]);
    if !root.is_empty() {
        for f in ["HEAD", "refs/heads", "packed-refs"] {
            println!("cargo:rerun-if-changed={root}/{f}");
        }
    }
}
