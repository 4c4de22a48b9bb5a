//! dockerd's zero values. The engine's types leave out what was never set; dockerd 20.10
//! writes every field of a container's `Config` and `HostConfig` and of an image's config,
//! with a zero value (`0`, `""`, `false`, `null`, `[]`) when unset, and clients count on it:
//! docker-py reads `attrs['HostConfig']['Memory']`, the docker CLI's `{{.HostConfig.Memory}}`
//! fails on a missing key. The answers are filled here, at the API edge, with what dockerd
//! writes for a container or image that does not set the field (its types, taken from
//! dockerd's own answers; `tests/e2e/api_shapes.rs` compares them).

use serde_json::{json, Value};

/// Adds each of `zero`'s keys that `v` lacks (or has as `null` where dockerd writes a
/// non-null zero).
fn fill(v: &mut Value, zero: Value) {
    let (Some(o), Value::Object(z)) = (v.as_object_mut(), zero) else {
        return;
    };
    for (k, zv) in z {
        match o.get(&k) {
            None => {
                o.insert(k, zv);
            }
            Some(Value::Null) if !zv.is_null() => {
                o.insert(k, zv);
            }
            Some(_) => {}
        }
    }
}

/// The fields of a container config (`Config` of a container, `Config` and
/// `ContainerConfig` of an image).
fn config_zero() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    })
}

/// A container's `Config`: dockerd writes `Labels` as `{}` when there are none, and an
/// empty `Env` as `null`.
pub fn container_config(v: &mut Value) {
    if v.get("Env")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        v["Env"] = Value::Null;
    }
    if v.get("Labels").is_none_or(Value::is_null) {
        v["Labels"] = json!({});
    }
    fill(v, config_zero());
}

/// An image's `Config` (and `ContainerConfig`, which dockerd still writes).
pub fn image_config(v: &mut Value) {
    fill(v, config_zero());
}

/// A container's `HostConfig`; `privileged` containers have no masked or read-only paths.
pub fn host_config(v: &mut Value, privileged: bool) {
    // dockerd stores a limit of 0 or less as no limit.
    if v.get("PidsLimit")
        .and_then(Value::as_i64)
        .is_some_and(|n| n <= 0)
    {
        v["PidsLimit"] = Value::Null;
    }
    let (masked, readonly) = if privileged {
        (Value::Null, Value::Null)
    } else {
        (
            json!(berth_engine::MASKED_PATHS),
            json!(berth_engine::READONLY_PATHS),
        )
    };
    fill(
        v,
        json!({
            "Binds": null, "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": "default", "PortBindings": {},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null,
            "CapDrop": null, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
            "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "private",
            "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
            "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
            "UTSMode": "", "UsernsMode": "", "ShmSize": 67_108_864, "Runtime": "runc",
            "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0,
            "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
            "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null, "CpuPeriod": 0, "CpuQuota": 0,
            "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
            "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
            "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
            "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
            "OomKillDisable": false, "PidsLimit": null, "Ulimits": null, "CpuCount": 0,
            "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": masked, "ReadonlyPaths": readonly,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_fields_stay_and_missing_ones_get_dockerds_zero() {
        let mut hc = json!({"Memory": 1024, "CapAdd": ["NET_ADMIN"], "Dns": null, "PidsLimit": 0});
        host_config(&mut hc, false);
        assert!(hc["PidsLimit"].is_null());
        assert_eq!(hc["Memory"], 1024);
        assert_eq!(hc["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(hc["Dns"], json!([]));
        assert_eq!(hc["CpuQuota"], 0);
        assert!(hc["MaskedPaths"].as_array().is_some_and(|a| !a.is_empty()));
        let mut p = json!({});
        host_config(&mut p, true);
        assert!(p["MaskedPaths"].is_null());
        let mut c = json!({"Cmd": ["sh"]});
        container_config(&mut c);
        assert_eq!(c["Labels"], json!({}));
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["WorkingDir"], "");
        let mut i = json!({"Cmd": ["sh"]});
        image_config(&mut i);
        assert!(i["Labels"].is_null());
    }
}
