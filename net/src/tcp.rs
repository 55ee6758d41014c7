//! [`TcpListener`] and [`TcpStream`]: `std::net`'s TCP types, cooperative.
//!
//! Same methods and signatures as std; where std would block the thread,
//! these park the calling greenlet and the hub runs the others.

use std::io;
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Type};

use crate::addr::{each_addr, ToSocketAddrs};
use crate::evented::{zero_timeout, Evented};

/// A TCP server socket, cooperative: `accept` parks the calling greenlet
/// until a connection arrives. A drop-in for `std::net::TcpListener`.
///
/// ```
/// use greenlet_net::{TcpListener, TcpStream};
/// use greenlet_runtime::spawn;
/// use std::io::{Read, Write};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = spawn(move || {
///     let (mut conn, _peer) = listener.accept().unwrap();
///     let mut buf = [0u8; 5];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap(); // echo
/// });
/// let mut client = TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut echo = [0u8; 5];
/// client.read_exact(&mut echo).unwrap();
/// assert_eq!(&echo, b"hello");
/// server.join().unwrap();
/// ```
pub struct TcpListener {
    pub(crate) io: Evented<net::TcpListener>,
}

/// A TCP connection, cooperative: reads and writes park the calling
/// greenlet instead of blocking the thread. A drop-in for
/// `std::net::TcpStream`; `Read`/`Write` are implemented for the type and
/// for `&TcpStream`, so two greenlets can read and write one stream at once.
///
/// At most one greenlet may wait to read (and one to write) at a time: a
/// second gets `ErrorKind::ResourceBusy`. `!Send`: a stream belongs to the
/// hub of its thread.
///
/// ```
/// use greenlet_net::TcpStream;
/// use std::io::ErrorKind;
///
/// // Nothing listens on port 1 of loopback.
/// let err = TcpStream::connect("127.0.0.1:1").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
/// ```
pub struct TcpStream {
    pub(crate) io: Evented<net::TcpStream>,
}

fd_traits!(TcpListener, net::TcpListener);
fd_traits!(TcpStream, net::TcpStream);
// A short read stops early only at an urgent mark (out-of-band data), which
// the reactor learns from `EPOLLPRI` and then keeps readiness.
stream_io!(TcpStream, short_read_drains: true);

