//! Command-line mistakes reported as the docker CLI reports them: clap parses, and its errors
//! are reworded to docker's lines and exit codes (125 for a flag it does not know or a bad
//! flag value, 1 for missing or extra arguments and unknown commands), which scripts written
//! for `docker` test. `-h` asks for help, as docker still takes it, except in `run` and
//! `create`, where it is `--hostname`.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, Error, ErrorKind};

/// `args` with a lone `-h` turned into `--help` where it is not `--hostname`; says, as docker
/// does, that the shorthand is deprecated.
pub fn help_shorthand(mut args: Vec<OsString>) -> Vec<OsString> {
    let mut words = args.iter().skip(1).enumerate();
    let mut command = Vec::new();
    // The command path: words before the first flag, skipping the global -H and its value.
    while let Some((_, w)) = words.next() {
        match w.to_str() {
            Some("-H" | "--host") => {
                words.next();
            }
            Some(w) if w.starts_with('-') => break,
            Some(w) if command.len() < 2 => command.push(w.to_string()),
            _ => break,
        }
    }
    let hostname = command.iter().any(|c| c == "run" || c == "create");
    if !hostname {
        if let Some(h) = args.iter_mut().skip(1).find(|a| *a == "-h") {
            eprintln!("Flag shorthand -h has been deprecated, use --help");
            *h = OsString::from("--help");
        }
    }
    args
}

fn context(e: &Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The names of the subcommands `argv` goes down through (`berth -H x container run …` →
/// `["container", "run"]`): words that name a subcommand, skipping flags and their values.
fn subcommand_path(cli: &clap::Command, argv: &[OsString]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cmd = cli;
    for w in argv.iter().skip(1).filter_map(|w| w.to_str()) {
        if w.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(w) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
            }
            None if cmd.has_subcommands() => continue,
            None => break,
        }
    }
    path
}

/// The subcommand `argv` names.
fn subcommand<'a>(cli: &'a clap::Command, argv: &[OsString]) -> &'a clap::Command {
    subcommand_path(cli, argv).iter().fold(cli, |c, n| {
        c.find_subcommand(n).expect("a path of subcommands")
    })
}

/// The usage line ("Usage:  berth run [OPTIONS] <IMAGE> [COMMAND]...") and the command path
/// ("berth run") of the command the error is about: clap's usage context, or the usage of the
/// subcommand `argv` names (clap leaves it out of value errors).
fn usage(e: &Error, cli: &clap::Command, argv: &[OsString]) -> (String, String) {
    let line = context(e, ContextKind::Usage)
        .map(|u| u.trim().trim_start_matches("Usage:").trim().to_string())
        .unwrap_or_else(|| {
            let path = subcommand_path(cli, argv);
            let mut cli = cli.clone();
            cli.build();
            let mut cmd = &mut cli;
            for n in path {
                cmd = cmd.find_subcommand_mut(&n).expect("a path of subcommands");
            }
            let usage = cmd.render_usage().to_string();
            usage.trim().trim_start_matches("Usage:").trim().to_string()
        });
    let path: Vec<&str> = line
        .split_whitespace()
        .take_while(|w| !w.starts_with('[') && !w.starts_with('<'))
        .collect();
    (format!("Usage:  {line}"), path.join(" "))
}

/// The flag as docker names it in errors: `-m, --memory`, or `--cpus` without a shorthand.
fn flag_name(cli: &clap::Command, argv: &[OsString], clap_arg: &str) -> String {
    let long = clap_arg.split(" <").next().unwrap_or(clap_arg);
    let name = long.trim_start_matches('-');
    let short = subcommand(cli, argv)
        .get_arguments()
        .find(|a| a.get_long() == Some(name) || a.get_id() == name)
        .and_then(|a| a.get_short());
    match (short, long.starts_with("--")) {
        (Some(s), true) => format!("-{s}, {long}"),
        _ => long.to_string(),
    }
}

/// Prints `e` as the docker CLI words such a mistake; the exit code. `cli` and `argv` name
/// the subcommand and its flags where clap's error does not.
pub fn report(e: &Error, cli: &clap::Command, argv: &[OsString]) -> i32 {
    let (usage, path) = usage(e, cli, argv);
    let more = format!("Run '{path} --help' for more information");
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            0
        }
        ErrorKind::UnknownArgument => {
            let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let what = match arg.strip_prefix('-') {
                Some(s) if !s.starts_with('-') => format!(
                    "unknown shorthand flag: '{}' in {arg}",
                    s.chars().next().unwrap_or('?')
                ),
                _ => format!("unknown flag: {arg}"),
            };
            eprintln!("{what}\n\n{usage}\n\n{more}");
            125
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let flag = flag_name(cli, argv, &arg);
            let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "invalid value".into());
            eprintln!("invalid argument {value:?} for {flag:?} flag: {why}\n\n{usage}\n\n{more}");
            125
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues => {
            eprintln!(
                "berth: '{path}' requires at least 1 argument\n\n{usage}\n\nSee '{path} --help' for more information"
            );
            1
        }
        ErrorKind::InvalidSubcommand => {
            let name = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            eprintln!(
                "berth: unknown command: {path} {name}\n\nRun '{path} --help' for more information"
            );
            1
        }
        _ => {
            let _ = e.print();
            125
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn h_is_help_except_where_it_is_hostname() {
        assert_eq!(
            help_shorthand(os(&["berth", "images", "-h"])),
            os(&["berth", "images", "--help"])
        );
        assert_eq!(
            help_shorthand(os(&["berth", "-H", "unix:///s", "network", "ls", "-h"])),
            os(&["berth", "-H", "unix:///s", "network", "ls", "--help"])
        );
        for keep in [
            &["berth", "run", "-h", "box", "busybox"][..],
            &["berth", "container", "create", "-h", "box", "busybox"],
        ] {
            assert_eq!(help_shorthand(os(keep)), os(keep));
        }
    }
}
