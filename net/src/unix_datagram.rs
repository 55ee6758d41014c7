//! [`UnixDatagram`]: `std::os::unix::net::UnixDatagram`, cooperative.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

use socket2::Type;

use crate::evented::Evented;
use crate::unix_stream::{new_unix, to_sockaddr, unix_pair};

/// A Unix-domain datagram socket, cooperative: receives (and sends when the
/// queue is full) park the calling greenlet. A drop-in for
/// `std::os::unix::net::UnixDatagram`. `!Send`.
///
/// ```
/// use greenlet_net::UnixDatagram;
///
/// let (a, b) = UnixDatagram::pair().unwrap();
/// a.send(b"one").unwrap();
/// a.send(b"two").unwrap();
/// let mut buf = [0u8; 8];
/// let n = b.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"one");
/// let n = b.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"two");
/// ```
pub struct UnixDatagram {
    pub(crate) io: Evented<net::UnixDatagram>,
}

fd_traits!(UnixDatagram, net::UnixDatagram);

impl UnixDatagram {
    /// A socket bound to the filesystem path `path`.
    ///
    /// # Errors
    /// OS errors (`AddrInUse`, ...).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to `addr` (a pathname or an abstract name).
    ///
    /// # Errors
    /// OS errors.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    /// OS errors (`EMFILE`).
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: Evented::new(new_unix(Type::DGRAM)?.into()),
        })
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    /// OS errors (`EMFILE`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = unix_pair(Type::DGRAM)?;
        Ok((
            UnixDatagram {
                io: Evented::new(a.into()),
            },
            UnixDatagram {
                io: Evented::new(b.into()),
            },
        ))
    }

    /// Wraps a std socket (put in non-blocking mode at the OS level),
    /// keeping its timeouts.
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK` or reading the timeouts.
    pub fn from_std(socket: net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: Evented::adopt(socket, true)?,
        })
    }

    /// Converts back into a std socket with this object's timeouts and
    /// blocking mode applied to the OS socket.
    ///
    /// # Errors
    /// `EBADF` if closed; the errors of applying the settings.
    pub fn into_std(self) -> io::Result<net::UnixDatagram> {
        self.io.release(true)
    }

    /// Sets the default peer to the socket at `path` (never waits).
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.with(|s| s.connect(path))
    }

    /// Sets the default peer to `addr`.
    ///
    /// # Errors
    /// OS errors; `InvalidInput` for an unnamed address; `EBADF` if closed.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        let addr = to_sockaddr(addr)?;
        self.io.with(|s| socket2::SockRef::from(s).connect(&addr))
    }

    /// A second handle to the same socket (a `dup`) with this object's
    /// settings.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let s = self.io.with(|s| s.try_clone())?;
        Ok(UnixDatagram {
            io: Evented::with_settings_of(s, &self.io),
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.local_addr())
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected`; `EBADF` if closed.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.peer_addr())
    }

    /// Receives one datagram and its sender's address, parking until one
    /// arrives.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; `WouldBlock` in non-blocking mode;
    /// `ResourceBusy` if another greenlet already waits to receive; the
    /// "File descriptor was closed in another greenlet" error if closed
    /// while waiting; `EBADF` if closed.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read(|s| s.recv_from(&mut *buf), |_| false)
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.recv(&mut *buf), |_| false)
    }

    /// Sends `buf` to the socket at `path`.
    ///
    /// # Errors
    /// `TimedOut` after the write timeout; OS errors; `EBADF` if closed.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write(|s| s.send_to(buf, path), |_| false)
    }

    /// Sends `buf` to `addr`.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.io.write(|s| s.send_to_addr(buf, addr), |_| false)
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `NotConnected`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|s| s.send(buf), |_| false)
    }

    common_methods!();

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|s| s.take_error())
    }

    /// Shuts down the read, write or both halves; waiters of those
    /// directions get the "File descriptor was closed in another greenlet"
    /// error.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how, |s, how| s.shutdown(how))
    }
}