impl TcpListener {
    /// Binds a listener to `addr` (each resolved address in turn, as std;
    /// names are resolved on the thread pool).
    ///
    /// # Errors
    /// The OS error of the last address tried (e.g. `AddrInUse`), or a
    /// resolution error.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| TcpListener::from_std(net::TcpListener::bind(a)?))
    }

    /// Wraps a std listener (put in non-blocking mode at the OS level).
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK`.
    pub fn from_std(listener: net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Evented::adopt(listener, false)?,
        })
    }

    /// Converts back into a std listener, in the blocking mode this object
    /// was in (`set_nonblocking`).
    ///
    /// # Errors
    /// `EBADF` if closed; the error of setting the blocking mode.
    pub fn into_std(self) -> io::Result<net::TcpListener> {
        self.io.release(false)
    }

    /// Accepts a connection, parking until one arrives (or the read
    /// timeout passes). The new stream has default settings.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; `WouldBlock` in non-blocking mode;
    /// `ResourceBusy` if another greenlet is already accepting on it; the
    /// `EBADF` error "File descriptor was closed in another greenlet" if
    /// closed while waiting; `EBADF` if closed; OS errors (`EMFILE`, ...).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, addr) = self
            .io
            .read(|l| crate::sys::accept(SockRef::from(l)), |_| false)?;
        let addr = addr.as_socket().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "accept returned a non-IP address",
            )
        })?;
        Ok((
            TcpStream {
                io: Evented::new(net::TcpStream::from(sock)),
            },
            addr,
        ))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|l| l.local_addr())
    }

    /// A second handle to the same listening socket (a `dup`), with this
    /// object's settings.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors (`EMFILE`).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let l = self.io.with(|l| l.try_clone())?;
        Ok(TcpListener {
            io: Evented::with_settings_of(l, &self.io),
        })
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.with(|l| l.set_ttl(ttl))
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.with(|l| l.ttl())
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|l| l.take_error())
    }

    /// Shuts the listener down for reading (Linux stops listening): a
    /// greenlet waiting in `accept` gets the "File descriptor was closed in
    /// another greenlet" error.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io
            .shutdown(how, |l, how| SockRef::from(l).shutdown(how))
    }

    /// Sets the accept timeout (see `set_read_timeout` of the streams).
    /// Not in std's listener, whose accept cannot time out.
    ///
    /// # Errors
    /// `InvalidInput` for zero; `EBADF` if closed.
    pub fn set_accept_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(dur)
    }

    /// In non-blocking mode `accept` returns `WouldBlock` at once when no
    /// connection is pending (a flag of this object; the fd always is
    /// non-blocking).
    ///
    /// # Errors
    /// `EBADF` if closed.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking)
    }

    /// Closes the listener now; a greenlet waiting in `accept` gets the
    /// `EBADF` error "File descriptor was closed in another greenlet". See
    /// [`TcpStream::close`].
    pub fn close(&self) {
        self.io.close()
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.io.is_closed()
    }
}

/// The iterator of [`TcpListener::incoming`]: never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// Creates a non-blocking TCP socket for `addr`'s family, binds it to
/// `source` if given and connects it cooperatively.
pub(crate) fn connect_tcp(
    addr: &SocketAddr,
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    let sock = crate::sys::socket(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(src) = source {
        sock.bind(&src.into())?;
    }
    let io = Evented::new(net::TcpStream::from(sock));
    connect_evented(&io, &SockAddr::from(*addr), timeout)?;
    Ok(TcpStream { io })
}

/// Starts a non-blocking connect and waits for it cooperatively; in the
/// user's non-blocking mode, returns `EINPROGRESS` at once instead, as the
/// OS would (then wait for writability and read `take_error`).
pub(crate) fn connect_evented<S: AsRawFd + std::os::fd::AsFd>(
    io: &Evented<S>,
    addr: &SockAddr,
    timeout: Option<Duration>,
) -> io::Result<()> {
    match io.with(|s| SockRef::from(s).connect(addr)) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) && !io.nonblocking() => {
            io.wait_connected(timeout)?;
            match io.with(|s| SockRef::from(s).take_error())? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

impl TcpStream {
    /// Connects to `addr` (each resolved address in turn, as std), parking
    /// until the connection is made.
    ///
    /// # Errors
    /// The OS error of the last address tried (`ConnectionRefused`, ...);
    /// resolution errors; the `io::Error` of an interruption (a `Timeout`).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| connect_tcp(a, None, None))
    }

    /// Connects to `addr`, giving up after `timeout`.
    ///
    /// # Errors
    /// `TimedOut` ("timed out") after `timeout`; `InvalidInput` for a zero
    /// timeout (as std); otherwise as [`TcpStream::connect`].
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(zero_timeout());
        }
        connect_tcp(addr, Some(timeout), None)
    }

    /// Wraps a connected std stream (put in non-blocking mode at the OS
    /// level), keeping its read and write timeouts.
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK` or reading the timeouts.
    pub fn from_std(stream: net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Evented::adopt(stream, true)?,
        })
    }

    /// Converts back into a std stream with this object's timeouts and
    /// blocking mode applied to the OS socket.
    ///
    /// # Errors
    /// `EBADF` if closed; the errors of applying the settings.
    pub fn into_std(self) -> io::Result<net::TcpStream> {
        self.io.release(true)
    }

    /// The remote address.
    ///
    /// # Errors
    /// `EBADF` if closed; `NotConnected`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.peer_addr())
    }

    /// The local address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.local_addr())
    }

    /// Shuts down the read, write or both halves. A greenlet waiting to
    /// read (for `Read`/`Both`) or write (`Write`/`Both`) gets the `EBADF`
    /// error "File descriptor was closed in another greenlet" (gevent).
    ///
    /// # Errors
    /// `EBADF` if closed; `NotConnected`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how, |s, how| s.shutdown(how))
    }

    /// A second handle to the same connection (a `dup`), with this object's
    /// settings. Closing one does not close the other.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors (`EMFILE`).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let s = self.io.with(|s| s.try_clone())?;
        Ok(TcpStream {
            io: Evented::with_settings_of(s, &self.io),
        })
    }

    common_methods!();

    /// Reads without consuming (`MSG_PEEK`), parking until data arrives.
    ///
    /// # Errors
    /// As `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(&mut *buf), |_| false)
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.with(|s| s.set_nodelay(nodelay))
    }

    /// `TCP_NODELAY`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.with(|s| s.nodelay())
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.with(|s| s.set_ttl(ttl))
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.with(|s| s.ttl())
    }

    /// Sets `SO_LINGER`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.io.with(|s| SockRef::from(s).set_linger(linger))
    }

    /// `SO_LINGER`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.io.with(|s| SockRef::from(s).linger())
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|s| s.take_error())
    }
}
