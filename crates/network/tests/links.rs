//! Real kernel objects: persistent network namespaces, a bridge, veth pairs and addresses made
//! over netlink, traffic between two namespaces across the bridge, and a teardown that leaves
//! nothing behind. Needs root.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use berth_network::ipam::{choose_subnet, Allocations, Pool, Subnet};
use berth_network::netlink::Netlink;
use berth_network::netns::NetNs;
use berth_network::Error;

fn require_root() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "the network tests create namespaces and links: run them as root"
    );
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:06x}", (nanos ^ std::process::id()) & 0xff_ffff)
}

/// `busybox ping` from inside the namespace at `ns`.
fn ping(ns: &NetNs, ip: Ipv4Addr) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.path.display()))
        .args(["/bin/busybox", "ping", "-c", "1", "-W", "2"])
        .arg(ip.to_string())
        .output()
        .unwrap()
        .status
        .success()
}

/// Removes every link whose name carries the test's suffix and every namespace file in the
/// test's folder, even when the test fails.
struct Cleanup(String, std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(mut nl) = Netlink::open() {
            for l in nl.links().unwrap_or_default() {
                if l.name.contains(&self.0) {
                    let _ = nl.del_link(&l.name);
                }
            }
        }
        for e in std::fs::read_dir(&self.1).into_iter().flatten().flatten() {
            let _ = NetNs::remove(&e.path());
        }
    }
}

#[test]
fn two_namespaces_talk_across_a_bridge_and_leave_nothing_behind() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let sfx = suffix();
    let _cleanup = Cleanup(sfx.clone(), tmp.path().to_path_buf());
    let bridge = format!("bt{sfx}");
    let mut nl = Netlink::open().unwrap();
    // A subnet clear of the host's routes, from a test pool.
    let pool = [Pool {
        base: Subnet::parse("10.251.0.0/16").unwrap(),
        size: 24,
    }];
    let routes = nl.ipv4_routes().unwrap();
    let subnet = choose_subnet(&pool, &[], &routes).unwrap();
    let mut ipam = Allocations::new(subnet, None).unwrap();
    nl.add_bridge(&bridge, Some(1500)).unwrap();
    assert!(
        matches!(nl.add_bridge(&bridge, None), Err(Error::Netlink { .. })),
        "a second bridge of the same name is refused"
    );
    nl.add_address(&bridge, IpAddr::V4(ipam.gateway), subnet.prefix)
        .unwrap();
    nl.add_address(&bridge, IpAddr::V4(ipam.gateway), subnet.prefix)
        .expect("adding an address twice is fine");
    nl.set_up(&bridge).unwrap();
    assert!(nl
        .ipv4_routes()
        .unwrap()
        .contains(&(subnet.network, subnet.prefix)));

    let mut spaces = Vec::new();
    for (i, owner) in ["a", "b"].iter().enumerate() {
        let ns = NetNs::create(&tmp.path().join(format!("ns-{owner}"))).unwrap();
        assert!(NetNs::is_live(&ns.path));
        let host = format!("vh{sfx}{i}");
        let peer = format!("vp{sfx}{i}");
        nl.add_veth(&host, &peer, Some(1500)).unwrap();
        nl.set_controller(&host, &bridge).unwrap();
        nl.set_up(&host).unwrap();
        let fd = ns.fd().unwrap();
        nl.set_netns(&peer, std::os::fd::AsRawFd::as_raw_fd(&fd))
            .unwrap();
        assert!(
            matches!(nl.link(&peer), Err(Error::NotFound(_))),
            "moved out"
        );
        let ip = ipam.allocate(owner, None).unwrap();
        let (gw, prefix) = (ipam.gateway, subnet.prefix);
        ns.run(move || {
            let mut inner = Netlink::open()?;
            inner.rename(&peer, "eth0")?;
            inner.add_address("eth0", IpAddr::V4(ip), prefix)?;
            inner.set_up("eth0")?;
            inner.add_default_route(IpAddr::V4(gw))?;
            let lo = inner.link("lo")?;
            assert!(lo.up, "a new namespace has its loopback up");
            assert!(inner.addresses("eth0")?.contains(&(IpAddr::V4(ip), prefix)));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            nl.link(&host).unwrap().controller,
            Some(nl.link(&bridge).unwrap().index)
        );
        spaces.push((ns, host, ip));
    }
    assert!(
        ping(&spaces[0].0, spaces[1].2),
        "a reaches b across the bridge"
    );
    assert!(ping(&spaces[1].0, ipam.gateway), "b reaches the gateway");

    // Teardown: host ends of the veths, the namespaces, the bridge.
    for (ns, host, _) in &spaces {
        nl.del_link(host).unwrap();
        nl.del_link(host).expect("deleting a missing link is fine");
        NetNs::remove(&ns.path).unwrap();
        NetNs::remove(&ns.path).expect("removing a missing namespace is fine");
        assert!(!ns.path.exists());
    }
    nl.del_link(&bridge).unwrap();
    let left: Vec<String> = nl
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.contains(&sfx))
        .collect();
    assert!(left.is_empty(), "links left behind: {left:?}");
    assert!(!nl
        .ipv4_routes()
        .unwrap()
        .contains(&(subnet.network, subnet.prefix)));
}
