//! `--format` against the docker 28 CLI: each command line runs once through `berth` and once
//! through docker 28 against the same berthd, and their output and exit code must match. The
//! docker CLI renders templates itself (Go's text/template over its own types), so the
//! comparison tests berth's renderer, not the daemon. Differences berth keeps on purpose are
//! in `ALLOWED`, each with its reason.

use berth_e2e::{busybox_image, ok, Berthd};

const DOCKER28: &str = "/usr/local/bin/docker";

/// Command lines whose output may differ, and why.
const ALLOWED: &[(&str, &str)] = &[
    // Go prints a struct's fields in the order its type declares them; the API's JSON does
    // not carry that order, and berth prints them sorted by name (docs/cli.md).
    ("{{.State}}", "struct field order"),
    ("{{.HostConfig.RestartPolicy}}", "struct field order"),
    // The same for Go's JSON encoder, which writes a struct's fields in declaration order.
    ("{{json .HostConfig.RestartPolicy}}", "struct field order"),
];

fn run(d: &Berthd, client: Option<&str>, args: &[&str]) -> (String, i32) {
    let out = match client {
        Some(c) => d.docker(c, args),
        None => d.berth(args),
    };
    let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    // List rows of one image (its names in different repositories) come out of the docker
    // CLI in Go map order, which changes from run to run: lists are compared as sets.
    if matches!(args.first(), Some(&"images" | &"ps")) || args.get(1) == Some(&"ls") {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        text = lines.join("\n");
    }
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn format_templates_render_as_the_docker_cli_renders_them() {
    assert!(
        std::path::Path::new(DOCKER28).exists(),
        "the docker 28 client is expected at {DOCKER28} (scripts/install-deps)"
    );
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "lab",
        "-l",
        "b=2",
        "-l",
        "a=1",
        "-l",
        "z=26",
        "-e",
        "X=1",
        "--restart",
        "on-failure:3",
        "busybox",
        "sleep",
        "1000",
    ]));
    ok(d.berth(&["volume", "create", "--label", "k=v", "vol1"]));
    ok(d.berth(&["network", "create", "--label", "n=1", "net1"]));
    // A second name for the same image: `images busybox` shows only the matching one, as
    // dockerd answers a reference filter.
    ok(d.berth(&["tag", "busybox", "other/name:1"]));
    assert_eq!(
        ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}", "busybox"])).trim(),
        "busybox:latest"
    );
    let cases: &[&[&str]] = &[
        &["inspect", "-f", "{{.Config.Labels}}", "lab"],
        &["inspect", "-f", "{{.Config.Cmd}}", "lab"],
        &["inspect", "-f", "{{.Config.Env}}", "lab"],
        &["inspect", "-f", "{{len .Config.Labels}}", "lab"],
        &["inspect", "-f", "{{index .Config.Labels \"a\"}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "lab",
        ],
        &["inspect", "-f", "{{range .Config.Env}}{{.}},{{end}}", "lab"],
        &["inspect", "-f", "{{range.Config.Env}}[{{.}}]{{end}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{range .HostConfig.Dns}}x{{else}}no dns{{end}}",
            "lab",
        ],
        &["inspect", "-f", "{{.HostConfig.Dns}} {{.Mounts}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.State.Running}}",
            "lab",
        ],
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.RestartCount}}",
            "lab",
        ],
        &["inspect", "-f", "{{json .Config.Labels}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{join .Config.Cmd \"+\"}} {{upper .State.Status}}",
            "lab",
        ],
        &[
            "inspect",
            "-f",
            "{{if .State.Running}}up{{else}}down{{end}}",
            "lab",
        ],
        &["inspect", "-f", "{{$s := .State}}{{$s.Status}}", "lab"],
        &["inspect", "-f", "{{- .Name -}}", "lab"],
        &["inspect", "-f", "{{.State}}", "lab"],
        &["inspect", "-f", "{{.HostConfig.RestartPolicy}}", "lab"],
        &[
            "image",
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{.RepoTags}}",
            "busybox",
        ],
        &[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            "busybox",
        ],
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Labels}} {{.Options}} {{.Driver}}",
            "vol1",
        ],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Labels}} {{.Driver}}",
            "net1",
        ],
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "net1",
        ],
        &["ps", "--format", "{{.Names}}:{{.Labels}}"],
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        &["images", "--format", "{{.Repository}}:{{.Tag}}", "busybox"],
        &["images", "--format", "{{.Repository}}:{{.Tag}}", "other/*"],
        &["network", "ls", "--format", "{{.Name}}"],
        &["inspect", "-f", "{{.Nope", "lab"],
        // Tables: headers, column widths (Go's tabwriter with docker's padding).
        &[
            "ps",
            "--format",
            "table {{.Names}}\t{{.Image}}\t{{.Labels}}",
        ],
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
        ],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Driver}}\t{{.Labels}}",
        ],
        &[
            "network",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Driver}}\t{{.Scope}}",
        ],
        &["volume", "ls"],
        &[
            "network",
            "ls",
            "--filter",
            "name=net1",
            "--format",
            "{{.Name}} {{.Labels}}",
        ],
        // Row methods and functions.
        &["ps", "--format", "{{.Label \"a\"}} {{.Label \"nope\"}}"],
        &["ps", "--format", "{{.Names}} {{.Command}} {{.Image}}"],
        &["ps", "--no-trunc", "--format", "{{.Command}}"],
        &[
            "images",
            "--format",
            "{{.Repository}} {{.ID}} {{.Size}}",
            "busybox",
        ],
        &[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Label \"k\"}} {{.Scope}}",
        ],
        &[
            "inspect",
            "-f",
            "{{title .State.Status}} {{lower .Name}}",
            "lab",
        ],
        &["inspect", "-f", "{{split .Name \"a\"}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{printf \"%s-%d\" .State.Status .RestartCount}}",
            "lab",
        ],
        &[
            "inspect",
            "-f",
            "{{truncate .Name 3}}|{{pad .Name 2 2}}|",
            "lab",
        ],
        &["inspect", "-f", "{{index .Config.Cmd 0}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{.Config.Labels.a}} {{.HostConfig.RestartPolicy.Name}}",
            "lab",
        ],
        &[
            "inspect",
            "-f",
            "{{range $i, $e := .Config.Cmd}}{{$i}}:{{$e}} {{end}}",
            "lab",
        ],
        &["inspect", "-f", "{{with .State}}{{.Status}}{{end}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{eq .State.Status \"running\"}} {{ne .RestartCount 0}}",
            "lab",
        ],
        &["inspect", "-f", "{{json .HostConfig.RestartPolicy}}", "lab"],
        &[
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}}",
            "lab",
        ],
        &["image", "inspect", "-f", "{{json .Config.Env}}", "busybox"],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Internal}} {{.EnableIPv6}}",
            "net1",
        ],
        &["volume", "inspect", "-f", "{{json .Labels}}", "vol1"],
        &[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.Images}}",
        ],
        &["info", "--format", "{{.CgroupDriver}} {{.OSType}}"],
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Os}}",
        ],
        &[
            "version",
            "--format",
            "{{.Server.GitCommit}} {{.Server.BuildTime}}",
        ],
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "lab",
        ],
    ];
    // berthd says which commit it was built from: one of this checkout's (HEAD when nothing
    // was committed since the build).
    let commit = ok(d.berth(&["version", "--format", "{{.Server.GitCommit}}"]));
    assert_eq!(commit.len(), 7, "{commit:?}");
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(
        known.success(),
        "GitCommit {commit} is a commit of this checkout"
    );
    let mut differ = Vec::new();
    for args in cases {
        let (b, bc) = run(&d, None, args);
        let (k, kc) = run(&d, Some(DOCKER28), args);
        let key = args
            .iter()
            .find(|a| a.contains("{{"))
            .copied()
            .unwrap_or("");
        let allowed = ALLOWED.iter().any(|(t, _)| *t == key);
        // A template docker cannot parse fails in both, each in its own words.
        if (&b, bc) != (&k, kc) && !(bc != 0 && kc != 0) {
            if !allowed {
                differ.push(format!(
                    "{args:?}\n  berth  ({bc}): {b}\n  docker ({kc}): {k}"
                ));
            }
        } else {
            assert!(
                !allowed || bc != 0,
                "{key:?} is allowed to differ but no longer does: drop it from ALLOWED"
            );
        }
    }
    assert!(
        differ.is_empty(),
        "berth and docker 28 differ:\n{}",
        differ.join("\n")
    );
}

