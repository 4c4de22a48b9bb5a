//! The builder's pieces against docker's classic builder (a private dockerd from Debian):
//! the files a `.dockerignore` leaves in the build context are the ones dockerd's build
//! copies, for a context and an ignore file full of edge cases.

use std::collections::BTreeSet;

use berth_build::ignore::Ignore;
use berth_e2e::peers::Dockerd;

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "dockerd needs root"
    );
}

const IGNORE: &str = "# comment\n\n  *.log  \n/build\n!build/keep.txt\n**/node_modules\ndocs/**/*.md\n!docs/README.md\ntmp?\n[ab]c\n./x/../y//z/\n*\n!*.rs\n!src\n!docs\n!tmp?\n!ac\n!cc\n!keep\nkeep/secret\n";

const FILES: &[&str] = &[
    "a.log",
    "logs/app.log",
    "build/out.o",
    "build/keep.txt",
    "node_modules/x.js",
    "sub/node_modules/y.js",
    "docs/a.md",
    "docs/x/y.md",
    "docs/README.md",
    "docs/a.txt",
    "tmp1",
    "tmp",
    "tmp12",
    "ac",
    "bc",
    "cc",
    "src/main.rs",
    "src/lib/x.rs",
    "y/z/w",
    "lib.rs",
    "keep/secret",
    "keep/open",
    "weird name.txt",
    "[ab]c",
];

#[test]
fn dockerignore_leaves_what_the_classic_builder_leaves() {
    require_root();
    let ctx = tempfile::tempdir().unwrap();
    for f in FILES {
        let p = ctx.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f).unwrap();
    }
    std::fs::write(ctx.path().join(".dockerignore"), IGNORE).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /ctx/\n",
    )
    .unwrap();
    let dockerd = Dockerd::start();
    let out = dockerd
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "ctxcheck"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build: {out:?}");
    let out = dockerd
        .docker()
        .args(["create", "--name", "ctxc", "ctxcheck", "/none"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tar = ctx.path().join("../export.tar");
    let out = dockerd
        .docker()
        .args(["export", "-o"])
        .arg(&tar)
        .arg("ctxc")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut docker: BTreeSet<String> = BTreeSet::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.header().entry_type().is_file() {
            let p = e.path().unwrap().display().to_string();
            if let Some(rel) = p.strip_prefix("ctx/") {
                docker.insert(rel.to_string());
            }
        }
    }
    let _ = std::fs::remove_file(&tar);
    let ig = Ignore::for_context(ctx.path(), &ctx.path().join("Dockerfile")).unwrap();
    let mut all: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    all.extend([".dockerignore".to_string(), "Dockerfile".to_string()]);
    let berth: BTreeSet<String> = all.into_iter().filter(|f| !ig.excluded(f)).collect();
    // The case is not trivial: some files go, some come back by exception (`!docs` after
    // `*` brings back the whole directory, `docs/**/*.md` included: the last match decides).
    for kept in [
        "docs/a.md",
        "src/main.rs",
        "docs/README.md",
        "tmp1",
        "keep/open",
    ] {
        assert!(docker.contains(kept), "dockerd kept {kept}: {docker:?}");
    }
    for gone in [
        "build/out.o",
        "build/keep.txt",
        "a.log",
        "keep/secret",
        "tmp12",
    ] {
        assert!(
            !docker.contains(gone),
            "dockerd left out {gone}: {docker:?}"
        );
    }
    assert_eq!(
        berth, docker,
        "berth's .dockerignore rules against dockerd's classic builder"
    );
}
