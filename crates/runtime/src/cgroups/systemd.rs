//! The systemd cgroup driver: a container's cgroup is a transient scope unit that systemd makes
//! and owns, asked for over systemd's D-Bus API, as runc's `--systemd-cgroup` does.
//!
//! A cgroups path `slice:prefix:name` (runc's form) names the scope `prefix-name.scope` in
//! `slice` (`system.slice` when empty). The scope is started with `Delegate=yes` and the
//! container's first process; systemd then leaves everything below the scope's cgroup to
//! berth. The container's processes live in a `container` cgroup inside the scope, and that is
//! where berth writes the limits and device rules: the scope's own attributes are systemd's,
//! and systemd writes them again whenever it re-applies the unit (a `daemon-reload`, a
//! `set-property`), on cgroup v1 with `devices.allow a` when the unit names no device policy.
//! Rules one level down are out of its reach (a v1 parent gaining rights does not give them to
//! a child; v2 device programs of parent and child must both allow).
//!
//! The D-Bus client is `rustbus`: synchronous and thread-free, which a runtime that forks
//! container processes needs (zbus runs an executor thread per connection). As root the
//! driver talks to systemd's private socket (`/run/systemd/private`, no bus daemon needed, as
//! `systemctl` does), else to the system bus.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustbus::connection::Timeout;
use rustbus::wire::ObjectPath;
use rustbus::{DuplexConn, MessageBuilder, MessageType, RpcConn};

use crate::error::{Error, Result};

rustbus::dbus_variant_sig!(Value, Str => String; Bool => bool; Pids => Vec<u32>);

/// How long systemd may take to start or stop a scope.
const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for its reply before it wakes systemd (see `Manager::call_on`).
const KICK: Duration = Duration::from_millis(50);

/// The cgroup inside the scope that the container's processes live in.
pub const LEAF: &str = "container";

/// A container's scope unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `prefix-name.scope`.
    pub unit: String,
    /// The slice it is placed in, `system.slice` by default.
    pub slice: String,
}

fn err(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::Cgroup {
        path: path.into(),
        reason: reason.into(),
    }
}

impl Scope {
    /// Parses runc's systemd cgroups path, `[slice]:[prefix]:[name]`; an empty path gives
    /// `system.slice:berth:<id>`.
    pub fn parse(path: &str, id: &str) -> Result<Scope> {
        if path.is_empty() {
            return Ok(Scope {
                unit: format!("berth-{id}.scope"),
                slice: "system.slice".into(),
            });
        }
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(err(
                path,
                "a systemd cgroups path is \"slice:prefix:name\" (runc's form)",
            ));
        };
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        if !slice.ends_with(".slice") || slice.contains('/') {
            return Err(err(
                path,
                format!("{slice:?} is not a slice: a systemd slice is named \"xxx.slice\""),
            ));
        }
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        if unit.contains('/') || unit.starts_with('.') {
            return Err(err(path, format!("{unit:?} is not a valid unit name")));
        }
        Ok(Scope {
            unit,
            slice: slice.to_string(),
        })
    }

    /// The scope's cgroup under systemd's root: the slice expanded (`a-b.slice` lives in
    /// `a.slice/a-b.slice`), then the unit.
    pub fn cgroup(&self) -> Result<PathBuf> {
        Ok(expand_slice(&self.slice)?.join(&self.unit))
    }
}

/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(err(slice, "a systemd slice is named \"xxx.slice\""));
    };
    let mut path = PathBuf::from("/");
    if stem == "-" {
        return Ok(path);
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(err(slice, "not a valid slice name"));
    }
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

/// Whether systemd runs as init here (`sd_booted`: `/run/systemd/system` exists).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where systemd's own cgroup tree starts in the hierarchy that names it (`name=systemd` on
/// v1, the unified one on v2): systemd's cgroup with `/init.scope` taken off. `/` on a host;
/// deeper when systemd runs in a container.
pub fn manager_root() -> Result<PathBuf> {
    let data = std::fs::read_to_string("/proc/1/cgroup")
        .map_err(|e| err("/proc/1/cgroup", e.to_string()))?;
    root_from(&data).ok_or_else(|| err("/proc/1/cgroup", "systemd's own cgroup is not listed"))
}

