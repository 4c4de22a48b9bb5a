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
