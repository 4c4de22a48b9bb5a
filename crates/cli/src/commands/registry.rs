//! `berth pull`, `push`, `login`, `logout`.
//!
//! Pull and push render the daemon's JSON progress stream: on a terminal one progress bar per
//! layer (indicatif), otherwise docker's plain `<id>: <status>` lines without byte counts.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::credentials::{key_for, registry_of, server_host, Auth, ConfigFile};

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable (os[/arch[/variant]]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image verification (accepted for docker compatibility; berth does not sign).
    #[arg(long = "disable-content-trust", default_value_t = true, hide = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long = "disable-content-trust", default_value_t = true, hide = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Registry server (default: docker.io).
    pub server: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry server (default: docker.io).
    pub server: Option<String>,
}

/// `name` → (repository, tag or digest). A name without either has `None`.
fn split_reference(name: &str) -> (String, Option<String>) {
    if let Some((repo, d)) = name.split_once('@') {
        return (repo.to_string(), Some(d.to_string()));
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (
            name[..last_slash + i].to_string(),
            Some(name[last_slash + i + 1..].to_string()),
        ),
        None => (name.to_string(), None),
    }
}

/// docker's fully qualified form: `busybox` → `docker.io/library/busybox`.
fn qualified(repo: &str) -> String {
    if registry_of(repo) != "docker.io" {
        return repo.to_string();
    }
    let path = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    if path.contains('/') {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/library/{path}")
    }
}

fn auth_header(reference: &str) -> anyhow::Result<String> {
    let host = registry_of(reference);
    let cfg = ConfigFile::load()?;
    Ok(match cfg.get(&host)? {
        Some(a) => a.header(&key_for(&host)),
        // docker sends an empty AuthConfig.
        None => base64_empty(),
    })
}

fn base64_empty() -> String {
    "e30=".into()
}

/// Where progress goes: stdout for `pull` and `push`, stderr for the pull that `run` and
/// `create` make (their stdout is the container's id or output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    Stdout,
    Stderr,
}

/// Renders a progress stream; returns its `aux` messages. An `error` message ends it with
/// that error; `stream` messages are printed as they are, quiet or not.
pub(crate) async fn render(
    res: hyper::Response<hyper::body::Incoming>,
    quiet: bool,
    to: Out,
) -> anyhow::Result<Vec<Value>> {
    let tty = !quiet
        && match to {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        };
    let multi = indicatif::MultiProgress::with_draw_target(match to {
        Out::Stdout => indicatif::ProgressDrawTarget::stdout(),
        Out::Stderr => indicatif::ProgressDrawTarget::stderr(),
    });
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    // docker's line: `id: Status [====>   ]  1.2MB/20.01MB` (decimal sizes, four digits).
    let docker_size = |n: u64| crate::values::size_with_precision(n as f64, 4);
    let style = indicatif::ProgressStyle::with_template("{prefix}: {msg} [{bar:51}] {sizes}")
        .expect("template")
        .progress_chars("=> ")
        .with_key(
            "sizes",
            move |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let (c, t) = (s.pos(), s.len().unwrap_or(0));
                let _ = write!(w, "{:>8}/{}", docker_size(c), docker_size(t));
            },
        );
    let plain = indicatif::ProgressStyle::with_template("{prefix}: {msg}").expect("template");
    let mut aux = Vec::new();
    let mut body = res.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Box<dyn Write> = match to {
        Out::Stdout => Box::new(std::io::stdout()),
        Out::Stderr => Box::new(std::io::stderr()),
    };
    let mut error = None;
    loop {
        let frame = match body.frame().await {
            Some(f) => f.context("reading the daemon's progress stream")?,
            None => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let lines: Vec<u8> = buf.drain(..=pos).collect();
            for l in lines.lines().map_while(Result::ok) {
                let l = l.trim();
                if l.is_empty() {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(l) else {
                    continue;
                };
                if let Some(e) = v["error"].as_str() {
                    error = Some(e.to_string());
                    continue;
                }
                if !v["aux"].is_null() {
                    aux.push(v["aux"].clone());
                    continue;
                }
                if let Some(s) = v["stream"].as_str() {
                    // Below the bars, as docker prints it: they are done by then.
                    if !bars.is_empty() {
                        for (_, b) in bars.drain() {
                            b.abandon();
                        }
                        // The cursor is still on the last bar's line.
                        writeln!(out)?;
                    }
                    write!(out, "{s}")?;
                    out.flush()?;
                    continue;
                }
                if quiet {
                    continue;
                }
                let status = v["status"].as_str().unwrap_or_default();
                let id = v["id"].as_str();
                let detail = &v["progressDetail"];
                let bytes = detail["current"].as_u64().zip(detail["total"].as_u64());
                if tty {
                    match id {
                        Some(id) if status.starts_with("Pulling from") => {
                            multi.println(format!("{id}: {status}"))?;
                        }
                        Some(id) => {
                            let bar = bars.entry(id.to_string()).or_insert_with(|| {
                                let b = multi.add(indicatif::ProgressBar::new(0));
                                b.set_style(plain.clone());
                                b.set_prefix(id.to_string());
                                b
                            });
                            if let Some((c, t)) = bytes {
                                bar.set_style(style.clone());
                                bar.set_length(t);
                                bar.set_position(c);
                            } else {
                                bar.set_style(plain.clone());
                            }
                            bar.set_message(status.to_string());
                        }
                        None => multi.println(status)?,
                    }
                } else if bytes.is_none() {
                    // docker leaves byte counts out of non-terminal output.
                    match id {
                        Some(id) => writeln!(out, "{id}: {status}")?,
                        None => writeln!(out, "{status}")?,
                    }
                }
            }
        }
    }
    for b in bars.values() {
        b.abandon();
    }
    if let Some(e) = error {
        anyhow::bail!("{e}");
    }
    Ok(aux)
}

