//! [`create_connection`]: Python's `socket.create_connection` (gevent's,
//! eventlet's `connect`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::addr::{each_addr, ToSocketAddrs};
use crate::evented::zero_timeout;
use crate::tcp::{connect_tcp, TcpStream};

/// Connects a TCP stream to `addr` (names are resolved on the thread pool;
/// each address is tried in turn), optionally from the local address
/// `source`.
///
/// As in Python, `timeout` bounds each connection attempt *and* becomes the
/// returned stream's read and write timeout; `None` waits as long as it
/// takes.
///
/// ```
/// use greenlet_net::{create_connection, TcpListener};
/// use std::time::Duration;
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let port = listener.local_addr().unwrap().port();
/// let s = create_connection(("localhost", port), Some(Duration::from_secs(5)), None).unwrap();
/// assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_secs(5)));
/// ```
///
/// # Errors
/// The error of the last address tried (`ConnectionRefused`, `TimedOut`
/// "timed out", `AddrInUse` for a busy `source`, ...); resolution errors;
/// `InvalidInput` for a zero timeout; the `io::Error` of an interruption.
pub fn create_connection<A: ToSocketAddrs>(
    addr: A,
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    if timeout == Some(Duration::ZERO) {
        return Err(zero_timeout());
    }
    let stream = each_addr(&addr, |a| connect_tcp(a, timeout, source))?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    Ok(stream)
}