/// The plugin endpoints answer as a dockerd with no plugins: `docker plugin ls` lists none
/// (tools that list plugins when they start stopped on berthd's 404), a named plugin is not
/// found in dockerd's words, and installing one is refused.
#[test]
fn plugin_endpoints_answer_as_a_dockerd_without_plugins() {
    let d = Berthd::start_with(|_| {});
    let ls = d.docker(DOCKER28, &["plugin", "ls"]);
    assert!(ls.status.success(), "{ls:?}");
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["ID", "NAME", "DESCRIPTION", "ENABLED"]
    );
    for args in [
        &["plugin", "inspect", "foo"][..],
        &["plugin", "enable", "vieux/sshfs:latest"],
        &["plugin", "disable", "foo"],
        &["plugin", "rm", "foo"],
    ] {
        let out = d.docker(DOCKER28, args);
        let err = String::from_utf8_lossy(&out.stderr);
        let name = args[2];
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            err.contains(&format!("plugin \"{name}\" not found")),
            "{args:?}: {err}"
        );
    }
    let install = d.docker(
        DOCKER28,
        &["plugin", "install", "--grant-all-permissions", "x/y"],
    );
    assert!(
        String::from_utf8_lossy(&install.stderr).contains("berthd runs no managed plugins"),
        "{install:?}"
    );
}