fn root_from(proc_cgroup: &str) -> Option<PathBuf> {
    let line = proc_cgroup
        .lines()
        .find(|l| l.contains(":name=systemd:"))
        .or_else(|| proc_cgroup.lines().find(|l| l.starts_with("0::")))?;
    let path = line.splitn(3, ':').nth(2)?;
    let path = path.strip_suffix("/init.scope").unwrap_or(path);
    Some(PathBuf::from(if path.is_empty() { "/" } else { path }))
}

/// A connection to systemd's manager.
struct Manager {
    conn: RpcConn,
}

fn bus_err(what: &str, e: impl std::fmt::Display) -> Error {
    err(
        "/run/systemd/private",
        format!("systemd D-Bus: {what}: {e}"),
    )
}

fn addr(path: &str) -> Result<nix026::sys::socket::UnixAddr> {
    nix026::sys::socket::UnixAddr::new(path).map_err(|e| bus_err(path, e))
}

impl Manager {
    fn connect() -> Result<Manager> {
        if !booted() {
            return Err(err(
                "/run/systemd/system",
                "the systemd cgroup driver needs systemd as the init system (PID 1), and it is \
                 not (/run/systemd/system is missing): use the cgroupfs driver",
            ));
        }
        let private = "/run/systemd/private";
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let conn = if root && Path::new(private).exists() {
            let c = DuplexConn::connect_to_bus(addr(private)?, true)
                .map_err(|e| bus_err("connect to /run/systemd/private", e))?;
            RpcConn::new(c)
        } else {
            let bus = "/run/dbus/system_bus_socket";
            let mut c = RpcConn::connect_to_path(addr(bus)?, Timeout::Duration(JOB_TIMEOUT))
                .map_err(|e| bus_err("connect to the system bus", e))?;
            let mut m = rustbus::standard_messages::add_match(
                "type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
            );
            Self::call_on(&mut c, &mut m)?;
            c
        };
        let mut m = Manager { conn };
        // Signals (JobRemoved) come only to subscribed clients.
        m.call(&mut Self::method("Subscribe"))?;
        Ok(m)
    }

    fn method(name: &str) -> rustbus::message_builder::MarshalledMessage {
        MessageBuilder::new()
            .call(name)
            .with_interface("org.freedesktop.systemd1.Manager")
            .on("/org/freedesktop/systemd1")
            .at("org.freedesktop.systemd1")
            .build()
    }

    fn call_on(
        conn: &mut RpcConn,
        msg: &mut rustbus::message_builder::MarshalledMessage,
    ) -> Result<rustbus::message_builder::MarshalledMessage> {
        let what = msg.dynheader.member.clone().unwrap_or_default();
        let serial = conn
            .send_message(msg)
            .map_err(|e| bus_err(&what, e))?
            .write_all()
            .map_err(|e| bus_err(&what, e.1))?;
        // systemd 252 leaves a message that reached it in the same read as the client's
        // `BEGIN` unparsed until something else arrives (seen: the reply came only when the
        // client hung up, 10 s later); systemctl never meets it because it sends BEGIN before
        // the server's OK. So while no reply has come, a `Peer.Ping` every 50 ms wakes it;
        // replies are matched by serial, and the pings' go unread.
        let end = std::time::Instant::now() + JOB_TIMEOUT;
        let reply = loop {
            match conn.wait_response(serial, Timeout::Duration(KICK)) {
                Ok(r) => break r,
                Err(rustbus::connection::Error::TimedOut) if std::time::Instant::now() < end => {
                    let mut ping = MessageBuilder::new()
                        .call("Ping")
                        .with_interface("org.freedesktop.DBus.Peer")
                        .on("/org/freedesktop/systemd1")
                        .at("org.freedesktop.systemd1")
                        .build();
                    conn.send_message(&mut ping)
                        .map_err(|e| bus_err(&what, e))?
                        .write_all()
                        .map_err(|e| bus_err(&what, e.1))?;
                }
                Err(e) => return Err(bus_err(&what, e)),
            }
        };
        if reply.typ == MessageType::Error {
            let name = reply.dynheader.error_name.clone().unwrap_or_default();
            let text: String = reply.body.parser().get().unwrap_or_default();
            return Err(bus_err(&what, format!("{name}: {text}")));
        }
        Ok(reply)
    }

    fn call(
        &mut self,
        msg: &mut rustbus::message_builder::MarshalledMessage,
    ) -> Result<rustbus::message_builder::MarshalledMessage> {
        Self::call_on(&mut self.conn, msg)
    }

