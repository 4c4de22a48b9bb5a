//! Giving the heap back after a burst.
//!
//! berthd serves each request on tokio's threads and does its file and process work on the
//! blocking pool, which grows to one thread per request in flight (41 threads during 50
//! container lives at once) and shrinks again after 10 idle seconds. glibc's malloc gives each
//! such thread an arena of its own and keeps what is freed there for re-use, so a burst left
//! berthd ~7 MiB larger for good, though almost none of it was live: measured on the soak's
//! burst of 50, `RssAnon` 8.3 MiB before, 15.7 MiB after the pool had shrunk, 9.1 MiB after a
//! `malloc_trim(0)` (fewer arenas, `MALLOC_ARENA_MAX=2`, kept 6.1 of the 7 MiB: it is
//! fragmentation in whichever arenas there are, not their number).
//!
//! So a watcher looks at the anonymous RSS now and then, and when it has grown by more than
//! [`SLACK_KIB`] since the last look it asks glibc to return free pages (`malloc_trim(0)`
//! walks every arena and `madvise`s the free ones away; a few milliseconds for berthd's heap,
//! on the blocking pool). An idle berthd does nothing: nothing grew.

use std::time::Duration;

/// How often the watcher looks.
const EVERY: Duration = Duration::from_secs(15);

/// Growth of the anonymous RSS that makes the watcher trim.
pub const SLACK_KIB: u64 = 1024;

/// Resident anonymous memory of this process, in KiB (`RssAnon` of /proc/self/status).
pub fn anon_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Returns free heap pages to the kernel; the anonymous RSS before and after, in KiB.
pub fn trim() -> (u64, u64) {
    let before = anon_kib().unwrap_or(0);
    // SAFETY: malloc_trim takes no pointers and only rearranges the allocator's own free
    // lists under its arena locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) };
    (before, anon_kib().unwrap_or(0))
}

/// Watches the heap for as long as berthd runs (spawn it on the runtime).
pub async fn watch() {
    let mut last = anon_kib().unwrap_or(0);
    // Whether the last trim gave something back: a burst's memory is freed in stages (its
    // requests end, then its blocking threads after 10 idle seconds), so a trim that paid is
    // followed by another at the next look.
    let mut paid = false;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = anon_kib().unwrap_or(0);
        if now > last + SLACK_KIB || paid {
            if let Ok((before, after)) = tokio::task::spawn_blocking(trim).await {
                tracing::debug!(before_kib = before, after_kib = after, "heap trimmed");
                paid = before >= after + SLACK_KIB / 4;
                last = after;
                continue;
            }
        }
        // The mark only moves down between trims, so that slow growth adds up to a trim.
        last = last.min(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_returns_freed_heap() {
        // Many small blocks on several threads (each gets an arena), freed but for one block
        // per thread at the arena's end, so that the arenas cannot shrink on their own.
        let keep: Vec<Vec<Box<[u8; 512]>>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut v: Vec<Box<[u8; 512]>> =
                            (0..8192).map(|_| Box::new([1u8; 512])).collect();
                        let last = v.pop().unwrap();
                        drop(v);
                        vec![last]
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (before, after) = trim();
        assert!(
            before >= after + 4 * 1024,
            "malloc_trim returned {} KiB of ~16 MiB freed (anon {before} -> {after} KiB)",
            before.saturating_sub(after)
        );
        drop(keep);
    }
}
