//! [`UnixListener`] and [`UnixStream`]: `std::os::unix::net`'s stream
//! types, cooperative.

use std::io;
use std::net::Shutdown;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::evented::Evented;
use crate::tcp::connect_evented;

/// A Unix-domain stream server socket, cooperative: `accept` parks the
/// calling greenlet. A drop-in for `std::os::unix::net::UnixListener`.
///
/// ```
/// use greenlet_net::{UnixListener, UnixStream};
/// use greenlet_runtime::spawn;
/// use std::io::{Read, Write};
///
/// let dir = std::env::temp_dir().join(format!("greenlet-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let server = spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0u8; 4];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap();
/// });
/// let mut client = UnixStream::connect(&path).unwrap();
/// client.write_all(b"ping").unwrap();
/// let mut buf = [0u8; 4];
/// client.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// server.join().unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixListener {
    pub(crate) io: Evented<net::UnixListener>,
}

/// A Unix-domain stream socket, cooperative. A drop-in for
/// `std::os::unix::net::UnixStream`; `Read`/`Write` for the type and for
/// `&UnixStream`. `!Send`.
///
/// ```
/// use greenlet_net::UnixStream;
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut buf = [0u8; 2];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
pub struct UnixStream {
    pub(crate) io: Evented<net::UnixStream>,
}

fd_traits!(UnixListener, net::UnixListener);
fd_traits!(UnixStream, net::UnixStream);
// A short read may stop at a message that carried fds (`SCM_RIGHTS`) or
// another sender's credentials, with more queued behind it and no edge to
// come: readiness is kept, and the next read finds the rest or `EAGAIN`.
stream_io!(UnixStream, short_read_drains: false);

/// A std Unix socket address as a socket2 one (pathname or abstract).
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    // Abstract names (a leading NUL) exist on Linux only.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = addr.as_abstract_name() {
        use std::os::unix::ffi::OsStrExt;
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot connect to an unnamed Unix socket address",
    ))
}

/// A new non-blocking Unix socket of type `ty` (one syscall on Linux).
pub(crate) fn new_unix(ty: Type) -> io::Result<Socket> {
    crate::sys::socket(Domain::UNIX, ty, None)
}

/// A connected non-blocking pair of type `ty` (one syscall on Linux).
pub(crate) fn unix_pair(ty: Type) -> io::Result<(Socket, Socket)> {
    crate::sys::pair(Domain::UNIX, ty, None)
}

/// Connects a Unix stream cooperatively. A full backlog makes Linux answer
/// `EAGAIN` with nothing to wait on, so that retries with a short backoff.
fn connect_unix(addr: &SockAddr) -> io::Result<UnixStream> {
    let io = Evented::new(net::UnixStream::from(new_unix(Type::STREAM)?));
    let mut backoff = Duration::from_millis(1);
    loop {
        match connect_evented(&io, addr, None) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                greenlet_runtime::sleep(backoff).map_err(io::Error::from)?;
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(UnixStream { io }),
        }
    }
}

impl UnixListener {
    /// Binds a listener to the filesystem path `path`.
    ///
    /// # Errors
    /// OS errors (`AddrInUse` if the path exists, ...).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(net::UnixListener::bind(path)?)
    }

    /// Binds a listener to `addr` (a pathname or, on Linux, an abstract
    /// name).
    ///
    /// # Errors
    /// OS errors.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(net::UnixListener::bind_addr(addr)?)
    }

    /// Wraps a std listener (put in non-blocking mode at the OS level).
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK`.
    pub fn from_std(listener: net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Evented::adopt(listener, false)?,
        })
    }

    /// Converts back into a std listener in this object's blocking mode.
    ///
    /// # Errors
    /// `EBADF` if closed; the error of setting the mode.
    pub fn into_std(self) -> io::Result<net::UnixListener> {
        self.io.release(false)
    }

    /// Accepts a connection, parking until one arrives.
    ///
    /// # Errors
    /// As `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.io.read(|l| l.accept(), |_| false)?;
        s.set_nonblocking(true)?;
        Ok((
            UnixStream {
                io: Evented::new(s),
            },
            addr,
        ))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The local address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|l| l.local_addr())
    }

    /// A second handle to the same socket (a `dup`) with this object's
    /// settings.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let l = self.io.with(|l| l.try_clone())?;
        Ok(UnixListener {
            io: Evented::with_settings_of(l, &self.io),
        })
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|l| l.take_error())
    }

    /// Sets the accept timeout (not in std, whose accept cannot time out).
    ///
    /// # Errors
    /// `InvalidInput` for zero; `EBADF` if closed.
    pub fn set_accept_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(dur)
    }

    /// In non-blocking mode `accept` returns `WouldBlock` at once.
    ///
    /// # Errors
    /// `EBADF` if closed.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking)
    }

    /// Closes the listener now; a greenlet waiting in `accept` gets the
    /// "File descriptor was closed in another greenlet" error.
    pub fn close(&self) {
        self.io.close()
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.io.is_closed()
    }
}

/// The iterator of [`UnixListener::incoming`]: never ends.
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl UnixStream {
    /// Connects to the socket at `path`, parking until connected.
    ///
    /// # Errors
    /// OS errors (`NotFound`, `ConnectionRefused`, ...); the `io::Error` of
    /// an interruption.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        connect_unix(&SockAddr::unix(path)?)
    }

    /// Connects to `addr` (a pathname or an abstract name).
    ///
    /// # Errors
    /// As [`connect`](Self::connect); `InvalidInput` for an unnamed address.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        connect_unix(&to_sockaddr(addr)?)
    }

    /// A connected pair of streams.
    ///
    /// # Errors
    /// OS errors (`EMFILE`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unix_pair(Type::STREAM)?;
        Ok((
            UnixStream {
                io: Evented::new(a.into()),
            },
            UnixStream {
                io: Evented::new(b.into()),
            },
        ))
    }

    /// Wraps a std stream (put in non-blocking mode at the OS level),
    /// keeping its timeouts.
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK` or reading the timeouts.
    pub fn from_std(stream: net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: Evented::adopt(stream, true)?,
        })
    }

    /// Converts back into a std stream with this object's timeouts and
    /// blocking mode applied to the OS socket.
    ///
    /// # Errors
    /// `EBADF` if closed; the errors of applying the settings.
    pub fn into_std(self) -> io::Result<net::UnixStream> {
        self.io.release(true)
    }

    /// A second handle to the same connection (a `dup`) with this object's
    /// settings.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let s = self.io.with(|s| s.try_clone())?;
        Ok(UnixStream {
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

    /// The peer's address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.peer_addr())
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
