//! [`Socket`]: a cooperative socket2-level socket, for any domain, type
//! and protocol (gevent's `socket.socket`), for what the typed sockets do
//! not cover.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Type};

use crate::evented::{zero_timeout, Evented};
use crate::sys::SEND_FLAGS;
use crate::tcp::{connect_evented, TcpListener, TcpStream};
use crate::udp::UdpSocket;
use crate::unix_datagram::UnixDatagram;
use crate::unix_stream::{UnixListener, UnixStream};

/// A cooperative socket of any domain, type and protocol: a
/// `socket2::Socket` whose blocking operations park the calling greenlet.
/// Socket options are set through `socket2::SockRef::from(&socket)`.
///
/// `Read`/`Write` are implemented for the type and for `&Socket`;
/// [`sendall`](Socket::sendall) sends a whole buffer. It converts into the
/// typed sockets (`TcpStream::from(socket)`, ...). `!Send`.
///
/// ```
/// use greenlet_net::{Domain, Socket, Type};
///
/// let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
/// listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
/// listener.listen(16).unwrap();
/// let addr = listener.local_addr().unwrap();
///
/// let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
/// client.connect(&addr).unwrap();
/// let (conn, _) = listener.accept().unwrap();
/// client.sendall(b"hello").unwrap();
/// let mut buf = [0u8; 5];
/// assert_eq!(conn.recv(&mut buf).unwrap(), 5);
/// assert_eq!(&buf, b"hello");
/// ```
pub struct Socket {
    pub(crate) io: Evented<socket2::Socket>,
    /// A byte stream (`SOCK_STREAM`): short reads and writes clear
    /// readiness.
    stream: bool,
}

