//! The Linux fast path of the reactor: `epoll_ctl` and `epoll_wait` called
//! directly on the epoll instance of the hub's `polling::Poller`.
//!
//! `Poller::wait` costs five syscalls on Linux whatever the timeout (it
//! arms its timerfd and re-arms it with `epoll_ctl`, then `epoll_wait`,
//! then reads its eventfd and re-arms that with `epoll_ctl`); this path
//! costs one `epoll_wait`. It also registers sockets with `EPOLLRDHUP`,
//! which `polling` has no way to ask for, so the reactor learns that a
//! read side has ended and a short read may clear readiness (see
//! `Source::clear_ready_after_short`). The measured difference is in
//! docs/design.md (departure 10).
//!
//! Everything else stays `polling`'s: the instance is the `Poller`'s, and
//! cross-thread wake-ups are `Poller::notify`. Its notifier (an eventfd,
//! registered one-shot under the key `usize::MAX`) shows up here as an
//! event with that key; the reactor then calls `Poller::wait` with a zero
//! timeout, which drains and re-arms it.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::reactor::Ready;

/// The key `polling` registers its notifier (and timerfd) under.
pub(crate) const NOTIFY_KEY: u64 = usize::MAX as u64;

/// Closes a forked child's copies of the fds of the parent's
/// `polling::Poller`: those registered in its epoll instance `epfd` under
/// [`NOTIFY_KEY`] (its eventfd and timerfd, as `/proc/self/fdinfo` lists
/// them), then `epfd` itself. Closing a copy leaves the epoll instance the
/// parent still uses as it is (an entry goes only with the last copy of its
/// file), where `epoll_ctl(EPOLL_CTL_DEL)`, which the poller's drop calls,
/// would take the parent's notifier away. Best effort: without `/proc`
/// only `epfd` is closed.
///
/// # Safety
/// Called in a forked child before anything could have closed those fds or
/// reused their numbers (right after `fork`), and nothing uses the parent's
/// poller after.
pub(crate) unsafe fn close_inherited(epfd: RawFd) {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).unwrap_or_default();
    for line in info.lines().filter(|l| l.starts_with("tfd:")) {
        // "tfd:        5 events:       19 data: ffffffffffffffff  pos:0 ..."
        let mut words = line.split_whitespace();
        let fd = words.nth(1).and_then(|w| w.parse::<RawFd>().ok());
        let data = words
            .skip_while(|&w| w != "data:")
            .nth(1)
            .and_then(|w| u64::from_str_radix(w, 16).ok());
        if let (Some(fd), Some(NOTIFY_KEY)) = (fd, data) {
            // SAFETY: the caller's contract: `fd` is still the parent
            // poller's, and nothing uses it after.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: as above, for the instance itself.
    unsafe { libc::close(epfd) };
}

/// An empty `epoll_wait` buffer of `n` events.
pub(crate) fn buffer(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

/// Registers `fd` with the epoll instance `epfd`, edge-triggered, for read
/// and write readiness and the end of its read side.
///
/// # Errors
/// The error of `epoll_ctl` (`EBADF`, `EPERM` for a regular file, `EEXIST`).
pub(crate) fn add(epfd: RawFd, fd: RawFd, key: u64) -> io::Result<()> {
    // `EPOLLPRI`: TCP urgent data, at whose mark a read stops short with
    // more queued (see `end_known` below).
    let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET;
    let mut ev = libc::epoll_event {
        events: events as u32,
        u64: key,
    };
    // SAFETY: a valid event struct; the kernel checks both fds.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits on `epfd` up to `timeout` (`None`: forever; rounded up to
/// milliseconds) and appends what is ready to `out`. `EINTR` returns with
/// nothing.
///
/// # Errors
/// The error of `epoll_wait` other than `EINTR` (not expected).
pub(crate) fn wait(
    epfd: RawFd,
    buf: &mut [libc::epoll_event],
    timeout: Option<Duration>,
    out: &mut Vec<Ready>,
) -> io::Result<()> {
    let ms = match timeout {
        None => -1,
        Some(d) if d.is_zero() => 0,
        // Round up: a timer must never fire early.
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: `buf` is valid for `buf.len()` events.
    let n = unsafe { libc::epoll_wait(epfd, buf.as_mut_ptr(), buf.len() as libc::c_int, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(e)
        };
    }
    for ev in &buf[..n as usize] {
        let bits = ev.events as libc::c_int;
        let err = bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
        out.push(Ready {
            key: ev.u64,
            readable: err || bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
            writable: err || bits & libc::EPOLLOUT != 0,
            read_closed: bits & (libc::EPOLLRDHUP | libc::EPOLLHUP) != 0,
            write_closed: bits & libc::EPOLLHUP != 0,
            // Urgent data pending: a read stops short at its mark with
            // data queued behind it, so a short read says nothing.
            end_known: bits & libc::EPOLLPRI == 0,
        });
    }
    Ok(())
}
