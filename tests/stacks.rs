//! Stacks at scale: slab stacks without a memory map each, the mprotect
//! fallback, exhaustion as an error value (a size no address space holds
//! included), overflow reports, and memory given back after a burst or a
//! change of stack size.
//!
//! Measurements of the whole process (memory maps, RSS) and crashes run in
//! a child process: the parent re-executes this test binary for one
//! `#[ignore]`d `child_*` test, so tests running in parallel threads do not
//! disturb the figures.

mod support;

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;

use greenlet::hub::{self, StackGuard};
use greenlet::{park, spawn, Builder, Waker};

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

type Parked = (
    Rc<RefCell<Vec<Waker>>>,
    Vec<greenlet::Greenlet<Result<(), greenlet::Interrupted>>>,
);

/// Spawns `n` greenlets and lets them all park; returns their wakers and
/// handles.
fn park_all(n: usize) -> Parked {
    let wakers: Rc<RefCell<Vec<Waker>>> = Rc::default();
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let w = wakers.clone();
            spawn(move || park(&"wake", |waker| w.borrow_mut().push(waker)))
        })
        .collect();
    greenlet::yield_now();
    assert_eq!(wakers.borrow().len(), n, "all parked");
    (wakers, gs)
}

/// Wakes what [`park_all`] parked and joins it.
fn wake_all((wakers, gs): Parked) {
    for w in wakers.borrow_mut().drain(..) {
        w.wake();
    }
    for g in &gs {
        g.join().unwrap();
        assert!(g.successful());
    }
}

/// Spawns `n` greenlets that all park, checks they all did, wakes and joins
/// them.
fn park_wake_join(n: usize) {
    let parked = park_all(n);
    assert_eq!(hub::stats().live_stacks, n);
    wake_all(parked);
}

#[test]
fn hundred_thousand_parked_greenlets_add_few_memory_maps() {
    if let Some(runner) = support::qemu() {
        // The pool must notice and fall back (else overflows would go
        // unreported: an_overflowing_greenlet_is_reported_by_name_and_aborts
        // checks that under qemu too); what cannot hold is the map count.
        support::assert_ignored_test_passes("child_guard_falls_back_under_qemu", &[]);
        support::skipped(
            "hundred_thousand_parked_greenlets_add_few_memory_maps (the map count)",
            &format!(
                "under `{runner}`, qemu-user answers every madvise with 0 without doing it, so \
                 MADV_GUARD_INSTALL guards nothing and the pool uses mprotect guard pages \
                 (2 maps per stack); the fallback was checked instead"
            ),
        );
        return;
    }
    support::assert_ignored_test_passes("child_hundred_thousand_parked", &[]);
}

#[test]
#[ignore = "run in its own process by hundred_thousand_parked_greenlets_add_few_memory_maps"]
fn child_hundred_thousand_parked() {
    let before = maps();
    let parked = park_all(100_000);
    let during = maps();
    assert!(
        during < before + 1000,
        "maps grew from {before} to {during} for 100k greenlets"
    );
    assert_eq!(
        hub::stack_guard(),
        StackGuard::Auto,
        "MADV_GUARD_INSTALL is used here"
    );
    wake_all(parked);
}

#[test]
#[ignore = "run in its own process by hundred_thousand_parked_greenlets_add_few_memory_maps"]
fn child_guard_falls_back_under_qemu() {
    park_wake_join(10);
    assert_eq!(
        hub::stack_guard(),
        StackGuard::Mprotect,
        "an madvise that guards nothing is detected"
    );
}

#[test]
fn forced_fallback_works_for_ten_thousand_greenlets() {
    support::assert_ignored_test_passes(
        "child_fallback_ten_thousand",
        &[("GREENLET_STACK_GUARD", "mprotect")],
    );
}

