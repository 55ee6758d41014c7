//! The sleep hooks: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`
//! become a greenlet sleep.
//!
//! An interrupted sleep (a `Timeout`, a kill) returns `EINTR` with *no*
//! time left (`rem` zeroed, `sleep` returning 0): callers that resume the
//! remainder after `EINTR`, as `std::thread::sleep` does, then return at
//! once instead of sleeping on.

use std::ffi::{c_int, c_uint};
use std::time::Duration;

use libc::{clockid_t, timespec};

use crate::fdwait::{self, Woke};
use crate::gate::{errno, hook, on, set_errno};
use crate::{real, SLEEP};

/// Sleeps cooperatively for `d`: `Ok` when it elapsed, `Err(EINTR)` when
/// interrupted, `None` when the greenlet may not park (sleep for real).
fn nap(d: Duration) -> Option<Result<(), c_int>> {
    match fdwait::sleep(d) {
        Woke::Expired | Woke::Ready => Some(Ok(())),
        Woke::Failed(_) => Some(Err(libc::EINTR)),
        Woke::Blocking => None,
    }
}

fn duration(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

hook!(crate::SLEEP, nanosleep => coop_nanosleep(req: *const timespec, rem: *mut timespec) -> c_int);
hook!(crate::SLEEP, clock_nanosleep => coop_clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int);
hook!(crate::SLEEP, usleep => coop_usleep(usec: c_uint) -> c_int);
hook!(crate::SLEEP, sleep => coop_sleep(secs: c_uint) -> c_uint);

/// The cooperative side of the `nanosleep` hook.
///
/// # Safety
/// The C contract of `nanosleep(2)`.
#[inline(never)]
unsafe fn coop_nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    // SAFETY: the caller passes a valid (or null) timespec.
    let d = unsafe { req.as_ref() }.and_then(duration);
    if let (Some(d), true) = (d, on(SLEEP)) {
        match nap(d) {
            Some(Ok(())) => return 0,
            Some(Err(e)) => {
                // SAFETY: the caller passes null or a writable timespec.
                if let Some(rem) = unsafe { rem.as_mut() } {
                    *rem = timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                }
                set_errno(e);
                return -1;
            }
            None => {}
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::nanosleep(req, rem) }
}

/// The cooperative side of the `clock_nanosleep` hook.
///
/// # Safety
/// The C contract of `clock_nanosleep(2)` (which returns the error number).
#[inline(never)]
unsafe fn coop_clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    );
    // SAFETY: the caller passes a valid (or null) timespec.
    let req_d = unsafe { req.as_ref() }.and_then(duration);
    if let (Some(mut d), true) = (req_d, wall && on(SLEEP)) {
        if flags & libc::TIMER_ABSTIME != 0 {
            let mut now = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is writable.
            unsafe { libc::clock_gettime(clock, &mut now) };
            d = d.saturating_sub(duration(&now).unwrap_or_default());
        }
        let saved = errno();
        let r = nap(d);
        set_errno(saved);
        match r {
            Some(Ok(())) => return 0,
            Some(Err(e)) => {
                if flags & libc::TIMER_ABSTIME == 0 {
                    // SAFETY: the caller passes null or a writable timespec.
                    if let Some(rem) = unsafe { rem.as_mut() } {
                        *rem = timespec {
                            tv_sec: 0,
                            tv_nsec: 0,
                        };
                    }
                }
                return e;
            }
            None => {}
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::clock_nanosleep(clock, flags, req, rem) }
}

/// The cooperative side of the `usleep` hook.
///
/// # Safety
/// The C contract of `usleep(3)`.
#[inline(never)]
unsafe fn coop_usleep(usec: c_uint) -> c_int {
    if on(SLEEP) {
        match nap(Duration::from_micros(usec.into())) {
            Some(Ok(())) => return 0,
            Some(Err(e)) => {
                set_errno(e);
                return -1;
            }
            None => {}
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::usleep(usec) }
}

/// The cooperative side of the `sleep` hook.
///
/// # Safety
/// The C contract of `sleep(3)`.
#[inline(never)]
unsafe fn coop_sleep(secs: c_uint) -> c_uint {
    if on(SLEEP) {
        let saved = errno();
        let r = nap(Duration::from_secs(secs.into()));
        set_errno(saved);
        if r.is_some() {
            return 0;
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::sleep(secs) }
}
