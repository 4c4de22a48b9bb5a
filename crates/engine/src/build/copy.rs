//! COPY and ADD: sources picked from the context, a stage or a URL, written into the stage's root and committed.

use super::*;

impl Builder {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_step(
        self: &Arc<Self>,
        job: &Job,
        idx: usize,
        st: &mut St,
        add: bool,
        args: &[String],
        json: bool,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        heredocs: &[dockerfile::Heredoc],
        out: &mpsc::UnboundedSender<Message>,
    ) -> Result<(), EngineError> {
        let esc = job.escape;
        let vars = st.vars();
        let kw = if add { "ADD" } else { "COPY" };
        let mut words: Vec<String> = Vec::new();
        for a in args {
            if json {
                // One word each; `$v` is still substituted, quotes have no meaning here.
                words.push(expand_json_word(a, &vars));
            } else {
                words.extend(shell::words(a, esc, &vars).map_err(|e| invalid(e.0))?);
            }
        }
        let dest_raw = words
            .pop()
            .ok_or_else(|| invalid(format!("{kw} requires at least two arguments")))?;
        let chmod = match chmod {
            Some(c) => Some(
                u32::from_str_radix(c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| invalid(format!("invalid chmod parameter: {c}")))?,
            ),
            None => None,
        };
        let chown = chown
            .map(|c| shell::expand(c, esc, &vars))
            .transpose()
            .map_err(|e| invalid(e.0))?;
        // Where the sources come from.
        let from_id = match from {
            Some(f) => {
                let f = shell::expand(f, esc, &vars).map_err(|e| invalid(e.0))?;
                Some(self.image_of_from(job, idx, &f, out).await?)
            }
            None => None,
        };
        let scratch = self.scratch();
        std::fs::create_dir_all(&scratch).map_err(|e| unavailable(e.to_string()))?;
        let _scratch_guard = ScratchDir(scratch.clone());
        let from_root = match &from_id {
            Some(id) => {
                let images = self.images.clone();
                let id = id.clone();
                let dir = scratch.join("from");
                Some(
                    tokio::task::spawn_blocking(move || {
                        RootMount::read_only(&images, Some(&id), dir)
                    })
                    .await
                    .map_err(|e| unavailable(e.to_string()))??,
                )
            }
            None => None,
        };
        // Here-documents become files; URLs (ADD) are fetched.
        let heredoc_dir = scratch.join("heredocs");
        let mut plain_words = Vec::new();
        let mut extra_sources: Vec<(PathBuf, String)> = Vec::new();
        for w in &words {
            if let Some(h) = heredocs.iter().find(|h| {
                w.trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(['"', '\''])
                    == h.name
                    && w.starts_with("<<")
            }) {
                std::fs::create_dir_all(&heredoc_dir).map_err(|e| unavailable(e.to_string()))?;
                let content = if h.expand {
                    shell::expand(&h.content, esc, &vars).unwrap_or_else(|_| h.content.clone())
                } else {
                    h.content.clone()
                };
                let p = heredoc_dir.join(&h.name);
                std::fs::write(&p, content).map_err(|e| unavailable(e.to_string()))?;
                let _ = std::fs::set_permissions(
                    &p,
                    std::os::unix::fs::PermissionsExt::from_mode(0o644),
                );
                extra_sources.push((p, h.name.clone()));
            } else if add && (w.starts_with("http://") || w.starts_with("https://")) {
                let p = fetch_url(w, &scratch).await?;
                let name = w
                    .split('?')
                    .next()
                    .unwrap_or(w)
                    .rsplit('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("download")
                    .to_string();
                extra_sources.push((p, name));
            } else if !add && (w.starts_with("http://") || w.starts_with("https://")) {
                return Err(invalid("source can't be a URL for COPY"));
            } else {
                plain_words.push(w.clone());
            }
        }
        let context = job.context.clone();
        let ignore_all = from_root.is_none();
        let src_root = from_root
            .as_ref()
            .map(|m| m.root.clone())
            .unwrap_or(context);
        let ig = &job.ignore;
        let excluded = |p: &str| ignore_all && ig.excluded(p);
        let srcs = buildfs::sources(&src_root, &plain_words, &excluded)
            .map_err(|e| invalid(e.message.replace("COPY failed", &format!("{kw} failed"))))?;
        let count = srcs.len() + extra_sources.len();
        let dest_dir_syntax =
            dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        if count > 1 && !dest_dir_syntax {
            return Err(invalid(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let dest_abs = if dest_raw.starts_with('/') {
            PathBuf::from(&dest_raw)
        } else {
            Path::new(&st.workdir()).join(&dest_raw)
        };
        let dest = Path::new("/")
            .join(buildfs::clean_rel(&dest_abs.to_string_lossy()).unwrap_or_default());
        // ADD's local archives are unpacked into the scratch directory first.
        // (Their sources stay open while the entries, which name paths below them, live.)
        let mut tars: Vec<(usize, buildfs::Source)> = Vec::new();
        if add {
            for (i, s) in srcs.iter().enumerate() {
                if !s.is_dir && is_archive(&s.host) {
                    let d = scratch.join(format!("tar{i}"));
                    unpack_archive(&s.host, &d)?;
                    let src = buildfs::sources(&d, &[".".into()], &|_| false)?.remove(0);
                    tars.push((i, src));
                }
            }
        }
        // Entries with a nominal destination, for the key; the real one needs the image.
        let owner_key = chown.clone().unwrap_or_default();
        let plan =
            |dest_is_dir: bool, owner: (u32, u32)| -> Result<Vec<buildfs::Entry>, EngineError> {
                let mut es = Vec::new();
                for (i, s) in srcs.iter().enumerate() {
                    if let Some((_, src)) = tars.iter().find(|(j, _)| *j == i) {
                        let mut inner = Vec::new();
                        buildfs::entries(
                            src,
                            &dest,
                            chown.as_ref().map(|_| owner),
                            &|_| false,
                            &mut inner,
                        )?;
                        // The archive's top directory is the destination: keep its mode as is.
                        inner.retain(|e| e.dest != dest);
                        es.extend(inner);
                        continue;
                    }
                    let target = if s.is_dir {
                        dest.clone()
                    } else if dest_is_dir {
                        dest.join(s.rel.file_name().unwrap_or_default())
                    } else {
                        dest.clone()
                    };
                    let sub_excluded = |p: &str| excluded(p);
                    buildfs::entries(s, &target, Some(owner), &sub_excluded, &mut es)?;
                }
                for (p, name) in &extra_sources {
                    let src = buildfs::Source::file(p)?;
                    let target = if dest_is_dir {
                        dest.join(name)
                    } else {
                        dest.clone()
                    };
                    let mut one = Vec::new();
                    buildfs::entries(&src, &target, Some(owner), &|_| false, &mut one)?;
                    // Our own scratch file: named by its path, not by the descriptor that goes.
                    for e in &mut one {
                        e.kind = buildfs::Kind::File(p.clone());
                    }
                    if !add || heredocs.iter().any(|h| &h.name == name) {
                        es.extend(one);
                    } else {
                        // A URL's file: mode 0600, as docker writes it.
                        es.extend(one.into_iter().map(|mut e| {
                            e.mode = 0o600;
                            e
                        }));
                    }
                }
                if let Some(m) = chmod {
                    for e in &mut es {
                        if !matches!(e.kind, buildfs::Kind::Symlink(_)) {
                            e.mode = m;
                        }
                    }
                }
                // The destination directory of a directory copy that exists keeps its own mode.
                Ok(es)
            };
        let nominal = plan(dest_dir_syntax, (0, 0))?;
        let hash = buildfs::content_hash(&nominal)?;
        let what = if count == 1 && srcs.first().is_some_and(|s| s.is_dir) {
            "dir"
        } else {
            "file"
        };
        let created_by = format!(
            "/bin/sh -c #(nop) {kw} {what}:{hash} in {} ",
            dest.display()
        );
        let key = self.key(
            st,
            &created_by,
            &format!("{owner_key}|{chmod:?}|{}", from_id.as_deref().unwrap_or("")),
        );
        if self.reuse(job, st, &key, out) {
            return Ok(());
        }
        let images = self.images.clone();
        let base = st.image.clone();
        let cfg = Value::Object(st.config.clone());
        let history = json!({"created_by": created_by});
        let dir = scratch.join("step");
        let dest2 = dest.clone();
        let id = {
            // Mounting is blocking; the copy itself too: one blocking section.
            let m = tokio::task::block_in_place(|| RootMount::new(&images, base.as_deref(), dir))?;
            let owner = match &chown {
                Some(c) => buildfs::lookup_owner(&m.root, c)?,
                None => (0, 0),
            };
            let dest_is_dir = dest_dir_syntax || buildfs::is_dir_in(&m.root, &dest2);
            let mut es = plan(dest_is_dir, owner)?;
            // An existing destination directory keeps its own mode and owner.
            if buildfs::is_dir_in(&m.root, &dest2) {
                es.retain(|e| e.dest != dest2);
            }
            let root = m.root.clone();
            let upper = m.upper.clone();
            tokio::task::block_in_place(|| {
                buildfs::write(&root, &es, owner)?;
                images.commit_step(base.as_deref(), Some(&upper), cfg, history, &[])
            })?
        };
        drop(from_root);
        self.adopt(st, key, id, out);
        Ok(())
    }
}

/// The host path of `rel` resolved inside `root` (for a bind mount's source).
pub(super) fn resolved(root: &Path, rel: &Path) -> Result<PathBuf, EngineError> {
    let fd: std::os::fd::OwnedFd = std::fs::File::open(root)
        .map_err(|e| unavailable(e.to_string()))?
        .into();
    let p = buildfs::open_in(&fd, rel, false)
        .map_err(|e| invalid(format!("--mount source {}: {e}", rel.display())))?;
    std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&p)
    ))
    .map_err(|e| unavailable(e.to_string()))
}

/// A content hash of a context directory bound into a RUN (so that a change reruns it).
pub(super) fn dir_hash(p: &Path) -> Result<String, EngineError> {
    let root = p.parent().unwrap_or(Path::new("/"));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(".".into());
    let srcs = buildfs::sources(root, &[name], &|_| false)?;
    let mut es = Vec::new();
    for s in &srcs {
        buildfs::entries(s, Path::new("/"), None, &|_| false, &mut es)?;
    }
    buildfs::content_hash(&es)
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    if n >= 4 && (head[..2] == [0x1f, 0x8b] || head[..4] == [0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

/// Unpacks a (gzip, zstd or plain) tar into the new directory `dest` with the `tar` crate,
/// which refuses absolute names and `..`.
fn unpack_archive(p: &Path, dest: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dest).map_err(|e| unavailable(e.to_string()))?;
    let f = std::fs::File::open(p).map_err(|e| unavailable(e.to_string()))?;
    let (_, r) = berth_image::layer::decompress(std::io::BufReader::new(f))?;
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.unpack(dest).map_err(|e| {
        let mut m = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            m.push_str(&format!(": {s}"));
            src = s.source();
        }
        invalid(format!("ADD: unpack the archive: {m}"))
    })
}
