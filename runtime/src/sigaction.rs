//! The one `sigaction(2)` helper, for the two places that take a signal
//! over: signal handlers that run as greenlets (`signal`) and the stack
//! overflow reporter (`stack::overflow`).

use std::io;
use std::ptr;

/// Installs `handler` (a handler address, or `SIG_DFL`/`SIG_IGN`) for
/// `signum` with `flags` and an empty mask; returns the action it replaced.
///
/// # Errors
/// The error of `sigaction(2)` (`EINVAL` for a number that cannot be
/// caught).
pub(crate) fn install(
    signum: libc::c_int,
    handler: libc::sighandler_t,
    flags: libc::c_int,
) -> io::Result<libc::sigaction> {
    // SAFETY: zeroed `sigaction`s are valid (SIG_DFL, no flags, and a mask
    // that `sigemptyset` then initialises); both pointers are to live
    // locals.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        let mut prev: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signum, &act, &mut prev) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(prev)
    }
}

/// Puts back an action that [`install`] returned.
pub(crate) fn restore(signum: libc::c_int, prev: &libc::sigaction) {
    // SAFETY: `prev` is a valid action, as the kernel handed it out.
    unsafe { libc::sigaction(signum, prev, ptr::null_mut()) };
}
