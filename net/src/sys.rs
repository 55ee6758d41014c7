//! Socket calls whose best form depends on the OS, each with the portable
//! fallback: non-blocking close-on-exec sockets in one syscall (`SOCK_NONBLOCK
//! | SOCK_CLOEXEC`, `accept4`) where the kernel has the flags, and no
//! `SIGPIPE` from a write to a closed peer (`MSG_NOSIGNAL` per send, or
//! `SO_NOSIGPIPE` per socket on Apple systems, which lack the flag).
//!
//! The same for the closed-fd placeholder that `close` puts over a socket's
//! fd: an `O_PATH` fd (Linux, FreeBSD) `dup3`ed over it, else a read-only
//! fd of the root directory `dup2`ed over it.
//!
//! The fallbacks take two or three syscalls and set close-on-exec after the
//! fact (socket2 does it with `fcntl`): a `fork` + `exec` on another thread
//! in between could leak the fd into the child. The reactor itself is not
//! here (it is one piece of code per readiness API).

use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// A new non-blocking, close-on-exec socket (socket2 sets close-on-exec,
/// and `SO_NOSIGPIPE` on Apple systems).
pub(crate) fn socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    let s = Socket::new(domain, nonblocking(ty), protocol)?;
    set_nonblocking(&s)?;
    Ok(s)
}

/// A connected non-blocking, close-on-exec pair.
pub(crate) fn pair(
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
) -> io::Result<(Socket, Socket)> {
    let (a, b) = Socket::pair(domain, nonblocking(ty), protocol)?;
    set_nonblocking(&a)?;
    set_nonblocking(&b)?;
    Ok((a, b))
}

/// Accepts a connection as a non-blocking, close-on-exec socket with no
/// `SIGPIPE`.
pub(crate) fn accept(listener: SockRef<'_>) -> io::Result<(Socket, SockAddr)> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    return listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let (s, addr) = listener.accept()?;
        set_nonblocking(&s)?;
        // The listener may come from std, which does not set `SO_NOSIGPIPE`
        // for the accepted socket to inherit.
        #[cfg(target_vendor = "apple")]
        s.set_nosigpipe(true)?;
        Ok((s, addr))
    }
}

/// `ty` with `SOCK_NONBLOCK | SOCK_CLOEXEC` where the kernel takes them at
/// creation (Linux, FreeBSD): one syscall.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn nonblocking(ty: Type) -> Type {
    ty.nonblocking()
}

/// Elsewhere (macOS) `ty` as it is; [`set_nonblocking`] follows.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn nonblocking(ty: Type) -> Type {
    ty
}

/// Nothing to do where [`nonblocking`] set the flag at creation.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn set_nonblocking(_: &Socket) -> io::Result<()> {
    Ok(())
}

/// `O_NONBLOCK` by `fcntl`, where the kernel has no `SOCK_NONBLOCK`.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn set_nonblocking(s: &Socket) -> io::Result<()> {
    s.set_nonblocking(true)
}

/// Flags for every `send` on a socket: `MSG_NOSIGNAL` where the kernel has
/// it (a closed peer gives `EPIPE`, not `SIGPIPE`), nothing on Apple
/// systems, whose sockets carry `SO_NOSIGPIPE` instead.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// How the closed-fd placeholder opens `/`: `O_PATH`, an fd on which every
/// I/O call fails with `EBADF` (Linux; FreeBSD >= 13.1).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const PLACEHOLDER_FLAGS: libc::c_int = libc::O_PATH;

/// Elsewhere (macOS has no `O_PATH`) as a directory, read-only: no call
/// moves data through it either (`read` fails with `EISDIR`, `write` with
/// `EBADF`, socket calls with `ENOTSOCK`), and it is never readable or
/// writable as a socket would be.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const PLACEHOLDER_FLAGS: libc::c_int = libc::O_DIRECTORY;

/// Opens the closed-fd placeholder: `/` with [`PLACEHOLDER_FLAGS`].
pub(crate) fn open_placeholder() -> io::Result<OwnedFd> {
    let f = File::options()
        .read(true)
        .custom_flags(PLACEHOLDER_FLAGS)
        .open("/")?;
    Ok(f.into())
}

/// Makes `fd` refer to `placeholder` (close-on-exec), releasing what it
/// referred to without freeing the number.
///
/// # Safety
/// `fd` must be open and owned by the caller, who gives up what it refers
/// to (after this it refers to the placeholder).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub(crate) unsafe fn dup_over(placeholder: BorrowedFd<'_>, fd: RawFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `placeholder` is open; the caller owns `fd`. `dup3` swaps what
    // the number refers to in one step, close-on-exec included.
    if unsafe { libc::dup3(placeholder.as_raw_fd(), fd, libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `dup2` and then `FD_CLOEXEC` where there is no `dup3` (macOS): between
/// the two a `fork` + `exec` on another thread could pass the placeholder
/// (a read-only fd of `/`, nothing more) to the child.
///
/// # Safety
/// As for the `dup3` form.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub(crate) unsafe fn dup_over(placeholder: BorrowedFd<'_>, fd: RawFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `placeholder` is open; the caller owns `fd`, and `dup2`
    // replaces what it refers to in one step.
    if unsafe { libc::dup2(placeholder.as_raw_fd(), fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (it refers to the placeholder now).
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
