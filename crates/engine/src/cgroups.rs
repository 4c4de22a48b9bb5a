//! What the host's cgroups give containers, for `info`: the version that holds the
//! controllers, the layout berthd was told to use, and the controllers that can limit a
//! container.

pub use berth_shim::{favor_dynamic_modifications, CgroupHierarchies, CgroupLayout};

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