fd_traits!(Socket, socket2::Socket, |io| {
    // A socket of unknown type is treated as a datagram socket: no
    // readiness is cleared after short reads (correct, one syscall more).
    let stream = io.with(|s| s.r#type()).is_ok_and(|t| t == Type::STREAM);
    Socket { io, stream }
});

/// Views an initialised buffer as one `recv` may write into.
fn uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and `recv` only
    // writes initialised bytes, so the slice stays initialised.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

impl Socket {
    /// A new socket (`socket(2)`), close-on-exec, non-blocking at the OS
    /// level.
    ///
    /// # Errors
    /// OS errors (`EAFNOSUPPORT`, `EMFILE`, ...).
    pub fn new(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
        let s = crate::sys::socket(domain, ty, protocol)?;
        Ok(Socket::wrap(s, ty == Type::STREAM))
    }

    /// A connected pair (`socketpair(2)`).
    ///
    /// # Errors
    /// OS errors.
    pub fn pair(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<(Socket, Socket)> {
        let (a, b) = crate::sys::pair(domain, ty, protocol)?;
        let stream = ty == Type::STREAM;
        Ok((Socket::wrap(a, stream), Socket::wrap(b, stream)))
    }

    fn wrap(s: socket2::Socket, stream: bool) -> Socket {
        Socket {
            io: Evented::new(s),
            stream,
        }
    }

    /// Wraps a socket2 socket (put in non-blocking mode at the OS level).
    ///
    /// # Errors
    /// The errors of setting `O_NONBLOCK` or reading `SO_TYPE`.
    pub fn from_socket2(s: socket2::Socket) -> io::Result<Socket> {
        s.set_nonblocking(true)?;
        let stream = s.r#type()? == Type::STREAM;
        Ok(Socket::wrap(s, stream))
    }

    /// Converts back into a socket2 socket in this object's blocking mode.
    ///
    /// # Errors
    /// `EBADF` if closed; the error of setting the mode.
    pub fn into_socket2(self) -> io::Result<socket2::Socket> {
        let nonblocking = self.io.nonblocking();
        let s = self.io.into_inner()?;
        s.set_nonblocking(nonblocking)?;
        Ok(s)
    }

    /// Binds to `addr`.
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn bind(&self, addr: &SockAddr) -> io::Result<()> {
        self.io.with(|s| s.bind(addr))
    }

    /// Marks the socket as listening with `backlog`.
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        self.io.with(|s| s.listen(backlog))
    }

    /// Connects to `addr`, parking until connected (up to the write
    /// timeout). In non-blocking mode ([`set_nonblocking`](Self::set_nonblocking))
    /// it never parks: a connection not made at once is `EINPROGRESS`, as
    /// from the OS.
    ///
    /// # Errors
    /// OS errors (`ConnectionRefused`, `EINPROGRESS` in non-blocking mode,
    /// ...); `TimedOut`; the `io::Error` of an interruption; `EBADF` if
    /// closed.
    pub fn connect(&self, addr: &SockAddr) -> io::Result<()> {
        connect_evented(&self.io, addr, self.io.write_timeout()?)
    }

    /// Connects to `addr`, giving up after `timeout` (`TimedOut`).
    ///
    /// # Errors
    /// As [`connect`](Self::connect); `InvalidInput` for a zero timeout.
    pub fn connect_timeout(&self, addr: &SockAddr, timeout: Duration) -> io::Result<()> {
        if timeout.is_zero() {
            return Err(zero_timeout());
        }
        connect_evented(&self.io, addr, Some(timeout))
    }

    /// Accepts a connection, parking until one arrives (up to the read
    /// timeout).
    ///
    /// # Errors
    /// As `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        let (s, addr) = self
            .io
            .read(|s| crate::sys::accept(SockRef::from(s)), |_| false)?;
        Ok((Socket::wrap(s, self.stream), addr))
    }

    /// Receives into `buf`, parking until data arrives.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; `WouldBlock` in non-blocking mode;
    /// `ResourceBusy` if another greenlet already waits to read; the "File
    /// descriptor was closed in another greenlet" error if closed while
    /// waiting; `EBADF` if closed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    /// Receives a datagram (or stream data) and the sender's address.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.io.read(|s| s.recv_from(uninit(&mut *buf)), |_| false)
    }

    /// Like `recv` without consuming (`MSG_PEEK`).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(uninit(&mut *buf)), |_| false)
    }

    /// Sends from `buf` (some of it on a stream socket), parking while the
    /// send buffer is full.
    ///
    /// # Errors
    /// `TimedOut` after the write timeout; `WouldBlock` in non-blocking
    /// mode; OS errors (`EPIPE`, ...); `EBADF` if closed.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }

    /// Sends all of `buf` (Python's `sendall`), parking as needed.
    ///
    /// # Errors
    /// As [`send`](Self::send); `WriteZero` if the socket accepts nothing.
    pub fn sendall(&self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, buf)
    }

    /// Sends `buf` to `addr`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        self.io.write(|s| s.send_to(buf, addr), |_| false)
    }

    /// The local address.
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.io.with(|s| s.local_addr())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// `NotConnected`; `EBADF` if closed.
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        self.io.with(|s| s.peer_addr())
    }

    /// Shuts down the read, write or both halves; waiters of those
    /// directions get the "File descriptor was closed in another greenlet"
    /// error.
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how, |s, how| s.shutdown(how))
    }

    /// A second handle to the same socket (a `dup`) with this object's
    /// settings.
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn try_clone(&self) -> io::Result<Socket> {
        let s = self.io.with(|s| s.try_clone())?;
        Ok(Socket {
            io: Evented::with_settings_of(s, &self.io),
            stream: self.stream,
        })
    }

    common_methods!();

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// OS errors; `EBADF` if closed.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|s| SockRef::from(s).take_error())
    }
}

impl Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let stream = self.stream;
        self.io.read(
            |mut s| Read::read(&mut s, &mut *buf),
            |&n| stream && n > 0 && n < len,
        )
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
}

impl Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        let stream = self.stream;
        self.io.write(
            |s| s.send_with_flags(buf, SEND_FLAGS),
            |&n| stream && n < len,
        )
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `From<Socket>` for the typed sockets: same fd, registration and
/// settings; the caller vouches that the socket is of the right kind.
macro_rules! from_socket {
    ($($t:ident => $std:ty),* $(,)?) => {$(
        impl From<Socket> for $t {
            /// The same socket as this type (same fd, registration and
            /// settings). Make sure the socket is of the matching kind.
            fn from(s: Socket) -> $t {
                $t { io: s.io.map(<$std>::from) }
            }
        }
    )*};
}

from_socket! {
    TcpListener => std::net::TcpListener,
    TcpStream => std::net::TcpStream,
    UdpSocket => std::net::UdpSocket,
    UnixListener => std::os::unix::net::UnixListener,
    UnixStream => std::os::unix::net::UnixStream,
    UnixDatagram => std::os::unix::net::UnixDatagram,
}
