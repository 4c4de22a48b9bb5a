//! `berth network create|ls|inspect|rm|prune|connect|disconnect`, as the docker CLI has them.

use hyper::Method;
use serde_json::{json, Value};

use crate::api::{q, Api};
use crate::format;
use crate::values::filters_json;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver.
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// IP Address Management Driver.
    #[arg(long = "ipam-driver")]
    pub ipam_driver: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    pub attachable: bool,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

/// `berth network create`: prints the new network's id.
pub async fn create(api: &Api, a: CreateArgs) -> anyhow::Result<i32> {
    if a.gateway.len() > a.subnet.len() {
        anyhow::bail!("every gateway must have a corresponding subnet");
    }
    if a.ip_range.len() > a.subnet.len() {
        anyhow::bail!("every ip-range must have a corresponding subnet");
    }
    let mut configs: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            if let Some(r) = a.ip_range.get(i) {
                c["IPRange"] = json!(r);
            }
            c
        })
        .collect();
    // Each auxiliary address goes with the pool of its family (berth has one of each).
    for aux in &a.aux_address {
        let (name, ip) = aux
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid aux-address {aux}: expected name=ip"))?;
        let v6 = ip.contains(':');
        let pool = configs
            .iter_mut()
            .find(|c| c["Subnet"].as_str().is_some_and(|s| s.contains(':') == v6))
            .ok_or_else(|| anyhow::anyhow!("no matching subnet for aux-address {ip}"))?;
        pool["AuxiliaryAddresses"][name] = json!(ip);
    }
    let body = json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {
            "Driver": a.ipam_driver.clone().unwrap_or_else(|| "default".into()),
            "Config": configs,
            "Options": {},
        },
        "Options": crate::commands::key_values(&a.opt, "option")?,
        "Labels": crate::commands::key_values(&a.label, "label")?,
    });
    let v = api
        .json(Method::POST, "/networks/create", Some(&body))
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, or "json".
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `berth network ls`.
pub async fn ls(api: &Api, a: LsArgs) -> anyhow::Result<i32> {
    let mut path = "/networks".to_string();
    if !a.filter.is_empty() {
        path = format!("/networks?filters={}", q(&filters_json(&a.filter)?));
    }
    let v = api.get(&path).await?;
    let mut rows = Vec::new();
    for n in v.as_array().cloned().unwrap_or_default() {
        let id = n["Id"].as_str().unwrap_or_default();
        let id = if a.no_trunc {
            id
        } else {
            &id[..12.min(id.len())]
        };
        let labels = n["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        rows.push(json!({
            "ID": id, "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
            "IPv4": n["EnableIPv4"].as_bool().unwrap_or(false).to_string(),
            "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
            "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
            "Labels": labels,
            "CreatedAt": crate::values::go_time_rfc3339(n["Created"].as_str().unwrap_or_default()),
        }));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let headers = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"});
    format::print_rows(
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &rows,
        &headers,
    )?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template, or "json".
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::networks())]
    pub names: Vec<String>,
}

/// `berth network inspect`.
pub async fn inspect(api: &Api, a: InspectArgs) -> anyhow::Result<i32> {
    crate::commands::inspect_each(api, "/networks", &a.names, a.format.as_deref()).await
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    #[arg(add = crate::complete::networks())]
    pub names: Vec<String>,
}

/// `berth network rm`: each name on its own; the exit code says whether all went.
pub async fn rm(api: &Api, a: RmArgs) -> anyhow::Result<i32> {
    crate::commands::remove_each(api, "/networks", &a.names, a.force).await
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `berth network prune`.
pub async fn prune(api: &Api, a: PruneArgs) -> anyhow::Result<i32> {
    if !crate::commands::system::confirm(
        "all custom networks not used by at least one container",
        a.force,
    )? {
        return Ok(0);
    }
    let mut qs = String::new();
    if !a.filter.is_empty() {
        qs = format!("?filters={}", q(&filters_json(&a.filter)?));
    }
    let v = api
        .json(Method::POST, &format!("/networks/prune{qs}"), None)
        .await?;
    let gone = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for g in &gone {
            println!("{}", g.as_str().unwrap_or_default());
        }
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33").
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container.
    #[arg(long)]
    pub link: Vec<String>,
    #[arg(add = crate::complete::networks())]
    pub network: String,
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth network connect`.
pub async fn connect(api: &Api, a: ConnectArgs) -> anyhow::Result<i32> {
    if !a.link.is_empty() {
        anyhow::bail!("--link is not supported by berth: use a user network and its DNS names");
    }
    let mut ep = json!({"Aliases": a.alias});
    if a.ip.is_some() || a.ip6.is_some() {
        ep["IPAMConfig"] = json!({
            "IPv4Address": a.ip.clone().unwrap_or_default(),
            "IPv6Address": a.ip6.clone().unwrap_or_default(),
        });
    }
    let body = json!({"Container": a.container, "EndpointConfig": ep});
    api.call(
        Method::POST,
        &format!("/networks/{}/connect", q(&a.network)),
        Some(&body),
    )
    .await?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    #[arg(add = crate::complete::networks())]
    pub network: String,
    #[arg(add = crate::complete::containers())]
    pub container: String,
}

/// `berth network disconnect`.
pub async fn disconnect(api: &Api, a: DisconnectArgs) -> anyhow::Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    api.call(
        Method::POST,
        &format!("/networks/{}/disconnect", q(&a.network)),
        Some(&body),
    )
    .await?;
    Ok(0)
}
