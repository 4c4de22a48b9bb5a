//! The bodies of berth's fuzz targets. `fuzz/` (cargo fuzz, libFuzzer) calls them with the
//! fuzzer's inputs; `tests/replay.rs` calls them with every file of `fuzz/corpus/<target>` and
//! `fuzz/regressions/<target>` on every `cargo test`, so that what a fuzzer once found stays
//! fixed.
//!
//! Each target must never panic, whatever its input: errors are the expected answer to bad
//! input. Where an input is accepted, the target also checks a property that must hold
//! (a parsed reference prints back to a reference that parses the same, a layer never
//! writes outside its directory), so that the fuzzers look for wrong answers, not only
//! crashes.

use std::io::Read;

/// The CLI's `--format` templates (Go text/template through gtmpl), compiled from the CLI's
/// own source file.
#[path = "../../cli/src/format.rs"]
#[allow(dead_code, missing_debug_implementations)]
mod format;

/// A target: one input, never a panic. Named as `fuzz/fuzz_targets/<name>.rs` and the
/// corpus directories name it.
pub type Target = fn(&[u8]);

/// The targets by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("layer_apply", layer_apply),
    ("dockerfile", dockerfile),
    ("reference", reference),
    ("manifest", manifest),
    ("api_create", api_create),
    ("format_template", format_template),
];

/// A layer tar (plain, gzip or zstd) applied to an empty directory. Nothing may appear
/// outside that directory.
pub fn layer_apply(data: &[u8]) {
    let outer = tempfile::tempdir().expect("temp dir");
    let dest = outer.path().join("layer");
    std::fs::create_dir(&dest).expect("layer dir");
    let limits = berth_image::layer::Limits {
        max_bytes: 16 << 20,
    };
    for format in [
        berth_image::layer::Format::Overlay,
        berth_image::layer::Format::Plain,
    ] {
        let _ = berth_image::layer::apply("fuzz", data, &dest, format, limits);
        let outside: Vec<_> = std::fs::read_dir(outer.path())
            .expect("read temp dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            outside,
            vec![std::ffi::OsString::from("layer")],
            "the layer wrote outside its directory"
        );
    }
}

/// A Dockerfile: parsed, split into stages, and every instruction turned into a step.
pub fn dockerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(df) = berth_build::dockerfile::parse(text, "Dockerfile") else {
        return;
    };
    let args = berth_build::shell::Env::default();
    if let Ok(stages) = berth_build::stages(&df, &args, "Dockerfile") {
        for s in &stages {
            for i in &s.instructions {
                let _ = berth_build::steps::step(i, "Dockerfile");
            }
        }
    }
}

/// An image reference. One that parses prints as a reference that parses to the same.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = berth_image::reference::ImageRef::parse(s) {
        let printed = r.to_string();
        let again = berth_image::reference::ImageRef::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(again.to_string(), printed, "{s:?}");
    }
}

/// A manifest, index or image config as a registry or an archive would serve it, under each
/// media type berth knows.
pub fn manifest(data: &[u8]) {
    for ct in [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "",
    ] {
        if let Ok(berth_registry::manifest::Document::Index(ix)) =
            berth_registry::manifest::parse(ct, data, "fuzz")
        {
            let _ =
                berth_registry::manifest::choose(&ix, &berth_registry::manifest::Platform::host());
        }
    }
    let _ = berth_image::config::ImageConfig::parse(data);
}

/// `POST /containers/create`'s body as berthd reads it, then the OCI spec built from it.
pub fn api_create(data: &[u8]) {
    let de = &mut serde_json::Deserializer::from_slice(data);
    let Ok(body) =
        serde_path_to_error::deserialize::<_, bollard_stubs::models::ContainerCreateBody>(de)
    else {
        return;
    };
    // Then into the engine's types, as berthd's create handler passes it on.
    let Ok(req) = serde_json::to_value(&body)
        .and_then(serde_json::from_value::<berth_engine::model::CreateRequest>)
    else {
        return;
    };
    let cfg = req.config;
    let mut hc = req.host_config.unwrap_or_default();
    // A profile given as a path would be read from this machine's disk: only inline JSON.
    if let Some(opts) = &mut hc.security_opt {
        opts.retain(|o| !o.starts_with("seccomp=") || o.starts_with("seccomp={"));
    }
    // What the runtime will read must be an OCI spec: the engine converts what it assembles
    // into oci-spec's type and reports a mismatch as its own internal error.
    if let Err(e) = berth_engine::build_for_fuzzing(&cfg, &hc) {
        assert!(
            !e.message.starts_with(berth_engine::INTERNAL),
            "the spec is not an OCI spec: {e}"
        );
    }
}

/// A `--format` template rendered against an inspect-like value. The first line of the input
/// is the template; the rest, if JSON, is the value.
pub fn format_template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (tmpl, rest) = text.split_once('\n').unwrap_or((text, ""));
    let value = serde_json::from_str(rest).unwrap_or_else(|_| {
        serde_json::json!({
            "Id": "0123456789ab", "Name": "/web", "State": {"Running": true, "ExitCode": 0},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"a": "b"}, "Cmd": ["sh", "-c", "x"]},
            "Mounts": [{"Source": "/s", "Destination": "/d"}], "Size": 1234
        })
    });
    let _ = format::render(tmpl, &value);
}

/// Reads every file of `dir` (none if it does not exist): (name, bytes).
pub fn inputs(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            let mut v = Vec::new();
            std::fs::File::open(e.path())
                .and_then(|mut f| f.read_to_end(&mut v))
                .expect("read input");
            out.push((e.file_name().to_string_lossy().into_owned(), v));
        }
    }
    out.sort();
    out
}