    /// Waits for the end of `job`; its result (`done`, `failed`, …).
    fn wait_job(&mut self, job: &str) -> Result<String> {
        let end = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(bus_err("wait for the job", format!("{job} took over 10 s")));
            }
            let sig = self
                .conn
                .wait_signal(Timeout::Duration(left))
                .map_err(|e| bus_err("wait for the job", e))?;
            if sig.dynheader.member.as_deref() != Some("JobRemoved") {
                continue;
            }
            let mut p = sig.body.parser();
            let Ok((_, path, _, result)) = p.get4::<u32, ObjectPath<String>, String, String>()
            else {
                continue;
            };
            if path.as_ref() == job {
                return Ok(result);
            }
        }
    }
}

/// Starts the scope with `pid` in it (systemd moves it there) and waits until it runs.
pub fn start(scope: &Scope, pid: i32, description: &str) -> Result<()> {
    let mut m = Manager::connect()?;
    let mut msg = Manager::method("StartTransientUnit");
    let props: Vec<(String, Value)> = vec![
        ("Description".into(), Value::Str(description.into())),
        ("Slice".into(), Value::Str(scope.slice.clone())),
        ("Delegate".into(), Value::Bool(true)),
        ("DefaultDependencies".into(), Value::Bool(false)),
        ("PIDs".into(), Value::Pids(vec![pid as u32])),
    ];
    let aux: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    msg.body
        .push_param2(scope.unit.as_str(), "replace")
        .and_then(|()| msg.body.push_param2(props, aux))
        .map_err(|e| bus_err("StartTransientUnit", e))?;
    let reply = m.call(&mut msg)?;
    let job: ObjectPath<String> = reply
        .body
        .parser()
        .get()
        .map_err(|e| bus_err("StartTransientUnit's reply", e))?;
    match m.wait_job(job.as_ref())?.as_str() {
        "done" => Ok(()),
        other => Err(bus_err(
            "StartTransientUnit",
            format!("starting {} ended \"{other}\"", scope.unit),
        )),
    }
}

/// Stops the scope (a unit that is gone already is fine) and waits until it has.
pub fn stop(unit: &str) -> Result<()> {
    let mut m = Manager::connect()?;
    let mut msg = Manager::method("StopUnit");
    msg.body
        .push_param2(unit, "replace")
        .map_err(|e| bus_err("StopUnit", e))?;
    let reply = match m.call(&mut msg) {
        Ok(r) => r,
        Err(e) if e.to_string().contains("NoSuchUnit") => return Ok(()),
        Err(e) => return Err(e),
    };
    let job: ObjectPath<String> = reply
        .body
        .parser()
        .get()
        .map_err(|e| bus_err("StopUnit's reply", e))?;
    m.wait_job(job.as_ref()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_paths() {
        let s = Scope::parse("system.slice:berth:abc", "x").unwrap();
        assert_eq!(s.unit, "berth-abc.scope");
        assert_eq!(s.slice, "system.slice");
        assert_eq!(
            s.cgroup().unwrap(),
            PathBuf::from("/system.slice/berth-abc.scope")
        );
        let s = Scope::parse(":cri:def", "x").unwrap();
        assert_eq!(
            (s.unit.as_str(), s.slice.as_str()),
            ("cri-def.scope", "system.slice")
        );
        let s = Scope::parse("kubepods-besteffort-pod1.slice:cri:c1", "x").unwrap();
        assert_eq!(
            s.cgroup().unwrap(),
            PathBuf::from(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-c1.scope"
            )
        );
        assert_eq!(Scope::parse("", "id1").unwrap().unit, "berth-id1.scope");
        for bad in [
            "/berth/x",
            "a:b",
            "notaslice:p:n",
            "a/b.slice:p:n",
            "x.slice:p:../n",
        ] {
            assert!(Scope::parse(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn expands_slices() {
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::from("/"));
        assert_eq!(
            expand_slice("a-b.slice").unwrap(),
            PathBuf::from("/a.slice/a-b.slice")
        );
        for bad in ["a", "-a.slice", "a-.slice", "a--b.slice", ".slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_managers_root() {
        let host = "12:pids:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n";
        assert_eq!(root_from(host).unwrap(), PathBuf::from("/"));
        let nested = "9:name=systemd:/berth-sdtest/init.scope\n0::/berth-sdtest/init.scope\n";
        assert_eq!(root_from(nested).unwrap(), PathBuf::from("/berth-sdtest"));
        assert_eq!(root_from("0::/init.scope\n").unwrap(), PathBuf::from("/"));
    }
}
