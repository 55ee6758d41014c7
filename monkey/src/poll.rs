//! The readiness hooks: `poll`, `ppoll`, `select`, `pselect`.
//!
//! A call with a zero timeout, or with a signal mask (`ppoll`/`pselect`:
//! the mask cannot apply to a greenlet's wait), goes to glibc. Otherwise
//! the fds are checked with a zero-timeout `poll`; if none is ready, the
//! greenlet parks until one may be (one fd: its kept registration; several:
//! a one-shot wait on all of them) or the timeout passes, and checks again.
//! An interrupted wait fails with an errno a real `poll` never returns
//! (`ETIMEDOUT` for a `Timeout`, `ECANCELED` for a kill), so a caller that
//! retries on `EINTR` does not wait on.

use std::ffi::c_int;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use libc::{fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use crate::fdwait::{self, Dir, Woke};
use crate::gate::{errno, hook, on, set_errno};
use crate::{real, SELECT};

/// The cooperative `poll` over `fds` with `timeout` (`None`: forever).
fn poll_fds(fds: &mut [pollfd], timeout: Option<Duration>) -> c_int {
    let saved = errno();
    let deadline = greenlet_runtime::deadline_within(timeout);
    loop {
        // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfds.
        let n = unsafe { real::poll(fds.as_mut_ptr(), fds.len() as nfds_t, 0) };
        if n != 0 {
            return n;
        }
        let woke = match single(fds) {
            Some((fd, dir)) => fdwait::wait(fd, dir, deadline),
            None => {
                let (mut r, mut w) = (Vec::new(), Vec::new());
                for p in fds.iter().filter(|p| p.fd >= 0) {
                    if p.events & libc::POLLOUT != 0 {
                        w.push(p.fd);
                    }
                    if p.events & libc::POLLOUT == 0 || p.events & !libc::POLLOUT != 0 {
                        r.push(p.fd);
                    }
                }
                fdwait::wait_many(&r, &w, deadline)
            }
        };
        match woke {
            Woke::Ready => {}
            Woke::Expired => {
                set_errno(saved);
                return 0;
            }
            Woke::Failed(e) => {
                set_errno(e);
                return -1;
            }
            Woke::Blocking => {
                let ms = match fdwait::remaining(deadline) {
                    None => 0,
                    Some(None) => -1,
                    Some(Some(d)) => d.as_millis().min(c_int::MAX as u128) as c_int,
                };
                // SAFETY: as above.
                return unsafe { real::poll(fds.as_mut_ptr(), fds.len() as nfds_t, ms) };
            }
        }
    }
}

/// The one fd and direction of a one-fd, one-direction poll.
fn single(fds: &[pollfd]) -> Option<(RawFd, Dir)> {
    let [p] = fds else { return None };
    if p.fd < 0 {
        return None;
    }
    let read = libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP;
    match (p.events & read != 0, p.events & libc::POLLOUT != 0) {
        (true, false) => Some((p.fd, Dir::Read)),
        (false, true) => Some((p.fd, Dir::Write)),
        _ => None,
    }
}

fn timespec_duration(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The caller's pollfd array as a slice.
///
/// # Safety
/// `fds` points at `n` valid pollfds (or `n` is 0).
unsafe fn pollfds<'a>(fds: *mut pollfd, n: nfds_t) -> &'a mut [pollfd] {
    if n == 0 || fds.is_null() {
        &mut []
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(fds, n as usize) }
    }
}

hook!(crate::SELECT, poll => coop_poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int);
hook!(crate::SELECT, ppoll => coop_ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int);
hook!(crate::SELECT, select => coop_select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int);
hook!(crate::SELECT, pselect => coop_pselect(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int);

/// The cooperative side of the `poll` hook.
///
/// # Safety
/// The C contract of `poll(2)`.
#[inline(never)]
unsafe fn coop_poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !on(SELECT) || fds.is_null() && n > 0 {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let t = u64::try_from(timeout).ok().map(Duration::from_millis);
    // SAFETY: the caller passes `n` valid pollfds.
    poll_fds(unsafe { pollfds(fds, n) }, t)
}

/// The cooperative side of the `ppoll` hook.
///
/// # Safety
/// The C contract of `ppoll(2)`.
#[inline(never)]
unsafe fn coop_ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if mask.is_null() && on(SELECT) && !(fds.is_null() && n > 0) {
        // SAFETY: the caller passes null or a valid timespec.
        match unsafe { timeout.as_ref() }.map(timespec_duration) {
            // SAFETY: the caller passes `n` valid pollfds.
            None => return poll_fds(unsafe { pollfds(fds, n) }, None),
            Some(Some(t)) if !t.is_zero() => {
                // SAFETY: as above.
                return poll_fds(unsafe { pollfds(fds, n) }, Some(t));
            }
            _ => {}
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::ppoll(fds, n, timeout, mask) }
}

/// `select` over `poll`: the fd sets become pollfds and back.
///
/// # Safety
/// The fd sets are null or valid for `nfds` bits.
unsafe fn select_fds(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: Option<Duration>,
) -> c_int {
    let mut fds = Vec::new();
    for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
        let mut events = 0;
        // SAFETY: the sets are valid for `nfds` bits (caller's contract).
        unsafe {
            if !r.is_null() && libc::FD_ISSET(fd, r) {
                events |= libc::POLLIN;
            }
            if !w.is_null() && libc::FD_ISSET(fd, w) {
                events |= libc::POLLOUT;
            }
            if !e.is_null() && libc::FD_ISSET(fd, e) {
                events |= libc::POLLPRI;
            }
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let n = poll_fds(&mut fds, timeout);
    if n < 0 {
        return n;
    }
    if fds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        set_errno(libc::EBADF);
        return -1;
    }
    let mut count = 0;
    // SAFETY: as above.
    unsafe {
        for set in [r, w, e] {
            if !set.is_null() {
                libc::FD_ZERO(set);
            }
        }
        for p in &fds {
            let readable = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
            for (set, bits) in [
                (r, readable),
                (w, libc::POLLOUT | libc::POLLERR),
                (e, libc::POLLPRI),
            ] {
                if !set.is_null() && p.events & bits != 0 && p.revents & bits != 0 {
                    libc::FD_SET(p.fd, set);
                    count += 1;
                }
            }
        }
    }
    count
}

/// The cooperative side of the `select` hook.
///
/// # Safety
/// The C contract of `select(2)`.
#[inline(never)]
unsafe fn coop_select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *mut timeval,
) -> c_int {
    // SAFETY: the caller passes null or a valid timeval.
    let t = unsafe { timeout.as_ref() }.map(|tv| {
        (tv.tv_sec >= 0 && (0..1_000_000).contains(&tv.tv_usec))
            .then(|| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
    });
    match t {
        Some(Some(t)) if !t.is_zero() && on(SELECT) => {
            // A timeout past the clock's range has no end (and must not
            // panic here: this is an `extern "C"` hook).
            let end = greenlet_runtime::deadline_after(t);
            // SAFETY: the caller's sets.
            let n = unsafe { select_fds(nfds, r, w, e, Some(t)) };
            // Linux leaves the time not slept in `timeout`.
            let left = end.map_or(t, |end| end.saturating_duration_since(Instant::now()));
            // SAFETY: checked non-null above (`t` is `Some`).
            unsafe {
                (*timeout).tv_sec = left.as_secs() as _;
                (*timeout).tv_usec = left.subsec_micros() as _;
            }
            n
        }
        // SAFETY: the caller's sets.
        None if on(SELECT) => unsafe { select_fds(nfds, r, w, e, None) },
        // SAFETY: forwarding the caller's call.
        _ => unsafe { real::select(nfds, r, w, e, timeout) },
    }
}

/// The cooperative side of the `pselect` hook.
///
/// # Safety
/// The C contract of `pselect(2)`.
#[inline(never)]
unsafe fn coop_pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller passes null or a valid timespec.
    let t = unsafe { timeout.as_ref() }.map(timespec_duration);
    if mask.is_null() && on(SELECT) {
        match t {
            // SAFETY: the caller's sets.
            Some(Some(t)) if !t.is_zero() => return unsafe { select_fds(nfds, r, w, e, Some(t)) },
            // SAFETY: the caller's sets.
            None => return unsafe { select_fds(nfds, r, w, e, None) },
            _ => {}
        }
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::pselect(nfds, r, w, e, timeout, mask) }
}
