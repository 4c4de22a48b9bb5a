//! User-defined networks end to end, with the real `berth` CLI, berthd and real containers:
//! names and aliases resolved by the embedded DNS on the same network and not across
//! networks, other names forwarded to an upstream DNS server the test runs on loopback,
//! isolation between networks, connect and disconnect of a running container, a berthd SIGKILL
//! and restart, `--ip` and `--mac-address`, bad input refused with the host left as it was,
//! and the docker CLIs' network commands through berthd.

use std::net::Ipv4Addr;
use std::process::Command;

use berth_e2e::peers::UpstreamDns;
use berth_e2e::{busybox_image, ok, Berthd};

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the network tests create bridges and namespaces: run them as root"
    );
}

fn daemon_with_dns(up: &UpstreamDns) -> Berthd {
    Berthd::start_with_config(busybox_image, &format!(r#"{{"dns": ["{}"]}}"#, up.addr))
}

/// busybox httpd serving `body` on port 80.
fn web(d: &Berthd, name: &str, args: &[&str], body: &str) {
    let script =
        format!("mkdir /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    ok(d.berth(&a));
}

/// What `GET /` on `host` answers from a new container with `args`, if anything (2 s).
fn fetch(d: &Berthd, args: &[&str], host: &str) -> Option<String> {
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 && exit 0; sleep 0.2; done; exit 1"
    );
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let out = d.berth(&a);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The same, from inside a running container (retried for up to 2 s: a veth of an earlier
/// start may still be on its way out, with the bridge's forwarding entry for the address).
fn fetch_in(d: &Berthd, container: &str, host: &str) -> Option<String> {
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {host} 80 && exit 0; sleep 0.2; done; exit 1"
    );
    let out = d.berth(&["exec", container, "sh", "-c", &script]);
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The same, once: for what must not answer.
fn fetch_once(d: &Berthd, container: &str, host: &str) -> Option<String> {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80");
    let out = d.berth(&["exec", container, "sh", "-c", &script]);
    (out.status.success() && !out.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The addresses busybox's nslookup prints for `name` (the server's own line left out).
fn resolve(d: &Berthd, args: &[&str], name: &str) -> Vec<String> {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "nslookup", name]);
    addresses(&d.berth(&a))
}

fn addresses(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("Address"))
        .filter_map(|l| l.split_whitespace().last())
        // The server's own line is `ip:53`, a socket address; answers are plain addresses.
        .filter(|a| a.parse::<std::net::SocketAddr>().is_err())
        .map(str::to_string)
        .collect()
}

fn ip_on(d: &Berthd, container: &str, network: &str) -> String {
    ok(d.berth(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ]))
    .trim()
    .to_string()
}

fn bridge_of(d: &Berthd, network: &str) -> String {
    let id = ok(d.berth(&["network", "inspect", "-f", "{{.Id}}", network]));
    format!("br-{}", &id.trim()[..12])
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn names_and_aliases_resolve_on_their_network_only_and_networks_are_isolated() {
    require_root();
    let up = UpstreamDns::start(&[("upstream.test", Ipv4Addr::new(198, 18, 0, 7))]);
    let own = UpstreamDns::start(&[("upstream.test", Ipv4Addr::new(198, 18, 0, 8))]);
    let d = daemon_with_dns(&up);
    ok(d.berth(&["network", "create", "front"]));
    ok(d.berth(&["network", "create", "back"]));
    web(
        &d,
        "site",
        &["--network", "front", "--network-alias", "www"],
        "hello-front",
    );
    let site_ip = ip_on(&d, "site", "front");
    assert!(!site_ip.is_empty());

    // By name, by alias and by short id, from a container on the same network.
    let short = ok(d.berth(&["inspect", "-f", "{{.Id}}", "site"]))[..12].to_string();
    for host in ["site", "www", short.as_str()] {
        let body = fetch(&d, &["--network", "front"], host)
            .unwrap_or_else(|| panic!("{host} is reachable on the front network"));
        assert!(body.contains("hello-front"), "{body}");
    }
    assert_eq!(
        resolve(&d, &["--network", "front"], "www"),
        vec![site_ip.clone()]
    );
    let conf = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]));
    let gw = ok(d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "front",
    ]));
    assert!(
        conf.contains(&format!("nameserver {}", gw.trim())),
        "{conf}"
    );

    // Other names go to the upstream: berthd's `dns`, or the container's own `--dns`.
    assert_eq!(
        resolve(&d, &["--network", "front"], "upstream.test"),
        vec!["198.18.0.7"]
    );
    assert!(up.was_asked("upstream.test"));
    let own_dns = own.addr.to_string();
    assert_eq!(
        resolve(
            &d,
            &["--network", "front", "--dns", &own_dns],
            "upstream.test"
        ),
        vec!["198.18.0.8"]
    );
    assert!(own.was_asked("upstream.test"));

    // Not across networks: no name, and no packets to the address either.
    assert!(resolve(&d, &["--network", "back"], "site").is_empty());
    assert!(
        up.was_asked("site"),
        "a name the network does not know is forwarded (and the upstream says NXDOMAIN)"
    );
    assert!(fetch(&d, &["--network", "back"], &site_ip).is_none());
    // A container on the back network does reach the front network's gateway (an address
    // of the host, routed by the host): it is the firewall, not a missing route, that keeps
    // it from the front network's containers.
    let front_gw = gw.trim().to_string();
    ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        &front_gw,
    ]));
    let table = format!("berth-{}", d.bridge.as_deref().unwrap());
    let rules = String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        rules.contains(&bridge_of(&d, "front")) && rules.contains("@bridges drop"),
        "{rules}"
    );
    // The default bridge has no embedded DNS, as with docker.
    assert!(resolve(&d, &[], "site").is_empty());

    // The generated /etc files: --hostname, --add-host, --dns-search, --dns-option.
    let files = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--hostname",
        "h1",
        "--add-host",
        "db.local:10.9.8.7",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname /etc/hosts /etc/resolv.conf; hostname",
    ]));
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines[0], "h1", "{files}");
    assert!(files.contains("10.9.8.7\tdb.local"), "{files}");
    assert!(
        files
            .lines()
            .any(|l| l.ends_with("\th1") && !l.starts_with("127.")),
        "own address: {files}"
    );
    assert!(files.contains(&format!("nameserver {front_gw}")), "{files}");
    assert!(
        files.contains("search corp.example") && files.contains("options ndots:2"),
        "{files}"
    );
    assert_eq!(lines.last().copied(), Some("h1"));
}

