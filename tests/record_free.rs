//! A finished greenlet's record is freed whole even when its result's
//! `Drop` panics: the panic reaches whoever dropped the last handle (as a
//! `Box`'s would), and the rest of the record (its name, its `Extra`) is
//! freed all the same.
//!
//! Counted with a global allocator that keeps, per thread, how many blocks
//! the thread allocated and has not freed; the only test of its binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use greenlet::Builder;

/// Counts this thread's live blocks around the system allocator.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every call is passed to `System` unchanged; the count is a
// const-initialised thread-local without a destructor (no allocation), and
// `try_with` skips it while the thread's locals are being torn down.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let _ = LIVE.try_with(|n| n.set(n.get() + 1));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|n| n.set(n.get() - 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live_blocks() -> isize {
    LIVE.with(Cell::get)
}

/// A result whose drop panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the result's drop panics");
    }
}

/// Spawns a named greenlet returning `PanicsOnDrop`, joins it while it is
/// alive (which gives its record an `Extra`), then drops the last handle.
fn one_round() {
    let g = Builder::new()
        .name("panicky result")
        .spawn(|| {
            greenlet::yield_now();
            PanicsOnDrop
        })
        .unwrap();
    g.join().unwrap();
    assert!(g.successful());
    let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(g)));
    let payload = dropped.expect_err("the result's panic reaches the dropper");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the result's drop panics")
    );
}

#[test]
fn a_result_whose_drop_panics_still_frees_the_whole_record() {
    // The panics are expected: no message for each.
    panic::set_hook(Box::new(|_| {}));
    // Warm-up: the hub, its tables and the stack pool reach their sizes.
    for _ in 0..3 {
        one_round();
    }
    let before = live_blocks();
    for _ in 0..20 {
        one_round();
    }
    let leaked = live_blocks() - before;
    let _ = panic::take_hook();
    assert_eq!(leaked, 0, "blocks left behind by 20 freed records");
}
