//! berthd's CRI v1 socket driven by crictl, Kubernetes' CRI client (cri-tools v1.37.0, from
//! the Go module proxy; scripts/install-deps installs it): what the runtime is, its status and
//! cgroup driver, and the image service — list, status, pull from a loopback registry (also
//! with credentials), removal — over the same store the Docker API shows; pod sandboxes and
//! their containers. What is not served yet (streaming, stats) answers Unimplemented with a
//! reason (issue 21 is under way).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use berth_e2e::peers::{Registry, RegistrySetup};
use berth_e2e::{busybox_image, ok, stderr, stdout, Berthd};
use serde_json::Value;

const CRICTL: &str = "/opt/berth-test-clients/bin/crictl";

fn crictl(d: &Berthd, args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(CRICTL).exists(),
        "crictl is missing: scripts/install-deps installs it"
    );
    // Its configuration names the socket (and keeps crictl from warning on stderr that
    // /etc/crictl.yaml is missing).
    let sock = format!("unix://{}", d.dir.path().join("exec/cri.sock").display());
    let cfg = d.dir.path().join("crictl.yaml");
    std::fs::write(
        &cfg,
        format!("runtime-endpoint: {sock}\nimage-endpoint: {sock}\ntimeout: 60\n"),
    )
    .unwrap();
    Command::new(CRICTL)
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .output()
        .unwrap()
}

fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn crictl_sees_the_runtime_and_its_images() {
    let d = Berthd::start_with(busybox_image);
    let sock = d.dir.path().join("exec/cri.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o660,
        "the CRI socket is the daemon's: root and the berth group"
    );

    let v = ok(crictl(&d, &["version"]));
    assert!(v.contains("RuntimeName:  berth"), "{v}");
    assert!(v.contains("RuntimeApiVersion:  v1"), "{v}");

    let info = json(crictl(&d, &["info", "-o", "json"]));
    let cond = |t: &str| {
        info["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t}: {info}"))
    };
    assert_eq!(cond("RuntimeReady")["status"], true);
    assert_eq!(cond("NetworkReady")["status"], false);
    assert_eq!(cond("NetworkReady")["reason"], "NetworkPluginNotReady");
    assert_eq!(info["config"]["cgroupDriver"], "cgroupfs");

    // The Docker API's busybox, named as the kubelet names it.
    let id = ok(d.berth(&["inspect", "-f", "{{.Id}}", "busybox"]));
    let images = json(crictl(&d, &["images", "-o", "json"]));
    let list = images["images"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{images}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["repoTags"][0], "docker.io/library/busybox:latest");
    assert_eq!(list[0]["uid"]["value"], "0", "the image's user is root");
    let st = json(crictl(&d, &["inspecti", "-o", "json", "busybox"]));
    assert_eq!(st["status"]["id"], id.as_str());
    assert!(st["info"]["imageSpec"]["config"]["Cmd"].is_array(), "{st}");
    let fs = json(crictl(&d, &["imagefsinfo", "-o", "json"]));
    let used: u64 = fs["status"]["imageFilesystems"][0]["usedBytes"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(used > 1_000_000, "busybox's layer counts: {fs}");

    // A pull from a registry on loopback lands in the store the Docker API shows; a removal
    // takes every name; a missing image is no error for the CRI's status, but is for inspecti.
    let reg = Registry::start(RegistrySetup::default());
    let image = format!("{}/cri/bb:1", reg.host());
    ok(d.berth(&["tag", "busybox", &image]));
    ok(d.berth(&["push", &image]));
    ok(d.berth(&["rmi", &image]));
    let out = ok(crictl(&d, &["pull", &image]));
    assert_eq!(out, format!("Image is up to date for {id}"));
    let tags = ok(d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(tags.lines().any(|l| l == image), "{tags}");
    ok(d.berth(&["tag", "busybox", "also:named"]));
    ok(crictl(&d, &["rmi", &image]));
    let tags = ok(d.berth(&["images", "-q"]));
    assert_eq!(tags, "", "rmi removed the image with all its names");
    let out = crictl(&d, &["inspecti", &image]);
    assert!(!out.status.success(), "{}", stdout(&out));
    ok(crictl(&d, &["pull", &image]));
    let pulled = json(crictl(&d, &["images", "-o", "json"]));
    assert_eq!(pulled["images"][0]["repoTags"][0], image.as_str());
    assert!(
        pulled["images"][0]["repoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{}/cri/bb@sha256:", reg.host()))),
        "{pulled}"
    );

    // What is not served yet (a pod's stats) says so.
    let out = crictl(&d, &["statsp"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not implemented yet"),
        "{}",
        stderr(&out)
    );
}