#[test]
fn connect_and_disconnect_a_running_container() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let d = daemon_with_dns(&up);
    ok(d.berth(&["network", "create", "n1"]));
    ok(d.berth(&["network", "create", "n2"]));
    ok(d.berth(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "n1",
        "busybox",
        "sleep",
        "600",
    ]));
    web(&d, "server", &["--network", "n2"], "hello-n2");
    assert!(
        fetch_once(&d, "client", "server").is_none(),
        "n1 does not see n2"
    );

    ok(d.berth(&["network", "connect", "--alias", "cli2", "n2", "client"]));
    let body = fetch_in(&d, "client", "server").expect("connected: the server answers by name");
    assert!(body.contains("hello-n2"));
    let ifs = ok(d.berth(&["exec", "client", "ls", "/sys/class/net"]));
    assert!(ifs.contains("eth0") && ifs.contains("eth1"), "{ifs}");
    // The server resolves the client's alias on n2, to its n2 address.
    let n2_ip = ip_on(&d, "client", "n2");
    let out = d.berth(&["exec", "server", "nslookup", "cli2"]);
    assert_eq!(addresses(&out), vec![n2_ip.clone()]);
    let members = ok(d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "n2",
    ]));
    assert!(
        members.contains("client") && members.contains("server"),
        "{members}"
    );
    assert!(
        d.berth(&["network", "connect", "n2", "client"])
            .status
            .code()
            == Some(1),
        "connecting twice is refused"
    );

    ok(d.berth(&["network", "disconnect", "n2", "client"]));
    assert!(
        fetch_once(&d, "client", "server").is_none(),
        "disconnected again"
    );
    let ifs = ok(d.berth(&["exec", "client", "ls", "/sys/class/net"]));
    assert!(ifs.contains("eth0") && !ifs.contains("eth1"), "{ifs}");
    assert!(!ip_on(&d, "client", "n1").is_empty());
    let nets = ok(d.berth(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "client",
    ]));
    assert_eq!(nets.trim(), "n1");

    // A stopped container connected to a network gets it at its next start.
    ok(d.berth(&["stop", "-t", "1", "client"]));
    ok(d.berth(&["network", "connect", "n2", "client"]));
    ok(d.berth(&["start", "client"]));
    assert!(
        fetch_in(&d, "client", "server").is_some(),
        "on n2 after the start"
    );

    // A network in use cannot go; once empty it can, and its bridge goes with it.
    let n2_bridge = bridge_of(&d, "n2");
    let out = d.berth(&["network", "rm", "n2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has active endpoints"));
    ok(d.berth(&["rm", "-f", "server", "client"]));
    ok(d.berth(&["network", "rm", "n2"]));
    assert!(!link_exists(&n2_bridge));
    let gone = ok(d.berth(&["network", "prune", "-f"]));
    assert!(gone.contains("n1"), "{gone}");
    let ls = ok(d.berth(&["network", "ls", "--format", "{{.Name}}"]));
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        vec!["bridge", "host", "none"]
    );
}

