//! Instructions checked and typed: which flags each takes, how many arguments, the exec or
//! shell form, `RUN --mount` specifications. Variables are not expanded here: that happens
//! when a step runs, with the variables in scope at that point of its stage.

use crate::dockerfile::{Args, Heredoc, Instruction, ParseError};

/// A command: the exec form or the shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// One `RUN --mount=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// `bind` (the default), `cache`, `tmpfs` or `secret`.
    pub typ: String,
    pub target: String,
    /// Every other `key[=value]`, as written.
    pub options: Vec<(String, Option<String>)>,
}

/// A checked instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Run {
        command: Command,
        mounts: Vec<RunMount>,
        network: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    /// COPY and ADD.
    Copy {
        add: bool,
        /// Sources then destination, unexpanded words (or the exec form's strings).
        args: Vec<String>,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        link: bool,
        heredocs: Vec<Heredoc>,
        /// The JSON form: each argument is one word (variables are still expanded).
        json: bool,
    },
    /// ENV and LABEL: the raw `key=value` text.
    Env(String),
    Label(String),
    Arg(String),
    Workdir(String),
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    Expose(String),
    Volume(Vec<String>),
    Shell(Vec<String>),
    StopSignal(String),
    /// `HEALTHCHECK NONE` is `None`.
    Healthcheck(Option<(Vec<(String, String)>, Command)>),
    /// The instruction to run when a later build uses this image as its base.
    Onbuild(String),
    Maintainer(String),
}

fn error(i: &Instruction, file: &str, message: String) -> ParseError {
    ParseError {
        file: file.to_string(),
        line: i.line,
        column: 1,
        message,
    }
}

fn command(args: &Args) -> Command {
    match args {
        Args::Json(v) => Command::Exec(v.clone()),
        Args::Text(t) => Command::Shell(t.clone()),
    }
}

