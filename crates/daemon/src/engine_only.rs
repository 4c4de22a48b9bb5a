//! What the engine offers the CRI front end that the Docker API does not have, refused at the
//! Docker API's edge in dockerd's words: the engine's `cri` log driver (a pod container's log
//! at a path the kubelet names) and a UTS namespace of another container.

use bollard_stubs::models::HostConfig;

use crate::http::bad;
use crate::ApiError;

/// Refuses a create body's engine-only settings.
pub(crate) fn refuse(hc: Option<&HostConfig>) -> Result<(), ApiError> {
    let driver = berth_engine::logconfig::CRI_DRIVER;
    if hc
        .and_then(|h| h.log_config.as_ref())
        .and_then(|l| l.typ.as_deref())
        == Some(driver)
    {
        return Err(bad(format!(
            "logger: no log driver named '{driver}' is registered"
        )));
    }
    // dockerd has only the host's UTS namespace or a container's own.
    if let Some(m) = hc
        .and_then(|h| h.uts_mode.as_deref())
        .filter(|m| !m.is_empty() && *m != "host")
    {
        return Err(bad(format!("invalid UTS mode: {m}")));
    }
    Ok(())
}