#[test]
fn user_networks_survive_a_berthd_sigkill_with_static_addresses() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let mut d = daemon_with_dns(&up);
    // A subnet of this test's own: from the daemon's pool's neighbourhood would collide with
    // nothing either, but a fixed one lets the test name addresses.
    let pid = std::process::id();
    let subnet = format!("10.{}.250.0/24", 200 + pid % 50);
    let ip = format!("10.{}.250.77", 200 + pid % 50);
    ok(d.berth(&[
        "network", "create", "--subnet", &subnet, "--label", "team=a", "stable",
    ]));
    web(
        &d,
        "pinned",
        &[
            "--network",
            "stable",
            "--ip",
            &ip,
            "--mac-address",
            "02:42:de:ad:be:ef",
        ],
        "pinned-page",
    );
    assert_eq!(ip_on(&d, "pinned", "stable"), ip);
    let mac = ok(d.berth(&["exec", "pinned", "cat", "/sys/class/net/eth0/address"]));
    assert_eq!(mac.trim(), "02:42:de:ad:be:ef");
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "stable",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert_ne!(out.status.code(), Some(0), "an address in use is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{out:?}"
    );

    d.restart();
    assert!(
        fetch(&d, &["--network", "stable"], "pinned").is_some_and(|b| b.contains("pinned-page")),
        "the name still resolves and the container still answers after a restart"
    );
    let labels = ok(d.berth(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}}",
    ]));
    assert_eq!(labels.trim(), "stable");
    ok(d.berth(&["rm", "-f", "pinned"]));
    // The address is free again.
    ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "stable",
        "--ip",
        &ip,
        "busybox",
        "true",
    ]));
}

