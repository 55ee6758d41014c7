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

pub(crate) use imp::{accept, pair, socket};

/// Kernels with `SOCK_NONBLOCK`/`SOCK_CLOEXEC` on `socket`, `socketpair` and
/// `accept4`: one syscall each.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod imp {
    use super::*;

    /// A new non-blocking, close-on-exec socket.
    pub(crate) fn socket(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        Socket::new(domain, ty.nonblocking(), protocol)
    }

    /// A connected non-blocking, close-on-exec pair.
    pub(crate) fn pair(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<(Socket, Socket)> {
        Socket::pair(domain, ty.nonblocking(), protocol)
    }

    /// Accepts a connection as a non-blocking, close-on-exec socket.
    pub(crate) fn accept(listener: SockRef<'_>) -> io::Result<(Socket, SockAddr)> {
        listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    }
}

/// Everything else (macOS): the flags are set by separate `fcntl`s.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
mod imp {
    use super::*;

    /// A new non-blocking, close-on-exec socket (socket2 sets close-on-exec
    /// and, on Apple systems, `SO_NOSIGPIPE`).
    pub(crate) fn socket(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        let s = Socket::new(domain, ty, protocol)?;
        s.set_nonblocking(true)?;
        Ok(s)
    }

    /// A connected non-blocking, close-on-exec pair.
    pub(crate) fn pair(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<(Socket, Socket)> {
        let (a, b) = Socket::pair(domain, ty, protocol)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((a, b))
    }

    /// Accepts a connection as a non-blocking, close-on-exec socket with no
    /// `SIGPIPE` (the listener may come from std, which does not set
    /// `SO_NOSIGPIPE` for the accepted socket to inherit).
    pub(crate) fn accept(listener: SockRef<'_>) -> io::Result<(Socket, SockAddr)> {
        let (s, addr) = listener.accept()?;
        s.set_nonblocking(true)?;
        #[cfg(target_vendor = "apple")]
        s.set_nosigpipe(true)?;
        Ok((s, addr))
    }
}

/// Flags for every `send` on a socket: `MSG_NOSIGNAL` where the kernel has
/// it (a closed peer gives `EPIPE`, not `SIGPIPE`), nothing on Apple
/// systems, whose sockets carry `SO_NOSIGPIPE` instead.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
pub(crate) const SEND_FLAGS: libc::c_int = 0;
