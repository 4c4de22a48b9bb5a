//! Network options and groups side by side with dockerd 20.10: the same docker CLI commands
//! against a private dockerd and against berthd, compared line by line. `--ip-range` (the
//! addresses containers get, and an `--ip` outside the range), `--internal`, `--attachable`,
//! labels, driver options, a name with spaces, a duplicate name, `network prune --filter
//! label=`, `--group-add` by gid and by name, the loopback of `--network none`, links and link-local addresses on a user
//! network, and `--aux-address`.

use berth_e2e::peers::Dockerd;
use berth_e2e::{busybox_image, ok, Berthd};

/// The commands, run in order on each side; each gives one line of output (or its error).
const STEPS: &[&[&str]] = &[
    &[
        "network", "create", "--subnet", "10.242.0.0/24", "--ip-range", "10.242.0.8/30",
        "--internal", "--attachable", "--label", "a=b", "-o",
        "com.docker.network.bridge.enable_icc=true", "opts",
    ],
    &[
        "network", "inspect", "opts", "-f",
        "{{.Internal}} {{.Attachable}} {{json .Labels}} {{json .Options}} {{range .IPAM.Config}}{{.Subnet}} {{.IPRange}}{{end}}",
    ],
    &["run", "-d", "--name", "r1", "--network", "opts", "busybox", "sleep", "60"],
    &["run", "-d", "--name", "r2", "--network", "opts", "busybox", "sleep", "60"],
    &["run", "-d", "--name", "r3", "--network", "opts", "busybox", "sleep", "60"],
    &["inspect", "-f", "{{.NetworkSettings.Networks.opts.IPAddress}}", "r1"],
    &["inspect", "-f", "{{.NetworkSettings.Networks.opts.IPAddress}}", "r2"],
    &["inspect", "-f", "{{.NetworkSettings.Networks.opts.IPAddress}}", "r3"],
    &[
        "run", "--rm", "--network", "opts", "--ip", "10.242.0.77", "busybox", "sh", "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'",
    ],
    &["network", "create", "with a space"],
    &["network", "inspect", "-f", "{{.Name}}", "with a space"],
    &["network", "rm", "with a space"],
    &["run", "--rm", "--network", "none", "--group-add", "1234", "--group-add", "root", "busybox", "id"],
    // A container with no network still has localhost: its loopback is up.
    &[
        "run", "--rm", "--network", "none", "busybox", "sh", "-c",
        "ip -o -4 addr show lo up | awk '{print $4}'",
    ],
    &[
        "run", "-d", "--name", "lk", "--network", "opts", "--ip", "10.242.0.50", "--link",
        "r1:db", "--link-local-ip", "169.254.8.8", "busybox", "sleep", "60",
    ],
    &[
        "inspect", "-f",
        "{{json .NetworkSettings.Networks.opts.Links}} {{json .NetworkSettings.Networks.opts.IPAMConfig}}",
        "lk",
    ],
    &["exec", "lk", "sh", "-c", "nslookup db | awk '/^Name:/{n=1} n&&/^Address/{print $2; exit}'"],
    &["exec", "lk", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | sort | tr '\\n' ' '"],
    &["network", "create", "--subnet", "10.243.0.0/24", "--aux-address", "host1=10.243.0.2", "aux"],
    &["run", "--rm", "--network", "aux", "busybox", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"],
    &["network", "inspect", "aux", "-f", "{{range .IPAM.Config}}{{json .AuxiliaryAddresses}}{{end}}"],
    &["network", "rm", "aux"],
    &["network", "prune", "-f", "--filter", "label=a=b"],
    &["rm", "-f", "r1", "r2", "r3", "lk"],
    &["network", "prune", "-f", "--filter", "label=a=b"],
];

fn outputs(cli: &dyn Fn(&[&str]) -> std::process::Output) -> Vec<String> {
    STEPS
        .iter()
        .map(|a| {
            let o = cli(a);
            let text = if o.status.success() {
                String::from_utf8_lossy(&o.stdout).to_string()
            } else {
                format!("error: {}", String::from_utf8_lossy(&o.stderr))
            };
            // Ids differ between the daemons: a created object's id is not compared.
            let text = text.trim();
            let makes = a[0..2] == ["network", "create"] || a[0] == "run" && a[1] == "-d";
            if makes && text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return "<id>".to_string();
            }
            text.to_string()
        })
        .collect()
}

#[test]
fn network_options_and_groups_as_dockerd() {
    let berthd = Berthd::start_with(busybox_image);
    let dockerd = Dockerd::start();
    dockerd.load_from(&berthd, "busybox:latest");
    let reference = outputs(&|a: &[&str]| dockerd.docker().args(a).output().unwrap());
    // What dockerd itself answers, so that the comparison stands on known ground.
    assert_eq!(
        reference[5..8],
        ["10.242.0.9", "10.242.0.10", "10.242.0.11"]
    );
    assert_eq!(reference[8], "10.242.0.77/24");
    assert_eq!(reference[10], "with a space");
    assert_eq!(reference[12], "uid=0(root) gid=0(root) groups=0(root),1234");
    assert_eq!(reference[13], "127.0.0.1/8");
    // Links on a user network: an alias for the linking container; link-local addresses.
    assert_eq!(
        reference[15],
        r#"["r1:db"] {"IPv4Address":"10.242.0.50","LinkLocalIPs":["169.254.8.8"]}"#
    );
    assert_eq!(reference[16], "10.242.0.9", "{reference:?}");
    assert_eq!(reference[17], "10.242.0.50/24 169.254.8.8/16");
    // An auxiliary address is never given to a container.
    assert_eq!(
        reference[19..21],
        ["10.243.0.3/24", r#"{"host1":"10.243.0.2"}"#]
    );
    let seen = outputs(&|a: &[&str]| berthd.docker("/usr/bin/docker", a));
    for (i, (b, d)) in seen.iter().zip(&reference).enumerate() {
        assert_eq!(b, d, "step {i}: {:?}", STEPS[i]);
    }
}

/// Legacy links on the default bridge, by dockerd's rules (moby's `links` package): the
/// linking container gets `ALIAS_NAME`, `ALIAS_PORT*` for each exposed port, `ALIAS_ENV_*`
/// (not HOME or PATH) and a hosts entry `ip alias hostname`; inspect shows
/// `/target:/this/alias`; a link to a stopped container fails the start.
#[test]
fn legacy_links_on_the_default_bridge() {
    let d = Berthd::start_with(busybox_image);
    let dk = |a: &[&str]| d.docker("/usr/bin/docker", a);
    ok(dk(&[
        "run", "-d", "--name", "web", "--expose", "8080", "-e", "FOO=1", "busybox", "sleep", "60",
    ]));
    let ip = ok(dk(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        "web",
    ]));
    let ip = ip.trim();
    let host = ok(dk(&["inspect", "-f", "{{.Config.Hostname}}", "web"]));
    let out = ok(dk(&[
        "run",
        "--name",
        "app",
        "--link",
        "web:db-1",
        "busybox",
        "sh",
        "-c",
        "env | grep ^DB_1_ | sort; grep db-1 /etc/hosts",
    ]));
    let want = format!(
        "DB_1_ENV_FOO=1\nDB_1_NAME=/app/db-1\nDB_1_PORT=tcp://{ip}:8080\n\
         DB_1_PORT_8080_TCP=tcp://{ip}:8080\nDB_1_PORT_8080_TCP_ADDR={ip}\n\
         DB_1_PORT_8080_TCP_PORT=8080\nDB_1_PORT_8080_TCP_PROTO=tcp\n{ip}\tdb-1 {}",
        host.trim()
    );
    assert_eq!(out.trim(), want);
    assert_eq!(
        ok(dk(&["inspect", "-f", "{{json .HostConfig.Links}}", "app"])).trim(),
        r#"["/web:/app/db-1"]"#
    );
    // Off the default bridge dockerd makes a link a DNS alias (not set up by berth yet): the
    // container still starts, without the variables.
    ok(dk(&["network", "create", "linknet"]));
    let env = ok(dk(&[
        "run",
        "--rm",
        "--network",
        "linknet",
        "--link",
        "web:db-1",
        "busybox",
        "env",
    ]));
    assert!(!env.contains("DB_1_"), "{env}");
    ok(dk(&["stop", "-t", "0", "web"]));
    let o = dk(&["start", "app"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Cannot link to a non running container"),
        "{o:?}"
    );
    // `DELETE /containers/{parent}/{alias}?link=1` removes the link; then the start works.
    let del = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
            "--unix-socket",
        ])
        .arg(d.sock())
        .arg("http://localhost/v1.41/containers/app/db-1?link=1")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&del.stdout), "204");
    assert_eq!(
        ok(dk(&["inspect", "-f", "{{json .HostConfig.Links}}", "app"])).trim(),
        "null"
    );
    ok(dk(&["start", "app"]));
    let o = dk(&["create", "--link", "nosuch:x", "busybox"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("could not get container for nosuch"),
        "{o:?}"
    );
}
