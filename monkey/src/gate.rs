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

/// Whether the `bit` family is patched at all: the one test the hooks make
/// before forwarding to glibc (so their pass-through is a load, a test and
/// a tail jump).
#[inline(always)]
pub(crate) fn patched(bit: u32) -> bool {
    PATCHED.load(Ordering::Relaxed) & bit != 0
}

/// Defines the exported hook `$name`: glibc's function unless `$bit` is
/// patched, else `$coop` (which makes the remaining checks itself).
macro_rules! hook {
    ($bit:expr, $name:ident => $coop:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        /// # Safety
        /// The C contract of libc's function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if $crate::gate::patched($bit) {
                // SAFETY: the caller's contract, passed on.
                return unsafe { $coop($($arg),*) };
            }
            // SAFETY: forwarding the caller's call.
            unsafe { $crate::real::$name($($arg),*) }
        }
    };
}
pub(crate) use hook;