#[test]
#[ignore = "run in its own process by forced_fallback_works_for_ten_thousand_greenlets"]
fn child_fallback_ten_thousand() {
    assert_eq!(
        hub::stack_guard(),
        StackGuard::Mprotect,
        "forced by the environment"
    );
    let before = maps();
    let parked = park_all(10_000);
    // The fallback really is per-stack maps: about two per stack.
    let grown = maps() - before;
    assert!(grown >= 10_000, "expected per-stack maps, grew by {grown}");
    wake_all(parked);
}

#[test]
fn switching_to_the_fallback_at_run_time_works() {
    hub::set_stack_guard(StackGuard::Mprotect);
    park_wake_join(500);
    hub::set_stack_guard(StackGuard::Auto);
    park_wake_join(500);
}

#[test]
fn a_configured_stack_limit_is_an_error_value_naming_the_limit() {
    hub::set_stack_guard(StackGuard::Mprotect);
    hub::set_max_stacks(Some(50));
    let mut held = Vec::new();
    let err = loop {
        match Builder::new().spawn(|| ()) {
            Ok(g) => held.push(g),
            Err(e) => break e,
        }
        assert!(held.len() <= 50, "the limit was not enforced");
    };
    assert_eq!(held.len(), 50);
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    let msg = err.to_string();
    assert!(msg.contains("limit") && msg.contains("50"), "{msg}");
    // Finishing greenlets frees slots again.
    for g in held.drain(..) {
        g.join().unwrap();
    }
    Builder::new().spawn(|| ()).unwrap().join().unwrap();
    hub::set_max_stacks(None);
}

#[test]
fn kernel_refusing_memory_under_the_fallback_is_an_error_not_a_crash() {
    support::assert_ignored_test_passes(
        "child_exhaust_address_space",
        &[("GREENLET_STACK_GUARD", "mprotect")],
    );
}

#[test]
#[ignore = "run in its own process by kernel_refusing_memory_under_the_fallback_is_an_error_not_a_crash"]
fn child_exhaust_address_space() {
    // Cap the address space a little above what is mapped now, so stack
    // mappings fail inside the kernel (ENOMEM), as with vm.max_map_count.
    let vm: usize = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    let cap = (vm * 1024 + (64 << 20)) as libc::rlim_t;
    let lim = libc::rlimit {
        rlim_cur: cap,
        rlim_max: cap,
    };
    // SAFETY: setrlimit with a valid struct; this child process only.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let mut held = Vec::new();
    let err = loop {
        match Builder::new().spawn(|| ()) {
            Ok(g) => held.push(g),
            Err(e) => break e,
        }
        assert!(held.len() < 100_000, "64 MiB cannot hold this many stacks");
    };
    assert!(
        held.len() > 100,
        "only {} stacks before failing",
        held.len()
    );
    let msg = err.to_string();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{msg}");
    assert!(msg.contains("vm.max_map_count"), "names the limit: {msg}");
    println!("failed cleanly after {} stacks: {msg}", held.len());
    drop(held);
}

#[test]
fn an_overflowing_greenlet_is_reported_by_name_and_aborts() {
    let out = support::run_ignored_test("child_overflow", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child must abort: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("greenlet 'deep-recursion'")
            && stderr.contains("overflowed its stack of 256 KiB")
            && stderr.contains("Builder::stack_size"),
        "stderr:\n{stderr}"
    );
}

#[test]
#[ignore = "run in its own process by an_overflowing_greenlet_is_reported_by_name_and_aborts"]
fn child_overflow() {
    fn recurse(n: u64) -> u64 {
        let buf = black_box([n as u8; 256]);
        if n == u64::MAX {
            return 0;
        }
        recurse(n + 1) + buf[0] as u64
    }
    let g = Builder::new()
        .name("deep-recursion")
        .spawn(|| recurse(0))
        .unwrap();
    let _ = g.join();
    unreachable!("the overflow aborts the process");
}

#[test]
fn a_main_thread_overflow_still_gets_rusts_own_report() {
    let out = support::run_ignored_test("child_thread_overflow", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("has overflowed its stack"),
        "Rust's handler still reports non-greenlet overflows:\n{stderr}"
    );
    assert!(!stderr.contains("greenlet '"), "{stderr}");
}

