//! The socket hooks: `recv*`, `send*`, `read`/`write`/`readv`/`writev` on
//! sockets, `connect`, `accept`, `accept4`.
//!
//! A call that may block is first made with `MSG_DONTWAIT` (the fd's own
//! `O_NONBLOCK` is never changed). On `EAGAIN`, `fcntl(F_GETFL)` tells the
//! user's mode: a non-blocking socket gets `EAGAIN` back at once; a blocking
//! one parks on the hub until ready, up to its `SO_RCVTIMEO`/`SO_SNDTIMEO`
//! (then `EAGAIN`, as the kernel's own timeout), and the call is retried.
//! `read`-family calls on an fd that is not a socket (`ENOTSOCK`) go to
//! glibc's own function.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use libc::{iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::fdwait::{self, Dir, Woke};
use crate::gate::{errno, hook, on, set_errno};
use crate::{real, SOCKET};

/// Whether the user made `fd` non-blocking (`O_NONBLOCK`).
fn user_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL reads the flags; an invalid fd gives -1.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// The socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` as a deadline from now.
fn deadline(fd: RawFd, opt: c_int) -> Option<Instant> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as socklen_t;
    // SAFETY: `tv` and `len` are valid for writes of their sizes.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&raw mut tv).cast(), &mut len) };
    if rc != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    let d = Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000);
    greenlet_runtime::deadline_after(d)
}

/// Runs the socket operation `op` (given the extra flags to add) the
/// cooperative way; see the module docs. Returns what the call returns,
/// with errno set as it would be.
#[inline]
fn drive(fd: RawFd, dir: Dir, mut op: impl FnMut(c_int) -> ssize_t) -> ssize_t {
    let saved = errno();
    let r = op(libc::MSG_DONTWAIT);
    if r >= 0 {
        set_errno(saved);
        return r;
    }
    if errno() != libc::EAGAIN || user_nonblocking(fd) {
        return r;
    }
    let opt = match dir {
        Dir::Read => libc::SO_RCVTIMEO,
        Dir::Write => libc::SO_SNDTIMEO,
    };
    let deadline = deadline(fd, opt);
    loop {
        match fdwait::wait(fd, dir, deadline) {
            Woke::Ready => {
                let r = op(libc::MSG_DONTWAIT);
                if r >= 0 {
                    set_errno(saved);
                    return r;
                }
                if errno() != libc::EAGAIN {
                    return r;
                }
            }
            Woke::Expired => return fail(libc::EAGAIN),
            Woke::Failed(e) => return fail(e),
            Woke::Blocking => return op(0),
        }
    }
}

fn fail(e: c_int) -> ssize_t {
    set_errno(e);
    -1
}

/// Flags with which a call is left to glibc: the caller asked for no wait
/// itself, or for a wait `MSG_DONTWAIT` cannot express.
const OWN_WAIT: c_int = libc::MSG_DONTWAIT | libc::MSG_WAITALL;

/// A `recv`-family call given the caller's `flags`: glibc's own when not
/// patched here or when the flags ask for a wait of their own; else made
/// the cooperative way (`op` gets the flags to use).
#[inline]
fn recv_with(fd: RawFd, flags: c_int, mut op: impl FnMut(c_int) -> ssize_t) -> ssize_t {
    if !on(SOCKET) || flags & OWN_WAIT != 0 {
        return op(flags);
    }
    drive(fd, Dir::Read, |fl| op(flags | fl))
}

/// A `send`-family call on `buf[..n]` given the caller's `flags`; as
/// [`recv_with`], whole (see [`send_all`]).
#[inline]
fn send_with(
    fd: RawFd,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    mut op: impl FnMut(*const c_void, size_t, c_int) -> ssize_t,
) -> ssize_t {
    if !on(SOCKET) || flags & libc::MSG_DONTWAIT != 0 {
        return op(buf, n, flags);
    }
    send_all(fd, buf, n, |b, k, fl| op(b, k, flags | fl))
}

/// A blocking send writes everything (or fails/times out part-way, then
/// reports what it wrote), as the kernel's blocking send does on a stream
/// socket; `MSG_DONTWAIT` sends may be partial, so loop.
fn send_all(
    fd: RawFd,
    buf: *const c_void,
    n: size_t,
    mut op: impl FnMut(*const c_void, size_t, c_int) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let mut done = 0usize;
    loop {
        // SAFETY: `done < n` (or both 0): within the caller's buffer.
        let at = unsafe { buf.cast::<u8>().add(done) }.cast::<c_void>();
        let r = drive(fd, Dir::Write, |fl| op(at, n - done, fl));
        if r < 0 {
            if done > 0 {
                set_errno(saved);
                return done as ssize_t;
            }
            return r;
        }
        done += r as usize;
        if done >= n || r == 0 {
            return done as ssize_t;
        }
    }
}

