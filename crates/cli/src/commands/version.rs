//! `berth version`: client and server versions, laid out as `docker version` prints them.

use crate::client::{Client, CLIENT_API};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: "json" for the raw documents.
    #[arg(short, long)]
    pub format: Option<String>,
}

pub async fn run(host: &str, a: Args) -> anyhow::Result<i32> {
    let client = Client::new(host)?;
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    let client_doc = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": CLIENT_API, "Os": "linux", "Arch": arch
    });
    let server = match client.negotiate().await {
        Ok(v) => client.get_json(&v, "/version").await.map(|s| (v, s)),
        Err(e) => Err(e),
    };
    if a.format.as_deref() == Some("json") {
        let s = server
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or(serde_json::Value::Null);
        println!("{}", serde_json::json!({"Client": client_doc, "Server": s}));
    } else if let Some(f) = &a.format {
        let s = server
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or(serde_json::Value::Null);
        // Templates see the Go field names: `APIVersion` where the JSON says `ApiVersion`.
        let go_names = |mut v: serde_json::Value| {
            if let Some(a) = v.get("ApiVersion").cloned() {
                v["APIVersion"] = a;
            }
            v
        };
        let doc = serde_json::json!({"Client": go_names(client_doc), "Server": go_names(s)});
        println!("{}", crate::format::render(f, &doc)?);
        if let Err(e) = &server {
            anyhow::bail!("{e:#}");
        }
    } else {
        println!("Client:");
        println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
        println!(
            " API version:       {}",
            match &server {
                Ok((v, _)) if v != CLIENT_API => format!("{v} (downgraded from {CLIENT_API})"),
                _ => CLIENT_API.to_string(),
            }
        );
        println!(" OS/Arch:           linux/{arch}");
        if let Ok((_, s)) = &server {
            println!();
            println!("Server: {}", s["Platform"]["Name"].as_str().unwrap_or(""));
            println!(" Engine:");
            println!(
                "  Version:          {}",
                s["Version"].as_str().unwrap_or("")
            );
            println!(
                "  API version:      {} (minimum version {})",
                s["ApiVersion"].as_str().unwrap_or(""),
                s["MinAPIVersion"].as_str().unwrap_or("")
            );
            println!(
                "  Git commit:       {}",
                s["GitCommit"].as_str().unwrap_or("")
            );
            println!("  Built:            {}", built(s["BuildTime"].as_str()));
            println!(
                "  OS/Arch:          {}/{}",
                s["Os"].as_str().unwrap_or(""),
                s["Arch"].as_str().unwrap_or("")
            );
            println!(
                "  Kernel version:   {}",
                s["KernelVersion"].as_str().unwrap_or("")
            );
        }
    }
    match server {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("{e:#}");
            Ok(1)
        }
    }
}

/// An RFC 3339 time as the docker CLI prints `Built:` (Go's ANSIC layout, in UTC).
fn built(t: Option<&str>) -> String {
    let Some(t) = t.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return t.unwrap_or_default().to_string();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let f = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_as_go_ansic() {
        assert_eq!(
            super::built(Some("2026-12-07T23:31:50+00:00")),
            "Mon Dec  7 23:31:50 2026"
        );
        assert_eq!(super::built(Some("")), "");
    }
}
