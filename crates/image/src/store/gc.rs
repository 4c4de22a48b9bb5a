//! Disk usage (`system df`) and garbage collection of unreferenced blobs and snapshots.

use super::*;

impl Store {
    /// Disk usage: per image its total size and the part no other image shares, and the
    /// store's totals (`docker system df` for images).
    pub fn df(&self) -> Result<Df> {
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_image = Vec::new();
        for img in self.meta.images.values() {
            let layers = self.layers_of(img)?;
            for l in &layers {
                *users.entry(l.chain_id.to_string()).or_default() += 1;
            }
            per_image.push((
                img.id.clone(),
                layers
                    .iter()
                    .map(|l| (l.chain_id.to_string(), l.size))
                    .collect::<Vec<_>>(),
            ));
        }
        let images = per_image
            .into_iter()
            .map(|(id, layers)| {
                let size = layers.iter().map(|(_, s)| s).sum();
                let unique = layers
                    .iter()
                    .filter(|(c, _)| users.get(c) == Some(&1))
                    .map(|(_, s)| s)
                    .sum();
                ImageUsage {
                    id,
                    size,
                    shared: size - unique,
                    unique,
                }
            })
            .collect();
        let layers_size = self.meta.layers.values().map(|l| l.size).sum();
        let blobs_size = self
            .content
            .list()?
            .iter()
            .map(|b| self.content.size(b).unwrap_or(0))
            .sum();
        Ok(Df {
            images,
            layers_size,
            blobs_size,
        })
    }

    /// The layer records whose chain id no image uses (`chains`: the ones in use).
    pub(super) fn unused_layers(&self, chains: &BTreeSet<String>) -> Vec<String> {
        self.meta
            .layers
            .keys()
            .filter(|c| !chains.contains(*c))
            .cloned()
            .collect()
    }

    /// Removes blobs, layers and ingests no image refers to. Returns (blobs, layers) removed.
    pub fn gc(&mut self) -> Result<(usize, usize)> {
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut chains: BTreeSet<String> = BTreeSet::new();
        for img in self.meta.images.values() {
            blobs.insert(img.id.clone());
            blobs.extend(img.layers.iter().cloned());
            if let Some(m) = &img.manifest {
                blobs.insert(m.clone());
            }
            if let Ok(cfg) = ImageConfig::parse(&self.content.read(&img.id)?) {
                chains.extend(cfg.chain_ids().iter().map(|c| c.to_string()));
            }
        }
        let mut removed_blobs = 0;
        for b in self.content.list()? {
            if !blobs.contains(&b) {
                self.content.delete(&b)?;
                removed_blobs += 1;
            }
        }
        for i in self.content.ingests()? {
            self.content.abort(&i)?;
        }
        let dead = self.unused_layers(&chains);
        for c in &dead {
            self.meta.layers.remove(c);
        }
        let mut removed_layers = 0;
        for e in std::fs::read_dir(self.root.join("snapshots"))
            .ctx(|| "read snapshots".into())?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if !chains.contains(&format!("sha256:{name}")) {
                remove_tree(&e.path())?;
                removed_layers += 1;
            }
        }
        self.save()?;
        Ok((removed_blobs, removed_layers))
    }
}