#[test]
#[ignore = "run in its own process by a_main_thread_overflow_still_gets_rusts_own_report"]
fn child_thread_overflow() {
    fn recurse(n: u64) -> u64 {
        let buf = black_box([n as u8; 1024]);
        if n == u64::MAX {
            return 0;
        }
        recurse(n + 1) + buf[0] as u64
    }
    greenlet::yield_now(); // a hub exists, so our handler is installed
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    let _ = t.join();
}

#[test]
fn rss_falls_back_after_a_burst_of_deep_stacks() {
    support::assert_ignored_test_passes("child_rss_after_burst", &[]);
}

#[test]
#[ignore = "run in its own process by rss_falls_back_after_a_burst_of_deep_stacks"]
fn child_rss_after_burst() {
    fn touch_48k() -> u8 {
        // 48 KiB of this greenlet's stack, every page written.
        let mut buf = [1u8; 48 * 1024];
        black_box(&mut buf);
        // Still live when the next one starts, so each needs its own stack
        // (one that finished would hand its warm stack to the next).
        greenlet::yield_now();
        buf[100]
    }
    greenlet::yield_now();
    let before = rss_bytes();
    let gs: Vec<_> = (0..1000).map(|_| spawn(touch_48k)).collect();
    for g in gs {
        g.get().unwrap();
    }
    let peak = rss_bytes();
    // The pool gives back stacks that stayed unused for a whole decay
    // interval: after at most two intervals of idleness they are released.
    let t0 = std::time::Instant::now();
    while rss_bytes() > before + (6 << 20) && t0.elapsed() < 3 * hub::DECAY_INTERVAL {
        greenlet::sleep(hub::DECAY_INTERVAL / 10).unwrap();
    }
    let after = rss_bytes();
    println!(
        "RSS before {} KiB, after the burst {} KiB, after idle {} KiB",
        before / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(peak > before + (30 << 20), "the burst did touch ~48 MiB");
    assert!(
        after < before + (6 << 20),
        "RSS must fall back within a few MiB: before {before}, after {after}"
    );
    assert!(
        t0.elapsed() >= hub::DECAY_INTERVAL,
        "not released while possibly still needed"
    );
}

#[test]
fn builder_stack_sizes_are_rounded_and_large_ones_usable() {
    let g = Builder::new()
        .stack_size(100_000)
        .spawn(|| {
            let mut buf = [7u8; 80_000];
            black_box(&mut buf);
            buf[79_999]
        })
        .unwrap();
    assert_eq!(g.get().unwrap(), 7);
    assert!(Builder::new().stack_size(usize::MAX).spawn(|| ()).is_err());
    hub::set_default_stack_size(128 * 1024).unwrap();
    assert_eq!(hub::default_stack_size(), 128 * 1024);
    let g = spawn(|| {
        let mut buf = [1u8; 100_000];
        black_box(&mut buf);
        buf[5]
    });
    assert_eq!(g.get().unwrap(), 1);
    assert!(hub::set_default_stack_size(1000).is_err());
}

#[test]
fn greenlets_killed_before_their_first_run_give_their_stacks_back() {
    let before = hub::stats();
    let pooled = spawn(|| 1);
    let own = Builder::new().stack_size(512 * 1024).spawn(|| 2).unwrap();
    assert_eq!(hub::stats().live_stacks, before.live_stacks + 2);
    pooled.kill().unwrap();
    own.kill().unwrap();
    let after = hub::stats();
    assert_eq!(after.live_stacks, before.live_stacks);
    assert!(
        after.free_stacks >= 1,
        "the reserved default-size stack is free again"
    );
    // The pool still hands out stacks under a limit that only the given-back
    // reservations leave room for.
    hub::set_max_stacks(Some(after.live_stacks + 1));
    assert_eq!(spawn(|| 3).get().unwrap(), 3);
    assert!(Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| 4)
        .unwrap()
        .get()
        .is_ok());
    hub::set_max_stacks(None);
}