hook!(crate::SOCKET, recv => coop_recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t);
hook!(crate::SOCKET, recvfrom => coop_recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t);
hook!(crate::SOCKET, recvmsg => coop_recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t);
hook!(crate::SOCKET, send => coop_send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t);
hook!(crate::SOCKET, sendto => coop_sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t);
hook!(crate::SOCKET, sendmsg => coop_sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t);
hook!(crate::SOCKET, read => coop_read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t);
hook!(crate::SOCKET, write => coop_write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t);
hook!(crate::SOCKET, readv => coop_readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t);
hook!(crate::SOCKET, writev => coop_writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t);
hook!(crate::SOCKET, connect => coop_connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int);
hook!(crate::SOCKET, accept => coop_accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int);
hook!(crate::SOCKET, accept4 => coop_accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int);

/// The cooperative side of the `recv` hook.
///
/// # Safety
/// The C contract of `recv(2)`.
#[inline(never)]
unsafe fn coop_recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's call, with the flags given.
    recv_with(fd, flags, |f| unsafe { real::recv(fd, buf, n, f) })
}

/// The cooperative side of the `recvfrom` hook.
///
/// # Safety
/// The C contract of `recvfrom(2)`.
#[inline(never)]
unsafe fn coop_recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    // SAFETY: the caller's call, with the flags given.
    recv_with(fd, flags, |f| unsafe {
        real::recvfrom(fd, buf, n, f, addr, len)
    })
}

/// The cooperative side of the `recvmsg` hook.
///
/// # Safety
/// The C contract of `recvmsg(2)`.
#[inline(never)]
unsafe fn coop_recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's call, with the flags given.
    recv_with(fd, flags, |f| unsafe { real::recvmsg(fd, msg, f) })
}

/// The cooperative side of the `send` hook.
///
/// # Safety
/// The C contract of `send(2)`.
#[inline(never)]
unsafe fn coop_send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's call on a suffix of its buffer, with the flags given.
    send_with(fd, buf, n, flags, |b, k, f| unsafe {
        real::send(fd, b, k, f)
    })
}

/// The cooperative side of the `sendto` hook.
///
/// # Safety
/// The C contract of `sendto(2)`.
#[inline(never)]
unsafe fn coop_sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    // SAFETY: the caller's call on a suffix of its buffer, with the flags given.
    send_with(fd, buf, n, flags, |b, k, f| unsafe {
        real::sendto(fd, b, k, f, addr, len)
    })
}

/// The cooperative side of the `sendmsg` hook.
///
/// # Safety
/// The C contract of `sendmsg(2)`.
#[inline(never)]
unsafe fn coop_sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if !on(SOCKET) || flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::sendmsg(fd, msg, flags) };
    }
    // SAFETY: as above, with an added flag.
    drive(fd, Dir::Write, |fl| unsafe {
        real::sendmsg(fd, msg, flags | fl)
    })
}

/// The `read`-family hooks: `socket` (the call as a socket call, made the
/// cooperative way) unless the fd is not a socket (`ENOTSOCK`) or the call
/// is not patched here; then `plain` (glibc's own function).
#[inline]
fn socket_or_plain(socket: impl FnOnce() -> ssize_t, plain: impl FnOnce() -> ssize_t) -> ssize_t {
    if !on(SOCKET) {
        return plain();
    }
    let saved = errno();
    let r = socket();
    if r < 0 && errno() == libc::ENOTSOCK {
        set_errno(saved);
        return plain();
    }
    r
}

/// The cooperative side of the `read` hook.
///
/// # Safety
/// The C contract of `read(2)`.
#[inline(never)]
unsafe fn coop_read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    socket_or_plain(
        // SAFETY: `recv` with flags 0 is `read` on a socket.
        || drive(fd, Dir::Read, |fl| unsafe { real::recv(fd, buf, n, fl) }),
        // SAFETY: forwarding the caller's call.
        || unsafe { real::read(fd, buf, n) },
    )
}

/// The cooperative side of the `write` hook.
///
/// # Safety
/// The C contract of `write(2)`.
#[inline(never)]
unsafe fn coop_write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    socket_or_plain(
        // SAFETY: `send` with flags 0 is `write` on a socket (SIGPIPE too).
        || send_all(fd, buf, n, |b, k, fl| unsafe { real::send(fd, b, k, fl) }),
        // SAFETY: forwarding the caller's call.
        || unsafe { real::write(fd, buf, n) },
    )
}

/// A `msghdr` carrying just `iov` (what `readv`/`writev` are on a socket).
fn iov_msg(iov: *const iovec, n: c_int) -> msghdr {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov as *mut iovec;
    m.msg_iovlen = n.max(0) as _;
    m
}

/// The cooperative side of the `readv` hook.
///
/// # Safety
/// The C contract of `readv(2)`.
#[inline(never)]
unsafe fn coop_readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let mut m = iov_msg(iov, n);
    socket_or_plain(
        // SAFETY: `recvmsg` over the caller's iovecs is `readv` on a socket.
        || drive(fd, Dir::Read, |fl| unsafe { real::recvmsg(fd, &mut m, fl) }),
        // SAFETY: forwarding the caller's call.
        || unsafe { real::readv(fd, iov, n) },
    )
}

