//! The image of `run` and `create`, pulled as the docker CLI pulls it: `--pull missing` (the
//! default) pulls when the daemon answers "No such image" and creates again, `always` pulls
//! first, `never` lets the daemon's error stand. The progress goes to stderr (`-q` silences
//! it), so that stdout stays the container's id or output.

use crate::api::{Api, DaemonError};
use crate::commands::registry::{familiar_with_tag, pull_for_run};

use super::run::{create_container, CreateArgs};

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl PullPolicy {
    /// docker's values and its words for a wrong one.
    pub fn parse(s: &str) -> anyhow::Result<PullPolicy> {
        match s {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => anyhow::bail!(
                "invalid pull option: '{s}': must be one of \"always\", \"missing\" or \"never\""
            ),
        }
    }
}

/// Whether the daemon said the image is not there.
fn missing_image(e: &anyhow::Error) -> bool {
    e.downcast_ref::<DaemonError>().is_some_and(|d| {
        d.status == hyper::StatusCode::NOT_FOUND && d.message.starts_with("No such image")
    })
}

/// Creates the container, pulling its image as `--pull` says; its id.
pub(crate) async fn create_pulling(
    api: &Api,
    a: &CreateArgs,
    attach_out: bool,
) -> anyhow::Result<String> {
    let policy = PullPolicy::parse(&a.pull)?;
    let platform = a.platform.as_deref();
    if policy == PullPolicy::Always {
        pull_for_run(api, &a.image, platform, a.quiet).await?;
    }
    match create_container(api, a, attach_out).await {
        Err(e) if policy == PullPolicy::Missing && missing_image(&e) => {
            if !a.quiet {
                eprintln!(
                    "Unable to find image '{}' locally",
                    familiar_with_tag(&a.image)
                );
            }
            pull_for_run(api, &a.image, platform, a.quiet).await?;
            create_container(api, a, attach_out).await
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_options() {
        assert_eq!(PullPolicy::parse("missing").unwrap(), PullPolicy::Missing);
        assert_eq!(PullPolicy::parse("always").unwrap(), PullPolicy::Always);
        assert_eq!(PullPolicy::parse("never").unwrap(), PullPolicy::Never);
        let e = PullPolicy::parse("sometimes").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
        );
    }
}
