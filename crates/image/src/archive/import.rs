//! `import`: a plain rootfs tarball becomes a one-layer image (`docker import` semantics, with
//! `--change` for CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL).

use std::io::Read;

use serde_json::json;

use super::{ingest, Loaded};
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::layer;
use crate::reference::ImageRef;
use crate::store::{LayerSource, Store};

/// `CMD ["a","b"]` (JSON) or `CMD a b` (shell form → `/bin/sh -c "a b"`).
fn exec_form(instr: &str, rest: &str) -> Result<Vec<String>> {
    let rest = rest.trim();
    if rest.starts_with('[') {
        serde_json::from_str(rest)
            .map_err(|e| Error::Archive(format!("--change {instr}: bad JSON array: {e}")))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
    }
}

/// Applies Dockerfile-style `--change` instructions to a run config.
pub fn apply_changes(cfg: &mut RunConfig, changes: &[String]) -> Result<()> {
    for c in changes {
        let (instr, rest) = c
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((c.trim(), ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => cfg.cmd = Some(exec_form("CMD", rest)?),
            "ENTRYPOINT" => cfg.entrypoint = Some(exec_form("ENTRYPOINT", rest)?),
            "ENV" => {
                let (k, v) = rest.split_once('=').or_else(|| rest.split_once(' ')).ok_or_else(|| Error::Archive(format!("--change ENV needs KEY=VALUE: {rest:?}")))?;
                let env = cfg.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map(|x| x.0) != Some(k.trim()));
                env.push(format!("{}={}", k.trim(), v.trim()));
            }
            "WORKDIR" => cfg.working_dir = Some(rest.into()),
            "USER" => cfg.user = Some(rest.into()),
            "STOPSIGNAL" => cfg.stop_signal = Some(rest.into()),
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    cfg.exposed_ports.get_or_insert_with(Default::default).insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let vols: Vec<String> = if rest.starts_with('[') { exec_form("VOLUME", rest)? } else { rest.split_whitespace().map(str::to_string).collect() };
                for v in vols {
                    cfg.volumes.get_or_insert_with(Default::default).insert(v, json!({}));
                }
            }
            "LABEL" => {
                let (k, v) = rest.split_once('=').ok_or_else(|| Error::Archive(format!("--change LABEL needs KEY=VALUE: {rest:?}")))?;
                cfg.labels.get_or_insert_with(Default::default).insert(k.trim().trim_matches('"').into(), v.trim().trim_matches('"').into());
            }
            other => return Err(Error::Archive(format!("--change: {other} is not supported (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL)"))),
        }
    }
    Ok(())
}

/// Imports a rootfs tarball (plain, gzip or zstd) as a single-layer image.
pub fn import(
    store: &mut Store,
    mut reader: impl Read,
    reference: Option<&ImageRef>,
    changes: &[String],
    message: &str,
) -> Result<Loaded> {
    let blob = ingest(
        store,
        &format!("import-{}", std::process::id()),
        &mut reader,
        None,
        None,
    )?;
    // The diff id is the digest of the uncompressed tar.
    let (_, mut plain) = layer::decompress(store.content().open_blob(&blob)?)?;
    let mut h = crate::digest::HashingReader::new(&mut plain);
    std::io::copy(&mut h, &mut std::io::sink())
        .map_err(|e| Error::Archive(format!("read the imported tarball: {e}")))?;
    let (diff_id, _, _) = h.finish();
    let mut run = RunConfig::default();
    apply_changes(&mut run, changes)?;
    let now = crate::store::now_rfc3339();
    let config = json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "created": now,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": now, "created_by": "berth import", "comment": message}]
    });
    let config = store
        .content()
        .put(&serde_json::to_vec(&config).expect("serialises"))?;
    let media_type = super::layer_media_type(store, &blob)?.to_string();
    let tags: Vec<ImageRef> = reference.cloned().into_iter().collect();
    let id = store.add_image(
        &config,
        &[LayerSource {
            blob,
            media_type,
            diff_id,
        }],
        None,
        &tags,
    )?;
    Ok(Loaded {
        id,
        tags: tags.iter().map(|t| t.familiar()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["sh", "-c", "echo hi"]"#.into(),
                "ENTRYPOINT /init".into(),
                "ENV A=1".into(),
                "ENV A=2".into(),
                "WORKDIR /app".into(),
                "USER nobody".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL org.x=\"y\"".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/init"]);
        assert_eq!(c.env.unwrap(), ["A=2"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        let ports: Vec<String> = c.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(c.labels.unwrap()["org.x"], "y");
        assert!(apply_changes(&mut RunConfig::default(), &["RUN rm -rf /".into()]).is_err());
    }
}
