//! The API side by side with dockerd: the same objects made on a private dockerd 20.10 and on
//! berthd by the same docker CLI, then the same requests sent to both (API 1.41, dockerd's
//! version), and the JSON answers compared by shape: the keys of every object and the type of
//! every value, recursively (the first element stands for an array's elements; maps keyed by
//! data, such as labels, by the shape of their values). What berthd answers differently on
//! purpose is the allow-list below, each entry with its reason; anything else fails the test,
//! so a field dockerd has and berthd lacks is seen here, not by a user's client.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use berth_e2e::peers::Dockerd;
use berth_e2e::{busybox_image, ok, Berthd};
use serde_json::Value;

/// Differences known and accepted: (request, path prefix, why). A path is `.Key.Key[].Key`.
const ALLOWED: &[(&str, &str, &str)] = &[
    // berth's own: the hierarchies containers are placed in and the controllers that can
    // limit them (docs/daemon.md, cgroups).
    ("/info", ".CgroupControllers", "berth's own field"),
    ("/info", ".CgroupHierarchy", "berth's own field"),
    // Fields of later API versions, answered at every version (clients ignore what they do
    // not know).
    (
        "/containers/json?all=1",
        "[].NetworkSettings.Networks{}.DNSNames",
        "API 1.44",
    ),
    (
        "/containers/shapes/json",
        ".NetworkSettings.Networks{}.DNSNames",
        "API 1.44",
    ),
    (
        "/containers/shapes-created/json",
        ".NetworkSettings.Networks{}.DNSNames",
        "API 1.44",
    ),
    (
        "/containers/shapes/json?size=1",
        ".NetworkSettings.Networks{}.DNSNames",
        "API 1.44",
    ),
    (
        "/system/df",
        ".Containers[].NetworkSettings.Networks{}.DNSNames",
        "API 1.44",
    ),
    ("/networks", "[].EnableIPv4", "API 1.47"),
    // As for one network below: every network of the list is compared with its namesake.
    (
        "/networks",
        "[].IPAM.Config[].Gateway",
        "the chosen gateway",
    ),
    ("/networks/shapes-net", ".EnableIPv4", "API 1.47"),
    // berth writes the gateway it chose; dockerd writes only a gateway the user gave.
    (
        "/networks/shapes-net",
        ".IPAM.Config[].Gateway",
        "the chosen gateway",
    ),
    // An empty list or map where dockerd 20.10 writes null (a Go nil slice or map): the
    // docker CLI and docker-py read both alike.
    ("/images/json", "[].Labels", "{} for null"),
    ("/images/json", "[].RepoDigests", "[] for null"),
    ("/system/df", ".Images[].Labels", "{} for null"),
    ("/system/df", ".Images[].RepoDigests", "[] for null"),
    ("/system/df", ".BuildCache", "[] for null"),
    // dockerd leaves out a container's SizeRw of 0 in `system df` (omitempty).
    ("/system/df", ".Containers[].SizeRw", "0 written"),
    // berth keeps no merged or work directory per image, only the layers' snapshots.
    (
        "/images/busybox:latest/json",
        ".GraphDriver.Data.MergedDir",
        "no per-image mount",
    ),
    (
        "/images/busybox:latest/json",
        ".GraphDriver.Data.WorkDir",
        "no per-image mount",
    ),
];