/// The cooperative side of the `writev` hook.
///
/// # Safety
/// The C contract of `writev(2)`.
#[inline(never)]
unsafe fn coop_writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let m = iov_msg(iov, n);
    socket_or_plain(
        // SAFETY: `sendmsg` over the caller's iovecs is `writev` on a socket.
        || drive(fd, Dir::Write, |fl| unsafe { real::sendmsg(fd, &m, fl) }),
        // SAFETY: forwarding the caller's call.
        || unsafe { real::writev(fd, iov, n) },
    )
}

/// `SO_ERROR` of `fd`: the result of a finished non-blocking connect.
fn so_error(fd: RawFd) -> c_int {
    let mut err: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: `err` and `len` are valid for writes of their sizes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        errno()
    } else {
        err
    }
}

/// Whether `fd` is ready for `events` now (one `poll` with no wait).
fn ready_now(fd: RawFd, events: i16) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { real::poll(&mut p, 1, 0) > 0 }
}

/// The cooperative side of the `connect` hook.
///
/// # Safety
/// The C contract of `connect(2)`.
#[inline(never)]
unsafe fn coop_connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if !on(SOCKET) {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::connect(fd, addr, len) };
    }
    // SAFETY: F_GETFL reads the flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || fl & libc::O_NONBLOCK != 0 {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::connect(fd, addr, len) };
    }
    let saved = errno();
    let deadline = deadline(fd, libc::SO_SNDTIMEO);
    loop {
        // Connect has no MSG_DONTWAIT: the socket is non-blocking for the
        // length of this one call, on this thread.
        // SAFETY: plain fcntl/connect calls on the caller's fd and address.
        let (rc, e) = unsafe {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            let rc = real::connect(fd, addr, len);
            let e = errno();
            libc::fcntl(fd, libc::F_SETFL, fl);
            (rc, e)
        };
        if rc == 0 {
            set_errno(saved);
            return 0;
        }
        // EAGAIN: a Unix socket whose listener's backlog is full; retry
        // when writable. EINPROGRESS: wait for the outcome.
        if e != libc::EINPROGRESS && e != libc::EAGAIN {
            set_errno(e);
            return -1;
        }
        loop {
            match fdwait::wait(fd, Dir::Write, deadline) {
                Woke::Ready if !ready_now(fd, libc::POLLOUT) => continue,
                Woke::Ready => break,
                // The kernel's own connect timeout (SO_SNDTIMEO) says this.
                Woke::Expired => return fail(libc::EINPROGRESS) as c_int,
                Woke::Failed(e) => return fail(e) as c_int,
                Woke::Blocking => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { real::poll(&mut p, 1, -1) };
                    break;
                }
            }
        }
        if e == libc::EINPROGRESS {
            return match so_error(fd) {
                0 => {
                    set_errno(saved);
                    0
                }
                err => fail(err) as c_int,
            };
        }
    }
}

/// The shared body of `accept` and `accept4`. Accept has no
/// `MSG_DONTWAIT`: it waits for readability first, then accepts (another
/// process accepting the same connection in between would block the
/// thread until the next one).
fn accept_with(fd: RawFd, op: impl Fn() -> c_int) -> c_int {
    if !on(SOCKET) || user_nonblocking(fd) {
        return op();
    }
    let saved = errno();
    let deadline = deadline(fd, libc::SO_RCVTIMEO);
    loop {
        if ready_now(fd, libc::POLLIN) {
            set_errno(saved);
            return op();
        }
        match fdwait::wait(fd, Dir::Read, deadline) {
            Woke::Ready => {}
            Woke::Expired => return fail(libc::EAGAIN) as c_int,
            Woke::Failed(e) => return fail(e) as c_int,
            Woke::Blocking => return op(),
        }
    }
}

/// The cooperative side of the `accept` hook.
///
/// # Safety
/// The C contract of `accept(2)`.
#[inline(never)]
unsafe fn coop_accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarding the caller's call.
    accept_with(fd, || unsafe { real::accept(fd, addr, len) })
}

/// The cooperative side of the `accept4` hook.
///
/// # Safety
/// The C contract of `accept4(2)`.
#[inline(never)]
unsafe fn coop_accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    // SAFETY: forwarding the caller's call.
    accept_with(fd, || unsafe { real::accept4(fd, addr, len, flags) })
}

/// # Safety
/// The C contract of `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    fdwait::close(fd)
}

/// # Safety
/// The C contract of `dup2(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        fdwait::replacing(new);
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::dup2(old, new) }
}

/// # Safety
/// The C contract of `dup3(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        fdwait::replacing(new);
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::dup3(old, new, flags) }
}
