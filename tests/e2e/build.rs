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

// ---------------------------------------------------------------------------------------
// The corpus: each Dockerfile is built by berth and by dockerd's classic builder from the
// same context and the same busybox base; the image configs and file trees must be equal.
// ---------------------------------------------------------------------------------------

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use berth_e2e::{busybox_image, ok, Berthd};
use sha2::Digest as _;

/// A file of a build context: path, content, mode (a `->` content makes a symlink).
type File = (&'static str, &'static str, u32);

struct Case {
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [File],
    args: &'static [&'static str],
}

fn make_context(dir: &Path, c: &Case) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), c.dockerfile).unwrap();
    for (p, content, mode) in c.files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if let Some(target) = content.strip_prefix("->") {
            std::os::unix::fs::symlink(target, &path).unwrap();
            continue;
        }
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
}

/// A gzip tar with `t/one`, `t/two` (0755) and `t/link -> one`, for ADD's extraction.
fn archive(dir: &Path) {
    let f = std::fs::File::create(dir.join("archive.tar.gz")).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data, mode) in [("t/one", "one\n", 0o644), ("t/two", "two\n", 0o755)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    b.append_link(&mut h, "t/link", "one").unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

/// The paths an engine puts into every container and no image holds.
fn engine_owned(p: &str) -> bool {
    p == ".dockerenv"
        || ["dev", "proc", "sys"]
            .iter()
            .any(|d| p == *d || p.starts_with(&format!("{d}/")))
        || matches!(
            p,
            "etc/hosts" | "etc/hostname" | "etc/resolv.conf" | "etc/mtab"
        )
}

/// Every entry of an exported file system: type, mode, owner, size, content hash, link.
fn tree(tar_path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let p = p.trim_start_matches("./").trim_end_matches('/').to_string();
        if p.is_empty() || engine_owned(&p) {
            continue;
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => "dir".to_string(),
            tar::EntryType::Symlink => {
                format!("link->{}", h.link_name().unwrap().unwrap().display())
            }
            tar::EntryType::Link => {
                format!("hardlink->{}", h.link_name().unwrap().unwrap().display())
            }
            _ => format!("file:{}", hex::encode(sha2::Sha256::digest(&data))),
        };
        out.insert(
            p,
            format!(
                "{kind} mode={:o} owner={}:{}",
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap()
            ),
        );
    }
    out
}

/// The config fields a Dockerfile sets, with empty and missing made equal.
fn config(v: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    let c = &v[0]["Config"];
    let mut out = BTreeMap::new();
    for k in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
        "Healthcheck",
        "Shell",
        "OnBuild",
    ] {
        let x = &c[k];
        let empty = x.is_null()
            || x.as_str() == Some("")
            || x.as_array().is_some_and(|a| a.is_empty())
            || x.as_object().is_some_and(|o| o.is_empty());
        if !empty {
            out.insert(k.to_string(), x.clone());
        }
    }
    out
}

/// Builds `dir` with a docker-compatible CLI and returns the image's config and tree.
fn build_and_read(
    run: &dyn Fn(&[&str]) -> Output,
    dir: &Path,
    tag: &str,
    args: &[&str],
    scratch: &Path,
) -> (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, String>,
    String,
) {
    let mut a = vec!["build", "-t", tag];
    a.extend_from_slice(args);
    let d = dir.display().to_string();
    a.push(&d);
    let out = run(&a);
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build {tag}: {log}");
    let inspect: serde_json::Value =
        serde_json::from_slice(&run(&["image", "inspect", tag]).stdout).unwrap();
    let cname = format!("tree-{}", tag.replace([':', '/'], "-"));
    let _ = run(&["rm", "-f", &cname]);
    let created = run(&["create", "--name", &cname, tag, "/none"]);
    assert!(created.status.success(), "{created:?}");
    let tar = scratch.join(format!("{cname}.tar"));
    let e = run(&["export", "-o", &tar.display().to_string(), &cname]);
    assert!(e.status.success(), "{e:?}");
    let t = tree(&tar);
    let _ = std::fs::remove_file(&tar);
    let _ = run(&["rm", "-f", &cname]);
    (config(&inspect), t, log)
}