/// Object keys whose keys are data (names, ports, ids), compared by their values' shape.
const MAPS: &[&str] = &[
    "Labels",
    "Options",
    "ExposedPorts",
    "Volumes",
    "Ports",
    "Networks",
    "Containers",
    "DriverOpts",
    "Config",
    "Sysctls",
    "Tmpfs",
    "Status",
    "Runtimes",
    "IndexConfigs",
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `b` (berthd) differs in shape from `d` (dockerd).
fn diff(path: &str, d: &Value, b: &Value, out: &mut Vec<String>) {
    // A float and an integer are both JSON numbers; dockerd writes whole floats as integers.
    let number = |v: &Value| matches!(kind(v), "float" | "integer");
    if kind(d) != kind(b) && !(number(d) && number(b)) {
        out.push(format!("{path}: dockerd {} berthd {}", kind(d), kind(b)));
        return;
    }
    let last = path.rsplit('.').next().unwrap_or("");
    match (d, b) {
        (Value::Object(dm), Value::Object(bm)) if MAPS.contains(&last) && !is_struct(dm) => {
            if let (Some(dv), Some(bv)) = (dm.values().next(), bm.values().next()) {
                diff(&format!("{path}{{}}"), dv, bv, out);
            }
        }
        (Value::Object(dm), Value::Object(bm)) => {
            for (k, dv) in dm {
                match bm.get(k) {
                    Some(bv) => diff(&format!("{path}.{k}"), dv, bv, out),
                    None => out.push(format!("{path}.{k}: berthd lacks it")),
                }
            }
            for k in bm.keys().filter(|k| !dm.contains_key(*k)) {
                out.push(format!("{path}.{k}: only berthd has it"));
            }
        }
        (Value::Array(da), Value::Array(ba)) => {
            // Objects with a name (networks in a list, whose order is dockerd's map order,
            // random from run to run) are compared with the one of the same name.
            let named = |v: &Value| v.get("Name").and_then(Value::as_str).map(str::to_string);
            let pairs: Vec<(&Value, &Value)> = da
                .iter()
                .filter_map(|dv| {
                    let n = named(dv)?;
                    let bv = ba
                        .iter()
                        .find(|bv| named(bv).as_deref() == Some(n.as_str()))?;
                    Some((dv, bv))
                })
                .collect();
            if pairs.is_empty() {
                if let (Some(dv), Some(bv)) = (da.first(), ba.first()) {
                    diff(&format!("{path}[]"), dv, bv, out);
                }
            }
            for (dv, bv) in pairs {
                let mut found = Vec::new();
                diff(&format!("{path}[]"), dv, bv, &mut found);
                for f in found {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A map key that holds a struct, not data (e.g. a container's `Config`), is compared key by
/// key: its keys start with a capital letter and none looks like data.
fn is_struct(m: &serde_json::Map<String, Value>) -> bool {
    !m.is_empty()
        && m.keys().all(|k| {
            k.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && k.chars().all(|c| c.is_ascii_alphanumeric())
        })
        && m.keys().any(|k| k.len() > 1)
}

fn curl(sock: &Path, method: &str, path: &str, body: Option<&str>) -> Value {
    let mut c = Command::new("curl");
    c.args(["-s", "--unix-socket"])
        .arg(sock)
        .args(["-X", method]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let o = c
        .arg(format!("http://localhost/v1.41{path}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{method} {path}: {o:?}");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    if path.starts_with("/events") {
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        return Value::Array(lines);
    }
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Runs the docker CLI against one side.
type Cli<'a> = Box<dyn Fn(&[&str]) -> std::process::Output + 'a>;

/// One side: a socket and a way to run the docker CLI against it.
struct Side<'a> {
    name: &'a str,
    sock: std::path::PathBuf,
    cli: Cli<'a>,
}

/// Makes the objects the requests look at; returns the exec id.
fn setup(s: &Side<'_>, subnet: &str) -> String {
    let run = |a: &[&str]| {
        let o = (s.cli)(a);
        assert!(o.status.success(), "{} {a:?}: {o:?}", s.name);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    run(&[
        "network",
        "create",
        "--subnet",
        subnet,
        "--label",
        "n=1",
        "shapes-net",
    ]);
    run(&["volume", "create", "--label", "v=1", "shapes-vol"]);
    run(&[
        "run",
        "-d",
        "--name",
        "shapes",
        "-l",
        "a=b",
        "-v",
        "shapes-vol:/data",
        "--network",
        "shapes-net",
        "-e",
        "X=1",
        "busybox",
        "sleep",
        "300",
    ]);
    run(&["create", "--name", "shapes-created", "busybox", "true"]);
    let x = curl(
        &s.sock,
        "POST",
        "/containers/shapes/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    let id = x["Id"].as_str().expect("exec id").to_string();
    curl(
        &s.sock,
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    id
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn api_answers_have_dockerds_shapes() {
    let berthd = Berthd::start_with(busybox_image);
    let dockerd = Dockerd::start();
    let saved = "/tmp/berth-shapes-busybox.tar";
    ok(berthd.berth(&["save", "-o", saved, "busybox:latest"]));
    let t0 = now();
    // Loaded on both sides within the events' window (berthd already has it: a load again).
    for load in [
        dockerd
            .docker()
            .args(["load", "-i", saved])
            .output()
            .unwrap(),
        berthd.docker("/usr/bin/docker", &["load", "-i", saved]),
    ] {
        assert!(load.status.success(), "{load:?}");
    }
    let _ = std::fs::remove_file(saved);
    let sides = [
        Side {
            name: "dockerd",
            sock: dockerd.dir.path().join("docker.sock"),
            cli: Box::new(|a: &[&str]| dockerd.docker().args(a).output().unwrap()),
        },
        Side {
            name: "berthd",
            sock: berthd.sock(),
            cli: Box::new(|a: &[&str]| berthd.docker("/usr/bin/docker", a)),
        },
    ];
    let execs: Vec<String> = sides
        .iter()
        .zip(["10.231.1.0/24", "10.231.2.0/24"])
        .map(|(s, net)| setup(s, net))
        .collect();
    let until = now() + 1;
    let requests: Vec<(String, String)> = [
        "/version",
        "/info",
        "/system/df",
        "/containers/json?all=1",
        "/containers/shapes/json",
        "/containers/shapes-created/json",
        "/containers/shapes/json?size=1",
        "/images/json",
        "/images/busybox:latest/json",
        "/images/busybox:latest/history",
        "/networks",
        "/networks/shapes-net",
        "/volumes",
        "/volumes/shapes-vol",
        "/exec/{exec}/json",
    ]
    .iter()
    .map(|r| (r.to_string(), r.to_string()))
    .chain([(
        "/events".to_string(),
        format!("/events?since={t0}&until={until}"),
    )])
    .collect();
    let mut found = Vec::new();
    for (name, path) in &requests {
        let answers: Vec<Value> = sides
            .iter()
            .zip(&execs)
            .map(|(s, x)| curl(&s.sock, "GET", &path.replace("{exec}", x), None))
            .collect();
        let (d, b) = (&answers[0], &answers[1]);
        let mut out = Vec::new();
        if name == "/events" {
            diff_events(d, b, &mut out);
        } else {
            diff("", d, b, &mut out);
        }
        for o in out {
            let allowed = ALLOWED
                .iter()
                .any(|(r, p, _)| r == name && o.starts_with(p));
            if !allowed {
                found.push(format!("{name} {o}"));
            }
        }
    }
    for s in &sides {
        for c in ["shapes", "shapes-created"] {
            let _ = (s.cli)(&["rm", "-f", c]);
        }
        let _ = (s.cli)(&["network", "rm", "shapes-net"]);
        let _ = (s.cli)(&["volume", "rm", "shapes-vol"]);
    }
    assert!(
        found.is_empty(),
        "berthd's answers differ from dockerd's ({}):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// Events compared by kind: every (type, action) dockerd reported must come from berthd too,
/// with the same shape.
fn diff_events(d: &Value, b: &Value, out: &mut Vec<String>) {
    let by_kind = |v: &Value| -> BTreeMap<String, Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let action = e["Action"].as_str().unwrap_or("");
                let action = action.split(':').next().unwrap_or(action);
                (
                    format!("{}/{action}", e["Type"].as_str().unwrap_or("")),
                    e.clone(),
                )
            })
            .collect()
    };
    let (dk, bk) = (by_kind(d), by_kind(b));
    for (k, de) in &dk {
        match bk.get(k) {
            Some(be) => diff(&format!("[{k}]"), de, be, out),
            None => out.push(format!(
                "[{k}]: berthd sent no such event (it sent {:?})",
                bk.keys().collect::<Vec<_>>()
            )),
        }
    }
}
