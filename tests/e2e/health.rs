//! Health checks end to end, side by side with dockerd: the same scenario through the docker
//! CLIs against berthd and against a private dockerd, and through the `berth` CLI. A container
//! with `--health-*` flags (or an image's `HEALTHCHECK`) is `starting`, becomes `unhealthy`
//! after `retries` failures past its start period, `healthy` when the probe passes, and
//! `unhealthy` again when it stops; `State.Health` keeps the last five results; `ps` shows the
//! status and filters on it; `events` reports `health_status: <status>`; a probe that outlives
//! its timeout is killed, so probes never pile up.

use std::process::Output;
use std::time::{Duration, Instant};

use berth_e2e::peers::Dockerd;
use berth_e2e::{busybox_image, ok, Berthd};
use serde_json::Value;

type Cli<'a> = &'a dyn Fn(&[&str]) -> Output;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn health(cli: Cli<'_>, name: &str) -> Value {
    let o = cli(&["inspect", "-f", "{{json .State.Health}}", name]);
    assert!(o.status.success(), "inspect {name}: {o:?}");
    serde_json::from_str(&text(&o)).unwrap()
}

/// Polls the container's health until its status is `want` (at most 20 s).
fn wait_status(cli: Cli<'_>, name: &str, want: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(cli, name);
        if h["Status"] == want {
            return h;
        }
        assert!(Instant::now() < end, "{name} never became {want}: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(cli: Cli<'_>, filter: &str) -> Vec<String> {
    let o = cli(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
    assert!(o.status.success(), "ps --filter {filter}: {o:?}");
    text(&o).lines().map(str::to_string).collect()
}

/// What one run of the scenario shows; equal between dockerd and berthd.
#[derive(Debug, PartialEq)]
struct Seen {
    first: Value,
    unhealthy_log_codes: bool,
    ps_unhealthy: bool,
    filters_when_unhealthy: (Vec<String>, Vec<String>),
    healthy_streak: Value,
    ps_healthy: bool,
    filters_when_healthy: (Vec<String>, Vec<String>, Vec<String>),
    log_len: usize,
    after_stop: Value,
    restarted: (Value, Value),
    events: Vec<String>,
    timeout_output: Value,
    timeout_code: Value,
    probes_never_pile_up: bool,
    image_check: (Value, Value),
    disabled: (Value, Value),
}

fn scenario(cli: Cli<'_>, image: &str) -> Seen {
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "-d", "--network", "none"];
        a.extend_from_slice(args);
        let o = cli(&a);
        assert!(o.status.success(), "run {args:?}: {o:?}");
    };
    run(&[
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "1500ms",
        "busybox",
        "sleep",
        "300",
    ]);
    let first = health(cli, "hc");
    let h = wait_status(cli, "hc", "unhealthy");
    let codes: Vec<i64> = h["Log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ExitCode"].as_i64().unwrap())
        .collect();
    let status = |name: &str| {
        text(&cli(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Status}}",
        ]))
    };
    let ps_unhealthy = status("hc").ends_with("(unhealthy)");
    let filters_when_unhealthy = (names(cli, "health=unhealthy"), names(cli, "health=healthy"));
    ok(cli(&["exec", "hc", "touch", "/tmp/ok"]));
    let h = wait_status(cli, "hc", "healthy");
    let healthy_streak = h["FailingStreak"].clone();
    let ps_healthy = status("hc").ends_with("(healthy)");
    run(&["--name", "plain", "busybox", "sleep", "300"]);
    let filters_when_healthy = (
        names(cli, "health=healthy"),
        names(cli, "health=unhealthy"),
        names(cli, "health=none"),
    );
    // More probes than the log keeps.
    std::thread::sleep(Duration::from_millis(2500));
    let log_len = health(cli, "hc")["Log"].as_array().unwrap().len();
    ok(cli(&["stop", "-t", "1", "hc"]));
    let after = health(cli, "hc");
    // dockerd records a probe that was running when the stop's kill came and failed with it
    // (its monitor stops only once the exit is handled): seen as FailingStreak 1 in some
    // runs and 0 in others. berth records no probe once a stop begins. Both keep the streak
    // within one of what it was (0: the probe was passing).
    let streak = after["FailingStreak"].as_u64();
    let after_stop = serde_json::json!([after["Status"], streak.is_some_and(|s| s <= 1)]);
    ok(cli(&["start", "hc"]));
    let h = health(cli, "hc");
    let restarted = (h["Status"].clone(), h["FailingStreak"].clone());
    // The probe passes again in the new run (its file is still there).
    wait_status(cli, "hc", "healthy");
    // `--until` ends the stream (one second ahead: the current second is complete then).
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = cli(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ev.status.success(), "events: {ev:?}");
    let events: Vec<String> = text(&ev).lines().map(str::to_string).collect();

    // A probe that outlives its timeout is killed: never more than one at a time.
    run(&[
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    let h = wait_status(cli, "slow", "unhealthy");
    // Sampled over ten probe periods: a probe left running past its timeout would add one
    // `sleep 30` per period.
    let most_alive = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(250));
            let ps = text(&cli(&["exec", "slow", "ps", "-o", "args"]));
            ps.lines().filter(|l| l.trim() == "sleep 30").count()
        })
        .max()
        .unwrap();
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();

    // The image's HEALTHCHECK, and --no-healthcheck.
    run(&["--name", "img", image]);
    let img = wait_status(cli, "img", "healthy");
    let test_of = |name: &str| {
        let o = cli(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", name]);
        serde_json::from_str::<Value>(&text(&o)).unwrap()
    };
    let image_check = (img["Status"].clone(), test_of("img"));
    run(&["--name", "off", "--no-healthcheck", image]);
    std::thread::sleep(Duration::from_millis(800));
    let disabled = (health(cli, "off"), test_of("off"));
    for c in ["hc", "plain", "slow", "img", "off"] {
        let _ = cli(&["rm", "-f", c]);
    }
    Seen {
        first,
        unhealthy_log_codes: !codes.is_empty() && codes.len() <= 5 && codes.iter().all(|c| *c == 1),
        ps_unhealthy,
        filters_when_unhealthy,
        healthy_streak,
        ps_healthy,
        filters_when_healthy,
        log_len,
        after_stop,
        restarted,
        events,
        timeout_output: last["Output"].clone(),
        timeout_code: last["ExitCode"].clone(),
        probes_never_pile_up: most_alive <= 1,
        image_check,
        disabled,
    }
}

