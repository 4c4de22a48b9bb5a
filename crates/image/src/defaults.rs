//! Image config → container defaults: what `docker run` takes from the image when the user does
//! not say otherwise. A pure function, used by the engine.

use std::collections::BTreeMap;

use crate::config::{Healthcheck, RunConfig};

/// What the user asked for on `run`, each field optional.
#[derive(Debug, Clone, Default)]
pub struct UserRun {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// The resolved container settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerDefaults {
    /// entrypoint + cmd, the process args.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: String,
    pub healthcheck: Option<Healthcheck>,
    pub labels: BTreeMap<String, String>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// Docker's rules: a user entrypoint resets the image's cmd; a user cmd replaces the image's
/// cmd; user env entries override image entries of the same name; PATH is set if nobody set it;
/// user labels override image labels.
pub fn resolve(image: &RunConfig, user: &UserRun) -> ContainerDefaults {
    let entrypoint = user
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&user.entrypoint, &user.cmd) {
        (_, Some(c)) => c.clone(),
        (Some(_), None) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in &user.env {
        let k = key(e);
        match env.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if !env.iter().any(|e| key(e) == "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(user.labels.clone());
    ContainerDefaults {
        args: entrypoint.into_iter().chain(cmd).collect(),
        env,
        working_dir: user
            .working_dir
            .clone()
            .or_else(|| image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: user
            .user
            .clone()
            .or_else(|| image.user.clone())
            .unwrap_or_default(),
        exposed_ports: image
            .exposed_ports
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
        volumes: image
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
        stop_signal: user
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        healthcheck: image.healthcheck.clone(),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> RunConfig {
        serde_json::from_value(serde_json::json!({
            "Entrypoint": ["/entry"], "Cmd": ["serve", "--port", "80"],
            "Env": ["PATH=/custom", "A=1", "B=2"], "WorkingDir": "/app", "User": "app",
            "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT",
            "Labels": {"x": "image", "y": "image"},
            "Healthcheck": {"Test": ["CMD", "true"]}
        }))
        .unwrap()
    }

    #[test]
    fn image_defaults_apply() {
        let d = resolve(&image(), &UserRun::default());
        assert_eq!(d.args, ["/entry", "serve", "--port", "80"]);
        assert_eq!(d.env, ["PATH=/custom", "A=1", "B=2"]);
        assert_eq!(d.working_dir, "/app");
        assert_eq!(d.user, "app");
        assert_eq!(d.exposed_ports, ["80/tcp"]);
        assert_eq!(d.volumes, ["/data"]);
        assert_eq!(d.stop_signal, "SIGQUIT");
        assert!(d.healthcheck.is_some());
    }

    #[test]
    fn user_settings_win() {
        let u = UserRun {
            cmd: Some(vec!["other".into()]),
            env: vec!["A=9".into(), "C=3".into()],
            labels: [("y".to_string(), "user".to_string())].into(),
            ..Default::default()
        };
        let d = resolve(&image(), &u);
        assert_eq!(
            d.args,
            ["/entry", "other"],
            "a user cmd keeps the image entrypoint"
        );
        assert_eq!(d.env, ["PATH=/custom", "A=9", "B=2", "C=3"]);
        assert_eq!(d.labels["x"], "image");
        assert_eq!(d.labels["y"], "user");
        let u = UserRun {
            entrypoint: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolve(&image(), &u).args,
            ["/bin/sh"],
            "a user entrypoint resets cmd"
        );
    }

    #[test]
    fn empty_image_gets_path_and_root_dir() {
        let d = resolve(&RunConfig::default(), &UserRun::default());
        assert_eq!(d.env, [DEFAULT_PATH]);
        assert_eq!(d.working_dir, "/");
        assert_eq!(d.stop_signal, "SIGTERM");
    }
}