fn text(i: &Instruction) -> String {
    match &i.args {
        Args::Text(t) => t.clone(),
        Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// `type=cache,target=/root/.cache,sharing=locked`.
pub fn parse_mount(spec: &str) -> Result<RunMount, String> {
    let mut typ = "bind".to_string();
    let mut target = None;
    let mut options = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        match k.as_str() {
            "type" => typ = v.ok_or("type needs a value")?,
            "target" | "dst" | "destination" => target = v,
            "source" | "src" | "from" | "id" | "sharing" | "mode" | "uid" | "gid" | "size"
            | "required" | "env" => options.push((k, v)),
            "ro" | "readonly" | "rw" | "readwrite" => options.push((k, v)),
            other => return Err(format!("unexpected key '{other}' in '{field}'")),
        }
    }
    if !matches!(typ.as_str(), "bind" | "cache" | "tmpfs" | "secret") {
        return Err(format!("unsupported mount type {typ:?}"));
    }
    let target = match (target, typ.as_str()) {
        (Some(t), _) => t,
        // A secret's default target is /run/secrets/<id>.
        (None, "secret") => {
            let id = options
                .iter()
                .find(|(k, _)| k == "id" || k == "source" || k == "src")
                .and_then(|(_, v)| v.clone())
                .ok_or("a secret mount needs an id")?;
            format!("/run/secrets/{id}")
        }
        (None, _) => return Err("mount needs a target".into()),
    };
    if let Some((_, Some(s))) = options.iter().find(|(k, _)| k == "sharing") {
        if !matches!(s.as_str(), "shared" | "private" | "locked") {
            return Err(format!("unsupported sharing value {s:?}"));
        }
    }
    Ok(RunMount {
        typ,
        target,
        options,
    })
}

/// Checks `i` (from stage instructions; FROM is not one) and types it.
pub fn step(i: &Instruction, file: &str) -> Result<Step, ParseError> {
    let err = |m: String| error(i, file, m);
    let allowed: &[&str] = match i.keyword.as_str() {
        "RUN" => &["mount", "network", "security"],
        "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "ADD" => &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
        ],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    };
    for (k, _) in &i.flags {
        if !allowed.contains(&k.as_str()) {
            return Err(err(format!("unknown flag: {k}")));
        }
    }
    let flag = |name: &str| {
        i.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    };
    let t = text(i);
    Ok(match i.keyword.as_str() {
        "RUN" => {
            let mut mounts = Vec::new();
            for (k, v) in &i.flags {
                if k == "mount" {
                    mounts.push(
                        parse_mount(v.as_deref().unwrap_or_default())
                            .map_err(|m| err(format!("--mount: {m}")))?,
                    );
                }
            }
            let network = flag("network");
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(err(format!("unsupported network mode {n:?}")));
                }
            }
            if t.is_empty() && i.heredocs.is_empty() {
                return Err(err("RUN requires at least one argument".into()));
            }
            Step::Run {
                command: command(&i.args),
                mounts,
                network,
                heredocs: i.heredocs.clone(),
            }
        }
        "COPY" | "ADD" => {
            let args = match &i.args {
                Args::Json(v) => v.clone(),
                Args::Text(t) => split_unexpanded(t),
            };
            if args.len() + i.heredocs.len() < 2 {
                return Err(err(format!(
                    "{} requires at least two arguments, but only one was provided. Destination could not be determined",
                    i.keyword
                )));
            }
            let add = i.keyword == "ADD";
            Step::Copy {
                add,
                args,
                from: flag("from"),
                chown: flag("chown"),
                chmod: flag("chmod"),
                link: i
                    .flags
                    .iter()
                    .any(|(k, v)| k == "link" && v.as_deref() != Some("false")),
                heredocs: i.heredocs.clone(),
                json: matches!(i.args, Args::Json(_)),
            }
        }
        "ENV" | "LABEL" => {
            if i.keyword == "ENV" && !t.contains('=') && t.split_whitespace().count() < 2 {
                return Err(err("ENV must have two arguments".into()));
            }
            if i.keyword == "ENV" {
                Step::Env(t)
            } else {
                Step::Label(t)
            }
        }
        "ARG" => Step::Arg(t),
        "WORKDIR" => Step::Workdir(t),
        "USER" => Step::User(t),
        "CMD" => Step::Cmd(command(&i.args)),
        "ENTRYPOINT" => Step::Entrypoint(command(&i.args)),
        "EXPOSE" => Step::Expose(t),
        "VOLUME" => Step::Volume(match &i.args {
            Args::Json(v) => v.clone(),
            Args::Text(t) => split_unexpanded(t),
        }),
        "SHELL" => match &i.args {
            Args::Json(v) if !v.is_empty() => Step::Shell(v.clone()),
            _ => return Err(err("SHELL requires the arguments to be in JSON form".into())),
        },
        "STOPSIGNAL" => Step::StopSignal(t),
        "MAINTAINER" => Step::Maintainer(t),
        "ONBUILD" => {
            let inner = t
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match inner.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err(format!("{inner} isn't allowed as an ONBUILD trigger")))
                }
                k if crate::dockerfile::KEYWORDS.contains(&k) => Step::Onbuild(t),
                k => return Err(err(format!("unknown instruction in ONBUILD: {k}"))),
            }
        }
        "HEALTHCHECK" => {
            let upper = t.trim_start().to_ascii_uppercase();
            if upper == "NONE" {
                if !i.flags.is_empty() {
                    return Err(err("options cannot be given with HEALTHCHECK NONE".into()));
                }
                Step::Healthcheck(None)
            } else if let Some(rest) = upper.strip_prefix("CMD") {
                let offset = t.len() - rest.len();
                let cmd_text = t[offset..].trim();
                let cmd = if cmd_text.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(cmd_text)
                        .map(Command::Exec)
                        .unwrap_or_else(|_| Command::Shell(cmd_text.to_string()))
                } else {
                    Command::Shell(cmd_text.to_string())
                };
                let opts = i
                    .flags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                    .collect();
                Step::Healthcheck(Some((opts, cmd)))
            } else {
                return Err(err("HEALTHCHECK takes CMD <command> or NONE".into()));
            }
        }
        other => return Err(err(format!("{other} cannot be used here"))),
    })
}

