//! Replays every fuzz target over its corpus (`fuzz/corpus/<target>`) and the inputs the
//! fuzzers found (`fuzz/regressions/<target>`). A found input that panics again, on any
//! thread (gtmpl lexes on a thread of its own), or that hangs again, fails here.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Panics seen on any thread since the replay began.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// How long one input may take. libFuzzer's `-timeout=10` is the same bound; replays run
/// unoptimized, but every stored input runs in milliseconds.
const PER_INPUT: Duration = Duration::from_secs(20);

#[test]
fn corpora_and_found_inputs_replay_cleanly() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        hook(info);
    }));
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut counts = Vec::new();
    for (name, target) in berth_fuzz_targets::TARGETS {
        let mut n = 0;
        for kind in ["corpus", "regressions"] {
            for (file, data) in berth_fuzz_targets::inputs(&fuzz.join(kind).join(name)) {
                let before = PANICS.load(Ordering::SeqCst);
                let (tx, rx) = std::sync::mpsc::channel();
                let target = *target;
                // The stack of a main thread (ulimit -s 8192), where the CLI and libFuzzer
                // run these: a spawned thread's default 2 MiB is too little for the deepest
                // corpus inputs in an unoptimized build.
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn(move || {
                        target(&data);
                        let _ = tx.send(());
                    })
                    .expect("a replay thread");
                match rx.recv_timeout(PER_INPUT) {
                    Ok(()) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        panic!("{name}: {kind}/{file} still runs after {PER_INPUT:?}")
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        panic!("{name}: {kind}/{file} panics")
                    }
                }
                // A panic on a thread the target started shows here: the hook has run
                // before that thread's unwinding could let the target return.
                assert_eq!(
                    PANICS.load(Ordering::SeqCst),
                    before,
                    "{name}: {kind}/{file} panics on a thread of its own"
                );
                n += 1;
            }
        }
        assert!(n > 0, "{name} has no corpus: seed fuzz/corpus/{name}");
        counts.push(format!("{name}: {n}"));
    }
    eprintln!("replayed {}", counts.join(", "));
}
