//! Published ports and NAT with real nftables rules: busybox httpd in a network namespace on a
//! bridge, published through berth's table and reached from the host's 127.0.0.1 and from a
//! second namespace standing for another host; a port can be published once; removal leaves no
//! rule behind. Needs root, nft and busybox.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command};

use berth_network::firewall::{prepare_bridge, Firewall, NetworkRule, PortMap, Proto};
use berth_network::ipam::{choose_subnet, Allocations, Pool, Subnet};
use berth_network::netlink::Netlink;
use berth_network::netns::NetNs;

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the firewall tests change nftables and links: run them as root"
    );
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{:06x}",
        (nanos ^ std::process::id().rotate_left(7)) & 0xff_ffff
    )
}

/// Removes the test's links, namespaces, table and server, even when it fails.
struct Cleanup {
    sfx: String,
    dir: std::path::PathBuf,
    fw: Firewall,
    server: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.fw.remove();
        if let Ok(mut nl) = Netlink::open() {
            for l in nl.links().unwrap_or_default() {
                if l.name.contains(&self.sfx) {
                    let _ = nl.del_link(&l.name);
                }
            }
        }
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let _ = NetNs::remove(&e.path());
        }
    }
}

/// The host's curl inside `ns` (busybox-static's wget crashes).
fn curl_in(ns: &NetNs, url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path.display()))
        .args(["curl", "-s", "--max-time", "3", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn curl_local(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// How a test namespace is attached: by a veth whose host end is `host`, enslaved to
/// `bridge` (or, with none, given the gateway address itself), with `ip/prefix` inside and a
/// default route via `gw`.
struct Attach<'a> {
    host: String,
    peer: String,
    bridge: Option<&'a str>,
    ip: Ipv4Addr,
    prefix: u8,
    gw: Ipv4Addr,
}

fn attach(nl: &mut Netlink, ns: &NetNs, a: Attach<'_>) {
    nl.add_veth(&a.host, &a.peer, None).unwrap();
    if let Some(b) = a.bridge {
        nl.set_controller(&a.host, b).unwrap();
    } else {
        nl.add_address(&a.host, IpAddr::V4(a.gw), a.prefix).unwrap();
    }
    nl.set_up(&a.host).unwrap();
    let fd = ns.fd().unwrap();
    nl.set_netns(&a.peer, std::os::fd::AsRawFd::as_raw_fd(&fd))
        .unwrap();
    let (peer, ip, prefix, gw) = (a.peer, a.ip, a.prefix, a.gw);
    ns.run(move || {
        let mut i = Netlink::open()?;
        i.rename(&peer, "eth0")?;
        i.add_address("eth0", IpAddr::V4(ip), prefix)?;
        i.set_up("eth0")?;
        i.add_default_route(IpAddr::V4(gw))
    })
    .unwrap();
}

#[test]
fn published_ports_answer_on_loopback_and_from_outside_and_go_away() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let sfx = suffix();
    let fw = Firewall::new(&format!("berth-test-{sfx}")).unwrap();
    let mut guard = Cleanup {
        sfx: sfx.clone(),
        dir: tmp.path().to_path_buf(),
        fw: fw.clone(),
        server: None,
    };
    let mut nl = Netlink::open().unwrap();
    let routes = nl.ipv4_routes().unwrap();
    let pool = [Pool {
        base: Subnet::parse("10.252.0.0/16").unwrap(),
        size: 24,
    }];
    let subnet = choose_subnet(&pool, &[], &routes).unwrap();
    let outside = choose_subnet(&pool, &[subnet], &routes).unwrap();
    let mut ipam = Allocations::new(subnet, None).unwrap();
    let bridge = format!("bf{sfx}");
    nl.add_bridge(&bridge, None).unwrap();
    nl.add_address(&bridge, IpAddr::V4(ipam.gateway), subnet.prefix)
        .unwrap();
    nl.set_up(&bridge).unwrap();
    prepare_bridge(&bridge).unwrap();
    fw.sync_networks(&[NetworkRule {
        bridge: bridge.clone(),
        subnet,
        masquerade: true,
        internal: false,
        subnet6: None,
    }])
    .unwrap();
    fw.sync_networks(&[NetworkRule {
        bridge: bridge.clone(),
        subnet,
        masquerade: true,
        internal: false,
        subnet6: None,
    }])
    .expect("syncing twice is fine");

    // The "container": busybox httpd on port 80 in its own namespace on the bridge.
    let web = NetNs::create(&tmp.path().join("web")).unwrap();
    let cip = ipam.allocate("web", None).unwrap();
    attach(
        &mut nl,
        &web,
        Attach {
            host: format!("vw{sfx}"),
            peer: format!("pw{sfx}"),
            bridge: Some(&bridge),
            ip: cip,
            prefix: subnet.prefix,
            gw: ipam.gateway,
        },
    );
    let docroot = tmp.path().join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(docroot.join("index.html"), "hello through nat\n").unwrap();
    guard.server = Some(
        Command::new("nsenter")
            .arg(format!("--net={}", web.path.display()))
            .args(["/bin/busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&docroot)
            .spawn()
            .unwrap(),
    );
    // Another "host": a namespace reaching this one over a plain veth.
    let other = NetNs::create(&tmp.path().join("other")).unwrap();
    let host_side = Ipv4Addr::from(u32::from(outside.network) + 1);
    let other_ip = Ipv4Addr::from(u32::from(outside.network) + 2);
    attach(
        &mut nl,
        &other,
        Attach {
            host: format!("vo{sfx}"),
            peer: format!("po{sfx}"),
            bridge: None,
            ip: other_ip,
            prefix: outside.prefix,
            gw: host_side,
        },
    );

    let port = 20000 + (u16::from_str_radix(&sfx[..4], 16).unwrap() % 20000);
    let published = [PortMap {
        proto: Proto::Tcp,
        host_ip: None,
        host_port: port,
        container_ip: cip,
        container_port: 80,
    }];
    fw.publish("web", &published).unwrap();
    let mut body = None;
    for _ in 0..50 {
        body = curl_local(&format!("http://127.0.0.1:{port}/"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        body.as_deref(),
        Some("hello through nat\n"),
        "from the host's 127.0.0.1"
    );
    assert_eq!(
        curl_in(&other, &format!("http://{host_side}:{port}/")).as_deref(),
        Some("hello through nat\n"),
        "from another namespace, through the host's address"
    );
    // The container reaches out through masquerade (to the other namespace's address).
    let out = Command::new("nsenter")
        .arg(format!("--net={}", web.path.display()))
        .args(["/bin/busybox", "ping", "-c", "1", "-W", "2"])
        .arg(other_ip.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "outbound through NAT");

    // One owner per port.
    let err = fw.publish("intruder", &published).unwrap_err().to_string();
    assert!(err.contains("port is already allocated"), "{err}");
    let table = fw.list().unwrap();
    assert!(
        !table.contains("c-intruder"),
        "the refused change left nothing: {table}"
    );

    fw.unpublish("web", &published).unwrap();
    fw.unpublish("web", &published)
        .expect("unpublishing twice is fine");
    assert!(
        curl_local(&format!("http://127.0.0.1:{port}/")).is_none(),
        "gone after unpublish"
    );
    let table = fw.list().unwrap();
    assert!(!table.contains("c-web"), "{table}");
    fw.remove().unwrap();
    assert!(fw.list().unwrap().trim().is_empty(), "the table is gone");
}
