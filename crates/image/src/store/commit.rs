//! `commit`: a new image from a base and a container's changes, and a build step's layer.

use super::*;

impl Store {
    /// Makes a new image from `base` plus the changes in a container's overlay `upper` dir:
    /// the diff becomes a layer blob, the config gets its diff id and a history entry. Empty
    /// files at `skip` (an engine's mount points) are left out.
    pub fn commit(
        &mut self,
        base: &Digest,
        upper: &Path,
        run: Option<crate::config::RunConfig>,
        note: &CommitNote<'_>,
        tags: &[ImageRef],
        skip: &[&str],
    ) -> Result<Digest> {
        let base_img = self
            .meta
            .images
            .get(base.as_str())
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("image {base}")))?;
        let name = format!("commit-{}", std::process::id());
        let mut w = self.content.writer(&name, None, None)?;
        let (diff_id, _) = crate::diff::diff_skipping(upper, &mut w, skip)?;
        let blob = w.commit()?;
        let mut cfg: serde_json::Value = serde_json::from_slice(&self.content.read(&base_img.id)?)
            .ctx(|| "parse base config".into())?;
        cfg["rootfs"]["diff_ids"]
            .as_array_mut()
            .ok_or_else(|| Error::Archive("base config has no rootfs.diff_ids".into()))?
            .push(serde_json::json!(diff_id));
        if let Some(r) = run {
            cfg["config"] = serde_json::to_value(r).expect("serialises");
        }
        let now = now_rfc3339();
        cfg["created"] = serde_json::json!(now);
        // As docker's commit: the image's own comment and author, and a history entry.
        cfg["comment"] = serde_json::json!(note.comment);
        cfg["author"] = serde_json::json!(note.author);
        if !cfg["history"].is_array() {
            cfg["history"] = serde_json::json!([]);
        }
        let mut entry = serde_json::json!({"created": now, "created_by": "berth commit"});
        if !note.comment.is_empty() {
            entry["comment"] = serde_json::json!(note.comment);
        }
        if !note.author.is_empty() {
            entry["author"] = serde_json::json!(note.author);
        }
        cfg["history"].as_array_mut().expect("array").push(entry);
        let config = self
            .content
            .put(&serde_json::to_vec(&cfg).expect("serialises"))?;
        let mut layers: Vec<LayerSource> = self
            .layers_of(&base_img)?
            .iter()
            .zip(base_img.layer_media_types.iter())
            .map(|(l, mt)| LayerSource {
                blob: l.blob.clone(),
                media_type: mt.clone(),
                diff_id: l.diff_id.clone(),
            })
            .collect();
        layers.push(LayerSource {
            blob,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id,
        });
        let id = self.add_image(&config, &layers, None, tags)?;
        if let Some(rec) = self.meta.images.get_mut(id.as_str()) {
            rec.parent = Some(base_img.id.clone());
            self.save()?;
        }
        Ok(id)
    }

    /// One build step's image: `base` (None: `FROM scratch`) plus, with `upper`, a layer of
    /// the changes in that directory (empty files at `skip` left out). `config` becomes the
    /// image's `config` whole (so fields berth does not model, such as `Shell` and
    /// `OnBuild`, are kept); `history` is appended, marked `empty_layer` without a layer, as
    /// docker's builder marks metadata steps.
    pub fn commit_step(
        &mut self,
        base: Option<&Digest>,
        upper: Option<&Path>,
        config: serde_json::Value,
        mut history: serde_json::Value,
        skip: &[&str],
    ) -> Result<Digest> {
        let (mut cfg, mut layers): (serde_json::Value, Vec<LayerSource>) = match base {
            Some(b) => {
                let img = self
                    .meta
                    .images
                    .get(b.as_str())
                    .cloned()
                    .ok_or_else(|| Error::NotFound(format!("image {b}")))?;
                let cfg = serde_json::from_slice(&self.content.read(&img.id)?)
                    .ctx(|| "parse base config".into())?;
                let layers = self
                    .layers_of(&img)?
                    .iter()
                    .zip(img.layer_media_types.iter())
                    .map(|(l, mt)| LayerSource {
                        blob: l.blob.clone(),
                        media_type: mt.clone(),
                        diff_id: l.diff_id.clone(),
                    })
                    .collect();
                (cfg, layers)
            }
            None => (
                serde_json::json!({
                    "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                Vec::new(),
            ),
        };
        if let Some(upper) = upper {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("step-{}-{n}", std::process::id());
            let mut w = self.content.writer(&name, None, None)?;
            let (diff_id, _) = crate::diff::diff_skipping(upper, &mut w, skip)?;
            let blob = w.commit()?;
            cfg["rootfs"]["diff_ids"]
                .as_array_mut()
                .ok_or_else(|| Error::Archive("base config has no rootfs.diff_ids".into()))?
                .push(serde_json::json!(diff_id));
            layers.push(LayerSource {
                blob,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                diff_id,
            });
        } else {
            history["empty_layer"] = serde_json::json!(true);
        }
        let now = now_rfc3339();
        cfg["config"] = config;
        cfg["created"] = serde_json::json!(now);
        history["created"] = serde_json::json!(now);
        if !cfg["history"].is_array() {
            cfg["history"] = serde_json::json!([]);
        }
        cfg["history"].as_array_mut().expect("array").push(history);
        let config = self
            .content
            .put(&serde_json::to_vec(&cfg).expect("serialises"))?;
        self.add_image(&config, &layers, None, &[])
    }
}