const DOCKERFILE: &str =
    "FROM busybox\nHEALTHCHECK --interval=300ms CMD [\"true\"]\nCMD [\"sleep\", \"300\"]\n";

#[test]
fn health_checks_behave_as_on_dockerd() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let ctx_arg = ctx.path().display().to_string();
    let d = Berthd::start_with(busybox_image);
    let dockerd = Dockerd::start();
    let saved = ctx.path().join("busybox.tar");
    ok(d.berth(&["save", "-o", &saved.display().to_string(), "busybox:latest"]));
    std::fs::rename(&saved, "/tmp/berth-health-busybox.tar").unwrap();
    let load = dockerd
        .docker()
        .args(["load", "-i", "/tmp/berth-health-busybox.tar"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file("/tmp/berth-health-busybox.tar");
    assert!(load.status.success(), "{load:?}");
    let classic = |c: &mut std::process::Command| {
        c.env("DOCKER_BUILDKIT", "0");
    };
    let mut build = dockerd.docker();
    classic(&mut build);
    let b = build
        .args(["build", "-q", "-t", "checked", &ctx_arg])
        .output()
        .unwrap();
    assert!(b.status.success(), "docker build: {b:?}");
    ok(d.berth(&["build", "-q", "-t", "checked", &ctx_arg]));

    let reference = scenario(
        &|a: &[&str]| dockerd.docker().args(a).output().unwrap(),
        "checked",
    );
    // What dockerd itself showed, so that a change on its side is seen here too.
    assert_eq!(reference.first["Status"], "starting");
    assert_eq!(
        reference.events,
        [
            "health_status: unhealthy",
            "health_status: healthy",
            "health_status: healthy"
        ]
    );
    assert_eq!(
        reference.timeout_output,
        "Health check exceeded timeout (300ms)"
    );
    assert!(reference.probes_never_pile_up, "{reference:?}");
    assert_eq!(reference.log_len, 5);

    for client in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        let seen = scenario(&|a: &[&str]| d.docker(client, a), "checked");
        assert_eq!(seen, reference, "{client} against berthd");
    }
    let seen = scenario(&|a: &[&str]| d.berth(a), "checked");
    assert_eq!(seen, reference, "berth");
}

