//! Memory comes back after a burst: a burst of spawn-and-exit greenlets (all
//! live at once) raises RSS by tens of MiB; within a few decay intervals the
//! hub gives it back (stack pages, idle slab regions, the room in its own
//! tables, the allocator's free memory) to within 10% + 20 MiB of the RSS
//! before the burst. The only test of its binary, so that the process's RSS
//! is this test's.

use std::time::{Duration, Instant};

mod support;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

#[test]
fn rss_returns_after_a_burst_of_spawn_and_exit_greenlets() {
    const COUNT: usize = 200_000;
    if let Some(runner) = support::qemu() {
        support::skipped(
            "rss_returns_after_a_burst_of_spawn_and_exit_greenlets",
            &format!(
                "under `{runner}`, qemu-user ignores madvise, so stacks get mprotect guard pages \
                 (a mapping each) and memory is never given back; the burst exhausts the \
                 emulator's own memory"
            ),
        );
        return;
    }
    greenlet::yield_now(); // the hub exists before the measurement
    let before = rss_bytes();
    let gs: Vec<_> = (0..COUNT).map(|i| greenlet::spawn(move || i)).collect();
    let mut sum = 0;
    for g in gs {
        sum += g.get().unwrap();
    }
    assert_eq!(sum, COUNT * (COUNT - 1) / 2);
    let peak = rss_bytes();
    let bound = before + before / 10 + (20 << 20);
    assert!(
        peak > bound,
        "the burst should have raised RSS past the bound, or this test proves nothing: \
         {before} -> {peak} bytes"
    );
    let t0 = Instant::now();
    while rss_bytes() > bound {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "RSS stayed at {} MiB for 20 s after the burst: before {} MiB, peak {} MiB, \
             bound {} MiB",
            rss_bytes() >> 20,
            before >> 20,
            peak >> 20,
            bound >> 20
        );
        // The hub's loop (and its decay step) runs while the main
        // greenlet sleeps.
        greenlet::sleep(Duration::from_millis(50)).unwrap();
    }
    let stats = greenlet::hub::stats();
    assert_eq!(stats.live_stacks, 0);
}