/// The tag to ask for, as the docker CLI decides it: the one given; none with `--all-tags`
/// (the daemon then takes every tag); else `latest`, said so.
fn default_tag(tag: Option<String>, all_tags: bool, quiet: bool) -> anyhow::Result<Option<String>> {
    match tag {
        Some(_) if all_tags => anyhow::bail!("tag can't be used with --all-tags/-a"),
        Some(t) => Ok(Some(t)),
        None if all_tags => Ok(None),
        None => {
            if !quiet {
                println!("Using default tag: latest");
            }
            Ok(Some("latest".into()))
        }
    }
}

pub async fn pull(api: &Api, a: PullArgs) -> anyhow::Result<i32> {
    let (repo, tag) = split_reference(&a.name);
    let tag = default_tag(tag, a.all_tags, a.quiet)?;
    let mut path = format!("/images/create?fromImage={}", q(&repo));
    if let Some(t) = &tag {
        path.push_str(&format!("&tag={}", q(t)));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", q(p)));
    }
    let auth = auth_header(&repo)?;
    let res = api
        .stream_with(Method::POST, &path, &[("X-Registry-Auth", auth)], None)
        .await?;
    render(res, a.quiet, Out::Stdout).await?;
    let full = qualified(&repo);
    match &tag {
        Some(t) if t.starts_with("sha256:") => println!("{full}@{t}"),
        Some(t) => println!("{full}:{t}"),
        None => println!("{full}"),
    }
    Ok(0)
}

/// The pull `run` and `create` make of a missing image (of any, with `--pull always`): the
/// tag defaults to `latest` without saying so, and the progress goes to stderr, as with the
/// docker CLI.
pub(crate) async fn pull_for_run(
    api: &Api,
    reference: &str,
    platform: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    let (repo, tag) = split_reference(reference);
    let tag = tag.unwrap_or_else(|| "latest".into());
    let mut path = format!("/images/create?fromImage={}&tag={}", q(&repo), q(&tag));
    if let Some(p) = platform {
        path.push_str(&format!("&platform={}", q(p)));
    }
    let auth = auth_header(&repo)?;
    let res = api
        .stream_with(Method::POST, &path, &[("X-Registry-Auth", auth)], None)
        .await?;
    render(res, quiet, Out::Stderr).await?;
    Ok(())
}

