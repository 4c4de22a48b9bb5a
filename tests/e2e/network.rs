//! The default bridge end to end: the real `berth` CLI and berthd, containers with published
//! ports reached from the host's 127.0.0.1 and from a network namespace standing for another
//! host, ports and addresses surviving a berthd SIGKILL, bad input refused, and containers
//! started and removed (100 of them) leaving no veth, namespace, address or nftables rule
//! behind.

use std::process::Command;

use berth_e2e::{busybox_image, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the network tests create bridges and namespaces: run them as root"
    );
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn wait_curl(url: &str) -> Option<String> {
    for _ in 0..50 {
        if let Some(b) = curl(url) {
            return Some(b);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// A free TCP port on the host.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Links enslaved to `bridge`.
fn ports_of(bridge: &str) -> usize {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Waits (up to 5 s) for `bridge` to have `n` ports: a removed container's veth goes with
/// its namespace, which the kernel destroys asynchronously.
fn wait_ports(bridge: &str, n: usize) -> usize {
    for _ in 0..100 {
        if ports_of(bridge) == n {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ports_of(bridge)
}

const WEB: &str = "mkdir -p /www && hostname > /www/index.html && httpd -f -p 80 -h /www";

#[test]
fn published_ports_answer_from_loopback_and_another_namespace_and_survive_a_restart() {
    require_root();
    let mut d = Berthd::start_with(busybox_image);
    let bridge = d.bridge.clone().unwrap();
    let port = free_port();
    let id = ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "webhost",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]));
    assert_eq!(id.trim().len(), 64);
    assert_eq!(
        wait_curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("webhost\n"),
        "from the host's 127.0.0.1"
    );
    let out = ok(d.berth(&["port", "web"]));
    assert_eq!(out.trim(), format!("80/tcp -> 0.0.0.0:{port}"));
    let ps = ok(d.berth(&["ps", "--format", "{{.Names}} {{.Ports}}"]));
    assert!(ps.contains(&format!("web 0.0.0.0:{port}->80/tcp")), "{ps}");
    let ip = ok(d.berth(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "web",
    ]));
    let ip = ip.trim().to_string();
    assert!(ip.starts_with("10."), "{ip}");

    // Another "host": a namespace joined to this one by a veth, reaching the published port
    // through the host's address on that link.
    let ns = format!("bo{}", &bridge[2..]);
    let (hv, pv) = (format!("ho{}", &bridge[2..]), format!("po{}", &bridge[2..]));
    let sh = |c: &str| {
        let out = Command::new("sh").arg("-c").arg(c).output().unwrap();
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&format!("ip netns add {ns}"));
    let outside = format!("10.{}.250", 100 + std::process::id() % 100);
    sh(&format!(
        "ip link add {hv} type veth peer name {pv} && ip addr add {outside}.1/30 dev {hv} && ip link set {hv} up && \
         ip link set {pv} netns {ns} && ip -n {ns} addr add {outside}.2/30 dev {pv} && ip -n {ns} link set {pv} up && \
         ip -n {ns} route add default via {outside}.1"
    ));
    let from_outside = Command::new("ip")
        .args(["netns", "exec", &ns, "curl", "-s", "--max-time", "3"])
        .arg(format!("http://{outside}.1:{port}/"))
        .output()
        .unwrap();
    let _ = Command::new("ip").args(["link", "del", &hv]).output();
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    assert_eq!(
        String::from_utf8_lossy(&from_outside.stdout),
        "webhost\n",
        "from another namespace"
    );

    // Containers reach each other across the bridge, and the web container by address.
    // (busybox-static's wget crashes; nc speaks the request.)
    let out = ok(d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80"),
    ]));
    assert!(
        out.contains("webhost"),
        "another container reaches {ip}:80: {out:?}"
    );

    // berthd SIGKILLed and restarted: the container, its address and its port carry on.
    d.restart();
    assert_eq!(
        wait_curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("webhost\n"),
        "after a berthd SIGKILL"
    );
    let again = ok(d.berth(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "web",
    ]));
    assert_eq!(again.trim(), ip);

    // The port is taken: a second container cannot have it, and nothing of it is left.
    let before = ports_of(&bridge);
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(
        !out.status.success(),
        "a published port is refused a second time"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port is already allocated"), "{err}");
    ok(d.berth(&["rm", "-f", "clash"]));
    assert_eq!(
        wait_ports(&bridge, before),
        before,
        "the refused container left no veth"
    );

    ok(d.berth(&["rm", "-f", "web"]));
    assert!(
        curl(&format!("http://127.0.0.1:{port}/")).is_none(),
        "unpublished at rm"
    );
    assert_eq!(wait_ports(&bridge, 0), 0);
}

#[test]
fn bad_publish_values_are_refused_by_the_cli() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    for (bad, want) in [
        ("80/sctp", "invalid proto"),
        ("x:80", "invalid hostPort"),
        ("1.2.3:8080:80", "invalid IP address"),
        ("8000-8002:80-81", "invalid ranges"),
        ("0:80", "invalid hostPort"),
    ] {
        let out = d.berth(&["run", "--rm", "-p", bad, "busybox", "true"]);
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{bad}: {err}");
    }
}

#[test]
fn containers_started_and_removed_leave_nothing_behind() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    for i in 0..100 {
        let port = free_port();
        let out = ok(d.berth(&[
            "run",
            "--rm",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -c inet",
        ]));
        assert_eq!(out.trim(), "1", "run {i}: one address on eth0");
    }
    // `run --rm` removes the container after it exits; wait for the last removal.
    for _ in 0..100 {
        if ok(d.berth(&["ps", "-aq"])).trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_nothing_attached(&d, "after 100 runs");
}

