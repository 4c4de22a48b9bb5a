//! `inspect` of containers, and the output every inspect command shares.

use crate::format::print_inspected;

use crate::api::{q, Api};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image).
    #[arg(long = "type")]
    pub typ: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::objects())]
    pub names: Vec<String>,
}

/// `berth inspect` (containers, then images).
pub async fn inspect(api: &Api, a: InspectArgs) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let mut found = None;
        if a.typ.as_deref() != Some("image") {
            let sz = if a.size { "?size=1" } else { "" };
            if let Ok(v) = api.get(&format!("/containers/{}/json{sz}", q(n))).await {
                found = Some(v);
            }
        }
        if found.is_none() && a.typ.as_deref() != Some("container") {
            if let Ok(v) = api.get(&format!("/images/{n}/json")).await {
                found = Some(v);
            }
        }
        match found {
            Some(v) => docs.push(v),
            None => {
                eprintln!("Error: No such object: {n}");
                code = 1;
            }
        }
    }
    print_inspected(a.format.as_deref(), docs)?;
    Ok(code)
}