#[test]
fn a_new_default_size_applies_to_greenlets_spawned_before_it_that_have_not_run() {
    fn depth_ok() -> u8 {
        let mut buf = [3u8; 200_000];
        black_box(&mut buf);
        buf[7]
    }
    hub::set_default_stack_size(64 * 1024).unwrap();
    let g = spawn(depth_ok);
    hub::set_default_stack_size(512 * 1024).unwrap();
    assert_eq!(g.get().unwrap(), 3, "ran on a stack of the new size");
    assert_eq!(hub::stats().live_stacks, 0);
}

#[test]
fn a_default_size_that_cannot_be_mapped_fails_only_the_greenlets_promised_it() {
    let waiting: Vec<_> = (0..3).map(|i| spawn(move || i)).collect();
    // More than any address space (57-bit included): the stacks promised
    // to the greenlets above cannot be made at this size.
    let huge = 1usize << 60;
    let e = hub::set_default_stack_size(huge).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory, "{e}");
    assert_eq!(hub::default_stack_size(), huge, "changed all the same");
    for g in waiting {
        match g.get() {
            Err(greenlet::GreenletError::Panicked(p)) => {
                assert!(!greenlet::panic_message(&*p).is_empty());
            }
            other => panic!("ran or ended otherwise: {other:?}"),
        }
    }
    // A spawn at that size fails as an error value, not a panic, with
    // either kind of guard, and so does a greenlet's own stack of it...
    assert!(Builder::new().spawn(|| ()).is_err());
    hub::set_stack_guard(StackGuard::Mprotect);
    assert!(Builder::new().spawn(|| ()).is_err());
    hub::set_stack_guard(StackGuard::Auto);
    let e = Builder::new().stack_size(huge).spawn(|| ()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory, "{e}");
    // ...and back at a size that maps, the hub goes on.
    hub::set_default_stack_size(256 * 1024).unwrap();
    assert_eq!(spawn(|| 5).get().unwrap(), 5);
}

#[test]
fn slab_regions_of_a_stack_size_no_longer_used_are_unmapped() {
    support::assert_ignored_test_passes("child_regions_of_an_old_size", &[]);
}

#[test]
#[ignore = "run in its own process by slab_regions_of_a_stack_size_no_longer_used_are_unmapped"]
fn child_regions_of_an_old_size() {
    fn vm_size_kib() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    const N: usize = 2000;
    const OLD_KIB: usize = 512;
    hub::set_default_stack_size(OLD_KIB * 1024).unwrap();
    let before = vm_size_kib();
    let parked = park_all(N);
    let during = vm_size_kib();
    assert!(
        during >= before + N * OLD_KIB,
        "{N} stacks of {OLD_KIB} KiB reserved: {before} -> {during} KiB"
    );
    // The parked greenlets keep their stacks of the old size until they
    // end; then those are dropped, not pooled, and each region goes with
    // its last greenlet: no `trim_stacks` needed, and no burst's decay.
    hub::set_default_stack_size(256 * 1024).unwrap();
    wake_all(parked);
    let after = vm_size_kib();
    assert!(
        after + N * OLD_KIB * 9 / 10 <= during,
        "the old size's address space was kept: {before} -> {during} -> {after} KiB"
    );
}

/// A thread whose first use of greenlet is `Builder::spawn` at the fd
/// limit gets the error of making its hub (`EMFILE`), not a panic; with
/// fds free again, the same spawn works.
#[test]
fn a_first_spawn_at_the_fd_limit_is_an_error_not_a_panic() {
    support::assert_ignored_test_passes("child_first_spawn_at_the_fd_limit", &[]);
}

#[test]
#[ignore = "run in its own process by a_first_spawn_at_the_fd_limit_is_an_error_not_a_panic"]
fn child_first_spawn_at_the_fd_limit() {
    let files = support::use_up_fds(8);
    let err = Builder::new().spawn(|| 1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
    drop(files);
    assert_eq!(Builder::new().spawn(|| 2).unwrap().get().unwrap(), 2);
}