/// Credentials reach the registry: refused without them, pulled with `--creds`.
#[test]
fn crictl_pulls_with_credentials() {
    let d = Berthd::start_with(busybox_image);
    let reg = Registry::start(RegistrySetup {
        htpasswd: Some(("kube", "let-me-in")),
        ..Default::default()
    });
    let image = format!("{}/private/bb:1", reg.host());
    let cfg = tempfile::tempdir().unwrap();
    let berth = |args: &[&str]| {
        Command::new(berth_e2e::binary("berth"))
            .env("DOCKER_CONFIG", cfg.path())
            .args(["-H", &d.host()])
            .args(args)
            .output()
            .unwrap()
    };
    ok(berth(&["tag", "busybox", &image]));
    let login = berth_e2e::output_with_stdin(
        {
            let mut c = Command::new(berth_e2e::binary("berth"));
            c.env("DOCKER_CONFIG", cfg.path())
                .args(["-H", &d.host(), "login", "-u", "kube", "--password-stdin"])
                .arg(reg.host());
            c
        },
        b"let-me-in\n",
    );
    ok(login);
    ok(berth(&["push", &image]));
    ok(berth(&["rmi", &image]));
    let out = crictl(&d, &["pull", &image]);
    assert!(!out.status.success(), "pulled without credentials");
    let out = crictl(&d, &["pull", "--creds", "kube:wrong", &image]);
    assert!(!out.status.success(), "pulled with a wrong password");
    ok(crictl(&d, &["pull", "--creds", "kube:let-me-in", &image]));
    let out = ok(crictl(&d, &["images", "-q"]));
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// The ids of the pods `crictl pods -q args` lists, sorted.
fn pod_ids(d: &Berthd, args: &[&str]) -> Vec<String> {
    let mut a = vec!["pods", "-q"];
    a.extend_from_slice(args);
    let mut v: Vec<String> = ok(crictl(d, &a)).lines().map(str::to_string).collect();
    v.sort();
    v
}

fn pod_config(dir: &std::path::Path, name: &str, uid: &str) -> String {
    let p = dir.join(format!("{name}.json"));
    let cfg = serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "uid": uid, "attempt": 0},
        "hostname": format!("{name}-0"),
        "log_directory": dir.join("logs").display().to_string(),
        "labels": {"app": name},
        "annotations": {"note": "kept"},
        "dns_config": {"servers": ["10.96.0.10"], "searches": ["default.svc.cluster.local"]},
        "linux": {"security_context": {"namespace_options": {"pid": 1}}}
    });
    std::fs::write(&p, cfg.to_string()).unwrap();
    p.display().to_string()
}

