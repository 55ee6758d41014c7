//! Socket calls whose best form depends on the OS, each with the portable
//! fallback: non-blocking close-on-exec sockets in one syscall (`SOCK_NONBLOCK
//! | SOCK_CLOEXEC`, `accept4`) where the kernel has the flags, and no
//! `SIGPIPE` from a write to a closed peer (`MSG_NOSIGNAL` per send, or
//! `SO_NOSIGPIPE` per socket on Apple systems, which lack the flag).
//!
//! The fallbacks take two or three syscalls and set close-on-exec after the
//! fact (socket2 does it with `fcntl`): a `fork` + `exec` on another thread
//! in between could leak the fd into the child. The reactor itself is not
//! here (it is one piece of code per readiness API).

use std::io;

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
