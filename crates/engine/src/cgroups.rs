//! What the host's cgroups give containers, for `info`: the version that holds the
//! controllers, the layout berthd was told to use, and the controllers that can limit a
//! container.

pub use berth_shim::{favor_dynamic_modifications, CgroupHierarchies, CgroupLayout};

/// Who makes containers' cgroups (`native.cgroupdriver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupDriver {
    /// berth makes them, under `/berth/<id>`.
    #[default]
    Cgroupfs,
    /// systemd makes them, as transient scopes (`system.slice/berth-<id>.scope`), through
    /// its D-Bus API; berth writes the limits in a `container` cgroup inside.
    Systemd,
}

impl CgroupDriver {
    /// `cgroupfs` or `systemd`, as `info` and `native.cgroupdriver` name them.
    pub fn name(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }

    /// The OCI `linux.cgroupsPath` for container `id`.
    pub fn cgroups_path(self, id: &str) -> String {
        match self {
            CgroupDriver::Cgroupfs => format!("/berth/{id}"),
            CgroupDriver::Systemd => format!("system.slice:berth:{id}"),
        }
    }

    /// Whether this driver can work on this host: systemd must be the init system.
    pub fn check(self) -> Result<(), String> {
        if self == CgroupDriver::Systemd && !berth_shim::systemd_booted() {
            return Err(
                "the systemd cgroup driver needs systemd as the init system (PID 1), \
                        and it is not (/run/systemd/system is missing): use \
                        native.cgroupdriver=cgroupfs"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The cgroup facts `info` reports.
#[derive(Debug, Clone)]
pub struct CgroupInfo {
    /// 1 or 2: the hierarchy that holds the controllers.
    pub version: u8,
    /// `host` or `unified`.
    pub layout: CgroupLayout,
    /// Controllers that can limit a container (`devices` and `freezer` included).
    pub controllers: Vec<String>,
}

impl CgroupInfo {
    /// Reads the mounted hierarchies as a container in `layout` would use them.
    pub fn detect(layout: CgroupLayout) -> CgroupInfo {
        let Ok(h) = CgroupHierarchies::detect_for(layout) else {
            return CgroupInfo {
                version: 1,
                layout,
                controllers: Vec::new(),
            };
        };
        let version = if h.mode() == berth_shim::CgroupMode::Unified {
            2
        } else {
            1
        };
        CgroupInfo {
            version,
            layout,
            controllers: h.controllers(),
        }
    }

    /// Whether `controller` can be used.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// `host` or `unified`.
    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            CgroupLayout::Host => "host",
            CgroupLayout::Unified => "unified",
        }
    }
}