/// A pod's sandbox: berth's holder with the pod's hostname, DNS and loopback; listed,
/// filtered and inspected as crictl shows pods; stopped and removed (both idempotent); kept
/// across a berthd kill and restart.
#[test]
fn crictl_runs_stops_and_removes_pods() {
    let mut d = Berthd::start_with(busybox_image);
    let dir = tempfile::tempdir().unwrap();
    let web = ok(crictl(
        &d,
        &["runp", &pod_config(dir.path(), "web", "u-web")],
    ));
    assert_eq!(web.len(), 64, "{web}");
    let db = ok(crictl(&d, &["runp", &pod_config(dir.path(), "db", "u-db")]));
    // The same pod (name, namespace, uid, attempt) cannot be made twice.
    let again = crictl(&d, &["runp", &pod_config(dir.path(), "web", "u-web")]);
    assert!(!again.status.success(), "a second web pod");

    let st = json(crictl(&d, &["inspectp", "-o", "json", &web]));
    let s = &st["status"];
    assert_eq!(s["state"], "SANDBOX_READY", "{st}");
    assert_eq!(s["metadata"]["name"], "web");
    assert_eq!(s["metadata"]["uid"], "u-web");
    assert_eq!(s["labels"]["app"], "web");
    assert_eq!(s["annotations"]["note"], "kept");
    assert_eq!(s["linux"]["namespaces"]["options"]["pid"], "CONTAINER");
    assert_eq!(s["linux"]["namespaces"]["options"]["network"], "POD");

    // The holder really holds the pod's namespaces as asked.
    let pid = ok(d.berth(&["inspect", "-f", "{{.State.Pid}}", &web]));
    let host = Command::new("nsenter")
        .args(["-u", "-t", &pid, "hostname"])
        .output()
        .unwrap();
    assert_eq!(stdout(&host).trim(), "web-0");
    let resolv = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap();
    assert!(
        resolv.contains("nameserver 10.96.0.10") && resolv.contains("default.svc.cluster.local"),
        "{resolv}"
    );
    let lo = Command::new("nsenter")
        .args([
            "-n", "-t", &pid, "ip", "-o", "-4", "addr", "show", "lo", "up",
        ])
        .output()
        .unwrap();
    assert!(stdout(&lo).contains("127.0.0.1/8"), "{}", stdout(&lo));
    let own_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(own_net, std::fs::read_link("/proc/self/ns/net").unwrap());

    // The Docker API's lists leave the CRI's objects out, unless their namespace is asked
    // for (by berth's --namespace, or the label with any docker CLI).
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "");
    let listed = ok(d.berth(&["ps", "-a", "--no-trunc", "-q", "--namespace", "k8s.io"]));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    let by_label = d.docker(
        "/usr/local/bin/docker",
        &[
            "ps",
            "-a",
            "--no-trunc",
            "-q",
            "--filter",
            "label=io.berth.namespace=k8s.io",
        ],
    );
    let by_label = ok(by_label);
    let mut by_label: Vec<&str> = by_label.lines().collect();
    by_label.sort();

    // Listing and its filters.
    let mut both = vec![web.clone(), db.clone()];
    both.sort();
    assert_eq!(pod_ids(&d, &[]), both);
    assert_eq!(
        listed, both,
        "the sandboxes are the k8s.io namespace's containers"
    );
    assert_eq!(by_label, both);
    assert_eq!(pod_ids(&d, &["--label", "app=db"]), [db.as_str()]);
    assert_eq!(pod_ids(&d, &["--id", &web[..12]]), [web.as_str()]);
    assert_eq!(pod_ids(&d, &["--state", "notready"]), Vec::<String>::new());

    // Stop: not ready, the holder gone; twice is fine.
    ok(crictl(&d, &["stopp", &web]));
    ok(crictl(&d, &["stopp", &web]));
    assert_eq!(pod_ids(&d, &["--state", "notready"]), [web.as_str()]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            s.contains(") Z ")
        }
    );

    // A berthd killed and started again knows its pods: the running one still runs.
    d.restart();
    let st = json(crictl(&d, &["inspectp", "-o", "json", &db]));
    assert_eq!(st["status"]["state"], "SANDBOX_READY", "{st}");
    assert_eq!(st["status"]["labels"]["app"], "db");
    assert_eq!(pod_ids(&d, &["--state", "notready"]), [web.as_str()]);

    // Removal, idempotent; the sandbox container goes with it.
    ok(crictl(&d, &["rmp", &web]));
    ok(crictl(&d, &["rmp", "-f", &db]));
    assert_eq!(pod_ids(&d, &[]), Vec::<String>::new());
    assert_eq!(ok(d.berth(&["ps", "-aq"])), "");

    // A runtime handler berth does not have is refused.
    let cfg = pod_config(dir.path(), "h", "u-h");
    let out = crictl(&d, &["runp", "--runtime", "nope", &cfg]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("runtime handler"), "{}", stderr(&out));
}

