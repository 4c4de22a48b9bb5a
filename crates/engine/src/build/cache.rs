//! The build cache: step keys to images, kept in `cache.json`, listed for `system df` and pruned.

use super::*;

impl Builder {
    pub(super) fn publish_cache(&self) {
        let c = self.cache.lock().expect("build cache");
        let ids: HashSet<String> = c
            .entries
            .values()
            .filter(|id| !c.results.contains(*id))
            .cloned()
            .collect();
        self.images.set_build_cache(ids);
    }

    pub(super) fn save_cache(&self) {
        let c = self.cache.lock().expect("build cache").clone();
        if let Err(e) = berth_durable::save(&self.dir.join("cache.json"), &c) {
            tracing::warn!(error = %e, "save the build cache");
        }
        self.publish_cache();
    }

    pub(super) fn lookup(&self, key: &str) -> Option<String> {
        let id = self
            .cache
            .lock()
            .expect("build cache")
            .entries
            .get(key)
            .cloned()?;
        if !self.images.has(&id) {
            return None;
        }
        self.cache
            .lock()
            .expect("build cache")
            .used
            .insert(id.clone(), now());
        Some(id)
    }

    pub(super) fn insert(&self, key: String, id: &str) {
        let mut c = self.cache.lock().expect("build cache");
        c.entries.insert(key, id.to_string());
        c.used.insert(id.to_string(), now());
    }

    /// The build cache for `system df`: (image id, last used) of every entry.
    pub fn cache_entries(&self) -> Vec<(String, i64)> {
        let c = self.cache.lock().expect("build cache");
        let ids: BTreeSet<&String> = c.entries.values().collect();
        ids.into_iter()
            .filter(|id| self.images.has(id))
            .map(|id| (id.clone(), c.used.get(id).copied().unwrap_or(0)))
            .collect()
    }

    /// `docker builder prune`: forgets every cache entry, removes the untagged intermediate
    /// images only the cache held (not builds' final images, not those a container uses),
    /// the cache mounts and the kept contexts. Returns the ids
    /// removed and the bytes reclaimed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn prune(&self) -> Result<(Vec<String>, u64), EngineError> {
        let ids: Vec<String> = {
            let mut c = self.cache.lock().expect("build cache");
            // A build's final image is the user's, tagged or not: forgotten by the cache,
            // never removed by it (`image prune` takes an untagged one).
            let ids = c
                .entries
                .values()
                .filter(|id| !c.results.contains(*id))
                .cloned()
                .collect::<BTreeSet<_>>();
            c.entries.clear();
            c.parents.clear();
            c.used.clear();
            ids.into_iter().collect()
        };
        self.save_cache();
        let in_use = self.containers.images_in_use();
        let (out, mut bytes) = self.images.remove_untagged(&ids, &in_use)?;
        let mounts = self.cache_mounts();
        bytes += crate::containers::dir_size(&mounts);
        let _ = std::fs::remove_dir_all(&mounts);
        self.prune_contexts();
        Ok((out, bytes))
    }

    pub(super) fn key(&self, st: &St, created_by: &str, extra: &str) -> String {
        let config = serde_json::to_vec(&st.config).expect("serialises");
        berth_build::cache::key(st.image.as_deref(), created_by, &config, extra)
    }

    /// A cached result for the step, announced as the classic builder does.
    pub(super) fn cached(
        &self,
        job: &Job,
        key: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> Option<String> {
        if job.opts.no_cache {
            return None;
        }
        let id = self.lookup(key)?;
        if job.cache_allowed.as_ref().is_some_and(|a| !a.contains(&id)) {
            return None;
        }
        let _ = out.send(Message::Stream(" ---> Using cache\n".into()));
        let _ = out.send(Message::Stream(format!(" ---> {}\n", short(&id))));
        Some(id)
    }

    /// The step's cached image, made the stage's current one: true on a hit.
    pub(super) fn reuse(
        &self,
        job: &Job,
        st: &mut St,
        key: &str,
        out: &mpsc::UnboundedSender<Message>,
    ) -> bool {
        match self.cached(job, key, out) {
            Some(id) => {
                st.image = Some(id);
                true
            }
            None => false,
        }
    }

    /// A step's new image: cached under `key`, announced, and the stage's current one.
    pub(super) fn adopt(
        &self,
        st: &mut St,
        key: String,
        id: String,
        out: &mpsc::UnboundedSender<Message>,
    ) {
        self.insert(key, &id);
        if let Some(parent) = &st.image {
            let mut c = self.cache.lock().expect("build cache");
            c.parents.insert(id.clone(), parent.clone());
        }
        let _ = out.send(Message::Stream(format!(" ---> {}\n", short(&id))));
        st.image = Some(id);
    }

    /// `--cache-from`: the named images and every image of the steps they were built from
    /// (by the cache's parent chain). None without `--cache-from`: the whole cache counts.
    pub(super) fn cache_allowed(&self, names: &[String]) -> Option<HashSet<String>> {
        if names.is_empty() {
            return None;
        }
        let c = self.cache.lock().expect("build cache");
        let mut allowed = HashSet::new();
        for n in names {
            let Ok(d) = self.images.inspect(n) else {
                continue;
            };
            let mut id = Some(d.id);
            while let Some(i) = id.take() {
                if allowed.insert(i.clone()) {
                    id = c.parents.get(&i).cloned();
                }
            }
        }
        Some(allowed)
    }
}
