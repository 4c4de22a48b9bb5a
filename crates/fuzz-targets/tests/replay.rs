//! Replays every fuzz target over its corpus (`fuzz/corpus/<target>`) and the inputs the
//! fuzzers found (`fuzz/regressions/<target>`). A found input that panics again fails here.

use std::path::Path;

#[test]
fn corpora_and_found_inputs_replay_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut counts = Vec::new();
    for (name, target) in berth_fuzz_targets::TARGETS {
        let mut n = 0;
        for kind in ["corpus", "regressions"] {
            for (file, data) in berth_fuzz_targets::inputs(&fuzz.join(kind).join(name)) {
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name}: {kind}/{file} panics");
                n += 1;
            }
        }
        assert!(n > 0, "{name} has no corpus: seed fuzz/corpus/{name}");
        counts.push(format!("{name}: {n}"));
    }
    eprintln!("replayed {}", counts.join(", "));
}