fn container_config(dir: &std::path::Path, name: &str, command: &str, extra: Value) -> String {
    let p = dir.join(format!("c-{name}.json"));
    let mut cfg = serde_json::json!({
        "metadata": {"name": name, "attempt": 0},
        "image": {"image": "busybox"},
        "command": ["sh", "-c", command],
        "log_path": format!("{name}/0.log"),
        "labels": {"role": name},
        "annotations": {"note": name}
    });
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    std::fs::write(&p, cfg.to_string()).unwrap();
    p.display().to_string()
}

/// A pod's containers: they share the pod's localhost and hostname and have their own pid
/// namespace (the kubelet's default), log in the CRI's format where the kubelet asked (crictl
/// logs reads it), run exec sync, stop with the exit the signal gave, and go with the pod.
#[test]
fn crictl_runs_a_pods_containers() {
    let d = Berthd::start_with(busybox_image);
    let dir = tempfile::tempdir().unwrap();
    let pod_cfg = pod_config(dir.path(), "web", "u-web");
    let pod = ok(crictl(&d, &["runp", &pod_cfg]));
    let server = container_config(
        dir.path(),
        "server",
        "echo started; echo oops >&2; nc -l -p 8080 -e echo hello-over-localhost; sleep 300",
        serde_json::json!({"envs": [{"key": "GREETING", "value": "hi"}],
                           "mounts": [{"host_path": dir.path().display().to_string(),
                                       "container_path": "/data", "readonly": true}]}),
    );
    let client = container_config(
        dir.path(),
        "client",
        "until nc 127.0.0.1 8080; do sleep 0.1; done; echo client-done",
        serde_json::json!({}),
    );
    let s = ok(crictl(&d, &["create", &pod, &server, &pod_cfg]));
    let st = json(crictl(&d, &["inspect", "-o", "json", &s]));
    assert_eq!(st["status"]["state"], "CONTAINER_CREATED", "{st}");
    ok(crictl(&d, &["start", &s]));
    let c = ok(crictl(&d, &["create", &pod, &client, &pod_cfg]));
    ok(crictl(&d, &["start", &c]));
    let exited = berth_e2e::eventually(20, || {
        json(crictl(&d, &["inspect", "-o", "json", &c]))["status"]["state"] == "CONTAINER_EXITED"
    });
    assert!(exited, "the client ended");
    // A Docker client's prune leaves the kubelet's exited containers alone.
    ok(d.berth(&["container", "prune", "-f"]));
    let st = json(crictl(&d, &["inspect", "-o", "json", &c]));
    assert_eq!(st["status"]["exitCode"], 0, "{st}");
    assert_eq!(st["status"]["reason"], "Completed");
    assert_eq!(
        ok(crictl(&d, &["logs", &c])),
        "hello-over-localhost\nclient-done"
    );
    // The CRI's format on disk, where the kubelet asked for it.
    let raw = std::fs::read_to_string(dir.path().join("logs/server/0.log")).unwrap();
    assert!(
        raw.lines().any(|l| l.ends_with(" stdout F started"))
            && raw.lines().any(|l| l.ends_with(" stderr F oops")),
        "{raw}"
    );
    let out = crictl(&d, &["logs", "--stream", "stderr", &s]);
    assert_eq!(stderr(&out).trim(), "oops", "{out:?}");

    // Exec sync: env, the pod's hostname, the mount, a pid namespace of its own, an exit code.
    let out = ok(crictl(
        &d,
        &[
            "exec",
            "-s",
            &s,
            "sh",
            "-c",
            "echo $GREETING; hostname; ls /data | grep -c json; ps -o comm | grep -c sleep",
        ],
    ));
    assert_eq!(
        out,
        "hi\nweb-0\n".to_string() + &count_json(dir.path()) + "\n1"
    );
    let out = crictl(&d, &["exec", "-s", &s, "sh", "-c", "exit 3"]);
    assert!(!out.status.success());
    let out = crictl(&d, &["exec", "-s", "--timeout", "1", &s, "sleep", "30"]);
    assert!(!out.status.success(), "a command past its timeout fails");

    // Listing and its filters.
    let ids = |args: &[&str]| {
        let mut a = vec!["ps", "-a", "-q"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = ok(crictl(&d, &a)).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let mut in_pod = vec![s.clone(), c.clone()];
    in_pod.sort();
    assert_eq!(ids(&["--pod", &pod]), in_pod);
    assert_eq!(
        ids(&["--label", "role=server", "--pod", &pod]),
        [s.as_str()]
    );
    assert_eq!(ids(&["--state", "running", "--pod", &pod]), [s.as_str()]);
    let st = json(crictl(&d, &["inspect", "-o", "json", &s]));
    assert_eq!(st["status"]["annotations"]["note"], "server");
    assert_eq!(st["status"]["mounts"][0]["containerPath"], "/data");
    assert!(
        st["status"]["logPath"]
            .as_str()
            .is_some_and(|p| p.ends_with("logs/server/0.log")),
        "{st}"
    );

    // Stats from the container's cgroup; a live memory limit; the log reopened after the
    // kubelet's rotation (a rename) goes on in a new file.
    let st = json(crictl(&d, &["stats", "-o", "json", "--id", &s]));
    let one = &st["stats"][0];
    let num = |v: &Value| {
        v["value"]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(num(&one["cpu"]["usageCoreNanoSeconds"]) > 0, "{st}");
    assert!(num(&one["memory"]["workingSetBytes"]) > 0, "{st}");
    assert_eq!(one["attributes"]["metadata"]["name"], "server");
    ok(crictl(&d, &["update", "--memory", "67108864", &s]));
    assert_eq!(
        ok(d.berth(&["inspect", "-f", "{{.HostConfig.Memory}}", &s])),
        "67108864"
    );
    let ticker = container_config(
        dir.path(),
        "ticker",
        "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done",
        serde_json::json!({}),
    );
    let t = ok(crictl(&d, &["create", &pod, &ticker, &pod_cfg]));
    ok(crictl(&d, &["start", &t]));
    let log = dir.path().join("logs/ticker/0.log");
    assert!(berth_e2e::eventually(10, || std::fs::read_to_string(&log)
        .is_ok_and(|l| l.contains("tick-3"))));
    std::fs::rename(&log, dir.path().join("logs/ticker/0.log.1")).unwrap();
    ok(crictl(&d, &["logs", "--reopen", &t]));
    assert!(
        berth_e2e::eventually(10, || std::fs::read_to_string(&log).is_ok_and(|l| l
            .lines()
            .count()
            >= 2
            && l.contains(" stdout F tick-"))),
        "the reopened log grows"
    );
    ok(crictl(&d, &["rm", "-f", &t]));

    // Stop: SIGTERM is ignored by the shell as pid 1, SIGKILL after the timeout.
    ok(crictl(&d, &["stop", "--timeout", "1", &s]));
    let st = json(crictl(&d, &["inspect", "-o", "json", &s]));
    assert_eq!(st["status"]["state"], "CONTAINER_EXITED");
    assert_eq!(st["status"]["exitCode"], 137);
    assert_eq!(st["status"]["reason"], "Error");
    // Removal of a container, then of the pod with the rest.
    ok(crictl(&d, &["rm", &s]));
    assert_eq!(ids(&["--pod", &pod]), [c.as_str()]);
    ok(crictl(&d, &["stopp", &pod]));
    ok(crictl(&d, &["rmp", &pod]));
    assert!(ids(&["--pod", &pod]).is_empty());
}

fn count_json(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("json"))
        .count()
        .to_string()
}
