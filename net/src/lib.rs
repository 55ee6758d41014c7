//! Cooperative sockets for greenlet: `std::net` and `std::os::unix::net`
//! whose blocking calls park the calling greenlet instead of the thread
//! (gevent's `gevent.socket`).
//!
//! Porting blocking code is changing the `use` line: `use std::net::{..}`
//! becomes `use greenlet::net::{..}` (and `std::os::unix::net` becomes
//! `greenlet::net::unix`). The types have std's method names and
//! signatures; `Read`/`Write` are implemented for each stream type and for
//! a shared reference to it, so one greenlet can read while another writes.
//!
//! ```
//! use greenlet_net::{TcpListener, TcpStream};
//! use greenlet_runtime::spawn;
//! use std::io::{BufRead, BufReader, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! // An echo server: one greenlet per connection.
//! spawn(move || {
//!     for conn in listener.incoming() {
//!         let conn = conn.unwrap();
//!         spawn(move || {
//!             let mut lines = BufReader::new(&conn);
//!             let mut line = String::new();
//!             while lines.read_line(&mut line).unwrap() > 0 {
//!                 (&conn).write_all(line.as_bytes()).unwrap();
//!                 line.clear();
//!             }
//!         });
//!     }
//! });
//! // Many clients at once, each in its own greenlet.
//! let clients: Vec<_> = (0..10)
//!     .map(|i| spawn(move || {
//!         let mut s = TcpStream::connect(addr).unwrap();
//!         writeln!(s, "hello {i}").unwrap();
//!         let mut reply = String::new();
//!         BufReader::new(&s).read_line(&mut reply).unwrap();
//!         reply
//!     }))
//!     .collect();
//! for (i, c) in clients.into_iter().enumerate() {
//!     assert_eq!(c.get().unwrap(), format!("hello {i}\n"));
//! }
//! ```
//!
//! # What changes from std
//!
//! - **Waits are greenlet waits.** A `read` with no data parks the greenlet;
//!   a `Timeout` of that greenlet interrupts it (`Timeout::is(&err)` holds)
//!   and leaves the socket usable. Per-socket `set_read_timeout` /
//!   `set_write_timeout` give `ErrorKind::TimedOut` ("timed out");
//!   `set_nonblocking(true)` gives `WouldBlock` at once (the OS fd is always
//!   non-blocking; these are settings of the object, copied by
//!   `try_clone`).
//! - **One waiter per direction.** A second greenlet reading (or writing)
//!   a socket while another waits to gets `ErrorKind::ResourceBusy`
//!   (gevent's ConcurrentObjectUseError).
//! - **`close(&self)`** closes now, from any greenlet: a greenlet waiting on
//!   the socket gets the `EBADF` error "File descriptor was closed in
//!   another greenlet" (`Interrupted::Cancelled`); later operations get
//!   `EBADF` "Bad file descriptor". `shutdown` cancels the waiters of the
//!   directions it shuts.
//! - **Names resolve on the thread pool** ([`ToSocketAddrs`], [`getaddrinfo`],
//!   [`gethostbyname`]), never blocking the hub.
//! - **`!Send`.** A socket belongs to the hub of the thread that made it;
//!   moving one to another thread does not compile.
//!
//! # Beyond std
//!
//! [`Socket`] (any domain, type, protocol), [`create_connection`],
//! [`getaddrinfo`] and friends, [`wait_read`] / [`wait_write`] /
//! [`wait_readwrite`] / [`Watcher`] / [`wait`] / [`cancel_wait`] for any fd,
//! and [`select`].
//!
//! # Cost
//!
//! A read that finds data is one `recv`; a short read (fewer bytes than
//! asked) clears read readiness, so the next read parks without an `EAGAIN`
//! syscall; likewise for writes. Each socket is registered with the hub's
//! reactor once (edge-triggered, lazily on first need) and never modified:
//! no `epoll_ctl` and no allocation per operation.
#![deny(missing_docs)]

#[macro_use]
mod macros;

mod addr;
mod connect;
mod dns;
mod evented;
mod select;
mod server;
mod socket;
mod sys;
mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
mod udp;
mod unix_datagram;
mod unix_stream;
mod wait;
mod waitable;

pub use addr::ToSocketAddrs;
pub use connect::create_connection;
pub use dns::{
    getaddrinfo, getaddrinfo_hints, gethostbyaddr, gethostbyname, gethostbyname_ex, getnameinfo,
    AddrInfo, Hints, AI_ADDRCONFIG, AI_ALL, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV,
    AI_PASSIVE, AI_V4MAPPED, NI_DGRAM, NI_NAMEREQD, NI_NOFQDN, NI_NUMERICHOST, NI_NUMERICSERV,
};
#[doc(hidden)]
pub use evented::closed_fd_placeholder;
pub use select::select;
pub use server::{
    Datagram, DatagramServer, StreamServer, ThreadedServer, DEFAULT_BACKLOG, MAX_BACKOFF,
    MAX_DATAGRAM, MIN_BACKOFF,
};
pub use socket::Socket;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_stream::{UnixIncoming, UnixListener, UnixStream};
#[doc(hidden)]
pub use wait::closing_fd;
pub use wait::{cancel_wait, wait, wait_read, wait_readwrite, wait_write, Interest, Watcher};
pub use waitable::Readiness;

/// std's address types, re-exported so `use std::net::{..}` can become
/// `use greenlet::net::{..}` unchanged.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
};

/// socket2's types used by [`Socket`] and [`Hints`]; [`SockRef`] sets
/// socket options on any socket of this crate (`SockRef::from(&stream)`).
pub use socket2::{Domain, Protocol, SockAddr, SockRef, Type};

/// The Unix-domain sockets under std's paths: `use
/// std::os::unix::net::{UnixStream, SocketAddr}` becomes `use
/// greenlet::net::unix::{UnixStream, SocketAddr}`.
pub mod unix {
    pub use crate::unix_datagram::UnixDatagram;
    pub use crate::unix_stream::{UnixIncoming, UnixListener, UnixStream};
    pub use std::os::unix::net::SocketAddr;
}