/// Words at unquoted blanks, quotes kept (expansion happens when the step runs).
fn split_unexpanded(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quote) = (String::new(), None::<char>);
    for c in t.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c)
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c)
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn steps(t: &str) -> Result<Vec<Step>, ParseError> {
        let d = parse(t, "Dockerfile")?;
        d.instructions
            .iter()
            .map(|i| step(i, "Dockerfile"))
            .collect()
    }

    #[test]
    fn typed_steps() {
        let s = steps(
            "RUN --mount=type=cache,target=/root/.cache,sharing=locked --network=none make\nCOPY --from=build --chown=app:app --link a \"b c\" /dst/\nADD <<EOF /etc/motd\nhi\nEOF\nCMD [\"sh\"]\nSHELL [\"/bin/bash\", \"-c\"]\nHEALTHCHECK --interval=5s CMD curl -f http://localhost/\nHEALTHCHECK NONE\nONBUILD RUN echo later\nVOLUME /a /b\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n",
        )
        .unwrap();
        match &s[0] {
            Step::Run {
                mounts,
                network,
                command,
                ..
            } => {
                assert_eq!(mounts[0].typ, "cache");
                assert_eq!(mounts[0].target, "/root/.cache");
                assert_eq!(network.as_deref(), Some("none"));
                assert_eq!(command, &Command::Shell("make".into()));
            }
            other => panic!("{other:?}"),
        }
        match &s[1] {
            Step::Copy {
                args,
                from,
                chown,
                link,
                add,
                ..
            } => {
                assert_eq!(
                    args,
                    &vec!["a".to_string(), "\"b c\"".into(), "/dst/".into()]
                );
                assert_eq!(from.as_deref(), Some("build"));
                assert_eq!(chown.as_deref(), Some("app:app"));
                assert!(*link && !*add);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&s[2], Step::Copy { add: true, heredocs, .. } if heredocs.len() == 1));
        assert_eq!(s[3], Step::Cmd(Command::Exec(vec!["sh".into()])));
        assert_eq!(s[4], Step::Shell(vec!["/bin/bash".into(), "-c".into()]));
        assert!(
            matches!(&s[5], Step::Healthcheck(Some((o, Command::Shell(c)))) if o[0].0 == "interval" && c.starts_with("curl"))
        );
        assert_eq!(s[6], Step::Healthcheck(None));
        assert_eq!(s[7], Step::Onbuild("RUN echo later".into()));
        assert_eq!(s[8], Step::Volume(vec!["/a".into(), "/b".into()]));
        assert!(
            matches!(&s[9], Step::Run { mounts, .. } if mounts[0].target == "/run/secrets/tok")
        );
    }

    #[test]
    fn docker_errors_with_the_line() {
        let bad = |t: &str, words: &str| {
            let e = steps(t).unwrap_err();
            assert!(e.message.contains(words), "{t:?}: {e}");
            e.line
        };
        assert_eq!(bad("COPY onlyone\n", "requires at least two arguments"), 1);
        assert_eq!(
            bad("RUN true\nCOPY --bogus a b\n", "unknown flag: bogus"),
            2
        );
        assert_eq!(
            bad(
                "RUN --mount=type=nfs,target=/x true\n",
                "unsupported mount type"
            ),
            1
        );
        assert_eq!(bad("RUN --mount=type=cache true\n", "needs a target"), 1);
        assert_eq!(
            bad("RUN --network=bridge true\n", "unsupported network mode"),
            1
        );
        assert_eq!(bad("SHELL /bin/sh -c\n", "JSON form"), 1);
        assert_eq!(bad("ONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"), 1);
        assert_eq!(
            bad("ONBUILD FROM x\n", "isn't allowed as an ONBUILD trigger"),
            1
        );
        assert_eq!(
            bad("HEALTHCHECK --interval=1s NONE\n", "cannot be given"),
            1
        );
        assert_eq!(bad("HEALTHCHECK curl\n", "CMD <command> or NONE"), 1);
        assert_eq!(bad("ENV lonely\n", "two arguments"), 1);
    }
}