/// Command-line mistakes: the same first line and exit code as the docker 28 CLI (125 for an
/// unknown flag, 1 for a missing argument or an unknown command), with `berth` for `docker`.
/// `-h` is help outside `run` and `create` (deprecated in docker, still taken).
#[test]
fn usage_mistakes_exit_as_dockers_do() {
    let d = Berthd::start_with(|_| {});
    for args in [
        &["run", "--foo", "x"][..],
        &["run", "-x", "busybox"],
        &["ps", "--bogus"],
        &["run"],
        &["stop"],
        &["rm"],
        &["nosuchcommand"],
        // Flag values, parsed before anything is sent, in docker's (Go's) words.
        &["run", "-m", "-5", "busybox"],
        &["run", "-m", "5x", "busybox"],
        &["run", "--memory", "abc", "busybox"],
        &["run", "--cpus", "abc", "busybox"],
        &["run", "--pids-limit", "x", "busybox"],
        &["run", "--cpu-shares", "99999999999999999999", "busybox"],
        &["update", "-m", "zz", "c1"],
        &["container", "create", "--memory-swap", "1q", "busybox"],
        &["container", "run", "--shm-size", "1y", "busybox"],
    ] {
        let b = d.berth(args);
        let k = d.docker(DOCKER28, args);
        let first = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .replace("docker", "berth")
        };
        assert_eq!(
            (first(&b), b.status.code()),
            (first(&k), k.status.code()),
            "{args:?}"
        );
    }
    let help = d.berth(&["images", "-h"]);
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: berth images"));
}

/// `exec` of a program that is not there, through the docker 28 CLI and berth's: dockerd's
/// (runc's) words on the stream and exit 127 (the docker CLI once got "unable to upgrade to
/// tcp, received 400" here).
#[test]
fn exec_of_a_missing_program_reads_as_on_dockerd() {
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]));
    let want = "OCI runtime exec failed: exec failed: unable to start container process: \
                exec: \"nosuchbinary\": executable file not found in $PATH: unknown";
    for out in [
        d.docker(DOCKER28, &["exec", "ex", "nosuchbinary"]),
        d.berth(&["exec", "ex", "nosuchbinary"]),
    ] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(127), "{text}");
        assert_eq!(text.trim(), want);
    }
}

/// `argv` run with a terminal (a pty) as its stdin and stdout; its output (trimmed) and exit
/// code.
fn in_pty(argv: &[&str]) -> (String, i32) {
    let (out, code) = berth_e2e::on_a_terminal(argv);
    (out.trim().to_string(), code)
}

/// What docker refuses about terminals, berth refuses in the same words and exit code: an
/// archive written to a terminal (`save`, `export` without `-o`), an archive read from one
/// (`load`), and `-it` when stdin is no terminal (`run`, `exec`).
#[test]
fn terminal_refusals_read_as_dockers() {
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["run", "-d", "--name", "tt", "busybox", "sleep", "1000"]));
    let berth = berth_e2e::binary("berth").display().to_string();
    let host = d.host();
    for args in [&["save", "busybox"][..], &["export", "tt"], &["load"]] {
        let mut b = vec![berth.as_str(), "-H", &host];
        b.extend_from_slice(args);
        let mut k = vec![DOCKER28, "-H", &host];
        k.extend_from_slice(args);
        let (bo, bc) = in_pty(&b);
        let (ko, kc) = in_pty(&k);
        assert_eq!((bo.as_str(), bc), (ko.as_str(), kc), "{args:?}");
        assert_eq!(bc, 1, "{args:?}: {bo}");
    }
    for args in [
        &["run", "--rm", "-it", "busybox", "true"][..],
        &["exec", "-it", "tt", "true"],
    ] {
        let nul = || std::fs::File::open("/dev/null").unwrap();
        let b = std::process::Command::new(&berth)
            .arg("-H")
            .arg(&host)
            .args(args)
            .stdin(nul())
            .output()
            .unwrap();
        let k = std::process::Command::new(DOCKER28)
            .arg("-H")
            .arg(&host)
            .args(args)
            .stdin(nul())
            .output()
            .unwrap();
        assert_eq!(
            (String::from_utf8_lossy(&b.stderr).trim(), b.status.code()),
            (String::from_utf8_lossy(&k.stderr).trim(), k.status.code()),
            "{args:?}"
        );
        assert_eq!(b.status.code(), Some(1), "{args:?}");
    }
}

