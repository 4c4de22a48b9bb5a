//! Image config → container settings: what `docker run` takes from the image when the user does
//! not say otherwise, by dockerd's merge rules. A pure function, called by the engine's `create`.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Healthcheck, RunConfig};

/// `PATH` for a process whose image and user set none (added when the process starts, not
/// written into the container's config, as dockerd does).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The settings of a container's config that the image can supply. As input, what the user
/// asked for (`None`/empty: not set); as output, the merged settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub user: Option<String>,
    pub exposed_ports: BTreeSet<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    pub working_dir: Option<String>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
}

/// The merged settings and the process they start.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub settings: Settings,
    /// The executable: the entrypoint's first word, or the command's.
    pub path: String,
    /// The rest of the entrypoint, then the command.
    pub args: Vec<String>,
}

/// Neither the user nor the image gave a command (dockerd's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No command specified")]
pub struct NoCommand;

fn key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// dockerd's rules: each of user, working dir and stop signal comes from the image when the user
/// left it empty; exposed ports, volumes and labels are the union (the user's label wins); env is
/// the user's entries, then the image's whose names the user did not set; an empty entrypoint
/// takes the image's command when the user gave none, and the image's entrypoint unless the user
/// explicitly set an empty one; an entrypoint of `[""]` means "none"; a health check's unset
/// fields come from the image's.
pub fn merge(mut user: Settings, image: &RunConfig) -> Result<Merged, NoCommand> {
    if is_blank(&user.user) {
        user.user = image.user.clone();
    }
    user.exposed_ports
        .extend(image.exposed_ports.iter().flatten().map(|(k, _)| k.clone()));
    let image_env = image.env.iter().flatten();
    if user.env.is_empty() {
        user.env = image_env.cloned().collect();
    } else {
        let extra: Vec<String> = image_env
            .filter(|i| !user.env.iter().any(|u| key(u) == key(i)))
            .cloned()
            .collect();
        user.env.extend(extra);
    }
    for (k, v) in image.labels.iter().flatten() {
        user.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = image.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    user.healthcheck = match (user.healthcheck.take(), &image.healthcheck) {
        (None, i) => i.clone(),
        (Some(u), None) => Some(u),
        (Some(mut u), Some(i)) => {
            if u.test.as_ref().is_none_or(Vec::is_empty) {
                u.test = i.test.clone();
            }
            let fill = |mine: &mut Option<i64>, theirs: Option<i64>| {
                if mine.unwrap_or(0) == 0 {
                    *mine = theirs;
                }
            };
            fill(&mut u.interval, i.interval);
            fill(&mut u.timeout, i.timeout);
            fill(&mut u.start_period, i.start_period);
            fill(&mut u.start_interval, i.start_interval);
            fill(&mut u.retries, i.retries);
            Some(u)
        }
    };
    if is_blank(&user.working_dir) {
        user.working_dir = image.working_dir.clone();
    }
    user.volumes
        .extend(image.volumes.iter().flatten().map(|(k, _)| k.clone()));
    if is_blank(&user.stop_signal) {
        user.stop_signal = image.stop_signal.clone();
    }
    if user.entrypoint.as_deref() == Some(&[String::new()][..]) {
        user.entrypoint = None;
    }
    let mut argv: Vec<String> = user
        .entrypoint
        .iter()
        .flatten()
        .chain(user.cmd.iter().flatten())
        .cloned()
        .collect();
    if argv.is_empty() {
        return Err(NoCommand);
    }
    let path = argv.remove(0);
    Ok(Merged {
        settings: user,
        path,
        args: argv,
    })
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
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5, "Retries": 3}
        }))
        .unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn image_settings_fill_what_the_user_left_empty() {
        let m = merge(Settings::default(), &image()).unwrap();
        assert_eq!(m.path, "/entry");
        assert_eq!(m.args, ["serve", "--port", "80"]);
        let st = &m.settings;
        assert_eq!(st.env, ["PATH=/custom", "A=1", "B=2"]);
        assert_eq!(st.working_dir.as_deref(), Some("/app"));
        assert_eq!(st.user.as_deref(), Some("app"));
        assert_eq!(st.exposed_ports, BTreeSet::from(["80/tcp".to_string()]));
        assert_eq!(st.volumes, BTreeSet::from(["/data".to_string()]));
        assert_eq!(st.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(st.healthcheck.as_ref().unwrap().retries, Some(3));
    }

    #[test]
    fn user_settings_win_and_env_keeps_dockers_order() {
        let u = Settings {
            cmd: Some(s(&["other"])),
            env: s(&["A=9", "C=3"]),
            labels: [("y".to_string(), "user".to_string())].into(),
            exposed_ports: ["53/udp".to_string()].into(),
            healthcheck: Some(Healthcheck {
                interval: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = merge(u, &image()).unwrap();
        assert_eq!(m.path, "/entry");
        assert_eq!(m.args, ["other"]);
        // The user's entries first, then the image's the user did not name.
        assert_eq!(m.settings.env, ["A=9", "C=3", "PATH=/custom", "B=2"]);
        assert_eq!(m.settings.labels["y"], "user");
        assert_eq!(m.settings.labels["x"], "image");
        assert_eq!(m.settings.exposed_ports.len(), 2);
        let hc = m.settings.healthcheck.unwrap();
        assert_eq!(hc.test, Some(s(&["CMD", "true"])));
        assert_eq!(hc.interval, Some(7));
        assert_eq!(hc.retries, Some(3));
    }

    #[test]
    fn entrypoint_rules() {
        let u = Settings {
            entrypoint: Some(s(&["/bin/sh"])),
            ..Default::default()
        };
        let m = merge(u, &image()).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.len()),
            ("/bin/sh", 0),
            "a user entrypoint resets cmd"
        );
        // `--entrypoint ""` with a command: the command alone runs, the entrypoint is none.
        let u = Settings {
            entrypoint: Some(s(&[""])),
            cmd: Some(s(&["echo", "hi"])),
            ..Default::default()
        };
        let m = merge(u, &image()).unwrap();
        assert_eq!((m.path.as_str(), m.args.clone()), ("echo", s(&["hi"])));
        assert_eq!(m.settings.entrypoint, None);
        // An explicitly empty entrypoint keeps the image's command but not its entrypoint.
        let u = Settings {
            entrypoint: Some(vec![]),
            ..Default::default()
        };
        let m = merge(u, &image()).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.clone()),
            ("serve", s(&["--port", "80"]))
        );
    }

    #[test]
    fn nothing_to_run_is_refused() {
        assert_eq!(
            merge(Settings::default(), &RunConfig::default()),
            Err(NoCommand)
        );
        let u = Settings {
            entrypoint: Some(s(&[""])),
            ..Default::default()
        };
        assert_eq!(merge(u, &RunConfig::default()), Err(NoCommand));
    }
}