const MULTISTAGE: &str = r#"ARG BASE=busybox
FROM ${BASE} AS builder
ARG VERSION=1.0
ENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH
ENV DEF=${UNSET:-fallback} SET=${APP_HOME:+yes}
ENV LEGACY_FORM value with spaces
WORKDIR $APP_HOME
COPY src/ src/
RUN mkdir -p bin && for f in src/*.sh; do cp "$f" bin/; done && chmod 755 bin/* && echo "$VERSION" > VERSION

FROM busybox AS other
RUN echo other > /other.txt

FROM ${BASE}
ARG VERSION
LABEL org.example.version=$VERSION "org.example.name"="multi stage" \
      org.example.escaped="a \"quoted\" value"
COPY --from=builder /opt/app /opt/app
COPY --from=other /other.txt /from-other.txt
COPY --from=busybox /bin/busybox /usr/local/bin/bb
COPY --from=0 /opt/app/VERSION /version-by-index
ENV PATH=/opt/app/bin:$PATH
EXPOSE 8080/tcp 53/udp 9000-9002
VOLUME ["/data", "/cache"]
VOLUME /logs
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
RUN echo "shell $VERSION" > /shell.txt
ENTRYPOINT ["/opt/app/bin/run.sh"]
CMD ["--help"]
"#;

const USERS: &str = r#"FROM busybox
RUN chmod 1777 /tmp && mkdir -p /home/app && chown app:app /home/app
USER app
RUN id -u > /tmp/uid-named && touch /home/app/mine
USER 1234:5678
RUN id -u > /tmp/uid-numeric && id -g > /tmp/gid-numeric
USER root
WORKDIR /work/a/b
WORKDIR ../c
RUN pwd > /pwd.txt
COPY --chown=app:app f.txt /home/app/
COPY --chown=1234:5678 f.txt dir/ /owned/
COPY --chown=app f.txt /chown-user-only
COPY --chown=app:wheel dir /owned-dir/
WORKDIR /home/app
USER app:wheel
"#;

const COPIES: &str = r#"FROM busybox
COPY *.txt /globs/
COPY dir /d1
COPY dir/ /d2/
COPY a.txt /renamed.txt
COPY a.txt exec.sh secret.pem /many/
COPY link-in /link-copied
COPY dir/link-up /link-up-copied
COPY . /ctx/
RUN mkdir /existing
COPY a.txt /existing
ADD archive.tar.gz /extracted/
ADD plain.txt /added/
COPY ["b.txt", "/json form/"]
COPY d?r/sub/* /glob-sub/
WORKDIR /rel
COPY a.txt .
COPY a.txt sub/
"#;

const ONBUILD_PARENT: &str = r#"FROM busybox
ONBUILD COPY child.txt /onbuild/
ONBUILD RUN echo triggered > /onbuild/ran
CMD ["parent"]
"#;

const ONBUILD_CHILD: &str = r#"FROM onbuild-parent
RUN cat /onbuild/child.txt /onbuild/ran > /both
ENTRYPOINT ["/bin/echo"]
"#;

const CORPUS: &[Case] = &[
    Case {
        name: "multistage",
        dockerfile: MULTISTAGE,
        files: &[
            ("src/run.sh", "#!/bin/sh\necho run\n", 0o755),
            ("src/util.sh", "echo util\n", 0o644),
            ("src/readme", "not copied to bin\n", 0o644),
        ],
        args: &["--build-arg", "VERSION=2.5"],
    },
    Case {
        name: "users",
        dockerfile: USERS,
        files: &[
            ("f.txt", "file\n", 0o640),
            ("dir/x", "x\n", 0o644),
            ("dir/sub/y", "y\n", 0o600),
        ],
        args: &[],
    },
    Case {
        name: "copies",
        dockerfile: COPIES,
        files: &[
            ("a.txt", "a\n", 0o644),
            ("b.txt", "b\n", 0o644),
            ("c.md", "c\n", 0o644),
            ("keep.md", "keep\n", 0o644),
            ("exec.sh", "#!/bin/sh\n", 0o755),
            ("secret.pem", "pem\n", 0o600),
            ("plain.txt", "plain\n", 0o644),
            ("dir/x", "x\n", 0o644),
            ("dir/.hidden", "h\n", 0o644),
            ("dir/sub/y", "y\n", 0o644),
            ("dir/sub/z", "z\n", 0o644),
            ("dir/link-up", "->../b.txt", 0),
            ("link-in", "->a.txt", 0),
            (".dockerignore", "*.md\n!keep.md\ndir/sub/z\n", 0o644),
        ],
        args: &[],
    },
];

#[test]
fn corpus_matches_dockerd_classic_builder() {
    require_root();
    let berthd = Berthd::start_with(busybox_image);
    let dockerd = Dockerd::start();
    let scratch = tempfile::tempdir().unwrap();
    // The same busybox base on both sides: berth's, loaded into dockerd.
    let saved = scratch.path().join("busybox.tar");
    ok(berthd.berth(&["save", "-o", &saved.display().to_string(), "busybox:latest"]));
    let out = dockerd
        .docker()
        .args(["load", "-i"])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let berth = |a: &[&str]| berthd.berth(a);
    let docker = |a: &[&str]| {
        dockerd
            .docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(a)
            .output()
            .unwrap()
    };
    let mut cases: Vec<(&str, std::path::PathBuf, Vec<&str>)> = Vec::new();
    for c in CORPUS {
        let dir = scratch.path().join(c.name);
        make_context(&dir, c);
        if c.name == "copies" {
            archive(&dir);
        }
        cases.push((c.name, dir, c.args.to_vec()));
    }
    // ONBUILD: a parent built and tagged on both sides, then a child of it.
    let parent = scratch.path().join("onbuild-parent");
    make_context(
        &parent,
        &Case {
            name: "p",
            dockerfile: ONBUILD_PARENT,
            files: &[],
            args: &[],
        },
    );
    let child = scratch.path().join("onbuild-child");
    make_context(
        &child,
        &Case {
            name: "c",
            dockerfile: ONBUILD_CHILD,
            files: &[("child.txt", "child\n", 0o644)],
            args: &[],
        },
    );
    cases.push(("onbuild-parent", parent, vec![]));
    cases.push(("onbuild-child", child, vec![]));
    for (name, dir, args) in &cases {
        let (bc, bt, blog) = build_and_read(&berth, dir, name, args, scratch.path());
        let (dc, dt, _) = build_and_read(&docker, dir, name, args, scratch.path());
        assert_eq!(
            bc, dc,
            "{name}: image config, berth (left) vs dockerd (right)\n{blog}"
        );
        let only_berth: Vec<_> = bt.iter().filter(|(k, v)| dt.get(*k) != Some(v)).collect();
        let only_docker: Vec<_> = dt.iter().filter(|(k, v)| bt.get(*k) != Some(v)).collect();
        assert!(
            only_berth.is_empty() && only_docker.is_empty(),
            "{name}: file trees differ\nberth: {only_berth:#?}\ndockerd: {only_docker:#?}"
        );
        // Not vacuous: the steps left their marks.
        let marks: &[&str] = match *name {
            "multistage" => &[
                "opt/app/bin/run.sh",
                "usr/local/bin/bb",
                "shell.txt",
                "from-other.txt",
            ],
            "users" => &[
                "tmp/uid-named",
                "tmp/uid-numeric",
                "work/a/c",
                "owned/x",
                "chown-user-only",
            ],
            "copies" => &[
                "globs/a.txt",
                "d1/x",
                "extracted/t/one",
                "ctx/keep.md",
                "rel/sub/a.txt",
            ],
            "onbuild-child" => &["onbuild/child.txt", "onbuild/ran", "both"],
            _ => &["bin/busybox"],
        };
        for m in marks {
            assert!(
                bt.contains_key(*m),
                "{name}: {m} in the built tree: {bt:#?}"
            );
        }
    }
}

/// A berthd with busybox, and a context directory holding `dockerfile`.
fn setup(dockerfile: &str) -> (Berthd, tempfile::TempDir, std::path::PathBuf) {
    require_root();
    let b = Berthd::start_with(busybox_image);
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    (b, top, dir)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Builds `dir` with berth and returns (output, image id from --iidfile).
fn berth_build(b: &Berthd, dir: &Path, extra: &[&str]) -> (String, String) {
    let iid = dir.join("../iid");
    let mut a = vec!["build", "--iidfile"];
    let iids = iid.display().to_string();
    a.push(&iids);
    a.extend_from_slice(extra);
    let d = dir.display().to_string();
    a.push(&d);
    let out = b.berth(&a);
    let t = text(&out);
    assert!(out.status.success(), "berth build: {t}");
    (t, std::fs::read_to_string(&iid).unwrap())
}

#[test]
fn cache_reruns_exactly_what_changed() {
    let (b, _top, dir) = setup(
        "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-of-a\nCOPY b.txt /b.txt\nRUN echo done\n",
    );
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    std::fs::write(dir.join("b.txt"), "b\n").unwrap();
    let runs = |t: &str| t.matches(" ---> Running in ").count();
    let hits = |t: &str| t.matches(" ---> Using cache").count();

    let (t, first) = berth_build(&b, &dir, &["-t", "cached:1"]);
    assert_eq!(
        (runs(&t), hits(&t)),
        (3, 0),
        "a cold build runs every RUN: {t}"
    );

    let (t, id) = berth_build(&b, &dir, &["-t", "cached:1"]);
    assert_eq!(
        (runs(&t), hits(&t)),
        (0, 5),
        "an unchanged rebuild runs no step: {t}"
    );
    assert_eq!(id, first);

    // A new mtime alone is not a change.
    let f = std::fs::File::options()
        .write(true)
        .open(dir.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let (t, id) = berth_build(&b, &dir, &[]);
    assert_eq!(
        (runs(&t), hits(&t)),
        (0, 5),
        "touching a file reruns nothing: {t}"
    );
    assert_eq!(id, first);

    // The second copied file changes: the steps before it are reused, it and what follows rerun.
    std::fs::write(dir.join("b.txt"), "b changed\n").unwrap();
    let (t, id_b) = berth_build(&b, &dir, &[]);
    assert_eq!((runs(&t), hits(&t)), (1, 3), "b.txt changed: {t}");
    assert_ne!(id_b, first);
    let out = ok(b.berth(&["run", "--rm", &id_b, "cat", "/b.txt", "/copy-of-a"]));
    assert_eq!(out, "b changed\na");

    // The first one changes: only the first RUN is reused.
    std::fs::write(dir.join("a.txt"), "a changed\n").unwrap();
    let (t, _) = berth_build(&b, &dir, &[]);
    assert_eq!((runs(&t), hits(&t)), (2, 1), "a.txt changed: {t}");

    // A mode change is a change.
    std::fs::set_permissions(dir.join("b.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (t, _) = berth_build(&b, &dir, &[]);
    assert_eq!((runs(&t), hits(&t)), (1, 3), "b.txt's mode changed: {t}");

    let (t, _) = berth_build(&b, &dir, &["--no-cache"]);
    assert_eq!((runs(&t), hits(&t)), (3, 0), "--no-cache: {t}");

    // --cache-from limits the cache to those images' chains (a name that is no image counts
    // for nothing, as with dockerd).
    let (_, last) = berth_build(&b, &dir, &["-t", "cf:1"]);
    let (t, id) = berth_build(&b, &dir, &["--cache-from", "cf:1"]);
    assert_eq!(
        (runs(&t), hits(&t)),
        (0, 5),
        "--cache-from the last build: {t}"
    );
    assert_eq!(id, last);
    let (t, _) = berth_build(&b, &dir, &["--cache-from", "nosuch:tag"]);
    assert_eq!(
        (runs(&t), hits(&t)),
        (3, 0),
        "--cache-from nothing known: {t}"
    );

    // Intermediate images are hidden from `images`, shown by `images -a`, and counted as
    // build cache; `builder prune` takes them, and the next build runs everything again.
    let listed = ok(b.berth(&["images", "-q"]));
    let all = ok(b.berth(&["images", "-a", "-q"]));
    assert!(
        all.lines().count() > listed.lines().count() + 5,
        "{listed} vs {all}"
    );
    let df = ok(b.berth(&["system", "df", "--format", "{{json .}}"]));
    let row: serde_json::Value =
        serde_json::from_str(df.lines().find(|l| l.contains("Build Cache")).unwrap()).unwrap();
    assert_ne!(row["TotalCount"], "0", "{df}");
    let pruned = ok(b.berth(&["builder", "prune", "-f"]));
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    let df = ok(b.berth(&["system", "df"]));
    assert!(
        df.lines()
            .any(|l| l.starts_with("Build Cache") && l.split_whitespace().nth(2) == Some("0")),
        "{df}"
    );
    assert!(
        ok(b.berth(&["images"])).contains("cached"),
        "tagged images stay"
    );
    // A build's final image stays too, tagged or not: prune forgets it, never removes it.
    assert!(
        b.berth(&["image", "inspect", &id_b]).status.success(),
        "an untagged final image stays"
    );
    let (t, _) = berth_build(&b, &dir, &[]);
    assert_eq!((runs(&t), hits(&t)), (3, 0), "after builder prune: {t}");
}

#[test]
fn heredocs_and_run_mounts() {
    require_root();
    let b = Berthd::start_with(busybox_image);
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("ctx");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/d.txt"), "bound\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        r#"FROM busybox
ENV NAME=world
RUN <<EOF
echo from heredoc > /heredoc.txt
echo "second $NAME" >> /heredoc.txt
EOF
RUN cat <<EOT > /shell-heredoc.txt
piped $NAME
EOT
COPY <<EOF /etc/greeting
hello $NAME
EOF
COPY <<'EOF' /etc/literal
hello $NAME
EOF
RUN --mount=type=cache,target=/cache n=$(cat /cache/n 2>/dev/null || echo 0); echo $((n+1)) > /cache/n; cp /cache/n /seen
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && test -f /scratch/x && grep -q ' /scratch tmpfs' /proc/mounts
RUN --mount=type=bind,source=data,target=/ctx cat /ctx/d.txt > /bound.txt && ! touch /ctx/rw 2>/dev/null
RUN --mount=type=bind,source=data,target=/ctx,rw echo scribble > /ctx/d.txt && cat /ctx/d.txt > /scribbled.txt
RUN --mount=type=bind,source=data,target=/ctx cat /ctx/d.txt > /after-rw.txt
"#,
    )
    .unwrap();
    let (_, id) = berth_build(&b, &dir, &["-t", "heredocs"]);
    let cat = |p: &str| ok(b.berth(&["run", "--rm", &id, "cat", p]));
    // (`ok` trims the output.)
    assert_eq!(cat("/heredoc.txt"), "from heredoc\nsecond world");
    assert_eq!(cat("/shell-heredoc.txt"), "piped world");
    assert_eq!(cat("/etc/greeting"), "hello world");
    assert_eq!(
        cat("/etc/literal"),
        "hello $NAME",
        "a quoted word: no expansion"
    );
    assert_eq!(cat("/seen"), "1");
    assert_eq!(cat("/bound.txt"), "bound");
    // A writable bind writes into a copy: the context (kept for the next build) is unchanged.
    assert_eq!(cat("/scribbled.txt"), "scribble");
    assert_eq!(cat("/after-rw.txt"), "bound");
    // What the mounts held is not in the image.
    let ls = ok(b.berth(&[
        "run",
        "--rm",
        &id,
        "sh",
        "-c",
        "ls -A /cache /scratch /ctx 2>&1; true",
    ]));
    assert!(
        !ls.contains(" n\n") && !ls.contains("x\n") && !ls.contains("d.txt"),
        "{ls}"
    );
    // The cache mount outlives the build: the next one (uncached) sees the count.
    let (_, id2) = berth_build(&b, &dir, &["--no-cache"]);
    assert_eq!(ok(b.berth(&["run", "--rm", &id2, "cat", "/seen"])), "2");
    // A changed bound file reruns the step that binds it.
    std::fs::write(dir.join("data/d.txt"), "bound again\n").unwrap();
    let (t, id3) = berth_build(&b, &dir, &[]);
    assert!(t.contains("Running in"), "{t}");
    assert_eq!(
        ok(b.berth(&["run", "--rm", &id3, "cat", "/bound.txt"])),
        "bound again"
    );
}

/// A tar header with a raw name (the `tar` crate refuses to write `..` names itself).
fn raw_entry(t: &mut tar::Builder<&mut Vec<u8>>, name: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    t.append(&h, data).unwrap();
}

#[test]
fn hostile_contexts_and_bad_dockerfiles() {
    require_root();
    let b = Berthd::start_with(busybox_image);
    let top = tempfile::tempdir().unwrap();
    let secret_dir = top.path().join("host-secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("key"), "HOST SECRET\n").unwrap();
    let dir = top.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(top.path().join("outside"), "outside\n").unwrap();
    std::os::unix::fs::symlink(&secret_dir, dir.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", dir.join("up-link")).unwrap();
    std::os::unix::fs::symlink("/", dir.join("root-link")).unwrap();
    for f in ["a", "b", "c"] {
        std::fs::write(dir.join(f), f).unwrap();
    }
    let fails = |df: &str, words: &str, line: usize| {
        std::fs::write(dir.join("Dockerfile"), df).unwrap();
        let out = b.berth(&["build", &dir.display().to_string()]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{df:?} fails: {t}");
        assert!(t.contains(words), "{df:?}: {t:?} should say {words:?}");
        assert!(
            t.contains(&format!("Dockerfile:{line}")),
            "{df:?}: {t:?} names line {line}"
        );
    };
    fails(
        "FROM busybox\nCOPY ../outside /x\n",
        "forbidden path outside the build context",
        2,
    );
    // Symlinks in the context resolve inside it: none reaches the host's files.
    fails(
        "FROM busybox\nCOPY abs-link/key /x\n",
        "file not found in build context",
        2,
    );
    fails(
        "FROM busybox\nCOPY up-link/outside /x\n",
        "file not found in build context",
        2,
    );
    fails(
        "FROM busybox\nRUN true\nFOO bar\n",
        "unknown instruction",
        3,
    );
    fails(
        "FROM busybox\nCOPY onlyone\n",
        "requires at least two arguments",
        2,
    );
    fails(
        "FROM busybox\nENV lonely\n",
        "ENV must have two arguments",
        2,
    );
    fails(
        "FROM busybox\nRUN --mount=type=nfs,target=/x true\n",
        "unsupported mount type",
        2,
    );
    fails(
        "FROM busybox\nHEALTHCHECK --interval=soon CMD true\n",
        "invalid duration",
        2,
    );
    fails("FROM busybox\nEXPOSE http\n", "invalid containerPort", 2);
    fails(
        "FROM busybox\nCOPY a b c /not-a-dir\n",
        "must be a directory and end with a /",
        2,
    );
    fails(
        "FROM busybox AS a\nCOPY --from=later /x /y\nFROM busybox AS later\nFROM a\n",
        "not defined before",
        2,
    );
    let out = b.berth(&["build", "--target", "nope", &dir.display().to_string()]);
    assert!(
        text(&out).contains("failed to reach build target nope"),
        "{}",
        text(&out)
    );
    // A RUN that fails: docker's words and its exit code.
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN exit 7\n").unwrap();
    let out = b.berth(&["build", &dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(text(&out).contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"));
    // `COPY root-link/ /r/` copies the context itself (the link resolves to its root).
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY root-link/ /r/\n",
    )
    .unwrap();
    let (_, id) = berth_build(&b, &dir, &[]);
    let ls = ok(b.berth(&["run", "--rm", &id, "ls", "-A", "/r"]));
    assert!(
        ls.contains("Dockerfile") && !ls.contains("etc") && !ls.contains("host-secret"),
        "{ls}"
    );

    // A hostile context tar through the API: a write through a symlink that leads out, and
    // a `..` name. Nothing lands outside, and the daemon answers and stays up.
    let mut raw = Vec::new();
    {
        let mut t = tar::Builder::new(&mut raw);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        t.append_link(&mut h, "out", &secret_dir).unwrap();
        raw_entry(&mut t, b"out/pwned", b"pwned\n");
        raw_entry(&mut t, b"../../../../../../tmp/berth-escape", b"pwned\n");
        raw_entry(&mut t, b"Dockerfile", b"FROM busybox\n");
        t.finish().unwrap();
    }
    let _ = std::fs::remove_file("/tmp/berth-escape");
    let mut s = std::os::unix::net::UnixStream::connect(b.sock()).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /v1.43/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        raw.len()
    )
    .unwrap();
    s.write_all(&raw).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 400"),
        "a hostile context is refused: {resp}"
    );
    assert!(
        !secret_dir.join("pwned").exists(),
        "no write through the symlink"
    );
    assert!(
        !Path::new("/tmp/berth-escape").exists(),
        "no write outside the context"
    );
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("key")).unwrap(),
        "HOST SECRET\n"
    );
    ok(b.berth(&["version"]));
}

#[test]
fn docker_clients_build_against_berthd() {
    let (b, top, dir) = setup(
        "FROM busybox AS base\nARG MSG=default\nRUN echo \"$MSG\" > /msg\nFROM base AS final\nCMD [\"cat\", \"/msg\"]\nFROM busybox AS other\nRUN exit 4\n",
    );
    let mut ids = Vec::new();
    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let docker = |args: &[&str]| {
            std::process::Command::new(client)
                .env("DOCKER_BUILDKIT", "0")
                .arg("-H")
                .arg(b.host())
                .args(args)
                .output()
                .unwrap()
        };
        let iid = top.path().join("iid");
        let (d, i) = (dir.display().to_string(), iid.display().to_string());
        let common = [
            "--target",
            "final",
            "--build-arg",
            "MSG=from the docker cli",
            "--label",
            "who=docker",
        ];
        let mut a = vec!["build", "-t", "dc:one", "-t", "dc:two", "--iidfile", &i];
        a.extend(common);
        a.push(&d);
        let out = docker(&a);
        let t = text(&out);
        assert!(out.status.success(), "{client}: {t}");
        assert!(t.contains("Successfully tagged dc:two"), "{client}: {t}");
        let id = std::fs::read_to_string(&iid).unwrap();
        assert!(id.starts_with("sha256:"), "{id}");
        let mut a = vec!["build", "-q"];
        a.extend(common);
        a.push(&d);
        let q = docker(&a);
        assert_eq!(
            String::from_utf8_lossy(&q.stdout).trim(),
            id,
            "{client} -q: {}",
            text(&q)
        );
        let run = docker(&["run", "--rm", "dc:two"]);
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            "from the docker cli\n"
        );
        let label = docker(&["inspect", "-f", "{{.Config.Labels.who}}", "dc:one"]);
        assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "docker");
        // The failing stage: docker's exit code is the RUN's.
        let out = docker(&["build", "--target", "other", &d]);
        assert_eq!(out.status.code(), Some(4), "{client}: {}", text(&out));
        ids.push(id);
    }
    assert_eq!(
        ids[0], ids[1],
        "the second client's build is the first's, from the cache"
    );
}

/// Serves `body` over HTTP on a loopback port for each request (ADD's URL source).
fn http_file(body: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            use std::io::{BufRead, Write};
            let mut s = s;
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn independent_stages_run_at_once_and_add_fetches_urls() {
    require_root();
    let b = Berthd::start_with(busybox_image);
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tool.sh"), "#!/bin/sh\necho tool\n").unwrap();
    let port = http_file("downloaded\n");
    // Each of the two stages waits (up to 20 s) for the other to have started, through a
    // cache mount both see: the build succeeds only if they run at the same time.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/sync,id=sync touch /sync/{me} && i=0; while [ ! -f /sync/{other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.1; done; echo {me} > /{me}.txt"
        )
    };
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM busybox AS left\n{}\nFROM busybox AS right\n{}\nFROM busybox\nCOPY --from=left /left.txt /\nCOPY --from=right /right.txt /\nADD http://127.0.0.1:{port}/files/data.txt /downloads/\nCOPY --chmod=0750 tool.sh /usr/local/bin/\n",
            wait("left", "right"),
            wait("right", "left")
        ),
    )
    .unwrap();
    let (t, id) = berth_build(&b, &dir, &[]);
    // The output is still printed stage by stage, in file order.
    let (l, r) = (
        t.find("echo left").unwrap(),
        t.find("FROM busybox AS right").unwrap(),
    );
    assert!(l < r, "{t}");
    let out = ok(b.berth(&["run", "--rm", &id, "sh", "-c", "cat /left.txt /right.txt /downloads/data.txt; stat -c %a /downloads/data.txt /usr/local/bin/tool.sh"]));
    assert_eq!(out, "left\nright\ndownloaded\n600\n750", "{t}");
}

#[test]
fn pull_of_a_base_uses_the_clients_credentials() {
    use berth_e2e::peers::{Registry, RegistrySetup};
    require_root();
    let b = Berthd::start_with(busybox_image);
    let reg = Registry::start(RegistrySetup {
        htpasswd: Some(("builder", "s3cret")),
        ..RegistrySetup::default()
    });
    let host = reg.host();
    let top = tempfile::tempdir().unwrap();
    let cfg = top.path().join("docker-config");
    let cli = |client: &str, args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut c = std::process::Command::new(client);
        c.env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_BUILDKIT", "0")
            .arg("-H")
            .arg(b.host())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let docker = "/usr/bin/docker";
    let base = format!("{host}/team/base:1");
    let out = cli(
        docker,
        &["login", "-u", "builder", "--password-stdin", &host],
        Some("s3cret"),
    );
    assert!(out.status.success(), "{}", text(&out));
    ok(b.berth(&["tag", "busybox", &base]));
    let out = cli(docker, &["push", &base], None);
    assert!(out.status.success(), "{}", text(&out));
    ok(b.berth(&["rmi", &base]));
    let dir = top.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nRUN echo pulled > /p\n"),
    )
    .unwrap();
    let d = dir.display().to_string();
    // Without credentials the registry refuses the base.
    let empty = top.path().join("empty-config");
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(docker)
        .env("DOCKER_CONFIG", &empty)
        .env("DOCKER_BUILDKIT", "0")
        .args(["-H", &b.host(), "build", &d])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "no credentials, no base: {}",
        text(&out)
    );
    // With them (X-Registry-Config), the base is pulled and the build runs on it.
    let out = cli(docker, &["build", "--pull", "-t", "pulled-base", &d], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        ok(b.berth(&["images"])).contains("team/base"),
        "the base was pulled"
    );
    assert_eq!(
        ok(b.berth(&["run", "--rm", "pulled-base", "cat", "/p"])),
        "pulled"
    );
}