/// `--format json` and the list columns beyond the default table (mounts, networks, local
/// volumes, sizes, digests, Go-printed times, Go's JSON escapes of `<` and `>`): the same
/// objects from berth and from the docker 28 CLI, against one berthd. Fields relative to now
/// ("2 seconds ago", "Up 2 seconds") are left out: a second may pass between the two calls.
#[test]
fn json_rows_match_the_docker_cli() {
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["volume", "create", "--label", "k=v", "vol1"]));
    let host_dir = tempfile::tempdir().unwrap();
    let bind = format!("{}:/host", host_dir.path().display());
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "a=1",
        "-p",
        "127.0.0.1::80",
        "-p",
        "90",
        "-v",
        "vol1:/data",
        "-v",
        &bind,
        "busybox",
        "sleep",
        "600",
    ]));
    ok(d.berth(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "busybox",
        "true",
    ]));
    let relative = ["RunningFor", "Status", "CreatedSince"];
    let objects = |client: Option<&str>, args: &[&str]| -> Vec<serde_json::Value> {
        let (text, code) = run(&d, client, args);
        assert_eq!(code, 0, "{client:?} {args:?}: {text}");
        let mut v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                let mut o: serde_json::Value = serde_json::from_str(l).unwrap();
                for k in relative {
                    o.as_object_mut().unwrap().remove(k);
                }
                o
            })
            .collect();
        v.sort_by_key(|o| o.to_string());
        v
    };
    for args in [
        &["ps", "-a", "--format", "json"][..],
        &["images", "--format", "json"],
        &["volume", "ls", "--format", "json"],
        &["network", "ls", "--format", "json"],
        &["ps", "-a", "--format", "{{json .}}"],
    ] {
        assert_eq!(
            objects(None, args),
            objects(Some(DOCKER28), args),
            "{args:?}"
        );
    }
    // Raw text, escapes included (Go's encoder writes `->` as `-\u003e`).
    let (b, _) = run(&d, None, &["ps", "--format", "json"]);
    assert!(b.contains("-\\u003e80/tcp"), "{b}");
    for args in [
        &[
            "ps",
            "-a",
            "--format",
            "{{.Mounts}}|{{.Networks}}|{{.Ports}}|{{.LocalVolumes}}|{{.Size}}|{{.CreatedAt}}",
        ][..],
        &[
            "images",
            "--format",
            "{{.Digest}}|{{.CreatedAt}}|{{.VirtualSize}}|{{.Containers}}",
        ],
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.IPv4}} {{.IPv6}} {{.CreatedAt}}",
        ],
    ] {
        assert_eq!(
            run(&d, None, args),
            run(&d, Some(DOCKER28), args),
            "{args:?}"
        );
    }
}

/// The `container` group has every container verb (`container run`, `container logs` …) as
/// the docker CLI's does, and `container inspect` looks only at containers.
#[test]
fn the_container_group_has_the_container_verbs() {
    let d = Berthd::start_with(busybox_image);
    assert_eq!(
        ok(d.berth(&["container", "run", "--name", "g1", "busybox", "echo", "hi"])),
        "hi"
    );
    assert_eq!(ok(d.berth(&["container", "logs", "g1"])), "hi");
    assert_eq!(ok(d.berth(&["container", "ls", "-aq"])).len(), 12);
    assert_eq!(
        ok(d.berth(&["container", "inspect", "-f", "{{.Name}}", "g1"])),
        "/g1"
    );
    for client in [None, Some(DOCKER28)] {
        let (text, code) = run(&d, client, &["container", "inspect", "busybox"]);
        assert_eq!(
            (text.as_str(), code),
            ("[]", 1),
            "{client:?}: an image is no container"
        );
    }
    ok(d.berth(&["container", "rm", "g1"]));
    assert_eq!(ok(d.berth(&["container", "ls", "-aq"])), "");
}

