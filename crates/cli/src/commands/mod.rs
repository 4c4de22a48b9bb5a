//! Commands, grouped by object.

pub mod build;
pub mod container;
pub mod image;
pub mod network;
pub mod registry;
pub mod system;
pub mod version;
pub mod volume;

use hyper::Method;

use crate::api::{q, Api, DaemonError};

/// `KEY=VALUE` flags (`--label`, `--opt`) into a map; a bare `KEY` has an empty value.
pub fn key_values(
    list: &[String],
    what: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut m = std::collections::BTreeMap::new();
    for x in list {
        let (k, v) = x.split_once('=').unwrap_or((x.as_str(), ""));
        if k.is_empty() {
            anyhow::bail!("invalid {what}: {x}");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// `<object> inspect`: `GET <base>/<name>` for each name; the ones that fail are reported
/// and make the exit code 1, the rest are printed.
pub async fn inspect_each(
    api: &Api,
    base: &str,
    names: &[String],
    format: Option<&str>,
) -> anyhow::Result<i32> {
    let mut docs = Vec::new();
    let mut code = 0;
    for n in names {
        match api.get(&format!("{base}/{}", q(n))).await {
            Ok(v) => docs.push(v),
            Err(e) => {
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    crate::format::print_inspected(format, docs)?;
    Ok(code)
}

/// `<object> rm`: `DELETE <base>/<name>` for each name, printing the ones removed; with
/// `force` a missing one is no error.
pub async fn remove_each(
    api: &Api,
    base: &str,
    names: &[String],
    force: bool,
) -> anyhow::Result<i32> {
    let mut code = 0;
    for n in names {
        match api
            .call(Method::DELETE, &format!("{base}/{}", q(n)), None)
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) => {
                let status = e.downcast_ref::<DaemonError>().map(|d| d.status.as_u16());
                if force && status == Some(404) {
                    continue;
                }
                eprintln!("{e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}