/// No veth on the default bridge, no network namespace, no port rule, no address allocated.
fn assert_nothing_attached(d: &Berthd, when: &str) {
    let bridge = d.bridge.clone().unwrap();
    assert_eq!(
        wait_ports(&bridge, 0),
        0,
        "{when}: no veth left on the bridge"
    );
    let netns = d.dir.path().join("exec/netns");
    let left = std::fs::read_dir(&netns).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "{when}: no namespace left");
    let table = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth-{bridge}")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        !table.contains("dnat"),
        "{when}: no port rule left: {table}"
    );
    let ipam: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.dir.path().join(format!("data/network/{bridge}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ipam["allocated"],
        serde_json::json!({}),
        "{when}: no address left allocated"
    );
}

#[test]
fn a_start_that_fails_after_the_network_is_attached_gives_it_back() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let port = free_port();
    let publish = format!("{port}:80");
    // The program is missing: the shim fails to create the container after the network
    // was attached, and the container is left `created` with exit code 127, as dockerd leaves
    // it (checked against dockerd: Status created, ExitCode 127, StartedAt zero).
    let out = d.berth(&[
        "run", "-d", "--name", "bad", "-p", &publish, "busybox", "/nosuch",
    ]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let st = ok(d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "bad",
    ]));
    assert_eq!(st.trim(), "created 127");
    assert_nothing_attached(&d, "after the failed start");
    // Its port is free for another container, which serves on it.
    ok(d.berth(&[
        "run", "-d", "--name", "web", "-p", &publish, "busybox", "sh", "-c", WEB,
    ]));
    let url = format!("http://127.0.0.1:{port}/");
    assert!(
        wait_curl(&url).is_some(),
        "the port serves the next container"
    );
    ok(d.berth(&["rm", "-f", "web"]));
    // A second failed start of the same container leaks nothing either.
    let again = d.berth(&["start", "bad"]);
    assert!(!again.status.success(), "{again:?}");
    assert_nothing_attached(&d, "after the second failed start");
    // A start that fails while the shim creates the container (its bind mount's source is
    // gone) gives the network back too; this one has no monitor to release it later.
    let src = tempfile::tempdir().unwrap();
    let mount = format!("type=bind,source={},target=/data", src.path().display());
    ok(d.berth(&[
        "create", "--name", "gone", "-p", &publish, "--mount", &mount, "busybox", "true",
    ]));
    drop(src);
    let out = d.berth(&["start", "gone"]);
    assert!(!out.status.success(), "{out:?}");
    assert_nothing_attached(&d, "after a start whose mount source was gone");
}

#[test]
fn a_stopped_container_gives_back_its_port_and_gets_it_again_at_start() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let bridge = d.bridge.clone().unwrap();
    let port = free_port();
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "again",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]));
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(wait_curl(&url).as_deref(), Some("again\n"));
    ok(d.berth(&["stop", "-t", "1", "web"]));
    assert_eq!(wait_ports(&bridge, 0), 0, "the veth went at stop");
    assert!(curl(&url).is_none(), "the port went at stop");
    let netns = d.dir.path().join("exec/netns");
    assert_eq!(
        std::fs::read_dir(&netns).map(|r| r.count()).unwrap_or(0),
        0,
        "and the namespace"
    );
    ok(d.berth(&["start", "web"]));
    assert_eq!(
        wait_curl(&url).as_deref(),
        Some("again\n"),
        "published again at start"
    );
    ok(d.berth(&["rm", "-f", "web"]));
}

#[test]
fn container_mode_shares_another_containers_network() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "main1",
        "--hostname",
        "mainhost",
        "busybox",
        "sh",
        "-c",
        WEB,
    ]));
    let ip = ok(d.berth(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "main1",
    ]));
    // The sidecar sees the same address and reaches the main container on its loopback.
    let out = ok(d.berth(&[
        "run", "--rm", "--network", "container:main1", "busybox", "sh", "-c",
        "hostname; ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; sleep 0.3; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 80 | tail -1",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("mainhost"), "{out}");
    assert_eq!(
        lines.get(1).copied(),
        Some(format!("inet {}", ip.trim()).as_str()),
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some("mainhost"), "{out}");
    for (args, want) in [
        (
            vec!["-p", "81:81"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--hostname", "x"],
            "conflicting options: hostname and the network mode",
        ),
    ] {
        let mut a = vec!["run", "--rm", "--network", "container:main1"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let out = d.berth(&a);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:nosuch",
        "busybox",
        "true",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such container: nosuch"));
    ok(d.berth(&["stop", "-t", "1", "main1"]));
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:main1",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot join network of a non running container"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(d.berth(&["rm", "-f", "main1"]));
}

/// `-P` publishes the ports the image exposes (`EXPOSE`), as with dockerd: the image's
/// exposed ports are part of the container's config, and each gets a host port that answers.
#[test]
fn publish_all_publishes_the_ports_the_image_exposes() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nEXPOSE 80\nRUN mkdir /www && echo exposed > /www/index.html\n",
    )
    .unwrap();
    ok(d.berth(&[
        "build",
        "-q",
        "-t",
        "exposing",
        &ctx.path().display().to_string(),
    ]));
    ok(d.berth(&[
        "run", "-d", "--name", "pall", "-P", "exposing", "httpd", "-f", "-p", "80", "-h", "/www",
    ]));
    let exposed = ok(d.berth(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "pall"]));
    assert!(exposed.contains("80/tcp"), "{exposed}");
    let out = ok(d.berth(&["port", "pall", "80/tcp"]));
    let host_port = out
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no host port for 80/tcp: {out}"));
    assert_eq!(
        wait_curl(&format!("http://127.0.0.1:{host_port}/")).as_deref(),
        Some("exposed\n")
    );
    ok(d.berth(&["rm", "-f", "pall"]));
}