/// Links enslaved to `bridge`, waiting (up to 5 s) for them to be `n`: a removed
/// container's veths go with its namespace, which the kernel destroys asynchronously.
fn wait_ports(bridge: &str, n: usize) -> usize {
    let mut count = usize::MAX;
    for _ in 0..50 {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", bridge])
            .output()
            .unwrap();
        count = String::from_utf8_lossy(&out.stdout).lines().count();
        if count == n {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    count
}

#[test]
fn containers_on_two_networks_leave_nothing_behind() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let d = daemon_with_dns(&up);
    ok(d.berth(&["network", "create", "left"]));
    ok(d.berth(&["network", "create", "right"]));
    let (lb, rb) = (bridge_of(&d, "left"), bridge_of(&d, "right"));
    for i in 0..25 {
        let name = format!("c{i}");
        ok(d.berth(&[
            "create",
            "--name",
            &name,
            "--network",
            "left",
            "--network-alias",
            "twin",
            "busybox",
            "sleep",
            "600",
        ]));
        ok(d.berth(&["network", "connect", "right", &name]));
        ok(d.berth(&["start", &name]));
        if i % 5 == 0 {
            // A live disconnect and connect on the way.
            ok(d.berth(&["network", "disconnect", "right", &name]));
            ok(d.berth(&["network", "connect", "right", &name]));
        }
    }
    assert_eq!(wait_ports(&lb, 25), 25);
    assert_eq!(wait_ports(&rb, 25), 25);
    assert_eq!(resolve(&d, &["--network", "left"], "twin").len(), 25);
    let ids = ok(d.berth(&["ps", "-aq"]));
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().copied());
    ok(d.berth(&args));
    assert_eq!(wait_ports(&lb, 0), 0, "no veth left on {lb}");
    assert_eq!(wait_ports(&rb, 0), 0, "no veth left on {rb}");
    assert!(
        resolve(&d, &["--network", "left"], "twin").is_empty(),
        "no name left"
    );
    let netns = d.dir.path().join("exec/netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(left.is_empty(), "no namespace left: {left:?}");
    for b in [&lb, &rb] {
        let alloc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.dir.path().join(format!("data/network/{b}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(alloc["allocated"], serde_json::json!({}), "{b}: {alloc}");
    }
    let table = format!("berth-{}", d.bridge.as_deref().unwrap());
    let rules = ok(Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .unwrap());
    assert!(!rules.contains("chain c-"), "no port chain left: {rules}");
    ok(d.berth(&["network", "rm", "left", "right"]));
    assert!(!link_exists(&lb) && !link_exists(&rb));
}

#[test]
fn an_ipv6_network_is_dual_stack() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let d = daemon_with_dns(&up);
    let pid = std::process::id();
    let subnet6 = format!("fd42:{:x}:{:x}::/64", pid & 0xffff, 0x6e);
    let pinned = format!("fd42:{:x}:{:x}::99", pid & 0xffff, 0x6e);
    ok(d.berth(&["network", "create", "--ipv6", "--subnet", &subnet6, "dual"]));
    let cfg = ok(d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "dual",
    ]));
    assert!(cfg.starts_with("true ") && cfg.contains(&subnet6), "{cfg}");
    web(
        &d,
        "six",
        &["--network", "dual", "--ip6", &pinned],
        "hello-six",
    );
    let got = ok(d.berth(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"dual\").GlobalIPv6Address}}",
        "six",
    ]));
    assert_eq!(got.trim(), pinned);
    // By name over IPv6 (the embedded DNS answers AAAA), and by address.
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "nslookup",
        "-type=AAAA",
        "six",
    ]);
    assert_eq!(addresses(&out), vec![pinned.clone()], "{out:?}");
    ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "ping",
        "-6",
        "-c1",
        "-W2",
        "six",
    ]));
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {pinned} 80");
    let body = ok(d.berth(&[
        "run",
        "--rm",
        "--network",
        "dual",
        "busybox",
        "sh",
        "-c",
        &script,
    ]));
    assert!(body.contains("hello-six"), "{body}");
    // The v6 rules live in berth's ip6 table while the network exists.
    let table = format!("berth-{}", d.bridge.as_deref().unwrap());
    let rules = ok(Command::new("nft")
        .args(["list", "table", "ip6", &table])
        .output()
        .unwrap());
    assert!(rules.contains(&subnet6), "{rules}");
    // Bad input.
    let out = d.berth(&["network", "create", "--ipv6", "v6nosubnet"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs an IPv6 --subnet"),
        "{out:?}"
    );
    let out = d.berth(&["network", "create", "--subnet", "fd43::/64", "nov6flag"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs --ipv6"),
        "{out:?}"
    );
    let out = d.berth(&["network", "create", "--ipv6", "--subnet", &subnet6, "again"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("overlaps"),
        "{out:?}"
    );
    let out = d.berth(&["run", "--rm", "--ip6", &pinned, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    ok(d.berth(&["rm", "-f", "six"]));
    ok(d.berth(&["network", "rm", "dual"]));
    let out = Command::new("nft")
        .args(["list", "table", "ip6", &table])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the ip6 table goes with the last IPv6 network"
    );
}

/// The host's own links and addresses, the addresses this test's subnets (10.250.0.0/16) hold,
/// and berth's nftables table: to compare before and after bad input. (Other tests' bridges
/// come and go meanwhile; they are left out.)
fn host_network(table: &str) -> (String, String, String) {
    let run = |args: &[&str]| {
        String::from_utf8_lossy(
            &Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap()
                .stdout,
        )
        .to_string()
    };
    let berths = |l: &str| l.contains(" bt") || l.contains(" br-") || l.contains(" vb");
    let links: Vec<String> = run(&["ip", "-o", "link"])
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .filter(|l| !berths(l))
        .collect();
    let addrs: Vec<String> = run(&["ip", "-o", "-4", "addr"])
        .lines()
        .filter(|l| !berths(l) || l.contains("inet 10.250."))
        .map(str::to_string)
        .collect();
    (
        links.join("\n"),
        addrs.join("\n"),
        run(&["nft", "list", "table", "ip", table]),
    )
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            v.extend(files_under(&e.path()));
        } else {
            v.push(e.path().display().to_string());
        }
    }
    v.sort();
    v
}

#[test]
fn bad_network_input_is_refused_and_leaves_the_host_as_it_was() {
    require_root();
    let d = Berthd::start_with(busybox_image);
    ok(d.berth(&["network", "create", "--subnet", "10.250.1.0/24", "taken"]));
    let table = format!("berth-{}", d.bridge.as_deref().unwrap());
    let before = host_network(&table);
    let state = d.dir.path().join("data/network");
    let files_before = files_under(&state);
    let refused = |args: &[&str], words: &str| d.refused(args, words);
    refused(
        &[
            "network",
            "create",
            "--subnet",
            "10.250.1.128/25",
            "overlap",
        ],
        "overlaps",
    );
    refused(
        &["network", "create", "--subnet", "10.250.0.0/16", "covers"],
        "overlaps",
    );
    refused(
        &["network", "create", "--subnet", "10.250.2.0/33", "bad"],
        "invalid CIDR",
    );
    refused(
        &["network", "create", "--subnet", "nonsense", "bad"],
        "invalid CIDR",
    );
    refused(
        &["network", "create", "--subnet", "10.250.3.7/24", "bad"],
        "host bits",
    );
    refused(
        &[
            "network",
            "create",
            "--subnet",
            "10.250.4.0/24",
            "--gateway",
            "10.9.9.9",
            "bad",
        ],
        "gateway",
    );
    refused(&["network", "create", "taken"], "already exists");
    refused(
        &["network", "create", "-d", "overlay", "bad"],
        "plugin \"overlay\" not found",
    );
    refused(&["network", "create", "bad/name"], "invalid network name");
    refused(&["network", "rm", "bridge"], "pre-defined network");
    refused(&["network", "rm", "nosuchnet"], "not found");
    refused(
        &["run", "--rm", "--network", "nosuchnet", "busybox", "true"],
        "network nosuchnet not found",
    );
    refused(
        &[
            "run",
            "--rm",
            "--network",
            "taken",
            "--ip",
            "10.9.9.9",
            "busybox",
            "true",
        ],
        "not a usable host address",
    );
    refused(
        &["run", "--rm", "--ip", "10.9.9.9", "busybox", "true"],
        "user defined networks only",
    );
    refused(
        &["run", "--rm", "--network-alias", "x", "busybox", "true"],
        "user defined networks",
    );
    refused(
        &[
            "run",
            "--rm",
            "--network",
            "taken",
            "--mac-address",
            "zz:zz",
            "busybox",
            "true",
        ],
        "invalid MAC",
    );
    refused(
        &["network", "connect", "nosuchnet", "nosuchcontainer"],
        "No such container",
    );
    assert_eq!(
        host_network(&table),
        before,
        "the host's links, addresses and berth's rules are as they were"
    );
    assert_eq!(
        files_under(&state),
        files_before,
        "no record or allocation was left by a refusal"
    );
    let ls = ok(d.berth(&["network", "ls", "-q"]));
    assert_eq!(ls.lines().count(), 4, "bridge, host, none and taken: {ls}");
}

#[test]
fn docker_clis_manage_networks_through_berthd() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let d = daemon_with_dns(&up);
    for (i, client) in ["/usr/bin/docker", "/usr/local/bin/docker"]
        .iter()
        .enumerate()
    {
        let net = format!("dnet{i}");
        let id = ok(d.docker(client, &["network", "create", "--label", "by=docker", &net]));
        assert_eq!(id.trim().len(), 64, "{id}");
        let ls = ok(d.docker(
            client,
            &[
                "network",
                "ls",
                "--filter",
                "label=by=docker",
                "--format",
                "{{.Name}} {{.Driver}}",
            ],
        ));
        assert!(ls.contains(&format!("{net} bridge")), "{ls}");
        let srv = format!("dsrv{i}");
        ok(d.docker(
            client,
            &[
                "run",
                "-d",
                "--name",
                &srv,
                "--network",
                &net,
                "--network-alias",
                "svc",
                "busybox",
                "sh",
                "-c",
                "mkdir /www && echo via-docker > /www/index.html && exec httpd -f -p 80 -h /www",
            ],
        ));
        let out = d.docker(client, &[
            "run", "--rm", "--network", &net, "busybox", "sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 svc 80 && exit 0; sleep 0.2; done; exit 1",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("via-docker"),
            "{client}: {out:?}"
        );
        let cli = format!("dcli{i}");
        ok(d.docker(
            client,
            &["run", "-d", "--name", &cli, "busybox", "sleep", "600"],
        ));
        ok(d.docker(
            client,
            &["network", "connect", "--alias", "peer", &net, &cli],
        ));
        let insp = ok(d.docker(
            client,
            &["network", "inspect", "-f", "{{len .Containers}}", &net],
        ));
        assert_eq!(insp.trim(), "2", "{client}");
        let out = d.docker(
            client,
            &[
                "exec",
                &cli,
                "sh",
                "-c",
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 svc 80",
            ],
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("via-docker"),
            "{client}: {out:?}"
        );
        ok(d.docker(client, &["network", "disconnect", &net, &cli]));
        let out = d.docker(client, &["network", "rm", &net]);
        assert!(!out.status.success(), "in use: {out:?}");
        ok(d.docker(client, &["rm", "-f", &srv, &cli]));
        ok(d.docker(client, &["network", "rm", &net]));
        let out = d.docker(client, &["network", "inspect", &net]);
        assert!(!out.status.success());
    }
}

#[test]
fn compose_v1_runs_a_project_on_its_own_network() {
    require_root();
    let up = UpstreamDns::start(&[]);
    let d = daemon_with_dns(&up);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        r#"version: "3.8"
services:
  web:
    image: busybox
    command: sh -c 'mkdir /w && echo from-compose > /w/index.html && exec httpd -f -p 80 -h /w'
    networks:
      default:
        aliases: [site]
  client:
    image: busybox
    command: sleep 600
    depends_on: [web]
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        Command::new("docker-compose")
            .current_dir(dir.path())
            .env("DOCKER_HOST", d.host())
            .args(["-p", "berthcmp"])
            .args(args)
            .output()
            .expect("docker-compose (Debian's docker-compose package) is needed")
    };
    ok(compose(&["up", "-d"]));
    let ps = ok(compose(&["ps", "-q"]));
    assert_eq!(
        ps.lines().count(),
        2,
        "two containers, listed once each: {ps}"
    );
    let names = ok(d.berth(&["ps", "--format", "{{.Names}}"]));
    assert!(
        names.contains("berthcmp_web_1") && names.contains("berthcmp_client_1"),
        "{names}"
    );
    for host in ["web", "site"] {
        let script = format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {host} 80 && exit 0; sleep 0.2; done; exit 1"
        );
        let out = ok(compose(&["exec", "-T", "client", "sh", "-c", &script]));
        assert!(out.contains("from-compose"), "{host}: {out}");
    }
    let nets = ok(d.berth(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(nets.contains("berthcmp_default"), "{nets}");
    ok(compose(&["down", "-t", "1"]));
    let nets = ok(d.berth(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(!nets.contains("berthcmp_default"), "{nets}");
    assert!(ok(d.berth(&["ps", "-aq"])).trim().is_empty());
}