/// `run`/`create` flags that set one field each: a container created by berth and one created
/// by the docker 28 CLI with the same flags against one berthd carry the same settings;
/// `--cidfile` gets the id and refuses an existing file, in docker's words.
#[test]
fn create_flags_set_what_the_docker_cli_sets() {
    let d = Berthd::start_with(busybox_image);
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels");
    std::fs::write(&labels, "# a comment\nfrom=file\nboth=file\n").unwrap();
    let labels = labels.display().to_string();
    let flags = [
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--cpuset-cpus",
        "0",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--oom-score-adj",
        "-100",
        "--memory-swappiness",
        "10",
        "--cgroupns",
        "private",
        "--domainname",
        "example.org",
        "--annotation",
        "org.example.a=1",
        "--label-file",
        &labels,
        "--label",
        "both=flag",
        "--runtime",
        "runc",
    ];
    for (client, name) in [(None, "by-berth"), (Some(DOCKER28), "by-docker")] {
        let mut args = vec!["create", "--name", name];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["busybox", "true"]);
        let (out, code) = run(&d, client, &args);
        assert_eq!(code, 0, "{client:?}: {out}");
    }
    for field in [
        "{{json .HostConfig.Sysctls}}",
        "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}",
        "{{.HostConfig.OomScoreAdj}} {{.HostConfig.MemorySwappiness}}",
        "{{.HostConfig.CgroupnsMode}} {{.HostConfig.Runtime}}",
        "{{json .HostConfig.Annotations}}",
        "{{.Config.Domainname}} {{json .Config.Labels}}",
    ] {
        let b = ok(d.berth(&["inspect", "-f", field, "by-berth"]));
        let k = ok(d.berth(&["inspect", "-f", field, "by-docker"]));
        assert_eq!(b, k, "{field}");
        assert!(!b.is_empty() && !b.contains("<no value>"), "{field}: {b}");
    }
    assert_eq!(
        ok(d.berth(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"both\"}}",
            "by-berth"
        ])),
        "flag",
        "--label wins over --label-file"
    );
    let cid = dir.path().join("cid");
    let cid_s = cid.display().to_string();
    let id = ok(d.berth(&["create", "--cidfile", &cid_s, "busybox", "true"]));
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    // The same words and exit code as docker 28's: `create` 1, `run` 125 with its usage hint.
    for verb in ["create", "run"] {
        let args = [verb, "--cidfile", &cid_s, "busybox", "true"];
        let b = d.berth(&args);
        let k = d.docker(DOCKER28, &args);
        let text = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr).replace("docker", "berth")
        };
        assert_eq!(
            (text(&b), b.status.code()),
            (text(&k), k.status.code()),
            "{verb}"
        );
        assert!(text(&b).contains("container ID file found"), "{}", text(&b));
    }
}

/// Shell completion completes object names from berthd, not only flags: the script `berth
/// completion bash` prints, sourced into a real bash, offers the container, image, volume and
/// network names for the words that take them.
#[test]
fn completion_offers_names_from_the_daemon() {
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["create", "--name", "compl-one", "busybox", "true"]));
    ok(d.berth(&["volume", "create", "vol-compl"]));
    ok(d.berth(&["network", "create", "net-compl"]));
    let script = ok(d.berth(&["completion", "bash"]));
    assert!(script.contains("complete -o nospace"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.bash");
    std::fs::write(&file, script).unwrap();
    let complete = |words: &[&str]| -> Vec<String> {
        let mut w: Vec<String> = words.iter().map(|s| format!("'{s}'")).collect();
        w[0] = "berth".into();
        let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
        let prog = format!(
            "source {f}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9; \
             _clap_complete_berth berth '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f = file.display(),
            words = w.join(" "),
            cword = words.len() - 1,
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &prog])
            .env("BERTH_HOST", d.host())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete(&["berth", "stop", "com"]), ["compl-one"]);
    assert_eq!(
        complete(&["berth", "container", "logs", "com"]),
        ["compl-one"]
    );
    assert_eq!(complete(&["berth", "run", "busy"]), ["busybox:latest"]);
    assert_eq!(complete(&["berth", "volume", "rm", "vol-"]), ["vol-compl"]);
    assert_eq!(
        complete(&["berth", "network", "inspect", "net-c"]),
        ["net-compl"]
    );
    assert_eq!(complete(&["berth", "ps", "--al"]), ["--all"]);
}
