//! The hooks' fast path: is this call to be made cooperative? And errno.
//!
//! Everything here is allocation-free, lock-free and async-signal-safe: one
//! relaxed atomic load, and when patching is on, three thread-local reads
//! (none of which creates anything: the hub is never created by a hook).

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use crate::{PATCHED, UNPATCHED};

/// Whether a call of the `bit` family goes to the cooperative path: patched,
/// not inside `unpatched`, the thread has a live hub (not before its first
/// use, not after its teardown at thread exit), and it is not panicking (a
/// greenlet never parks mid-unwind; the call blocks the thread instead).
#[inline(always)]
pub(crate) fn on(bit: u32) -> bool {
    PATCHED.load(Ordering::Relaxed) & bit != 0 && in_greenlet()
}

#[inline]
fn in_greenlet() -> bool {
    UNPATCHED.with(|u| u.get()) == 0 && greenlet_runtime::hub::exists() && !std::thread::panicking()
}

#[inline]
pub(crate) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}