/// `--health-start-interval` (API 1.44, docker 28): during the start period the probe runs at
/// that pace, so a check with a long interval still turns healthy at once.
#[test]
fn start_interval_paces_the_start_period() {
    let d = Berthd::start_with(busybox_image);
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "si",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "--health-start-period",
        "1m",
        "--health-start-interval",
        "200ms",
        "busybox",
        "sleep",
        "300",
    ];
    for (i, cli) in ["/usr/local/bin/docker", "berth"].into_iter().enumerate() {
        let run = |a: &[&str]| {
            if cli == "berth" {
                d.berth(a)
            } else {
                d.docker(cli, a)
            }
        };
        let o = run(&args);
        assert!(o.status.success(), "{cli}: {o:?}");
        let h = wait_status(&run, "si", "healthy");
        assert_eq!(h["FailingStreak"], 0, "{cli}");
        let o = run(&["inspect", "-f", "{{json .Config.Healthcheck}}", "si"]);
        let c: Value = serde_json::from_str(&text(&o)).unwrap();
        assert_eq!(c["StartInterval"], 200_000_000, "{cli} ({i})");
        assert_eq!(c["Interval"], 3_600_000_000_000u64, "{cli} ({i})");
        ok(run(&["rm", "-f", "si"]));
    }
    // Bad values are refused with the docker CLI's and dockerd's words.
    let o = d.berth(&["run", "--health-interval", "soon", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid duration"),
        "{o:?}"
    );
    let o = d.berth(&[
        "run",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--no-healthcheck conflicts"),
        "{o:?}"
    );
    let o = d.docker(
        "/usr/local/bin/docker",
        &["run", "--health-interval", "500us", "busybox", "true"],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{o:?}"
    );
}

/// A berthd restart keeps what the probes have shown: a running container stays `healthy`
/// with its log (it does not start over as `starting`), a stopped one stays `unhealthy`, and
/// the probes go on.
#[test]
fn health_outlives_a_berthd_restart() {
    let mut d = Berthd::start_with(busybox_image);
    let run = [
        "run",
        "-d",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "600",
    ];
    for name in ["hc-live", "hc-stopped"] {
        let mut a = run.to_vec();
        a.insert(2, name);
        a.insert(2, "--name");
        ok(d.berth(&a));
    }
    let berth = |d: &Berthd, a: &[&str]| d.berth(a);
    let status = |d: &Berthd, n: &str| -> Value {
        let o = berth(d, &["inspect", "-f", "{{json .State.Health}}", n]);
        serde_json::from_str(&text(&o)).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["hc-live", "hc-stopped"]
        .iter()
        .any(|n| status(&d, n)["Status"] != "healthy")
    {
        assert!(Instant::now() < deadline, "never healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(d.berth(&["stop", "-t", "1", "hc-stopped"]));
    let before = status(&d, "hc-live");
    assert_eq!(status(&d, "hc-stopped")["Status"], "unhealthy");
    d.kill9();
    d.restart();
    let after = status(&d, "hc-live");
    assert_eq!(after["Status"], "healthy", "{after}");
    let logs = |h: &Value| h["Log"].as_array().map_or(0, Vec::len);
    assert!(logs(&after) >= logs(&before).min(1), "{before} / {after}");
    assert_eq!(status(&d, "hc-stopped")["Status"], "unhealthy");
    // The probes go on: a new result within a few intervals.
    let last = |h: &Value| {
        h["Log"]
            .as_array()
            .and_then(|l| l.last())
            .map(|r| r["End"].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while last(&status(&d, "hc-live")) == last(&after) {
        assert!(Instant::now() < deadline, "no probe after the restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(d.berth(&["rm", "-f", "hc-live", "hc-stopped"]));
}