/// A reference as docker names it in "Unable to find image": the tag `latest` made explicit.
pub(crate) fn familiar_with_tag(reference: &str) -> String {
    match split_reference(reference) {
        (_, Some(_)) => reference.to_string(),
        (repo, None) => format!("{repo}:latest"),
    }
}

pub async fn push(api: &Api, a: PushArgs) -> anyhow::Result<i32> {
    let (repo, tag) = split_reference(&a.name);
    if tag.as_deref().is_some_and(|t| t.starts_with("sha256:")) {
        anyhow::bail!("cannot push a digest reference");
    }
    let tag = default_tag(tag, a.all_tags, a.quiet)?;
    let mut path = format!("/images/{repo}/push");
    if let Some(t) = &tag {
        path.push_str(&format!("?tag={}", q(t)));
    }
    let auth = auth_header(&repo)?;
    let res = api
        .stream_with(Method::POST, &path, &[("X-Registry-Auth", auth)], None)
        .await?;
    let aux = render(res, a.quiet, Out::Stdout).await?;
    if a.quiet {
        for x in aux {
            if let Some(t) = x["Tag"].as_str() {
                println!("{}:{t}", qualified(&repo));
            }
        }
    }
    Ok(0)
}

fn read_secret(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &quiet);
    }
    let mut s = String::new();
    let r = stdin.lock().read_line(&mut s);
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, t);
    }
    eprintln!();
    r?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn login(api: &Api, a: LoginArgs) -> anyhow::Result<i32> {
    let host = server_host(a.server.as_deref());
    let interactive = std::io::stdin().is_terminal();
    if a.password.is_some() && a.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None if interactive && !a.password_stdin => {
            eprint!("Username: ");
            std::io::stderr().flush()?;
            let mut s = String::new();
            std::io::stdin().lock().read_line(&mut s)?;
            s.trim().to_string()
        }
        None if a.password_stdin => anyhow::bail!("Must provide --username with --password-stdin"),
        None => anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device"),
    };
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let password = match a.password {
        Some(p) => p,
        None if a.password_stdin => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
        None if interactive => read_secret("Password: ")?,
        None => anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        anyhow::bail!("Error: Non-null Username Required");
    }
    if password.is_empty() {
        anyhow::bail!("Error: Password Required");
    }
    let key = key_for(&host);
    let body = json!({"username": username, "password": password, "serveraddress": key});
    let v = api.json(Method::POST, "/auth", Some(&body)).await?;
    let mut cfg = ConfigFile::load()?;
    let auth = Auth {
        username,
        password,
        identity_token: v["IdentityToken"].as_str().unwrap_or_default().to_string(),
    };
    cfg.store(&host, &auth)?;
    if std::fs::metadata(&cfg.path).is_ok() {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            cfg.path.display()
        );
    }
    println!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

pub async fn logout(a: LogoutArgs) -> anyhow::Result<i32> {
    let host = server_host(a.server.as_deref());
    let key = key_for(&host);
    let mut cfg = ConfigFile::load()?;
    if cfg.erase(&host)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_qualifies_references() {
        assert_eq!(split_reference("busybox"), ("busybox".into(), None));
        assert_eq!(
            split_reference("busybox:1"),
            ("busybox".into(), Some("1".into()))
        );
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app".into(), None)
        );
        assert_eq!(
            split_reference("localhost:5000/app:v2"),
            ("localhost:5000/app".into(), Some("v2".into()))
        );
        assert_eq!(
            split_reference("a/b@sha256:00"),
            ("a/b".into(), Some("sha256:00".into()))
        );
        assert_eq!(qualified("busybox"), "docker.io/library/busybox");
        assert_eq!(qualified("user/app"), "docker.io/user/app");
        assert_eq!(qualified("localhost:5000/app"), "localhost:5000/app");
    }
}
