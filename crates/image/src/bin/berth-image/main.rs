//! `berth-image`: the image store from the command line, until berthd serves it: load and save
//! docker-archives and OCI layouts, import rootfs tarballs, list, tag, remove, collect garbage.

use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::PathBuf;

use anyhow::Context as _;
use berth_image::archive::{docker, import, oci};
use berth_image::{ImageRef, Store};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth-image", about = "berth's image store")]
struct Cli {
    /// Data root of the store.
    #[arg(long = "data-root", global = true, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Snapshot driver for a new store: overlay (default where available) or vfs (copies).
    #[arg(long = "storage-driver", global = true)]
    storage_driver: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load images from a docker-archive or OCI archive (file or stdin), or an OCI layout dir.
    Load {
        /// Archive file (default: stdin), or an OCI layout directory.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Repository for OCI images whose ref.name is only a tag.
        #[arg(long)]
        name: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Save images as a docker-archive (file or stdout) or, with --oci, an OCI layout directory.
    Save {
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write an OCI layout directory instead.
        #[arg(long)]
        oci: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Import a rootfs tarball as an image.
    Import {
        /// Tarball (- for stdin).
        file: PathBuf,
        reference: Option<String>,
        /// Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, ...).
        #[arg(short, long)]
        change: Vec<String>,
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// List images.
    Images {
        #[arg(short, long)]
        quiet: bool,
        /// Show full ids.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Tag an image.
    Tag { source: String, target: String },
    /// Remove images (by reference or id).
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Print an image's config.
    Inspect { image: String },
    /// Remove blobs and layers no image uses.
    Gc,
    /// Make an image from a base image plus a container's overlay upper directory.
    Commit {
        /// The container's overlay upper directory.
        #[arg(long)]
        upper: PathBuf,
        base: String,
        reference: Option<String>,
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// Disk usage: images with their shared and unique sizes, layers, blobs.
    Df {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write a directory tree (a mounted rootfs) as a tar, like `docker export`.
    Export {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print the mounts that give a container a writable root on an image.
    Mounts {
        image: String,
        #[arg(long)]
        upper: PathBuf,
        #[arg(long)]
        work: PathBuf,
        #[arg(long)]
        target: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .try_init();
    if let Err(e) = run(cli) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i]).replace(".000", "")
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut store = Store::open_with_driver(&cli.data_root, cli.storage_driver.as_deref())?;
    match cli.command {
        Command::Load { input, name, quiet } => {
            let loaded = match &input {
                Some(p) if p.is_dir() => oci::load_dir(&mut store, p, name.as_deref())?,
                Some(p) => load_file(&mut store, p, name.as_deref())
                    .with_context(|| format!("load {}", p.display()))?,
                None => {
                    if std::io::stdin().is_terminal() {
                        anyhow::bail!("requested load from stdin, but stdin is empty");
                    }
                    load_stdin(&mut store, name.as_deref())?
                }
            };
            if !quiet {
                for l in loaded {
                    if l.tags.is_empty() {
                        println!("Loaded image ID: {}", l.id);
                    }
                    for t in l.tags {
                        println!("Loaded image: {t}");
                    }
                }
            }
        }
        Command::Save {
            output,
            oci: as_oci,
            images,
        } => {
            if as_oci {
                let dir = output.context("--oci needs -o DIR")?;
                oci::save_dir(&store, &images, &dir)?;
            } else {
                match output {
                    Some(p) => docker::save(
                        &store,
                        &images,
                        BufWriter::with_capacity(
                            1 << 20,
                            std::fs::File::create(&p)
                                .with_context(|| format!("create {}", p.display()))?,
                        ),
                    )?,
                    None => {
                        if std::io::stdout().is_terminal() {
                            anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
                        }
                        docker::save(&store, &images, BufWriter::new(std::io::stdout().lock()))?
                    }
                }
            }
        }
        Command::Import {
            file,
            reference,
            change,
            message,
        } => {
            let r = reference.as_deref().map(ImageRef::parse).transpose()?;
            let loaded = if file.as_os_str() == "-" {
                import::import(
                    &mut store,
                    std::io::stdin().lock(),
                    r.as_ref(),
                    &change,
                    &message,
                )?
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("open {}", file.display()))?;
                import::import(&mut store, BufReader::new(f), r.as_ref(), &change, &message)?
            };
            println!("{}", loaded.id);
        }
        Command::Images { quiet, no_trunc } => {
            let mut rows = Vec::new();
            for img in store.images() {
                let id = if no_trunc {
                    img.id.to_string()
                } else {
                    img.id.short().to_string()
                };
                let size: u64 = store
                    .layers_of(img)
                    .map(|ls| ls.iter().map(|l| l.size).sum())
                    .unwrap_or(0);
                let cfg = berth_image::config::ImageConfig::parse(&store.content().read(&img.id)?)?;
                let created = cfg.created.unwrap_or_default();
                let tags = store.tags_of(&img.id);
                if tags.is_empty() {
                    rows.push([
                        "<none>".to_string(),
                        "<none>".to_string(),
                        id.clone(),
                        created.clone(),
                        human(size),
                    ]);
                }
                for t in tags {
                    rows.push([
                        t.familiar_repository(),
                        t.tag.clone().unwrap_or_else(|| "<none>".into()),
                        id.clone(),
                        created.clone(),
                        human(size),
                    ]);
                }
            }
            if quiet {
                let mut seen = std::collections::BTreeSet::new();
                for r in &rows {
                    if seen.insert(r[2].clone()) {
                        println!("{}", r[2]);
                    }
                }
                return Ok(());
            }
            let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from);
            let all: Vec<[String; 5]> = std::iter::once(header).chain(rows).collect();
            let w: Vec<usize> = (0..5)
                .map(|i| all.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in all {
                let line: Vec<String> = r.iter().zip(&w).map(|(c, w)| format!("{c:<w$}")).collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
        Command::Tag { source, target } => {
            let id = store.resolve(&source)?.id.clone();
            store.tag(&id, &ImageRef::parse(&target)?)?;
        }
        Command::Rmi { images } => {
            for name in images {
                let (untagged, deleted) = store.remove(&name)?;
                for u in untagged {
                    println!(
                        "Untagged: {}",
                        ImageRef::parse(&u).map(|r| r.familiar()).unwrap_or(u)
                    );
                }
                if let Some(d) = deleted {
                    println!("Deleted: {d}");
                }
            }
        }
        Command::Inspect { image } => {
            let img = store.resolve(&image)?.clone();
            let raw = store.content().read(&img.id)?;
            let v: serde_json::Value = serde_json::from_slice(&raw)?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"Id": img.id, "RepoTags": store.tags_of(&img.id).iter().map(|t| t.familiar()).collect::<Vec<_>>(), "Config": v})
                )?
            );
        }
        Command::Gc => {
            let (blobs, layers) = store.gc()?;
            println!("removed {blobs} blobs and {layers} layers");
        }
        Command::Commit {
            upper,
            base,
            reference,
            message,
        } => {
            let base = store.resolve(&base)?.id.clone();
            let tags: Vec<ImageRef> = reference
                .as_deref()
                .map(ImageRef::parse)
                .transpose()?
                .into_iter()
                .collect();
            println!(
                "{}",
                store.commit(
                    &base,
                    &upper,
                    None,
                    &berth_image::store::CommitNote {
                        comment: &message,
                        author: "",
                    },
                    &tags,
                    &[],
                )?
            );
        }
        Command::Df { json } => {
            let df = store.df()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&df)?);
            } else {
                println!(
                    "{:<15} {:>12} {:>12} {:>12}",
                    "IMAGE ID", "SIZE", "SHARED", "UNIQUE"
                );
                for i in &df.images {
                    println!(
                        "{:<15} {:>12} {:>12} {:>12}",
                        i.id.short(),
                        human(i.size),
                        human(i.shared),
                        human(i.unique)
                    );
                }
                println!(
                    "\nlayers {}  blobs {}",
                    human(df.layers_size),
                    human(df.blobs_size)
                );
            }
        }
        Command::Export { dir, output } => {
            let f = std::fs::File::create(&output)
                .with_context(|| format!("create {}", output.display()))?;
            berth_image::export::export(&dir, BufWriter::with_capacity(1 << 20, f))?;
        }
        Command::Mounts {
            image,
            upper,
            work,
            target,
        } => {
            let img = store.resolve(&image)?.clone();
            for m in store.rootfs_mounts(&img, &upper, &work, &target)? {
                println!(
                    "mount -t {} {} {} -o {}",
                    m.fstype,
                    m.source,
                    m.target.display(),
                    m.options.join(",")
                );
            }
        }
    }
    Ok(())
}

fn load_file(
    store: &mut Store,
    path: &std::path::Path,
    name: Option<&str>,
) -> anyhow::Result<Vec<berth_image::archive::Loaded>> {
    Ok(berth_image::archive::load_file(store, path, name)?)
}

/// Stdin cannot be read twice: spool it next to the store first.
fn load_stdin(
    store: &mut Store,
    name: Option<&str>,
) -> anyhow::Result<Vec<berth_image::archive::Loaded>> {
    let tmp = store.content().scratch_path("spool");
    let mut f = std::fs::File::create(&tmp)?;
    std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
    drop(f);
    let r = load_file(store, &tmp, name);
    let _ = std::fs::remove_file(&tmp);
    r
}
